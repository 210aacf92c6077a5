"""sim_node: the built-in MuJoCo camera world as a ROS 2 node.

Publishes ``camera/image_raw`` (rgb8), ``camera/camera_info``, ``odom``, ``/clock`` and, when
asked, the scripted planner's nominal command on ``cmd_vel_nominal``; subscribes ``cmd_vel``.
Reports course progress and collisions on ``/diagnostics``. Sim time advances one camera period
per rendered frame, so the sim clock never outruns the renderer; ``real_time_factor`` caps it
against the wall clock (0 = as fast as rendering allows). With ``wait_for_subscribers`` > 0 sim
time starts only once that many subscriptions match the camera topic (the stack's launch waits
for perception this way, so the first frame of the run is the first frame perception can see).
"""

import inspect
import math
import threading
import time
from typing import Optional

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import SetParametersResult
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray

from tts_perception.nodes.ros_util import (declare_params, diag_array, ERROR, image_msg, OK, Param,
                                           ParameterHandler, run_node, status)
from tts_perception.sim.course import COURSE_LENGTH_M
from tts_perception.sim.world import scripted_command, World

try:                                   # Iron and newer
    from rclpy.event_handler import PublisherEventCallbacks
except ImportError:                    # Humble
    from rclpy.qos_event import PublisherEventCallbacks
_MATCHED = 'matched' in inspect.signature(PublisherEventCallbacks).parameters   # Jazzy+

PARAMS = (
    Param('seed', 0, 'Course seed: the same seed gives the same course', 0, 1_000_000, True),
    Param('course_length', COURSE_LENGTH_M, 'Course length (m)', 10.0, 1000.0, True),
    Param('width', 640, 'Camera width (px)', 32, 1280, True),
    Param('height', 480, 'Camera height (px)', 24, 960, True),
    Param('camera_rate', 30.0, 'Camera rate (Hz of sim time)', 1.0, 120.0, True),
    Param('real_time_factor', 1.0, 'Max sim/wall speed ratio; 0 = as fast as rendering allows',
          0.0, 100.0),
    Param('drive_scripted', False, 'Drive the scripted planner itself and ignore cmd_vel'),
    Param('publish_nominal_cmd', True, 'Publish the scripted planner command on cmd_vel_nominal'),
    Param('planner_speed', 1.5, 'Scripted planner cruise speed (m/s)', 0.0, 5.0),
    Param('cmd_timeout', 0.5, 'Stop the robot if no cmd_vel for this long (s of sim time)',
          0.05, 10.0),
    Param('max_sim_time', 0.0, 'Stop stepping after this sim time (s); 0 = run forever',
          0.0, 1e6),
    Param('frame_id', 'camera_optical', 'frame_id of the camera messages'),
    Param('wait_for_subscribers', 0, 'Start sim time only once this many subscriptions match '
          'the camera topic (0 = at once)', 0, 100, True),
)


class SimNode(Node):
    """Steps the world once per camera period and publishes what the robot sees."""

    def __init__(self, **kwargs):
        super().__init__('sim_node', **kwargs)
        self._param_handler = ParameterHandler(self, self._validate)
        self.p = declare_params(self, PARAMS)
        self.world = World(self.p['seed'], self.p['course_length'], self.p['width'],
                           self.p['height'])
        self.dt = 1.0 / self.p['camera_rate']
        self.sim_ns = 0
        self.last_cmd = (0.0, 0.0)
        self.last_cmd_ns: Optional[int] = None
        self.frames = 0
        self.finished = False
        self._wall0 = time.monotonic()
        self._matched = threading.Event()       # set on every change of the camera's matches
        self.pub_img = self.create_publisher(
            Image, 'camera/image_raw', qos_profile_sensor_data,
            event_callbacks=PublisherEventCallbacks(
                **({'matched': lambda _st: self._matched.set()} if _MATCHED else {})))
        self.pub_info = self.create_publisher(CameraInfo, 'camera/camera_info',
                                              qos_profile_sensor_data)
        self.pub_odom = self.create_publisher(Odometry, 'odom', 10)
        self.pub_clock = self.create_publisher(
            Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        self.pub_nominal = self.create_publisher(Twist, 'cmd_vel_nominal', 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(Twist, 'cmd_vel', self._on_cmd, 10)
        self.create_timer(1.0, self._publish_diag)
        # rendering runs on a thread of its own: the executor thread stays free for commands,
        # parameter services and /diagnostics however slow a render is
        self._stop = threading.Event()
        self._render = threading.Thread(target=self._loop, name='render', daemon=True)
        self._render.start()
        self._param_handler.apply_with(self._on_params)
        self.get_logger().info(
            f'course seed {self.p["seed"]}: {len(self.world.course.obstacles)} obstacles, '
            f'segments {[s.kind for s in self.world.course.segments]}')

    def _validate(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name == 'real_time_factor' and prm.value is not None and prm.value < 0:
                return SetParametersResult(successful=False, reason='real_time_factor < 0')
        return SetParametersResult(successful=True)

    def _on_params(self, params) -> None:
        for prm in params:
            self.p[prm.name] = prm.value

    def _wait_for_subscribers(self) -> None:
        """Hold sim time at 0 until ``wait_for_subscribers`` subscriptions match the camera
        (on the matched event; Humble, which has none, looks every 50 ms)."""
        want = self.p['wait_for_subscribers']
        if want <= 0 or self.pub_img.get_subscription_count() >= want:
            return
        self.get_logger().info(f'waiting for {want} subscription(s) on '
                               f'{self.pub_img.topic_name} before starting sim time')
        t0 = time.monotonic()
        while not self._stop.is_set():
            self._matched.clear()
            if self.pub_img.get_subscription_count() >= want:
                break
            self._matched.wait(1.0 if _MATCHED else 0.05)
        self.get_logger().info(f'{self.pub_img.get_subscription_count()} subscription(s) after '
                               f'{time.monotonic() - t0:.1f} s: starting sim time')

    def _loop(self) -> None:
        """Render thread: one tick per camera period / real_time_factor (wall clock)."""
        self._wait_for_subscribers()
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            rtf = self.p['real_time_factor']
            now = time.monotonic()
            next_t = max(next_t + self.dt / rtf, now - self.dt / rtf) if rtf > 0 else now
            if self.finished:
                next_t = now + 0.1
            self._stop.wait(max(0.0, next_t - now))

    def _on_cmd(self, msg: Twist) -> None:
        if not (math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z)):
            self.get_logger().warning('ignoring non-finite cmd_vel', throttle_duration_sec=2.0)
            return
        self.last_cmd = (msg.linear.x, msg.angular.z)
        self.last_cmd_ns = self.sim_ns

    def _stamp(self) -> Time:
        return Time(sec=self.sim_ns // 1_000_000_000, nanosec=self.sim_ns % 1_000_000_000)

    def _tick(self) -> None:
        if self.finished:
            return
        max_t = self.p['max_sim_time']
        if max_t > 0 and self.sim_ns >= max_t * 1e9:
            self.finished = True
            self.get_logger().info(f'max_sim_time {max_t}s reached; stopping')
            self._publish_diag()
            return
        nominal = scripted_command(self.world, self.p['planner_speed'])
        if self.p['drive_scripted']:
            v, w = nominal
        elif (self.last_cmd_ns is None
              or self.sim_ns - self.last_cmd_ns > self.p['cmd_timeout'] * 1e9):
            v, w = 0.0, 0.0
        else:
            v, w = self.last_cmd
        hit = self.world.step(v, w, self.dt)
        if hit:
            self.get_logger().warning(f'collision with {hit}', throttle_duration_sec=1.0)
        rgb = self.world.render_rgb()
        # the clock advances only once the frame of that instant exists: a frame is never
        # older than one render on arrival, and consumers measure its age correctly
        self.sim_ns += int(round(self.dt * 1e9))
        stamp = self._stamp()
        self.pub_clock.publish(Clock(clock=stamp))
        img = Image()
        img.header.stamp, img.header.frame_id = stamp, self.p['frame_id']
        self.pub_img.publish(image_msg(rgb, 'rgb8', img.header))
        self.pub_info.publish(self._camera_info(img.header))
        self.pub_odom.publish(self._odom(stamp))
        if self.p['publish_nominal_cmd']:
            t = Twist()
            t.linear.x, t.angular.z = nominal
            self.pub_nominal.publish(t)
        self.frames += 1

    def _camera_info(self, header) -> CameraInfo:
        k = self.world.camera_matrix()
        info = CameraInfo(header=header, width=self.world.width, height=self.world.height,
                          distortion_model='plumb_bob')
        info.k = [float(v) for v in k.reshape(-1)]
        info.d = [0.0] * 5
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def _odom(self, stamp) -> Odometry:
        s = self.world.state
        o = Odometry()
        o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, 'odom', 'base_link'
        o.pose.pose.position.x, o.pose.pose.position.y = s.x, s.y
        o.pose.pose.orientation.z, o.pose.pose.orientation.w = math.sin(s.yaw / 2), \
            math.cos(s.yaw / 2)
        o.twist.twist.linear.x, o.twist.twist.angular.z = s.v, s.w
        return o

    def summary(self) -> dict:
        """Course state for diagnostics and the demo summary."""
        s = self.world.state
        wall = time.monotonic() - self._wall0
        return {'progress': self.world.progress, 'collisions': self.world.collisions,
                'in_collision': self.world.in_collision or 'none', 'x': s.x, 'y': s.y,
                'speed': s.v, 'sim_time': self.sim_ns / 1e9, 'frames': self.frames,
                'real_time_factor': (self.sim_ns / 1e9) / wall if wall > 0 else 0.0,
                'course_complete': self.world.progress >= 1.0, 'finished': self.finished}

    def _publish_diag(self) -> None:
        s = self.summary()
        level = ERROR if self.world.in_collision else OK
        msg = (f'collision with {self.world.in_collision}' if self.world.in_collision
               else 'finished (max_sim_time reached)' if self.finished
               else 'course complete' if self.world.progress >= 1.0 else 'driving')
        self.pub_diag.publish(diag_array(self, [status('sim_node: course', 'mujoco', level,
                                                       msg, s)]))

    def destroy_node(self):
        """Stop rendering, then free the renderer (never while a frame is being rendered)."""
        if hasattr(self, '_render'):
            self._stop.set()
            self._render.join(timeout=10.0)
        if hasattr(self, 'world'):
            self.world.close()
        return super().destroy_node()


def main(args=None) -> int:
    """Run the sim node."""
    return run_node(SimNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
