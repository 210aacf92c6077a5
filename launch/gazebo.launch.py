"""Gazebo world with a camera robot + ros_gz_bridge, feeding perception and the controller.

For robot workstations with Gazebo (gz sim) and ros_gz installed; it cannot run where gz is
not installed.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    cfg = os.path.join(share, 'config')
    return LaunchDescription([
        DeclareLaunchArgument('world', default_value='camera_robot.sdf',
                              description='Gazebo world with a robot publishing a camera'),
        DeclareLaunchArgument('gz_camera_topic', default_value='/camera',
                              description='Gazebo camera topic to bridge'),
        DeclareLaunchArgument('gz_cmd_vel_topic', default_value='/cmd_vel',
                              description='Gazebo diff-drive command topic to bridge'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(cfg, 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('controller_params_file',
                              default_value=os.path.join(cfg, 'controller.yaml'),
                              description='controller_node parameters (YAML)'),
        ExecuteProcess(cmd=['gz', 'sim', '-r', LaunchConfiguration('world')], output='screen'),
        Node(package='ros_gz_bridge', executable='parameter_bridge', name='gz_bridge',
             output='screen',
             arguments=['/clock@rosgraph_msgs/msg/Clock[gz.msgs.Clock',
                        [LaunchConfiguration('gz_camera_topic'),
                         '@sensor_msgs/msg/Image[gz.msgs.Image'],
                        [LaunchConfiguration('gz_cmd_vel_topic'),
                         '@geometry_msgs/msg/Twist]gz.msgs.Twist']],
             remappings=[(LaunchConfiguration('gz_camera_topic'), 'camera/image_raw'),
                         (LaunchConfiguration('gz_cmd_vel_topic'), 'cmd_vel')]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'perception.launch.py')),
            launch_arguments={'params_file': LaunchConfiguration('params_file'),
                              'controller_params_file':
                                  LaunchConfiguration('controller_params_file'),
                              'use_sim_time': 'true'}.items()),
    ])
