"""The closed loop's summary of runs that did not finish (pure functions, no sim)."""

import pytest

from tts_perception.tools.closed_loop import CourseRun, finished_speed_ratio, unfinished

pytestmark = pytest.mark.unit


def _run(config: str, seed: int, speed: float, completed: bool = True) -> CourseRun:
    return CourseRun(config=config, seed=seed, policy='', collisions=0, walked_into=0,
                     min_clearance_m=1.25, completed=completed, time_s=30.0,
                     distance_m=30.0 if completed else 6.7, mean_speed=speed,
                     stale_distance_m=0.0, deadline_miss_rate=0.0, frames={},
                     min_compute_ms=1.0, fail_safe_stops=0, limit_binding_fraction=0.0,
                     binding_by_context={}, time_at_point_s={}, speed_cap=2.0,
                     late_obstacles=[])


def test_the_speed_ratio_counts_only_seeds_both_configurations_finished():
    runs = [_run('coupled', 1, 1.2), _run('golden_safe', 1, 0.8),
            _run('coupled', 2, 1.0), _run('golden_safe', 2, 0.1, completed=False),
            _run('coupled', 3, 0.2, completed=False), _run('golden_safe', 3, 0.7)]
    got = finished_speed_ratio(runs)
    assert got['seeds_both_finished'] == 1
    assert got['coupled_speed_over_golden_safe_where_both_finished'] == pytest.approx(1.5)
    assert finished_speed_ratio(runs[::2]) == {}          # no golden_safe run
    assert finished_speed_ratio([_run('coupled', 1, 1.0, False), _run('golden_safe', 1, 1.0)]
                                )['coupled_speed_over_golden_safe_where_both_finished'] is None


def test_unfinished_runs_are_named_with_where_they_stopped():
    runs = [_run('coupled', 1, 1.2), _run('cheapest', 5002, 0.1, completed=False)]
    line = unfinished(runs, 90.0)
    assert 'cheapest 5002: 6.7 m, 1.25 m' in line and 'coupled 1' not in line
    assert unfinished(runs[:1], 90.0) == ''
