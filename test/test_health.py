"""Whether a perception node is doing its work, from its counters alone."""

import pytest

from tts_perception.common.health import Counts, starving, worker_problem

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
