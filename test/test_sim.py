"""The MuJoCo camera world: determinism, ground truth that agrees with the scene, collisions."""

import math

import numpy as np
import pytest

from tts_perception.sim.course import make_course
from tts_perception.sim.world import (BACKGROUND, CAMERA_HEIGHT, CAMERA_PITCH_DEG, FLOOR,
                                      OBSTACLE, scripted_command, World)

pytestmark = pytest.mark.unit


def _drive(world, steps, speed=1.5):
    for _ in range(steps):
        v, w = scripted_command(world, speed)
        world.step(v, w, 1 / 30)


def test_course_is_deterministic_by_seed_and_varies():
    a, b, c = make_course(5), make_course(5), make_course(6)
    assert a.obstacles == b.obstacles and a.segments == b.segments
    assert a.obstacles != c.obstacles
    kinds = {s.kind for s in a.segments}
    assert len(kinds) >= 3, kinds
    dens = {}
    for s in a.segments:
        n = sum(1 for o in a.obstacles if s.x0 <= o.x < s.x1)
        dens.setdefault(s.kind, []).append(n / (s.x1 - s.x0))
    if 'cluttered' in dens and 'open' in dens:
        assert np.mean(dens['cluttered']) > 3 * np.mean(dens['open']) + 0.1


def test_render_is_deterministic_by_seed():
    with World(3, width=160, height=120) as w1, World(3, width=160, height=120) as w2, \
            World(4, width=160, height=120) as w3:
        for w in (w1, w2, w3):
            _drive(w, 120)
        assert w1.state == w2.state
        i1, i2, i3 = w1.render_rgb(), w2.render_rgb(), w3.render_rgb()
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(w1.render_labels(), w2.render_labels())
        assert np.abs(i1.astype(int) - i3.astype(int)).mean() > 2.0


def test_scripted_drive_is_collision_free_and_progresses():
    with World(11, length=30.0, width=64, height=48) as w:
        _drive(w, 30 * 25, speed=1.5)
        assert w.collisions == 0
        assert w.progress > 0.9


def _project(world, px, py, pz):
    """Pixel (u, v) of a world point for the robot's front camera."""
    s = world.state
    dx, dy = px - s.x, py - s.y
    fwd = math.cos(s.yaw) * dx + math.sin(s.yaw) * dy
    left = -math.sin(s.yaw) * dx + math.cos(s.yaw) * dy
    up = pz - CAMERA_HEIGHT
    th = math.radians(CAMERA_PITCH_DEG)
    zc = fwd * math.cos(th) - up * math.sin(th)       # along the optical axis
    yc = -(fwd * math.sin(th) + up * math.cos(th))    # image down
    xc = -left                                        # image right
    k = world.camera_matrix()
    return k[0, 0] * xc / zc + k[0, 2], k[1, 1] * yc / zc + k[1, 2]


def test_labels_agree_with_scene():
    with World(2, width=320, height=240) as w:
        ob = next(o for o in w.course.obstacles if o.kind in ('box', 'cylinder', 'person')
                  and o.radius > 0.2)
        w.state.x, w.state.y, w.state.yaw = ob.x - 3.0, ob.y, 0.0
        w.step(0.0, 0.0, 0.01)  # apply pose
        labels, depth = w.render_labels(), w.render_depth()
        hz = ob.size[2] if ob.kind == 'box' else ob.size[1]
        u, v = _project(w, ob.x, ob.y, hz * 0.6)
        ui, vi = int(round(u)), int(round(v))
        assert labels[vi, ui] == OBSTACLE
        front = 3.0 - (ob.radius if ob.kind != 'box' else ob.size[0])
        assert 0.5 * front < depth[vi, ui] < 3.5 + 0.5
        # the ground right in front of the robot is floor, the top row is background/obstacle
        assert labels[-1, labels.shape[1] // 2] == FLOOR
        assert (labels[0] == BACKGROUND).mean() > 0.5
        # every label id is a known class and obstacles are a minority
        assert set(np.unique(labels)) <= {BACKGROUND, FLOOR, OBSTACLE}


def test_collision_is_detected_and_blocks():
    with World(2, width=64, height=48) as w:
        ob = next(o for o in w.course.obstacles if o.kind == 'cylinder')
        w.state.x, w.state.y, w.state.yaw = ob.x - 1.5, ob.y, 0.0
        hits = [w.step(1.0, 0.0, 0.05) for _ in range(40)]
        assert any(hits) and w.collisions == 1
        assert w.state.x < ob.x - ob.size[0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='camera size'):
        World(0, width=5000, height=10)
    with World(0, width=32, height=24) as w:
        with pytest.raises(ValueError, match='bad step'):
            w.step(float('nan'), 0.0, 0.1)
    with pytest.raises(ValueError, match='course length'):
        make_course(0, length=2.0)


def test_sim_camera_matches_the_controller_default_geometry():
    """The built-in world's camera is the one the controller's default parameters describe."""
    from tts_perception.control.control_law import ControlParams
    c = ControlParams()
    want = (CAMERA_HEIGHT, CAMERA_PITCH_DEG, FLOOR)
    assert (c.camera_height, c.camera_pitch_deg, c.floor_label) == want
    from tts_perception.sim.world import CAMERA_FOVY_DEG, ROBOT_RADIUS
    assert c.camera_fovy_deg == CAMERA_FOVY_DEG
    assert c.camera_to_front == ROBOT_RADIUS        # the camera sits at the disc's centre


def test_boxes_span_each_obstacles_visible_pixels_with_its_class():
    from tts_perception.sim.world import DETECTION_CLASSES, KIND_CLASS, MIN_BOX_PIXELS
    with World(1000, width=320, height=240) as w:
        seen = set()
        for x in np.linspace(3.0, w.course.length - 5.0, 12):
            w.reset(float(x))
            labels = w.render_labels()
            boxes, classes = w.render_boxes()
            assert boxes.shape == (len(classes), 4)
            covered = np.zeros(labels.shape, bool)
            for (x1, y1, x2, y2), c in zip(boxes.astype(int), classes):
                assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 240
                region = labels[y1:y2, x1:x2] == OBSTACLE
                # the box is tight: obstacle pixels on each of its four edges
                assert region[0].any() and region[-1].any()
                assert region[:, 0].any() and region[:, -1].any()
                covered[y1:y2, x1:x2] = True
                seen.add(DETECTION_CLASSES[c])
            # every obstacle pixel lies in a box, but for obstacles too small to count
            stray = (labels == OBSTACLE) & ~covered
            assert stray.sum() < 3 * MIN_BOX_PIXELS * max(1, len(w.course.obstacles) // 10)
        assert seen == set(DETECTION_CLASSES), seen
    assert set(KIND_CLASS) == {'box', 'cylinder', 'pole', 'person'}
