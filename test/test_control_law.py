"""The latency-aware control law, without ROS."""

import math

import numpy as np
import pytest

from tts_perception.control.control_law import (ControlParams, free_distance_from_labels,
                                                ground_contacts, Perception, slowdown_distance,
                                                SpeedGovernor, stopping_speed_limit)
from tts_perception.sim.course import make_course
from tts_perception.sim.world import CAMERA_FOVY_DEG, CAMERA_HEIGHT, CAMERA_PITCH_DEG, World

pytestmark = pytest.mark.unit


def test_law_stops_within_distance_and_shrinks_with_latency():
    a, d = 1.5, 4.0
    prev = None
    for t in (0.0, 0.05, 0.1, 0.3, 1.0):
        v = stopping_speed_limit(t, a, d)
        assert v * t + v * v / (2 * a) == pytest.approx(d)     # exactly uses the distance
        if prev is not None:
            assert v < prev
        prev = v
    assert stopping_speed_limit(0.0, a, d) == pytest.approx(math.sqrt(2 * a * d))
    assert stopping_speed_limit(0.2, a, 0.0) == 0.0
    with pytest.raises(ValueError):
        stopping_speed_limit(0.1, 0.0, 1.0)


def test_free_distance_from_rendered_ground_truth_matches_geometry():
    with World(4, width=320, height=240) as w:
        w.reset(0.0)
        ob = next(o for o in w.course.obstacles if o.kind == 'box')
        w.state.x, w.state.y, w.state.yaw = ob.x - 4.0, ob.y, 0.0
        w.step(0.0, 0.0, 1e-3)
        labels = w.render_labels()
        k = w.camera_matrix()
        d = free_distance_from_labels(labels, 1, k[1, 1], k[1, 2], CAMERA_HEIGHT,
                                      math.radians(CAMERA_PITCH_DEG), band=0.05)
        truth = w.free_distance_ahead(max_range=8.0) + 0.3    # robot radius
        assert abs(d - truth) < 0.6, (d, truth)
        # at half resolution the same scene gives about the same distance
        half = labels[::2, ::2]
        d2 = free_distance_from_labels(half, 1, k[1, 1] / 2, (half.shape[0] - 1) / 2,
                                       CAMERA_HEIGHT, math.radians(CAMERA_PITCH_DEG), band=0.05)
        assert abs(d2 - d) < 0.4


def test_free_distance_edge_cases():
    lab = np.ones((48, 64), np.uint8)
    assert free_distance_from_labels(lab, 1, 40, 23.5, 0.5, 0.26, max_range=8.0) == 8.0
    lab[-1] = 2
    assert free_distance_from_labels(lab, 1, 40, 23.5, 0.5, 0.26) == 0.0


def _pixel(fwd, lat, h, w, fy, cam_h, pitch):
    """Where a ground point shows in the image (the inverse of the flat-ground model)."""
    zc = fwd * math.cos(pitch) + cam_h * math.sin(pitch)
    yc = -fwd * math.sin(pitch) + cam_h * math.cos(pitch)
    return (w - 1) / 2 + fy * -lat / zc, (h - 1) / 2 + fy * yc / zc


def test_ground_contacts_invert_the_camera_projection():
    h, w, fy, cam_h, pitch = 240, 320, 171.0, 0.5, math.radians(15.0)
    lab = np.ones((h, w), np.uint8)
    for fwd, lat in ((2.0, 0.0), (4.0, 1.2), (3.0, -1.0)):
        u, v = _pixel(fwd, lat, h, w, fy, cam_h, pitch)
        lab[:int(round(v)) + 1, int(round(u))] = 2          # an obstacle standing there
    f, y, ends = ground_contacts(lab, 1, fy, cam_h, pitch)
    assert len(f) == 3 and set(ends) == {2}
    got = sorted(zip(f, y))                  # within the pixels' rounding on the ground
    want = [(2.0, 0.0), (3.0, -1.0), (4.0, 1.2)]
    assert np.allclose(got, want, atol=0.25), got
    lab2 = np.ones((h, w), np.uint8)
    lab2[100, 50] = 2                                        # one stray pixel: no obstacle
    assert len(ground_contacts(lab2, 1, fy, cam_h, pitch)[0]) == 0


def test_slowdown_zone_sees_a_person_waiting_beside_the_lane_in_a_rendering():
    p = ControlParams(camera_height=CAMERA_HEIGHT, camera_pitch_deg=CAMERA_PITCH_DEG,
                      camera_fovy_deg=CAMERA_FOVY_DEG)

    def alone(course, ob):                   # nothing else near: no static obstacle
        y = course.lane_y(ob.x)
        return not any(ob.x - 6.5 < o.x < ob.x + 1.0 and abs(o.y - y) < 2.5
                       for o in course.obstacles)
    courses = (make_course(s, late_obstacles=1) for s in range(5000, 5100))
    seed = next(c.seed for c in courses if alone(c, c.late[0]))
    with World(seed, width=320, height=240, late_obstacles=1) as w:
        w.reset(0.0)
        (px, py), ob = w.late_positions()[0], w.course.late[0]
        assert 1.2 <= abs(py - w.course.lane_y(px)) <= 1.8       # waiting beside the lane
        w.state.x, w.state.y, w.state.yaw = px - 5.0, w.course.lane_y(px), 0.0
        w.step(0.0, 0.0, 1e-3)
        seen = slowdown_distance(w.render_labels(), p)
    # ~5 m ahead: between its near edge and half a metre beyond its axis (its foot is
    # rounded: the floor shows under it, the flat-ground model places it a little further)
    assert seen is not None and 5.0 - ob.radius - 0.2 <= seen <= 5.5, seen
    assert slowdown_distance(np.ones((240, 320), np.uint8), p) is None    # open floor
    assert slowdown_distance(np.ones((240, 320), np.uint8),
                             ControlParams(slowdown_half_width=0.0)) is None


def test_the_slowdown_caps_the_speed_until_the_robot_is_past_the_obstacle():
    g = _gov(slowdown_speed=1.0, slowdown_past=0.5, max_accel=10.0, control_period=0.05)
    t, passed_at = 0.0, None
    g.on_perception(Perception(t, 20.0, 640, 1.0, free_distance=8.0))
    g.observe_slowdown(3.0)                  # 3 m ahead: capped until 3.5 m further on
    driven = 0.0
    while driven < 6.0:
        g.on_perception(Perception(t, 20.0, 640, 1.0, free_distance=8.0))
        v, _ = g.step(t, 2.0, 0.0)
        if driven < 3.5 - 1e-6:
            assert v <= 1.0 + 1e-9 and g.slowing
        elif passed_at is None:
            passed_at = driven
        driven += v * 0.05
        t += 0.05
    assert passed_at is not None and not g.slowing and v > 1.0     # free again past it


def _gov(**kw):
    return SpeedGovernor(ControlParams(**kw))


def test_watchdog_decelerates_to_zero_at_the_limit_and_resumes_when_fresh():
    g = _gov(max_decel=2.0, control_period=0.05, watchdog_timeout=0.3)
    t = 0.0
    for _ in range(60):                       # perception at 20 Hz, free road
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        v, _ = g.step(t, 1.5, 0.0)
        t += 0.05
    assert v == pytest.approx(1.5)
    speeds = []
    for _ in range(40):                       # perception stops
        v, _ = g.step(t, 1.5, 0.0)
        speeds.append(v)
        t += 0.05
    assert speeds[-1] == 0.0 and 'watchdog' in g.reason
    drops = -np.diff(speeds)
    assert drops.max() <= 2.0 * 0.05 + 1e-9   # never harsher than the deceleration limit
    t_zero = speeds.index(0.0) * 0.05
    assert t_zero <= 0.3 + 1.5 / 2.0 + 0.1
    g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
    assert g.step(t, 1.5, 0.0)[0] > 0.0


def test_limit_follows_latency_resolution_and_quality():
    def limit(lat_ms, width, quality):
        g = _gov(max_speed=10.0)
        for i in range(10):
            g.on_perception(Perception(i * 0.05, lat_ms, width, quality, free_distance=5.0))
        g.step(0.45, 10.0, 0.0)
        return g.v_limit
    assert limit(10, 640, 0.9) > limit(150, 640, 0.9)
    assert limit(10, 640, 0.9) > limit(10, 160, 0.9)
    assert limit(10, 640, 0.95) > limit(10, 640, 0.6)


def test_gains_follow_rate_and_bad_commands_fail_safe():
    fast, slow = _gov(), _gov()
    for i in range(20):
        fast.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        slow.on_perception(Perception(i / 5, 10.0, 640, 0.9, free_distance=8.0))
    wf = fast.step(19 / 30, 1.0, 1.0)[1]
    ws = slow.step(19 / 5, 1.0, 1.0)[1]
    assert abs(wf) > abs(ws)
    v_before = fast.v_cmd
    v, w = fast.step(19 / 30 + 0.01, float('nan'), 0.3)   # non-finite command = stop
    # decelerating at max_decel over the 0.01 s since the previous step
    assert w == 0.0 and v == pytest.approx(max(0.0, v_before - 1.5 * 0.01))


def test_watchdog_deceleration_follows_the_time_between_steps():
    """Late or early control steps still decelerate at exactly max_decel."""
    g = _gov()
    for i in range(30):
        g.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        g.step(i / 30, 1.5, 0.0)
    v0, t0 = g.v_cmd, 29 / 30
    assert v0 > 0.5
    stale = t0 + g.p.watchdog_timeout + 0.001
    t, times = stale, [stale, stale + 0.013, stale + 0.2, stale + 0.21, stale + 0.5]
    v_prev, t_prev = v0, t0
    for t in times:
        v, _ = g.step(t, 1.5, 0.0)
        assert v == pytest.approx(max(0.0, v_prev - g.p.max_decel * (t - t_prev)))
        v_prev, t_prev = v, t


def test_an_obstacle_counts_at_once_and_clears_only_when_frames_agree():
    g = SpeedGovernor(ControlParams(free_confirm_frames=3))
    for d in (6.0, 6.0, 6.0):
        g.observe_free_distance(d)
    assert g.free_distance == 6.0
    g.observe_free_distance(0.8)                 # a person steps in: believed at once
    assert g.free_distance == 0.8
    g.observe_free_distance(8.0)                 # one or two frames that miss them ...
    g.observe_free_distance(8.0)
    assert g.free_distance == 0.8                # ... do not clear the way
    g.observe_free_distance(7.5)                 # three in a row do
    assert g.free_distance == 7.5
    g.observe_free_distance(float('nan'))        # a broken value is ignored
    assert g.free_distance == 7.5


def test_a_seen_obstacle_comes_nearer_as_the_robot_drives_on():
    p = ControlParams(max_speed=1.0, max_accel=20.0, free_confirm_frames=3)
    g = SpeedGovernor(p)
    t = 0.0
    g.on_perception(Perception(t, 20.0, 640, 1.0, free_distance=8.0))
    for _ in range(3):
        g.observe_free_distance(4.0)
    for _ in range(20):                          # 1 s at up to 1 m/s, perception fresh
        t += p.control_period
        g.on_perception(Perception(t, 20.0, 640, 1.0))
        g.step(t, 1.0, 0.0)
    driven = g._odom
    assert driven > 0.5
    assert g.free_distance == pytest.approx(4.0 - driven)
    g.observe_free_distance(4.0)                 # a frame claiming more room than is left ...
    assert g.free_distance == pytest.approx(4.0 - driven)   # ... does not move it away


def test_watchdog_branch_clips_the_yaw_rate():
    """While decelerating on stale perception, a huge planner yaw rate is still capped."""
    g = _gov(max_yaw_rate=0.8, steer_gain=2.0)
    for i in range(30):
        g.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        g.step(i / 30, 1.5, 0.0)
    assert g.v_cmd > 0.0
    v, w = g.step(29 / 30 + g.p.watchdog_timeout + 0.01, 1.5, 50.0)
    assert 'watchdog' in g.reason and v > 0.0
    assert w == pytest.approx(0.8)
    v, w = g.step(29 / 30 + g.p.watchdog_timeout + 0.02, 1.5, -50.0)
    assert w == pytest.approx(-0.8)


@pytest.mark.parametrize('point', ['640x480/d3/int8', '320x240/d3/int8'])
def test_a_person_in_the_lane_stops_the_robot_on_the_bundled_models_segmentation(point):
    """Closed loop on the real model: the robot drives at a person standing in the lane, every
    control step renders the camera, the bundled model segments it at ``point`` and the law
    acts on that. Closer than ~1.5 m the model reads the free distance long at 640x480 (it takes
    the person's lower body for floor: 2.2 m for 1.4 m); the obstacle seen from further away
    must stay until frames see the way clear well beyond it (``free_clear_margin``), so the
    robot slows to a stop short of the person. (With a margin of 0.5 m it drives into them.)"""
    from tts_perception.adaptive.pipeline import AdaptivePipeline, PipelineConfig
    from tts_perception.common.paths import share_dir
    from tts_perception.inference.runner import infer
    pipe = AdaptivePipeline(PipelineConfig(backend='onnxruntime'), base_dir=share_dir())
    op = next(p for p in pipe.points if p.key == point)
    p = ControlParams(camera_height=CAMERA_HEIGHT, camera_pitch_deg=CAMERA_PITCH_DEG,
                      camera_fovy_deg=CAMERA_FOVY_DEG)
    g = SpeedGovernor(p)
    dt, latency_ms = p.control_period, 30.0
    with World(5003, 30.0, late_obstacles=2) as w:   # closed_loop's course of that seed
        ob = w.course.late[0]
        w.reset(ob.x - 3.0)
        w.state.y = w.course.lane_y(ob.x)               # heading straight at them
        w.late_trigger[0] = -ob.offset / ob.speed      # in the lane now, for hold_s
        closest = float('inf')
        for i in range(int(ob.hold_s / dt)):
            t = i * dt
            labels, _ = infer(pipe.model, pipe.backend, [w.render_rgb()], op)
            g.on_perception(Perception(t + latency_ms / 1e3, latency_ms, op.width, 0.94))
            g.observe_segmentation(np.asarray(labels)[0])
            v, _ = g.step(t + dt, 2.0, 0.0)
            w.step(v, 0.0, dt)
            assert w.collisions == 0, (t, w.state, g.free_distance)
            closest = min(closest, w.clearance())
    assert closest > 0.25 and v < 0.5, (closest, v)
