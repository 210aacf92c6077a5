"""Latency-aware control law (pure; the controller node only wires topics to it).

Inputs, each untrusted: the planner's command (:meth:`SpeedGovernor.on_command`), perception's
decision records (:func:`parse_record` refuses a record with a missing, non-finite or
out-of-range field, a stale one and one from the future), segmentations (free distance ahead
and the slowdown zone, placed along the driven path) and the controller's parameters
(:func:`check_params`, the same rules at start and at run time). Output per control period:
(v, w) from :meth:`SpeedGovernor.step`.

Invariants: v ≤ the stopping-distance limit a(−t + √(t² + 2d/a)) for the blind time t (a high
quantile of each frame's age when its record arrived, plus the control period) and the
effective free distance d; the limit is 0, never ``max_speed``, when t overflows; stale
perception (the newest frame captured more than ``watchdog_timeout`` ago) or a planner silent
for ``cmd_timeout`` bring v to 0 at ``max_decel``; every command is finite, within
``[-max_reverse_speed, max_speed]`` and ``|w| ≤ max_yaw_rate`` as the caps are now, and changes
within ``max_accel`` (over at most one period), ``max_decel`` and ``max_yaw_accel``.

The law, the slowdown zone, each input's faults and why: ``doc/controller.md``.
"""

from collections import deque
from dataclasses import dataclass
import math
from typing import Deque, List, Mapping, Optional, Tuple

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
    cmd_timeout: float = setting(0.5, 'A planner command (cmd_vel_in) older than this is a '
                                 'stop request (s)', 0.01, 10.0)
    max_reverse_speed: float = setting(0.1, 'Reverse commands pass capped at this speed (m/s): '
                                       'the forward camera cannot see behind; 0 refuses them',
                                       0.0, 5.0)
    max_yaw_accel: float = setting(4.0, 'Yaw-rate change limit (rad/s^2)', 0.1, 1000.0)
    future_tolerance: float = setting(0.5, 'Records stamped further than this in the future '
                                      'are refused: the clocks disagree (s)', 0.0, 10.0)
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
    free_clear_margin: float = setting(1.0, 'How much further than a kept obstacle the way must '
                                       'be seen clear to clear it (m): close-range estimates '
                                       'that drift longer do not clear it', 0.0, 10.0)
    full_resolution_width: int = setting(640, 'Input width at which the sensing distance is '
                                         'not shrunk (px)', 16, 8192)
    camera_height: float = setting(0.5, 'Camera height above the ground (m)', 0.01, 10.0)
    camera_pitch_deg: float = setting(15.0, 'Camera pitch down (deg)', -90.0, 90.0)
    camera_fovy_deg: float = setting(70.0, 'Camera vertical field of view (deg)', 1.0, 179.0)
    floor_label: int = setting(1, 'Segmentation label id of free floor', 0, 255)
    obstacle_label: int = setting(2, 'Segmentation label id of obstacles (what may move into '
                                  'the path)', 0, 255)
    path_half_width: float = setting(0.5, 'Half the width of the path the robot sweeps (m): '
                                     'anything not floor in a segmentation, or a detector\'s '
                                     'box, standing in it bounds the free distance',
                                     0.05, 10.0)
    slowdown_half_width: float = setting(2.0, 'Slowdown zone: obstacles within this lateral '
                                         'distance of the heading line (m; 0 = no zone) ...',
                                         0.0, 20.0)
    slowdown_range: float = setting(7.0, '... and this far ahead (m) ...', 0.0, 100.0)
    slowdown_speed: float = setting(1.4, '... cap the speed (m/s) until the robot is '
                                    'slowdown_past beyond them', 0.0, 20.0)
    slowdown_past: float = setting(0.5, 'How far past the nearest obstacle in the slowdown zone '
                                   'the cap holds (m)', 0.0, 10.0)


def stopping_speed_limit(latency_s: float, decel: float, distance: float) -> float:
    """v_max = a(-t + sqrt(t^2 + 2d/a)); 0 when d <= 0. Raises on non-physical inputs.

    Computed as 2d / (t + sqrt(t^2 + 2d/a)), which has no cancellation and fails closed: an
    overflowing or infinite blind time gives 0, never ``max_speed``."""
    if not (decel > 0 and latency_s >= 0 and math.isfinite(distance)):
        raise ValueError(f'bad law inputs t={latency_s} a={decel} d={distance}')
    if distance <= 0:
        return 0.0
    t = latency_s
    v = 2.0 * distance / (t + math.sqrt(t * t + 2.0 * distance / decel))
    return v if math.isfinite(v) else 0.0


def _intrinsics(image_hw: Tuple[int, int], p: 'ControlParams') -> Tuple[float, float, float]:
    """(fy, cx, cy) of the camera described by ``p`` at an image of ``image_hw`` pixels."""
    h, w = image_hw
    return 0.5 * h / math.tan(math.radians(p.camera_fovy_deg) / 2), (w - 1) / 2, (h - 1) / 2


def free_distance_in(labels: np.ndarray, p: ControlParams) -> float:
    """Free distance ahead in a segmentation from the camera described by ``p`` (any size:
    the intrinsics follow the label image's height): the nearest ground contact of anything
    not floor within the path the robot sweeps (``path_half_width`` either side of the
    heading line, as for a detector's boxes: near the robot the path spans much of the
    image, and an obstacle at its edge is still in the way); 0 when something not floor
    stands on the image's bottom rows within the path; ``max_sensing_distance`` when nothing
    is in it. Why: doc/controller.md (free distance)."""
    h, w = labels.shape
    fy, cx, cy = _intrinsics(labels.shape, p)
    pitch = math.radians(p.camera_pitch_deg)
    if h >= 2:
        bottom = (labels[-1] != p.floor_label) & (labels[-2] != p.floor_label)
        scale, _, below = _on_ground(np.array([h - 1]), fy, cy, p.camera_height, pitch)
        at_feet = np.abs(scale[0] * (np.arange(w) - cx) / fy) <= p.path_half_width \
            if below[0] else np.ones(w, bool)
        if (bottom & at_feet).any():
            return 0.0
    fwd, lat, _ = ground_contacts(labels, p.floor_label, fy, p.camera_height, pitch)
    in_path = np.abs(lat) <= p.path_half_width
    return float(min(p.max_sensing_distance, fwd[in_path].min())) if in_path.any() \
        else p.max_sensing_distance


def _on_ground(rows: np.ndarray, fy: float, cy: float, cam_height: float, pitch_rad: float
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat-ground pinhole model for image rows ``rows``: (scale, forward m, below the
    horizon); a pixel (u, row) meets the ground at that forward distance and lateral
    -scale (u - cx) / fy m (positive to the left). Above the horizon scale and forward are
    inf."""
    b = (np.asarray(rows, float) - cy) / fy
    denom = math.sin(pitch_rad) + b * math.cos(pitch_rad)
    below = denom > 1e-3
    scale = np.where(below, cam_height / np.where(below, denom, 1.0), np.inf)
    forward = np.where(below, np.where(below, scale, 0.0) *
                       (math.cos(pitch_rad) - b * math.sin(pitch_rad)), np.inf)
    return scale, forward, below


def ground_contacts(labels: np.ndarray, floor_label: int, fy: float, cam_height: float,
                    pitch_rad: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image column, where the floor seen from the bottom row ends: (forward, lateral)
    ground coordinates in metres (lateral positive to the left), flat-ground pinhole model
    with square pixels, and the label that ends it. Columns that are floor up to the horizon
    or not floor at the bottom row are left out; an end needs two non-floor rows (one stray
    pixel is not an obstacle) and is placed at the upper of the two, one pixel row further
    than the first non-floor pixel."""
    h, w = labels.shape
    not_floor = labels != floor_label
    # not floor, and the row below it not floor either: the lowest such row is one row above
    # the first non-floor row seen from the bottom (a stray pixel never ends the floor)
    solid = not_floor & np.vstack([not_floor[1:], not_floor[-1:]])
    cols = np.arange(w)
    has = solid.any(axis=0)
    v = h - 1 - np.argmax(solid[::-1], axis=0)          # lowest solid row per column
    keep = has & (v < h - 1)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    scale, forward, ok = _on_ground(v[keep], fy, cy, cam_height, pitch_rad)
    lateral = -scale[ok] * ((cols[keep][ok] - cx) / fy)
    return forward[ok], lateral, labels[v[keep][ok], cols[keep][ok]]


def slowdown_distance(labels: np.ndarray, p: 'ControlParams') -> Optional[float]:
    """Forward distance (m) of the nearest obstacle in the slowdown zone of a segmentation
    from the camera described by ``p``; None when the zone is empty (or off)."""
    if p.slowdown_half_width <= 0 or labels.ndim != 2 or labels.size == 0:
        return None
    fy = _intrinsics(labels.shape, p)[0]
    fwd, lat, lab = ground_contacts(labels, p.floor_label, fy, p.camera_height,
                                    math.radians(p.camera_pitch_deg))
    inside = (fwd <= p.slowdown_range) & (np.abs(lat) <= p.slowdown_half_width) & \
        (lab == p.obstacle_label)
    return float(fwd[inside].min()) if inside.any() else None


def box_contacts(boxes: np.ndarray, image_hw: Tuple[int, int], p: 'ControlParams'
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box (x1, y1, x2, y2, camera pixels) where its bottom edge meets the ground, flat
    ground pinhole model as :func:`ground_contacts`: (forward m, lateral m of its left and
    right ends [N, 2], whether it is below the horizon). A box at the image's bottom row
    touches the robot's own footprint: forward 0."""
    fy, cx, cy = _intrinsics(image_hw, p)
    scale, forward, ok = _on_ground(np.minimum(boxes[:, 3], image_hw[0] - 1), fy, cy,
                                    p.camera_height, math.radians(p.camera_pitch_deg))
    forward = np.where(boxes[:, 3] >= image_hw[0] - 1, 0.0, forward)
    lateral = -scale[:, None] * (boxes[:, [0, 2]] - cx) / fy
    return forward, lateral, ok


def check_boxes(boxes: np.ndarray, image_hw: Tuple[int, int]) -> str:
    """Why boxes [N, 4] in an image of ``image_hw`` cannot be acted on ('' when they can):
    a value that is not finite, or a box with no width or height."""
    if image_hw[0] < 1 or image_hw[1] < 1 or max(image_hw) > MAX_WIDTH:
        return f'image size {image_hw} is not a camera\'s'
    if not np.isfinite(boxes).all():
        return 'a box with a value that is not finite'
    if ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        return 'a box whose corners are swapped'
    return ''


def free_distance_from_boxes(boxes: np.ndarray, image_hw: Tuple[int, int],
                             p: 'ControlParams') -> float:
    """Free ground distance straight ahead from a detector's boxes: the nearest ground
    contact of a box whose ground contact reaches into the path the robot sweeps
    (``path_half_width`` either side of the heading line; near the robot that is wider than
    any central band of the image); every box is an obstacle. ``max_sensing_distance`` when
    none does."""
    fwd, lat, ok = box_contacts(boxes, image_hw, p)
    in_path = (lat.min(1) <= p.path_half_width) & (lat.max(1) >= -p.path_half_width)
    near = fwd[ok & in_path]
    return float(min(p.max_sensing_distance, near.min())) if len(near) \
        else p.max_sensing_distance


def box_slowdown_distance(boxes: np.ndarray, image_hw: Tuple[int, int],
                          p: 'ControlParams') -> Optional[float]:
    """Forward distance (m) of the nearest box in the slowdown zone (any part of its ground
    contact within ``slowdown_half_width`` of the heading line, ``slowdown_range`` ahead);
    None when none is (or the zone is off)."""
    if p.slowdown_half_width <= 0 or not len(boxes):
        return None
    fwd, lat, ok = box_contacts(boxes, image_hw, p)
    near_line = (lat.min(1) <= p.slowdown_half_width) & (lat.max(1) >= -p.slowdown_half_width)
    inside = ok & (fwd <= p.slowdown_range) & near_line
    return float(fwd[inside].min()) if inside.any() else None


MAX_WIDTH = 100_000          # px: wider than any camera, a corrupt record


def check_params(p: ControlParams) -> List[str]:
    """What is wrong with a complete set of controller parameters ([] when nothing): the
    same rules at start and for every change at run time."""
    problems = []
    for name, value in vars(p).items():
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f'{name} must be finite, got {value}')
    for name in ('watchdog_timeout', 'cmd_timeout'):
        if getattr(p, name) < p.control_period:
            problems.append(f'{name} {getattr(p, name)} must be >= control_period '
                            f'{p.control_period}')
    return problems


@dataclass
class Perception:
    """The latest perception summary the controller acts on."""

    stamp: float                 # when its frame was captured, on the controller's clock (s)
    latency_ms: float            # blind time: the frame's age when the record arrived
    width: int
    quality: float               # predicted accuracy 0..1
    free_distance: Optional[float] = None


class RecordRefused(ValueError):
    """A decision record the controller must not act on; ``kind`` is the counter it goes to
    (malformed, stale or future) and the text says why."""

    def __init__(self, kind: str, text: str):
        super().__init__(text)
        self.kind = kind


def _field(values: Mapping[str, str], key: str, lo: float, hi: float) -> float:
    try:
        x = float(values[key])
    except KeyError:
        raise RecordRefused('malformed', f'no {key}') from None
    except ValueError:
        raise RecordRefused('malformed', f'{key} {values[key]!r} is not a number') from None
    if not (math.isfinite(x) and lo <= x <= hi):
        raise RecordRefused('malformed', f'{key} {values[key]!r} is not in [{lo}, {hi}]')
    return x


def parse_record(values: Mapping[str, str], arrival: float, now_stamp_s: float,
                 p: ControlParams) -> Perception:
    """A perception/status decision record as the controller may act on it, or
    :class:`RecordRefused`.

    ``values``: the record's key-values (``stamp_ns`` the frame's capture stamp, ``age_ms``
    its age when processing started, ``total_ms`` the compute, ``width``,
    ``predicted_accuracy``); ``arrival``: the controller's steady clock now (s);
    ``now_stamp_s``: the controller's ROS clock now, the clock the camera stamps with (s).
    The blind time is the frame's age on arrival: the larger of now - capture stamp and the
    record's own capture -> result (so a clock that runs behind the camera's shortens
    nothing). Fresh is judged by the capture, so a backlog delivered late is stale.
    """
    stamp_s = _field(values, 'stamp_ns', 0.0, 1e19) / 1e9
    result_s = (_field(values, 'age_ms', 0.0, 1e9) + _field(values, 'total_ms', 0.0, 1e9)) / 1e3
    width = _field(values, 'width', 1, MAX_WIDTH)
    quality = _field(values, 'predicted_accuracy', 0.0, 1.0)
    age = now_stamp_s - stamp_s
    if age < -p.future_tolerance:
        raise RecordRefused('future', f'stamped {-age:.3f} s in the future: the clocks of '
                            f'the camera and the controller disagree (use_sim_time?)')
    blind = max(age, result_s)
    if blind > p.watchdog_timeout:
        raise RecordRefused('stale', f'frame {blind:.3f} s old on arrival (> watchdog_timeout '
                            f'{p.watchdog_timeout} s)')
    return Perception(arrival - blind, 1e3 * blind, int(width), quality)


def ramp(value: float, target: float, up: float, down: float) -> float:
    """``value`` moved toward ``target`` by at most ``up`` away from zero and ``down`` toward
    it; a change of sign stops at zero first."""
    if value * target < 0:
        target = 0.0
    if abs(target) > abs(value):
        step = min(up, abs(target) - abs(value))
        return value + math.copysign(step, target)
    step = min(down, abs(value) - abs(target))
    return value - math.copysign(step, value) if value else 0.0


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


class SpeedGovernor:
    """Stateful law: latency quantile, watchdogs, rate/accel limiting."""

    def __init__(self, params: ControlParams):
        self.p = params
        self.latencies: Deque[float] = deque(maxlen=params.latency_window)
        self.arrivals: Deque[float] = deque(maxlen=params.latency_window)
        self.last: Optional[Perception] = None
        self._free_seen: Deque[float] = deque(maxlen=params.free_confirm_frames)
        self._blocked_at: Optional[float] = None   # path position where the way ends (m)
        self._slow_until: Optional[float] = None   # path position where the slowdown ends (m)
        self._odom = 0.0                           # path driven (m), from commanded speed
        self.command: Tuple[float, float] = (0.0, 0.0)
        self.command_stamp: Optional[float] = None
        self.v_cmd = self.w_cmd = 0.0
        self.reason = 'no perception yet'
        self.v_limit = 0.0
        self.non_finite = 0                        # results replaced by a zero command
        self._t_prev: Optional[float] = None
        # the control step at which a segmentation or detections last gave a free distance
        # (one observed since the last step counts from the next): the view's own watchdog
        self._view_at: Optional[float] = None
        self._view_new = False

    def set_params(self, params: ControlParams) -> None:
        """New parameters (checked by :func:`check_params`), the windows resized at once."""
        self.p = params
        self.latencies = deque(self.latencies, maxlen=params.latency_window)
        self.arrivals = deque(self.arrivals, maxlen=params.latency_window)
        self._free_seen = deque(self._free_seen, maxlen=params.free_confirm_frames)

    def on_command(self, now: float, v: float, w: float) -> None:
        """The planner's command at ``now``; a non-finite one is a stop request."""
        self.command = (v, w) if _finite(v, w) else (0.0, 0.0)
        self.command_stamp = now

    def on_perception(self, per: Perception) -> None:
        """Record one perception result (an older frame than the last one changes nothing
        but the free distance)."""
        if per.free_distance is not None:
            self.observe_free_distance(per.free_distance)
        if self.last is not None and per.stamp < self.last.stamp:
            return
        if per.latency_ms >= 0 and math.isfinite(per.latency_ms):
            self.latencies.append(per.latency_ms / 1e3)
        self.arrivals.append(per.stamp)
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
        self._view_new = True
        at = self._odom + max(0.0, float(d))         # where along the path the way ends
        self._free_seen.append(at)
        if self._blocked_at is None or at <= self._blocked_at:
            self._blocked_at = at
        elif len(self._free_seen) == self._free_seen.maxlen and \
                min(self._free_seen) > self._blocked_at + self.p.free_clear_margin:
            self._blocked_at = min(self._free_seen)

    def observe_segmentation(self, labels: np.ndarray) -> None:
        """One segmentation: its free distance ahead and its slowdown zone."""
        self.observe_free_distance(free_distance_in(labels, self.p))
        self.observe_slowdown(slowdown_distance(labels, self.p))

    def observe_boxes(self, boxes: np.ndarray, image_hw: Tuple[int, int]) -> None:
        """One frame's detections (boxes [N, 4] in camera pixels of an ``image_hw`` image,
        checked with :func:`check_boxes`): their free distance ahead and slowdown zone."""
        self.observe_free_distance(free_distance_from_boxes(boxes, image_hw, self.p))
        self.observe_slowdown(box_slowdown_distance(boxes, image_hw, self.p))

    def observe_slowdown(self, d: Optional[float]) -> None:
        """The nearest obstacle in one segmentation's slowdown zone (None: the zone is empty):
        the cap holds until the robot has driven ``slowdown_past`` beyond it."""
        if d is None or not math.isfinite(d):
            return
        until = self._odom + max(0.0, float(d)) + self.p.slowdown_past
        self._slow_until = until if self._slow_until is None else max(self._slow_until, until)

    @property
    def slowing(self) -> bool:
        """Whether the slowdown zone caps the speed now."""
        return self._slow_until is not None and self._odom < self._slow_until

    @property
    def free_distance(self) -> Optional[float]:
        """Free distance ahead now (m): from the kept obstacle to where the robot has driven;
        None before any segmentation."""
        return None if self._blocked_at is None else max(0.0, self._blocked_at - self._odom)

    def rate(self) -> float:
        """Perception rate (Hz) from the capture instants of recent frames."""
        if len(self.arrivals) < 2:
            return 0.0
        span = self.arrivals[-1] - self.arrivals[0]
        return (len(self.arrivals) - 1) / span if span > 0 else 0.0

    def latency_quantile(self) -> float:
        """High quantile of recent blind times (s)."""
        if not self.latencies:
            return self.p.watchdog_timeout
        return float(np.quantile(np.fromiter(self.latencies, float), self.p.latency_quantile))

    def fresh(self, now: float) -> bool:
        """The newest frame was captured, and a segmentation or detections gave a free
        distance, within the watchdog timeout (records alone do not show the way)."""
        return self.last is not None and now - self.last.stamp <= self.p.watchdog_timeout \
            and self._view_at is not None and now - self._view_at <= self.p.watchdog_timeout

    def command_fresh(self, now: float) -> bool:
        """The planner spoke within ``cmd_timeout``."""
        return self.command_stamp is not None and \
            now - self.command_stamp <= self.p.cmd_timeout

    def effective_distance(self) -> float:
        """Free distance shrunk for coarse resolution and low quality."""
        if self.last is None or self.free_distance is None:
            return 0.0
        res = min(1.0, self.last.width / float(self.p.full_resolution_width))
        shrink = (0.7 + 0.3 * res) * float(np.clip(self.last.quality, 0.0, 1.0))
        ahead = min(self.free_distance, self.p.max_sensing_distance) - self.p.camera_to_front
        d = ahead * shrink - self.p.stop_margin
        return d if d > 0 else 0.0              # also 0 for NaN: fails closed

    def step(self, now: float) -> Tuple[float, float]:
        """One control period: (v, w) to command, finite and within the caps.

        Speed moves toward the target by at most ``max_decel`` times the time since the last
        step toward zero (a late step brakes as much as the time passed allows) and
        ``max_accel`` times at most one ``control_period`` away from it (a stall never
        becomes a jump); the yaw rate likewise by ``max_yaw_accel``. The caps apply as they
        are now, to this command."""
        p = self.p
        dt = p.control_period if self._t_prev is None else max(0.0, now - self._t_prev)
        self._t_prev = now
        if self._view_new:
            self._view_at, self._view_new = now, False
        self._odom += self.v_cmd * dt            # the speed commanded over the last period
        target, w_target = self._targets(now)
        rate_f = float(np.clip(self.rate() / p.nominal_rate, 0.3, 1.0)) if self.rate() else 0.3
        up = min(dt, p.control_period)
        v = ramp(self.v_cmd, target, p.max_accel * rate_f * up, p.max_decel * dt)
        v = float(np.clip(v, -p.max_reverse_speed, p.max_speed))
        w_step = p.max_yaw_accel * up
        w = self.w_cmd + float(np.clip(w_target - self.w_cmd, -w_step, w_step))
        w = float(np.clip(w, -p.max_yaw_rate, p.max_yaw_rate))
        if not _finite(v, w):
            self.non_finite += 1
            self.reason = 'non-finite command computed: zero sent'
            v = w = 0.0
        self.v_cmd, self.w_cmd = v, w
        return v, w

    def _stale_reason(self, now: float) -> str:
        """Why :meth:`fresh` is False."""
        if self.last is None:
            return 'watchdog: no perception yet'
        if now - self.last.stamp > self.p.watchdog_timeout:
            return f'watchdog: perception stale for {now - self.last.stamp:.2f}s'
        if self._view_at is None:
            return 'watchdog: records but no segmentation or detections yet'
        return (f'watchdog: records but no segmentation or detections for '
                f'{now - self._view_at:.2f}s')

    def _targets(self, now: float) -> Tuple[float, float]:
        """(speed, yaw rate) to move toward, and ``reason``/``v_limit`` for them."""
        p = self.p
        v_nom, w_nom = self.command if self.command_fresh(now) else (0.0, 0.0)
        if not self.fresh(now):
            self.reason = self._stale_reason(now)
            self.v_limit = 0.0
            return 0.0, (w_nom * p.steer_gain if self.v_cmd > 0 else 0.0)
        law = min(p.max_speed, stopping_speed_limit(self.latency_quantile() + p.control_period,
                                                    p.max_decel, self.effective_distance()))
        self.v_limit = min(law, p.slowdown_speed) if self.slowing else law
        target = float(np.clip(v_nom, -p.max_reverse_speed, self.v_limit))
        if not self.command_fresh(now):
            self.reason = ('cmd_vel_in: no command yet' if self.command_stamp is None else
                           f'cmd_vel_in silent for {now - self.command_stamp:.2f}s: stopping')
        elif v_nom < target:
            self.reason = (f'reverse capped at {p.max_reverse_speed} m/s: the camera cannot '
                           f'see behind')
        elif target >= v_nom:
            self.reason = 'ok'
        else:
            self.reason = ('slowdown zone: an obstacle beside the path' if self.v_limit < law
                           else 'limited by perception')
        rate_f = float(np.clip(self.rate() / p.nominal_rate, 0.3, 1.0)) if self.rate() else 0.3
        quality = float(np.clip(self.last.quality, 0.0, 1.0))
        k = p.steer_gain * rate_f * max(quality, 0.3)
        return target, w_nom * max(k, 0.3)
