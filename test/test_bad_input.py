"""Bad input at start-up and at run time has a defined outcome: one clear line and a non-zero
exit for a node that cannot start; counted, logged handling for frames whose time goes back."""

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from conftest import ROOT
from tts_perception.common.image_codec import fill_image_msg

pytestmark = pytest.mark.dds
PER = ['-m', 'tts_perception.nodes.perception_node', '--autostart', '--ros-args',
       '--params-file', str(ROOT / 'config' / 'perception.yaml')]


@pytest.mark.parametrize('override,expect', [
    ('deadline_ms:=0.0', 'deadline_ms'),
    ('deadline_ms:=40', 'deadline_ms'),                 # an int for a double
    ('policy:=nonsense', 'policy must be'),
    ('latency_quantile:=0.9', 'latency_quantile must be one of'),
    ('deadlines_ms:=[.inf]', 'deadlines_ms'),
    ('transports:=[mjpeg]', 'transports must be among'),
    ('profile_path:=models', 'is not a file'),
])
def test_a_node_that_cannot_start_says_why_in_one_line_and_exits_2(procs, override, expect):
    p = procs.python(*PER, '-p', override)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 2, out
    assert expect in out, out
    assert 'Traceback' not in out, out


def test_controller_refuses_a_bad_start_parameter(procs):
    p = procs.python('-m', 'tts_perception.nodes.controller_node', '--ros-args', '-p',
                     'watchdog_timeout:=-1.0')
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 2 and 'watchdog_timeout' in out and 'Traceback' not in out, out


def test_time_going_back_resets_statistics_and_frames_keep_flowing(procs, client, ros_env):
    """A bag that loops or a simulation that restarts: /clock and the stamps go back."""
    procs.python(*PER, '-p', 'use_sim_time:=true')
    segs = client.listen('camera/segmentation', Image)
    diags = client.listen('/diagnostics', DiagnosticArray)
    clock = client.node.create_publisher(Clock, '/clock', 10)
    cam = client.node.create_publisher(Image, 'camera/image_raw', 10)
    # the node's clock subscription too: a frame that reaches it before any /clock message
    # finds its sim time at 0 and is (rightly) dropped as from the future
    assert client.wait_for(lambda: client.node.count_subscribers('camera/image_raw') > 0 and
                           client.node.count_subscribers('/clock') > 0, 90)
    frame = fill_image_msg(Image(), np.full((120, 160, 3), 90, np.uint8), 'rgb8')

    def tick(t):
        c = Clock()
        c.clock.sec, c.clock.nanosec = divmod(t, 1_000_000_000)
        clock.publish(c)
        client.spin(0.02)
        return c

    def play(start_s, n):
        for i in range(n):
            c = tick(int((start_s + 0.1 * i) * 1e9))
            frame.header.stamp = c.clock
            cam.publish(frame)
            client.spin(0.08)

    def agg():
        a = [st for d in diags for st in d.status
             if st.name == 'perception_node: /camera/image_raw']
        return {k.key: k.value for k in a[-1].values} if a else {}
    for _ in range(25):                 # the node's sim time reaches the first play's
        tick(int(99.9e9))
    play(100.0, 10)
    assert client.wait_for(lambda: len(segs) >= 8, 10), len(segs)
    n = len(segs)
    play(5.0, 10)                                  # the bag starts over
    assert client.wait_for(lambda: len(segs) >= n + 8, 10), len(segs) - n
    assert client.wait_for(lambda: int(agg().get('time_jumps', 0)) == 1, 5), agg()
    assert int(agg()['stale']) == 0 and int(agg()['future']) == 0, agg()
