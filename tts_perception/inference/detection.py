"""Detector outputs as boxes in camera pixels: decoders for the layouts in use, NMS, and the
mapping from the model's input back to the camera frame.

Input: a detector's raw output arrays at one input size, how the frame was brought to that
size (:class:`Resize`: letterbox or stretch) and the thresholds. Output: :class:`Detections`
(boxes x1, y1, x2, y2 in camera pixels, scores, class ids), at most ``max_det``, highest score
first. Layouts: ``yolo`` (Ultralytics and YOLOv5 style, ``[1, 4 + nc (+ 1 objectness), N]`` or
transposed, centre and size in input pixels), ``boxes`` (already decoded boxes, scores and
optionally classes, NMS in the graph or not), ``ssd`` (anchor-based: offsets per anchor, the
anchors generated from :class:`SsdAnchors` options as MediaPipe's SSD anchor calculator does),
or a ``module:function`` of the user's. NMS is
OpenCV's batched NMS (per class). A layout that does not fit the classes raises
:class:`DetectionError` naming the shapes. ``model.yaml``'s ``detection:`` section picks and
configures a decoder (:mod:`~tts_perception.inference.detector_spec`); the runner calls them;
the pipeline and the node do not schedule detectors yet: see ``doc/detection.md``.
"""

from dataclasses import dataclass
import importlib
import math
from typing import Callable, Optional, Sequence, Tuple

import cv2
import numpy as np

BOX_FORMATS = ('xyxy', 'cxcywh', 'yxyx', 'xywh')
RESIZE_MODES = ('letterbox', 'stretch')


class DetectionError(ValueError):
    """A detector output that does not fit its description."""


@dataclass
class Detections:
    """Boxes [N, 4] (x1, y1, x2, y2), scores [N] and class ids [N] of one frame."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.classes = np.asarray(self.classes, np.int64).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.classes):
            raise DetectionError(f'{len(self.boxes)} boxes, {len(self.scores)} scores and '
                                 f'{len(self.classes)} classes differ in number')

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> 'Detections':
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def take(self, keep) -> 'Detections':
        return Detections(self.boxes[keep], self.scores[keep], self.classes[keep])


def bbox_corners(d) -> Tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of a vision_msgs ``Detection2D``'s box (centre and size); any object
    with its fields (rclpy's, rosbags')."""
    cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
    w, h = d.bbox.size_x, d.bbox.size_y
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def detections_from_fields(msg) -> Detections:
    """The best hypothesis of every box of a vision_msgs ``Detection2DArray`` (any object
    with its fields); a box without a hypothesis, or a class id that is not a class index,
    raises :class:`DetectionError`."""
    boxes, scores, classes = [], [], []
    for d in msg.detections:
        if not d.results:
            raise DetectionError('a Detection2D without results has no class')
        best = max(d.results, key=lambda r: r.hypothesis.score).hypothesis
        try:
            classes.append(int(best.class_id))
        except ValueError:
            raise DetectionError(f'class id {best.class_id!r} is not a class index; map '
                                 f'names to indices with the LabelInfo') from None
        boxes.append(bbox_corners(d))
        scores.append(best.score)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores),
                      np.array(classes))


@dataclass(frozen=True)
class Resize:
    """How a camera frame (``camera_wh``) became the model's input (``input_wh``):
    ``stretch`` scales each axis on its own; ``letterbox`` scales both by the same factor and
    pads the rest evenly on both sides."""

    camera_wh: Tuple[int, int]
    input_wh: Tuple[int, int]
    mode: str = 'stretch'

    def __post_init__(self) -> None:
        if self.mode not in RESIZE_MODES:
            raise DetectionError(f'resize mode must be one of {RESIZE_MODES}, got {self.mode}')

    def scale_pad(self) -> Tuple[float, float, float, float]:
        """(scale x, scale y, pad x, pad y): input = camera x scale + pad."""
        (cw, ch), (iw, ih) = self.camera_wh, self.input_wh
        if self.mode == 'stretch':
            return iw / cw, ih / ch, 0.0, 0.0
        s = min(iw / cw, ih / ch)
        return s, s, (iw - cw * s) / 2.0, (ih - ch * s) / 2.0

    def to_camera(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (x1, y1, x2, y2) in input pixels -> camera pixels, clipped to the frame."""
        sx, sy, px, py = self.scale_pad()
        out = (np.asarray(boxes, np.float32) - [px, py, px, py]) / [sx, sy, sx, sy]
        cw, ch = self.camera_wh
        return np.clip(out, 0.0, [cw, ch, cw, ch]).astype(np.float32)


def to_xyxy(boxes: np.ndarray, box_format: str) -> np.ndarray:
    """Boxes [N, 4] in ``box_format`` -> x1, y1, x2, y2."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    if box_format == 'xyxy':
        return b
    if box_format == 'yxyx':
        return b[:, [1, 0, 3, 2]]
    if box_format == 'cxcywh':
        half = b[:, 2:] / 2
        return np.concatenate([b[:, :2] - half, b[:, :2] + half], 1)
    if box_format == 'xywh':
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1)
    raise DetectionError(f'box format must be one of {BOX_FORMATS}, got {box_format}')


def nms(d: Detections, score_threshold: float, iou_threshold: float,
        max_det: int) -> Detections:
    """Per-class NMS (OpenCV's batched NMS) of the boxes above ``score_threshold``; the
    ``max_det`` highest-scoring survivors, best first."""
    if not len(d):
        return d
    xywh = np.concatenate([d.boxes[:, :2], d.boxes[:, 2:] - d.boxes[:, :2]], 1)
    keep = cv2.dnn.NMSBoxesBatched(xywh.astype(np.float64).tolist(), d.scores.tolist(),
                                   d.classes.astype(np.int32).tolist(), float(score_threshold),
                                   float(iou_threshold))
    keep = np.asarray(keep, np.int64).reshape(-1)
    keep = keep[np.argsort(-d.scores[keep], kind='stable')][:max_det]
    return d.take(keep)


def decode_yolo(output: np.ndarray, num_classes: int, objectness: bool = False
                ) -> Detections:
    """Every candidate of a YOLO-family head (before NMS), boxes in input pixels:
    ``[1, 4 + nc (+1), N]`` (Ultralytics) or ``[1, N, 4 + nc (+1)]`` (YOLOv5 style), rows
    cx, cy, w, h, [objectness], class scores; a candidate's score is its best class score
    (times objectness where there is one)."""
    a = np.asarray(output, np.float32)
    a = a[0] if a.ndim == 3 and a.shape[0] == 1 else a
    width = 4 + num_classes + int(objectness)
    if a.ndim != 2 or width not in a.shape:
        raise DetectionError(f'a YOLO output for {num_classes} classes'
                             f'{" with objectness" if objectness else ""} needs an axis of '
                             f'{width} (4 box values + classes), got shape '
                             f'{list(np.shape(output))}')
    if a.shape[0] == width and a.shape[1] != width:
        a = a.T
    cls = a[:, 4 + int(objectness):]
    best = cls.argmax(1)
    score = cls[np.arange(len(a)), best]
    if objectness:
        score = score * a[:, 4]
    return Detections(to_xyxy(a[:, :4], 'cxcywh'), score, best)


def decode_boxes(boxes: np.ndarray, scores: np.ndarray, classes: Optional[np.ndarray] = None,
                 box_format: str = 'xyxy', normalized: bool = False,
                 input_wh: Tuple[int, int] = (1, 1)) -> Detections:
    """Already decoded outputs (RT-DETR, D-FINE, TF object detection style): boxes [N, 4];
    scores [N] with ``classes`` [N], or per-class scores [N, C] (the best class taken);
    ``normalized``: coordinates in [0, 1] of the input, scaled to its pixels."""
    b = to_xyxy(np.squeeze(np.asarray(boxes, np.float32)), box_format)
    s = np.asarray(scores, np.float32)
    s = s[0] if s.ndim == 3 and s.shape[0] == 1 else s
    if classes is None:
        if s.ndim != 2:
            raise DetectionError(f'without a classes output the scores must be [N, classes], '
                                 f'got shape {list(np.shape(scores))}')
        classes = s.argmax(1)
        s = s[np.arange(len(s)), classes]
    if normalized:
        w, h = input_wh
        b = b * np.array([w, h, w, h], np.float32)
    return Detections(b, s.reshape(-1), np.asarray(classes).reshape(-1))


@dataclass(frozen=True)
class SsdAnchors:
    """Options of an SSD head's anchors (MediaPipe's SsdAnchorsCalculator): the input size,
    one stride per layer (consecutive layers of one stride share a grid), the scale range,
    the aspect ratios, the centre offset, and whether every anchor is 1 x 1 (``fixed_size``,
    as BlazeFace and MediaPipe's pose detector have)."""

    input_wh: Tuple[int, int]
    strides: Tuple[int, ...]
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    aspect_ratios: Tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    offset: Tuple[float, float] = (0.5, 0.5)
    fixed_size: bool = True

    def scale(self, layer: int) -> float:
        n = len(self.strides)
        return (self.min_scale + self.max_scale) / 2 if n == 1 else \
            self.min_scale + (self.max_scale - self.min_scale) * layer / (n - 1)

    def _shapes(self, first: int, last: int) -> list:
        """(width, height) of the anchors at each grid cell of layers first..last-1."""
        shapes = []
        for layer in range(first, last):
            s = self.scale(layer)
            ratios = [(s, r) for r in self.aspect_ratios]
            if self.interpolated_scale_aspect_ratio > 0:
                nxt = 1.0 if layer == len(self.strides) - 1 else self.scale(layer + 1)
                ratios.append((math.sqrt(s * nxt), self.interpolated_scale_aspect_ratio))
            shapes += [(sc * math.sqrt(r), sc / math.sqrt(r)) for sc, r in ratios]
        return shapes

    def anchors(self) -> np.ndarray:
        """[N, 4] anchors: centre x, centre y, width, height, normalized to the input."""
        out, layer, n = [], 0, len(self.strides)
        while layer < n:
            last = layer
            while last < n and self.strides[last] == self.strides[layer]:
                last += 1
            shapes = self._shapes(layer, last)
            gw = math.ceil(self.input_wh[0] / self.strides[layer])
            gh = math.ceil(self.input_wh[1] / self.strides[layer])
            for y in range(gh):
                for x in range(gw):
                    for w, h in shapes:
                        out.append(((x + self.offset[0]) / gw, (y + self.offset[1]) / gh,
                                    1.0 if self.fixed_size else w,
                                    1.0 if self.fixed_size else h))
            layer = last
        return np.asarray(out, np.float32)


def decode_ssd(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray,
               scales: Tuple[float, float, float, float], input_wh: Tuple[int, int],
               sigmoid: bool = True) -> Detections:
    """Every anchor's box in input pixels: ``raw_boxes`` [N, 4 (+ keypoints)] offsets dx, dy,
    dw, dh divided by ``scales`` (x, y, w, h) and applied to the anchor; ``raw_scores`` [N] or
    [N, C] (the best class), through a sigmoid unless ``sigmoid`` is False."""
    rb = np.squeeze(np.asarray(raw_boxes, np.float32), 0) if np.ndim(raw_boxes) == 3 \
        else np.asarray(raw_boxes, np.float32)
    rs = np.asarray(raw_scores, np.float32).reshape(len(rb), -1) if len(rb) else \
        np.zeros((0, 1), np.float32)
    if len(rb) != len(anchors) or rb.ndim != 2 or rb.shape[1] < 4:
        raise DetectionError(f'an SSD output needs one box of at least 4 values per anchor: '
                             f'{len(anchors)} anchors, boxes of shape {list(np.shape(raw_boxes))}')
    a, (sx, sy, sw, sh) = np.asarray(anchors, np.float32), scales
    cx, cy = rb[:, 0] / sx * a[:, 2] + a[:, 0], rb[:, 1] / sy * a[:, 3] + a[:, 1]
    w, h = rb[:, 2] / sw * a[:, 2], rb[:, 3] / sh * a[:, 3]
    iw, ih = input_wh
    boxes = np.stack([(cx - w / 2) * iw, (cy - h / 2) * ih, (cx + w / 2) * iw,
                      (cy + h / 2) * ih], 1)
    cls = rs.argmax(1)
    score = rs[np.arange(len(rs)), cls]
    if sigmoid:
        score = 1.0 / (1.0 + np.exp(-np.clip(score, -80.0, 80.0)))
    return Detections(boxes, score, cls)


def load_decoder(spec: str) -> Callable[..., Detections]:
    """A user's decoder named ``package.module:function``."""
    mod, _, fn = spec.partition(':')
    if not mod or not fn:
        raise DetectionError(f'decoder must be module:function, got {spec!r}')
    try:
        return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as exc:
        raise DetectionError(f'decoder {spec}: {exc}') from exc


def postprocess(raw: Detections, resize: Resize, score_threshold: float = 0.25,
                iou_threshold: float = 0.45, max_det: int = 100,
                class_names: Optional[Sequence[str]] = None) -> Detections:
    """Candidates in input pixels -> NMS -> boxes in camera pixels. Boxes under the score
    threshold (a head is mostly background: OpenCV would drop them only after taking every
    cell as Python lists), with no area or with a non-finite value never reach NMS; class
    ids outside ``class_names`` raise (the model has more classes than its description)."""
    if class_names is not None and len(raw) and int(raw.classes.max()) >= len(class_names):
        raise DetectionError(f'class id {int(raw.classes.max())} but the model lists '
                             f'{len(class_names)} classes')
    b = raw.boxes
    usable = (raw.scores >= score_threshold) & np.isfinite(b).all(1) & \
        np.isfinite(raw.scores) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    kept = nms(raw.take(np.flatnonzero(usable)), score_threshold, iou_threshold, max_det)
    return Detections(resize.to_camera(kept.boxes), kept.scores, kept.classes)
