"""The per-frame hindsight oracle on tables whose answer is known."""

import numpy as np
import pytest

from tts_perception.tools.oracle import (cost_at, frontier, PerFrameTable, saving_captured,
                                         static_cost_at)

pytestmark = pytest.mark.unit


def _conf(correct: int, wrong: int) -> np.ndarray:
    """A two-class frame: truth is class 1 everywhere; ``correct`` pixels right."""
    m = np.zeros((2, 2), np.int64)
    m[1, 1], m[1, 0] = correct, wrong
    return m


def test_the_oracle_runs_the_cheap_point_where_it_is_as_good():
    # cheap point: perfect on even frames, useless on odd ones; expensive: always perfect
    n = 10
    cheap = [_conf(100, 0) if f % 2 == 0 else _conf(0, 100) for f in range(n)]
    dear = [_conf(100, 0) for _ in range(n)]
    table = PerFrameTable(['cheap', 'dear'], np.array([1.0, 9.0]),
                          np.array([cheap, dear]))
    front = frontier(table)
    assert front[0].mean_compute_ms == pytest.approx(1.0)        # all cheap
    best = front[-1]
    assert best.accuracy == pytest.approx(1.0)
    # with hindsight: cheap on the even half, dear on the odd half
    assert best.mean_compute_ms == pytest.approx(5.0)
    assert best.points == {'cheap': 5, 'dear': 5}
    assert cost_at(front, 1.0) == pytest.approx(5.0)
    assert cost_at(front, 1.01) is None
    # frontier: cheaper first, every point better than the one before
    assert all(a.mean_compute_ms <= b.mean_compute_ms and a.accuracy < b.accuracy
               for a, b in zip(front, front[1:]))


def test_share_of_the_saving():
    assert saving_captured(9.0, 7.0, 5.0) == pytest.approx(0.5)
    assert saving_captured(9.0, 9.5, 5.0) == pytest.approx(-0.125)   # worse than static
    assert saving_captured(9.0, 7.0, None) is None
    assert saving_captured(5.0, 4.0, 5.0) is None                    # no saving to take
    assert saving_captured(10.0, 9.0, 9.9) is None                   # 1 %: next to nothing
    assert saving_captured(10.0, 9.0, 9.0) == pytest.approx(1.0)


def test_static_frontier_between_points():
    pts = [(2.0, 0.80), (4.0, 0.90), (10.0, 0.95), (12.0, 0.90)]
    assert static_cost_at(pts, 0.90) == pytest.approx(4.0)          # one point reaches it
    assert static_cost_at(pts, 0.85) == pytest.approx(3.0)          # half of each of two
    assert static_cost_at(pts, 0.93) == pytest.approx(7.6)          # 4 + 6 * 0.03 / 0.05
    assert static_cost_at(pts, 0.70) == pytest.approx(2.0)          # below all: the cheapest
    assert static_cost_at(pts, 0.96) is None
