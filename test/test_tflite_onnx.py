"""bench/tflite_onnx.py: a TFLite model built here (flatbuffer, fp16 weights behind DEQUANTIZE,
every operator of MediaPipe's person segmenter) converts to ONNX whose output equals a NumPy
implementation of TFLite's semantics (NHWC, SAME padding, half-pixel resize), at the size it
was built for and at another size."""

from pathlib import Path
import struct
import sys

import cv2
import flatbuffers
import numpy as np
import onnxruntime as ort
import pytest
import tflite

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'bench'))

from tflite_onnx import read_tflite, to_onnx, UnsupportedOp  # noqa: E402

B = tflite.BuiltinOperator
RNG = np.random.default_rng(0)
W_CONV = RNG.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float16)     # [O, kh, kw, I]
B_CONV = RNG.normal(0, 0.1, 4).astype(np.float32)
W_DW = RNG.normal(0, 0.4, (1, 3, 3, 4)).astype(np.float16)       # [1, kh, kw, C]
B_DW = RNG.normal(0, 0.1, 4).astype(np.float32)
W_TC = RNG.normal(0, 0.4, (1, 2, 2, 4)).astype(np.float32)       # [O, kh, kw, I]
B_TC = RNG.normal(0, 0.1, 1).astype(np.float32)


class _Builder:
    """A one-subgraph TFLite flatbuffer, tensors and operators added in order."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)
        self.buffers = [b'']            # buffer 0: empty, as TFLite requires
        self.tensors, self.ops, self.codes = [], [], []

    def tensor(self, shape, dtype=0, data=None) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append((list(shape), dtype, buf))
        return len(self.tensors) - 1

    def const(self, arr: np.ndarray) -> int:
        """A float32 constant; fp16 ones behind a DEQUANTIZE, as MediaPipe ships them."""
        if arr.dtype == np.float16:
            raw = self.tensor(arr.shape, 1, arr)
            out = self.tensor(arr.shape)
            self.op(B.DEQUANTIZE, [raw], [out])
            return out
        return self.tensor(arr.shape, 0 if arr.dtype == np.float32 else 2, arr)

    def op(self, code, ins, outs, options=None, custom=None) -> None:
        self.ops.append((code, ins, outs, options, custom))

    def _vec(self, start, items, prepend) -> int:
        start(self.b, len(items))
        for v in reversed(items):
            prepend(v)
        return self.b.EndVector()

    def _ivec(self, start, items) -> int:
        return self._vec(start, items, self.b.PrependInt32)

    def finish(self, inputs, outputs) -> bytes:
        b = self.b
        bufs = []
        for data in self.buffers:
            d = self._vec(tflite.BufferStartDataVector, list(data), b.PrependUint8) \
                if data else None
            tflite.BufferStart(b)
            if d is not None:
                tflite.BufferAddData(b, d)
            bufs.append(tflite.BufferEnd(b))
        tens = []
        for shape, dtype, buf in self.tensors:
            sh = self._ivec(tflite.TensorStartShapeVector, shape)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, sh)
            tflite.TensorAddType(b, dtype)
            tflite.TensorAddBuffer(b, buf)
            tens.append(tflite.TensorEnd(b))
        keys = []
        for code, *_rest, custom in self.ops:
            key = (code, custom is not None)
            if key not in keys:
                keys.append(key)
        codes = []
        for code, is_custom in keys:
            name = b.CreateString('Convolution2DTransposeBias') if is_custom else None
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            if name is not None:
                tflite.OperatorCodeAddCustomCode(b, name)
            codes.append(tflite.OperatorCodeEnd(b))
        ops = []
        for code, ins, outs, options, custom in self.ops:
            iv = self._ivec(tflite.OperatorStartInputsVector, ins)
            ov = self._ivec(tflite.OperatorStartOutputsVector, outs)
            opt = options(b) if options else None
            cv = self._vec(tflite.OperatorStartCustomOptionsVector, list(custom),
                           b.PrependUint8) if custom else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, keys.index((code, custom is not None)))
            tflite.OperatorAddInputs(b, iv)
            tflite.OperatorAddOutputs(b, ov)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt[0])
                tflite.OperatorAddBuiltinOptions(b, opt[1])
            if cv is not None:
                tflite.OperatorAddCustomOptions(b, cv)
            ops.append(tflite.OperatorEnd(b))
        tv = self._vec(tflite.SubGraphStartTensorsVector, tens, b.PrependUOffsetTRelative)
        ov = self._vec(tflite.SubGraphStartOperatorsVector, ops, b.PrependUOffsetTRelative)
        iv = self._ivec(tflite.SubGraphStartInputsVector, inputs)
        outv = self._ivec(tflite.SubGraphStartOutputsVector, outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddOperators(b, ov)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, outv)
        sg = tflite.SubGraphEnd(b)
        sgv = self._vec(tflite.ModelStartSubgraphsVector, [sg], b.PrependUOffsetTRelative)
        cdv = self._vec(tflite.ModelStartOperatorCodesVector, codes, b.PrependUOffsetTRelative)
        bv = self._vec(tflite.ModelStartBuffersVector, bufs, b.PrependUOffsetTRelative)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cdv)
        tflite.ModelAddSubgraphs(b, sgv)
        tflite.ModelAddBuffers(b, bv)
        b.Finish(tflite.ModelEnd(b), b'TFL3')
        return bytes(b.Output())


def _conv_opts(stride, depthwise=False):
    name = 'DepthwiseConv2DOptions' if depthwise else 'Conv2DOptions'

    def make(b):
        def call(suffix, *args):
            return getattr(tflite, name + suffix)(b, *args)
        call('Start')
        call('AddPadding', tflite.Padding.SAME)
        for suffix, v in (('AddStrideH', stride), ('AddStrideW', stride),
                          ('AddDilationHFactor', 1), ('AddDilationWFactor', 1)):
            call(suffix, v)
        if depthwise:
            call('AddDepthMultiplier', 1)
        else:
            call('AddFusedActivationFunction', tflite.ActivationFunctionType.RELU)
        return getattr(tflite.BuiltinOptions, name), call('End')
    return make


def _pool_opts(h, w):
    def make(b):
        tflite.Pool2DOptionsStart(b)
        tflite.Pool2DOptionsAddPadding(b, tflite.Padding.VALID)
        tflite.Pool2DOptionsAddStrideH(b, 1)
        tflite.Pool2DOptionsAddStrideW(b, 1)
        tflite.Pool2DOptionsAddFilterHeight(b, h)
        tflite.Pool2DOptionsAddFilterWidth(b, w)
        return tflite.BuiltinOptions.Pool2DOptions, tflite.Pool2DOptionsEnd(b)
    return make


def _resize_opts(b):
    tflite.ResizeBilinearOptionsStart(b)
    tflite.ResizeBilinearOptionsAddHalfPixelCenters(b, True)
    return tflite.BuiltinOptions.ResizeBilinearOptions, tflite.ResizeBilinearOptionsEnd(b)


def _model(h=32, w=48) -> bytes:
    """input [1,h,w,3] -> conv 3x3/2 SAME + relu -> hard-swish -> depthwise 3x3 SAME ->
    squeeze-excite (global mean, sigmoid, mul) -> add skip -> resize x2 -> transposed conv
    2x2/2 (MediaPipe's custom op) -> sigmoid -> [1,2h,2w,1]."""
    m = _Builder()
    x = m.tensor([1, h, w, 3])
    c = m.tensor([1, h // 2, w // 2, 4])
    m.op(B.CONV_2D, [x, m.const(W_CONV), m.const(B_CONV)], [c], _conv_opts(2))
    hs = m.tensor([1, h // 2, w // 2, 4])
    m.op(B.HARD_SWISH, [c], [hs])
    dw = m.tensor([1, h // 2, w // 2, 4])
    m.op(B.DEPTHWISE_CONV_2D, [hs, m.const(W_DW), m.const(B_DW)], [dw], _conv_opts(1, True))
    pooled = m.tensor([1, 1, 1, 4])
    m.op(B.AVERAGE_POOL_2D, [dw], [pooled], _pool_opts(h // 2, w // 2))
    gate = m.tensor([1, 1, 1, 4])
    m.op(B.LOGISTIC, [pooled], [gate])
    se = m.tensor([1, h // 2, w // 2, 4])
    m.op(B.MUL, [dw, gate], [se])
    add = m.tensor([1, h // 2, w // 2, 4])
    m.op(B.ADD, [se, hs], [add])
    up = m.tensor([1, h, w, 4])
    m.op(B.RESIZE_BILINEAR, [add, m.const(np.array([h, w], np.int32))], [up], _resize_opts)
    tc = m.tensor([1, 2 * h, 2 * w, 1])
    m.op(B.CUSTOM, [up, m.const(W_TC), m.const(B_TC)], [tc],
         custom=struct.pack('<3i', 1, 2, 2))
    out = m.tensor([1, 2 * h, 2 * w, 1])
    m.op(B.LOGISTIC, [tc], [out])
    return m.finish([x], [out])


def _conv_same(x, w, b, stride, depthwise=False):
    """TFLite CONV_2D / DEPTHWISE_CONV_2D, SAME padding (the extra row/column at the end)."""
    h, wd, cin = x.shape
    kh, kw = w.shape[1:3]
    oh, ow = -(-h // stride), -(-wd // stride)
    ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
    xp = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((oh, ow, w.shape[0] if not depthwise else cin), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[i:i + stride * oh:stride, j:j + stride * ow:stride, :]
            if depthwise:
                out += patch * w[0, i, j, :]
            else:
                out += patch @ w[:, i, j, :].T
    return out + b


def _reference(img):
    sig = (lambda v: 1 / (1 + np.exp(-v)))
    c = np.maximum(_conv_same(img, W_CONV.astype(np.float64), B_CONV, 2), 0)
    hs = c * np.clip(c + 3, 0, 6) / 6
    dw = _conv_same(hs, W_DW.astype(np.float64), B_DW, 1, depthwise=True)
    add = dw * sig(dw.mean((0, 1))) + hs
    up = cv2.resize(add.astype(np.float32), (add.shape[1] * 2, add.shape[0] * 2),
                    interpolation=cv2.INTER_LINEAR).astype(np.float64)   # half-pixel centres
    out = np.zeros((up.shape[0] * 2, up.shape[1] * 2))
    for i in range(2):
        for j in range(2):
            out[i::2, j::2] = up @ W_TC[0, i, j, :]
    return sig(out + B_TC[0])


@pytest.mark.parametrize('h, w', [(32, 48), (48, 80)])
def test_converted_model_matches_tflite_semantics(h, w, tmp_path):
    model = to_onnx(read_tflite(_model()))
    (tmp_path / 'm.onnx').write_bytes(model.SerializeToString())
    sess = ort.InferenceSession(str(tmp_path / 'm.onnx'), providers=['CPUExecutionProvider'])
    img = np.random.default_rng(1).uniform(-1, 1, (h, w, 3))
    got = sess.run(None, {'input': img[None].astype(np.float32)})[0]
    assert got.shape == (1, 2 * h, 2 * w, 1)
    np.testing.assert_allclose(got[0, ..., 0], _reference(img), atol=2e-4)


def test_unsupported_operator_is_named():
    m = _Builder()
    x, y = m.tensor([1, 8, 8, 3]), m.tensor([1, 8, 8, 3])
    m.op(B.TANH, [x], [y])
    with pytest.raises(UnsupportedOp, match='TANH'):
        to_onnx(read_tflite(m.finish([x], [y])))
