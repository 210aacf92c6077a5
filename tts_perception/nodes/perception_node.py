"""perception_node: a lifecycle node that runs :class:`AdaptivePipeline` on camera streams.

configure: load model and profile, warm every operating point, create publishers. activate:
subscribe the cameras (:mod:`~tts_perception.nodes.camera_qos`) and start the inference worker.
deactivate: unsubscribe, stop the worker, free backend memory. cleanup: drop the pipeline.

Per camera (``camera_topics``; ``transports``: raw ``Image`` or ``CompressedImage`` on
``<topic>/compressed``) it publishes next to the resolved camera topic the model task's
outputs (:mod:`~tts_perception.nodes.task_outputs`: ``segmentation`` mono8 or ``detections``
vision_msgs ``Detection2DArray``, with the image's header; ``label_info``, transient local),
and one ``perception/status`` (DiagnosticStatus: the decision record) per frame;
``/diagnostics`` aggregates per camera.

Invariants: the subscription callback only offers the frame to its camera's
:class:`~tts_perception.common.frame_gate.FrameGate` (newest wins; stale, future and malformed
frames are counted drops) and wakes one worker thread, which decodes and runs the frame step
(:func:`~tts_perception.adaptive.frame_step.run_step`); parameter changes are applied by the
worker between frames, never in the middle of one; a node that receives frames and processes
none, or whose worker hangs or dies, is an ERROR on ``/diagnostics``. Topics, parameters and
why: ``doc/index.md``, ``doc/transport.md``, ``doc/parameters.md``.
"""

from collections import Counter, deque
from dataclasses import fields
import threading
import time
from typing import Any, Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rcl_interfaces.msg import SetParametersResult
from std_msgs.msg import Header

from tts_perception.common.camera_stream import TransportLoss
from tts_perception.common.frame_gate import FrameGate, FUTURE, STALE
from tts_perception.common.health import (camera_level, CameraState, Counts, LOSS_WARN,
                                          worker_problem)
from tts_perception.common.image_codec import (check_compressed_fields, check_image_fields,
                                               compressed_msg_to_rgb, DEFAULT_MAX_PIXELS,
                                               image_msg_to_rgb, ImageDecodeError)
from tts_perception.nodes.ros_util import (declare_params, diag_array, ERROR, EXECUTORS, OK,
                                           Param, ParameterHandler, pop_flag, run_node, stamp_ns,
                                           StartupError, status, WARN)
from tts_perception.adaptive.frame_step import Item, run_step
from tts_perception.adaptive.pipeline import (AdaptivePipeline, AUTO, FrameRequest,
                                              PipelineConfig)
from tts_perception.adaptive.scheduler import parse_policy, SchedulerConfig
from tts_perception.common.settings import check_value, settings_of
from tts_perception.inference.points import parse_resolution
from tts_perception.nodes.camera_qos import CameraLink, CameraQos, MATCHED
from tts_perception.nodes.dds import profile_path
from tts_perception.nodes.task_outputs import outputs_for

TRANSPORTS = ('raw', 'compressed')
CAMERA_PARAMS = (
    Param('camera_topics', ['camera/image_raw'], 'Camera image topics (relative; remap in '
          'launch). Outputs go next to each resolved topic: <camera ns>/segmentation'),
    Param('transports', ['raw'], 'Per camera, same order as camera_topics: raw '
          '(sensor_msgs/Image on the topic) or compressed (sensor_msgs/CompressedImage on '
          '<topic>/compressed); missing entries = raw'),
    Param('deadlines_ms', [0.0], 'Per-camera deadline (ms), same order as camera_topics; '
          '0 or missing = deadline_ms'),
)
NODE_PARAMS = (
    Param('future_tolerance_ms', 500.0, 'Frames stamped further than this in the future are '
          'dropped (counted as future); nearer ones count as age 0', 0.0, 1e6),
    Param('max_image_pixels', DEFAULT_MAX_PIXELS, 'Frames with more pixels than this (raw: '
          'by the header; compressed: by the png/jpeg header, before decoding) are dropped '
          'and counted as bad_frames', 1, 1 << 30),
    Param('publish_overlay', False, 'Publish a colour overlay for viewing (computed only while '
          'someone subscribes to it)'),
    Param('diagnostics_period', 1.0, 'Aggregate /diagnostics period (s)', 0.1, 60.0),
    Param('worker_timeout', 10.0, 'The inference worker on one batch of frames longer than '
          'this is an ERROR on /diagnostics (s)', 0.1, 3600.0),
)
PIPELINE_PARAMS = tuple(settings_of(PipelineConfig))
PARAMS = CAMERA_PARAMS + PIPELINE_PARAMS + NODE_PARAMS
BY_NAME = {p.name: p for p in PARAMS}
STRUCTURAL = {'camera_topics', 'transports', 'model_path', 'profile_path', 'backend',
              'resolutions', 'depths', 'precisions', 'threads', 'latency_quantile'}
SCHEDULER = {f.name for f in fields(SchedulerConfig)}
TIME_JUMP_NS = 1_000_000_000     # a stamp this far behind the last one: time went back
LEVELS = {'OK': OK, 'WARN': WARN, 'ERROR': ERROR}


class _Slot:
    """One camera: its frame gate (newest wins, stale and future drops) and counters."""

    def __init__(self, topic: str, resolved: str, transport: str, deadline_ms: float,
                 future_tolerance_ms: float):
        self.topic, self.resolved, self.transport = topic, resolved, transport
        self.gate = FrameGate(deadline_ms, future_tolerance_ms)
        self.loss = TransportLoss()
        self.link: Optional[CameraLink] = None       # its subscription (camera_qos)
        self.received = self.bad = self.processed = 0
        self.missed = self.errors = self.time_jumps = 0
        self.last_stamp: Optional[int] = None
        self.points: Counter = Counter()
        self.latencies: List[float] = []
        self.history: deque = deque(maxlen=3)    # Counts at the last diagnostics periods

    def counts(self, t: float) -> Counts:
        """The counters now, for :mod:`~tts_perception.common.health`."""
        c = self.gate.counts
        return Counts(t, self.received, self.processed, c.future, c.stale, self.errors,
                      self.bad, c.dropped)

    @property
    def deadline_ms(self) -> float:
        """The camera's deadline (the gate's: one value)."""
        return self.gate.deadline_ms


class PerceptionNode(LifecycleNode):
    """Lifecycle wrapper; the logic is in AdaptivePipeline."""

    def __init__(self, **kwargs):
        # what destroy_node needs exists before anything can fail (rclpy destroys a node
        # whose constructor raised when the context shuts down)
        self._wake = threading.Event()
        self._free_ms = 0.0      # monotonic ms at which the worker last finished its frames
        self._stop = threading.Event()
        self._worker: Optional[threading.Thread] = None
        self._busy_since: Optional[float] = None   # monotonic s the current batch began
        self.worker_restarts = 0
        self.lock = threading.Lock()
        self._pending: list = []              # accepted parameter changes for the worker
        super().__init__('perception_node', **kwargs)
        self.pipeline: Optional[AdaptivePipeline] = None
        self._param_handler = ParameterHandler(self, self._validate)
        self.p = declare_params(self, PARAMS)
        self._param_handler.apply_with(self._apply)
        self.slots: Dict[str, _Slot] = {}
        self.pubs: Dict[str, Any] = {}      # camera topic -> its task_outputs publishers
        self.pub_status = self.pub_diag = None
        self.diag_timer = None
        self._reset_cameras: set = set()      # cameras whose time jumped back
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.qos = CameraQos(self, self._on_image, self._on_lost, self.steady)

    # ------------------------------------------------------------ parameters
    def _validate(self, params) -> SetParametersResult:
        for prm in params:
            name, v = prm.name, prm.value
            if name in STRUCTURAL and self.pipeline is not None:
                return SetParametersResult(successful=False, reason=(
                    f'{name} can only change while unconfigured (cleanup, set, configure)'))
            try:
                if name in BY_NAME:
                    check_value(BY_NAME[name], v)
                if name == 'policy':
                    parse_policy(v, self.pipeline.points if self.pipeline else None)
                elif name == 'resolutions':
                    [parse_resolution(r) for r in v if r != AUTO]
                elif name == 'deadlines_ms' and any(not (0 <= d < float('inf')) for d in v):
                    raise ValueError('deadlines_ms must be finite and >= 0')
                elif name == 'camera_topics' and not v:
                    raise ValueError('camera_topics must list at least one topic')
                elif name == 'transports' and any(t not in TRANSPORTS for t in v):
                    raise ValueError(f'transports must be among {TRANSPORTS}, got {list(v)}')
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _apply(self, params) -> None:
        """Executor thread: queue accepted changes for the worker (applied between frames),
        or apply them now while no worker runs."""
        with self.lock:
            self._pending.extend(params)
        if self._worker is None:
            self._apply_pending()
        else:
            self._wake.set()

    def _apply_pending(self) -> None:
        """Apply the queued parameter changes (worker thread between frames, or no worker)."""
        with self.lock:
            params, self._pending = self._pending, []
        if not params:
            return
        for prm in params:
            self.p[prm.name] = prm.value
        if self.pipeline is None:
            return
        for prm in params:
            if prm.name in SCHEDULER:
                self.pipeline.update_scheduler(**{prm.name: prm.value})
            elif prm.name in ('anytime', 'anytime_confidence'):
                self.pipeline.set_anytime(self.p['anytime'], self.p['anytime_confidence'])
        if any(prm.name in ('deadline_ms', 'deadlines_ms', 'future_tolerance_ms')
               for prm in params):
            with self.lock:             # the executor thread's gate offers read them
                self._set_deadlines()

    def _config(self) -> PipelineConfig:
        return PipelineConfig.from_dict({p.name: self.p[p.name] for p in PIPELINE_PARAMS})

    def _set_deadlines(self) -> None:
        dl = list(self.p['deadlines_ms'])
        for i, slot in enumerate(self.slots.values()):
            slot.gate.deadline_ms = dl[i] if i < len(dl) and dl[i] > 0 else \
                self.p['deadline_ms']
            slot.gate.future_tolerance_ms = self.p['future_tolerance_ms']

    # ------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load model and profile, warm every point, create publishers."""
        from tts_perception.common.paths import share_dir
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
            f'prepared' + (f'; batching off: the model has a fixed batch of '
                           f'{self.pipeline.model.fixed_batch}'
                           if self.pipeline.model.fixed_batch else ''))
        self.slots = {}
        self.qos.clear()
        transports = list(self.p['transports'])
        for i, topic in enumerate(self.p['camera_topics']):
            resolved = self.resolve_topic_name(topic)
            kind = transports[i] if i < len(transports) else 'raw'
            slot = self.slots[topic] = _Slot(topic, resolved, kind, self.p['deadline_ms'],
                                             self.p['future_tolerance_ms'])
            try:
                slot.link = self.qos.add(topic, resolved, kind)
            except StartupError as exc:
                self.get_logger().error(f'configure failed: {exc}')
                self.pipeline = None
                return TransitionCallbackReturn.FAILURE
            self.pubs[topic] = outputs_for(self, resolved, self.pipeline.task)
        self._set_deadlines()
        self.pub_status = self.create_lifecycle_publisher(DiagnosticStatus, 'perception/status',
                                                          10)
        self.pub_diag = self.create_lifecycle_publisher(DiagnosticArray, '/diagnostics', 10)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe to the cameras and start the inference worker."""
        if self.pipeline is not None:
            self.pipeline.prepare()   # no-op unless deactivate released the backend
        self.qos.subscribe_all()
        # steady-clock timer: with use_sim_time a ROS-time timer would fire only on /clock
        self.diag_timer = self.create_timer(self.p['diagnostics_period'], self._publish_diag,
                                            clock=self.steady)
        self._stop.clear()
        self._start_worker()
        self.get_logger().info('active: listening on ' + ', '.join(
            f'{s.resolved} ({s.transport}, {s.link.reliability.name.lower()})'
            for s in self.slots.values()))
        done = super().on_activate(state)    # activates the publishers
        header = Header(stamp=self.get_clock().now().to_msg())
        for pubs in self.pubs.values() if self.pipeline is not None else ():
            pubs.publish_label_info(header)
        return done

    def _start_worker(self) -> None:
        self._busy_since = None
        self._worker = threading.Thread(target=self._work_logged, name='inference',
                                        daemon=True)
        self._worker.start()

    def _work_logged(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - said on /diagnostics, restarted there
            self.get_logger().error(f'inference worker died: {exc!r}')

    def _stop_worker(self) -> None:
        """Stop the inference worker and wait for the frame in progress (if any)."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
        self._worker = None
        self._apply_pending()           # changes accepted while it stopped

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe, stop the worker and free backend memory."""
        self.qos.unsubscribe_all()
        self._stop_worker()
        if self.diag_timer is not None:
            self.destroy_timer(self.diag_timer)
        self.diag_timer = None
        with self.lock:
            for slot in self.slots.values():
                slot.gate.waiting = None
        if self.pipeline is not None:
            self.pipeline.release()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Drop the pipeline and every publisher."""
        for pubs in self.pubs.values():
            pubs.destroy()
        self.pubs = {}
        for pub in (self.pub_status, self.pub_diag):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        self.pub_status = self.pub_diag = None
        if self.pipeline is not None:
            self.pipeline.release()
        self.pipeline = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Stop the worker and free backend memory (publishers go with the node)."""
        self._stop_worker()
        if self.pipeline is not None:
            self.pipeline.release()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self):
        """Stop the worker before the node's handles go away."""
        self._stop_worker()
        return super().destroy_node()

    def _on_lost(self, topic: str, count: int) -> None:
        with self.lock:
            self.slots[topic].loss.reported(count, time.monotonic())

    # ------------------------------------------------------------ data path
    def _on_image(self, topic: str, msg) -> None:
        """Executor thread: offer the frame to its camera's gate (newest wins), wake the
        worker. Nothing heavy here: a malformed frame is refused by its header and sizes
        (no pixel read) so that it never displaces a good frame waiting in the gate."""
        slot = self.slots[topic]
        try:
            (check_compressed_fields if slot.transport == 'compressed'
             else check_image_fields)(msg, self.p['max_image_pixels'])
        except ImageDecodeError as exc:
            with self.lock:
                slot.received += 1
                slot.bad += 1
            self.get_logger().warning(f'{slot.topic}: dropped frame: {exc}',
                                      throttle_duration_sec=2.0)
            return
        stamp = stamp_ns(msg.header.stamp)
        transport = (self.get_clock().now().nanoseconds - stamp) / 1e6
        with self.lock:
            arrival = time.monotonic()      # under the lock: the gate's order is the real one
            slot.received += 1
            if slot.last_stamp is not None and stamp < slot.last_stamp - TIME_JUMP_NS:
                self._time_jump(slot, stamp)
            slot.last_stamp = stamp
            slot.loss.arrived(stamp, arrival)
            verdict = slot.gate.offer(msg, stamp, arrival * 1e3, transport)
        if verdict == FUTURE:
            self.get_logger().warning(
                f'{topic}: dropping frame stamped {-transport:.0f} ms in the future (> '
                f'future_tolerance_ms); the camera clock and this node\'s clock disagree '
                f'(use_sim_time?)', throttle_duration_sec=5.0)
        elif verdict == STALE:
            self.get_logger().warning(
                f'{topic}: dropping stale frame ({transport:.0f} ms old on arrival > '
                f'deadline {slot.deadline_ms} ms); use_sim_time must match the camera '
                f'clock', throttle_duration_sec=5.0)
        else:
            self._wake.set()

    def _time_jump(self, slot: _Slot, stamp: int) -> None:
        """The camera's time went back (a bag looped, a simulation restarted): start its
        statistics and scheduling history afresh instead of mixing two timelines."""
        slot.time_jumps += 1
        slot.latencies.clear()
        slot.gate.restart_stream()
        slot.loss = TransportLoss()
        self._reset_cameras.add(slot.resolved)
        self.get_logger().warning(
            f'{slot.topic}: camera time jumped back by '
            f'{(slot.last_stamp - stamp) / 1e9:.1f} s (bag loop or sim reset); statistics '
            f'reset', throttle_duration_sec=5.0)

    def _work(self) -> None:
        """Worker thread: sleep until a frame arrives (or a held-back frame's hold ends), then
        process every waiting camera."""
        while True:
            self._wake.wait(self._hold_timeout())
            if self._stop.is_set():
                return
            self._wake.clear()   # before taking: a frame arriving meanwhile wakes us again
            self._apply_pending()    # parameter changes, between frames
            with self.lock:
                now_ms = time.monotonic() * 1e3
                waiting = [(s, s.gate.take(now_ms)) for s in self.slots.values()
                           if s.gate.waiting is not None]
                waiting = [(s, t) for s, t in waiting if t is not None]
            if waiting and self.pipeline is not None:
                with self.lock:
                    resets, self._reset_cameras = self._reset_cameras, set()
                for cam in resets:
                    self.pipeline.reset_camera(cam)
                self._busy_since = time.monotonic()
                try:
                    self._process(waiting)
                except Exception as exc:  # noqa: BLE001 - the worker must survive any frame
                    with self.lock:
                        for s, _ in waiting:
                            s.errors += 1
                    self.get_logger().error(f'inference failed, frames dropped: {exc!r}',
                                            throttle_duration_sec=2.0)
                self._free_ms = time.monotonic() * 1e3
                self._busy_since = None

    def _hold_timeout(self) -> Optional[float]:
        """Seconds until the earliest held-back frame may be taken (None: none is held)."""
        with self.lock:
            held = [s.gate.held_until_ms for s in self.slots.values()
                    if s.gate.held_until_ms is not None]
        return None if not held else max(0.0, (min(held) - time.monotonic() * 1e3) / 1e3)

    def _process(self, waiting) -> None:
        """Decode every waiting frame and run the frame step on them (hold, process, publish,
        probe while no frame waits)."""
        t_take = time.monotonic()
        items = []
        for slot, taken in waiting:
            try:
                rgb = (compressed_msg_to_rgb if slot.transport == 'compressed'
                       else image_msg_to_rgb)(taken.item, self.p['max_image_pixels'])
            except ImageDecodeError as exc:
                with self.lock:
                    slot.bad += 1
                self.get_logger().warning(f'{slot.topic}: dropped frame: {exc}',
                                          throttle_duration_sec=2.0)
                continue
            age = taken.age_ms + (time.monotonic() - t_take) * 1e3     # decoding counts
            req = FrameRequest(rgb, slot.resolved, slot.deadline_ms, taken.stamp_ns,
                               transport_ms=taken.transport_ms, age_ms=age,
                               shared_deadlines_ms=tuple(o.deadline_ms for o in self.slots.values()
                                                         if o is not slot),
                               period_ms=slot.gate.period_ms)
            # only what it waited for the busy worker is avoided by waiting for the next one
            busy = max(0.0, min(taken.wait_ms, self._free_ms - taken.arrival_ms))
            items.append(Item(slot.gate, taken, req, busy, source=slot))
        run_step(self.pipeline, items,
                 publish=lambda st: self._publish(st.item.source, st.item.taken.item,
                                                  st.item.req.rgb, st.output, st.rec),
                 may_probe=self._may_probe, gate_lock=self.lock)

    def _may_probe(self) -> bool:
        """Probes run only while no frame waits and the worker is not stopping."""
        with self.lock:
            busy = any(s.gate.waiting is not None for s in self.slots.values())
        return not busy and not self._stop.is_set()

    def _publish(self, slot: _Slot, msg, rgb: np.ndarray, output: Any, rec) -> None:
        self.pubs[slot.topic].publish(output, rgb, msg.header, self.p['publish_overlay'])
        # the record already carries this camera's resolved topic and the frame's stamp
        self.pub_status.publish(status('perception', slot.resolved, WARN if rec.missed else OK,
                                       rec.reason, rec.to_dict()))
        with self.lock:
            slot.processed += 1
            slot.missed += int(rec.missed)
            slot.points[rec.point] += 1
            slot.latencies.append(rec.total_ms)
            del slot.latencies[:-500]

    def _publish_diag(self) -> None:
        if not MATCHED:                 # Humble: no matched event, look at the publishers here
            self.qos.recheck()
        now = time.monotonic()
        worker = self._worker_check(now)
        sts = []
        for s in self.slots.values():
            vals, lost_share = self._camera_values(s, now)
            level, msg = self._camera_level(s, vals, lost_share, now)
            if worker is not None:
                level, msg = ERROR, worker
            vals['worker_restarts'] = self.worker_restarts
            sts.append(status(f'perception_node: {s.resolved}', s.resolved, level, msg, vals))
        self.pub_diag.publish(diag_array(self, sts))

    def _worker_check(self, now: float) -> Optional[str]:
        """What is wrong with the inference worker, if anything; a dead one is restarted
        (its last frames are lost, the node goes on)."""
        worker, since = self._worker, self._busy_since
        problem = worker_problem(worker is not None and not self._stop.is_set(),
                                 worker is not None and worker.is_alive(),
                                 None if since is None else now - since,
                                 self.p['worker_timeout'])
        if problem is not None:
            self.get_logger().error(problem, throttle_duration_sec=5.0)
            if worker is not None and not worker.is_alive():
                self.worker_restarts += 1
                self._start_worker()
        return problem

    def _camera_values(self, s: _Slot, now: float):
        """A camera's key-values for /diagnostics, and the share of frames lost lately."""
        with self.lock:
            lost_share = s.loss.recent_fraction(now)
            period = s.gate.period.period_s
            lat = np.array(s.latencies) if s.latencies else np.zeros(1)
            vals = {'received': s.received, 'processed': s.processed, 'missed': s.missed,
                    'dropped': s.gate.counts.dropped, 'stale': s.gate.counts.stale,
                    'future': s.gate.counts.future, 'tail': s.gate.counts.tail,
                    'time_jumps': s.time_jumps,
                    'waiting': int(s.gate.waiting is not None),
                    'bad_frames': s.bad, 'errors': s.errors, 'deadline_ms': s.deadline_ms,
                    'transport': s.transport,
                    'reliability': s.link.reliability.name.lower()
                    if s.link is not None and s.link.reliability else '',
                    'lost_in_transport': s.loss.lost,
                    'lost_in_transport_pct': 100.0 * lost_share,
                    'frame_period_ms': 1e3 * period if period else 0.0,
                    'latency_p50_ms': float(np.median(lat)),
                    'latency_p99_ms': float(np.percentile(lat, 99)),
                    'points': ' '.join(f'{k}:{v}' for k, v in sorted(s.points.items()))}
            s.history.append(s.counts(now))
        vals['probes'], vals['probe_ms'] = self.pipeline.probe_stats(s.resolved) \
            if self.pipeline is not None else (0, 0.0)
        return vals, lost_share

    def _camera_level(self, s: _Slot, vals: dict, lost_share: float, now: float):
        """(level, message) of one camera (:func:`~tts_perception.common.health.camera_level`);
        an ERROR and transport losses are logged too."""
        fix = (f'({vals["reliability"]} subscription): start the camera driver with the '
               f'profile {profile_path()} in FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2.x: '
               f'Jazzy, Humble) or FASTDDS_DEFAULT_PROFILES_FILE (Fast DDS 3: Kilted), or make '
               f'its publisher reliable')
        name, msg = camera_level(CameraState(now, s.gate.period.last, s.gate.period.period_s,
                                             tuple(s.history), lost_share, s.processed,
                                             s.missed), fix)
        if name == 'ERROR':
            self.get_logger().error(f'{s.resolved}: {msg}', throttle_duration_sec=10.0)
        elif lost_share > LOSS_WARN:
            self.get_logger().warning(f'{s.resolved}: {msg}', throttle_duration_sec=10.0)
        return LEVELS[name], msg


def main(args=None) -> int:
    """Run the perception node.

    Unconfigured by default (drive it with lifecycle transitions); ``--autostart`` configures
    and activates at once, as the launch files do, and a failed configure then ends the
    process with exit code 2. ``--executor auto|single|multi|events`` picks the rclpy executor
    (auto: rclpy's events executor where it exists, else single-threaded).
    """
    import sys
    argv = list(args if args is not None else sys.argv)
    autostart = '--autostart' in argv
    argv = [a for a in argv if a != '--autostart']
    executor = pop_flag(argv, '--executor', 'auto')
    if executor not in EXECUTORS:
        sys.stderr.write(f'--executor must be one of {EXECUTORS}\n')
        return 2

    def start(node: PerceptionNode) -> None:
        if not autostart:
            return
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise StartupError('perception_node: configure failed (the reason is logged '
                               'above); exiting')
        node.trigger_activate()
    return run_node(PerceptionNode, argv, executor=executor, on_start=start)


if __name__ == '__main__':
    raise SystemExit(main())
