"""make demo: the main job on the built-in default.

Until the perception and controller nodes exist, the simulator drives its scripted course and a
listener counts what arrives over DDS; the summary is printed at the end.
"""

import argparse
import sys
import time
from typing import Optional, Sequence

from tts_perception.ros_domain import isolate_this_process


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the demo and print its summary."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--seconds', type=float, default=30.0, help='sim seconds to drive')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args(argv)
    dom = isolate_this_process()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from tts_perception.nodes.sim_node import SimNode
    from tts_perception.paths import config_file

    rclpy.init()
    sim = SimNode(cli_args=['--ros-args', '--params-file', str(config_file('sim.yaml'))],
                  parameter_overrides=[Parameter('drive_scripted', value=True),
                                       Parameter('seed', value=a.seed),
                                       Parameter('max_sim_time', value=a.seconds)])
    listener = Node('demo_listener')
    got = []
    listener.create_subscription(Image, 'camera/image_raw', lambda m: got.append(m.header.stamp),
                                 qos_profile_sensor_data)
    ex = SingleThreadedExecutor()
    ex.add_node(sim)
    ex.add_node(listener)
    t0 = time.monotonic()
    print(f'[demo] ROS_DOMAIN_ID={dom}: sim_node drives course seed {a.seed} for {a.seconds}s')
    try:
        while rclpy.ok() and not sim.finished:
            ex.spin_once(timeout_sec=0.1)
        for _ in range(5):
            ex.spin_once(timeout_sec=0.05)
    finally:
        s = sim.summary()
        ex.shutdown()
        sim.destroy_node()
        listener.destroy_node()
        rclpy.try_shutdown()
    wall = time.monotonic() - t0
    print('\n==== tts_perception demo summary ====')
    print(f'sim time        {s["sim_time"]:.1f} s   wall {wall:.1f} s   '
          f'real-time factor {s["real_time_factor"]:.2f}')
    print(f'frames          rendered {s["frames"]}, received over DDS {len(got)}')
    print(f'course          progress {100 * s["progress"]:.0f} %   x={s["x"]:.1f} m')
    print(f'collisions      {s["collisions"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
