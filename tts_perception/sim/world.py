"""The built-in MuJoCo camera world: a unicycle robot with a forward RGB camera on a course.

Renders RGB (and, on demand, ground-truth labels and depth) offscreen with OSMesa or EGL.
Label ids are :data:`LABELS` indices: 0 background (walls, sky), 1 floor (free space),
2 obstacle. Boxes (:meth:`World.render_boxes`) are each obstacle's visible pixels' extent,
classed by :data:`DETECTION_CLASSES`.
"""

from dataclasses import dataclass
import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from tts_perception.sim.course import (Course, CORRIDOR_HALF_WIDTH, COURSE_LENGTH_M, make_course,
                                       ROBOT_RADIUS)

LABELS = ('background', 'floor', 'obstacle')
BACKGROUND, FLOOR, OBSTACLE = 0, 1, 2
DETECTION_CLASSES = ('person', 'box', 'post')
KIND_CLASS = {'person': 0, 'box': 1, 'cylinder': 2, 'pole': 2}
MIN_BOX_PIXELS = 24      # visible pixels an obstacle needs to count as a box

CAMERA_HEIGHT = 0.5      # m
CAMERA_PITCH_DEG = 15.0  # down
CAMERA_FOVY_DEG = 70.0


@dataclass
class RobotState:
    """Planar pose and velocity of the unicycle robot."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    v: float = 0.0
    w: float = 0.0


def _f(v) -> str:
    return ' '.join(f'{float(a):.4f}' for a in v)


def course_mjcf(course: Course) -> Tuple[str, Dict[str, int]]:
    """MJCF text for ``course`` and a map geom-name -> label id."""
    labels: Dict[str, int] = {}
    assets = [
        '<texture name="sky" type="skybox" builtin="gradient" rgb1=".55 .65 .8" '
        'rgb2=".15 .18 .22" width="64" height="64"/>',
        '<texture name="wall" type="2d" builtin="flat" mark="random" random="0.05" '
        'rgb1=".62 .6 .55" markrgb=".45 .44 .4" width="128" height="128"/>',
        '<material name="wall" texture="wall" texrepeat="30 1" />',
        '<texture name="stripes" type="2d" builtin="checker" rgb1="1 1 1" rgb2=".25 .25 .25" '
        'width="32" height="32"/>',
    ]
    body = ['<light name="sun" directional="true" pos="0 0 10" dir="0.3 0.2 -1" '
            'diffuse=".8 .8 .8" specular="0.1 0.1 0.1" castshadow="false"/>']
    _corridor(course, assets, body, labels)
    for i, ob in enumerate(course.obstacles):
        body.append(_obstacle(f'ob{i}', ob, assets))
        labels[f'ob{i}'] = OBSTACLE
    pitch = math.radians(CAMERA_PITCH_DEG)
    body.append('<body name="robot" mocap="true" pos="0 0 0">'
                f'<camera name="front" pos="0 0 {CAMERA_HEIGHT}" '
                f'xyaxes="0 -1 0 {math.sin(pitch):.5f} 0 {math.cos(pitch):.5f}" '
                f'fovy="{CAMERA_FOVY_DEG}"/></body>')
    for i, ob in enumerate(course.late):     # moving people: mocap bodies 1.. after the robot
        name = f'late{i}'
        body.append(f'<body name="{name}_body" mocap="true" pos="{_f((ob.x, 0, 0))}">'
                    f'<geom name="{name}" type="capsule" size="{_f((ob.radius, ob.half_height))}"'
                    f' pos="0 0 {ob.radius + ob.half_height:.4f}" rgba="{_f(ob.rgba)}"/></body>')
        labels[name] = OBSTACLE
    xml = ('<mujoco model="tts_course"><compiler angle="radian"/>'
           '<visual><global offwidth="1280" offheight="960"/><quality shadowsize="0"/>'
           '<headlight ambient=".2 .2 .2" diffuse=".25 .25 .25" specular="0 0 0"/>'
           '</visual>'
           '<asset>' + ''.join(assets) + '</asset>'
           '<worldbody>' + ''.join(body) + '</worldbody></mujoco>')
    return xml, labels


def _corridor(course: Course, assets: List[str], body: List[str],
              labels: Dict[str, int]) -> None:
    """The floor of every segment, the floor before and after, the walls and the end wall."""
    for i, seg in enumerate(course.segments):
        assets.append(f'<texture name="floor{i}" type="2d" builtin="checker" '
                      f'rgb1="{_f(seg.floor_rgb)}" rgb2="{_f(seg.floor_rgb2)}" '
                      f'width="64" height="64"/>')
        assets.append(f'<material name="floor{i}" texture="floor{i}" texuniform="true" '
                      f'texrepeat="1 1"/>')
        half = (seg.x1 - seg.x0) / 2
        name = f'floor{i}'
        body.append(f'<geom name="{name}" type="box" material="floor{i}" '
                    f'pos="{_f((seg.x0 + half, 0, -0.02))}" '
                    f'size="{_f((half, CORRIDOR_HALF_WIDTH, 0.02))}"/>')
        labels[name] = FLOOR
    # floor in front of the start and beyond the end, walls and an end wall (background)
    body.append(f'<geom name="floor_pre" type="box" rgba=".5 .5 .5 1" pos="-5 0 -0.02" '
                f'size="5 {CORRIDOR_HALF_WIDTH:.3f} 0.02"/>')
    labels['floor_pre'] = FLOOR
    body.append(f'<geom name="floor_post" type="box" rgba=".5 .5 .5 1" '
                f'pos="{course.length + 5:.3f} 0 -0.02" size="5 {CORRIDOR_HALF_WIDTH:.3f} 0.02"/>')
    labels['floor_post'] = FLOOR
    mid, half_len = course.length / 2, course.length / 2 + 10
    for side in (-1, 1):
        name = f'wall{side:+d}'
        body.append(f'<geom name="{name}" type="box" material="wall" '
                    f'pos="{_f((mid, side * (CORRIDOR_HALF_WIDTH + 0.1), 0.9))}" '
                    f'size="{_f((half_len, 0.1, 0.9))}"/>')
        labels[name] = BACKGROUND
    body.append(f'<geom name="end_wall" type="box" material="wall" '
                f'pos="{course.length + 10:.3f} 0 0.9" size="0.1 {CORRIDOR_HALF_WIDTH:.3f} 0.9"/>')
    labels['end_wall'] = BACKGROUND


def _obstacle(name: str, ob, assets: List[str]) -> str:
    """The geom of a static obstacle (a material added to ``assets`` where it is textured)."""
    quat = (math.cos(ob.yaw / 2), 0, 0, math.sin(ob.yaw / 2))
    if ob.textured:
        assets.append(f'<material name="m{name}" texture="stripes" rgba="{_f(ob.rgba)}" '
                      f'texrepeat="3 3"/>')
        look = f'material="m{name}"'
    else:
        look = f'rgba="{_f(ob.rgba)}"'
    if ob.kind == 'box':
        geom = (f'type="box" size="{_f(ob.size)}" pos="{_f((ob.x, ob.y, ob.size[2]))}" '
                f'quat="{_f(quat)}"')
    elif ob.kind in ('cylinder', 'pole'):
        geom = (f'type="cylinder" size="{_f(ob.size)}" '
                f'pos="{_f((ob.x, ob.y, ob.size[1]))}"')
    else:  # person: capsule standing on the floor
        geom = (f'type="capsule" size="{_f(ob.size)}" '
                f'pos="{_f((ob.x, ob.y, ob.size[1] + ob.size[0]))}"')
    return f'<geom name="{name}" {geom} {look}/>'


class World:
    """A course, its MuJoCo model and the robot driving on it."""

    def __init__(self, seed: int = 0, length: float = COURSE_LENGTH_M, width: int = 640,
                 height: int = 480, late_obstacles: int = 0):
        if width <= 0 or height <= 0 or width > 1280 or height > 960:
            raise ValueError(f'camera size must be within 1..1280 x 1..960, got {width}x{height}')
        os.environ.setdefault('MUJOCO_GL', 'osmesa')
        import mujoco  # deferred: needs MUJOCO_GL set first
        self._mj = mujoco
        self.course = make_course(seed, length, late_obstacles=late_obstacles)
        self.late_trigger: List[Optional[float]] = [None] * len(self.course.late)
        self.width, self.height = width, height
        xml, names = course_mjcf(self.course)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._label_lut = np.full(self.model.ngeom + 1, BACKGROUND, dtype=np.uint8)
        for name, label in names.items():
            self._label_lut[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)] = label
        self._box_class = {self._geom(f'ob{i}'): KIND_CLASS[ob.kind]
                           for i, ob in enumerate(self.course.obstacles)}
        self._box_class.update({self._geom(f'late{i}'): KIND_CLASS['person']
                                for i in range(len(self.course.late))})
        self._light_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_LIGHT, 'sun')
        # <map znear/zfar> are relative to the model extent: make the clip planes absolute
        self.model.vis.map.znear = 0.03 / self.model.stat.extent
        self.model.vis.map.zfar = 80.0 / self.model.stat.extent
        self._renderer = None
        self.state = RobotState(y=self.course.lane_y(0.0))
        self.collisions = 0
        self.in_collision = ''
        self.time = 0.0
        self._apply_pose()

    # ---------------------------------------------------------------- robot
    def reset(self, x: float = 0.0) -> None:
        """Put the robot on the lane at ``x``, facing +x, at rest."""
        self.state = RobotState(x=x, y=self.course.lane_y(x))
        self.collisions, self.in_collision, self.time = 0, '', 0.0
        self.late_trigger = [None] * len(self.course.late)
        self._apply_pose()

    def late_positions(self) -> List[Tuple[float, float]]:
        """Where each late obstacle (a person stepping into the lane) is now."""
        return [(ob.x, self.course.lane_y(ob.x) + ob.lateral(
            None if t is None else self.time - t))
            for ob, t in zip(self.course.late, self.late_trigger)]

    def _late_hit(self, px: float, py: float) -> str:
        for i, ((x, y), ob) in enumerate(zip(self.late_positions(), self.course.late)):
            if math.hypot(px - x, py - y) < ob.radius + ROBOT_RADIUS:
                return f'person_late_{i}'
        return ''

    def clearance(self) -> float:
        """Distance from the robot's footprint to the nearest obstacle, wall or person (m)."""
        s = self.state
        d = CORRIDOR_HALF_WIDTH - abs(s.y)
        for ob in self.course.obstacles:
            if abs(ob.x - s.x) < d + ob.radius + ROBOT_RADIUS:
                d = min(d, ob.footprint_distance(s.x, s.y))
        for (x, y), ob in zip(self.late_positions(), self.course.late):
            d = min(d, math.hypot(s.x - x, s.y - y) - ob.radius)
        return d - ROBOT_RADIUS

    def step(self, v: float, w: float, dt: float) -> str:
        """Integrate unicycle kinematics for ``dt`` s; returns the collision name or ''.

        On contact the robot stays where it was (it is blocked) and the contact is counted once
        per new contact.
        """
        if not (math.isfinite(v) and math.isfinite(w) and dt > 0):
            raise ValueError(f'bad step v={v} w={w} dt={dt}')
        s = self.state
        yaw = s.yaw + w * dt
        nx = s.x + v * dt * math.cos(s.yaw + 0.5 * w * dt)
        ny = s.y + v * dt * math.sin(s.yaw + 0.5 * w * dt)
        for i, ob in enumerate(self.course.late):
            if self.late_trigger[i] is None and s.x >= ob.x - ob.trigger_distance:
                self.late_trigger[i] = self.time
        hit = self.course.collision(nx, ny, ROBOT_RADIUS) or self._late_hit(nx, ny)
        if hit:
            if hit != self.in_collision:
                self.collisions += 1
            self.state = RobotState(s.x, s.y, yaw, 0.0, w)
        else:
            self.state = RobotState(nx, ny, yaw, v, w)
        self.in_collision = hit
        self.time += dt
        self._apply_pose()
        return hit

    @property
    def progress(self) -> float:
        """Fraction of the course driven, 0..1."""
        return float(min(1.0, max(0.0, self.state.x / self.course.length)))

    def _apply_pose(self) -> None:
        s = self.state
        self.data.mocap_pos[0] = (s.x, s.y, 0.0)
        self.data.mocap_quat[0] = (math.cos(s.yaw / 2), 0.0, 0.0, math.sin(s.yaw / 2))
        for i, (x, y) in enumerate(self.late_positions(), 1):
            self.data.mocap_pos[i] = (x, y, 0.0)
        light = self.course.segment_at(s.x + 3.0).light
        self.model.light_diffuse[self._light_id] = (light, light, light)
        self._mj.mj_kinematics(self.model, self.data)
        self._mj.mj_camlight(self.model, self.data)

    # ---------------------------------------------------------------- render
    def _get_renderer(self):
        if self._renderer is None:
            self._renderer = self._mj.Renderer(self.model, self.height, self.width)
        return self._renderer

    def render_rgb(self) -> np.ndarray:
        """RGB image (H, W, 3) uint8 from the front camera."""
        r = self._get_renderer()
        r.update_scene(self.data, camera='front')
        return r.render().copy()

    def _geom(self, name: str) -> int:
        return self._mj.mj_name2id(self.model, self._mj.mjtObj.mjOBJ_GEOM, name)

    def _geom_ids(self) -> np.ndarray:
        """The geom id seen at each pixel (H, W), -1 where none."""
        r = self._get_renderer()
        r.enable_segmentation_rendering()
        try:
            r.update_scene(self.data, camera='front')
            seg = r.render()
        finally:
            r.disable_segmentation_rendering()
        ids, types = seg[..., 0], seg[..., 1]
        return np.where((types == int(self._mj.mjtObj.mjOBJ_GEOM)) & (ids >= 0), ids, -1)

    def render_labels(self) -> np.ndarray:
        """Ground-truth label image (H, W) uint8 with :data:`LABELS` ids."""
        ids = self._geom_ids()
        geom = ids >= 0
        out = np.full(ids.shape, BACKGROUND, dtype=np.uint8)
        out[geom] = self._label_lut[ids[geom]]
        return out

    def render_boxes(self) -> Tuple[np.ndarray, np.ndarray]:
        """Ground-truth boxes: (boxes [N, 4] x1, y1, x2, y2 in pixels, classes [N] of
        :data:`DETECTION_CLASSES`), one per obstacle with at least :data:`MIN_BOX_PIXELS`
        visible pixels, spanning them (an occluded obstacle's box is what is seen of it)."""
        ids = self._geom_ids()
        boxes, classes = [], []
        for geom, cls in self._box_class.items():
            ys, xs = np.nonzero(ids == geom)
            if len(xs) >= MIN_BOX_PIXELS:
                boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
                classes.append(cls)
        return np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64)

    def render_depth(self) -> np.ndarray:
        """Depth image (H, W) float32 in metres."""
        r = self._get_renderer()
        r.enable_depth_rendering()
        try:
            r.update_scene(self.data, camera='front')
            depth = r.render()
        finally:
            r.disable_depth_rendering()
        return depth.astype(np.float32)

    def camera_matrix(self) -> np.ndarray:
        """Pinhole intrinsics K (3x3) of the front camera at the render size."""
        fy = 0.5 * self.height / math.tan(math.radians(CAMERA_FOVY_DEG) / 2)
        return np.array([[fy, 0, (self.width - 1) / 2], [0, fy, (self.height - 1) / 2],
                         [0, 0, 1]], dtype=np.float64)

    def close(self) -> None:
        """Free the GL context."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> 'World':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def free_distance_ahead(self, max_range: float = 10.0, step: float = 0.05) -> float:
        """Ground truth: free distance straight ahead along the robot's heading (m)."""
        s = self.state
        d = 0.0
        while d < max_range:
            px, py = s.x + d * math.cos(s.yaw), s.y + d * math.sin(s.yaw)
            if self.course.collision(px, py, ROBOT_RADIUS) or self._late_hit(px, py):
                return d
            d += step
        return max_range


def scripted_command(world: World, speed: float = 1.0, lookahead: float = 1.5,
                     max_w: float = 1.5) -> Tuple[float, float]:
    """The scripted planner: pure pursuit along the free lane at ``speed`` (m/s)."""
    s = world.state
    tx = s.x + lookahead
    ty = world.course.lane_y(tx)
    dx, dy = tx - s.x, ty - s.y
    lx = math.cos(s.yaw) * dx + math.sin(s.yaw) * dy
    ly = -math.sin(s.yaw) * dx + math.cos(s.yaw) * dy
    curvature = 2.0 * ly / max(lx * lx + ly * ly, 1e-6)
    if s.x >= world.course.length:
        return 0.0, 0.0
    w = float(np.clip(speed * curvature, -max_w, max_w))
    return float(speed), w
