"""controller_node: adapts speed and gains to perception latency/quality; fails safe.

Subscribes ``cmd_vel_in`` (nominal Twist from a planner/teleop), ``perception/status``
(DiagnosticStatus decision records) and ``segmentation`` (mono8); publishes ``cmd_vel`` every
``control_period`` and its state on ``/diagnostics``. The law is in
:mod:`tts_perception.control.control_law`. Optionally pushes the computed speed limit into another
node's parameter through the standard SetParameters service (e.g. a Nav2 controller's
``FollowPath.max_vel_x``).
"""

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rcl_interfaces.msg import SetParametersResult
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import Image

from tts_perception.control.control_law import ControlParams, Perception, SpeedGovernor
from tts_perception.common.image_codec import image_msg_to_array, ImageDecodeError
from tts_perception.nodes.ros_util import (declare_params, diag_array, ERROR, OK, output_topic,
                                           Param, ParameterHandler, run_node, status, values_of,
                                           WARN)
from tts_perception.common.settings import settings_of

PARAMS = tuple(settings_of(ControlParams)) + (
    Param('camera', '', 'Camera topic whose perception to follow: its perception/status '
          'records and the segmentation next to it (<camera ns>/segmentation). "" = any '
          'status, and the segmentation topic as remapped', read_only=True),
    Param('push_speed_limit_to', '', 'Node name whose parameter receives the speed limit '
          '("" = off)'),
    Param('push_speed_limit_param', 'FollowPath.max_vel_x', 'Parameter name to push'),
    Param('push_period', 1.0, 'Seconds between speed-limit pushes', 0.1, 60.0),
    Param('diagnostics_period', 1.0, 'State on /diagnostics every this many seconds',
          0.05, 60.0),
)


class ControllerNode(Node):
    """Wires topics and timers to :class:`SpeedGovernor`."""

    def __init__(self, **kwargs):
        super().__init__('controller_node', **kwargs)
        self._param_handler = ParameterHandler(self, self._validate)
        self.p = declare_params(self, PARAMS)
        self.gov = SpeedGovernor(self._law_params())
        self._param_handler.apply_with(self._apply)
        self.nominal = (0.0, 0.0)
        self.pub = self.create_publisher(Twist, 'cmd_vel', 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(Twist, 'cmd_vel_in', self._on_cmd, 10)
        self.create_subscription(DiagnosticStatus, 'perception/status', self._on_status, 10)
        self.camera = self.resolve_topic_name(self.p['camera']) if self.p['camera'] else ''
        seg_topic = output_topic(self.camera, 'segmentation') if self.camera else 'segmentation'
        self.create_subscription(Image, seg_topic, self._on_seg, qos_profile_sensor_data)
        # the watchdog runs on the steady clock: if the sim (or /clock) dies, it still fires
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.timer = self.create_timer(self.p['control_period'], self._step, clock=self.steady)
        self.create_timer(self.p['diagnostics_period'], self._publish_diag,
                          clock=self.steady)
        self.param_client = None
        self._last_push = -1e9
        self.stops = 0
        self._was_stopped = True
        self.decel_after_s = self.zero_after_s = -1.0   # last fail-safe stop, from the last
        #                                                 fresh perception (steady clock)

    def _law_params(self) -> ControlParams:
        return ControlParams(**{k: self.p[k] for k in ControlParams.__dataclass_fields__})

    def _validate(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name == 'watchdog_timeout' and prm.value is not None:
                period = next((q.value for q in params if q.name == 'control_period'),
                              getattr(self, 'p', {}).get('control_period', 0.05))
                if prm.value < period:
                    return SetParametersResult(successful=False, reason=(
                        f'watchdog_timeout {prm.value} must be >= control_period {period}'))
        return SetParametersResult(successful=True)

    def _apply(self, params) -> None:
        for prm in params:
            self.p[prm.name] = prm.value
        self.gov.p = self._law_params()
        if any(prm.name == 'control_period' for prm in params):
            self.timer.cancel()
            self.timer = self.create_timer(self.p['control_period'], self._step,
                                           clock=self.steady)

    def _now(self) -> float:
        return self.steady.now().nanoseconds / 1e9

    def _on_cmd(self, msg: Twist) -> None:
        if math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z):
            self.nominal = (msg.linear.x, msg.angular.z)
        else:
            self.nominal = (0.0, 0.0)
            self.get_logger().warning('non-finite cmd_vel_in: treated as stop',
                                      throttle_duration_sec=2.0)

    def _on_status(self, msg: DiagnosticStatus) -> None:
        v = values_of(msg)
        if self.camera and msg.hardware_id != self.camera:
            return
        try:
            per = Perception(stamp=self._now(), latency_ms=float(v['total_ms']),
                             width=int(v['width']), quality=float(v['predicted_accuracy']))
        except (KeyError, ValueError) as exc:
            self.get_logger().warning(f'ignoring malformed perception/status: {exc}',
                                      throttle_duration_sec=2.0)
            return
        self.gov.on_perception(per)

    def _on_seg(self, msg: Image) -> None:
        try:
            labels = image_msg_to_array(msg)
        except ImageDecodeError as exc:
            self.get_logger().warning(f'bad segmentation: {exc}', throttle_duration_sec=2.0)
            return
        if labels.ndim != 2:
            return
        self.gov.observe_segmentation(labels)

    def _step(self) -> None:
        now = self._now()
        v, w = self.gov.step(now, *self.nominal)
        t = Twist()
        t.linear.x, t.angular.z = float(v), float(w)
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
        fresh = g.fresh(self._now())
        level = OK if fresh and g.reason == 'ok' else (WARN if fresh else ERROR)
        vals = {'speed_limit': g.v_limit, 'cmd_speed': g.v_cmd,
                'latency_quantile_ms': 1e3 * g.latency_quantile(),
                'perception_rate_hz': g.rate(),
                'free_distance': g.free_distance if g.free_distance is not None else -1.0,
                'effective_distance': g.effective_distance(), 'slowing': float(g.slowing),
                'fail_safe_stops': self.stops,
                'last_stop_decel_after_s': self.decel_after_s,
                'last_stop_zero_after_s': self.zero_after_s}
        self.pub_diag.publish(diag_array(self, [status('controller_node', 'controller', level,
                                                       g.reason, vals)]))


def stop_robot(node: ControllerNode) -> None:
    """Exit path: publish an explicit zero command while the context is still valid."""
    node.timer.cancel()
    node.pub.publish(Twist())


def main(args=None) -> int:
    """Run the controller node; on every exit path it sends an explicit zero command."""
    return run_node(ControllerNode, args, on_exit=stop_robot)


if __name__ == '__main__':
    raise SystemExit(main())
