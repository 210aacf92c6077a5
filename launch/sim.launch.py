"""The built-in MuJoCo camera world + perception + controller (what `bringup` starts).

    ros2 launch tts_perception sim.launch.py namespace:=robot1
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from tts_perception.nodes.bringup import SIM_WAITS_FOR


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    cfg = os.path.join(share, 'config')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='', description='Namespace'),
        DeclareLaunchArgument('sim_params_file', default_value=os.path.join(cfg, 'sim.yaml'),
                              description='sim_node parameters (YAML)'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(cfg, 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('controller_params_file',
                              default_value=os.path.join(cfg, 'controller.yaml'),
                              description='controller_node parameters (YAML)'),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'perception.launch.py')),
            launch_arguments={'namespace': LaunchConfiguration('namespace'),
                              'camera_topic': 'camera/image_raw',
                              'params_file': LaunchConfiguration('params_file'),
                              'controller_params_file':
                                  LaunchConfiguration('controller_params_file'),
                              'use_sim_time': 'true',
                              'cmd_vel_in_topic': 'cmd_vel_nominal'}.items()),
        GroupAction([
            PushRosNamespace(LaunchConfiguration('namespace')),
            Node(package='tts_perception', executable='sim_node', name='sim_node',
                 output='screen', parameters=[LaunchConfiguration('sim_params_file'),
                                              # sim time starts once perception listens
                                              {'wait_for_subscribers': SIM_WAITS_FOR}]),
        ]),
    ])
