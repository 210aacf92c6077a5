"""Gazebo world with a camera robot + ros_gz_bridge, feeding perception and the controller.

    ros2 launch tts_perception gazebo.launch.py            # worlds/camera_robot.sdf (seed 0)

For robot workstations with Gazebo (Harmonic or newer, gz sim) and ros_gz installed. The
shipped world is the built-in course made by ``python -m tts_perception.sim.gazebo_world``.
There is no planner in this world: drive ``cmd_vel_in_topic`` (teleop, Nav2); the controller
limits it into ``cmd_vel``, which the bridge hands to the robot's diff drive.
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
        DeclareLaunchArgument('world',
                              default_value=os.path.join(share, 'worlds', 'camera_robot.sdf'),
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
        DeclareLaunchArgument('cmd_vel_in_topic', default_value='cmd_vel_in',
                              description='Nominal command (teleop, Nav2) the controller limits'),
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
                              'cmd_vel_in_topic': LaunchConfiguration('cmd_vel_in_topic'),
                              'use_sim_time': 'true'}.items()),
    ])
