"""Replay a rosbag2 into perception (+ controller) with the bag's clock.

    ros2 launch tts_perception replay.launch.py bag:=/path/to/bag camera_topic:=/front/image_raw

The player is this package's replay_node (no rosbag2 needed; recorded timing, rate, loop,
start offset, /clock) or, with ``player:=ros2bag``, ``ros2 bag play --clock``. The launch ends
when the player exits, at the end of the bag or on an error.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess,
                            IncludeLaunchDescription, RegisterEventHandler)
from launch.conditions import LaunchConfigurationEquals
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _end_with(player):
    return RegisterEventHandler(OnProcessExit(target_action=player, on_exit=[
        EmitEvent(event=Shutdown(reason='bag replay ended'))]))


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    ours = Node(package='tts_perception', executable='replay_node', name='replay_node',
                output='screen', condition=LaunchConfigurationEquals('player', 'replay_node'),
                parameters=[{'bag': LaunchConfiguration('bag'),
                             'rate': LaunchConfiguration('rate'),
                             'loop': LaunchConfiguration('loop'),
                             'start_offset': LaunchConfiguration('start_offset')}])
    ros2bag = ExecuteProcess(
        cmd=['ros2', 'bag', 'play', LaunchConfiguration('bag'), '--clock', '--rate',
             LaunchConfiguration('rate'), '--start-offset', LaunchConfiguration('start_offset')],
        output='screen', condition=LaunchConfigurationEquals('player', 'ros2bag'))
    return LaunchDescription([
        DeclareLaunchArgument('bag', description='Path of the rosbag2 to replay'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Image topic in the bag'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback rate'),
        DeclareLaunchArgument('loop', default_value='false', choices=['true', 'false'],
                              description='Start over at the end (replay_node only)'),
        DeclareLaunchArgument('start_offset', default_value='0.0',
                              description='Seconds into the bag to start from'),
        DeclareLaunchArgument('player', default_value='replay_node',
                              choices=['replay_node', 'ros2bag'],
                              description='replay_node (this package) or ros2bag (ros2 bag '
                              'play)'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('with_controller', default_value='true',
                              choices=['true', 'false'],
                              description='Also start the latency-aware controller'),
        ours, ros2bag, _end_with(ours), _end_with(ros2bag),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'perception.launch.py')),
            launch_arguments={'namespace': LaunchConfiguration('namespace'),
                              'camera_topic': LaunchConfiguration('camera_topic'),
                              'params_file': LaunchConfiguration('params_file'),
                              'use_sim_time': 'true',
                              'with_controller': LaunchConfiguration('with_controller')
                              }.items()),
    ])
