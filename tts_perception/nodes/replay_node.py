"""replay_node: play a rosbag2's camera topics with their recorded timing (no rosbag2 needed).

Publishes every Image / CompressedImage topic of the bag (or ``topics``) exactly as recorded
(the serialized bytes, headers and stamps unchanged), spaced by their recorded times divided
by ``rate``, starting ``start_offset`` seconds into the bag, optionally in a ``loop``; and
``/clock`` with the bag's time before each message, so nodes with ``use_sim_time`` see the
camera's clock. A bag that cannot be played (missing, corrupt, a topic that is not an image,
an encoding perception cannot decode) ends the node with one line naming the topic and exit
code 1; the end of the bag ends it with 0 (``replay.launch.py`` then shuts the launch down).

    ros2 run tts_perception replay_node --ros-args -p bag:=/path/to/bag -p rate:=2.0
"""

import threading
import time
from typing import Dict

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from tts_perception.bag.rosbag import BagError, COMPRESSED_TYPE, image_topics, read_raw
from tts_perception.nodes.ros_util import (declare_params, Param, run_node, StartupError)

PARAMS = (
    Param('bag', '', 'Path of the rosbag2 (directory with metadata.yaml, or an .mcap file)',
          read_only=True),
    Param('topics', [''], 'Image/CompressedImage topics to play ([""] = every image topic)',
          read_only=True),
    Param('rate', 1.0, 'Playback speed factor', 0.01, 100.0, read_only=True),
    Param('loop', False, 'Start over at the end (the clock goes back: nodes reset their '
          'statistics)', read_only=True),
    Param('start_offset', 0.0, 'Seconds into the bag to start from', 0.0, 1e6, read_only=True),
    Param('publish_clock', True, 'Publish /clock with the bag\'s time', read_only=True),
    Param('wait_for_subscribers', 10.0, 'Before playing, wait up to this long (s) until every '
          'played topic has a subscriber (e.g. perception still loading its model)',
          0.0, 600.0, read_only=True),
)


class ReplayNode(Node):
    """Plays a bag on a thread of its own; ``done`` is set at the end (or on an error)."""

    def __init__(self, **kwargs):
        super().__init__('replay_node', **kwargs)
        self.p = declare_params(self, PARAMS)
        if not self.p['bag']:
            raise StartupError('replay_node: parameter bag is required (-p bag:=PATH)')
        topics = [t for t in self.p['topics'] if t] or None
        try:
            self.types: Dict[str, str] = image_topics(self.p['bag'], topics)
        except BagError as exc:
            raise StartupError(f'replay_node: {exc}') from None
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {t: self.create_publisher(CompressedImage if m == COMPRESSED_TYPE
                                              else Image, t, qos)
                     for t, m in self.types.items()}
        self.pub_clock = self.create_publisher(Clock, '/clock', 10)
        self.published = 0
        self.error = ''
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name='replay', daemon=True)
        self._thread.start()
        self.get_logger().info(f'playing {self.p["bag"]}: {sorted(self.types)} at rate '
                               f'{self.p["rate"]:g}{" in a loop" if self.p["loop"] else ""}')

    def _play(self) -> None:
        end = time.monotonic() + self.p['wait_for_subscribers']
        while time.monotonic() < end and not self._stop.is_set() and \
                any(p.get_subscription_count() == 0 for p in self.pubs.values()):
            self._stop.wait(0.05)
        try:
            while not self._stop.is_set():
                self._play_once()
                if not self.p['loop']:
                    break
        except BagError as exc:
            self.error = str(exc)
            self.get_logger().error(f'replay stopped: {exc}')
        except Exception as exc:  # noqa: BLE001 - any reader failure ends the replay as failed
            self.error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'replay stopped, reading the bag failed: {self.error}')
        finally:
            self.done.set()

    def _play_once(self) -> None:
        rate, offset = self.p['rate'], self.p['start_offset']
        t0_bag = t0_wall = None
        for m in read_raw(self.p['bag'], list(self.types)):
            if t0_bag is None:
                t0_bag = m.log_time_ns
            if m.log_time_ns < t0_bag + offset * 1e9:
                continue
            if t0_wall is None:
                t0_wall, t0_bag = time.monotonic(), m.log_time_ns
            wait = t0_wall + (m.log_time_ns - t0_bag) / 1e9 / rate - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            if self.p['publish_clock']:
                c = Clock()
                c.clock.sec, c.clock.nanosec = divmod(m.log_time_ns, 1_000_000_000)
                self.pub_clock.publish(c)
            self.pubs[m.topic].publish(m.cdr)
            self.published += 1

    def destroy_node(self):
        """Stop playing first."""
        if hasattr(self, '_thread'):
            self._stop.set()
            self._thread.join(timeout=5.0)
        return super().destroy_node()


def _finish(node: ReplayNode) -> int:
    node.get_logger().info(f'published {node.published} messages; '
                           f'{"failed: " + node.error if node.error else "done"}')
    return 1 if node.error else 0


def main(args=None) -> int:
    """Run the player until the bag ends (exit 0), fails (1) or Ctrl-C (0)."""
    return run_node(ReplayNode, args, until=lambda n: n.done.is_set(), exit_code=_finish)


if __name__ == '__main__':
    raise SystemExit(main())
