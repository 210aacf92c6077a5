"""Your model, your data: calibrate on a bag (labelled or not, int8 included) and evaluate the
policies on its held-out part with a simulated camera, from the command line as a user runs
them."""

import json
from pathlib import Path
import shutil
import time

import numpy as np
import pytest
import yaml

from conftest import ROOT
from tts_perception.adaptive.pipeline import AdaptivePipeline, PipelineConfig
from tts_perception.bag.rosbag import BagWriter
from tts_perception.common.metrics import ConfusionMatrix
from tts_perception.common.scoring import SegmentationScoring
from tts_perception.adaptive import calibration
from tts_perception.bag.recordings import read_bag, read_recordings
from tts_perception.inference import latency
from tts_perception.tools import calibrate, evaluate, oracle
from tts_perception.tools.eval_results import Comparison

pytestmark = pytest.mark.slow

MODEL = ROOT / 'models' / 'tts_segnet'


@pytest.fixture
def fp32_model(tmp_path):
    """A copy of the bundled model without its int8 stages (calibrate may write next to it)."""
    d = tmp_path / 'model'
    d.mkdir()
    desc = yaml.safe_load((MODEL / 'model.yaml').read_text())
    for f in desc['stages']['fp32'] + [desc['torch']['weights']]:
        shutil.copy(MODEL / f, d / f)
    desc['stages'] = {'fp32': desc['stages']['fp32']}
    (d / 'model.yaml').write_text(yaml.safe_dump(desc))
    return d


def test_calibrate_defaults_are_the_nodes_every_precision_the_model_lists(tmp_path,
                                                                          sample_bag):
    model = tmp_path / 'model'
    shutil.copytree(MODEL, model)
    assert calibrate.main([str(sample_bag), '--model', str(model), '--frames', '24',
                           '--image-topic', '/camera/image_raw',
                           '--resolutions', '160x120', '--latency-runs', '2', '--quiet']) == 0
    prof = json.loads((model / 'profile_cpu.json').read_text())
    listed = yaml.safe_load((model / 'model.yaml').read_text())['stages']
    assert {k.rsplit('/', 1)[1] for k in prof['points']} == set(listed) == {'fp32', 'int8'}
    assert prof['backend'] == 'onnxruntime'        # what 'auto' takes on a CPU machine
    assert prof['class_floor']['floor'] == 0.3
    assert set(prof['staleness']) == set(prof['points']) and prof['staleness_period_ms'] > 0


def test_calibrate_on_an_unlabelled_bag_then_evaluate_the_held_out_part(fp32_model, tmp_path,
                                                                        sample_bag):
    rc = calibrate.main([str(sample_bag), '--model', str(fp32_model), '--image-topic',
                         'camera/image_raw', '--frames', '40', '--resolutions', '160x120',
                         '320x240', '--latency-runs', '3', '--quiet'])
    assert rc == 0
    prof = json.loads((fp32_model / 'profile_cpu.json').read_text())
    g = prof['golden']
    assert g == '320x240/d3/fp32'
    assert prof['accuracy']['overall'][g] == 1.0               # agreement with itself
    assert prof['accuracy']['metric'].startswith('agreement')
    assert all(v == 1.0 for v in prof['accuracy']['per_class_iou'][g] if v is not None)
    assert prof['data']['bag'] == str(Path(sample_bag).resolve())
    assert prof['data']['reference'] == 'golden point'
    assert (prof['data']['fit_frames'], prof['data']['eval_frames']) == (20, 20)
    c = prof['complexity']
    # every signal group was tried and scored on the held-out frames too; the estimate has a
    # held-out correlation exactly when a group is on (a constant has none)
    assert set(c['signals']) == {'content', 'confidence', 'segments', 'change', 'probe'}
    assert all(v['eval_correlation'] is not None for v in c['signals'].values())
    assert (c['eval_correlation'] is None) == (not c['signals_on'])
    # every point's results are put on the golden point's scale, which is its own
    assert set(c['result_map']) == set(prof['points'])
    assert np.allclose(c['result_map'][g], [[0.0, 1.0]] * 5, atol=1e-6) or \
        all(sc == 0.0 for _, sc in c['result_map'][g])   # (a feature constant here)
    # one shortfall model per point where a signal is on (none without), judged out of fold
    # and on the held-out frames; the compute price found for the default accuracy budget
    assert set(c['point_models']) == (set(prof['points']) if c['signals_on'] else set())
    assert all(len(m) == 1 + len(c['features']) for m in c['point_models'].values())
    # the range of every feature on the fit frames, which the node reads frames within
    assert len(c['feature_range']) == len(c['features'])
    assert all(lo <= hi for lo, hi in c['feature_range'])
    assert (c['point_eval_correlation'] is None) == (not c['signals_on'])
    assert prof['accuracy']['accuracy_budget'] == calibration.ACCURACY_BUDGET
    assert prof['accuracy']['compute_price'] >= 0.0
    assert (fp32_model / 'profile_cpu.png').exists()

    # the node's defaults find this profile in the model directory and take its points
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(fp32_model), backend='onnxruntime'))
    assert sorted(p.key for p in pipe.points) == sorted(prof['points'])

    out = tmp_path / 'eval'
    rc = evaluate.main([str(sample_bag), '--model', str(fp32_model), '--out', str(out),
                        '--policies', 'adaptive', 'golden', '160x120/d1/fp32', '--quiet'])
    assert rc == 0
    res = json.loads((out / 'evaluate.json').read_text())
    assert res['n_frames'] == 20 and 'held out' in res['frames']
    assert set(res['runs']) == {'adaptive', 'golden', '160x120/d1/fp32'}
    for r in res['runs'].values():
        assert r['processed'] + r['dropped'] == r['frames'] == 20
        assert sum(r['points'].values()) == r['processed']
        assert 0.0 <= r['streaming_accuracy'] <= 1.0 and 0.0 <= r['accuracy'] <= 1.0
    assert res['runs']['golden']['accuracy'] == 1.0
    assert 'comparison' in res
    for f in ('pareto.png', 'timeline.png'):
        assert (out / f).stat().st_size > 1000

    # every policy: the per-frame oracle's frontier beside them, and the share of its saving
    out = tmp_path / 'eval_all'
    assert evaluate.main([str(sample_bag), '--model', str(fp32_model), '--out', str(out),
                          '--quiet']) == 0
    res = json.loads((out / 'evaluate.json').read_text())
    front = res['oracle_frontier']
    statics = [r for k, r in res['runs'].items() if '/' in k]
    # on the oracle's own scale, each point's median latency in its static run (the golden
    # policy's and the static runs' measured means are other runs, timed at other moments)
    [golden] = res['runs']['golden']['points']
    golden_ms = res['runs'][golden]['median_compute_ms']
    # hindsight against agreement with golden: it reaches golden's own 1.0, never costs
    # more than golden's median, and starts at the cheapest point's median
    assert front[-1]['accuracy'] == pytest.approx(1.0)
    assert front[-1]['mean_compute_ms'] <= golden_ms + 1e-9
    assert all(a['accuracy'] < b['accuracy'] for a, b in zip(front, front[1:]))
    assert front[0]['mean_compute_ms'] == pytest.approx(
        min(r['median_compute_ms'] for r in statics))
    c = Comparison.from_dict(res['comparison'])
    if c.best_static_meeting_deadline is not None:
        # at adaptive's own accuracy: never dearer than the cheapest static point that
        # reaches it, and the oracle's compute there is its frontier's
        assert c.compute_basis == 'median'       # every point ran: the oracle's scale
        reach = [r['median_compute_ms'] for r in statics
                 if r['late_or_dropped'] <= evaluate.MEETS_DEADLINE
                 and r['accuracy'] >= c.adaptive_accuracy]
        own = c.static_compute_ms_at_adaptive_accuracy
        assert (own is None) == (not reach) and (own is None or own <= min(reach) + 1e-9)
        ok = [p['mean_compute_ms'] for p in front if p['accuracy'] >= c.adaptive_accuracy]
        assert c.oracle_compute_ms_at_adaptive_accuracy == (min(ok) if ok else None)
        # every share is a number or says why it is none
        for share in (c.share_vs_best_static, c.share_vs_cheapest_static,
                      c.share_at_its_accuracy):
            assert (share.value is None) == bool(share.reason), c
    # the rule with adaptive's own predictions, its price in hindsight: where adaptive
    # processed every frame, a frontier over the static points' latencies
    if res['runs']['adaptive']['processed'] == res['n_frames']:
        rule = res['rule_frontier']
        lat = [r['median_compute_ms'] for r in statics]
        assert min(lat) - 1e-9 <= rule[0]['mean_compute_ms'] <= rule[-1]['mean_compute_ms'] \
            <= max(lat) + 1e-9
        assert all(a['accuracy'] < b['accuracy'] for a, b in zip(rule, rule[1:]))
        if c.best_static_meeting_deadline is not None:     # the rule's compute at the target
            target = res['runs'][c.cheapest_static_reaching_it]['accuracy'] - 0.005
            assert c.rule_compute_ms_at_target == oracle.cost_at(
                [oracle.FrontierPoint(**p) for p in rule], target)
    else:       # a frame adaptive never decided on: no replay of its decisions
        assert 'rule_frontier' not in res


def test_calibrate_on_two_recordings_validates_across_them_and_holds_out_each(
        fp32_model, tmp_path, sample_bag):
    other = tmp_path / 'other_bag'             # a second recording (a copy, at another path)
    shutil.copytree(sample_bag, other)
    frames, fits = read_recordings([sample_bag, other], 0.5, 'camera/image_raw',
                                   max_frames=30, quiet=True)
    one = read_bag(sample_bag, 'camera/image_raw', max_frames=30, quiet=True)
    # each recording's first half fits, in bag order, then the held-out halves; each part is
    # its own sequence
    assert fits == [15, 15] and len(frames) == 60
    order = [*range(15), *range(15), *range(15, 30), *range(15, 30)]
    assert np.array_equal(frames.stamps_ns, one.stamps_ns[order])
    assert all(np.array_equal(a, one.rgb[i]) for a, i in zip(frames.rgb, order))
    assert list(frames.seq) == [0] * 15 + [1] * 15 + [2] * 15 + [3] * 15
    # the validation's folds are the recordings (one bag: three contiguous runs)
    folds = calibration.validation_folds(30, fits)
    assert [list(f) for f in folds] == [list(range(15)), list(range(15, 30))]
    assert [len(f) for f in calibration.validation_folds(30, [30])] == [10, 10, 10]

    rc = calibrate.main([str(sample_bag), str(other), '--model', str(fp32_model),
                         '--image-topic', 'camera/image_raw', '--frames', '30',
                         '--resolutions', '160x120', '320x240', '--latency-runs', '2',
                         '--quiet'])
    assert rc == 0
    prof = json.loads((fp32_model / 'profile_cpu.json').read_text())
    d = prof['data']
    assert (d['fit_frames'], d['eval_frames']) == (30, 30)
    assert [r['bag'] for r in d['recordings']] == [str(Path(b).resolve())
                                                   for b in (sample_bag, other)]
    for r in d['recordings']:
        assert (r['frames'], r['fit_frames']) == (30, 15)
        assert r['eval_from_stamp_ns'] == int(one.stamps_ns[15])
    # evaluate on either recording takes the part calibrate held out of it
    out = tmp_path / 'eval'
    assert evaluate.main([str(other), '--model', str(fp32_model), '--out', str(out),
                          '--policies', 'golden', '--quiet']) == 0
    res = json.loads((out / 'evaluate.json').read_text())
    assert res['n_frames'] == 15 and 'held out' in res['frames']


def test_a_slow_point_misses_more_and_streams_worse_than_the_fastest(sample_bag):
    pipe = AdaptivePipeline(PipelineConfig(backend='onnxruntime', precisions=['fp32'],
                                           resolutions=['160x120', '640x480'], depths=[1, 3]),
                            base_dir=ROOT)
    run_stage = pipe.backend.run_stage

    def slowed(precision, stage, x):       # the 640x480 points take 250 ms more
        if stage == 0 and x.shape[-1] == 640:
            time.sleep(0.25)
        return run_stage(precision, stage, x)
    pipe.backend.run_stage = slowed
    frames = read_bag(sample_bag, 'camera/image_raw', 'camera/labels', 20, quiet=True)
    refs, metric = evaluate.references(pipe, frames, quiet=True)
    assert metric == 'mIoU'
    slow = evaluate.simulate(pipe, frames, refs, 'static:640x480/d3/fp32', 40.0)
    fast = evaluate.simulate(pipe, frames, refs, 'static:160x120/d1/fp32', 40.0)
    for r in (slow, fast):
        assert r.processed + r.dropped == 20
    assert slow.dropped > 0 and fast.dropped == 0
    assert slow.miss_rate > fast.miss_rate
    assert slow.streaming_accuracy < fast.streaming_accuracy
    # without latency the slow point is the more accurate one: only streaming charges it
    assert slow.accuracy > fast.accuracy
    # the profile's prediction of each one's streaming accuracy: its accuracy there x the
    # scheduler's staleness factor at its median latency in the run, on the camera's period
    runs = {'640x480/d3/fp32': slow, '160x120/d1/fp32': fast, 'golden': slow}
    pred = evaluate.predicted_streaming(pipe, runs)
    assert set(pred) == {'640x480/d3/fp32', '160x120/d1/fp32'}     # 'golden' is no point
    for k, r in (('640x480/d3/fp32', slow), ('160x120/d1/fp32', fast)):
        lat = float(np.median([x.measured_ms for x in r.records]))
        assert r.camera_period_ms > 0 and lat > 0
        assert pred[k] == pytest.approx(pipe.profile.accuracy.overall[k] * pipe.streaming.expected(
            k, lat, 0.0, r.camera_period_ms))
    # 250 ms late costs the slow point more of its own accuracy than the fast one loses
    assert pred['640x480/d3/fp32'] / pipe.profile.accuracy.overall['640x480/d3/fp32'] < \
        pred['160x120/d1/fp32'] / pipe.profile.accuracy.overall['160x120/d1/fp32']


def _colour_sensitive_model(path: Path) -> None:
    """NCHW RGB in, one logit out: 4 * (brightness - 0.5) + 1000 * (red - green). On grey
    frames the logit is small (+-2); green frames stretch the output range to -1000, so int8
    (weights and output steps of ~8 and ~4) rounds every grey-frame logit to 0 or below:
    the class, seen only on grey frames, is lost."""
    import onnx
    from onnx import helper, TensorProto
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, 'H', 'W'])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 1, 'H', 'W'])
    w = np.array([4 / 3 + 1000, 4 / 3 - 1000, 4 / 3], np.float32).reshape(1, 3, 1, 1)
    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['y'])]
    g = helper.make_graph(nodes, 'colour', [x], [y], initializer=[
        helper.make_tensor('w', TensorProto.FLOAT, [1, 3, 1, 1], w.ravel()),
        helper.make_tensor('b', TensorProto.FLOAT, [1], [-2.0])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), str(path))


def test_an_int8_version_that_loses_a_class_is_marked_unusable_and_never_chosen(tmp_path):
    model = tmp_path / 'm'
    model.mkdir()
    _colour_sensitive_model(model / 'c.onnx')
    (model / 'model.yaml').write_text(yaml.safe_dump({
        'name': 'colour', 'classes': ['background', 'bright'], 'structure': 'ladder',
        'input': {'layout': 'NCHW', 'scale': 1 / 255.0, 'multiple_of': 8},
        'output': {'kind': 'binary'}, 'stages': {'fp32': ['c.onnx']}}))
    rng = np.random.default_rng(0)
    bag = tmp_path / 'bag'
    with BagWriter(bag) as w:
        for i in range(24):
            f = np.full((48, 64, 3), 60, np.uint8)
            if i % 3 == 0:                # strongly green frames: logits near -1000
                f[..., 0] = rng.integers(0, 100)
                f[..., 1] = rng.integers(150, 255)
            else:                                         # grey, a bright patch
                f[8:30, 10 + i:40 + i] = 220
            w.write_image('cam', 1_000_000_000 + i * 100_000_000, f)
    rc = calibrate.main([str(bag), '--model', str(model), '--int8', '--fit-fraction', '1.0',
                         '--resolutions', '64x48', '--latency-runs', '3', '--quiet'])
    assert rc == 0
    assert (model / 'c.int8.onnx').exists()
    assert yaml.safe_load((model / 'model.yaml').read_text())['stages']['int8'] == \
        ['c.int8.onnx']
    prof = json.loads((model / 'profile_cpu.json').read_text())
    assert list(prof['unusable']) == ['64x48/d1/int8']
    assert 'loses class bright' in prof['unusable']['64x48/d1/int8']
    assert prof['precision_worst_class_iou']['int8']['64x48/d1'] < prof['int8_agreement_bound']
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(model), backend='onnxruntime'))
    assert [p.key for p in pipe.points] == ['64x48/d1/fp32']
    assert '64x48/d1/int8' in pipe.excluded


def test_bag_and_argument_errors_name_the_problem(tmp_path, sample_bag, capsys):
    assert calibrate.main([str(sample_bag), '--model', str(MODEL)]) == 2
    assert 'choose one with --image-topic' in capsys.readouterr().err
    assert calibrate.main([str(tmp_path / 'nope'), '--model', str(MODEL)]) == 2
    assert 'nope' in capsys.readouterr().err
    assert calibrate.main([str(sample_bag), '--model', str(MODEL), '--image-topic',
                           'camera/image_raw', '--resolutions', '100x75']) == 2
    assert 'not a positive multiple of 8' in capsys.readouterr().err
    assert calibrate.main([str(sample_bag), '--model', str(MODEL), '--image-topic',
                           'camera/image_raw', '--accuracy-budget', '1.5']) == 2
    assert '--accuracy-budget must be in [0, 1)' in capsys.readouterr().err
    assert evaluate.main([str(sample_bag), '--profile', str(tmp_path / 'p.json')]) == 2
    assert 'p.json does not exist' in capsys.readouterr().err
    small = tmp_path / 'small'                 # another recording, of another image size
    with BagWriter(small) as w:
        for i in range(4):
            w.write_image('camera/image_raw', 1_000_000_000 + i * 100_000_000,
                          np.zeros((48, 64, 3), np.uint8))
    assert calibrate.main([str(sample_bag), str(small), '--model', str(MODEL),
                           '--image-topic', 'camera/image_raw']) == 2
    assert 'images differ in size' in capsys.readouterr().err


def test_staleness_scores_each_output_against_the_frames_after_it():
    # a bar moving one column per frame: an output is exact on its own frame and misses more
    # of the bar the later the frame it is held against; a still point never goes stale
    refs = []
    for t in range(12):
        r = np.zeros((4, 16), np.uint8)
        r[:, t:t + 4] = 1
        refs.append(r)
    preds = {'moving': list(refs), 'still': [refs[0]] * 12}
    still_refs = [refs[0]] * 12
    seq = [0] * 6 + [1] * 6                          # pairs never cross a sequence
    st = calibration.staleness(preds, refs, seq, SegmentationScoring(2), range(12), lags=3)
    row = st['moving']
    assert row[0] == pytest.approx(1.0) and all(a > b for a, b in zip(row, row[1:]))
    still = calibration.staleness({'still': preds['still']}, still_refs, seq,
                                  SegmentationScoring(2), range(12), lags=3)['still']
    assert still == pytest.approx([1.0] * 4)
    # only frames 0..5 and 6..11 pair up; at lag 3 every pair is a bar against itself shifted
    # by three columns
    assert row[3] == pytest.approx(ConfusionMatrix(2).add(refs[0], refs[3]).miou())
    # no two frames of one sequence are 6 apart: the rows stop at lag 5, no empty lag
    long = calibration.staleness(preds, refs, seq, SegmentationScoring(2), range(12), lags=8)
    assert [len(v) for v in long.values()] == [6, 6] and np.isfinite(long['moving']).all()


def test_latency_is_timed_in_rounds_and_a_burst_in_one_round_is_not_the_points_tail(
        monkeypatch):
    # a clock that advances by each point's cost per inference, 10x during a burst of host
    # noise that covers the whole second block of the golden point
    from tts_perception.inference.points import OperatingPoint
    points = [OperatingPoint(160, 120, 1, 'fp32'), OperatingPoint(640, 480, 1, 'fp32')]
    cost = {points[0].key: 2.0, points[1].key: 20.0}
    now, calls = [0.0], []

    def fake_infer(model, backend, frames, point):
        calls.append(point.key)
        block = sum(1 for i, k in enumerate(calls) if k == point.key and
                    (i == 0 or calls[i - 1] != point.key))
        burst = point == points[1] and block == 2
        now[0] += cost[point.key] * (10.0 if burst else 1.0) / 1e3
    monkeypatch.setattr(latency, 'infer', fake_infer)
    seen = []
    lat = latency.measure_latencies(None, None, [np.zeros((2, 2, 3))], points, n=30,
                                    passes=3, warmup=2, clock=lambda: now[0],
                                    progress=lambda done, total: seen.append((done, total)))
    # rounds over the points: each point's block of warm-up + 10 runs, three times in turn
    blocks = [calls[i] for i in range(len(calls)) if i == 0 or calls[i] != calls[i - 1]]
    assert blocks == [points[0].key, points[1].key] * 3
    assert seen[-1] == (6, 6)
    gold = lat[points[1].key]
    assert gold['n'] == 30 and gold['p50'] == pytest.approx(20.0)
    # the burst's round alone is 200 ms at every quantile; the point's tail stays its own
    assert gold['p95'] == pytest.approx(20.0) and gold['p99'] == pytest.approx(20.0)
    assert gold['mean'] == pytest.approx((20 * 20 + 10 * 200) / 30)
    # timed in one block, that burst would have been the point's tail
    assert np.percentile([20.0] * 20 + [200.0] * 10, 95) == pytest.approx(200.0)
    assert lat[points[0].key]['p95'] == pytest.approx(2.0)


def test_pass_quantiles_takes_the_median_of_the_rounds():
    q = latency.pass_quantiles([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [2.0, 3.0, 4.0]])
    assert q['p50'] == pytest.approx(3.0) and q['n'] == 9
    assert q['p95'] == pytest.approx(np.percentile([2.0, 3.0, 4.0], 95))
    with pytest.raises(ValueError, match='no timed runs'):
        latency.pass_quantiles([[], []])


def test_a_sequences_first_frame_has_the_mean_result_signals_of_the_others(sample_bag):
    # no previous result there: the mean of the frames that have one, as the node takes the
    # fitted mean (a reset value far from every real result would be an outlier the fit
    # follows); the content signals are the frame's own
    from tts_perception.adaptive.complexity import RESULT_FEATURES
    from tts_perception.adaptive.difficulty import FEATURES
    from tts_perception.inference.model_desc import load_model_description
    from tts_perception.tasks import SegmentationTask
    frames = read_bag(sample_bag, 'camera/image_raw', max_frames=12, quiet=True)
    frames.seq = np.repeat([0, 1], 6)
    model = load_model_description(MODEL)
    rng = np.random.default_rng(1)
    labels = [rng.integers(0, model.num_classes, (30, 40)).astype(np.uint8) for _ in frames.rgb]
    conf = rng.uniform(0.5, 0.99, len(frames))
    feats = calibration.complexity_features(SegmentationTask(model), frames, labels, conf)
    cols = [FEATURES.index(f) for f in RESULT_FEATURES if f != 'prev_change']
    first = np.array([True] + [False] * 5 + [True] + [False] * 5)
    assert np.allclose(feats[first][:, cols], feats[~first][:, cols].mean(0), atol=1e-6)
    u = FEATURES.index('prev_uncertainty')
    assert np.allclose(feats[1:6, u], 1.0 - conf[:5], atol=1e-6)     # the previous frame's
    # the change from the result before the previous one: none for a sequence's first two
    c = FEATURES.index('prev_change')
    before = np.array([True, True] + [False] * 4 + [True, True] + [False] * 4)
    assert np.allclose(feats[before, c], feats[~before, c].mean(), atol=1e-6)
    assert np.allclose(feats[2:6, c], [np.mean(labels[i - 2] != labels[i - 1])
                                       for i in range(2, 6)], atol=1e-6)
