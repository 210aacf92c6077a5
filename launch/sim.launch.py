"""Built-in MuJoCo camera world + perception + controller (what `bringup` starts in-process)."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node, PushROSNamespace, SetParameter


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
        GroupAction([
            PushROSNamespace(LaunchConfiguration('namespace')),
            Node(package='tts_perception', executable='sim_node', name='sim_node',
                 output='screen', parameters=[LaunchConfiguration('sim_params_file')]),
            SetParameter('use_sim_time', True),
            LifecycleNode(package='tts_perception', executable='perception_node',
                          name='perception_node', namespace='', output='screen',
                          parameters=[LaunchConfiguration('params_file')],
                          arguments=['--autostart']),
            Node(package='tts_perception', executable='controller_node',
                 name='controller_node', output='screen',
                 parameters=[LaunchConfiguration('controller_params_file')],
                 remappings=[('cmd_vel_in', 'cmd_vel_nominal'),
                             ('segmentation', 'camera/segmentation')]),
        ]),
    ])
