"""The latency-aware control law, without ROS."""

import math

import numpy as np
import pytest

from tts_perception.control.control_law import (ControlParams, free_distance_from_labels,
                                                Perception, SpeedGovernor, stopping_speed_limit)
from tts_perception.sim.world import CAMERA_HEIGHT, CAMERA_PITCH_DEG, World

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
