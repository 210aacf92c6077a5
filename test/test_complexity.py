"""Scene-complexity monitor on synthetic scenes: more clutter -> higher complexity."""

import time

import cv2
import numpy as np
import pytest

from tts_perception.adaptive.complexity import (ComplexityMonitor, ComplexityParams, FEATURES,
                                                feature_range, fit_complexity, fit_point_models,
                                                frame_features, RESULT_FEATURES, result_map)

pytestmark = pytest.mark.unit


def _scene(n_objects: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((480, 640, 3), 120, np.uint8)
    img[240:] = (90, 110, 90)
    for _ in range(n_objects):
        x, y = int(rng.integers(0, 600)), int(rng.integers(100, 440))
        w, h = int(rng.integers(10, 60)), int(rng.integers(20, 120))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + w, y + h), color, -1)
    return img


def test_edge_density_rises_monotonically_with_clutter():
    vals = [frame_features(_scene(n), None)[0][0] for n in (0, 5, 20, 60, 150)]
    assert all(a < b for a, b in zip(vals, vals[1:])), vals


def test_complexity_rises_monotonically_with_clutter_under_fitted_params():
    # fit on synthetic data where accuracy loss grows with clutter, then score fresh scenes
    feats, target = [], []
    for seed in range(40):
        n = seed * 3
        mon = ComplexityMonitor()
        f = mon.features(_scene(n, seed))
        feats.append(f)
        target.append(0.002 * n)
    params = fit_complexity(np.array(feats), np.array(target))
    mon = ComplexityMonitor(params)
    scores = []
    for n in (0, 10, 40, 100):
        mon.reset()
        scores.append(mon.score(_scene(n, 1000 + n)))
    assert all(a < b for a, b in zip(scores, scores[1:])), scores
    assert 0.0 <= min(scores) and max(scores) <= 1.0


def test_temporal_and_feedback_features():
    mon = ComplexityMonitor()
    a, b = _scene(10, 1), _scene(10, 2)
    f1 = mon.features(a)
    f2 = mon.features(a)
    f3 = mon.features(b)
    i = FEATURES.index('motion')
    assert f1[i] == 0.0 and f2[i] == 0.0 and f3[i] > 0.01
    labels = np.zeros((48, 64), np.uint8)
    labels[:, :32] = 2
    mon.observe_result(labels, 0.8)
    f4 = mon.features(b)
    assert f4[FEATURES.index('prev_obstacle')] == pytest.approx(0.5, abs=0.05)
    assert f4[FEATURES.index('prev_uncertainty')] == pytest.approx(0.2)


def test_without_a_previous_result_the_result_signals_weigh_nothing():
    # at the start and after a reset the result slots are the fitted mean (z = 0), not a
    # made-up value: a first frame must not look harder or easier than the fit's average
    rng = np.random.default_rng(3)
    feats = rng.normal(0.02, 0.005, (50, len(FEATURES)))
    p = fit_complexity(feats, feats[:, FEATURES.index('prev_uncertainty')], ['confidence'])
    mon = ComplexityMonitor(p)
    f = mon.features(_scene(5))
    assert not mon.has_result
    slots = [FEATURES.index(n) for n in RESULT_FEATURES]
    assert np.allclose(f[slots], np.asarray(p.mean)[slots])
    assert p.raw(f) == pytest.approx(p.bias)
    mon.observe_result(np.zeros((48, 64), np.uint8), 0.9)
    assert mon.has_result
    assert mon.features(_scene(5))[FEATURES.index('prev_uncertainty')] == pytest.approx(0.1)
    mon.reset()
    assert not mon.has_result


def test_change_is_the_share_of_labels_that_changed_between_the_last_two_results():
    # no result, or one result with nothing before it: the change is the fitted mean (here a
    # fit whose mean change is 0.4), then the share of the kept labels that differ
    rng = np.random.default_rng(4)
    feats = rng.normal(0.02, 0.005, (50, len(FEATURES)))
    c = FEATURES.index('prev_change')
    feats[:, c] = rng.normal(0.4, 0.05, 50)
    p = fit_complexity(feats, feats[:, c], ['change'])
    mean = np.float32(p.mean[c])
    mon = ComplexityMonitor(p)
    assert mon.features(_scene(1))[c] == mean
    a = np.zeros((48, 64), np.uint8)
    b = a.copy()
    b[:, :16] = 2                                            # a quarter changed
    mon.observe_result(a, 0.9)
    assert mon.features(_scene(1))[c] == mean
    assert np.isnan(mon.features(_scene(1), fill=False)[c])
    mon.observe_result(b, 0.9)
    assert mon.features(_scene(1))[c] == pytest.approx(0.25)
    mon.observe_result(b, 0.9)
    assert mon.features(_scene(1))[c] == 0.0
    mon.observe_result(np.zeros((96, 128), np.uint8), 0.9)  # a camera of another size
    assert mon.features(_scene(1))[c] == mean
    mon.observe_result(a, 0.9)
    mon.reset()
    mon.observe_result(b, 0.9)                               # nothing before it since reset
    assert mon.features(_scene(1))[c] == mean
    # off: not computed, and the labels are not kept
    off = ComplexityMonitor(ComplexityParams.from_dict({**p.to_dict(),
                                                        'signals_on': ['confidence']}))
    off.observe_result(a, 0.9)
    off.observe_result(b, 0.9)
    assert off.features(_scene(1))[c] == 0.0 and off._prev_output is None


def test_result_map_puts_each_points_results_on_the_fitted_points_scale():
    rng = np.random.default_rng(0)
    ref = rng.normal([0.01, 0.3, 0.1, 0.2, 0.3], [0.004, 0.05, 0.02, 0.1, 0.1], (200, 5))
    ref[::50, 4] = np.nan              # a sequence's first result has no change
    # a cheaper point: less certain on every frame and twice as spread, same order of frames;
    # its obstacle share never changes
    cheap = np.c_[0.03 + 2.0 * ref[:, 0], np.full(200, 0.25), ref[:, 2] * 1.5, ref[:, 3],
                  0.1 + 3.0 * ref[:, 4]]
    m = result_map({'ref': ref, 'cheap': cheap}, 'ref')
    assert np.allclose(m['ref'], [[0.0, 1.0]] * 5, atol=1e-9)
    a, b = np.asarray(m['cheap']).T
    assert np.isfinite(a).all() and np.isfinite(b).all()     # NaN left out, not spread
    mapped = a + b * cheap
    assert np.allclose(mapped[:, [0, 2, 3]], ref[:, [0, 2, 3]])
    assert np.allclose(mapped[:, 4], ref[:, 4], equal_nan=True)
    assert np.allclose(mapped[:, 1], ref[:, 1].mean())      # constant: the reference's mean
    p = ComplexityParams.neutral()
    p = ComplexityParams.from_dict({**p.to_dict(), 'result_map': m})
    assert ComplexityParams.from_dict(p.to_dict()) == p
    labels = np.zeros((48, 64), np.uint8)
    u = FEATURES.index('prev_uncertainty')
    for point, want in (('cheap', a[0] + b[0] * 0.07), (None, 0.07), ('unknown', 0.07)):
        mon = ComplexityMonitor(p)
        mon.observe_result(labels, 0.93, point)
        assert mon.features(_scene(1))[u] == pytest.approx(want), point
    with pytest.raises(ValueError, match='offset, scale'):
        ComplexityParams.from_dict({**p.to_dict(), 'result_map': {'cheap': [[0.0, 1.0]]}})


def test_estimates_read_a_frame_within_the_range_they_were_fitted_on():
    """A frame whose signals lie outside the fit frames' range is read at its edge: the
    point models and the scalar estimate give what they give at the edge, never an
    extrapolation; inside the range nothing changes."""
    rng = np.random.default_rng(3)
    n = 120
    feats = np.zeros((n, len(FEATURES)))
    u, o = FEATURES.index('prev_uncertainty'), FEATURES.index('prev_obstacle')
    feats[:, u] = rng.uniform(0.0, 0.05, n)
    feats[:, o] = rng.uniform(0.0, 0.2, n)
    # the cheap point falls short with uncertainty, the other point not at all
    short = np.stack([2.0 * feats[:, u] + 0.1 * feats[:, o] + rng.normal(0, 0.002, n),
                      np.zeros(n)])
    folds = np.array_split(np.arange(n), 3)
    models, _ = fit_point_models(feats, short, ['cheap', 'best'], ['confidence', 'segments'],
                                 folds)
    fitted = fit_complexity(feats, short.mean(0), ['confidence', 'segments'])
    span = feature_range(feats)
    assert span[u] == [pytest.approx(feats[:, u].min()), pytest.approx(feats[:, u].max())]
    free = ComplexityParams.from_dict({**fitted.to_dict(), 'point_models': models})
    held = ComplexityParams.from_dict({**free.to_dict(), 'feature_range': span})
    assert ComplexityParams.from_dict(held.to_dict()) == held
    inside = feats[7]
    assert held.shortfall(inside) == pytest.approx(free.shortfall(inside))
    assert held.raw(inside) == pytest.approx(free.raw(inside))
    # an unseen result: uncertainty 20x the largest the fit saw, an obstacle share of -1
    out = inside.copy()
    out[u], out[o] = 1.0, -1.0
    edge = inside.copy()
    edge[u], edge[o] = feats[:, u].max(), feats[:, o].min()
    assert held.shortfall(out) == pytest.approx(held.shortfall(edge))
    assert held.raw(out) == pytest.approx(held.raw(edge))
    assert free.shortfall(out)['cheap'] > 5 * held.shortfall(out)['cheap'] > 0
    # what the monitor reads for a result the fit never saw is that edge too
    mon = ComplexityMonitor(held)
    mon.observe_result(np.zeros((48, 64), np.uint8), 0.0)          # certainty 0
    f = mon.features(_scene(1))
    assert f[u] == 1.0
    assert mon.assess(_scene(1))[1]['cheap'] == pytest.approx(
        held.shortfall(np.r_[f[:u], feats[:, u].max(), f[u + 1:]])['cheap'])
    for bad in (span[:-1], [[1.0, 0.0]] * len(FEATURES), [[0.0, float('nan')]] * len(FEATURES)):
        with pytest.raises(ValueError, match='feature_range'):
            ComplexityParams.from_dict({**held.to_dict(), 'feature_range': bad})
    with pytest.raises(ValueError, match='feature_range needs finite'):
        feature_range(np.full((3, len(FEATURES)), np.nan))


def test_params_round_trip_and_mismatch():
    p = ComplexityParams.neutral()
    assert ComplexityParams.from_dict(p.to_dict()) == p
    bad = p.to_dict()
    bad['features'] = ['edge_density']
    with pytest.raises(ValueError, match='fit for features'):
        ComplexityParams.from_dict(bad)
    with pytest.raises(ValueError, match='RGB uint8'):
        ComplexityMonitor().features(np.zeros((10, 10), np.uint8))


def test_cost_is_small_smoke():
    """Not a timing target (that is bench/): just guards against a 10x regression."""
    mon, img = ComplexityMonitor(), _scene(30)
    mon.score(img)
    t = time.perf_counter()
    for _ in range(20):
        mon.score(img)
    assert (time.perf_counter() - t) / 20 < 0.02
