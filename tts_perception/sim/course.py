"""Procedural course for the built-in MuJoCo camera world (pure Python, no MuJoCo import).

A course is a straight corridor along +x split into segments of different kinds, so that scene
complexity truly changes along the drive:

- ``open``: few obstacles, bright light, high contrast;
- ``cluttered``: many obstacles of every shape, textured;
- ``low_contrast``: obstacles coloured close to the floor;
- ``dark``: dim light, medium clutter.

A free lane (a smooth curve ``lane_y(x)``) is kept clear of obstacles so a path exists; the
scripted planner follows it. Everything is a function of the seed.
"""

from dataclasses import dataclass, field
import math
from typing import List, Optional, Tuple

import numpy as np

SEGMENT_KINDS = ('open', 'cluttered', 'low_contrast', 'dark')
OBSTACLE_KINDS = ('box', 'cylinder', 'pole', 'person')

CORRIDOR_HALF_WIDTH = 3.5   # m, walls at +-this
COURSE_LENGTH_M = 60.0      # m, a course's default length (the scripted planner stops at its end)
LATE_TRIGGER = (4.5, 6.5)   # m ahead of the robot when a late obstacle starts to walk
LATE_OFFSET = (1.2, 1.8)    # m from the lane centre where it waits
LATE_SPEED = (0.9, 1.4)     # m/s it walks across
ROBOT_RADIUS = 0.3          # m, collision footprint of the robot
LANE_CLEARANCE = 0.55       # m, free space kept on each side of the lane beyond the robot


@dataclass(frozen=True)
class Obstacle:
    """One static obstacle. ``size`` is (half_x, half_y, half_z) for boxes, (radius, half_h)."""

    kind: str
    x: float
    y: float
    yaw: float
    size: Tuple[float, ...]
    rgba: Tuple[float, float, float, float]
    textured: bool

    def footprint_distance(self, px: float, py: float) -> float:
        """Signed distance in the ground plane from point (px, py) to the obstacle's footprint."""
        if self.kind == 'box':
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            dx, dy = px - self.x, py - self.y
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            qx, qy = abs(lx) - self.size[0], abs(ly) - self.size[1]
            outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
            return outside + min(max(qx, qy), 0.0)
        return math.hypot(px - self.x, py - self.y) - self.size[0]

    @property
    def radius(self) -> float:
        """Radius of a circle bounding the footprint."""
        if self.kind == 'box':
            return math.hypot(self.size[0], self.size[1])
        return self.size[0]


@dataclass(frozen=True)
class LateObstacle:
    """A person who steps into the lane when the robot comes near: waits at ``side`` x
    ``offset`` from the lane, starts walking across at ``speed`` when the robot's x reaches
    ``x - trigger_distance``, stands in the lane for ``hold_s``, then walks on out."""

    x: float
    side: int                     # +1: comes from the left (+y), -1: from the right
    offset: float                 # m from the lane centre where it waits
    trigger_distance: float       # m ahead of the robot when it starts to walk
    speed: float                  # m/s across
    hold_s: float                 # s standing in the lane
    radius: float = 0.22
    half_height: float = 0.6
    rgba: Tuple[float, float, float, float] = (0.8, 0.3, 0.2, 1.0)

    def lateral(self, t_since_trigger: Optional[float]) -> float:
        """Offset from the lane centre ``t`` s after the trigger (None: not triggered)."""
        if t_since_trigger is None or t_since_trigger < 0:
            return self.side * self.offset
        t_in = self.offset / self.speed
        if t_since_trigger < t_in:
            return self.side * (self.offset - self.speed * t_since_trigger)
        if t_since_trigger < t_in + self.hold_s:
            return 0.0
        return -self.side * min(self.offset, self.speed * (t_since_trigger - t_in - self.hold_s))


@dataclass(frozen=True)
class Segment:
    """A stretch of corridor with one kind of scene."""

    kind: str
    x0: float
    x1: float
    light: float                                   # diffuse light intensity 0..1
    floor_rgb: Tuple[float, float, float]
    floor_rgb2: Tuple[float, float, float]         # second checker colour


@dataclass
class Course:
    """A whole course: segments, obstacles and the free lane."""

    seed: int
    length: float
    segments: List[Segment]
    obstacles: List[Obstacle]
    lane_coeffs: List[Tuple[float, float, float]] = field(default_factory=list)
    late: List[LateObstacle] = field(default_factory=list)

    def lane_y(self, x: float) -> float:
        """Lateral position of the free lane's centre at ``x``."""
        ramp = min(1.0, max(0.0, (x - 1.0) / 4.0))
        return ramp * sum(a * math.sin(2 * math.pi * x / p + ph) for a, p, ph in self.lane_coeffs)

    def segment_at(self, x: float) -> Segment:
        """Segment containing ``x`` (clamped to the course)."""
        for seg in self.segments:
            if x < seg.x1:
                return seg
        return self.segments[-1]

    def collision(self, px: float, py: float, radius: float = ROBOT_RADIUS) -> str:
        """Name of what a robot disc at (px, py) touches: '' if nothing."""
        if abs(py) + radius >= CORRIDOR_HALF_WIDTH:
            return 'wall'
        for i, ob in enumerate(self.obstacles):
            if abs(ob.x - px) > ob.radius + radius + 0.01:
                continue
            if ob.footprint_distance(px, py) < radius:
                return f'{ob.kind}_{i}'
        return ''


def late_obstacle_min_distance(robot_speed: float, person_radius: float = 0.22) -> float:
    """The shortest distance from the robot's centre to the near edge of a late obstacle
    when it steps into the robot's path, the robot driving at ``robot_speed``: the nearest
    trigger, the widest walk, the slowest walker."""
    walk = LATE_OFFSET[1] - (ROBOT_RADIUS + person_radius)
    return LATE_TRIGGER[0] - robot_speed * walk / LATE_SPEED[0] - person_radius


def _segment_params(kind: str, rng: np.random.Generator) -> Tuple[float, int]:
    """(light, obstacles per 10 m) for a segment kind."""
    if kind == 'open':
        return float(rng.uniform(0.75, 0.95)), int(rng.integers(0, 3))
    if kind == 'cluttered':
        return float(rng.uniform(0.6, 0.9)), int(rng.integers(12, 19))
    if kind == 'low_contrast':
        return float(rng.uniform(0.55, 0.8)), int(rng.integers(5, 9))
    return float(rng.uniform(0.18, 0.32)), int(rng.integers(6, 11))   # dark


def make_course(seed: int, length: float = COURSE_LENGTH_M,
                segment_length: Tuple[float, float] = (6., 10.),
                late_obstacles: int = 0) -> Course:
    """Build a deterministic course from ``seed``, with ``late_obstacles`` people who step
    into the lane as the robot approaches (spread evenly from 8 m on)."""
    if length < 10.0:
        raise ValueError(f'course length must be >= 10 m, got {length}')
    rng = np.random.default_rng(seed)
    lane = [(float(rng.uniform(0.4, 1.0)), float(rng.uniform(14, 30)),
             float(rng.uniform(0, 2 * math.pi))) for _ in range(2)]
    course = Course(seed=seed, length=length, segments=[], obstacles=[], lane_coeffs=lane)

    x = 0.0
    kinds: List[str] = []
    while x < length:
        seg_len = float(rng.uniform(*segment_length))
        if not kinds:
            kind = 'open'
        else:
            choices = [k for k in SEGMENT_KINDS if k != kinds[-1]]
            kind = str(rng.choice(choices))
        kinds.append(kind)
        x1 = min(length, x + seg_len)
        light, density = _segment_params(kind, rng)
        base = rng.uniform(0.35, 0.65, size=3)
        floor2 = np.clip(base + rng.uniform(-0.12, 0.12, size=3), 0, 1)
        seg = Segment(kind, x, x1, light, tuple(float(v) for v in base),
                      tuple(float(v) for v in floor2))
        course.segments.append(seg)
        n = int(round(density * (x1 - x) / 10.0))
        _place_obstacles(course, seg, n, rng)
        x = x1
    late_rng = np.random.default_rng([seed, 1])     # late obstacles do not move the rest
    for i in range(late_obstacles):
        lx = 8.0 + (length - 12.0) * (i + 0.5) / late_obstacles
        course.late.append(LateObstacle(
            x=float(lx + late_rng.uniform(-1.0, 1.0)), side=int(late_rng.choice([-1, 1])),
            offset=float(late_rng.uniform(*LATE_OFFSET)),
            trigger_distance=float(late_rng.uniform(*LATE_TRIGGER)),
            speed=float(late_rng.uniform(*LATE_SPEED)), hold_s=float(late_rng.uniform(2.0, 4.0))))
    return course


def _place_obstacles(course: Course, seg: Segment, n: int, rng: np.random.Generator) -> None:
    start = max(seg.x0, 2.5)  # keep the start area clear
    if seg.x1 - start < 1.0:
        return
    placed = 0
    for _ in range(n * 30):
        if placed >= n:
            break
        kind = str(rng.choice(OBSTACLE_KINDS, p=[0.35, 0.25, 0.2, 0.2]))
        x = float(rng.uniform(start, seg.x1))
        y = float(rng.uniform(-CORRIDOR_HALF_WIDTH + 0.3, CORRIDOR_HALF_WIDTH - 0.3))
        yaw = float(rng.uniform(0, math.pi))
        if kind == 'box':
            size: Tuple[float, ...] = (float(rng.uniform(0.15, 0.5)),
                                       float(rng.uniform(0.15, 0.5)),
                                       float(rng.uniform(0.2, 0.8)))
        elif kind == 'cylinder':
            size = (float(rng.uniform(0.12, 0.35)), float(rng.uniform(0.3, 0.9)))
        elif kind == 'pole':
            size = (float(rng.uniform(0.025, 0.06)), float(rng.uniform(0.8, 1.3)))
        else:  # person: a capsule of human size
            size = (float(rng.uniform(0.18, 0.25)), float(rng.uniform(0.55, 0.7)))
        if seg.kind == 'low_contrast':
            rgb = np.clip(np.array(seg.floor_rgb) + rng.uniform(-0.07, 0.07, size=3), 0, 1)
        else:
            rgb = rng.uniform(0.05, 1.0, size=3)
        ob = Obstacle(kind, x, y, yaw, size, (float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0),
                      textured=bool(seg.kind == 'cluttered' and rng.uniform() < 0.6))
        # keep the lane free and avoid heavy overlaps
        lane_clear = ROBOT_RADIUS + LANE_CLEARANCE
        if any(ob.footprint_distance(xx, course.lane_y(xx)) < lane_clear
               for xx in np.linspace(x - ob.radius - 0.6, x + ob.radius + 0.6, 9)):
            continue
        if any(math.hypot(o.x - x, o.y - y) < o.radius + ob.radius + 0.05
               for o in course.obstacles):
            continue
        course.obstacles.append(ob)
        placed += 1
