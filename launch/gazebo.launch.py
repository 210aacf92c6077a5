"""Gazebo world with a camera robot + ros_gz_bridge, feeding perception and the controller.

For robot workstations with Gazebo (gz sim) and ros_gz installed; never run on the machines
this package is developed on (Gazebo is not packaged there).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node, SetParameter


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
        GroupAction([
            SetParameter('use_sim_time', True),
            LifecycleNode(package='tts_perception', executable='perception_node',
                          name='perception_node', namespace='', output='screen',
                          parameters=[LaunchConfiguration('params_file')],
                          arguments=['--autostart']),
            Node(package='tts_perception', executable='controller_node',
                 name='controller_node', output='screen',
                 parameters=[LaunchConfiguration('controller_params_file')],
                 remappings=[('segmentation', 'camera/segmentation')]),
        ]),
    ])
