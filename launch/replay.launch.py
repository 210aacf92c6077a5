"""Replay a rosbag2 (ros2 bag play --clock) into perception (+ controller) with sim time.

    ros2 launch tts_perception replay.launch.py bag:=/path/to/bag camera_topic:=/front/image_raw
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess,
                            IncludeLaunchDescription, RegisterEventHandler)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    player = ExecuteProcess(cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag'), '--clock',
                                 '--rate', LaunchConfiguration('rate')], output='screen')
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='Path of the rosbag2 to replay'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Image topic in the bag'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback rate'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('with_controller', default_value='true',
                              choices=['true', 'false'],
                              description='Also start the latency-aware controller'),
        player,
        # the launch ends with the player (a failed or finished replay leaves nothing idle)
        RegisterEventHandler(OnProcessExit(target_action=player,
                                           on_exit=[EmitEvent(event=Shutdown(
                                               reason='bag replay ended'))])),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'perception.launch.py')),
            launch_arguments={'namespace': LaunchConfiguration('namespace'),
                              'camera_topic': LaunchConfiguration('camera_topic'),
                              'params_file': LaunchConfiguration('params_file'),
                              'use_sim_time': 'true',
                              'with_controller': LaunchConfiguration('with_controller')
                              }.items()),
    ])
