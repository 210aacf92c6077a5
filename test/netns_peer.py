"""Helper for the separate-hosts test, run inside a network namespace: publishes a nominal
command on cmd_vel_in and prints one JSON line per cmd_vel and per controller diagnostics."""

import json
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
import rclpy
from rclpy.node import Node


def main() -> int:
    rclpy.init()
    node = Node('netns_peer')
    pub = node.create_publisher(Twist, 'cmd_vel_in', 10)

    def on_cmd(m: Twist) -> None:
        print(json.dumps({'t': time.monotonic(), 'v': m.linear.x}), flush=True)

    def on_diag(m: DiagnosticArray) -> None:
        for st in m.status:
            if st.name == 'controller_node':
                print(json.dumps({'t': time.monotonic(), 'controller': {
                    k.key: k.value for k in st.values}}), flush=True)
    node.create_subscription(Twist, 'cmd_vel', on_cmd, 10)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    fwd = Twist()
    fwd.linear.x = 1.0
    end = time.monotonic() + float(sys.argv[1])
    while time.monotonic() < end:
        pub.publish(fwd)
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
