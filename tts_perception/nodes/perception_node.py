"""perception_node: a lifecycle node wrapping :class:`AdaptivePipeline`.

configure: load model + profile, prepare (build/warm) every operating point, create publishers.
activate: subscribe the camera topics. deactivate: unsubscribe, free backend memory.
cleanup: drop the pipeline.

Per camera (``camera_topics``, relative names, remapped in launch) it publishes, next to the
camera topic: ``segmentation`` (mono8, same header), optionally ``segmentation_overlay``
(rgb8), and one ``perception/status`` (diagnostic_msgs/DiagnosticStatus: the decision record)
per frame; an aggregate goes to ``/diagnostics`` at 1 Hz. Newest frame wins: a frame arriving
while another waits replaces it (counted as dropped); a frame older than its deadline on
arrival is dropped as stale. Inference runs in its own callback group.
"""

from collections import Counter
import threading
import time
from typing import Dict, List, Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import Image

from tts_perception.backends import BACKENDS
from tts_perception.image_codec import image_msg_to_rgb, ImageDecodeError
from tts_perception.nodes.ros_util import (declare_params, diag_array, image_msg, OK, Param,
                                           run_node, stamp_ns, status, WARN)
from tts_perception.pipeline import AdaptivePipeline, PipelineConfig
from tts_perception.scheduler import parse_policy

PARAMS = (
    Param('camera_topics', ['camera/image_raw'], 'Camera image topics (relative; remap in '
          'launch). Outputs go next to each: <ns>/segmentation'),
    Param('deadlines_ms', [0.0], 'Per-camera deadline (ms), same order as camera_topics; '
          '0 or missing = deadline_ms'),
    Param('model_path', 'models/tts_segnet', 'Model directory holding model.yaml'),
    Param('profile_path', 'models/tts_segnet/profile_cpu.json', 'Profile table (JSON)'),
    Param('backend', 'auto', 'auto | onnxruntime | torch | tensorrt'),
    Param('resolutions', ['160x120', '320x240', '640x480'], 'Allowed input resolutions WxH'),
    Param('depths', [1, 2, 3], 'Allowed exit depths'),
    Param('precisions', ['fp32', 'int8'], 'Allowed precisions'),
    Param('policy', 'adaptive', 'adaptive | golden | static:WxH/dN/precision'),
    Param('deadline_ms', 40.0, 'Default per-frame deadline (ms)', 1.0, 10000.0),
    Param('safety_margin_ms', 2.0, 'Budget kept free before the deadline (ms)', 0.0, 1000.0),
    Param('accuracy_tolerance', 0.01, 'Take the cheapest point within this of the best mIoU',
          0.0, 1.0),
    Param('hysteresis', 0.02, 'mIoU gain needed to switch at once', 0.0, 1.0),
    Param('dwell_frames', 4, 'Frames a cheaper proposal must persist before switching', 1, 1000),
    Param('switch_cost_ms', 0.5, 'Predicted extra cost of changing point (ms)', 0.0, 100.0),
    Param('latency_quantile', 'p95', 'Profile quantile used as prior: p50 | p95 | p99'),
    Param('anytime', False, 'Stop early at an exit when the next stage would miss or is not '
          'needed'),
    Param('anytime_confidence', 0.97, 'Exit confidence at which anytime mode stops', 0.0, 1.0),
    Param('threads', 0, 'ONNX Runtime intra-op threads (0 = default)', 0, 64),
    Param('publish_overlay', False, 'Publish a colour overlay for viewing'),
    Param('diagnostics_period', 1.0, 'Aggregate /diagnostics period (s)', 0.1, 60.0),
)
STRUCTURAL = {'camera_topics', 'model_path', 'profile_path', 'backend', 'resolutions', 'depths',
              'precisions', 'threads', 'latency_quantile'}
RUNTIME_SCHED = ('safety_margin_ms', 'accuracy_tolerance', 'hysteresis', 'dwell_frames',
                 'switch_cost_ms')
PALETTE = np.array([[40, 40, 40], [40, 200, 60], [230, 40, 40]], np.uint8)


def parse_resolution(text: str) -> List[int]:
    """'320x240' -> [320, 240]; ValueError with the expected form."""
    try:
        w, h = text.lower().split('x')
        return [int(w), int(h)]
    except ValueError:
        raise ValueError(f'bad resolution {text!r}; expected WxH like 320x240') from None


def output_topic(camera_topic: str, name: str) -> str:
    """Sibling topic of a camera topic: camera/image_raw -> camera/<name>."""
    ns = camera_topic.rsplit('/', 1)[0] if '/' in camera_topic else ''
    return f'{ns}/{name}' if ns else name


class _Slot:
    """Newest-frame-wins holder for one camera."""

    def __init__(self, topic: str, deadline_ms: float):
        self.topic, self.deadline_ms = topic, deadline_ms
        self.msg: Optional[Image] = None
        self.received = self.dropped = self.stale = self.bad = self.processed = self.missed = 0
        self.errors = 0
        self.points: Counter = Counter()
        self.latencies: List[float] = []


class PerceptionNode(LifecycleNode):
    """Lifecycle wrapper; the logic is in AdaptivePipeline."""

    def __init__(self, **kwargs):
        super().__init__('perception_node', **kwargs)
        self.pipeline: Optional[AdaptivePipeline] = None
        self.add_on_set_parameters_callback(self._validate)
        self.p = declare_params(self, PARAMS)
        self.add_post_set_parameters_callback(self._apply)
        self.slots: Dict[str, _Slot] = {}
        self.lock = threading.Lock()
        self.subs = []
        self.pubs: Dict[str, Tuple] = {}
        self.infer_group = MutuallyExclusiveCallbackGroup()
        self.infer_timer = None
        self.diag_timer = None

    # ------------------------------------------------------------ parameters
    def _validate(self, params) -> SetParametersResult:
        for prm in params:
            name, v = prm.name, prm.value
            if name in STRUCTURAL and self.pipeline is not None:
                return SetParametersResult(successful=False, reason=(
                    f'{name} can only change while unconfigured (cleanup, set, configure)'))
            try:
                if name == 'policy':
                    parse_policy(v, self.pipeline.points if self.pipeline else None)
                elif name == 'resolutions':
                    [parse_resolution(r) for r in v]
                elif name == 'backend' and v not in BACKENDS:
                    raise ValueError(f'unknown backend {v}; choose one of {BACKENDS}')
                elif name == 'latency_quantile' and v not in ('p50', 'p95', 'p99'):
                    raise ValueError('latency_quantile must be p50, p95 or p99')
                elif name == 'deadlines_ms' and any(d < 0 for d in v):
                    raise ValueError('deadlines_ms must be >= 0')
                elif name == 'camera_topics' and not v:
                    raise ValueError('camera_topics must list at least one topic')
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply(self, params) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        if self.pipeline is None:
            return
        for prm in params:
            if prm.name == 'policy':
                self.pipeline.set_policy(prm.value)
            elif prm.name in RUNTIME_SCHED:
                self.pipeline.update_scheduler(**{prm.name: prm.value})
            elif prm.name in ('anytime', 'anytime_confidence', 'deadline_ms'):
                setattr(self.pipeline.config, prm.name, prm.value)
            if prm.name in ('deadline_ms', 'deadlines_ms'):
                self._set_deadlines()

    def _config(self) -> PipelineConfig:
        p = self.p
        return PipelineConfig(
            model_path=p['model_path'], profile_path=p['profile_path'], backend=p['backend'],
            resolutions=[parse_resolution(r) for r in p['resolutions']],
            depths=[int(d) for d in p['depths']], precisions=list(p['precisions']),
            policy=p['policy'], deadline_ms=p['deadline_ms'],
            safety_margin_ms=p['safety_margin_ms'], accuracy_tolerance=p['accuracy_tolerance'],
            hysteresis=p['hysteresis'], dwell_frames=p['dwell_frames'],
            switch_cost_ms=p['switch_cost_ms'], latency_quantile=p['latency_quantile'],
            anytime=p['anytime'], anytime_confidence=p['anytime_confidence'],
            threads=p['threads'])

    def _set_deadlines(self) -> None:
        dl = list(self.p['deadlines_ms'])
        for i, slot in enumerate(self.slots.values()):
            slot.deadline_ms = dl[i] if i < len(dl) and dl[i] > 0 else self.p['deadline_ms']

    # ------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load model and profile, warm every point, create publishers."""
        from tts_perception.paths import share_dir
        t = time.monotonic()
        try:
            self.pipeline = AdaptivePipeline(self._config(), base_dir=share_dir())
        except Exception as exc:  # any load error must fail the transition, not the process
            self.get_logger().error(f'configure failed: {exc}')
            self.pipeline = None
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(
            f'configured in {time.monotonic() - t:.1f}s: backend {self.pipeline.backend_name} '
            f'({self.pipeline.backend_reason}), {len(self.pipeline.points)} operating points '
            f'prepared')
        self.slots = {}
        for topic in self.p['camera_topics']:
            self.slots[topic] = _Slot(topic, self.p['deadline_ms'])
            self.pubs[topic] = (
                self.create_lifecycle_publisher(Image, output_topic(topic, 'segmentation'), 10),
                self.create_lifecycle_publisher(Image, output_topic(topic,
                                                                    'segmentation_overlay'), 2))
        self._set_deadlines()
        self.pub_status = self.create_lifecycle_publisher(DiagnosticStatus, 'perception/status',
                                                          10)
        self.pub_diag = self.create_lifecycle_publisher(DiagnosticArray, '/diagnostics', 10)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe to cameras and start the inference loop."""
        if self.pipeline is not None:
            self.pipeline.prepare()   # no-op unless deactivate released the backend
        for topic in self.slots:
            # sensor-data QoS (best effort, keep last 1); reliability/depth overridable with
            # qos_overrides./<topic>.subscription.reliability etc.
            self.subs.append(self.create_subscription(
                Image, topic, lambda m, t=topic: self._on_image(t, m), qos_profile_sensor_data,
                qos_overriding_options=QoSOverridingOptions.with_default_policies()))
        # wall-clock timers: with use_sim_time a ROS-time timer would only fire on /clock ticks
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.infer_timer = self.create_timer(0.002, self._infer, callback_group=self.infer_group,
                                             clock=steady)
        self.diag_timer = self.create_timer(self.p['diagnostics_period'], self._publish_diag,
                                            clock=steady)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe and free backend memory."""
        for s in self.subs:
            self.destroy_subscription(s)
        self.subs = []
        for tm in (self.infer_timer, self.diag_timer):
            if tm is not None:
                self.destroy_timer(tm)
        self.infer_timer = self.diag_timer = None
        with self.lock:
            for slot in self.slots.values():
                slot.msg = None
        if self.pipeline is not None:
            self.pipeline.release()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Drop pipeline and publishers."""
        for seg, ovl in self.pubs.values():
            self.destroy_lifecycle_publisher(seg)
            self.destroy_lifecycle_publisher(ovl)
        self.pubs = {}
        if self.pipeline is not None:
            self.pipeline.release()
        self.pipeline = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Same as cleanup."""
        if self.pipeline is not None:
            self.pipeline.release()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------ data path
    def _age_ms(self, msg: Image) -> float:
        return (self.get_clock().now().nanoseconds - stamp_ns(msg.header.stamp)) / 1e6

    def _on_image(self, topic: str, msg: Image) -> None:
        slot = self.slots[topic]
        with self.lock:
            slot.received += 1
            age = self._age_ms(msg)
            if age > slot.deadline_ms:
                slot.stale += 1
                self.get_logger().warning(
                    f'{topic}: dropping stale frame ({age:.0f} ms old > deadline '
                    f'{slot.deadline_ms} ms); use_sim_time must match the camera clock',
                    throttle_duration_sec=5.0)
                return
            if slot.msg is not None:
                slot.dropped += 1
            slot.msg = msg

    def _infer(self) -> None:
        if self.pipeline is None:
            return
        with self.lock:
            waiting = [(t, s.msg) for t, s in self.slots.items() if s.msg is not None]
            for t, _ in waiting:
                self.slots[t].msg = None
        if not waiting:
            return
        items, msgs = [], []
        now = self.get_clock().now().nanoseconds
        for topic, msg in waiting:
            slot = self.slots[topic]
            if (now - stamp_ns(msg.header.stamp)) / 1e6 > slot.deadline_ms:
                slot.stale += 1
                continue
            try:
                rgb = image_msg_to_rgb(msg)
            except ImageDecodeError as exc:
                slot.bad += 1
                self.get_logger().warning(f'{topic}: dropped frame: {exc}',
                                          throttle_duration_sec=2.0)
                continue
            others = [o.deadline_ms for t, o in self.slots.items() if t != topic]
            # a shared worker: one frame may not block it longer than half the tightest
            # deadline of the other cameras
            cap = 0.5 * min(others) if others else None
            items.append((rgb, stamp_ns(msg.header.stamp), topic, slot.deadline_ms, cap))
            msgs.append(msg)
        if not items:
            return
        try:
            results = self.pipeline.process_batch(items, now)
        except Exception as exc:  # noqa: BLE001 - never let one frame kill the inference loop
            for item in items:
                self.slots[item[2]].errors += 1
            self.get_logger().error(f'inference failed, frames dropped: {exc!r}',
                                    throttle_duration_sec=2.0)
            return
        for (labels, rec), msg, item in zip(results, msgs, items):
            self._publish(rec.camera, msg, item[0], labels, rec)

    def _publish(self, topic: str, msg: Image, rgb: np.ndarray, labels: np.ndarray,
                 rec) -> None:
        slot = self.slots[topic]
        slot.processed += 1
        slot.missed += int(rec.missed)
        slot.points[rec.point] += 1
        slot.latencies.append(rec.total_ms)
        del slot.latencies[:-500]
        seg_pub, ovl_pub = self.pubs[topic]
        seg_pub.publish(image_msg(labels, 'mono8', msg.header))
        if self.p['publish_overlay']:
            ovl = (0.5 * rgb + 0.5 * PALETTE[np.minimum(labels, len(PALETTE) - 1)]).astype(
                np.uint8)
            ovl_pub.publish(image_msg(ovl, 'rgb8', msg.header))
        # the record already carries this camera's topic and the frame's stamp
        self.pub_status.publish(status('perception', topic, WARN if rec.missed else OK,
                                       rec.reason, rec.to_dict()))

    def _publish_diag(self) -> None:
        sts = []
        for topic, s in self.slots.items():
            lat = np.array(s.latencies) if s.latencies else np.zeros(1)
            vals = {'received': s.received, 'processed': s.processed, 'missed': s.missed,
                    'dropped': s.dropped, 'stale': s.stale, 'bad_frames': s.bad,
                    'errors': s.errors, 'deadline_ms': s.deadline_ms,
                    'latency_p50_ms': float(np.median(lat)),
                    'latency_p99_ms': float(np.percentile(lat, 99)),
                    'points': ' '.join(f'{k}:{v}' for k, v in sorted(s.points.items()))}
            level = WARN if s.processed and s.missed / s.processed > 0.05 else OK
            sts.append(status(f'perception_node: {topic}', topic, level,
                              f'{s.processed} frames, {s.missed} misses', vals))
        self.pub_diag.publish(diag_array(self, sts))


def main(args=None) -> None:
    """Run the perception node (unconfigured; drive it with lifecycle transitions, or
    pass ``--autostart`` to configure and activate at once)."""
    import sys
    argv = list(args or sys.argv)
    autostart = '--autostart' in argv
    argv = [a for a in argv if a != '--autostart']

    def start(node: PerceptionNode) -> None:
        if autostart:
            node.trigger_configure()
            node.trigger_activate()
    run_node(PerceptionNode, argv, threads=3, on_start=start)


if __name__ == '__main__':
    main()
