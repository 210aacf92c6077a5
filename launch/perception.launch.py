"""Robot bring-up: perception_node (+ controller_node) on real camera topics."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node, PushROSNamespace, SetParameter


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    params_file = LaunchConfiguration('params_file')
    controller_params = LaunchConfiguration('controller_params_file')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for all nodes'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Camera image topic to remap onto camera/image_raw'),
        DeclareLaunchArgument('params_file',
                              default_value=os.path.join(share, 'config', 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('controller_params_file',
                              default_value=os.path.join(share, 'config', 'controller.yaml'),
                              description='controller_node parameters (YAML)'),
        DeclareLaunchArgument('use_sim_time', default_value='false', choices=['true', 'false'],
                              description='Use /clock (bag replay, simulation)'),
        DeclareLaunchArgument('with_controller', default_value='true',
                              choices=['true', 'false'],
                              description='Also start the latency-aware controller'),
        GroupAction([
            PushROSNamespace(LaunchConfiguration('namespace')),
            SetParameter('use_sim_time', LaunchConfiguration('use_sim_time')),
            LifecycleNode(package='tts_perception', executable='perception_node',
                          name='perception_node', namespace='', output='screen',
                          parameters=[params_file], arguments=['--autostart'],
                          remappings=[('camera/image_raw', LaunchConfiguration('camera_topic'))]),
            Node(package='tts_perception', executable='controller_node',
                 name='controller_node', output='screen', parameters=[controller_params],
                 condition=IfCondition(LaunchConfiguration('with_controller')),
                 remappings=[('segmentation', 'camera/segmentation')]),
        ]),
    ])
