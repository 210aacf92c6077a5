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

    def tensor(self, shape, dtype=0, data=None, sparsity=None) -> int:
        """``sparsity``: (traversal order, block map, per level a dense size or CSR
        (segments, indices)) when ``data`` holds only the stored values."""
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        self.tensors.append((list(shape), dtype, buf, sparsity))
        return len(self.tensors) - 1

    def _u8(self, values) -> int:
        v = self._vec(tflite.Uint8VectorStartValuesVector, list(values), self.b.PrependUint8)
        tflite.Uint8VectorStart(self.b)
        tflite.Uint8VectorAddValues(self.b, v)
        return tflite.Uint8VectorEnd(self.b)

    def _sparsity(self, order, block_map, levels) -> int:
        b, metas = self.b, []
        for level in levels:
            arrays = None if isinstance(level, int) else (self._u8(level[0]),
                                                          self._u8(level[1]))
            tflite.DimensionMetadataStart(b)
            if arrays is None:
                tflite.DimensionMetadataAddFormat(b, 0)
                tflite.DimensionMetadataAddDenseSize(b, level)
            else:
                tflite.DimensionMetadataAddFormat(b, 1)
                tflite.DimensionMetadataAddArraySegmentsType(b, 3)      # Uint8Vector
                tflite.DimensionMetadataAddArraySegments(b, arrays[0])
                tflite.DimensionMetadataAddArrayIndicesType(b, 3)
                tflite.DimensionMetadataAddArrayIndices(b, arrays[1])
            metas.append(tflite.DimensionMetadataEnd(b))
        ov = self._ivec(tflite.SparsityParametersStartTraversalOrderVector, order)
        bm = self._ivec(tflite.SparsityParametersStartBlockMapVector, block_map)
        mv = self._vec(tflite.SparsityParametersStartDimMetadataVector, metas,
                       b.PrependUOffsetTRelative)
        tflite.SparsityParametersStart(b)
        tflite.SparsityParametersAddTraversalOrder(b, ov)
        tflite.SparsityParametersAddBlockMap(b, bm)
        tflite.SparsityParametersAddDimMetadata(b, mv)
        return tflite.SparsityParametersEnd(b)

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
        for shape, dtype, buf, sparsity in self.tensors:
            sh = self._ivec(tflite.TensorStartShapeVector, shape)
            sp = self._sparsity(*sparsity) if sparsity else None
            tflite.TensorStart(b)
            if sp is not None:
                tflite.TensorAddSparsity(b, sp)
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


# --- the person detector's operators: sparse weights, PAD, MAX_POOL_2D, DEPTH_TO_SPACE,
# RESHAPE to [1, anchors, values] and CONCATENATION of the reshaped heads

W_SPARSE = np.where(RNG.uniform(size=(8, 1, 1, 8)) < 0.4, RNG.normal(0, 0.5, (8, 1, 1, 8)),
                    0.0).astype(np.float16)                      # [O, 1, 1, I], 60 % zeros


def _csr_last_axis(w: np.ndarray):
    """TFLite's sparse form of ``w`` with its last axis CSR (as MediaPipe stores weights):
    (stored values, sparsity)."""
    rows = w.reshape(-1, w.shape[-1])
    segments, indices, values = [0], [], []
    for row in rows:
        nz = np.flatnonzero(row)
        indices += nz.tolist()
        values += row[nz].tolist()
        segments.append(len(indices))
    levels = [*w.shape[:-1], (segments, indices)]
    return np.array(values, w.dtype), (list(range(w.ndim)), [], levels)


def _d2s(x, bs):
    """TensorFlow's depth_to_space on HWC."""
    h, w, c = x.shape
    co = c // (bs * bs)
    return x.reshape(h, w, bs, bs, co).transpose(0, 2, 1, 3, 4).reshape(h * bs, w * bs, co)


def _head_model() -> bytes:
    """input [1,8,8,8] -> 1x1 conv with sparse fp16 weights (DENSIFY, DEQUANTIZE) ->
    depth-to-space x2 -> pad -> 2x2 max pool -> reshape [1,162,2]; the input reshaped
    [1,256,2]; both concatenated on axis 1 -> [1,418,2]."""
    m = _Builder()
    x = m.tensor([1, 8, 8, 8])
    values, sparsity = _csr_last_axis(W_SPARSE)
    sparse = m.tensor(W_SPARSE.shape, 1, values, sparsity)
    dense = m.tensor(W_SPARSE.shape, 1)
    m.op(B.DENSIFY, [sparse], [dense])
    wt = m.tensor(W_SPARSE.shape)
    m.op(B.DEQUANTIZE, [dense], [wt])
    c = m.tensor([1, 8, 8, 8])
    m.op(B.CONV_2D, [x, wt, m.const(np.zeros(8, np.float32))], [c], _conv_opts(1))
    d2s = m.tensor([1, 16, 16, 2])

    def d2s_opts(b):
        tflite.DepthToSpaceOptionsStart(b)
        tflite.DepthToSpaceOptionsAddBlockSize(b, 2)
        return tflite.BuiltinOptions.DepthToSpaceOptions, tflite.DepthToSpaceOptionsEnd(b)
    m.op(B.DEPTH_TO_SPACE, [c], [d2s], d2s_opts)
    padded = m.tensor([1, 18, 18, 4])
    m.op(B.PAD, [d2s, m.const(np.array([[0, 0], [1, 1], [0, 2], [0, 2]], np.int32))],
         [padded])
    pooled = m.tensor([1, 9, 9, 4])
    m.op(B.MAX_POOL_2D, [padded], [pooled], _strided_pool_opts)
    r1, r2 = m.tensor([1, 162, 2]), m.tensor([1, 256, 2])
    m.op(B.RESHAPE, [pooled, m.const(np.array([1, 162, 2], np.int32))], [r1])
    m.op(B.RESHAPE, [x, m.const(np.array([1, 256, 2], np.int32))], [r2])
    out = m.tensor([1, 418, 2])

    def cat_opts(b):
        tflite.ConcatenationOptionsStart(b)
        tflite.ConcatenationOptionsAddAxis(b, 1)
        return tflite.BuiltinOptions.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)
    m.op(B.CONCATENATION, [r1, r2], [out], cat_opts)
    return m.finish([x], [out])


def _strided_pool_opts(b):
    tflite.Pool2DOptionsStart(b)
    tflite.Pool2DOptionsAddPadding(b, tflite.Padding.VALID)
    tflite.Pool2DOptionsAddStrideH(b, 2)
    tflite.Pool2DOptionsAddStrideW(b, 2)
    tflite.Pool2DOptionsAddFilterHeight(b, 2)
    tflite.Pool2DOptionsAddFilterWidth(b, 2)
    return tflite.BuiltinOptions.Pool2DOptions, tflite.Pool2DOptionsEnd(b)


def _head_reference(img):
    c = np.maximum(img @ W_SPARSE[:, 0, 0, :].astype(np.float64).T, 0)   # fused RELU
    padded = np.pad(_d2s(c, 2), ((1, 1), (0, 2), (0, 2)))
    pooled = padded.reshape(9, 2, 9, 2, 4).max((1, 3))
    return np.concatenate([pooled.reshape(162, 2), img.reshape(256, 2)], 0)


def test_detector_operators_and_sparse_weights_match_tflite_semantics(tmp_path):
    graph = read_tflite(_head_model())
    dense = [c for c in graph.constants.values() if c.shape == W_SPARSE.shape]
    assert any(np.array_equal(d, W_SPARSE.astype(np.float32)) for d in dense)
    (tmp_path / 'h.onnx').write_bytes(to_onnx(graph).SerializeToString())
    sess = ort.InferenceSession(str(tmp_path / 'h.onnx'), providers=['CPUExecutionProvider'])
    img = np.random.default_rng(2).uniform(-1, 1, (8, 8, 8))
    got = sess.run(None, {'input': img[None].astype(np.float32)})[0]
    assert got.shape == (1, 418, 2)
    np.testing.assert_allclose(got[0], _head_reference(img), atol=1e-4)


def test_densify_block_sparse_with_a_traversal_order():
    from tflite_onnx import densify, SparseDim
    dense = np.zeros((4, 6), np.float32)
    dense[0, 2:4] = [1, 2]
    dense[2, 0:2] = [3, 4]
    dense[2, 4:6] = [5, 6]
    dense[3, 2:4] = [7, 8]
    # rows dense, column blocks of 2 as CSR (row 1 has none), inside a block dense
    dims = [SparseDim(4), SparseDim(0, np.array([0, 1, 1, 3, 4]), np.array([1, 0, 2, 1])),
            SparseDim(2)]
    values = np.array([1, 2, 3, 4, 5, 6, 7, 8], np.float32)
    np.testing.assert_array_equal(densify(values, (4, 6), [0, 1, 2], [1], dims), dense)
