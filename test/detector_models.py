"""Small real detectors, one per output layout, built as ONNX graphs for the tests.

Each finds the bright rectangle in its input (every pixel above half brightness in some
channel) and reports it in its layout: a YOLO head (Ultralytics ``[1, 4 + nc, N]`` or the
transposed YOLOv5 form), decoded boxes with scores and classes (normalized xyxy), an SSD head
(offsets from MediaPipe-style anchors), or two raw outputs for a user's decoder. A second,
low-scoring candidate sits beside the real one, so the thresholds and NMS have work to do.
"""

from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import yaml

from tts_perception.inference.detection import Detections, SsdAnchors

OPSET = 17
SCORES = (0.1, 0.9)        # the real box is class 1 at 0.9
DECOY = (0.05, 0.08)       # below every threshold the tests use


def _const(nodes: List, name: str, value) -> str:
    nodes.append(helper.make_node('Constant', [], [name], value=numpy_helper.from_array(
        np.asarray(value, np.float32), name)))
    return name


def _edges(nodes: List, col: str, size: str, tag: str) -> Tuple[str, str]:
    """First and one-past-last index where a [N, 1, L] 0/1 profile is 1: ([N,1], [N,1])."""
    nodes += [
        helper.make_node('Range', ['zero', size, 'one'], [f'{tag}_i']),
        helper.make_node('Add', [f'{tag}_i', 'one'], [f'{tag}_i1']),
        helper.make_node('Mul', [col, f'{tag}_i1'], [f'{tag}_hi']),
        helper.make_node('ReduceMax', [f'{tag}_hi'], [f'{tag}2'], axes=[2], keepdims=0),
        helper.make_node('Sub', [size, f'{tag}_i'], [f'{tag}_rev']),
        helper.make_node('Mul', [col, f'{tag}_rev'], [f'{tag}_lo']),
        helper.make_node('ReduceMax', [f'{tag}_lo'], [f'{tag}_lomax'], axes=[2], keepdims=0),
        helper.make_node('Sub', [size, f'{tag}_lomax'], [f'{tag}1'])]
    return f'{tag}1', f'{tag}2'


def box_finder(nodes: List) -> Tuple[str, str, str, str, str, str]:
    """Nodes from input ``x`` [N, 3, H, W] to x1, y1, x2, y2 [N, 1] in input pixels, plus
    the input's width and height as float scalars."""
    _const(nodes, 'zero', 0.0)
    _const(nodes, 'one', 1.0)
    _const(nodes, 'half', 0.5)
    nodes += [
        helper.make_node('ReduceMax', ['x'], ['bright'], axes=[1], keepdims=1),
        helper.make_node('Greater', ['bright', 'half'], ['fg_b']),
        helper.make_node('Cast', ['fg_b'], ['fg'], to=TensorProto.FLOAT),
        helper.make_node('ReduceMax', ['fg'], ['cols'], axes=[2], keepdims=0),
        helper.make_node('ReduceMax', ['fg'], ['rows'], axes=[3], keepdims=0),
        helper.make_node('Shape', ['x'], ['shape']),
        helper.make_node('Constant', [], ['i2'], value_int=2),
        helper.make_node('Constant', [], ['i3'], value_int=3),
        helper.make_node('Gather', ['shape', 'i3'], ['w_i']),
        helper.make_node('Gather', ['shape', 'i2'], ['h_i']),
        helper.make_node('Cast', ['w_i'], ['W'], to=TensorProto.FLOAT),
        helper.make_node('Cast', ['h_i'], ['H'], to=TensorProto.FLOAT)]
    x1, x2 = _edges(nodes, 'cols', 'W', 'x')
    y1, y2 = _edges(nodes, 'rows', 'H', 'y')
    return x1, y1, x2, y2, 'W', 'H'


def _row(nodes: List, name: str, parts: Sequence[str], scores: Sequence[float]) -> str:
    """[N, len(parts) + len(scores)]: the parts, then constant scores (broadcast to N)."""
    zeros = f'{name}_z'
    nodes.append(helper.make_node('Mul', [parts[0], 'zero'], [zeros]))
    sc = _const(nodes, f'{name}_sc', [list(scores)])
    nodes.append(helper.make_node('Add', [zeros, sc], [f'{name}_s']))
    nodes.append(helper.make_node('Concat', [*parts, f'{name}_s'], [name], axis=1))
    return name


def _cxcywh(nodes: List, x1, y1, x2, y2, dx: float = 0.0) -> List[str]:
    _const(nodes, f'dx{dx}', dx)
    nodes += [helper.make_node('Add', [x1, x2], [f'sx{dx}']),
              helper.make_node('Div', [f'sx{dx}', 'two'], [f'cx0{dx}']),
              helper.make_node('Add', [f'cx0{dx}', f'dx{dx}'], [f'cx{dx}']),
              helper.make_node('Add', [y1, y2], [f'sy{dx}']),
              helper.make_node('Div', [f'sy{dx}', 'two'], [f'cy{dx}']),
              helper.make_node('Sub', [x2, x1], [f'bw{dx}']),
              helper.make_node('Sub', [y2, y1], [f'bh{dx}'])]
    return [f'cx{dx}', f'cy{dx}', f'bw{dx}', f'bh{dx}']


def _graph(nodes, outputs, fixed_hw=None) -> onnx.ModelProto:
    h, w = fixed_hw or ('H', 'W')
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, h, w])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs]
    model = helper.make_model(helper.make_graph(nodes, 'finder', [x], outs),
                              opset_imports=[helper.make_opsetid('', OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def yolo_model(transposed: bool = False) -> onnx.ModelProto:
    """Ultralytics layout [N, 4 + 2, 2] (YOLOv5 style [N, 2, 6] when ``transposed``)."""
    nodes: List = []
    x1, y1, x2, y2, _, _ = box_finder(nodes)
    _const(nodes, 'two', 2.0)
    real = _row(nodes, 'real', _cxcywh(nodes, x1, y1, x2, y2), SCORES)
    decoy = _row(nodes, 'decoy', _cxcywh(nodes, x1, y1, x2, y2, dx=3.0), DECOY)
    nodes += [helper.make_node('Unsqueeze', [real, 'ax2'], ['real3']),
              helper.make_node('Unsqueeze', [decoy, 'ax2'], ['decoy3']),
              helper.make_node('Concat', ['real3', 'decoy3'], ['head'], axis=2)]
    nodes.insert(0, helper.make_node('Constant', [], ['ax2'], value=numpy_helper.from_array(
        np.array([2], np.int64), 'ax2')))
    if transposed:
        nodes.append(helper.make_node('Transpose', ['head'], ['output0'], perm=[0, 2, 1]))
        return _graph(nodes, [('output0', ['N', 2, 6])])
    nodes.append(helper.make_node('Identity', ['head'], ['output0']))
    return _graph(nodes, [('output0', ['N', 6, 2])])


def boxes_model() -> onnx.ModelProto:
    """Decoded outputs: boxes [N, 2, 4] normalized xyxy, scores [N, 2], labels [N, 2]."""
    nodes: List = []
    x1, y1, x2, y2, w, h = box_finder(nodes)
    nodes += [helper.make_node('Div', [x1, w], ['nx1']), helper.make_node('Div', [x2, w], ['nx2']),
              helper.make_node('Div', [y1, h], ['ny1']), helper.make_node('Div', [y2, h], ['ny2']),
              helper.make_node('Concat', ['nx1', 'ny1', 'nx2', 'ny2'], ['b1'], axis=1),
              helper.make_node('Concat', ['b1', 'b1'], ['b2'], axis=1),
              helper.make_node('Reshape', ['b2', 'shape_b'], ['boxes'])]
    nodes.insert(0, helper.make_node('Constant', [], ['shape_b'], value=numpy_helper.from_array(
        np.array([-1, 2, 4], np.int64), 'shape_b')))
    nodes += [helper.make_node('Mul', [x1, 'zero'], ['z1']),
              helper.make_node('Add', ['z1', _const(nodes, 'sc', [[SCORES[1], DECOY[1]]])],
                               ['scores']),
              helper.make_node('Add', ['z1', _const(nodes, 'lb', [[1.0, 0.0]])], ['labels'])]
    return _graph(nodes, [('boxes', ['N', 2, 4]), ('scores', ['N', 2]), ('labels', ['N', 2])])


def ssd_anchors(size: int = 128) -> SsdAnchors:
    return SsdAnchors(input_wh=(size, size), strides=(32, 64), fixed_size=True)


def ssd_model(size: int = 128, scale: float = 128.0) -> onnx.ModelProto:
    """An SSD head at a fixed input size: raw boxes [N, A, 4] (offsets of the box's centre from
    each anchor's, and its size, times ``scale``) and raw scores [N, A, 1], a high logit at
    the anchor nearest the box's centre, a low one elsewhere."""
    anchors = ssd_anchors(size).anchors()
    nodes: List = []
    x1, y1, x2, y2, w, h = box_finder(nodes)
    _const(nodes, 'two', 2.0)
    cx, cy, bw, bh = _cxcywh(nodes, x1, y1, x2, y2)
    _const(nodes, 'size', float(size))
    _const(nodes, 'scale', scale)
    _const(nodes, 'acx', anchors[:, 0][None])
    _const(nodes, 'acy', anchors[:, 1][None])
    _const(nodes, 'hi', 5.0)
    _const(nodes, 'lo', -5.0)
    for a, b in ((cx, 'ncx'), (cy, 'ncy'), (bw, 'nbw'), (bh, 'nbh')):
        nodes.append(helper.make_node('Div', [a, 'size'], [b]))
    nodes += [helper.make_node('Sub', ['ncx', 'acx'], ['ox']),      # [N, A]
              helper.make_node('Sub', ['ncy', 'acy'], ['oy']),
              helper.make_node('Mul', ['ox', 'ox'], ['ox2']),
              helper.make_node('Mul', ['oy', 'oy'], ['oy2']),
              helper.make_node('Add', ['ox2', 'oy2'], ['d2']),
              helper.make_node('ReduceMin', ['d2'], ['dmin'], axes=[1], keepdims=1),
              helper.make_node('Equal', ['d2', 'dmin'], ['near']),
              helper.make_node('Where', ['near', 'hi', 'lo'], ['logit']),
              helper.make_node('Unsqueeze', ['logit', 'ax2'], ['raw_scores']),
              helper.make_node('Mul', ['ox', 'zero'], ['zA'])]
    nodes.insert(0, helper.make_node('Constant', [], ['ax2'], value=numpy_helper.from_array(
        np.array([2], np.int64), 'ax2')))
    parts = []
    for name, src in (('px', 'ox'), ('py', 'oy'), ('pw', 'nbw'), ('ph', 'nbh')):
        nodes += [helper.make_node('Add', [src, 'zA'], [f'{name}_a']),
                  helper.make_node('Mul', [f'{name}_a', 'scale'], [f'{name}_s']),
                  helper.make_node('Unsqueeze', [f'{name}_s', 'ax2'], [name])]
        parts.append(name)
    nodes.append(helper.make_node('Concat', parts, ['raw_boxes'], axis=2))
    n = len(anchors)
    return _graph(nodes, [('raw_boxes', ['N', n, 4]), ('raw_scores', ['N', n, 1])],
                  fixed_hw=(size, size))


def pair_model() -> onnx.ModelProto:
    """Two raw outputs for a user's decoder: corners [N, 4] (x1, y1, x2, y2) and score [N, 1]."""
    nodes: List = []
    x1, y1, x2, y2, _, _ = box_finder(nodes)
    nodes += [helper.make_node('Concat', [x1, y1, x2, y2], ['corners'], axis=1),
              helper.make_node('Mul', [x1, 'zero'], ['z1']),
              helper.make_node('Add', ['z1', _const(nodes, 'sc', [[SCORES[1]]])], ['score'])]
    return _graph(nodes, [('corners', ['N', 4]), ('score', ['N', 1])])


def decode_pair(outputs: List[np.ndarray], input_wh: Tuple[int, int]) -> Detections:
    """The user's decoder of :func:`pair_model`'s outputs (class 1, the score given)."""
    corners, score = outputs
    return Detections(corners.reshape(-1, 4), score.reshape(-1), np.ones(len(corners)))


def write_detector(root: Path, models: Sequence[onnx.ModelProto], detection: dict,
                   classes=('background', 'box'), **extra) -> Path:
    """A model directory: the ONNX files as a ladder and a model.yaml with ``detection``."""
    root.mkdir(parents=True, exist_ok=True)
    files = []
    for i, m in enumerate(models):
        onnx.save(m, str(root / f'd{i}.onnx'))
        files.append(f'd{i}.onnx')
    desc = {'name': root.name, 'task': 'detection', 'classes': list(classes),
            'input': {'layout': 'NCHW', 'scale': 1 / 255}, 'detection': detection,
            'stages': {'fp32': files}, **extra}
    (root / 'model.yaml').write_text(yaml.safe_dump(desc, sort_keys=False))
    return root
