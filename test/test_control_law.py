"""The latency-aware control law, without ROS."""

from dataclasses import replace
import math

import numpy as np
import pytest

from tts_perception.control.control_law import (box_contacts, box_slowdown_distance,
                                                check_boxes, check_params, ControlParams,
                                                free_distance_from_boxes, free_distance_in,
                                                ground_contacts, _intrinsics, parse_record,
                                                Perception,
                                                ramp, RecordRefused, slowdown_distance,
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
    p = ControlParams(camera_height=CAMERA_HEIGHT, camera_pitch_deg=CAMERA_PITCH_DEG,
                      camera_fovy_deg=CAMERA_FOVY_DEG)
    with World(4, width=320, height=240) as w:
        w.reset(0.0)
        ob = next(o for o in w.course.obstacles if o.kind == 'box')
        w.state.x, w.state.y, w.state.yaw = ob.x - 4.0, ob.y, 0.0
        w.step(0.0, 0.0, 1e-3)
        labels = w.render_labels()
        d = free_distance_in(labels, p)
        truth = w.free_distance_ahead(max_range=8.0) + 0.3    # robot radius
        assert abs(d - truth) < 0.6, (d, truth)
        # at half resolution the same scene gives about the same distance
        assert abs(free_distance_in(labels[::2, ::2], p) - d) < 0.4


def test_free_distance_edge_cases():
    p = ControlParams(camera_height=0.5, camera_pitch_deg=15.0)
    lab = np.ones((48, 64), np.uint8)
    assert free_distance_in(lab, p) == p.max_sensing_distance
    lab[-2:, 30:34] = 2                        # something standing at the robot's feet
    assert free_distance_in(lab, p) == 0.0
    lab[-2:] = 1
    lab[-1, 30] = 2                            # one stray pixel: nothing
    assert free_distance_in(lab, p) == p.max_sensing_distance


@pytest.mark.parametrize('forward', [1.0, 1.5, 2.5, 4.0])
@pytest.mark.parametrize('edge', [0.0, 0.25, 0.45, -0.45])
def test_an_obstacle_anywhere_in_the_path_bounds_the_free_distance(forward, edge):
    """An obstacle 0.2 m wide whose edge nearest the heading line is ``edge`` to its side
    (within the robot's half width of 0.3 m, or the 0.5 m path): its distance, wherever it
    stands across the path. (A central band of the image saw none of these nearer than
    2.5 m beyond 0.25 m to the side: the robot drove on into them.) One beyond the path
    does not count."""
    p = ControlParams(camera_height=CAMERA_HEIGHT, camera_pitch_deg=CAMERA_PITCH_DEG,
                      camera_fovy_deg=CAMERA_FOVY_DEG)
    h, w = 480, 640
    fy = _intrinsics((h, w), p)[0]
    pitch = math.radians(CAMERA_PITCH_DEG)

    def obstacle(lat0, lat1):
        lab = np.ones((h, w), np.uint8)
        (u0, v), (u1, _) = (_pixel(forward, lat, h, w, fy, CAMERA_HEIGHT, pitch)
                            for lat in (lat0, lat1))
        a, b = sorted((int(round(u0)), int(round(u1))))
        lab[:int(round(v)) + 1, max(a, 0):max(b, 0) + 1] = 2
        return lab
    side = 1.0 if edge >= 0 else -1.0
    d = free_distance_in(obstacle(edge, edge + side * 0.2), p)
    assert abs(d - forward) < 0.05 * forward + 0.05, (d, forward)
    beyond = free_distance_in(obstacle(side * 0.6, side * 0.8), p)
    assert beyond == p.max_sensing_distance


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
        v, _ = drive(g, t, 2.0, 0.0)
        if driven < 3.5 - 1e-6:
            assert v <= 1.0 + 1e-9 and g.slowing
        elif passed_at is None:
            passed_at = driven
        driven += v * 0.05
        t += 0.05
    assert passed_at is not None and not g.slowing and v > 1.0     # free again past it


def _gov(**kw):
    return SpeedGovernor(ControlParams(**kw))


def drive(g, t, v, w):
    """One control step with the planner commanding (v, w) at ``t``."""
    g.on_command(t, v, w)
    return g.step(t)


def test_watchdog_decelerates_to_zero_at_the_limit_and_resumes_when_fresh():
    g = _gov(max_decel=2.0, control_period=0.05, watchdog_timeout=0.3)
    t = 0.0
    for _ in range(60):                       # perception at 20 Hz, free road
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        v, _ = drive(g, t, 1.5, 0.0)
        t += 0.05
    assert v == pytest.approx(1.5)
    speeds = []
    for _ in range(40):                       # perception stops
        v, _ = drive(g, t, 1.5, 0.0)
        speeds.append(v)
        t += 0.05
    assert speeds[-1] == 0.0 and 'watchdog' in g.reason
    drops = -np.diff(speeds)
    assert drops.max() <= 2.0 * 0.05 + 1e-9   # never harsher than the deceleration limit
    t_zero = speeds.index(0.0) * 0.05
    assert t_zero <= 0.3 + 1.5 / 2.0 + 0.1
    g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
    assert drive(g, t, 1.5, 0.0)[0] > 0.0


def test_records_without_a_segmentation_or_detections_stop_the_robot():
    """Records say perception runs; only a segmentation or detections show the way. When
    they fall silent (their publisher died, every message refused) while records keep
    coming, the robot stops as for stale records, and drives again when they return; a
    free distance that is not a number shows nothing."""
    g = _gov(max_decel=2.0, control_period=0.05, watchdog_timeout=0.3)
    t = 0.0
    for _ in range(10):                        # records, no view yet
        g.on_perception(Perception(t, 20.0, 640, 0.95))
        v, _ = drive(g, t, 1.5, 0.0)
        t += 0.05
    assert v == 0.0 and 'no segmentation or detections yet' in g.reason
    for _ in range(80):                        # records and boxes of a free road
        g.on_perception(Perception(t, 20.0, 640, 0.95))
        g.observe_boxes(np.zeros((0, 4)), (480, 640))
        v, _ = drive(g, t, 1.5, 0.0)
        t += 0.05
    assert v == pytest.approx(1.5) and g.fresh(t)
    speeds = []
    for i in range(40):                        # the boxes stop; records go on
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=float('nan')))
        v, _ = drive(g, t, 1.5, 0.0)
        speeds.append(v)
        t += 0.05
    assert speeds[-1] == 0.0 and not g.fresh(t)
    assert 'no segmentation or detections for' in g.reason
    assert speeds.index(0.0) * 0.05 <= 0.3 + 1.5 / 2.0 + 0.1
    assert -np.diff(speeds).max() <= 2.0 * 0.05 + 1e-9
    g.on_perception(Perception(t, 20.0, 640, 0.95))
    g.observe_boxes(np.zeros((0, 4)), (480, 640))
    assert drive(g, t, 1.5, 0.0)[0] > 0.0


def test_limit_follows_latency_resolution_and_quality():
    def limit(lat_ms, width, quality):
        g = _gov(max_speed=10.0)
        for i in range(10):
            g.on_perception(Perception(i * 0.05, lat_ms, width, quality, free_distance=5.0))
        drive(g, 0.45, 10.0, 0.0)
        return g.v_limit
    assert limit(10, 640, 0.9) > limit(150, 640, 0.9)
    assert limit(10, 640, 0.9) > limit(10, 160, 0.9)
    assert limit(10, 640, 0.95) > limit(10, 640, 0.6)


def test_gains_follow_rate_and_bad_commands_fail_safe():
    fast, slow = _gov(max_yaw_accel=1000.0), _gov(max_yaw_accel=1000.0)
    for i in range(20):
        fast.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        slow.on_perception(Perception(i / 5, 10.0, 640, 0.9, free_distance=8.0))
    wf = drive(fast, 19 / 30, 1.0, 1.0)[1]
    ws = drive(slow, 19 / 5, 1.0, 1.0)[1]
    assert abs(wf) > abs(ws)
    v_before = fast.v_cmd
    v, w = drive(fast, 19 / 30 + 0.01, float('nan'), 0.3)   # non-finite command = stop
    # decelerating at max_decel over the 0.01 s since the previous step
    assert w == 0.0 and v == pytest.approx(max(0.0, v_before - 1.5 * 0.01))


def test_watchdog_deceleration_follows_the_time_between_steps():
    """Late or early control steps still decelerate at exactly max_decel."""
    g = _gov()
    for i in range(30):
        g.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        drive(g, i / 30, 1.5, 0.0)
    v0, t0 = g.v_cmd, 29 / 30
    assert v0 > 0.5
    stale = t0 + g.p.watchdog_timeout + 0.001
    t, times = stale, [stale, stale + 0.013, stale + 0.2, stale + 0.21, stale + 0.5]
    v_prev, t_prev = v0, t0
    for t in times:
        v, _ = drive(g, t, 1.5, 0.0)
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
        drive(g, t, 1.0, 0.0)
    driven = g._odom
    assert driven > 0.5
    assert g.free_distance == pytest.approx(4.0 - driven)
    g.observe_free_distance(4.0)                 # a frame claiming more room than is left ...
    assert g.free_distance == pytest.approx(4.0 - driven)   # ... does not move it away


def test_watchdog_branch_clips_the_yaw_rate():
    """While decelerating on stale perception, a huge planner yaw rate is still capped."""
    g = _gov(max_yaw_rate=0.8, steer_gain=2.0, max_yaw_accel=1000.0)
    for i in range(30):
        g.on_perception(Perception(i / 30, 10.0, 640, 0.9, free_distance=8.0))
        drive(g, i / 30, 1.5, 0.0)
    assert g.v_cmd > 0.0
    v, w = drive(g, 29 / 30 + g.p.watchdog_timeout + 0.01, 1.5, 50.0)
    assert 'watchdog' in g.reason and v > 0.0
    assert w == pytest.approx(0.8)
    v, w = drive(g, 29 / 30 + g.p.watchdog_timeout + 0.02, 1.5, -50.0)
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
            v, _ = drive(g, t + dt, 2.0, 0.0)
            w.step(v, 0.0, dt)
            assert w.collisions == 0, (t, w.state, g.free_distance)
            closest = min(closest, w.clearance())
    assert closest > 0.25 and v < 0.5, (closest, v)


# ---------------------------------------------------------------- untrusted inputs
def _record(**kw):
    """A decision record's key-values as the perception node publishes them."""
    values = {'stamp_ns': str(int(100e9)), 'age_ms': '12.0', 'total_ms': '8.0', 'width': '640',
              'predicted_accuracy': '0.9'}
    values.update({k: str(v) for k, v in kw.items()})
    return values


def test_a_record_gives_the_blind_time_from_its_stamp_on_arrival():
    p = ControlParams()
    per = parse_record(_record(), arrival=5.0, now_stamp_s=100.05, p=p)
    assert per.latency_ms == pytest.approx(50.0)           # capture -> arrival, not compute
    assert per.stamp == pytest.approx(5.0 - 0.05)           # the capture, on the steady clock
    # a controller clock behind the camera's shortens nothing: the record's own age counts
    per = parse_record(_record(), arrival=5.0, now_stamp_s=100.0, p=p)
    assert per.latency_ms == pytest.approx(20.0)


@pytest.mark.parametrize('field,value,kind', [
    ('predicted_accuracy', 'nan', 'malformed'), ('predicted_accuracy', '1.5', 'malformed'),
    ('total_ms', '1e200', 'malformed'), ('total_ms', 'inf', 'malformed'),
    ('age_ms', '-3', 'malformed'), ('width', '0', 'malformed'), ('width', 'x', 'malformed'),
    ('stamp_ns', 'nan', 'malformed'), ('total_ms', '600', 'stale'),
    ('stamp_ns', str(int(99e9)), 'stale'), ('stamp_ns', str(int(102e9)), 'future')])
def test_a_record_with_a_bad_or_old_field_is_refused_with_its_reason(field, value, kind):
    with pytest.raises(RecordRefused) as err:
        parse_record(_record(**{field: value}), 5.0, 100.01, ControlParams())
    assert err.value.kind == kind and (field in str(err.value) or kind != 'malformed')
    values = _record()
    del values['width']
    with pytest.raises(RecordRefused, match='no width'):
        parse_record(values, 5.0, 100.01, ControlParams())


def _driving(**kw):
    """A governor at cruise speed on a free road, perception at 20 Hz, until ``t``."""
    g = _gov(**kw)
    t = 0.0
    for _ in range(60):
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        drive(g, t, 1.0, 0.0)
        t += 0.05
    assert g.v_cmd == pytest.approx(1.0)
    return g, t


def test_a_silent_planner_is_a_stop_request_and_driving_resumes_when_it_speaks():
    g, t = _driving(cmd_timeout=0.5, max_decel=2.0)
    last_cmd, speeds = t - 0.05, []
    for _ in range(30):                       # perception stays fresh, the planner is silent
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        speeds.append(g.step(t)[0])
        t += 0.05
    assert speeds[-1] == 0.0 and 'cmd_vel_in silent' in g.reason
    t_zero = last_cmd + 0.05 * speeds.index(0.0)
    assert t_zero - last_cmd <= 0.5 + 1.0 / 2.0 + 0.1      # timeout plus the braking time
    assert max(-np.diff(speeds)) <= 2.0 * 0.05 + 1e-9      # at the deceleration limit
    g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
    assert drive(g, t, 1.0, 0.0)[0] > 0.0


def test_the_law_fails_closed_on_overflow_and_poisoned_state():
    assert stopping_speed_limit(1e200, 1.5, 8.0) == 0.0
    assert stopping_speed_limit(float('inf'), 1.5, 8.0) == 0.0
    g, t = _driving()
    g.on_perception(Perception(t, 20.0, 640, float('nan'), free_distance=8.0))
    g.on_perception(Perception(t, 1e200, 640, 0.9))        # past the record checks anyway
    for i in range(40):
        v, w = drive(g, t + 0.05 * i, 1.0, 1.0)
        assert math.isfinite(v) and math.isfinite(w) and abs(w) <= g.p.max_yaw_rate
    assert v < 1.0


def test_lowered_caps_apply_to_the_next_command_and_a_stall_is_no_jump():
    g, t = _driving(max_speed=2.0, max_accel=1.0)
    g.set_params(ControlParams(max_speed=0.3))
    assert drive(g, t, 1.0, 0.0)[0] <= 0.3
    g, t = _driving(max_speed=2.0, max_accel=1.0)
    g.set_params(ControlParams(max_speed=2.0, max_accel=1.0, watchdog_timeout=5.0,
                               cmd_timeout=5.0))
    v0 = drive(g, t, 2.0, 0.0)[0]
    g.on_perception(Perception(t + 1.5, 20.0, 640, 0.95, free_distance=8.0))
    v1 = drive(g, t + 1.5, 2.0, 0.0)[0]                    # 1.5 s executor stall
    assert 0.0 < v1 - v0 <= 1.0 * g.p.control_period + 1e-9


def test_the_yaw_rate_changes_within_its_limit_and_obeys_a_lowered_cap():
    g, t = _driving(max_yaw_accel=4.0, steer_gain=5.0)
    ws = []
    for i in range(20):
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        ws.append(drive(g, t, 1.0, 1.5 if i < 10 else -1.5)[1])
        t += 0.05
    assert max(abs(np.diff([0.0] + ws))) <= 4.0 * 0.05 + 1e-9
    assert ws[9] == pytest.approx(1.5) and ws[-1] < 0
    g.set_params(ControlParams(max_yaw_rate=0.2, max_yaw_accel=4.0, steer_gain=5.0))
    assert abs(drive(g, t, 1.0, -1.5)[1]) <= 0.2


def test_a_reverse_command_is_capped_and_said_or_refused():
    g, t = _driving(max_reverse_speed=0.1)
    for i in range(60):
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        v, _ = drive(g, t, -1.0, 0.0)
        t += 0.05
    assert v == pytest.approx(-0.1) and 'reverse capped' in g.reason
    g, t = _driving(max_reverse_speed=0.0)
    for i in range(60):
        g.on_perception(Perception(t, 20.0, 640, 0.95, free_distance=8.0))
        v, _ = drive(g, t, -1.0, 0.0)
        t += 0.05
    assert v == 0.0 and 'reverse capped at 0.0' in g.reason


def test_runtime_changes_are_checked_as_at_start_and_windows_resize():
    assert check_params(ControlParams()) == []
    assert 'watchdog_timeout' in check_params(ControlParams(control_period=0.5,
                                                            watchdog_timeout=0.2))[0]
    assert 'cmd_timeout' in ' '.join(check_params(ControlParams(control_period=0.5,
                                                                watchdog_timeout=0.5,
                                                                cmd_timeout=0.1)))
    assert 'finite' in check_params(ControlParams(max_speed=float('nan')))[0]
    g, _ = _driving(latency_window=30)
    g.set_params(ControlParams(latency_window=5))
    assert g.latencies.maxlen == 5 and len(g.latencies) == 5


def test_ramp_moves_through_zero_and_never_past_the_target():
    assert ramp(1.0, 0.0, 0.1, 0.2) == pytest.approx(0.8)
    assert ramp(0.1, -1.0, 0.1, 0.2) == 0.0                  # a change of sign stops first
    assert ramp(0.0, -1.0, 0.1, 0.2) == pytest.approx(-0.1)
    assert ramp(0.5, 0.55, 0.1, 0.2) == pytest.approx(0.55)


def test_every_command_is_finite_and_within_the_caps_whatever_arrives():
    rng = np.random.default_rng(0)
    bad = [float('nan'), float('inf'), -float('inf'), 1e308, -1e308, 0.0, 5.0, -5.0]
    g = _gov()
    t = 0.0
    for _ in range(3000):
        t += float(rng.choice([0.0, 0.01, 0.05, 0.05, 2.0, -0.5]))
        r = rng.random()
        if r < 0.3:
            g.on_command(t, float(rng.choice(bad)), float(rng.choice(bad)))
        elif r < 0.6:
            g.on_perception(Perception(t - float(rng.choice([0.0, 0.05, 3.0])),
                                       float(rng.choice(bad)), 640, float(rng.random())))
        elif r < 0.7:
            g.observe_free_distance(float(rng.choice(bad)))
        v, w = g.step(t)
        assert math.isfinite(v) and math.isfinite(w)
        assert -g.p.max_reverse_speed <= v <= g.p.max_speed and abs(w) <= g.p.max_yaw_rate


def test_a_detectors_boxes_give_the_free_distance_and_slowdown_through_the_geometry():
    """The simulator's own boxes (each obstacle's visible pixels) read as a detector's: the
    nearest box ahead is where the ground truth ends the free floor; a box beside the lane is
    in the slowdown zone and not ahead; nothing ahead: the sensing cap."""
    p = ControlParams(camera_height=CAMERA_HEIGHT, camera_pitch_deg=CAMERA_PITCH_DEG,
                      camera_fovy_deg=CAMERA_FOVY_DEG)
    with World(4, width=320, height=240) as w:
        w.reset(0.0)
        ob = next(o for o in w.course.obstacles if o.kind == 'box')
        w.state.x, w.state.y, w.state.yaw = ob.x - 4.0, ob.y, 0.0
        w.step(0.0, 0.0, 1e-3)
        boxes, _ = w.render_boxes()
        from_boxes = free_distance_from_boxes(boxes, (240, 320), p)
        truth = w.free_distance_ahead(max_range=8.0) + 0.3        # robot radius
        assert abs(from_boxes - truth) < 0.6, (from_boxes, truth)
        # the box's lowest visible pixel is where it stands: never further than the floor
        # the segmentation sees free up to
        assert from_boxes <= free_distance_in(w.render_labels(), p) + 1e-6
    assert free_distance_from_boxes(np.zeros((0, 4)), (240, 320), p) == p.max_sensing_distance
    assert box_slowdown_distance(np.zeros((0, 4)), (240, 320), p) is None
    # a box reaching the bottom row touches the robot: nothing is free
    assert free_distance_from_boxes(np.array([[100., 50., 220., 239.]]), (240, 320), p) == 0.0
    # near the robot the path is wider than any central band of the image: a box whose right
    # edge reaches into the path bounds the free distance, one beside it does not
    edge = np.array([[0., 150., 120., 200.]])
    fwd, lat, _ = box_contacts(edge, (240, 320), p)
    assert lat[0].min() < p.path_half_width < lat[0].max()
    assert free_distance_from_boxes(edge, (240, 320), p) == pytest.approx(fwd[0])
    assert free_distance_from_boxes(edge, (240, 320), replace(p, path_half_width=0.05)) == \
        p.max_sensing_distance
    # beside the lane, in the zone; far to the side, not
    side = np.array([[0., 100., 40., 180.]])
    d = box_slowdown_distance(side, (240, 320), p)
    assert d is not None and d == pytest.approx(box_contacts(side, (240, 320), p)[0][0])
    assert free_distance_from_boxes(side, (240, 320), p) == p.max_sensing_distance
    assert box_slowdown_distance(side, (240, 320), replace(p, slowdown_half_width=0.1)) is None


@pytest.mark.parametrize('boxes, why', [
    ([[0, 0, float('nan'), 5]], 'not finite'), ([[0, 0, float('inf'), 5]], 'not finite'),
    ([[10, 0, 5, 5]], 'swapped')])
def test_boxes_that_cannot_be_acted_on_are_named(boxes, why):
    assert why in check_boxes(np.array(boxes, float), (240, 320))
    assert check_boxes(np.array([[0., 0., 5., 5.]]), (240, 320)) == ''
    assert 'camera' in check_boxes(np.zeros((0, 4)), (0, 320))
