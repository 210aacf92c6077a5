"""The profile command on the bundled model (CI-sized) and the bench's oracle bound."""

from pathlib import Path
import sys

import numpy as np
import pytest

from tts_perception.common.metrics import ConfusionMatrix
from tts_perception.adaptive.profile_data import load_profile
from tts_perception.tools.bundled_profile import run_profile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'bench'))

from bench_core import oracle_bound  # noqa: E402

pytestmark = pytest.mark.slow


def test_profile_measures_every_point_and_precision_agreement(tmp_path):
    cfg = {'model_path': str(ROOT / 'models' / 'tts_segnet'), 'backend': 'onnxruntime',
           'resolutions': ['160x120'], 'precisions': ['fp32', 'int8']}
    prof, path = run_profile(cfg, tmp_path / 'p.json', data_dir=tmp_path, frames_per_seed=6,
                             latency_runs=3, quiet=True)
    t = prof.to_dict()
    assert load_profile(path) == prof                 # what was written reads back the same
    keys = [f'160x120/d{d}/{p}' for d in (1, 2, 3) for p in ('fp32', 'int8')]
    assert sorted(t['points']) == sorted(keys)
    for k in keys:
        lat = t['latency_ms'][k]
        assert 0 < lat['p50'] <= lat['p95'] <= lat['p99']
        assert len(t['accuracy']['miou'][k]) == len(t['accuracy']['bin_edges']) - 1
    agree = t['precision_agreement']['int8']
    assert sorted(agree) == ['160x120/d1', '160x120/d2', '160x120/d3']
    assert all(0.85 <= v <= 1.0 for v in agree.values()), agree
    worst = t['precision_worst_class_iou']['int8']
    assert sorted(worst) == sorted(agree) and all(0.0 <= v <= 1.0 for v in worst.values())
    # a point is unusable exactly when its worst class falls below the recorded bound
    assert {k.rsplit('/', 1)[0] for k in t['unusable']} == {
        k for k, v in worst.items() if v < t['int8_agreement_bound']}
    assert t['machine']['cpus'] >= 1 and t['backend'] == 'onnxruntime' and t['device'] == 'cpu'
    assert t['data']['reference'] == 'labels' and t['data']['fit_frames'] == t['frames']
    assert (tmp_path / 'p.json').exists()


def _rec(missed, total_ms, pred, truth, frame):
    return {'missed': missed, 'total_ms': total_ms, 'frame': frame,
            'confusion': ConfusionMatrix(2).add(np.array(pred), np.array(truth)).m}


def test_oracle_bound_picks_the_best_point_that_met_the_deadline():
    truth = [0, 0, 1, 1]
    runs = {  # frame 0: 'big' perfect but missed, 'mid' half right; frame 1: none met
        'adaptive': {}, 'golden': {},
        'big': {'records': [_rec(True, 30, truth, truth, 0), _rec(True, 30, truth, truth, 1),
                            _rec(False, 30, truth, truth, 2)]},   # frame 2: only big ran it
        'mid': {'records': [_rec(False, 10, [0, 0, 0, 1], truth, 0),
                            _rec(True, 25, [0, 0, 0, 1], truth, 1)]},
        'small': {'records': [_rec(False, 5, [0, 0, 0, 0], truth, 0),
                              _rec(True, 21, [0, 0, 0, 0], truth, 1)]}}
    o = oracle_bound(runs, 2)
    assert o['points'] == {'mid': 1, 'small': 1} and o['miss_rate'] == 0.5
    expect = ConfusionMatrix(2).add(np.array([0, 0, 0, 1]), np.array(truth)) \
        .add(np.array([0, 0, 0, 0]), np.array(truth)).miou()
    assert o['miou'] == pytest.approx(expect)
    assert oracle_bound(runs, 2, only=['small'])['points'] == {'small': 2}
    with pytest.raises(ValueError, match='confusion matrix shape'):
        ConfusionMatrix(3).add_matrix(np.zeros((2, 2)))


def test_bench_makes_its_output_folder_and_can_skip_the_load_step(tmp_path, sample_bag):
    """A CI-sized run of make bench's script: --out into a folder that does not exist yet,
    --load none; the decision overhead also with a profile that has per-point models (the
    bundled one with a model per point added: what calibrate writes)."""
    import json
    import subprocess
    from tts_perception.adaptive.difficulty import FEATURES
    prof = json.loads((ROOT / 'models' / 'tts_segnet' / 'profile_cpu.json').read_text())
    prof['complexity']['point_models'] = {k: [0.01] + [0.001] * len(FEATURES)
                                          for k in prof['points']}
    calibrated = tmp_path / 'calibrated.json'
    calibrated.write_text(json.dumps(prof))
    out = tmp_path / 'new' / 'folder' / 'core.json'
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'bench_core.py'), '--bag',
                        str(sample_bag), '--seconds', '4', '--limit', '16', '--load', 'none',
                        '--no-record', '--out', str(out), '--calibrated-profile',
                        str(calibrated)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res['overhead_calibrated']['point_models'] is True
    assert 0 < res['overhead_calibrated']['p95_ms'] and 'per-point models on' in r.stdout
    assert res['load_step'] == {} and 'deadline_misses_after_step' not in res
    assert sum(res['runs']['adaptive']['points'].values()) == 16
    assert (out.parent / 'core_adaptive.png').exists()


def test_the_eval_section_says_whether_calibrates_streaming_ranking_held():
    from dataclasses import replace
    from evaluate_runs import streaming_transfer
    prof = load_profile(ROOT / 'models' / 'tts_segnet' / 'profile_cpu.json')
    a, b, c = '640x480/d3/fp32', '320x240/d3/fp32', '160x120/d1/fp32'

    def run(pred, meas):
        return {'predicted_streaming_accuracy': pred, 'streaming_accuracy': meas}
    same = streaming_transfer({a: run(0.80, 0.79), b: run(0.70, 0.71), 'adaptive': run(
        None, 0.9)}, prof)
    assert f'predicts {a} to stream best (0.800); on these frames it did (0.790)' in same
    flipped = streaming_transfer({a: run(0.80, 0.60), b: run(0.70, 0.71)}, prof)
    assert f'on these frames {b} did (0.710, predicted 0.700; {a} 0.600)' in flipped
    assert 'do not rank the points as calibrate' in flipped
    # a blind point is no candidate, even if it streams best; one candidate: nothing to say
    blind = replace(prof, class_floor=replace(prof.class_floor, blind={c: 'blind'}))
    assert c not in streaming_transfer({a: run(0.8, 0.6), b: run(0.7, 0.7), c: run(0.9, 0.9)},
                                       blind)
    assert streaming_transfer({a: run(0.8, 0.6), c: run(0.9, 0.9)}, blind) == ''


def test_each_course_row_says_whether_the_difficulty_correlation_target_held():
    from evaluate_runs import course_row, CORRELATION_TARGET
    from tts_perception.tools.eval_results import Comparison, Share
    prof = load_profile(ROOT / 'models' / 'tts_segnet' / 'profile_cpu.json')
    comparison = Comparison(
        compute_basis='median', adaptive_policy='adaptive', adaptive_accuracy=0.94,
        adaptive_streaming_accuracy=0.86, adaptive_mean_compute_ms=4.4,
        best_static_streaming='a', best_static_streaming_accuracy=0.85,
        streaming_target_met=True, best_static_accuracy=0.946, accuracy_target_met=True,
        cheapest_static_compute_ms=5.3, oracle_compute_ms_at_cheapest_static_accuracy=3.1,
        share_vs_cheapest_static=Share(0.41), rule_share_vs_cheapest_static=0.65).to_dict()

    def row(r):
        res = {'comparison': comparison, 'runs': {'adaptive': {'points': {'a': 3}}}}
        if r is not None:
            res['point_difficulty_correlation'] = r
        return course_row([(3001, 30.0)], 3004, res, prof).split(' | ')
    assert '0.62 (met)' in row(0.62) and f'{CORRELATION_TARGET:.2f} (met)' in row(
        CORRELATION_TARGET)
    assert '0.24 (not met)' in row(0.24) and '-0.10 (not met)' in row(-0.1)
    assert 'n/a (no signal on)' in row(None)
    assert len(row(0.62)) == len(row(None)) == 14          # one cell per column
    assert row(0.5)[0] == '| 3001, 30 s'


def test_a_calibration_on_several_recordings_is_named_by_each():
    from evaluate_runs import recordings_name
    assert recordings_name([(3001, 60.0)]) == '3001, 60 s'
    assert recordings_name([(3001, 30.0), (3002, 30.0)]) == '3001 + 3002, 30 s each'
    assert recordings_name([(3001, 30.0), (3002, 60.0)]) == '3001 + 3002, 30 + 60 s'


def test_a_profile_names_the_cpu_it_was_measured_on():
    # latencies differ by machine several times over: a profile must say which CPU it timed
    from tts_perception.inference.latency import machine_info
    info = machine_info('cpu')
    assert info['processor'] and info['cpus'] >= 1
