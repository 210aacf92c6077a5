"""The per-frame hindsight oracle on tables whose answer is known."""

import numpy as np
import pytest

from tts_perception.tools.oracle import (cost_at, frontier, PerFrameTable, rule_frontier,
                                         saving_captured, static_cost_at)

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


def _conf3(truth_px: dict, wrong: dict) -> np.ndarray:
    """A three-class frame: ``truth_px`` class -> pixels of it all found, ``wrong`` (truth,
    output) -> pixels labelled wrongly."""
    m = np.zeros((3, 3), np.int64)
    for c, n in truth_px.items():
        m[c, c] += n
    for (t, o), n in wrong.items():
        m[t, o] += n
    return m


def test_a_frames_contribution_adds_up_to_the_mIoU_over_the_frames():
    from tts_perception.common.scoring import confusion_contribution as frame_contribution
    from tts_perception.common.metrics import ConfusionMatrix
    rng = np.random.default_rng(0)
    # a reference point and a point close to it: its mean contribution is its mIoU over the
    # frames less the reference's, to first order; the reference's is exactly zero
    ref = [_conf3({0: 900, 1: int(rng.integers(50, 100)), 2: 20}, {}) for _ in range(20)]
    near = [m.copy() for m in ref]
    for m in near[::3]:
        m[1, 1] -= 5
        m[1, 0] += 5
    conf = np.array([ref, near])
    got = frame_contribution(conf)
    miou = [ConfusionMatrix(3).add_matrix(c.sum(0)).miou() for c in conf]
    assert np.allclose(got[0], 0.0)
    assert got[1].mean() == pytest.approx(miou[1] - miou[0], rel=0.02)
    assert (got[1][::3] < 0).all() and np.allclose(np.delete(got[1], np.s_[::3]), 0.0)


def _rare_and_common_loss() -> PerFrameTable:
    """Point b (cheap) misses the 4 pixels of class 2 on frame 0 (its own mIoU drops by a
    third) and 100 of class 1's 600 on frame 1 (by a sixth); over the recording class 2 has
    1204 pixels and class 1 996: frame 1's loss costs the recording's mIoU far more."""
    ref = [_conf3({0: 900, 1: 96, 2: 4}, {}), _conf3({0: 400, 1: 600}, {})] + \
        [_conf3({0: 500, 1: 100, 2: 400}, {}) for _ in range(3)]
    pt = [m.copy() for m in ref]
    pt[0][2, 2] -= 4
    pt[0][2, 0] += 4
    pt[1][1, 1] -= 100
    pt[1][1, 0] += 100
    return PerFrameTable(['a', 'b'], np.array([2.0, 1.0]), np.array([ref, pt]))


def test_a_few_wrong_pixels_of_a_rare_class_cost_what_they_cost_over_the_recording():
    table = _rare_and_common_loss()
    own = table.frame_accuracy()
    contribution = table.frame_contribution()
    assert own[1, 0] < own[1, 1]                      # by its own mIoU frame 0 is the worse
    assert contribution[1, 1] < 10 * contribution[1, 0] < 0     # over the recording, frame 1


def test_the_oracle_frontier_is_the_better_of_both_frame_accuracies():
    # one frame of a: the frame-mIoU sweep spends it on frame 0, the contribution sweep on
    # frame 1, which is what the recording's mIoU gains most from
    table = _rare_and_common_loss()
    front = frontier(table)
    one = [p for p in front if p.mean_compute_ms == pytest.approx(1.2)]
    assert len(one) == 1 and one[0].accuracy > 0.995


def _half_hard_table(n: int = 10) -> PerFrameTable:
    """cheap (1 ms) perfect on even frames, useless on odd; dear (9 ms) always perfect."""
    cheap = [_conf(100, 0) if f % 2 == 0 else _conf(0, 100) for f in range(n)]
    dear = [_conf(100, 0) for _ in range(n)]
    return PerFrameTable(['cheap', 'dear'], np.array([1.0, 9.0]), np.array([cheap, dear]))


def test_the_rule_with_hindsight_predictions_reaches_the_oracle_and_without_signal_none():
    table = _half_hard_table()
    n = table.confusion.shape[1]
    # predictions that know each frame: the rule finds the oracle's 5 ms at full accuracy
    knows = rule_frontier(table, table.frame_accuracy())
    assert cost_at(knows, 1.0) == pytest.approx(cost_at(frontier(table), 1.0)) == 5.0
    # the same prediction on every frame (no signal): every price picks one point on every
    # frame, so the rule saves nothing over the static points
    flat = np.array([[0.5] * n, [1.0] * n])
    none = rule_frontier(table, flat)
    assert cost_at(none, 1.0) == pytest.approx(9.0)
    assert {tuple(p.points) for p in none} <= {('cheap',), ('dear',)}
    # a signal that is right on most frames: between the two
    half = table.frame_accuracy().copy()
    half[0, 0] = 0.0                      # one easy frame predicted hard
    some = rule_frontier(table, half)
    assert cost_at(some, 1.0) == pytest.approx(5.8)       # it runs dear: (4 x 1 + 6 x 9) / 10
    assert all(a.mean_compute_ms <= b.mean_compute_ms and a.accuracy < b.accuracy
               for a, b in zip(some, some[1:]))


def test_the_rule_never_runs_a_point_it_may_not_choose():
    table = _half_hard_table()
    pred = table.frame_accuracy().copy()
    pred[0] = -np.inf                     # cheap below the class floor
    front = rule_frontier(table, pred)
    assert all(set(p.points) == {'dear'} for p in front)
