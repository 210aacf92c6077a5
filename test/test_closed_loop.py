"""The closed loop, CI-sized: a few seconds of sim time with the real pipeline and the law."""

from dataclasses import replace

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.adaptive.pipeline import AdaptivePipeline, PipelineConfig
from tts_perception.control.control_law import ControlParams, stopping_speed_limit
from tts_perception.sim.course import late_obstacle_min_distance
from tts_perception.tools.closed_loop import (CONFIGS, LoopSettings, run_course, safe_speed,
                                              summarise, targets)

pytestmark = pytest.mark.slow

SHORT = LoopSettings(length=10.0, max_time=4.0, late_obstacles=0)


@pytest.fixture(scope='module')
def pipe():
    return AdaptivePipeline(PipelineConfig(backend='onnxruntime'), base_dir=ROOT)


def test_the_robot_drives_and_the_summary_adds_up(pipe):
    run = run_course(pipe, CONFIGS['coupled'], 5000, SHORT)
    assert run.distance_m > 1.0 and run.collisions == 0
    f = run.frames
    assert f['processed'] > 20 and f['processed'] + f['dropped'] <= f['captured']
    assert abs(run.time_s - 4.0) < 0.06
    s = summarise([run])['coupled']
    assert s.seeds == 1 and s.mean_speed == pytest.approx(run.mean_speed)
    assert targets(summarise([run]))['coupled_zero_collisions'] is True


def test_injected_latency_lowers_the_speed_limit_as_the_law_predicts(pipe):
    params = ControlParams()
    fast = run_course(pipe, CONFIGS['coupled'], 5001, SHORT, params)
    slow = run_course(pipe, CONFIGS['coupled'], 5001, replace(SHORT, latency_factor=40.0),
                      params)
    for run in (fast, slow):
        for p in run.trace:
            if not p['fresh']:
                continue
            law = stopping_speed_limit(p['latency_q'] + params.control_period,
                                       params.max_decel, p['distance'])
            cap = params.slowdown_speed if p['slowing'] else params.max_speed
            assert p['v_limit'] == pytest.approx(min(params.max_speed, law, cap), abs=1e-9)
    q_fast = np.median([p['latency_q'] for p in fast.trace if p['fresh']])
    q_slow = [p['latency_q'] for p in slow.trace[40:] if p['fresh']]
    # the law saw the injected latency: every result of the slow run took at least its own
    # compute x 40, the fastest frame's as the pipeline measured it in this run (not the
    # profile's latency: a machine faster than the profile's ran the cheapest point at 0.4 of
    # its p50); an uncoupled law would see x 4. Against the other run, typical against
    # typical (one frame of the fast run slowed by a busy machine can outlast the slow run's
    # fastest): 10x the factor
    assert 0.0 < slow.min_compute_ms < float('inf')
    assert min(q_slow) >= 40.0 * slow.min_compute_ms / 1e3 - 1e-9
    assert np.median(q_slow) > q_fast
    assert slow.distance_m < fast.distance_m


def test_paused_perception_stops_the_robot_within_twice_the_watchdog(pipe):
    params = ControlParams(max_decel=2.5, watchdog_timeout=0.5)
    s = replace(SHORT, planner_speed=1.0, max_time=5.0)
    run = run_course(pipe, CONFIGS['coupled'], 5002, s, params, pause_at=2.0)
    moving = [p for p in run.trace if p['t'] < 2.0 and p['v'] > 0.5]
    assert moving, 'the robot never got going'
    stopped_at = next(p['t'] for p in run.trace if p['t'] > 2.0 and p['v'] == 0.0)
    assert all(p['v'] == 0.0 for p in run.trace if p['t'] >= stopped_at)
    assert stopped_at - 2.0 <= 2 * params.watchdog_timeout
    assert run.fail_safe_stops == 1


def test_the_fixed_safe_speed_stops_for_the_nearest_person_in_time():
    params = ControlParams()
    t = 0.3
    v = safe_speed(t, params)
    d = late_obstacle_min_distance(params.max_speed) - params.camera_to_front - \
        params.stop_margin
    travelled = v * (t + params.control_period) + v * v / (2 * params.max_decel)
    assert travelled == pytest.approx(d)
    assert safe_speed(0.6, params) < v


def test_every_captured_frame_is_processed_or_counted_when_camera_and_control_misalign(pipe):
    """30 Hz camera, 20 Hz control steps: the gate's accounting still covers every frame (at
    most the last one still waits when the course ends)."""
    run = run_course(pipe, CONFIGS['coupled'], 5002, replace(SHORT, camera_hz=30.0),
                     keep_trace=False)
    f = run.frames
    assert f['processed'] > 0 and f['captured'] - f['processed'] - f['dropped'] in (0, 1), f


def test_the_bundled_detectors_boxes_drive_the_loop():
    """The same loop with the bundled detector: its boxes give the free distance (through the
    camera geometry), the robot drives on and stops short of what it sees."""
    det = AdaptivePipeline(PipelineConfig(model_path='models/tts_detnet', backend='onnxruntime'),
                           base_dir=ROOT)
    run = run_course(det, CONFIGS['coupled'], 5000, SHORT)
    assert run.collisions == 0 and run.distance_m > 1.0 and run.frames['processed'] > 20
    seen = [p['distance'] for p in run.trace if p['fresh']]
    assert seen and min(seen) < ControlParams().max_sensing_distance   # an obstacle ahead
