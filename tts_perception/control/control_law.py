"""Latency-aware control law (pure; the controller node only wires topics to it).

Speed limit from the stopping-distance law: with perception latency t (a high quantile of the
recent measured latencies plus the control period), maximum deceleration a and effective
sensing distance d (free distance ahead seen in the segmentation, less the part the robot's
own body takes in front of the camera, shrunk for coarser input resolution and lower
predicted quality, less a stop margin), the robot must be able to stop within d while it still
travels blind for t:

    v t + v^2 / (2 a) = d   =>   v_max = a (-t + sqrt(t^2 + 2 d / a))

Steering gain and acceleration limit scale with the perception rate and quality:

    k_steer = k0 * clip(rate / nominal_rate, 0.3, 1) * quality
    accel_limit = a0 * clip(rate / nominal_rate, 0.3, 1)

Free distance: what a segmentation sees is placed along the path driven (odometry from the
commanded speed): the nearest obstacle counts from its first frame and comes nearer as the
robot drives on; clearing it takes ``free_confirm_frames`` frames in a row that see the way
clear at least ``free_clear_margin`` beyond it.

Watchdog: no fresh perception within ``watchdog_timeout`` -> decelerate to zero at the
deceleration limit; resume only when perception is fresh again.
"""

from collections import deque
from dataclasses import dataclass
import math
from typing import Deque, Optional, Tuple

import numpy as np

from tts_perception.common.settings import setting


@dataclass
class ControlParams:
    """Controller knobs (the same names are controller_node parameters)."""

    max_decel: float = setting(1.5, 'Maximum deceleration a (m/s^2)', 0.05, 20.0)
    max_speed: float = setting(2.0, 'Absolute speed cap (m/s)', 0.0, 20.0)
    max_accel: float = setting(1.0, 'Acceleration limit a0 at the nominal perception rate '
                               '(m/s^2)', 0.05, 20.0)
    max_yaw_rate: float = setting(1.5, 'Yaw-rate cap (rad/s)', 0.0, 10.0)
    steer_gain: float = setting(1.0, 'Nominal steering gain k0 on the planner yaw rate',
                                0.0, 5.0)
    control_period: float = setting(0.05, 'Control period (s)', 0.005, 1.0)
    watchdog_timeout: float = setting(0.5, 'Perception older than this stops the robot (s)',
                                      0.05, 10.0)
    latency_quantile: float = setting(0.95, 'Quantile of recent perception latencies used as '
                                      't', 0.5, 1.0)
    latency_window: int = setting(30, 'Number of recent latencies in the quantile', 2, 10000)
    nominal_rate: float = setting(30.0, 'Perception rate at which gains are nominal (Hz)',
                                  1.0, 1000.0)
    max_sensing_distance: float = setting(8.0, 'Cap on the free distance used (m)', 0.5, 100.0)
    stop_margin: float = setting(0.5, 'Distance kept free in front of the robot (m)',
                                 0.0, 10.0)
    camera_to_front: float = setting(0.3, 'Distance from the camera to the front of the '
                                     'robot along its heading (m): the part of the seen free '
                                     'distance the robot itself takes', 0.0, 10.0)
    free_confirm_frames: int = setting(3, 'An obstacle seen ahead is kept (coming nearer as '
                                       'the robot drives) until this many segmentations in a '
                                       'row see the way clear beyond it', 1, 100)
    free_clear_margin: float = setting(0.5, 'How much further than a kept obstacle the way must '
                                       'be seen clear to clear it (m): close-range estimates '
                                       'that drift longer do not clear it', 0.0, 10.0)
    full_resolution_width: int = setting(640, 'Input width at which the sensing distance is '
                                         'not shrunk (px)', 16, 8192)
    camera_height: float = setting(0.5, 'Camera height above the ground (m)', 0.01, 10.0)
    camera_pitch_deg: float = setting(15.0, 'Camera pitch down (deg)', -90.0, 90.0)
    camera_fovy_deg: float = setting(70.0, 'Camera vertical field of view (deg)', 1.0, 179.0)
    floor_label: int = setting(1, 'Segmentation label id of free floor', 0, 255)


def stopping_speed_limit(latency_s: float, decel: float, distance: float) -> float:
    """v_max = a(-t + sqrt(t^2 + 2d/a)); 0 when d <= 0. Raises on non-physical inputs."""
    if not (decel > 0 and latency_s >= 0 and math.isfinite(distance)):
        raise ValueError(f'bad law inputs t={latency_s} a={decel} d={distance}')
    if distance <= 0:
        return 0.0
    t = latency_s
    return decel * (-t + math.sqrt(t * t + 2.0 * distance / decel))


def free_distance_from_labels(labels: np.ndarray, floor_label: int, fy: float, cy: float,
                              cam_height: float, pitch_rad: float, band: float = 0.2,
                              max_range: float = 8.0) -> float:
    """Free ground distance straight ahead, from a segmentation image (metres).

    In the central column band, scan up from the bottom row while pixels are floor; the first
    non-floor row is projected onto the ground plane (flat-ground pinhole model).
    """
    h, w = labels.shape
    c0, c1 = int(w * (0.5 - band / 2)), int(w * (0.5 + band / 2)) + 1
    strip = labels[:, c0:c1]
    floor_rows = (strip == floor_label).mean(axis=1) > 0.9
    v = h - 1
    while v >= 0 and floor_rows[v]:
        v -= 1
    if v == h - 1:
        return 0.0
    v = max(v, 0)
    scale = h / (2 * cy + 1)    # labels may be at a resolution other than the intrinsics
    angle = pitch_rad + math.atan(((v / scale) - cy) / fy)
    if angle <= 1e-3:
        return max_range
    return float(min(max_range, cam_height / math.tan(angle)))


def free_distance_in(labels: np.ndarray, p: ControlParams) -> float:
    """Free distance ahead in a segmentation from the camera described by ``p`` (any size:
    the intrinsics follow the label image's height)."""
    h = labels.shape[0]
    fy = 0.5 * h / math.tan(math.radians(p.camera_fovy_deg) / 2)
    return free_distance_from_labels(labels, p.floor_label, fy, (h - 1) / 2, p.camera_height,
                                     math.radians(p.camera_pitch_deg),
                                     max_range=p.max_sensing_distance)


@dataclass
class Perception:
    """The latest perception summary the controller acts on."""

    stamp: float                 # controller-clock time it arrived (s)
    latency_ms: float
    width: int
    quality: float               # predicted accuracy 0..1
    free_distance: Optional[float] = None


class SpeedGovernor:
    """Stateful law: latency quantile, watchdog, rate/accel limiting."""

    def __init__(self, params: ControlParams):
        self.p = params
        self.latencies: Deque[float] = deque(maxlen=params.latency_window)
        self.arrivals: Deque[float] = deque(maxlen=params.latency_window)
        self.last: Optional[Perception] = None
        self._free_seen: Deque[float] = deque(maxlen=params.free_confirm_frames)
        self._blocked_at: Optional[float] = None   # path position where the way ends (m)
        self._odom = 0.0                           # path driven (m), from commanded speed
        self.v_cmd = 0.0
        self.reason = 'no perception yet'
        self.v_limit = 0.0
        self._t_prev: Optional[float] = None

    def on_perception(self, per: Perception) -> None:
        """Record one perception result."""
        if per.latency_ms >= 0 and math.isfinite(per.latency_ms):
            self.latencies.append(per.latency_ms / 1e3)
        self.arrivals.append(per.stamp)
        if per.free_distance is not None:
            self.observe_free_distance(per.free_distance)
        self.last = per

    def observe_free_distance(self, d: float) -> None:
        """One segmentation's free distance ahead. What is seen is placed along the path
        driven so far (odometry from the commanded speed): the nearest obstacle seen counts
        from its first frame and comes nearer as the robot drives on, and only
        ``free_confirm_frames`` frames in a row that see the way clear at least
        ``free_clear_margin`` beyond it clear it.
        So a glitch, or a person too close to be recognised any more, does not let the robot
        speed up into what it saw a moment before."""
        if not math.isfinite(d):
            return
        if self._free_seen.maxlen != self.p.free_confirm_frames:
            self._free_seen = deque(self._free_seen, maxlen=self.p.free_confirm_frames)
        at = self._odom + max(0.0, float(d))         # where along the path the way ends
        self._free_seen.append(at)
        if self._blocked_at is None or at <= self._blocked_at:
            self._blocked_at = at
        elif len(self._free_seen) == self._free_seen.maxlen and \
                min(self._free_seen) > self._blocked_at + self.p.free_clear_margin:
            self._blocked_at = min(self._free_seen)

    @property
    def free_distance(self) -> Optional[float]:
        """Free distance ahead now (m): from the kept obstacle to where the robot has driven;
        None before any segmentation."""
        return None if self._blocked_at is None else max(0.0, self._blocked_at - self._odom)

    def rate(self) -> float:
        """Perception rate (Hz) from recent arrivals."""
        if len(self.arrivals) < 2:
            return 0.0
        span = self.arrivals[-1] - self.arrivals[0]
        return (len(self.arrivals) - 1) / span if span > 0 else 0.0

    def latency_quantile(self) -> float:
        """High quantile of recent perception latency (s)."""
        if not self.latencies:
            return self.p.watchdog_timeout
        return float(np.quantile(np.fromiter(self.latencies, float), self.p.latency_quantile))

    def fresh(self, now: float) -> bool:
        """Perception arrived within the watchdog timeout."""
        return self.last is not None and now - self.last.stamp <= self.p.watchdog_timeout

    def effective_distance(self) -> float:
        """Free distance shrunk for coarse resolution and low quality."""
        if self.last is None or self.free_distance is None:
            return 0.0
        res = min(1.0, self.last.width / float(self.p.full_resolution_width))
        shrink = (0.7 + 0.3 * res) * float(np.clip(self.last.quality, 0.0, 1.0))
        ahead = min(self.free_distance, self.p.max_sensing_distance) - self.p.camera_to_front
        return max(0.0, ahead * shrink - self.p.stop_margin)

    def step(self, now: float, v_nominal: float, w_nominal: float) -> Tuple[float, float]:
        """One control period: (v, w) to command. Speed changes are limited by the time since
        the previous step (one ``control_period`` for the first), so the deceleration is
        ``max_decel`` in the controller's time even when a step comes late."""
        p = self.p
        dt = p.control_period if self._t_prev is None else max(0.0, now - self._t_prev)
        self._t_prev = now
        self._odom += self.v_cmd * dt            # the speed commanded over the last period
        if not (math.isfinite(v_nominal) and math.isfinite(w_nominal)):
            v_nominal, w_nominal = 0.0, 0.0
        rate_f = float(np.clip(self.rate() / p.nominal_rate, 0.3, 1.0)) if self.rate() else 0.3
        if not self.fresh(now):
            self.reason = ('watchdog: no perception yet' if self.last is None else
                           f'watchdog: perception stale for {now - self.last.stamp:.2f}s')
            self.v_limit = 0.0
            self.v_cmd = max(0.0, self.v_cmd - p.max_decel * dt)
            w = w_nominal * p.steer_gain if self.v_cmd > 0 else 0.0
            return self.v_cmd, float(np.clip(w, -p.max_yaw_rate, p.max_yaw_rate))
        t = self.latency_quantile() + p.control_period
        d = self.effective_distance()
        self.v_limit = min(p.max_speed, stopping_speed_limit(t, p.max_decel, d))
        target = float(np.clip(v_nominal, 0.0, self.v_limit))
        accel = p.max_accel * rate_f
        if target > self.v_cmd:
            self.v_cmd = min(target, self.v_cmd + accel * dt)
        else:
            self.v_cmd = max(target, self.v_cmd - p.max_decel * dt)
        self.reason = 'ok' if target >= v_nominal else 'limited by perception'
        quality = float(np.clip(self.last.quality, 0.0, 1.0)) if self.last else 0.0
        k = p.steer_gain * rate_f * max(quality, 0.3)
        w = float(np.clip(w_nominal * max(k, 0.3), -p.max_yaw_rate, p.max_yaw_rate))
        return self.v_cmd, w
