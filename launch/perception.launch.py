"""Robot bring-up: perception_node (+ controller_node) on a camera topic.

    ros2 launch tts_perception perception.launch.py camera_topic:=/front/image_raw

perception_node subscribes ``camera_topic`` and publishes ``<camera ns>/segmentation`` next
to it; controller_node follows that camera (its status records and segmentation) and turns
``cmd_vel_in_topic`` into ``cmd_vel``. The other scenario launch files include this one.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node, PushRosNamespace, SetParameter
from tts_perception.nodes.dds import profile_vars


def generate_launch_description():
    share = get_package_share_directory('tts_perception')
    cfg = os.path.join(share, 'config')
    camera_topic = LaunchConfiguration('camera_topic')
    return LaunchDescription([
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for all nodes'),
        DeclareLaunchArgument('camera_topic', default_value='camera/image_raw',
                              description='Camera image topic (raw Image; with transports '
                              'compressed in params_file, <camera_topic>/compressed)'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(cfg, 'perception.yaml'),
                              description='perception_node parameters (YAML)'),
        DeclareLaunchArgument('controller_params_file',
                              default_value=os.path.join(cfg, 'controller.yaml'),
                              description='controller_node parameters (YAML)'),
        DeclareLaunchArgument('use_sim_time', default_value='false', choices=['true', 'false'],
                              description='Use /clock (bag replay, simulation)'),
        DeclareLaunchArgument('with_controller', default_value='true',
                              choices=['true', 'false'],
                              description='Also start the latency-aware controller'),
        DeclareLaunchArgument('cmd_vel_in_topic', default_value='cmd_vel_in',
                              description='Nominal velocity command the controller limits '
                              '(from a planner or teleop)'),
        DeclareLaunchArgument('dds_profile',
                              default_value=EnvironmentVariable(
                                  'FASTDDS_DEFAULT_PROFILES_FILE',
                                  default_value=EnvironmentVariable(
                                      'FASTRTPS_DEFAULT_PROFILES_FILE',
                                      default_value=os.path.join(cfg, 'fastdds.xml'))),
                              description='Fast DDS XML profile (large shared-memory segment '
                              'for camera frames), set as FASTRTPS_DEFAULT_PROFILES_FILE (read '
                              'by Fast DDS 2.x: Humble, Jazzy) and FASTDDS_DEFAULT_PROFILES_FILE '
                              '(Fast DDS 3: Kilted and newer, the only name set there); your own '
                              'setting of either wins'),
        # the name(s) this distribution's Fast DDS reads (FASTRTPS_ on Humble/Jazzy)
        *[SetEnvironmentVariable(var, LaunchConfiguration('dds_profile'))
          for var in profile_vars()],
        GroupAction([
            PushRosNamespace(LaunchConfiguration('namespace')),
            SetParameter('use_sim_time', LaunchConfiguration('use_sim_time')),
            LifecycleNode(package='tts_perception', executable='perception_node',
                          name='perception_node', namespace='', output='screen',
                          parameters=[LaunchConfiguration('params_file')],
                          arguments=['--autostart'],
                          remappings=[('camera/image_raw', camera_topic)]),
            Node(package='tts_perception', executable='controller_node',
                 name='controller_node', output='screen',
                 parameters=[LaunchConfiguration('controller_params_file'),
                             {'camera': camera_topic}],
                 condition=IfCondition(LaunchConfiguration('with_controller')),
                 remappings=[('cmd_vel_in', LaunchConfiguration('cmd_vel_in_topic'))]),
        ]),
    ])
