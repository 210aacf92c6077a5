"""Property-based tests: random headers and bytes never crash the decoders, the bag reader or
the model-description loader; they give a result or their module's specific error."""

from pathlib import Path
import shutil
from types import SimpleNamespace

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
import yaml

from conftest import ROOT
from tts_perception.bag.rosbag import BagError, read_frames
from tts_perception.common.image_codec import (compressed_msg_to_rgb, ImageDecodeError,
                                               image_msg_to_rgb, SUPPORTED_ENCODINGS)
from tts_perception.inference.model_desc import load_model_description, ModelError

pytestmark = pytest.mark.unit
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
ENCODINGS = st.one_of(st.sampled_from(sorted(SUPPORTED_ENCODINGS) + ['16UC1', 'yuv422', '']),
                      st.text(max_size=12))


@FAST
@given(h=st.integers(-4, 40), w=st.integers(-4, 40), step=st.integers(-8, 200),
       enc=ENCODINGS, data=st.binary(max_size=5000))
def test_image_decoding_gives_pixels_or_a_decode_error(h, w, step, enc, data):
    msg = SimpleNamespace(height=h, width=w, step=step, encoding=enc, data=data)
    try:
        rgb = image_msg_to_rgb(msg)
    except ImageDecodeError as exc:
        assert str(exc)
        return
    assert rgb.dtype == np.uint8 and rgb.shape == (h, w, 3)


@FAST
@given(fmt=st.one_of(st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8']),
                     st.text(max_size=10)),
       data=st.binary(max_size=3000))
def test_compressed_decoding_gives_pixels_or_a_decode_error(fmt, data):
    try:
        rgb = compressed_msg_to_rgb(SimpleNamespace(format=fmt, data=data))
    except ImageDecodeError as exc:
        assert str(exc)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


@pytest.fixture(scope='module')
def real_mcap(sample_bag):
    return next(Path(sample_bag).glob('*.mcap')).read_bytes()


@FAST
@given(cut=st.floats(0.0, 1.0), noise=st.binary(min_size=1, max_size=64),
       where=st.floats(0.0, 1.0))
def test_a_damaged_bag_gives_frames_or_a_bag_error(tmp_path_factory, real_mcap, sample_bag,
                                                   cut, noise, where):
    """Truncated and overwritten copies of a real bag."""
    d = tmp_path_factory.mktemp('bag')
    shutil.copy(Path(sample_bag) / 'metadata.yaml', d / 'metadata.yaml')
    raw = bytearray(real_mcap[:max(1, int(len(real_mcap) * cut))])
    at = int(len(raw) * where)
    raw[at:at + len(noise)] = noise
    (d / next(Path(sample_bag).glob('*.mcap')).name).write_bytes(bytes(raw))
    try:
        for f in read_frames(d):
            assert f.rgb.dtype == np.uint8
    except (BagError, ImageDecodeError) as exc:
        assert str(exc)


@FAST
@given(data=st.binary(max_size=400))
def test_random_bytes_as_a_bag_give_a_bag_error(tmp_path_factory, data):
    d = tmp_path_factory.mktemp('junk')
    (d / 'metadata.yaml').write_bytes(data)
    with pytest.raises(BagError):
        list(read_frames(d))


YAML_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True),
              st.text(max_size=8), st.sampled_from(['NCHW', 'NHWC', 'RGB', 'logits',
                                                    'stage1.onnx', 'ladder', 'chained'])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(
                                   ['layout', 'kind', 'fp32', 'int8', 'mean', 'std', 'scale',
                                    'multiple_of', 'channel_order', 'weights']), children,
                                   max_size=4)),
    max_leaves=12)


@FAST
@given(doc=st.dictionaries(st.sampled_from(['name', 'classes', 'structure', 'input', 'output',
                                            'stages', 'torch']), YAML_VALUES, max_size=7))
def test_any_model_yaml_gives_a_description_or_a_model_error(tmp_path_factory, doc):
    d = tmp_path_factory.mktemp('model')
    shutil.copy(ROOT / 'models' / 'tts_segnet' / 'stage1.onnx', d / 'stage1.onnx')
    (d / 'model.yaml').write_text(yaml.safe_dump(doc))
    try:
        m = load_model_description(d)
    except ModelError as exc:
        assert str(exc)
        return
    assert m.depths and m.classes is not None


@FAST
@given(text=st.text(max_size=300))
def test_any_text_as_model_yaml_gives_a_model_error_or_a_description(tmp_path_factory, text):
    d = tmp_path_factory.mktemp('model')
    (d / 'model.yaml').write_text(text)
    with pytest.raises(ModelError):
        load_model_description(d)
