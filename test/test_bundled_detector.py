"""The bundled detector (models/tts_detnet, made by make train-detector) as the package runs
it: it loads from its model.yaml, and on frames of a course it never saw it finds the
simulator's boxes of every class at the points that matter."""

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.common.detection_metrics import average_precision, FrameBoxes
from tts_perception.inference.backends import make_backend
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer
from tts_perception.sim.world import DETECTION_CLASSES, World

pytestmark = pytest.mark.unit

# floors below what the shipped model scores on these frames (0.39 and 0.23), so that a broken
# export, decoder or preprocessing fails and a retrained model does not
FLOORS = {'640x480/d3/fp32': 0.3, '320x240/d1/fp32': 0.15}


@pytest.fixture(scope='module')
def held_out():
    frames, refs = [], []
    with World(3007) as w:
        for x in np.linspace(4.0, w.course.length - 6.0, 16):
            w.reset(float(x))
            frames.append(w.render_rgb())
            refs.append(FrameBoxes(*w.render_boxes()))
    return frames, refs


def test_bundled_detector_finds_every_class_on_an_unseen_course(held_out):
    frames, refs = held_out
    model = load_model_description(ROOT / 'models' / 'tts_detnet')
    assert model.task == 'detection' and model.classes == list(DETECTION_CLASSES)
    assert model.depths == (1, 2, 3)
    backend = make_backend('auto', model)
    backend.prepare(['fp32'])
    ap = {}
    for key, floor in FLOORS.items():
        point = OperatingPoint.parse(key)
        dets = [infer(model, backend, [f], point)[0][0] for f in frames]
        r = average_precision(dets, refs, model.num_classes)
        assert r.ap50 >= floor, (key, r.ap50)
        assert all(v is not None and v > 0 for v in r.per_class_recall), (key, r)
        ap[key] = r.ap50
    assert ap['640x480/d3/fp32'] > ap['320x240/d1/fp32']      # the ladder pays


def _largest_rung_by_precision(model, frames, refs):
    """Per precision, the AP of the largest rung at 640x480; every score a probability."""
    backend = make_backend('onnxruntime', model)
    backend.prepare(['fp32', 'int8'])
    ap = {}
    for prec in ('fp32', 'int8'):
        dets = [infer(model, backend, [f], OperatingPoint(640, 480, 3, prec))[0][0]
                for f in frames]
        assert all(((d.scores >= 0) & (d.scores <= 1)).all() for d in dets), prec
        ap[prec] = average_precision(dets, refs, model.num_classes)
    return ap


def test_int8_rungs_keep_every_class_and_their_scores_are_probabilities(held_out):
    """Quantizing the decoding tail too would put box pixels and scores into one uint8 range
    (measured: AP50 0.39 -> 0.03, every score 1.25); the shipped int8 rungs quantize the
    convolutions only and must score as fp32 does."""
    model = load_model_description(ROOT / 'models' / 'tts_detnet')
    assert model.precisions == ('fp32', 'int8')
    ap = _largest_rung_by_precision(model, *held_out)
    assert ap['int8'].ap50 >= ap['fp32'].ap50 - 0.05, (ap['int8'].ap50, ap['fp32'].ap50)
    for c8, c32 in zip(ap['int8'].per_class_recall, ap['fp32'].per_class_recall):
        assert c8 >= c32 - 0.1, (ap['int8'].per_class_recall, ap['fp32'].per_class_recall)


def test_calibrate_quantizes_a_detector_as_its_task_says(held_out, tmp_path):
    """``calibrate --int8`` on a detector (its fp32 rungs only) quantizes what the detection
    task allows, the convolutions: the largest rung's scores stay probabilities and its AP
    near fp32's."""
    import shutil
    import yaml
    from tts_perception.tools.calibrate import quantize
    frames, refs = held_out
    src = ROOT / 'models' / 'tts_detnet'
    desc = yaml.safe_load((src / 'model.yaml').read_text())
    desc['stages'] = {'fp32': desc['stages']['fp32']}
    for f in desc['stages']['fp32']:
        shutil.copy(src / f, tmp_path / f)
    (tmp_path / 'model.yaml').write_text(yaml.safe_dump(desc))
    quantize(load_model_description(tmp_path), frames[:4], (640, 480))
    ap = _largest_rung_by_precision(load_model_description(tmp_path), frames, refs)
    assert ap['int8'].ap50 >= ap['fp32'].ap50 - 0.05, ap


def test_torch_form_finds_what_the_graphs_find_at_every_rung(held_out):
    """The torch backend (how a CUDA machine runs the ladder in fp16/bf16) runs the shipped
    torch form; on the CPU in fp32 it must compute what ONNX Runtime computes from the graphs,
    rung by rung, and decode to the same boxes."""
    from tts_perception.inference.backends import resolve_backend_name
    frames, _ = held_out
    model = load_model_description(ROOT / 'models' / 'tts_detnet')
    assert model.torch_weights is not None and model.torch_weights.exists()
    name, why = resolve_backend_name('auto', model)
    assert name == 'onnxruntime' and 'CUDA' in why      # no GPU here: the graphs run
    ort, tb = make_backend('onnxruntime', model), make_backend('torch', model, device='cpu')
    ort.prepare(['fp32'])
    tb.prepare(['fp32'])
    for key in ('320x240/d1/fp32', '480x360/d2/fp32', '640x480/d3/fp32'):
        point = OperatingPoint.parse(key)
        x = model.preprocess(frames[:2], point.resolution)
        a = ort.run_outputs('fp32', point.depth - 1, x)
        b = tb.run_outputs('fp32', point.depth - 1, x)
        assert len(a) == len(b) == 1 and a[0].shape == b[0].shape, key
        assert np.abs(a[0] - b[0]).max() < 1e-2, (key, np.abs(a[0] - b[0]).max())
        mine = [infer(model, tb, [f], point)[0][0] for f in frames]
        theirs = [FrameBoxes(d.boxes, d.classes)
                  for d in (infer(model, ort, [f], point)[0][0] for f in frames)]
        assert sum(len(t.boxes) for t in theirs) > 0, key
        assert average_precision(mine, theirs, model.num_classes).ap50 > 0.99, key


def test_graph_weights_must_fit_the_rung():
    from tts_perception.model.detnet import DetNet, load_onnx_weights
    with pytest.raises(ValueError, match='Conv'):
        load_onnx_weights(DetNet('small'), ROOT / 'models' / 'tts_detnet' / 'large.onnx')


def test_the_gpu_check_of_the_detector_dry_runs_on_the_cpu(held_out, tmp_path):
    """``bench/gpu_check_detector.py`` runs blind on a lent GPU (15 minutes in all): its CPU
    dry run here checks every point against CPU fp32 and writes its figures."""
    import json
    import sys
    frames, refs = held_out
    packed = tmp_path / 'profile.npz'
    np.savez(packed, rgb=np.stack(frames), labels=np.zeros((len(frames), 1, 1), np.uint8),
             seq=np.zeros(len(frames), np.int64),
             box_frame=np.repeat(np.arange(len(refs)), [len(r.classes) for r in refs]),
             box_xyxy=np.concatenate([r.boxes for r in refs]).reshape(-1, 4),
             box_class=np.concatenate([r.classes for r in refs]).astype(np.int64))
    sys.path.insert(0, str(ROOT))
    from bench.gpu_check_detector import main
    out = tmp_path / 'check.json'
    assert main(['--device', 'cpu', '--frames', str(packed), '--every', '4',
                 '--out', str(out)]) == 0
    res = json.loads(out.read_text())
    assert res['ok'] and len(res['points']) == 12           # 4 resolutions x 3 rungs, fp32
    big = res['points']['640x480/d3/fp32']
    assert big['agreement_ap50'] == pytest.approx(1.0) and big['ap50'] > 0.2
