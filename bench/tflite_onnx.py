"""A TensorFlow Lite model as ONNX, for the operators of MediaPipe's selfie segmenter.

``make third-party`` runs MediaPipe's person segmenter (``selfie_segmentation.tflite``,
Apache-2.0, shipped in the ``mediapipe`` wheel) through ONNX Runtime, as the package runs every
model. This converts it: the flatbuffer is read with the ``tflite`` package (the schema's
generated readers, no TensorFlow), the graph is written with ``onnx.helper``. The ONNX model
keeps TFLite's NHWC input and output and takes any input size (a multiple of 16 for this
model): global average pools stay global and the bilinear resizes keep their scale factors, so
the package can run it at every resolution. Only the operators below are converted; any other
raises ``UnsupportedOp`` naming it.

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
            raw = buf.DataAsNumpy().tobytes()
            constants[i] = np.frombuffer(raw, DTYPES[t.Type()]).reshape(shapes[i])
    ops = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), 'UNKNOWN')
        ins = [int(v) for v in op.InputsAsNumpy()]
        outs = [int(v) for v in op.OutputsAsNumpy()]
        opts: Dict[str, object] = {}
        if kind == 'DEQUANTIZE' and ins[0] in constants:
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
        elif kind == 'AVERAGE_POOL_2D':
            o = _options(op, 'Pool2DOptions', kind)
            opts = {**_window(o), 'filter': (o.FilterHeight(), o.FilterWidth())}
        elif kind in ('ADD', 'MUL'):
            o = _options(op, 'AddOptions' if kind == 'ADD' else 'MulOptions', kind, False)
            opts = {'activation': o.FusedActivationFunction() if o else 0}
        elif kind == 'RESIZE_BILINEAR':
            o = _options(op, 'ResizeBilinearOptions', kind, False)
            opts = {'align_corners': bool(o and o.AlignCorners()),
                    'half_pixel_centers': bool(o and o.HalfPixelCenters())}
        ops.append(Op(kind, ins, outs, opts))
    return Graph(ops, shapes, constants, [int(v) for v in g.InputsAsNumpy()],
                 [int(v) for v in g.OutputsAsNumpy()])


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


def to_onnx(g: Graph, name: str = 'tflite') -> onnx.ModelProto:
    """The graph as an ONNX model with NHWC input/output and free batch, height and width."""
    w = _Writer(g)
    (inp,), outs = g.inputs, g.outputs
    w.node('Transpose', ['input'], [w.name(inp)], perm=[0, 3, 1, 2])
    for op in g.ops:
        o, x = op.options, w.name(op.outputs[0])
        pre = x + '_pre'
        if op.kind in ('CONV_2D', 'DEPTHWISE_CONV_2D'):
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
    out_names = []
    for k, i in enumerate(outs):
        out_names.append('output' if len(outs) == 1 else f'output{k}')
        w.node('Transpose', [w.name(i)], [out_names[-1]], perm=[0, 2, 3, 1])
    c_in, c_out = g.shapes[inp][3], [g.shapes[i][3] for i in outs]
    graph = helper.make_graph(
        w.nodes, name,
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 'H', 'W', c_in])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ['N', 'OH', 'OW', c])
         for n, c in zip(out_names, c_out)], w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='tts_perception bench/tflite_onnx.py')
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
