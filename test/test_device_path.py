"""The device frame path (torch pre/post-processing) against the numpy/OpenCV path, run on CPU
tensors: the same model description gives the same labels."""

import numpy as np
import pytest

from conftest import ROOT
from tts_perception.inference import device_path
from tts_perception.inference.backends.torch_backend import TorchBackend
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer

pytestmark = pytest.mark.unit

MODEL = ROOT / 'models' / 'tts_segnet'


def _frames(n=2, h=480, w=640, seed=0):
    """Smooth gradients with blocks: like camera frames, not white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        f = np.stack([(xx * rng.uniform(0.1, 0.4) + yy * rng.uniform(0.1, 0.4)) % 256
                      for _ in range(3)], -1)
        for _ in range(6):
            y0, x0 = rng.integers(0, h - 60), rng.integers(0, w - 80)
            f[y0:y0 + 60, x0:x0 + 80] = rng.integers(0, 256, 3)
        out.append(f.astype(np.uint8))
    return out


def _described(tmp_path, **over):
    import shutil
    import yaml
    d = tmp_path / 'm'
    shutil.copytree(MODEL, d)
    desc = yaml.safe_load((d / 'model.yaml').read_text())
    for k, v in over.items():
        if isinstance(v, dict):
            desc[k].update(v)
        else:
            desc[k] = v
    (d / 'model.yaml').write_text(yaml.safe_dump(desc))
    return load_model_description(d)


@pytest.mark.parametrize('wh', [(160, 120), (320, 240), (640, 480), (224, 160), (800, 608)])
@pytest.mark.parametrize('user', [False, True])
def test_preprocessing_matches_the_numpy_path(tmp_path, wh, user):
    model = load_model_description(MODEL) if not user else _described(
        tmp_path, input={'layout': 'NHWC', 'channel_order': 'BGR', 'scale': 1 / 255.0,
                         'mean': [0.406, 0.456, 0.485], 'std': [0.225, 0.224, 0.229]})
    frames = _frames()
    ref = model.preprocess(frames, wh)
    got = device_path.preprocess(model, frames, wh).numpy()
    assert got.shape == ref.shape and got.dtype == ref.dtype
    # OpenCV rounds the resized frame to uint8: half a grey level, through scale and std
    grey = 0.51 * model.scale / float(np.min(model.std))
    diff = np.abs(got - ref)
    if 640 % wh[0] == 0 and 480 % wh[1] == 0:          # identity or block means: the same
        assert diff.max() <= grey + 1e-4
    else:   # area weights at fractional ratios, fixed-point bilinear: differ at hard edges
        assert diff.mean() <= grey and np.mean(diff <= 4 * grey) > 0.97


@pytest.mark.parametrize('kind,layout,channels', [('logits', 'NCHW', 3), ('logits', 'NHWC', 3),
                                                  ('probabilities', 'NHWC', 3),
                                                  ('binary', 'NCHW', 1)])
def test_postprocessing_matches_the_numpy_path(tmp_path, kind, layout, channels):
    import torch
    over = {'classes': ['background', 'person']} if kind == 'binary' else {}
    model = _described(tmp_path, output={'kind': kind, 'layout': layout}, **over)
    rng = np.random.default_rng(1)
    planes = rng.normal(0, 2, (2, channels, 30, 40)).astype(np.float32)
    planes = np.stack([np.kron(p, np.ones((1, 2, 2), np.float32)) for p in planes])  # smooth-ish
    if kind == 'probabilities':
        e = np.exp(planes)
        planes = e / e.sum(1, keepdims=True)
    out = planes if layout == 'NCHW' else planes.transpose(0, 2, 3, 1)
    ref_lab, ref_conf = model.postprocess(out, (480, 640), work_hw=(240, 320))
    lab, conf = device_path.postprocess(model, torch.from_numpy(out), (480, 640), (240, 320))
    assert lab.shape == ref_lab.shape and lab.dtype == np.uint8
    assert np.mean(lab == ref_lab) >= 0.999
    np.testing.assert_allclose(conf, ref_conf, rtol=1e-5, atol=1e-6)


def test_label_outputs_are_resized_identically(tmp_path):
    import torch
    model = _described(tmp_path, output={'kind': 'labels'})
    lab = np.random.default_rng(2).integers(0, 3, (1, 60, 80)).astype(np.uint8)
    ref, _ = model.postprocess(lab, (480, 640))
    got, conf = device_path.postprocess(model, torch.from_numpy(lab), (480, 640), (60, 80))
    assert np.array_equal(got, ref) and conf.tolist() == [1.0]


def test_the_whole_frame_path_gives_the_numpy_paths_labels_on_real_frames(sample_bag):
    from tts_perception.bag.recordings import read_bag
    model = load_model_description(MODEL)
    be = TorchBackend(model, device='cpu')
    be.prepare(['fp32'])
    frames = read_bag(sample_bag, 'camera/image_raw', max_frames=6, quiet=True).rgb
    for res in ((160, 120), (320, 240), (640, 480)):
        for d in (1, 3):
            p = OperatingPoint(res[0], res[1], d, 'fp32')
            ref, ref_conf = infer(model, be, frames, p)
            got, conf = device_path.infer_on_device(model, be, frames, p)
            assert np.mean(got == ref) >= 0.999, p.key
            np.testing.assert_allclose(conf, ref_conf, atol=2e-3)
