"""Record rosbag2 (mcap) from the simulator directly, or from live ROS topics.

    record_bag sim  --out data/drive.mcap --seed 7 --seconds 20 --rate 10 [--labels]
    record_bag live --out data/live.mcap --topics camera/image_raw cmd_vel --seconds 30
    record_bag sample   # the small sample bag the tests and demo use (data/sample_bag)

The sim recorder writes ``/camera/image_raw`` (rgb8), ``/camera/labels`` (mono8 ground truth),
``/camera/boxes`` (the obstacles' boxes, vision_msgs Detection2DArray: a detector's labels),
``/cmd_vel`` and ``/odom``, all stamped with sim time; live recording keeps the resolved
(absolute) names, as ``ros2 bag record`` does.
"""

import argparse
import importlib
from pathlib import Path
import sys
import time
from typing import Dict, Optional, Sequence

from tts_perception.bag.rosbag import BagWriter
from tts_perception.common.progress import Progress

DEFAULT_SAMPLE = Path('data/sample_bag')
IMAGE_TOPIC = 'camera/image_raw'
LABEL_TOPIC = 'camera/labels'
BOX_TOPIC = 'camera/boxes'          # the simulator's boxes, Detection2DArray: a detector's labels


def record_sim(out: Path, seed: int = 7, seconds: float = 20.0, rate: float = 10.0,
               width: int = 640, height: int = 480, labels: bool = True, speed: float = 1.2,
               storage: str = 'mcap', start_x: float = 0.0, quiet: bool = False) -> int:
    """Drive the scripted course and record it; returns the number of camera frames. The
    course is long enough for the drive (the scripted planner stops at its end): the
    simulator's default length, or ``start_x`` + ``speed`` x ``seconds`` + 5 m where that is
    more."""
    from tts_perception.sim.course import COURSE_LENGTH_M
    from tts_perception.sim.world import scripted_command, World
    if rate <= 0 or seconds <= 0:
        raise ValueError('rate and seconds must be positive')
    n = int(round(seconds * rate))
    dt = 1.0 / rate
    length = max(COURSE_LENGTH_M, start_x + speed * seconds + 5.0)
    with World(seed, length, width=width, height=height) as world, \
            BagWriter(out, storage) as bag:
        world.reset(start_x)
        prog = Progress(n, f'record {out.name}', quiet=quiet)
        for i in range(n):
            stamp = int(round((i + 1) * dt * 1e9))
            v, w = scripted_command(world, speed)
            world.step(v, w, dt)
            bag.write_twist('cmd_vel', stamp, v, w)
            s = world.state
            bag.write_odom('odom', stamp, s.x, s.y, s.yaw, s.v, s.w)
            bag.write_image(IMAGE_TOPIC, stamp, world.render_rgb(), 'rgb8')
            if labels:
                bag.write_image(LABEL_TOPIC, stamp, world.render_labels(), 'mono8')
                bag.write_detections(BOX_TOPIC, stamp, *world.render_boxes())
            prog.update(i + 1)
        prog.close()
    return n


def _msg_class(type_name: str):
    pkg, kind, name = type_name.split('/')
    return getattr(importlib.import_module(f'{pkg}.{kind}'), name)


def record_live(out: Path, topics: Sequence[str], seconds: float, storage: str = 'mcap',
                discovery_timeout: float = 5.0) -> Dict[str, int]:
    """Record live topics (raw CDR, no re-serialization) for ``seconds``; returns counts."""
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    rclpy.init()
    node = Node('tts_bag_recorder')
    counts: Dict[str, int] = {}
    try:
        wanted = {node.resolve_topic_name(t): t for t in topics}
        types: Dict[str, str] = {}
        deadline = time.monotonic() + discovery_timeout
        while time.monotonic() < deadline and len(types) < len(wanted):
            for name, tnames in node.get_topic_names_and_types():
                if name in wanted and tnames:
                    types[name] = tnames[0]
            rclpy.spin_once(node, timeout_sec=0.1)
        missing = sorted(set(wanted) - set(types))
        if missing:
            raise RuntimeError(f'no publisher found within {discovery_timeout}s for {missing}')
        with BagWriter(out, storage) as bag:
            def make_cb(topic: str, type_name: str):
                def cb(data: bytes) -> None:
                    bag.write_raw(topic, type_name, time.time_ns(), data)
                    counts[topic] = counts.get(topic, 0) + 1
                return cb
            for name, type_name in types.items():
                node.create_subscription(_msg_class(type_name), name,
                                         make_cb(name, type_name),
                                         qos_profile_sensor_data, raw=True)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return counts


def make_sample_bag(out: Optional[Path] = None, quiet: bool = False) -> Path:
    """The small sample bag (8 s at 10 Hz, 640x480 + labels) used by tests and the demo."""
    out = Path(out or DEFAULT_SAMPLE)
    if (out / 'metadata.yaml').exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + '.partial')
    if tmp.exists():
        import shutil
        shutil.rmtree(tmp)
    record_sim(tmp, seed=7, seconds=8.0, rate=10.0, start_x=8.0, quiet=quiet)
    tmp.rename(out)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``record_bag``)."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('sim', help='record the simulator directly')
    s.add_argument('--out', type=Path, required=True)
    s.add_argument('--seed', type=int, default=7)
    s.add_argument('--seconds', type=float, default=20.0)
    s.add_argument('--rate', type=float, default=10.0)
    s.add_argument('--width', type=int, default=640)
    s.add_argument('--height', type=int, default=480)
    s.add_argument('--speed', type=float, default=1.2)
    s.add_argument('--no-labels', action='store_true')
    s.add_argument('--storage', choices=['mcap', 'sqlite3'], default='mcap')
    lv = sub.add_parser('live', help='record live ROS topics')
    lv.add_argument('--out', type=Path, required=True)
    lv.add_argument('--topics', nargs='+', required=True)
    lv.add_argument('--seconds', type=float, default=30.0)
    lv.add_argument('--storage', choices=['mcap', 'sqlite3'], default='mcap')
    sp = sub.add_parser('sample', help='make the small sample bag used by tests and the demo')
    sp.add_argument('--out', type=Path, default=DEFAULT_SAMPLE)
    a = ap.parse_args(argv)
    if a.cmd == 'sim':
        n = record_sim(a.out, a.seed, a.seconds, a.rate, a.width, a.height, not a.no_labels,
                       a.speed, a.storage)
        print(f'wrote {n} frames to {a.out}')
    elif a.cmd == 'live':
        counts = record_live(a.out, a.topics, a.seconds, a.storage)
        print(f'wrote {counts} to {a.out}')
    else:
        print(f'sample bag at {make_sample_bag(a.out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
