"""The ``detection:`` section of a detector's ``model.yaml``: which decoder reads its outputs,
how frames are resized to its input, and the NMS settings.

Contract: :func:`parse_detector` turns the section into a :class:`DetectorSpec` or raises
:class:`DetectionError` naming the key; :meth:`DetectorSpec.check_outputs` compares it with the
ONNX graph's outputs (their number and, where static, the channels against the classes) so a
mismatch fails configuration, not the first frame; :meth:`DetectorSpec.decode` turns one
frame's outputs into candidates in input pixels (before NMS). The layouts are documented in
``doc/detection.md``; the decoders themselves are in :mod:`tts_perception.inference.detection`.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.inference.detection import (BOX_FORMATS, decode_boxes, decode_ssd,
                                                decode_yolo, DetectionError, Detections,
                                                load_decoder, RESIZE_MODES, SsdAnchors)

DECODERS = ('yolo', 'boxes', 'ssd')
BOX_ROLES = ('boxes', 'scores', 'classes')


@dataclass(frozen=True)
class DetectorSpec:
    """A parsed ``detection:`` section (see module docstring)."""

    decoder: str = 'yolo'                 # yolo | boxes | ssd | package.module:function
    resize: str = 'letterbox'
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_det: int = 100
    objectness: bool = False              # yolo: a column of objectness before the classes
    box_format: str = 'xyxy'              # boxes
    normalized: bool = False              # boxes: coordinates in [0, 1] of the input
    outputs: Dict[str, Any] = field(default_factory=dict)   # boxes: role -> name or index
    anchors: Optional[SsdAnchors] = None  # ssd: the options
    anchor_boxes: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    ssd_scales: Tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    sigmoid: bool = True                  # ssd: raw scores are logits
    user: Optional[Callable[..., Detections]] = field(default=None, compare=False)

    def decode(self, outputs: Sequence[np.ndarray], num_classes: int,
               input_wh: Tuple[int, int], names: Sequence[str] = ()) -> Detections:
        """One frame's outputs (batch dimension 1) -> candidates in input pixels."""
        if self.user is not None:
            return self.user(list(outputs), input_wh)
        if self.decoder == 'yolo':
            return decode_yolo(outputs[0], num_classes, self.objectness)
        if self.decoder == 'ssd':
            return decode_ssd(outputs[0], outputs[1], self.anchor_boxes, self.ssd_scales,
                              input_wh, self.sigmoid)
        pick = {role: outputs[self.output_index(role, names)] for role in BOX_ROLES
                if role in self.outputs}
        return decode_boxes(pick['boxes'], pick['scores'], pick.get('classes'),
                            self.box_format, self.normalized, input_wh)

    def output_index(self, role: str, names: Sequence[str]) -> int:
        """The graph output that carries ``role`` (named or counted from 0)."""
        ref = self.outputs[role]
        if isinstance(ref, int):
            return ref
        return list(names).index(ref)

    def check_outputs(self, names: Sequence[str], shapes: Sequence[Sequence[Optional[int]]],
                      num_classes: int) -> None:
        """Raise :class:`DetectionError` when the graph's outputs cannot be what the
        decoder reads (their number, a named output, a YOLO head's channels, SSD anchors)."""
        if self.user is not None:
            return
        need = {'yolo': 1, 'ssd': 2}.get(self.decoder)
        if need is not None and len(names) < need:
            raise DetectionError(f'decoder {self.decoder} reads {need} output(s), the graph '
                                 f'has {len(names)}: {list(names)}')
        if self.decoder == 'yolo':
            _check_yolo(shapes[0], num_classes, self.objectness)
        elif self.decoder == 'ssd':
            _check_ssd(shapes[0], len(self.anchor_boxes))
        else:
            _check_roles(self.outputs, names)


def _check_yolo(shape: Sequence[Optional[int]], num_classes: int, objectness: bool) -> None:
    width = 4 + num_classes + int(objectness)
    static = [d for d in shape[1:] if d]
    if len(shape) == 3 and len(static) == 2 and width not in static:
        raise DetectionError(
            f'the YOLO output has shape {list(shape)}: no axis of {width} = 4 box values + '
            f'{num_classes} classes{" + objectness" if objectness else ""}; model.yaml '
            f'lists {num_classes} classes')


def _check_ssd(shape: Sequence[Optional[int]], n_anchors: int) -> None:
    if len(shape) >= 2 and shape[1] and shape[1] != n_anchors:
        raise DetectionError(f'the SSD box output has {shape[1]} boxes, the anchor options '
                             f'give {n_anchors} anchors')


def _check_roles(outputs: Dict[str, Any], names: Sequence[str]) -> None:
    for role, ref in outputs.items():
        ok = (0 <= ref < len(names)) if isinstance(ref, int) else ref in names
        if not ok:
            raise DetectionError(f'detection.outputs.{role} is {ref!r}, the graph\'s outputs '
                                 f'are {list(names)}')


def parse_detector(d: Any) -> DetectorSpec:
    """The ``detection:`` section -> :class:`DetectorSpec`; a :class:`DetectionError` names
    the first key that is wrong."""
    if not isinstance(d, dict):
        raise DetectionError(f'detection must be a mapping, got {d!r}')
    decoder = _text(d, 'decoder', 'yolo')
    user = None
    if decoder not in DECODERS:
        if ':' not in decoder:
            raise DetectionError(f'detection.decoder must be one of {DECODERS} or '
                                 f'package.module:function, got {decoder!r}')
        user = load_decoder(decoder)
    kw = dict(decoder=decoder, user=user, resize=_choice(d, 'resize', 'letterbox', RESIZE_MODES),
              score_threshold=_unit(d, 'score_threshold', 0.25),
              iou_threshold=_unit(d, 'iou_threshold', 0.45),
              max_det=_count(d, 'max_det', 100))
    if decoder == 'yolo':
        kw['objectness'] = _flag(d.get('yolo') or {}, 'objectness', False, 'yolo.')
    elif decoder == 'boxes':
        kw.update(_boxes_section(d.get('boxes')))
    elif decoder == 'ssd':
        kw.update(_ssd_section(d.get('ssd')))
    return DetectorSpec(**kw)


def _boxes_section(b: Any) -> Dict[str, Any]:
    if not isinstance(b, dict):
        raise DetectionError('decoder boxes needs a boxes: section naming its outputs')
    outputs = b.get('outputs')
    if not isinstance(outputs, dict) or not {'boxes', 'scores'} <= set(outputs) or \
            not set(outputs) <= set(BOX_ROLES):
        raise DetectionError(f'detection.boxes.outputs must map boxes and scores (and '
                             f'optionally classes) to output names or indices, got {outputs!r}')
    for role, ref in outputs.items():
        if isinstance(ref, bool) or not isinstance(ref, (int, str)):
            raise DetectionError(f'detection.boxes.outputs.{role} must be a name or an index, '
                                 f'got {ref!r}')
    return dict(outputs=dict(outputs), box_format=_choice(b, 'format', 'xyxy', BOX_FORMATS,
                                                          'boxes.'),
                normalized=_flag(b, 'normalized', False, 'boxes.'))


def _ssd_section(s: Any) -> Dict[str, Any]:
    if not isinstance(s, dict):
        raise DetectionError('decoder ssd needs an ssd: section with the anchor options')
    try:
        anchors = SsdAnchors(
            input_wh=tuple(int(v) for v in s['input_size']),
            strides=tuple(int(v) for v in s['strides']),
            min_scale=float(s.get('min_scale', 0.1484375)),
            max_scale=float(s.get('max_scale', 0.75)),
            aspect_ratios=tuple(float(v) for v in s.get('aspect_ratios', [1.0])),
            interpolated_scale_aspect_ratio=float(s.get('interpolated_scale_aspect_ratio',
                                                        1.0)),
            offset=tuple(float(v) for v in s.get('offset', [0.5, 0.5])),
            fixed_size=bool(s.get('fixed_size', True)))
        scales = tuple(float(v) for v in s.get('scales', [1.0, 1.0, 1.0, 1.0]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectionError(f'detection.ssd needs input_size [w, h] and strides, numbers '
                             f'elsewhere: {exc!r}') from None
    if len(anchors.input_wh) != 2 or not anchors.strides or len(scales) != 4 or \
            min(anchors.strides) <= 0 or min(scales) <= 0:
        raise DetectionError('detection.ssd: input_size is [w, h], strides positive, scales '
                             'four positive numbers (x, y, w, h)')
    return dict(anchors=anchors, anchor_boxes=anchors.anchors(), ssd_scales=scales,
                sigmoid=_flag(s, 'sigmoid', True, 'ssd.'))


def _text(d: dict, key: str, default: str) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or not v:
        raise DetectionError(f'detection.{key} must be text, got {v!r}')
    return v


def _choice(d: dict, key: str, default: str, choices: Sequence[str], prefix: str = '') -> str:
    v = d.get(key, default)
    if v not in choices:
        raise DetectionError(f'detection.{prefix}{key} must be one of {tuple(choices)}, '
                             f'got {v!r}')
    return v


def _unit(d: dict, key: str, default: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise DetectionError(f'detection.{key} must be a number in [0, 1], got {v!r}')
    return float(v)


def _count(d: dict, key: str, default: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise DetectionError(f'detection.{key} must be a positive integer, got {v!r}')
    return v


def _flag(d: dict, key: str, default: bool, prefix: str = '') -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise DetectionError(f'detection.{prefix}{key} must be true or false, got {v!r}')
    return v


def output_signature(onnx_path) -> Tuple[List[str], List[List[Optional[int]]]]:
    """Names and shapes (None where symbolic) of an ONNX graph's outputs."""
    import onnx
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and others for a broken file
        raise DetectionError(f'{onnx_path} is not a readable ONNX model: {exc}') from exc
    shapes = [[d.dim_value if d.HasField('dim_value') else None
               for d in o.type.tensor_type.shape.dim] for o in graph.output]
    return [o.name for o in graph.output], shapes
