"""Replay a rosbag2 (ros2 bag play --clock) into perception (+ controller) with sim time."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, PushROSNamespace, SetParameter


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='Path of the rosbag2 to replay'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Image topic in the bag'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback rate'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        ExecuteProcess(cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag'), '--clock',
                            '--rate', LaunchConfiguration('rate')], output='screen'),
        GroupAction([
            PushROSNamespace(LaunchConfiguration('namespace')),
            SetParameter('use_sim_time', True),
            LifecycleNode(package='tts_perception', executable='perception_node',
                          name='perception_node', namespace='', output='screen',
                          parameters=[LaunchConfiguration('params_file')],
                          arguments=['--autostart'],
                          remappings=[('camera/image_raw',
                                       LaunchConfiguration('camera_topic'))]),
        ]),
    ])
