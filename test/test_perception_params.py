"""perception_node in this process (private rclpy Context): parameter changes accepted on the
executor thread reach the pipeline only through the inference worker, between frames; the
overlay is computed only while someone subscribes to it; the frames it processes over DDS are
exactly those the frame gate's replay takes from the same arrivals."""

import os
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import Image

from conftest import ROOT
from tts_perception.common.frame_gate import Arrival, FrameGate, replay_schedule
from tts_perception.common.image_codec import fill_image_msg
from tts_perception.nodes.perception_node import PerceptionNode
from tts_perception.nodes.ros_util import values_of

pytestmark = pytest.mark.dds


class _Stack:
    """An active perception node and a camera node on one executor in this process."""

    def __init__(self, *params: str):
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=int(os.environ['ROS_DOMAIN_ID']))
        args = ['--ros-args', '--params-file', str(ROOT / 'config' / 'perception.yaml')]
        for p in params:
            args += ['-p', p]
        self.node = PerceptionNode(context=self.ctx, cli_args=args)
        self.cam = Node('camera', context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(self.cam)
        self.node.trigger_configure()
        self.node.trigger_activate()
        self.pub = self.cam.create_publisher(Image, 'camera/image_raw', 10)
        self.rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ex.spin_once(timeout_sec=0.005)

    def frame(self, age_ms: float = 0.0) -> None:
        msg = fill_image_msg(Image(), self.rgb, 'rgb8')
        msg.header.stamp = (self.cam.get_clock().now() -
                            Duration(nanoseconds=int(age_ms * 1e6))).to_msg()
        self.pub.publish(msg)

    def close(self) -> None:
        self.node.trigger_deactivate()
        self.ex.shutdown()
        self.node.destroy_node()
        self.cam.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


@pytest.fixture
def stack(request):
    s = _Stack(*getattr(request, 'param', ()))
    yield s
    s.close()


def test_changes_are_applied_by_the_worker_between_frames(stack):
    pipe = stack.node.pipeline
    calls, in_frame = [], threading.Event()
    real_update, real_batch = pipe.update_scheduler, pipe._process_batch

    def update(**kw):                      # the real method, watched
        calls.append((threading.current_thread().name, in_frame.is_set(), kw))
        return real_update(**kw)

    def batch(reqs):
        in_frame.set()
        try:
            return real_batch(reqs)
        finally:
            in_frame.clear()
    pipe.update_scheduler, pipe._process_batch = update, batch
    margins = [1.0, 2.5, 3.0, 1.5, 2.0, 4.0]
    for i in range(60):
        stack.frame()
        if i % 10 == 5:                    # set on the executor thread, as the service does
            res = stack.node.set_parameters([Parameter('safety_margin_ms',
                                                       value=margins[i // 10])])
            assert res[0].successful
        stack.spin(0.03)
    end = time.monotonic() + 60
    while time.monotonic() < end and len(calls) < len(margins):
        stack.spin(0.02)
    assert [c[2] for c in calls] == [{'safety_margin_ms': m} for m in margins]
    assert {c[0] for c in calls} == {'inference'}           # the worker thread
    assert not any(c[1] for c in calls)                      # never inside a frame
    assert pipe.sched_config.safety_margin_ms == margins[-1]
    assert stack.node.slots['camera/image_raw'].processed > 0


@pytest.mark.parametrize('stack', [('publish_overlay:=true',)], indirect=True)
def test_overlay_only_while_subscribed(stack):
    ovl_pub = stack.node.pubs['camera/image_raw'].overlay
    made = []
    real = ovl_pub.publish
    ovl_pub.publish = lambda m: (made.append(m), real(m))
    slot = stack.node.slots['camera/image_raw']
    for _ in range(10):
        stack.frame()
        stack.spin(0.05)
    assert slot.processed > 0 and made == []          # nobody listens: not computed
    stack.cam.create_subscription(Image, 'camera/segmentation_overlay', lambda m: None, 10)
    end = time.monotonic() + 10
    while ovl_pub.get_subscription_count() == 0 and time.monotonic() < end:
        stack.spin(0.02)
    for _ in range(10):
        stack.frame()
        stack.spin(0.05)
    assert made and made[-1].encoding == 'rgb8' and made[-1].width == 320


@pytest.mark.parametrize('stack', [('policy:=golden',), (
    'policy:=adaptive', 'resolutions:=[640x480]', 'precisions:=[fp32]')], indirect=True)
def test_node_processes_exactly_what_the_gate_replay_takes(stack):
    """Frames faster than the node runs them (some already old, some stamped in the future)
    over DDS; the node's published records must be the frames a fresh gate takes when the
    same arrivals are replayed at the worker's recorded take times and holds, with the same
    drops and ages. Under the adaptive policy (its points at 640x480 fp32) frames arrive every
    ~5 ms, faster than any of them finishes, so the worker holds frames back for the next one
    (shrinking tail)."""
    records = []
    stack.cam.create_subscription(
        DiagnosticStatus, 'perception/status', lambda m: records.append(values_of(m)), 100)
    slot = stack.node.slots['camera/image_raw']
    ages = [0.0, 0.0, 30.0, 0.0, 0.0, -700.0, 0.0, 45.0]
    adaptive = stack.node.p['policy'] == 'adaptive'
    room = slot.gate.log.maxlen - 16  # the gate's log keeps every event of the run to replay
    for i in range(600):              # adaptive: until the worker has held a few frames back
        if i >= 120 and (not adaptive or slot.gate.counts.tail >= 3):
            break
        with stack.node.lock:
            if len(slot.gate.log) >= room:
                break
        stack.frame(ages[i % len(ages)])
        stack.spin(0.004)            # the callback runs while the worker is busy
    end = time.monotonic() + 60
    while time.monotonic() < end and (slot.gate.waiting is not None or
                                      len(records) < slot.processed):
        stack.spin(0.02)
    stack.spin(0.2)
    with stack.node.lock:
        log = list(slot.gate.log)
        counts = slot.gate.counts
    assert len(log) < slot.gate.log.maxlen and slot.received == counts.offered > 40  # all
    arrivals = [Arrival(None, s, t, x) for e, s, t, x in log if e == 'offer']
    takes, holds = [], []
    for e, s, t, x in log:
        if e in ('take', 'stale_take'):
            takes.append((e, s, t, x))
            holds.append(None)
        elif e == 'hold':                    # the worker held the frame it just took back
            assert takes[-1][1] == s and takes[-1][2] == t
            holds[-1] = x
    gate = FrameGate(slot.deadline_ms, stack.node.p['future_tolerance_ms'])
    got = replay_schedule(gate, arrivals, [t for _, _, t, _ in takes], holds)
    assert [None if g is None else g.stamp_ns for g in got] == \
        [None if e == 'stale_take' else s for e, s, _, _ in takes]
    assert gate.counts == counts
    assert counts.dropped > 0 and counts.stale > 0 and counts.future > 0   # every rule ran
    if adaptive:
        assert counts.tail > 0 and any(h is not None for h in holds)     # the node held
    # what the node published over DDS: the taken frames it ran, in order, aged from their
    # take on
    taken = [g for g, h in zip(got, holds) if g is not None and h is None]
    assert [int(r['stamp_ns']) for r in records] == [g.stamp_ns for g in taken]
    for r, g in zip(records, taken):
        assert float(r['transport_ms']) == pytest.approx(g.transport_ms, rel=1e-3, abs=1e-3)
        assert float(r['age_ms']) >= g.age_ms * (1 - 1e-3) - 1e-3   # + decoding, never less
