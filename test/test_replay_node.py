"""replay_node in its own process: recorded timing at rate 1 and 2, /clock, clear refusals."""

import time

import numpy as np
import pytest
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from tts_perception.bag.rosbag import BagWriter

pytestmark = pytest.mark.dds
PERIOD = 0.1


def _bag(path, n=20, encoding='rgb8'):
    t0 = 5_000_000_000
    with BagWriter(path) as w:
        for i in range(n):
            img = np.full((24, 32, 3), i, np.uint8) if encoding == 'rgb8' else \
                np.full((24, 32), i, np.uint16).view(np.uint8).reshape(24, 64)
            if encoding == 'rgb8':
                w.write_image('camera/image_raw', t0 + int(i * PERIOD * 1e9), img)
            else:
                w.write_raw_image('camera/image_raw', t0 + int(i * PERIOD * 1e9), img,
                                  encoding)
    return path


@pytest.mark.parametrize('rate', [1.0, 2.0])
def test_recorded_timing_is_kept_at_the_playback_rate(procs, client, tmp_path, rate):
    bag = _bag(tmp_path / 'b')
    arrivals, stamps, clocks = [], [], []

    def on_img(m):
        arrivals.append(time.monotonic())
        stamps.append(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec)
    client.node.create_subscription(Image, 'camera/image_raw', on_img, 50)
    client.node.create_subscription(Clock, '/clock', lambda m: clocks.append(
        m.clock.sec * 10**9 + m.clock.nanosec), 50)
    p = procs.python('-m', 'tts_perception.nodes.replay_node', '--ros-args', '-p',
                     f'bag:={bag}', '-p', f'rate:={rate}')
    assert client.wait_for(lambda: p.poll() is not None and len(arrivals) >= 18, 60)
    assert p.returncode == 0, p.stdout.read()
    # headers are the recorded ones; /clock carries the bag's time
    assert stamps == sorted(stamps) and stamps[-1] == 5_000_000_000 + int(19 * PERIOD * 1e9)
    assert clocks and set(stamps) <= set(clocks)
    gaps = np.diff(arrivals)
    assert np.median(gaps) == pytest.approx(PERIOD / rate, rel=0.25)
    span = arrivals[-1] - arrivals[0]
    want = PERIOD / rate * (len(arrivals) - 1)
    assert span == pytest.approx(want, rel=0.2), (span, want)


def test_unsupported_encoding_is_refused_naming_the_topic(procs, tmp_path):
    bag = _bag(tmp_path / 'b16', n=3, encoding='16UC1')
    p = procs.python('-m', 'tts_perception.nodes.replay_node', '--ros-args', '-p',
                     f'bag:={bag}')
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2, out
    assert 'camera/image_raw' in out and '16UC1' in out and 'Traceback' not in out


def test_a_missing_bag_and_a_missing_topic_are_refused(procs, tmp_path):
    p = procs.python('-m', 'tts_perception.nodes.replay_node', '--ros-args', '-p',
                     f'bag:={tmp_path / "none"}')
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2 and 'does not exist' in out, out
    bag = _bag(tmp_path / 'b', n=2)
    p = procs.python('-m', 'tts_perception.nodes.replay_node', '--ros-args', '-p',
                     f'bag:={bag}', '-p', 'topics:=[front/image_raw]')
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2 and 'front/image_raw not in bag' in out, out


def test_a_bag_that_fails_part_way_is_a_failed_replay(procs, tmp_path):
    """A corrupt chunk after the first frames: the replay says so and exits 1, not 'done'."""
    bag = tmp_path / 'corrupt'
    rng = np.random.default_rng(0)
    with BagWriter(bag) as w:
        for i in range(60):
            w.write_image('camera/image_raw', 5_000_000_000 + int(i * PERIOD * 1e9),
                          rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    f = bag / 'corrupt.mcap'
    data = bytearray(f.read_bytes())
    lo, hi = int(len(data) * 0.6), int(len(data) * 0.62)
    data[lo:hi] = b'\xab' * (hi - lo)
    f.write_bytes(bytes(data))
    p = procs.python('-m', 'tts_perception.nodes.replay_node', '--ros-args', '-p',
                     f'bag:={bag}', '-p', 'rate:=10.0', '-p', 'wait_for_subscribers:=0.0')
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 1, out
    assert 'reading bag' in out and 'failed' in out and 'Traceback' not in out, out
