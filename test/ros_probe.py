"""Test helper run as a separate process: listens on topics and prints one JSON line per event.

    python test/ros_probe.py TOPIC:TYPE [TOPIC:TYPE ...] --count N --timeout S

Prints {"topic", "stamp_ns", "recv_ns", ...} per message (Image: width/height/encoding/
mean; Twist: linear_x/angular_z; DiagnosticArray: status names/values), then {"done": ...}.
"""

import argparse
import importlib
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data


def describe(msg):
    d = {}
    if hasattr(msg, 'header'):
        d['stamp_ns'] = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
    name = type(msg).__name__
    if name == 'Image':
        buf = np.frombuffer(bytes(msg.data), dtype=np.uint8)
        d.update(width=msg.width, height=msg.height, encoding=msg.encoding,
                 mean=float(buf.mean()) if buf.size else 0.0,
                 hist=np.bincount(buf, minlength=8)[:8].tolist() if msg.encoding == 'mono8'
                 else [])
    elif name == 'Twist':
        d.update(linear_x=msg.linear.x, angular_z=msg.angular.z)
    elif name == 'DiagnosticArray':
        d['status'] = [{'name': s.name, 'message': s.message,
                        'level': s.level[0] if isinstance(s.level, bytes) else int(s.level),
                        'values': {k.key: k.value for k in s.values}} for s in msg.status]
    elif name == 'DiagnosticStatus':
        d['values'] = {k.key: k.value for k in msg.values}
        d['name'] = msg.name
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('topics', nargs='+')
    ap.add_argument('--count', type=int, default=1, help='stop after N messages on each topic')
    ap.add_argument('--timeout', type=float, default=30.0)
    ap.add_argument('--reliable', action='store_true')
    a = ap.parse_args()
    rclpy.init()
    node = Node('ros_probe')
    counts = {}
    for spec in a.topics:
        topic, tname = spec.split(':')
        pkg, kind, cls = tname.split('/')
        mtype = getattr(importlib.import_module(f'{pkg}.{kind}'), cls)
        counts[topic] = 0

        def cb(msg, topic=topic):
            counts[topic] += 1
            d = describe(msg)
            d.update(topic=topic, recv_ns=time.time_ns())
            print(json.dumps(d), flush=True)
        qos = 10 if a.reliable else qos_profile_sensor_data
        node.create_subscription(mtype, topic, cb, qos)
    end = time.monotonic() + a.timeout
    while time.monotonic() < end and min(counts.values()) < a.count:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({'done': True, 'counts': counts}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if min(counts.values()) >= a.count else 1


if __name__ == '__main__':
    sys.exit(main())
