"""Whether a perception node is doing its work, from its counters alone."""

import pytest

from tts_perception.common.health import (camera_level, CameraState, Counts, starving,
                                          worker_problem)

pytestmark = pytest.mark.unit


def test_frames_that_arrive_and_are_never_processed_name_the_counter_that_grows():
    old = Counts(10.0, received=100, processed=90, future=2)
    assert starving(old, Counts(12.0, received=160, processed=95)) is None     # working
    assert starving(old, Counts(12.0, received=100, processed=90)) is None     # no input
    msg = starving(old, Counts(12.0, received=160, processed=90, future=62))
    assert '60 frames arrived in 2.0 s and none was processed' in msg
    assert 'future +60' in msg and 'use_sim_time' in msg and 'stale' not in msg
    msg = starving(old, Counts(12.0, received=130, processed=90, errors=20, bad=10))
    assert 'errors +20' in msg and 'bad +10' in msg
    assert 'the worker holds them' in starving(old, Counts(12.0, received=101, processed=90))


def test_a_dead_or_hung_worker_of_an_active_node_is_a_problem():
    assert worker_problem(False, False, None, 10.0) is None           # not active: no worker
    assert worker_problem(True, True, None, 10.0) is None             # idle
    assert worker_problem(True, True, 3.0, 10.0) is None              # busy within the bound
    assert 'has died' in worker_problem(True, False, None, 10.0)
    assert 'not finished a frame for 12.0 s' in worker_problem(True, True, 12.0, 10.0)


def _cam(**kw):
    base = dict(now=100.0, last_arrival=99.9, period_s=0.05, history=(), lost_share=0.0,
                processed=100, missed=0)
    return CameraState(**{**base, **kw})


def test_a_cameras_level_from_its_counters():
    assert camera_level(_cam(), 'fix') == ('OK', '100 frames, 0 misses')
    assert camera_level(_cam(missed=6), 'fix')[0] == 'WARN'            # > 5 % missed
    assert camera_level(_cam(missed=5), 'fix')[0] == 'OK'
    assert camera_level(_cam(last_arrival=None), 'fix') == ('WARN', 'no input yet')
    # silent for more than 5 periods and at least 1 s: an ERROR that says how long
    assert camera_level(_cam(last_arrival=98.5), 'fix') == ('ERROR', 'no input for 1.5 s')
    assert camera_level(_cam(last_arrival=99.5, period_s=0.5), 'fix')[0] == 'OK'
    # frames arrive and none is processed: the counter that grew is named
    hist = (Counts(90.0, 10, 5, stale=0), Counts(99.0, 30, 5, stale=20))
    level, msg = camera_level(_cam(history=hist), 'fix')
    assert level == 'ERROR' and 'stale +20' in msg


def test_transport_losses_name_the_fix_and_are_an_error_when_nothing_gets_through():
    level, msg = camera_level(_cam(lost_share=0.2), 'use the profile')
    assert level == 'WARN' and msg.startswith('20 %') and msg.endswith('use the profile')
    assert camera_level(_cam(lost_share=0.04), 'x')[0] == 'OK'
    assert camera_level(_cam(lost_share=0.2, last_arrival=None), 'x')[0] == 'ERROR'
    assert camera_level(_cam(lost_share=0.2, last_arrival=90.0), 'x')[0] == 'ERROR'
