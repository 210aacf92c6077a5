"""controller_node: adapts speed and gains to perception latency/quality; fails safe.

Subscribes ``cmd_vel_in`` (nominal Twist from a planner/teleop), ``perception/status``
(DiagnosticStatus decision records) and, next to the camera, ``segmentation`` (mono8) or a
detector's ``detections`` (vision_msgs Detection2DArray, read through the size in
``camera_info``: every box is an obstacle); publishes ``cmd_vel`` every
``control_period`` and its state on ``/diagnostics``. The law and the checks of every input are
in :mod:`tts_perception.control.control_law`; this node converts messages, counts what it
refuses and says why on ``/diagnostics``. On every exit path it publishes a zero command and
waits (bounded) until the subscribers acknowledge it. Optionally pushes the computed speed
limit into another node's parameter through the standard SetParameters service (e.g. a Nav2
controller's ``FollowPath.max_vel_x``).
"""

from collections import Counter
import math
import time
from typing import Dict

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection2DArray

from tts_perception.control.control_law import (check_boxes, check_params, ControlParams,
                                                parse_record, RecordRefused, SpeedGovernor)
from tts_perception.inference.detection import bbox_corners
from tts_perception.common.image_codec import (DEFAULT_MAX_PIXELS, image_msg_to_array,
                                               ImageDecodeError)
from tts_perception.nodes.ros_util import (declare_params, diag_array, ERROR, OK, output_topic,
                                           Param, ParameterHandler, run_node, StartupError,
                                           status, values_of, WARN)
from tts_perception.common.settings import check_value, settings_of

PARAMS = tuple(settings_of(ControlParams)) + (
    Param('camera', '', 'Camera topic whose perception to follow: its perception/status '
          'records and the segmentation or detections next to it (<camera ns>/segmentation, '
          '<camera ns>/detections with <camera ns>/camera_info). "" = the one camera that '
          'publishes; records from several cameras are then refused (set it)',
          read_only=True),
    Param('max_image_pixels', DEFAULT_MAX_PIXELS, 'Segmentations with more pixels than this '
          'are dropped (counted) before they are read', 1, 1 << 30),
    Param('push_speed_limit_to', '', 'Node name whose parameter receives the speed limit '
          '("" = off)'),
    Param('push_speed_limit_param', 'FollowPath.max_vel_x', 'Parameter name to push'),
    Param('push_period', 1.0, 'Seconds between speed-limit pushes', 0.1, 60.0),
    Param('diagnostics_period', 1.0, 'State on /diagnostics every this many seconds',
          0.05, 60.0),
)
BY_NAME = {p.name: p for p in PARAMS}
ACK_TIMEOUT_S = 2.0       # exit: how long to wait for the subscribers to acknowledge the zero
ACK_RETRY_S = 0.05        # ... sending it again this often


class ControllerNode(Node):
    """Wires topics and timers to :class:`SpeedGovernor`."""

    def __init__(self, **kwargs):
        super().__init__('controller_node', **kwargs)
        self._param_handler = ParameterHandler(self, self._validate)
        self.p = declare_params(self, PARAMS)
        problems = check_params(self._law_params())
        if problems:
            raise StartupError('controller_node: ' + '; '.join(problems))
        self.gov = SpeedGovernor(self._law_params())
        self._param_handler.apply_with(self._apply)
        self.pub = self.create_publisher(Twist, 'cmd_vel', 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(Twist, 'cmd_vel_in', self._on_cmd, 10)
        self.create_subscription(DiagnosticStatus, 'perception/status', self._on_status, 10)
        self.camera = self.resolve_topic_name(self.p['camera']) if self.p['camera'] else ''
        self.create_subscription(Image, self._beside_camera('segmentation'), self._on_seg,
                                 qos_profile_sensor_data)
        self.create_subscription(Detection2DArray, self._beside_camera('detections'),
                                 self._on_detections, qos_profile_sensor_data)
        self.create_subscription(CameraInfo, self._beside_camera('camera_info'),
                                 self._on_camera_info, qos_profile_sensor_data)
        self.image_hw = None            # the camera's image size, from camera_info
        # the watchdog runs on the steady clock: if the sim (or /clock) dies, it still fires
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(self.p['control_period'], self._step, clock=self.steady)
        self.diag_timer = self.create_timer(self.p['diagnostics_period'], self._publish_diag,
                                            clock=self.steady)
        self.param_client = None
        self._last_push = -1e9
        self.stops = 0
        self._was_stopped = True
        self.decel_after_s = self.zero_after_s = -1.0   # last fail-safe stop, from the last
        #                                                 fresh perception (steady clock)
        self.refused: Counter = Counter()   # records, commands and segmentations not used
        self.last_refusal = ''
        self._cameras: Dict[str, float] = {}    # hardware id -> when its last record came

    def _beside_camera(self, name: str) -> str:
        return output_topic(self.camera, name) if self.camera else name

    def _law_params(self) -> ControlParams:
        return ControlParams(**{k: self.p[k] for k in ControlParams.__dataclass_fields__})

    def _validate(self, params) -> SetParametersResult:
        """The rules of the start, for every change: each value's range, then the whole set
        (during declaration the set is checked once complete, in ``__init__``)."""
        try:
            for prm in params:
                if prm.name in BY_NAME:
                    check_value(BY_NAME[prm.name], prm.value)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if not hasattr(self, 'gov'):
            return SetParametersResult(successful=True)
        merged = dict(self.p, **{prm.name: prm.value for prm in params})
        problems = check_params(ControlParams(
            **{k: merged[k] for k in ControlParams.__dataclass_fields__}))
        return SetParametersResult(successful=not problems, reason='; '.join(problems))

    def _apply(self, params) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        self.gov.set_params(self._law_params())
        names = {prm.name for prm in params}
        if 'control_period' in names:
            self.timer.cancel()
            self.timer = self.create_timer(self.p['control_period'], self._step,
                                           clock=self.steady)
        if 'diagnostics_period' in names:
            self.diag_timer.cancel()
            self.diag_timer = self.create_timer(self.p['diagnostics_period'],
                                                self._publish_diag, clock=self.steady)

    def _now(self) -> float:
        return self.steady.now().nanoseconds / 1e9

    def _refuse(self, kind: str, why: str) -> None:
        self.refused[kind] += 1
        self.last_refusal = f'{kind}: {why}'
        self.get_logger().warning(f'refused {kind}: {why}', throttle_duration_sec=2.0)

    def _on_cmd(self, msg: Twist) -> None:
        if not (math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z)):
            self._refuse('cmd_non_finite', 'non-finite cmd_vel_in: treated as stop')
        self.gov.on_command(self._now(), msg.linear.x, msg.angular.z)

    def _on_status(self, msg: DiagnosticStatus) -> None:
        if self.camera and msg.hardware_id != self.camera:
            return
        now = self._now()
        if not self.camera and self._several_cameras(msg.hardware_id, now):
            self._refuse('several_cameras', f'records from {sorted(self._cameras)}: set the '
                         f'camera parameter to the one to follow')
            return
        try:
            per = parse_record(values_of(msg), now, self.get_clock().now().nanoseconds / 1e9,
                               self.gov.p)
        except RecordRefused as exc:
            self._refuse(f'records_{exc.kind}', str(exc))
            return
        self.gov.on_perception(per)

    def _several_cameras(self, camera: str, now: float) -> bool:
        """Whether records of more than one camera came recently (``camera`` ""): then the
        robot cannot tell which camera's free distance it is driving on."""
        window = max(2.0, 4 * self.p['watchdog_timeout'])
        self._cameras[camera] = now
        self._cameras = {c: t for c, t in self._cameras.items() if now - t <= window}
        return len(self._cameras) > 1

    def _on_seg(self, msg: Image) -> None:
        try:
            labels = image_msg_to_array(msg, self.p['max_image_pixels'])
        except ImageDecodeError as exc:
            self._refuse('segmentations', str(exc))
            return
        if labels.ndim != 2:
            self._refuse('segmentations', f'{msg.encoding} is not a label image (mono8)')
            return
        self.gov.observe_segmentation(labels)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not 0 < msg.height <= 100_000 or not 0 < msg.width <= 100_000:
            self._refuse('camera_info', f'image size {msg.width}x{msg.height}')
            return
        self.image_hw = (int(msg.height), int(msg.width))

    def _on_detections(self, msg: Detection2DArray) -> None:
        if self.image_hw is None:
            self._refuse('detections', 'no camera_info yet: box pixels have no geometry')
            return
        boxes = np.array([bbox_corners(d) for d in msg.detections],
                         np.float64).reshape(-1, 4)
        with np.errstate(all='ignore'):
            why = check_boxes(boxes, self.image_hw)
        if why:
            self._refuse('detections', why)
            return
        self.gov.observe_boxes(boxes, self.image_hw)

    def _step(self) -> None:
        now = self._now()
        v, w = self.gov.step(now)
        t = Twist()
        t.linear.x, t.angular.z = v, w
        self.pub.publish(t)
        stopped = not self.gov.fresh(now)
        last = self.gov.last.stamp if self.gov.last is not None else None
        if stopped and not self._was_stopped:
            self.stops += 1
            self.decel_after_s, self.zero_after_s = now - last, -1.0
            self.get_logger().warning(f'fail-safe stop: {self.gov.reason}')
        if stopped and last is not None and v == 0.0 and self.zero_after_s < 0:
            self.zero_after_s = now - last
        self._was_stopped = stopped
        self._maybe_push()

    def _maybe_push(self) -> None:
        target = self.p['push_speed_limit_to']
        if not target or self._now() - self._last_push < self.p['push_period']:
            return
        if self.param_client is None:
            self.param_client = self.create_client(SetParameters,
                                                   f'{target.rstrip("/")}/set_parameters')
        if not self.param_client.service_is_ready():
            return
        self._last_push = self._now()
        req = SetParameters.Request()
        req.parameters = [Parameter(self.p['push_speed_limit_param'],
                                    value=float(self.gov.v_limit)).to_parameter_msg()]
        self.param_client.call_async(req)

    def _publish_diag(self) -> None:
        g = self.gov
        now = self._now()
        fresh = g.fresh(now)
        level = OK if fresh and g.reason == 'ok' else (WARN if fresh else ERROR)
        message = g.reason if fresh or not self.last_refusal else \
            f'{g.reason}; last refused: {self.last_refusal}'
        vals = {'speed_limit': g.v_limit, 'cmd_speed': g.v_cmd, 'cmd_yaw_rate': g.w_cmd,
                'latency_quantile_ms': 1e3 * g.latency_quantile(),
                'perception_rate_hz': g.rate(),
                'free_distance': g.free_distance if g.free_distance is not None else -1.0,
                'effective_distance': g.effective_distance(), 'slowing': float(g.slowing),
                'command_fresh': int(g.command_fresh(now)),
                'fail_safe_stops': self.stops, 'non_finite_results': g.non_finite,
                'last_stop_decel_after_s': self.decel_after_s,
                'last_stop_zero_after_s': self.zero_after_s}
        vals.update({f'refused_{k}': n for k, n in sorted(self.refused.items())})
        self.pub_diag.publish(diag_array(self, [status('controller_node', 'controller', level,
                                                       message, vals)]))


def stop_robot(node: ControllerNode) -> None:
    """Exit path: publish an explicit zero command while the context is still valid, again
    every ``ACK_RETRY_S`` until every reliable subscriber has acknowledged it (a new sample
    brings the writer's heartbeat, so the acknowledgement comes in a few tenths of a second
    instead of a heartbeat period), for at most ``ACK_TIMEOUT_S``: the zero is not lost with
    the process's writer."""
    node.timer.cancel()
    end = time.monotonic() + ACK_TIMEOUT_S
    while True:
        node.pub.publish(Twist())
        if node.pub.wait_for_all_acked(Duration(seconds=ACK_RETRY_S)):
            return
        if time.monotonic() >= end:
            node.get_logger().warning('the zero command was not acknowledged by every '
                                      f'subscriber within {ACK_TIMEOUT_S} s')
            return


def main(args=None) -> int:
    """Run the controller node; on every exit path it sends an explicit zero command."""
    return run_node(ControllerNode, args, on_exit=stop_robot)


if __name__ == '__main__':
    raise SystemExit(main())
