"""bringup: start the same nodes with the same YAML as the launch files, in one process.

For machines without ``ros2 launch`` (the composed pattern of ROS's rclpy examples): sim_node,
perception_node (configured and activated here) and controller_node on one
MultiThreadedExecutor, each with its ``config/*.yaml`` as ``--params-file`` and the same
remappings as ``launch/sim.launch.py``:

    sim_node        camera/image_raw, cmd_vel_nominal  ->  (planner's nominal command)
    perception_node camera/image_raw -> camera/segmentation, perception/status
    controller_node cmd_vel_in := cmd_vel_nominal, segmentation := camera/segmentation
                    -> cmd_vel -> sim_node
"""

import argparse
import sys
from typing import List, Optional, Sequence

from tts_perception.paths import config_file

REMAP_CONTROLLER = ['-r', 'cmd_vel_in:=cmd_vel_nominal', '-r',
                    'segmentation:=camera/segmentation']


def node_args(yaml_name: str, extra: Sequence[str] = (), use_sim_time: bool = True,
              overrides: Sequence[str] = ()) -> List[str]:
    """cli_args for a node: its params file, remaps, use_sim_time and -p overrides."""
    args = ['--ros-args', '--params-file', str(config_file(yaml_name)), *extra]
    if use_sim_time:
        args += ['-p', 'use_sim_time:=true']
    for o in overrides:
        args += ['-p', o]
    return args


def build_nodes(sim_overrides=(), perception_overrides=(), controller_overrides=()):
    """Create (sim, perception, controller); perception is configured and activated."""
    from tts_perception.nodes.controller_node import ControllerNode
    from tts_perception.nodes.perception_node import PerceptionNode
    from tts_perception.nodes.sim_node import SimNode
    sim = SimNode(cli_args=node_args('sim.yaml', use_sim_time=False, overrides=sim_overrides))
    per = PerceptionNode(cli_args=node_args('perception.yaml', overrides=perception_overrides))
    ctl = ControllerNode(cli_args=node_args('controller.yaml', REMAP_CONTROLLER,
                                            overrides=controller_overrides))
    from rclpy.lifecycle import TransitionCallbackReturn
    if per.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError('perception_node failed to configure (see its log above)')
    per.trigger_activate()
    return sim, per, ctl


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Spin sim + perception + controller until Ctrl-C."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-p', '--param', action='append', default=[],
                    help='NODE:NAME:=VALUE override, e.g. perception_node:deadline_ms:=30.0')
    a, rest = ap.parse_known_args(argv)
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    from tts_perception.ros_domain import isolate_this_process
    isolate_this_process()
    ov = {'sim_node': [], 'perception_node': [], 'controller_node': []}
    for spec in a.param:
        node, _, rest_ = spec.partition(':')
        if node not in ov:
            ap.error(f'unknown node {node!r} in {spec!r}')
        ov[node].append(rest_)
    rclpy.init(args=rest)
    nodes = build_nodes(ov['sim_node'], ov['perception_node'], ov['controller_node'])
    ex = MultiThreadedExecutor(num_threads=4)
    for n in nodes:
        ex.add_node(n)
    try:
        ex.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
