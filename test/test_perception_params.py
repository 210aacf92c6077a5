"""perception_node in this process (private rclpy Context): parameter changes accepted on the
executor thread reach the pipeline only through the inference worker, between frames; the
overlay is computed only while someone subscribes to it."""

import os
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from conftest import ROOT
from tts_perception.common.image_codec import fill_image_msg
from tts_perception.nodes.perception_node import PerceptionNode

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

    def frame(self) -> None:
        msg = fill_image_msg(Image(), self.rgb, 'rgb8')
        msg.header.stamp = self.cam.get_clock().now().to_msg()
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
    real_update, real_batch = pipe.update_scheduler, pipe.process_batch

    def update(**kw):                      # the real method, watched
        calls.append((threading.current_thread().name, in_frame.is_set(), kw))
        return real_update(**kw)

    def batch(reqs):
        in_frame.set()
        try:
            return real_batch(reqs)
        finally:
            in_frame.clear()
    pipe.update_scheduler, pipe.process_batch = update, batch
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
    _, ovl_pub = stack.node.pubs['camera/image_raw']
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
