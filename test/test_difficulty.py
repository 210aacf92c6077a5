"""Difficulty signals, the validation gate and probes (real inference on the bundled model)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.adaptive.complexity import estimator, fit_complexity
from tts_perception.adaptive.difficulty import (FEATURES, feature_mask, out_of_fold,
                                                probe_losses, select_signals, SIGNALS)
from tts_perception.adaptive.pipeline import AdaptivePipeline, FrameRequest, PipelineConfig
from tts_perception.common.scoring import confusion_miou
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer
from tts_perception.tasks.segmentation import result_signals, SCORE_STEP, SegmentationTask

pytestmark = pytest.mark.unit

MODEL = ROOT / 'models' / 'tts_segnet'


def _ran(records):
    """A run as the evaluate functions read it: its per-frame records' fields."""
    return SimpleNamespace(records=[SimpleNamespace(**r) for r in records])


def _policy_run(accuracy, measured, median, n=10):
    """A policy run with these figures (the rest zero)."""
    from tts_perception.tools.eval_results import PolicyRun
    return PolicyRun(policy='', anytime=False, frames=n, processed=n, dropped=0, tail=0,
                     missed=0, miss_rate=0.0, late_or_dropped=0.0, accuracy=accuracy,
                     per_class_iou=[], worst_class_iou=accuracy, streaming_accuracy=accuracy,
                     streaming_per_class_iou=[], mean_compute_ms=measured, probes=0,
                     mean_probe_ms=0.0, p95_total_ms=measured, camera_period_ms=None,
                     points={}, median_compute_ms=median)


def test_small_segment_score_says_whether_the_cheapest_scale_still_sees_a_segment():
    lab = np.zeros((480, 640), np.uint8)
    assert result_signals(lab, 2, 160 * 120) == (0.0, 0.0, 0.0)      # nothing shown
    big = lab.copy()
    big[:, 320:] = 2
    obstacle, boundary, small = result_signals(big, 2, 160 * 120)
    assert obstacle == pytest.approx(0.5) and small == 0.0 and 0 < boundary < 0.05
    tiny = big.copy()
    tiny[100:108, 100:108] = 1                          # one cell of the 8-pixel grid
    s_cheap = result_signals(tiny, 2, 160 * 120)[2]
    s_tiny_scale = result_signals(tiny, 2, 40 * 30)[2]
    assert 0.0 < s_cheap < s_tiny_scale <= 1.0          # smaller at a coarser cheapest scale


def test_the_gate_keeps_a_predictive_group_and_drops_noise():
    rng = np.random.default_rng(0)
    n = 240
    feats = rng.normal(size=(n, len(FEATURES)))
    target = 0.05 + 0.02 * feats[:, FEATURES.index('probe_loss')] + 0.002 * rng.normal(size=n)
    folds = np.array_split(np.arange(n), 3)
    on, gates = select_signals(feats, target, folds, estimator, min_gain=0.05)
    assert on == ['probe']
    assert gates['probe'].on and gates['probe'].validation_gain > 0.5
    assert gates['probe'].validation_correlation > 0.9
    assert set(gates) == set(SIGNALS)
    assert all(not gates[g].on and gates[g].validation_gain < 0.05 for g in SIGNALS
               if g != 'probe')
    # the fitted estimate weighs only what is on
    p = fit_complexity(feats, target, on)
    assert np.count_nonzero(p.weights) == 1 and p.signals_on == ['probe']
    # pure noise: nothing is on, the estimate is a constant
    on, _ = select_signals(feats, rng.normal(size=n), folds, estimator, min_gain=0.05)
    assert on == []


def test_out_of_fold_predicts_each_fold_from_the_others_only():
    feats = np.zeros((9, len(FEATURES)))
    feats[:, -1] = np.arange(9)
    target = np.r_[np.zeros(3), np.ones(3), 2 * np.ones(3)]

    def fit(x, y, groups):                # predicts the mean of what it was fitted on
        return lambda z: np.full(len(z), y.mean())
    got = out_of_fold(feats, target, np.array_split(np.arange(9), 3), fit, [])
    assert got.tolist() == [1.5] * 3 + [1.0] * 3 + [0.5] * 3


def test_feature_mask_names_unknown_groups():
    assert feature_mask(['probe']).sum() == 1
    with pytest.raises(ValueError, match='unknown difficulty signals'):
        feature_mask(['colour'])


def test_probe_feature_carries_the_latest_probe_and_restarts_with_each_sequence():
    cheap = [np.full((4, 4), i % 2, np.uint8) for i in range(10)]
    ref = [np.zeros((4, 4), np.uint8)] * 10
    seq = [0] * 6 + [1] * 4
    task = SegmentationTask(load_model_description(MODEL))
    got = probe_losses(cheap, ref, seq, 3, task.loss, prior=-1.0)
    # probes at frames 0, 3 (sequence 0) and 6, 9 (sequence 1); each frame sees the one before
    loss = [task.loss(c, r) for c, r in zip(cheap, ref)]
    want = [-1.0, loss[0], loss[0], loss[0], loss[3], loss[3], -1.0, loss[6], loss[6], loss[6]]
    assert got.tolist() == pytest.approx(want)
    assert loss[1] == 1.0 and loss[0] == 0.0


def _probe_case(seed: int = 0):
    """Two points that see every class: a cheap one that loses half its pixels on hard frames
    (30 %) and is as good as the expensive one on the others; the probe signal says which
    frames are hard, the content signal is noise."""
    rng = np.random.default_rng(seed)
    n = 90
    hard = rng.random(n) < 0.3
    feats = rng.random((n, len(FEATURES)))
    feats[:, FEATURES.index('probe_loss')] = hard + 0.01 * rng.random(n)
    err = {'160x120/d1/fp32': np.where(hard, 0.5, 0.05), '640x480/d3/fp32': np.full(n, 0.05)}
    cms = {k: np.array([[[1000 * (1 - x), 1000 * x], [1000 * x, 1000 * (1 - x)]] for x in e])
           for k, e in err.items()}
    points = [OperatingPoint.parse(k) for k in err]
    acc = np.stack([[confusion_miou(m) for m in cms[p.key]] for p in points])
    folds = np.array_split(np.arange(n), 3)
    overall = {k: confusion_miou(m.sum(0)) for k, m in cms.items()}
    return feats, acc, cms, points, folds, overall, hard


@pytest.mark.parametrize('probe_ms, pays', [(1.0, True), (7.0, False)])
def test_probes_are_judged_with_the_rule_the_scheduler_runs(probe_ms, pays):
    from tts_perception.adaptive.calibration import _probe_pays, point_decisions
    feats, acc, cms, points, folds, overall, hard = _probe_case()
    cost = {'160x120/d1/fp32': 1.0, '640x480/d3/fp32': 10.0}
    args = (feats, acc, cms, points, list(cost), ['content', 'probe'], folds, slice(90, 90),
            overall, cost, 0.003, None)
    # the point models and the price: with the probe the cheap point runs on the easy frames
    # (as accurate: it loses nothing there), without it the expensive one on (nearly) every
    # frame
    a1, c1 = point_decisions(*args)['outcome']
    a0, c0 = point_decisions(*args[:5], ['content'], *args[6:])['outcome']
    assert c1 == pytest.approx(1.0 + 9.0 * hard.mean(), abs=0.5) and c0 >= 9.0
    assert a1 >= a0 - 0.003
    note = _probe_pays(*args, probe_ms)
    assert (note == '') == pays, note
    if not pays:        # 7 ms of probes per frame cost more than the 6 ms they save
        assert 'do not pay' in note and f'{c1 + probe_ms:.2f} ms' in note


@pytest.fixture
def probing_pipe(tmp_path):
    """The bundled model with a profile whose probe signal is on."""
    prof = json.loads((MODEL / 'profile_cpu.json').read_text())
    c = prof['complexity']
    c['signals_on'] = ['probe']
    c['weights'] = [1.0 if f == 'probe_loss' else 0.0 for f in FEATURES]
    c['probe_every'] = 3
    path = tmp_path / 'profile.json'
    path.write_text(json.dumps(prof))
    return AdaptivePipeline(PipelineConfig(model_path=str(MODEL), profile_path=str(path),
                                           backend='onnxruntime', probe_every=3))


def test_probes_run_on_cadence_with_slack_only_after_the_result_and_feed_the_estimate(
        probing_pipe, sample_bag):
    from tts_perception.bag.rosbag import read_labeled_frames
    frames = read_labeled_frames(sample_bag, 'camera/image_raw', 'camera/labels')[:8]
    pipe = probing_pipe
    cheap, ref = pipe.probe_points
    assert pipe.probing and cheap != ref
    assert OperatingPoint.parse(cheap).width <= OperatingPoint.parse(ref).width
    probed = []
    for i, (rgb, _, _) in enumerate(frames):
        _, rec = pipe._process_batch([FrameRequest(rgb, period_ms=100.0)])[0]
        if i == 4:          # due, but no slack (a frame is waiting): it waits for one
            assert pipe._probe(rec.camera, 0.0) == 0.0
        ms = pipe._probe(rec.camera, 1e6)
        if ms > 0:
            probed.append(i)
            mon = pipe.camera('default').monitor
            # the measured loss is the cheap point's against the reference, on this frame
            a = infer(pipe.model, pipe.backend, [rgb], OperatingPoint.parse(cheap))[0][0]
            b = infer(pipe.model, pipe.backend, [rgb], OperatingPoint.parse(ref))[0][0]
            want = 1.0 - confusion_miou(pipe.task.scoring.evidence(
                a[::SCORE_STEP, ::SCORE_STEP], b[::SCORE_STEP, ::SCORE_STEP]))
            assert mon._probe == pytest.approx(want, abs=1e-9)
            assert mon.features(rgb)[FEATURES.index('probe_loss')] == pytest.approx(want)
    # every 3 processed frames; the one due at frame 3 ran at 3, at 6 ... (frame 4's refusal
    # changes nothing as 3 already probed)
    assert probed == [0, 3, 6]
    assert pipe.camera('default').probes == 3 and pipe.camera('default').probe_ms > 0
    # a probe that does not fit the slack is postponed, not dropped
    _, rec = pipe._process_batch([FrameRequest(frames[0][0], period_ms=100.0)])[0]
    _, rec = pipe._process_batch([FrameRequest(frames[1][0], period_ms=100.0)])[0]
    _, rec = pipe._process_batch([FrameRequest(frames[2][0], period_ms=100.0)])[0]
    assert pipe._probe(rec.camera, 0.01) == 0.0
    assert pipe._probe(rec.camera, 1e6) > 0
    # a static policy never probes
    pipe.restart('static:320x240/d3/int8')
    for rgb, _, _ in frames[:4]:
        _, rec = pipe._process_batch([FrameRequest(rgb, period_ms=100.0)])[0]
        assert pipe._probe(rec.camera, 1e6) == 0.0


def test_the_bundled_profile_records_every_signal_and_probes_only_where_they_pay():
    from tts_perception.adaptive.profile_data import load_profile
    from tts_perception.adaptive.calibration import MIN_SIGNAL_GAIN
    c = load_profile(MODEL / 'profile_cpu.json').complexity
    assert set(c.signals) == set(SIGNALS)
    for g, v in c.signals.items():
        assert v.on == (g in c.signals_on)
        if v.on:
            assert v.validation_gain > MIN_SIGNAL_GAIN and not v.note
    if 'probe' not in c.signals_on and c.signals['probe'].validation_gain is not None and \
            c.signals['probe'].validation_gain > MIN_SIGNAL_GAIN:
        assert 'do not pay' in c.signals['probe'].note      # predictive, but too dear
    assert (c.probe_every > 0) == ('probe' in c.signals_on)


def test_evaluate_counts_probes_as_compute(probing_pipe, sample_bag):
    from tts_perception.adaptive import calibration
    from tts_perception.bag.recordings import read_bag
    from tts_perception.tools import evaluate
    frames = read_bag(sample_bag, 'camera/image_raw', 'camera/labels', 0, True)
    frames = frames.part(0, 24)
    refs = [x[::calibration.SUB, ::calibration.SUB] for x in frames.labels]
    r = evaluate.simulate(probing_pipe, frames, refs, 'adaptive', 40.0)
    assert r.probes > 0
    per = [x.measured_ms + x.probe_ms for x in r.records]
    assert r.mean_compute_ms == pytest.approx(float(np.mean(per)))
    assert r.mean_compute_ms > float(np.mean([x.measured_ms for x in r.records]))


def test_the_pipeline_waits_for_the_next_frame_only_on_a_shrinking_tail(probing_pipe,
                                                                        sample_bag):
    from tts_perception.bag.rosbag import read_labeled_frames
    rgb = read_labeled_frames(sample_bag, 'camera/image_raw', 'camera/labels')[0][0]
    pipe = probing_pipe
    req = FrameRequest(rgb, period_ms=100.0)
    assert not pipe._wait_for_next(req, 0.0)          # no point runs yet
    pipe._process_batch([req])
    L = pipe.latency.predict(pipe.camera('default').scheduler.current.key)
    # a camera period well above the point's latency as this machine measured it (a busy
    # machine measures more): a frame that waited almost a period is on the shrinking tail
    P = max(100.0, 4.0 * L)
    q_late, q_early = P - L / 2, P - 2 * L - 1.0
    late = FrameRequest(rgb, transport_ms=1.0, age_ms=1.0 + q_late, period_ms=P)
    early = FrameRequest(rgb, transport_ms=1.0, age_ms=1.0 + q_early, period_ms=P)
    assert pipe._wait_for_next(late, q_late) and not pipe._wait_for_next(early, q_early)
    # the same age spent decoding (not waiting for the busy worker): the next frame pays it
    # too, so waiting gains nothing
    assert not pipe._wait_for_next(late, 0.0)
    assert not pipe._wait_for_next(FrameRequest(rgb, transport_ms=1.0, age_ms=60.0), 59.0)
    pipe.set_policy('golden')
    assert not pipe._wait_for_next(late, q_late)


def test_evaluate_correlates_the_decided_estimate_with_each_frames_loss():
    from tts_perception.adaptive.difficulty import frame_loss
    from tts_perception.tools.evaluate import difficulty_correlation
    from tts_perception.tools.oracle import PerFrameTable
    wrong = np.array([0, 5, 10, 20, 40, 80])          # pixels point 1 gets wrong per frame
    conf = np.zeros((2, len(wrong), 2, 2), np.int64)
    conf[0, :, 0, 0] = conf[0, :, 1, 1] = 100           # point 0: every pixel right
    conf[1, :, 0, 0] = 100
    conf[1, :, 1, 1] = 100 - wrong
    conf[1, np.arange(len(wrong)), 1, 0] = wrong
    table = PerFrameTable(['a', 'b'], np.array([1.0, 2.0]), conf)
    loss = frame_loss(table.frame_accuracy())
    assert np.all(np.diff(loss) > 0) and loss[0] == 0.0
    frames = [5, 0, 3, 1]                               # the frames the run processed
    run = _ran([{'frame': f, 'complexity': float(loss[f]) ** 0.5} for f in frames])
    assert difficulty_correlation(table, run) > 0.9
    run = _ran([{'frame': f, 'complexity': -float(loss[f])} for f in frames])
    assert difficulty_correlation(table, run) == pytest.approx(-1.0)
    run = _ran([{'frame': f, 'complexity': 0.5} for f in frames])
    assert difficulty_correlation(table, run) is None   # a constant estimate


def _two_kinds_of_hard(n, rng):
    """Frames on which one point's shortfall rises with a signal and another's falls with it
    (hard for the shallow exits, easy for a lower resolution): their mean hides both."""
    from tts_perception.adaptive.difficulty import frame_shortfall
    feats = rng.normal(size=(n, len(FEATURES)))
    x = feats[:, FEATURES.index('prev_uncertainty')]
    acc = np.stack([np.full(n, 0.95),                                   # the best point
                    0.95 - (0.03 + 0.02 * x) - 0.002 * rng.normal(size=n),   # hard with x
                    0.95 - (0.03 - 0.02 * x) - 0.002 * rng.normal(size=n),   # easy with x
                    0.95 - 0.03 - 0.01 * rng.normal(size=n)])           # no signal at all
    return feats, np.clip(acc, 0.0, 1.0), frame_shortfall(np.clip(acc, 0.0, 1.0))


def test_point_models_tell_which_frames_are_hard_for_which_point():
    from tts_perception.adaptive.complexity import ComplexityParams, fit_point_models
    from tts_perception.adaptive.difficulty import correlation, frame_loss, \
        within_point_correlation
    from dataclasses import replace
    rng = np.random.default_rng(3)
    feats, acc, short = _two_kinds_of_hard(240, rng)
    keys = ['best', 'deep', 'wide', 'noise']
    folds = np.array_split(np.arange(240), 3)
    models, oof = fit_point_models(feats, short, keys, ['confidence'], folds)
    assert set(models) == set(keys) and oof.shape == (4, 240)
    # on new frames each point's own shortfall is told apart, in opposite directions
    feats2, acc2, short2 = _two_kinds_of_hard(200, rng)
    params = replace(ComplexityParams.neutral(), point_models=models)
    pred = np.array([[params.shortfall(f)[k] for f in feats2] for k in keys])
    assert correlation(pred[1], short2[1]) > 0.9 and correlation(pred[2], short2[2]) > 0.9
    assert correlation(pred[1], pred[2]) < -0.9
    assert within_point_correlation(pred[1:3], short2[1:3]) > 0.9
    # a point whose shortfall no signal predicts stays near its mean
    assert np.std(pred[3]) < 0.2 * np.std(short2[3])
    # the mean over the points, the scalar estimate's target, hardly moves with the signal
    assert np.std(frame_loss(acc2)) < 0.35 * np.std(short2[1])
    # without signals there is nothing to fit: a point model is its mean (deviation 0)
    flat, _ = fit_point_models(feats, short, keys, [], folds)
    assert all(np.allclose(m, 0.0) for m in flat.values())


def test_the_compute_price_is_the_largest_that_keeps_the_accuracy_budget():
    from tts_perception.adaptive.difficulty import price_for_budget
    from tts_perception.common.metrics import ConfusionMatrix
    rng = np.random.default_rng(5)
    n = 200
    wrong = np.where(rng.uniform(size=n) < 0.5, 0, rng.integers(5, 40, n))   # cheap's errors
    conf = np.zeros((2, n, 2, 2), np.int64)             # point 0: expensive, always right
    conf[:, :, 0, 0] = 100
    conf[0, :, 1, 1] = 100
    conf[1, :, 1, 1] = 100 - wrong
    conf[1, np.arange(n), 1, 0] = wrong
    frame_acc = np.array([[ConfusionMatrix(2).add_matrix(conf[p, f]).miou() for f in range(n)]
                          for p in range(2)])
    cost = np.array([10.0, 2.0])
    prices = np.concatenate([[0.0], np.geomspace(1e-6, 1.0, 600)])

    def acc_at(lam):
        choice = np.argmax(frame_acc - lam * cost[:, None], axis=0)
        return ConfusionMatrix(2).add_matrix(conf[choice, np.arange(n)].sum(0)).miou()
    for budget in (0.0, 0.01, 0.05):
        price, acc, ms = price_for_budget(frame_acc, conf, cost, budget, 1.0, 0.0, prices)
        assert acc >= 1.0 - budget and acc == pytest.approx(acc_at(price))
        k = int(np.searchsorted(prices, price))
        assert k == len(prices) - 1 or acc_at(prices[k + 1]) < 1.0 - budget   # the largest
    # with perfect predictions and no budget the cheap point runs exactly where it is right
    price, acc, ms = price_for_budget(frame_acc, conf, cost, 0.0, 1.0, 0.0, prices)
    assert acc == 1.0 and ms == pytest.approx(np.mean(np.where(wrong == 0, 2.0, 10.0)))
    # predictions so wrong that even the best predicted point loses more: price 0
    assert price_for_budget(frame_acc[::-1], conf, cost, 0.0, 1.0, 0.0, prices)[0] == 0.0
    # judged with the scheduler's tolerance (the cheapest point within it of the best value):
    # a price that only just keeps the expensive point ahead would lose it to the tolerance
    flat = np.stack([np.full(n, 1.0), np.full(n, 0.9)])     # no signal: the same every frame
    lam0, acc0, _ = price_for_budget(flat, conf, cost, 0.0, 1.0, 0.0, prices)
    lam1, acc1, _ = price_for_budget(flat, conf, cost, 0.0, 1.0, 0.02, prices)
    assert acc0 == acc1 == 1.0 and lam1 < lam0
    assert (1.0 - lam1 * 10.0) - (0.9 - lam1 * 2.0) >= 0.02 > (1.0 - lam0 * 10.0) - (
        0.9 - lam0 * 2.0)


def test_evaluate_judges_the_per_point_estimate_within_points():
    from tts_perception.tools.evaluate import point_difficulty_correlation
    from tts_perception.tools.oracle import PerFrameTable
    wrong_b = np.array([0, 5, 10, 20, 40, 80])          # point b: harder on later frames
    wrong_c = wrong_b[::-1]                              # point c: the other way round
    conf = np.zeros((3, len(wrong_b), 2, 2), np.int64)
    conf[:, :, 0, 0] = 100
    conf[0, :, 1, 1] = 100                               # point a: every pixel right
    for p, wrong in ((1, wrong_b), (2, wrong_c)):
        conf[p, :, 1, 1] = 100 - wrong
        conf[p, np.arange(len(wrong)), 1, 0] = wrong
    table = PerFrameTable(['a', 'b', 'c'], np.array([3.0, 1.0, 1.0]), conf)
    frames = [0, 2, 3, 5]

    def run(pred_b, pred_c):
        return _ran([{'frame': f, 'shortfall': {'a': 0.0, 'b': pred_b(f), 'c': pred_c(f)}}
                     for f in frames])
    assert point_difficulty_correlation(table, run(lambda f: f, lambda f: -f)) > 0.9
    # the same ranking for both points is right for one and wrong for the other
    assert abs(point_difficulty_correlation(table, run(lambda f: f, lambda f: f))) < 0.3
    # no point models: nothing to judge
    assert point_difficulty_correlation(
        table, _ran([{'frame': f, 'shortfall': {}} for f in frames])) is None


def test_compare_takes_compute_at_the_points_median_latencies_where_every_run_has_it():
    from tts_perception.tools.evaluate import compare, median_compute
    recs = [{'point': p, 'probe_ms': pr} for p, pr in (('a', 0.0), ('b', 1.0), ('b', 0.0))]
    assert median_compute(_ran(recs), {'a': 10.0, 'b': 2.0}) == pytest.approx(
        (10.0 + 3.0 + 2.0) / 3)
    run = _policy_run
    runs = {'adaptive': run(0.94, 9.0, 6.0), 'golden': run(0.95, 10.0, 10.0),
            'a': run(0.95, 12.0, 10.0), 'b': run(0.90, 2.0, 2.0)}
    c = compare(runs)
    assert c.compute_basis == 'median' and c.adaptive_mean_compute_ms == 6.0
    assert c.compute_ratio == pytest.approx(0.6)
    runs['b'].median_compute_ms = None                  # one run without: all measured
    c = compare(runs)
    assert c.compute_basis == 'measured' and c.compute_ratio == pytest.approx(0.75)


def test_the_compute_price_holds_on_every_part_not_only_on_average():
    from tts_perception.adaptive.difficulty import price_for_budget, price_for_every_part
    from tts_perception.common.metrics import ConfusionMatrix
    # two points; the cheap one is as good on the first half and loses on the second, where the
    # predictions do not see it coming (the same predicted shortfall on every frame)
    n = 200
    wrong = np.r_[np.zeros(n // 2, int), np.full(n // 2, 6)]
    conf = np.zeros((2, n, 2, 2), np.int64)
    conf[:, :, 0, 0] = 100
    conf[0, :, 1, 1] = 100
    conf[1, :, 1, 1] = 100 - wrong
    conf[1, :, 1, 0] = wrong
    pred = np.stack([np.full(n, 1.0), np.full(n, 0.97)])
    cost = np.array([10.0, 2.0])
    halves = [slice(0, n // 2), slice(n // 2, n)]
    pooled = price_for_budget(pred, conf, cost, 0.04, 1.0)
    price, acc, ms = price_for_every_part(pred, conf, cost, 0.04, halves)
    miou = [ConfusionMatrix(2).add_matrix(conf[1, h].sum(0)).miou() for h in halves]
    assert miou[0] == 1.0 and 1.0 - 0.04 > miou[1] and ConfusionMatrix(2).add_matrix(
        conf[1].sum(0)).miou() >= 1.0 - 0.04      # within budget on average, not on one half
    assert pooled[2] == 2.0 and ms == 10.0 and price < pooled[0] and acc == 1.0
    for h in halves:                               # on each half within its own best's budget
        assert price_for_budget(pred[:, h], conf[:, h], cost, 0.04, 1.0, 0.0,
                                np.array([price]))[1] >= 1.0 - 0.04


def test_a_price_that_saves_no_compute_is_zero():
    """The dear point is predicted better on every frame by more than any price within the
    budget makes up: the largest such price sits just below where the choices tip to the
    cheap point and saves nothing here, so calibrate keeps no price at all."""
    from tts_perception.adaptive.difficulty import price_for_budget, price_for_every_part
    n = 60
    conf = np.zeros((2, n, 2, 2), np.int64)
    conf[:, :, 0, 0] = conf[:, :, 1, 1] = 100
    conf[1, :, 1, 1], conf[1, :, 1, 0] = 50, 50        # the cheap point loses half of class 1
    pred = np.stack([np.full(n, 0.9), np.full(n, 0.6)])
    cost = np.array([10.0, 2.0])
    parts = [slice(0, n // 2), slice(n // 2, n)]
    assert price_for_budget(pred, conf, cost, 0.01, 1.0)[0] > 0.0    # the tipping point
    price, acc, ms = price_for_every_part(pred, conf, cost, 0.01, parts)
    assert (price, acc, ms) == (0.0, 1.0, 10.0)


def test_the_rule_replays_the_predictions_adaptive_decided_with():
    from tts_perception.adaptive.scheduler import AccuracyTable
    from tts_perception.tools.evaluate import compare, decided_predictions
    from tts_perception.tools.oracle import PerFrameTable, rule_frontier
    keys = ['160x120/d1/fp32', '640x480/d3/fp32']
    n = 10
    good, bad = np.diag([0, 100]), np.array([[0, 0], [100, 0]])
    table = PerFrameTable(keys, np.array([1.0, 9.0]), np.array(
        [[good if f % 2 == 0 else bad for f in range(n)], [good] * n]))
    acc = AccuracyTable({k: [0.5, 0.5] for k in keys}, [0.0, 0.5, 1.0],
                        {keys[0]: 0.5, keys[1]: 1.0})
    pipe = SimpleNamespace(accuracy=acc, worst_class_iou={keys[0]: 0.9, keys[1]: 1.0},
                           sched_config=SimpleNamespace(class_floor=0.3))
    # adaptive predicted the cheap point's shortfall right on every frame
    recs = [SimpleNamespace(frame=f, complexity=0.2,
                            shortfall={keys[0]: -0.5 if f % 2 == 0 else 0.5, keys[1]: 0.0})
            for f in range(n)]
    pred = decided_predictions(pipe, table, SimpleNamespace(records=recs))
    np.testing.assert_allclose(pred, [[1.0, 0.0] * 5, [1.0] * n])
    # a frame it never processed: nothing to replay
    assert decided_predictions(pipe, table, SimpleNamespace(records=recs[1:])) is None
    # a point below the class floor is never the rule's
    pipe.worst_class_iou[keys[0]] = 0.1
    assert np.isneginf(decided_predictions(pipe, table, SimpleNamespace(records=recs))[0]).all()
    pipe.worst_class_iou[keys[0]] = 0.9

    def run(a, ms):
        return _policy_run(a, ms, ms, n)
    runs = {'adaptive': run(1.0, 7.0), 'golden': run(1.0, 9.0), keys[0]: run(0.5, 1.0),
            keys[1]: run(1.0, 9.0)}
    from tts_perception.tools.oracle import frontier
    c = compare(runs, front=frontier(table), rule_front=rule_frontier(table, pred))
    # the oracle and the rule both run the cheap point on the even frames: 5 ms
    assert c.oracle_compute_ms_at_cheapest_static_accuracy == pytest.approx(5.0)
    assert c.rule_compute_ms_at_target == pytest.approx(5.0)
    assert c.rule_share_vs_cheapest_static == pytest.approx(1.0)
    assert c.share_vs_cheapest_static.value == pytest.approx(0.5)
