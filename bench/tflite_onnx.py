"""A TensorFlow Lite model as ONNX, for the operators of MediaPipe's selfie segmenter and of
its pose (person) detector.

``make third-party`` runs MediaPipe's person segmenter (``selfie_segmentation.tflite``,
Apache-2.0, shipped in the ``mediapipe`` wheel) through ONNX Runtime, as the package runs every
model. This converts it: the flatbuffer is read with the ``tflite`` package (the schema's
generated readers, no TensorFlow), the graph is written with ``onnx.helper``. The ONNX model
keeps TFLite's NHWC input and output and takes any input size (a multiple of 16 for this
model): global average pools stay global and the bilinear resizes keep their scale factors, so
the package can run it at every resolution. The person detector (``pose_detection.tflite``, an
SSD head) keeps its reshaped [1, anchors, values] outputs as they are; its weights are sparse
(TFLite's ``SparsityParameters``, densified here: :func:`densify`). Only the operators below
are converted; any other raises ``UnsupportedOp`` naming it.

    read_tflite(bytes) -> Graph      # the operators, tensor shapes and constants
    to_onnx(graph) -> ModelProto     # NCHW inside, NHWC at the edges
"""

from dataclasses import dataclass, field
import struct
from typing import Dict, List, Optional, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OPSET = 17
PADDING = {0: 'SAME', 1: 'VALID'}            # tflite.Padding
MP_PADDING = {1: 'SAME', 2: 'VALID'}         # MediaPipe's custom op: TfLitePadding
ACTIVATIONS = {0: None, 1: 'Relu', 3: 'Relu6'}   # tflite.ActivationFunctionType
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}   # tflite.TensorType
CUSTOM_TRANSPOSE_CONV = 'Convolution2DTransposeBias'


class UnsupportedOp(ValueError):
    """An operator or option this converter does not translate."""


@dataclass
class Op:
    """One TFLite operator: its kind, tensor indices and the options that matter here."""

    kind: str
    inputs: List[int]
    outputs: List[int]
    options: Dict[str, object] = field(default_factory=dict)


@dataclass
class Graph:
    """A TFLite subgraph: operators in order, every tensor's shape, constants as float32."""

    ops: List[Op]
    shapes: Dict[int, Tuple[int, ...]]
    constants: Dict[int, np.ndarray]
    inputs: List[int]
    outputs: List[int]


def _builtin_names() -> Dict[int, str]:
    import tflite
    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith('_')}


def _options(op, cls: str, kind: str, required: bool = True) -> Optional[object]:
    """The operator's builtin options table, or None where it has none (all defaults)."""
    import tflite
    tab = op.BuiltinOptions()
    if tab is None:
        if required:
            raise UnsupportedOp(f'operator {kind} without its {cls}')
        return None
    o = getattr(tflite, cls)()
    o.Init(tab.Bytes, tab.Pos)
    return o


def _window(o) -> Dict[str, object]:
    """What convolutions and pools share: padding, stride, fused activation."""
    return {'padding': PADDING[o.Padding()], 'stride': (o.StrideH(), o.StrideW()),
            'activation': o.FusedActivationFunction()}


def read_tflite(data: bytes) -> Graph:
    """Parse a TFLite flatbuffer (subgraph 0). DEQUANTIZE of a constant is folded."""
    import tflite
    m = tflite.Model.GetRootAsModel(data, 0)
    g = m.Subgraphs(0)
    names = _builtin_names()
    shapes, constants = {}, {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        shapes[i] = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        buf = m.Buffers(t.Buffer())
        if buf is not None and buf.DataLength():
            if t.Type() not in DTYPES:
                raise UnsupportedOp(f'tensor {i}: element type {t.Type()}')
            values = np.frombuffer(buf.DataAsNumpy().tobytes(), DTYPES[t.Type()])
            constants[i] = values.reshape(shapes[i]) if t.Sparsity() is None else \
                _densify_tensor(values, shapes[i], t.Sparsity())
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), 'UNKNOWN')
        ins = [int(v) for v in op.InputsAsNumpy()]
        outs = [int(v) for v in op.OutputsAsNumpy()]
        opts: Dict[str, object] = {}
        if kind in ('DEQUANTIZE', 'DENSIFY') and ins[0] in constants:
            constants[outs[0]] = constants[ins[0]].astype(np.float32)
            continue
        if kind == 'CUSTOM':
            kind = code.CustomCode().decode()
            if kind != CUSTOM_TRANSPOSE_CONV:
                raise UnsupportedOp(f'custom operator {kind}')
            pad, sw, sh = struct.unpack('<3i', op.CustomOptionsAsNumpy().tobytes()[:12])
            opts = {'padding': MP_PADDING[pad], 'stride': (sh, sw), 'activation': None}
        elif kind in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
            o = _options(op, 'Conv2DOptions' if kind == 'CONV_2D' else
                         'DepthwiseConv2DOptions', kind)
            opts = {**_window(o), 'dilation': (o.DilationHFactor(), o.DilationWFactor())}
        elif kind in ('AVERAGE_POOL_2D', 'MAX_POOL_2D'):
            o = _options(op, 'Pool2DOptions', kind)
            opts = {**_window(o), 'filter': (o.FilterHeight(), o.FilterWidth())}
        elif kind in ('ADD', 'MUL'):
            o = _options(op, 'AddOptions' if kind == 'ADD' else 'MulOptions', kind, False)
            opts = {'activation': o.FusedActivationFunction() if o else 0}
        elif kind == 'CONCATENATION':
            o = _options(op, 'ConcatenationOptions', kind)
            opts = {'axis': o.Axis(), 'activation': o.FusedActivationFunction()}
        elif kind == 'DEPTH_TO_SPACE':
            opts = {'block': _options(op, 'DepthToSpaceOptions', kind).BlockSize()}
        elif kind == 'RESIZE_BILINEAR':
            o = _options(op, 'ResizeBilinearOptions', kind, False)
            opts = {'align_corners': bool(o and o.AlignCorners()),
                    'half_pixel_centers': bool(o and o.HalfPixelCenters())}
        ops.append(Op(kind, ins, outs, opts))
    return Graph(ops, shapes, constants, [int(v) for v in g.InputsAsNumpy()],
                 [int(v) for v in g.OutputsAsNumpy()])


@dataclass
class SparseDim:
    """One level of a sparse tensor's traversal: dense (``size`` values) or CSR (``segments``
    into ``indices``)."""

    size: int = 0
    segments: Optional[np.ndarray] = None
    indices: Optional[np.ndarray] = None


def densify(values: np.ndarray, shape: Tuple[int, ...], traversal_order: List[int],
            block_map: List[int], dims: List[SparseDim]) -> np.ndarray:
    """TFLite's sparse format -> the dense array: ``dims[level]`` describes the expanded
    dimension ``traversal_order[level]`` (the tensor's dimensions, then one per block,
    ``block_map[k]`` naming the dimension block k divides); dense levels multiply the
    position, CSR levels enumerate their segment; the leaves are ``values`` in order."""
    n = len(shape)
    level_of = {t: lvl for lvl, t in enumerate(traversal_order)}
    block = {d: dims[level_of[n + k]].size for k, d in enumerate(block_map)}
    out = np.zeros(shape, values.dtype)
    idx = [0] * len(traversal_order)

    def walk(level: int, pos: int) -> None:
        if level == len(traversal_order):
            coord = [idx[d] * block.get(d, 1) for d in range(n)]
            for k, d in enumerate(block_map):
                coord[d] += idx[n + k]
            out[tuple(coord)] = values[pos]
            return
        dim, axis = dims[level], traversal_order[level]
        if dim.segments is None:
            for i in range(dim.size):
                idx[axis] = i
                walk(level + 1, pos * dim.size + i)
        else:
            for j in range(int(dim.segments[pos]), int(dim.segments[pos + 1])):
                idx[axis] = int(dim.indices[j])
                walk(level + 1, j)
    walk(0, 0)
    return out


def _index_vector(kind: int, table) -> np.ndarray:
    import tflite
    vec = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy()


def _densify_tensor(values: np.ndarray, shape: Tuple[int, ...], sp) -> np.ndarray:
    """A tensor stored with ``SparsityParameters`` ``sp`` as a dense array."""
    dims = []
    for k in range(sp.DimMetadataLength()):
        d = sp.DimMetadata(k)
        if d.Format() == 0:
            dims.append(SparseDim(int(d.DenseSize())))
        else:
            dims.append(SparseDim(0, _index_vector(d.ArraySegmentsType(), d.ArraySegments()),
                                  _index_vector(d.ArrayIndicesType(), d.ArrayIndices())))
    block_map = [int(v) for v in sp.BlockMapAsNumpy()] if sp.BlockMapLength() else []
    order = [int(v) for v in sp.TraversalOrderAsNumpy()]
    return densify(values, shape, order, block_map, dims)


class _Writer:
    """Accumulates ONNX nodes and initializers; tensor names are ``t<index>``."""

    def __init__(self, g: Graph):
        self.g, self.nodes, self.inits = g, [], []
        self.n = 0

    def name(self, i: int) -> str:
        return f't{i}'

    def const(self, arr: np.ndarray, hint: str) -> str:
        self.n += 1
        name = f'{hint}_{self.n}'
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, kind: str, ins: List[str], outs: List[str], **attrs) -> None:
        self.n += 1
        self.nodes.append(helper.make_node(kind, ins, outs, name=f'{kind}_{self.n}', **attrs))

    def activation(self, act: Optional[int], src: str, dst: str) -> None:
        if act not in ACTIVATIONS:
            raise UnsupportedOp(f'fused activation {act}')
        kind = ACTIVATIONS[act]
        if kind is None:
            self.node('Identity', [src], [dst])
        elif kind == 'Relu':
            self.node('Relu', [src], [dst])
        else:
            self.node('Clip', [src, self.const(np.float32(0), 'lo'),
                               self.const(np.float32(6), 'hi')], [dst])

    def operand(self, i: int) -> str:
        """A tensor as NCHW: constants of shape [C] or NHWC are reshaped/transposed."""
        if i not in self.g.constants:
            return self.name(i)
        c = self.g.constants[i].astype(np.float32)
        if c.ndim == 4:
            c = c.transpose(0, 3, 1, 2)
        elif c.ndim == 1:
            c = c.reshape(1, -1, 1, 1)
        return self.const(c, 'c')


def _pads(padding: str) -> dict:
    return {'auto_pad': 'SAME_UPPER'} if padding == 'SAME' else {'pads': [0, 0, 0, 0]}


NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


def _pad(w: '_Writer', g: Graph, op: Op, plain: set) -> None:
    p = g.constants[op.inputs[1]].astype(np.int64).reshape(-1, 2)      # NHWC [before, after]
    if op.inputs[0] not in plain and len(p) == 4:
        p = p[[0, 3, 1, 2]]
    w.node('Pad', [w.name(op.inputs[0]), w.const(np.concatenate([p[:, 0], p[:, 1]]), 'pads')],
           [w.name(op.outputs[0])], mode='constant')
    if op.inputs[0] in plain:
        plain.add(op.outputs[0])


def _reshape(w: '_Writer', g: Graph, op: Op, plain: set) -> None:
    """To TFLite's shape, on the NHWC order of the data; 4-D results go back to NCHW."""
    src, x = w.name(op.inputs[0]), w.name(op.outputs[0])
    if op.inputs[0] not in plain and len(g.shapes[op.inputs[0]]) == 4:
        w.node('Transpose', [src], [x + '_nhwc'], perm=[0, 2, 3, 1])
        src = x + '_nhwc'
    shape = list(g.shapes[op.outputs[0]])
    target = w.const(np.array([-1, *shape[1:]], np.int64), 'shape')
    if len(shape) == 4:
        w.node('Reshape', [src, target], [x + '_r'])
        w.node('Transpose', [x + '_r'], [x], perm=[0, 3, 1, 2])
    else:
        w.node('Reshape', [src, target], [x])
        plain.add(op.outputs[0])


def _concat(w: '_Writer', g: Graph, op: Op, plain: set) -> None:
    kept = [i in plain for i in op.inputs if i not in g.constants]
    if any(kept) and not all(kept):
        raise UnsupportedOp('CONCATENATION of reshaped and unreshaped tensors')
    axis = op.options['axis'] % len(g.shapes[op.outputs[0]])
    if not any(kept):
        axis = NHWC_TO_NCHW_AXIS[axis]
    x = w.name(op.outputs[0])
    w.node('Concat', [w.operand(i) for i in op.inputs], [x + '_pre'], axis=axis)
    w.activation(op.options['activation'], x + '_pre', x)
    if any(kept):
        plain.add(op.outputs[0])


def _depth_to_space(w: '_Writer', g: Graph, op: Op, plain: set) -> None:
    # TensorFlow's depth_to_space on NHWC is ONNX's DCR order on NCHW
    w.node('DepthToSpace', [w.name(op.inputs[0])], [w.name(op.outputs[0])],
           blocksize=op.options['block'], mode='DCR')


LAYOUT_OPS = {'PAD': _pad, 'RESHAPE': _reshape, 'CONCATENATION': _concat,
              'DEPTH_TO_SPACE': _depth_to_space}


def to_onnx(g: Graph, name: str = 'tflite') -> onnx.ModelProto:
    """The graph as an ONNX model with NHWC input/output and free batch, height and width."""
    w = _Writer(g)
    (inp,), outs = g.inputs, g.outputs
    w.node('Transpose', ['input'], [w.name(inp)], perm=[0, 3, 1, 2])
    plain: set = set()          # tensors kept in TFLite's own layout (after a RESHAPE)
    for op in g.ops:
        o, x = op.options, w.name(op.outputs[0])
        pre = x + '_pre'
        if op.kind in LAYOUT_OPS:
            LAYOUT_OPS[op.kind](w, g, op, plain)
        elif op.kind in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
            wt = g.constants[op.inputs[1]]
            if op.kind == 'CONV_2D':          # [O, kh, kw, I] -> [O, I, kh, kw]
                kern, group = wt.transpose(0, 3, 1, 2), 1
            else:                             # [1, kh, kw, C*m] -> [C*m, 1, kh, kw]
                kern = wt.transpose(3, 0, 1, 2)
                group = g.shapes[op.inputs[0]][3]
            ins = [w.name(op.inputs[0]), w.const(kern.astype(np.float32), 'w')]
            if len(op.inputs) > 2 and op.inputs[2] >= 0:
                ins.append(w.const(g.constants[op.inputs[2]].astype(np.float32), 'b'))
            w.node('Conv', ins, [pre], strides=list(o['stride']), group=group,
                   dilations=list(o['dilation']), kernel_shape=list(kern.shape[2:]),
                   **_pads(o['padding']))
            w.activation(o['activation'], pre, x)
        elif op.kind == CUSTOM_TRANSPOSE_CONV:
            wt = g.constants[op.inputs[1]]    # [O, kh, kw, I] -> [I, O, kh, kw]
            kern = wt.transpose(3, 0, 1, 2).astype(np.float32)
            (sh, sw), (kh, kw) = o['stride'], kern.shape[2:]
            if o['padding'] == 'SAME':        # output = input * stride
                th, tw = max(kh - sh, 0), max(kw - sw, 0)
                pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
            else:
                pads = [0, 0, 0, 0]
            w.node('ConvTranspose', [w.name(op.inputs[0]), w.const(kern, 'w'),
                                     w.const(g.constants[op.inputs[2]].astype(np.float32),
                                             'b')],
                   [x], strides=[sh, sw], kernel_shape=[kh, kw], pads=pads)
        elif op.kind == 'AVERAGE_POOL_2D':
            ih, iw = g.shapes[op.inputs[0]][1:3]
            if tuple(o['filter']) == (ih, iw) and g.shapes[op.outputs[0]][1:3] == (1, 1):
                w.node('GlobalAveragePool', [w.name(op.inputs[0])], [pre])
            else:
                w.node('AveragePool', [w.name(op.inputs[0])], [pre],
                       kernel_shape=list(o['filter']), strides=list(o['stride']),
                       count_include_pad=0, **_pads(o['padding']))
            w.activation(o['activation'], pre, x)
        elif op.kind == 'MAX_POOL_2D':
            w.node('MaxPool', [w.name(op.inputs[0])], [pre], kernel_shape=list(o['filter']),
                   strides=list(o['stride']), **_pads(o['padding']))
            w.activation(o['activation'], pre, x)
        elif op.kind in ('ADD', 'MUL'):
            w.node('Add' if op.kind == 'ADD' else 'Mul',
                   [w.operand(op.inputs[0]), w.operand(op.inputs[1])], [pre])
            w.activation(o['activation'], pre, x)
        elif op.kind in ('RELU', 'LOGISTIC', 'HARD_SWISH'):
            w.node({'RELU': 'Relu', 'LOGISTIC': 'Sigmoid', 'HARD_SWISH': 'HardSwish'}[op.kind],
                   [w.name(op.inputs[0])], [x])
        elif op.kind == 'RESIZE_BILINEAR':
            (ih, iw), (oh, ow) = g.shapes[op.inputs[0]][1:3], g.shapes[op.outputs[0]][1:3]
            mode = ('align_corners' if o['align_corners'] else
                    'half_pixel' if o['half_pixel_centers'] else 'asymmetric')
            w.node('Resize', [w.name(op.inputs[0]), '',
                              w.const(np.array([1, 1, oh / ih, ow / iw], np.float32), 's')],
                   [x], mode='linear', coordinate_transformation_mode=mode)
        else:
            raise UnsupportedOp(f'operator {op.kind}')
    out_names, out_shapes = [], []
    for k, i in enumerate(outs):
        out_names.append('output' if len(outs) == 1 else f'output{k}')
        if i in plain:
            w.node('Identity', [w.name(i)], [out_names[-1]])
            out_shapes.append(['N', *g.shapes[i][1:]])
        else:
            w.node('Transpose', [w.name(i)], [out_names[-1]], perm=[0, 2, 3, 1])
            out_shapes.append(['N', 'OH', 'OW', g.shapes[i][3]])
    graph = helper.make_graph(
        w.nodes, name,
        [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                       ['N', 'H', 'W', g.shapes[inp][3]])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
         for n, shape in zip(out_names, out_shapes)], w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='tts_perception bench/tflite_onnx.py')
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
