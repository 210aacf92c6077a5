"""frame_player: a stand-in camera driver, in its own process, at a fixed rate.

Publishes recorded frames (from a rosbag2, resized to ``--size``) as ``sensor_msgs/Image``
(rgb8) on ``--topic`` or as jpeg ``sensor_msgs/CompressedImage`` on ``<topic>/compressed``,
with sensor-data QoS (best effort, keep last 1) like most camera drivers, or reliable with
``--reliability reliable`` (keep last 10, as many drivers' defaults), each stamped with
the wall clock at publish time, at ``--rate`` Hz for ``--seconds``. Frames are converted
and encoded before the clock starts, as a camera's hardware encoder would; publishing
(serialisation included) is this process's own cost. The Fast DDS profile is whatever this
process's environment names (a driver from the robot's own launch file has none). Prints one
JSON line at the end: ``{"sent": N, "first_ns": ..., "last_ns": ..., "late": ...}``.

    python -m tts_perception.tools.frame_player --bag data/sample_bag --rate 30 --seconds 10
"""

import argparse
import json
import sys
import time
from typing import List, Optional, Sequence

import numpy as np


def load_frames(bag: str, size: Optional[Sequence[int]], topic: Optional[str] = None,
                limit: int = 120) -> List[np.ndarray]:
    """Up to ``limit`` RGB frames of a bag's image topic, resized to ``size`` (W, H)."""
    import cv2
    from tts_perception.bag.rosbag import read_frames
    out = []
    for f in read_frames(bag, [topic] if topic else None):
        rgb = f.rgb
        if size and (rgb.shape[1], rgb.shape[0]) != tuple(size):
            rgb = cv2.resize(rgb, tuple(size), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(rgb))
        if len(out) >= limit:
            break
    if not out:
        raise SystemExit(f'no frames in {bag}')
    return out


def _publisher(node, a: argparse.Namespace, frames):
    """The publisher of the chosen transport and reliability, and the messages to send."""
    from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from tts_perception.common.image_codec import encode_compressed, fill_image_msg
    qos = qos_profile_sensor_data if a.reliability == 'best_effort' else QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE)
    if a.transport == 'compressed':
        pub = node.create_publisher(CompressedImage, a.topic + '/compressed', qos)
        msgs = []
        for rgb in frames:
            m = CompressedImage(format='jpeg')
            m.data = encode_compressed(rgb, 'jpeg', a.jpeg_quality)
            msgs.append(m)
    else:
        pub = node.create_publisher(Image, a.topic, qos)
        msgs = [fill_image_msg(Image(), rgb, 'rgb8') for rgb in frames]
    for m in msgs:
        m.header.frame_id = 'camera'
    return pub, msgs


def _play(pub, msgs, rate: float, seconds: float) -> dict:
    """Publish the messages in turn at ``rate`` for ``seconds``, each stamped as it goes
    out; what was sent, and how many periods started late."""
    n = max(1, int(round(rate * seconds)))
    period = 1.0 / rate
    t0 = time.monotonic()
    first_ns = last_ns = 0
    late = 0
    for i in range(n):
        m = msgs[i % len(msgs)]
        now_ns = time.time_ns()
        m.header.stamp.sec, m.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        pub.publish(m)
        first_ns = first_ns or now_ns
        last_ns = now_ns
        slack = t0 + (i + 1) * period - time.monotonic()
        if slack > 0:
            time.sleep(slack)
        else:
            late += 1
    return {'sent': n, 'first_ns': first_ns, 'last_ns': last_ns, 'late': late,
            'topic': pub.topic_name}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Publish frames at a fixed rate; print a JSON summary."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bag', required=True, help='rosbag2 with an image topic')
    ap.add_argument('--bag-topic', default=None, help='image topic in the bag (default: first)')
    ap.add_argument('--topic', default='camera/image_raw')
    ap.add_argument('--size', default='640x480', help='WxH')
    ap.add_argument('--rate', type=float, default=30.0)
    ap.add_argument('--seconds', type=float, default=10.0)
    ap.add_argument('--transport', choices=['raw', 'compressed'], default='raw')
    ap.add_argument('--reliability', choices=['best_effort', 'reliable'], default='best_effort')
    ap.add_argument('--jpeg-quality', type=int, default=90)
    ap.add_argument('--wait-subscriber', type=float, default=60.0,
                    help='seconds to wait for a subscriber before starting')
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split('x'))
    frames = load_frames(a.bag, (w, h), a.bag_topic)
    import rclpy
    from rclpy.node import Node
    rclpy.init()
    node = Node('frame_player')
    pub, msgs = _publisher(node, a, frames)
    end = time.monotonic() + a.wait_subscriber
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    if pub.get_subscription_count() == 0:
        print(json.dumps({'error': f'no subscriber on {pub.topic_name}'}), flush=True)
        return 1
    time.sleep(0.5)   # let the matched subscriber's transport settle
    print(json.dumps(_play(pub, msgs, a.rate, a.seconds)), flush=True)
    time.sleep(0.5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
