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


def test_changes_are_applied_by_the_worker_between_frames():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    node = PerceptionNode(context=ctx, cli_args=[
        '--ros-args', '--params-file', str(ROOT / 'config' / 'perception.yaml')])
    cam = Node('camera', context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(cam)
    try:
        node.trigger_configure()
        node.trigger_activate()
        pipe = node.pipeline
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
        pub = cam.create_publisher(Image, 'camera/image_raw', 10)
        rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
        margins = [1.0, 2.5, 3.0, 1.5, 2.0, 4.0]
        end = time.monotonic() + 60
        for i in range(60):
            msg = fill_image_msg(Image(), rgb, 'rgb8')
            msg.header.stamp = cam.get_clock().now().to_msg()
            pub.publish(msg)
            if i % 10 == 5:                    # set on the executor thread, as the service does
                res = node.set_parameters([Parameter('safety_margin_ms',
                                                     value=margins[i // 10])])
                assert res[0].successful
            t = time.monotonic() + 0.03
            while time.monotonic() < t:
                ex.spin_once(timeout_sec=0.005)
        while time.monotonic() < end and len(calls) < len(margins):
            ex.spin_once(timeout_sec=0.02)
        assert [c[2] for c in calls] == [{'safety_margin_ms': m} for m in margins]
        assert {c[0] for c in calls} == {'inference'}           # the worker thread
        assert not any(c[1] for c in calls)                      # never inside a frame
        assert pipe.sched_config.safety_margin_ms == margins[-1]
        assert node.slots['camera/image_raw'].processed > 0
    finally:
        node.trigger_deactivate()
        ex.shutdown()
        node.destroy_node()
        cam.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_overlay_only_while_subscribed():
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(os.environ['ROS_DOMAIN_ID']))
    node = PerceptionNode(context=ctx, cli_args=[
        '--ros-args', '--params-file', str(ROOT / 'config' / 'perception.yaml'),
        '-p', 'publish_overlay:=true'])
    cam = Node('camera', context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(cam)
    try:
        node.trigger_configure()
        node.trigger_activate()
        seg_pub, ovl_pub = node.pubs['camera/image_raw']
        made = []
        real = ovl_pub.publish
        ovl_pub.publish = lambda m: (made.append(m), real(m))
        pub = cam.create_publisher(Image, 'camera/image_raw', 10)
        rgb = np.random.default_rng(1).integers(0, 255, (240, 320, 3), np.uint8)
        slot = node.slots['camera/image_raw']

        def drive(n):
            for _ in range(n):
                msg = fill_image_msg(Image(), rgb, 'rgb8')
                msg.header.stamp = cam.get_clock().now().to_msg()
                pub.publish(msg)
                t = time.monotonic() + 0.05
                while time.monotonic() < t:
                    ex.spin_once(timeout_sec=0.005)
        drive(10)
        assert slot.processed > 0 and made == []          # nobody listens: not computed
        got = []
        cam.create_subscription(Image, 'camera/segmentation_overlay', got.append, 10)
        end = time.monotonic() + 10
        while ovl_pub.get_subscription_count() == 0 and time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)
        drive(10)
        assert made and made[-1].encoding == 'rgb8' and made[-1].width == 320
    finally:
        node.trigger_deactivate()
        ex.shutdown()
        node.destroy_node()
        cam.destroy_node()
        rclpy.try_shutdown(context=ctx)
