"""A user's own ONNX model plugs in through model.yaml: another layout (NHWC), channel order
(BGR), normalisation, output kind (probabilities, NHWC) and structure (a ladder of separate
files), without touching the scheduler or the nodes."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT
from tts_perception.inference.backends import make_backend
from tts_perception.inference.model_desc import load_model_description, ModelError
from tts_perception.adaptive.pipeline import AdaptivePipeline, ConfigError, PipelineConfig
from tts_perception.inference.runner import infer
from tts_perception.inference.points import OperatingPoint

pytestmark = pytest.mark.unit

MODEL = ROOT / 'models' / 'tts_segnet'
MEAN, STD = [0.406, 0.456, 0.485], [0.225, 0.224, 0.229]   # BGR order, for 0..1 input


class UserModel(torch.nn.Module):
    """NHWC, BGR, ImageNet-normalised in, NHWC class probabilities out."""

    def __init__(self, net, depth):
        super().__init__()
        self.net, self.depth = net, depth
        self.register_buffer('mean', torch.tensor(MEAN).view(1, 1, 1, 3))
        self.register_buffer('std', torch.tensor(STD).view(1, 1, 1, 3))

    def forward(self, x):
        x = (x * self.std + self.mean) * 255.0           # back to 0..255 BGR NHWC
        x = x.flip(-1).permute(0, 3, 1, 2)               # RGB NCHW for the wrapped net
        logits = self.net(x, depth=self.depth)[-1]
        return torch.softmax(logits, 1).permute(0, 2, 3, 1)


@pytest.fixture(scope='module')
def ladder(tmp_path_factory):
    from tts_perception.inference.backends.torch_backend import load_torch_model
    net = load_torch_model(load_model_description(MODEL))
    out = tmp_path_factory.mktemp('user_model')
    files = []
    for d in (1, 2, 3):
        name = f'user_d{d}.onnx'
        torch.onnx.export(UserModel(net, d).eval(), (torch.rand(1, 64, 64, 3),),
                          str(out / name), input_names=['input'], output_names=['probs'],
                          dynamic_axes={'input': {0: 'N', 1: 'H', 2: 'W'},
                                        'probs': {0: 'N', 1: 'H', 2: 'W'}},
                          opset_version=17, dynamo=False)
        files.append(name)
    (out / 'model.yaml').write_text(yaml.safe_dump({
        'name': 'user_ladder', 'classes': ['background', 'floor', 'obstacle'],
        'structure': 'ladder',
        'input': {'layout': 'NHWC', 'channel_order': 'BGR', 'scale': 1 / 255.0,
                  'mean': MEAN, 'std': STD, 'multiple_of': 8},
        'output': {'kind': 'probabilities', 'layout': 'NHWC'},
        'stages': {'fp32': files}}))
    return out


def test_ladder_model_matches_the_bundled_model(ladder, sample_bag):
    from tts_perception.bag.rosbag import read_frames
    rgb = next(read_frames(sample_bag, ['camera/image_raw'])).rgb
    user = load_model_description(ladder)
    ours = load_model_description(MODEL)
    ub, ob = make_backend('onnxruntime', user), make_backend('onnxruntime', ours)
    ub.prepare(['fp32'])
    ob.prepare(['fp32'])
    for d in (1, 2, 3):
        p = OperatingPoint(320, 240, d, 'fp32')
        a, ca = infer(user, ub, [rgb], p)
        b, cb = infer(ours, ob, [rgb], p)
        assert (a == b).mean() > 0.99, d
        assert ca[0] == pytest.approx(cb[0], abs=0.02)


def test_ladder_model_runs_in_the_adaptive_pipeline(ladder, tmp_path, sample_bag):
    from tts_perception.bag.rosbag import read_frames
    from tts_perception.tools.bundled_profile import run_profile
    cfg = {'model_path': str(ladder), 'backend': 'onnxruntime',
           'resolutions': ['160x120', '320x240'], 'precisions': ['fp32']}
    prof = tmp_path / 'profile.json'
    table, _ = run_profile(cfg, prof, data_dir=tmp_path, frames_per_seed=6, latency_runs=5,
                           quiet=True)
    assert len(table.points) == 6
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(ladder), profile_path=str(prof),
                                           backend='onnxruntime', precisions=['fp32'],
                                           resolutions=['160x120', '320x240']))
    rgb = next(read_frames(sample_bag, ['camera/image_raw'])).rgb
    labels, rec = pipe.process(rgb, deadline_ms=1e4)
    assert labels.shape == rgb.shape[:2] and rec.point in table.points


@pytest.mark.parametrize('layout', ['NCHW', 'NHWC'])
@pytest.mark.parametrize('kind', ['logits', 'probabilities'])
def test_postprocess_equals_bilinear_upsample_then_argmax(layout, kind):
    import cv2
    desc = load_model_description(MODEL)
    desc.output_layout, desc.output_kind = layout, kind
    rng = np.random.default_rng(1)
    nchw = rng.normal(size=(2, desc.num_classes, 15, 20)).astype(np.float32)
    out = nchw if layout == 'NCHW' else nchw.transpose(0, 2, 3, 1).copy()
    labels, conf = desc.postprocess(out, (240, 320), work_hw=(120, 160))
    for i in range(2):
        ref = cv2.resize(nchw[i].transpose(1, 2, 0), (160, 120),
                         interpolation=cv2.INTER_LINEAR).argmax(-1).astype(np.uint8)
        ref = cv2.resize(ref, (320, 240), interpolation=cv2.INTER_NEAREST)
        assert (labels[i] == ref).all()
        p = np.exp(nchw[i] - nchw[i].max(0)) if kind == 'logits' else nchw[i]
        p = p / p.sum(0) if kind == 'logits' else p
        assert conf[i] == pytest.approx(p.max(0).mean(), rel=1e-5)


def test_label_output_kind_and_bad_descriptions(tmp_path):
    desc = load_model_description(MODEL)
    desc.output_kind = 'labels'
    labels, conf = desc.postprocess(np.array([[[0, 1], [2, 1]]], np.int64), (4, 4))
    assert labels.shape == (1, 4, 4) and labels[0, 3, 3] == 1 and conf[0] == 1.0
    (tmp_path / 'model.yaml').write_text('input: {layout: CHWN}\noutput: {}\nstages: {}\n')
    with pytest.raises(ModelError, match='input.layout must be one of'):
        load_model_description(tmp_path)
    (tmp_path / 'model.yaml').write_text('input: {}\noutput: {kind: boxes}\nstages: {}\n')
    with pytest.raises(ModelError, match='output.kind must be one of'):
        load_model_description(tmp_path)
    (tmp_path / 'model.yaml').write_text(': not yaml: [')
    with pytest.raises(ModelError, match='not valid YAML'):
        load_model_description(tmp_path)
    with pytest.raises(ModelError, match='not a positive multiple of 8'):
        load_model_description(MODEL).check_resolution((100, 75))


def _brightness_model(path, fixed_hw=None, scale=20.0, batch='N', reshape_hw=None):
    """ONNX: NCHW RGB in -> one channel (mean brightness - 0.5) * scale, i.e. a logit that is
    positive on bright pixels. ``reshape_hw``: a final Reshape that only works at that size
    although the declared input size is free."""
    import onnx
    from onnx import helper, TensorProto
    h, w = fixed_hw or ('H', 'W')
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [batch, 3, h, w])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, [batch, 1, h, w])
    consts = [helper.make_node('Constant', [], [n], value=helper.make_tensor(
        n, TensorProto.FLOAT, [], [v])) for n, v in (('half', 0.5), ('k', scale))]
    nodes = consts + [helper.make_node('ReduceMean', ['x'], ['m'], axes=[1], keepdims=1),
                      helper.make_node('Sub', ['m', 'half'], ['c']),
                      helper.make_node('Mul', ['c', 'k'], ['y' if reshape_hw is None else 'z'])]
    if reshape_hw is not None:
        nodes += [helper.make_node('Constant', [], ['shape'], value=helper.make_tensor(
            'shape', TensorProto.INT64, [4], [0, 1, *reshape_hw])),
            helper.make_node('Reshape', ['z', 'shape'], ['y'])]
    g = helper.make_graph(nodes, 'brightness', [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), str(path))


def _model_dir(tmp_path, output, classes, fixed_hw=None, **model_kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    _brightness_model(tmp_path / 'b.onnx', fixed_hw, **model_kw)
    (tmp_path / 'model.yaml').write_text(yaml.safe_dump({
        'name': 'brightness', 'classes': classes, 'structure': 'ladder',
        'input': {'layout': 'NCHW', 'scale': 1 / 255.0, 'multiple_of': 8},
        'output': output, 'stages': {'fp32': ['b.onnx']}}))
    return tmp_path


@pytest.mark.parametrize('score', ['logit', 'probability'])
def test_one_channel_binary_output_gives_two_class_labels(tmp_path, score):
    d = _model_dir(tmp_path, {'kind': 'binary', 'score': score, 'threshold': 0.5},
                   ['background', 'bright'])
    if score == 'probability':   # the same graph, then a sigmoid inside the model
        import onnx
        from onnx import helper
        m = onnx.load(str(d / 'b.onnx'))
        m.graph.node[-1].output[0] = 'logit'
        m.graph.node.append(helper.make_node('Sigmoid', ['logit'], ['y']))
        onnx.save(m, str(d / 'b.onnx'))
    desc = load_model_description(d)
    be = make_backend('onnxruntime', desc)
    be.prepare(['fp32'])
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = 230                                # bright left half, dark right half
    labels, conf = infer(desc, be, [frame], OperatingPoint(32, 24, 1, 'fp32'))
    assert labels.shape == (1, 48, 64)
    assert (labels[0, :, :30] == 1).all() and (labels[0, :, 34:] == 0).all()
    assert 0.5 <= conf[0] <= 1.0


def test_one_channel_models_cannot_be_described_silently_wrong(tmp_path):
    with pytest.raises(ModelError, match='cannot be argmax-ed'):
        load_model_description(_model_dir(tmp_path / 'a', {'kind': 'logits'}, ['person']))
    with pytest.raises(ModelError, match='exactly two classes'):
        load_model_description(_model_dir(tmp_path / 'b', {'kind': 'binary'},
                                          ['background', 'person', 'car']))
    with pytest.raises(ModelError, match='threshold'):
        load_model_description(_model_dir(tmp_path / 'c', {'kind': 'binary', 'threshold': 1.5},
                                          ['background', 'person']))
    desc = load_model_description(_model_dir(tmp_path / 'd', {'kind': 'binary'},
                                             ['background', 'person']))
    two = np.zeros((1, 2, 4, 4), np.float32)          # a 2-channel output under kind binary
    with pytest.raises(ModelError, match='needs one channel'):
        desc.postprocess(two, (4, 4))


def test_a_size_the_model_cannot_run_is_refused_at_load_naming_it(tmp_path):
    import json
    d = _model_dir(tmp_path, {'kind': 'binary'}, ['background', 'bright'], fixed_hw=(64, 64))
    desc = load_model_description(d)
    prof = json.loads((MODEL / 'profile_cpu.json').read_text())
    key = '160x120/d1/fp32'
    prof.update(model_hash=desc.hash(), latency_ms={key: prof['latency_ms'][key]},
                batch_latency_ms={})
    prof['accuracy'] = dict(prof['accuracy'], miou={key: prof['accuracy']['miou'][key]})
    with pytest.raises(ConfigError, match='takes only 64x64.*not 160x120'):
        AdaptivePipeline(PipelineConfig(model_path=str(d), backend='onnxruntime',
                                        precisions=['fp32'], resolutions=['160x120'],
                                        depths=[1]), profile=prof)


def test_every_configuration_problem_is_reported_at_once(tmp_path):
    import json
    d = _model_dir(tmp_path, {'kind': 'binary'}, ['background', 'bright'], fixed_hw=(64, 64))
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_dict({'resolutions': ['640*480'], 'deadline_ms': -1.0,
                                  'colour': 'red'})
    assert len(err.value.problems) == 3
    prof = json.loads((MODEL / 'profile_cpu.json').read_text())
    with pytest.raises(ConfigError) as err:
        AdaptivePipeline(PipelineConfig(model_path=str(d), backend='onnxruntime',
                                        resolutions=['160x120', '64x64'], depths=[1, 4],
                                        precisions=['fp32']), profile=prof)
    text = str(err.value)
    assert len(err.value.problems) == 3, text
    assert 'not 160x120' in text and 'depths [4]' in text and 'hash' in text


def test_defaults_take_the_points_the_profile_measured(tmp_path):
    import json
    d = _model_dir(tmp_path, {'kind': 'binary'}, ['background', 'bright'])
    desc = load_model_description(d)
    prof = json.loads((MODEL / 'profile_cpu.json').read_text())
    keep = ['64x64/d1/fp32', '96x64/d1/fp32']
    base = prof['latency_ms']['160x120/d1/fp32']
    prof.update(model_hash=desc.hash(), latency_ms={k: base for k in keep}, batch_latency_ms={},
                unusable={'96x64/d1/fp32': 'test: marked unusable'})
    prof['accuracy'] = dict(prof['accuracy'], miou={
        k: prof['accuracy']['miou']['160x120/d1/fp32'] for k in keep})
    pipe = AdaptivePipeline(PipelineConfig(model_path=str(d), backend='onnxruntime'),
                            profile=prof)
    assert [p.key for p in pipe.points] == ['64x64/d1/fp32']
    assert pipe.excluded == {'96x64/d1/fp32': 'test: marked unusable'}


def test_fixed_batch_and_size_are_read_from_the_onnx_input():
    desc = load_model_description(MODEL)
    assert desc.fixed_batch is None and desc.fixed_size is None


def test_a_fixed_size_model_refuses_other_sizes_naming_its_own(tmp_path):
    d = _model_dir(tmp_path, {'kind': 'binary'}, ['background', 'bright'], fixed_hw=(48, 64),
                   batch=1)
    desc = load_model_description(d)
    assert desc.fixed_batch == 1 and desc.fixed_size == (64, 48)
    desc.check_resolution((64, 48))
    with pytest.raises(ModelError, match='takes only 64x48.*not 160x120'):
        desc.check_resolution((160, 120))


def test_a_point_that_fails_to_run_fails_configuration_naming_it(tmp_path):
    import json
    d = _model_dir(tmp_path, {'kind': 'binary'}, ['background', 'bright'],
                   reshape_hw=(120, 64))                 # declared free, runs only at 64x120
    desc = load_model_description(d)
    assert desc.fixed_size is None
    prof = json.loads((MODEL / 'profile_cpu.json').read_text())
    key = '160x120/d1/fp32'
    prof.update(model_hash=desc.hash(), latency_ms={key: prof['latency_ms'][key]},
                batch_latency_ms={})
    prof['accuracy'] = dict(prof['accuracy'], miou={key: prof['accuracy']['miou'][key]})
    with pytest.raises(ModelError, match=r'cannot run operating point 160x120/d1/fp32'):
        AdaptivePipeline(PipelineConfig(model_path=str(d), backend='onnxruntime',
                                        precisions=['fp32'], resolutions=['160x120'],
                                        depths=[1]), profile=prof)


@pytest.mark.parametrize('entry', ['../b.onnx', '/etc/passwd', 'sub/../../b.onnx'])
def test_model_files_must_be_inside_the_model_directory(tmp_path, entry):
    d = _model_dir(tmp_path / 'm', {'kind': 'binary'}, ['bg', 'fg'])
    (tmp_path / 'b.onnx').write_bytes((d / 'b.onnx').read_bytes())
    desc = yaml.safe_load((d / 'model.yaml').read_text())
    desc['stages']['fp32'] = [entry]
    (d / 'model.yaml').write_text(yaml.safe_dump(desc))
    with pytest.raises(ModelError, match='outside the model directory'):
        load_model_description(d)
    desc['stages']['fp32'] = ['b.onnx']
    desc['torch'] = {'weights': entry, 'class': 'tts_perception.model.net.EarlyExitSegNet'}
    (d / 'model.yaml').write_text(yaml.safe_dump(desc))
    with pytest.raises(ModelError, match='torch.weights entry .* outside'):
        load_model_description(d)


def test_the_engine_cache_name_cannot_leave_the_cache():
    from tts_perception.inference.backends.tensorrt_backend import engine_path
    from tts_perception.inference.model_desc import safe_name
    p = engine_path(Path('/cache'), '../../etc/x y', 0, (1, 3, 8, 8), 'fp16', 'k')
    assert p.parent == Path('/cache') and '/' not in p.name and ' ' not in p.name
    assert safe_name('..') == '_' or safe_name('..') == 'model'
    assert safe_name('tts_segnet-v2.1') == 'tts_segnet-v2.1'
