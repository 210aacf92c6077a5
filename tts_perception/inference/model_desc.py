"""Model description: what a segmentation model or a detector expects and returns, read from
``model.yaml``.

The scheduler and nodes only see depths and resolutions; everything model-specific lives here,
so a user's own ONNX model plugs in with a description like::

    name: my_model
    classes: [background, floor, obstacle]
    structure: ladder            # 'chained': stage k eats stage k-1's first output;
                                 # 'ladder': each depth is a separate full model on the image
    input: {layout: NHWC, channel_order: BGR, scale: 0.00392157, mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225], multiple_of: 32}
    output: {kind: logits, layout: NCHW}    # kind: logits | probabilities | labels | binary
    # binary: one foreground channel (score: logit | probability, threshold: 0.5) and
    #         exactly two classes, [background, <foreground>]
    stages: {fp32: [small.onnx, medium.onnx, large.onnx]}

Pixel value fed to the model = ((pixel * scale) - mean) / std, per channel, in channel_order.
A detector says ``task: detection``, has a ladder of models as its depths and a ``detection:``
section instead of ``output:`` (:mod:`~tts_perception.inference.detector_spec`;
``doc/detection.md`` shows one for each output layout).
"""

from dataclasses import dataclass, field
import hashlib
from pathlib import Path
import re
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import yaml

from tts_perception.inference.detection import DetectionError, Detections, postprocess, Resize
from tts_perception.inference.detector_spec import (DetectorSpec, output_signature,
                                                    parse_detector)

LAYOUTS = ('NCHW', 'NHWC')
OUTPUT_KINDS = ('logits', 'probabilities', 'labels', 'binary')
BINARY_SCORES = ('logit', 'probability')
STRUCTURES = ('chained', 'ladder')
TASKS = ('segmentation', 'detection')
LETTERBOX_PAD = 114      # the grey Ultralytics and YOLOv5 pad letterboxed inputs with


class ModelError(RuntimeError):
    """A model description or model file that cannot be used; the text says why."""


@dataclass
class ModelDescription:
    """A parsed, validated ``model.yaml``."""

    root: Path
    name: str
    classes: List[str]
    structure: str
    layout: str
    channel_order: str
    scale: float
    mean: np.ndarray
    std: np.ndarray
    multiple_of: int
    output_kind: str
    output_layout: str
    stages: Dict[str, List[Path]]
    torch_weights: Optional[Path] = None
    torch_class: Optional[str] = None    # dotted path of the torch module the weights fit
    binary_score: str = 'logit'          # binary outputs: the channel is a logit or a probability
    threshold: float = 0.5               # binary outputs: foreground when probability > this
    fixed_batch: Optional[int] = None    # batch size fixed in the ONNX input shape
    fixed_size: Optional[Tuple[int, int]] = None   # (w, h) fixed in the ONNX input shape
    task: str = 'segmentation'
    detector: Optional[DetectorSpec] = None      # task detection: the decoder and NMS
    output_names: Tuple[str, ...] = ()           # the ONNX graph's outputs (detectors)
    _hash: Optional[str] = field(default=None, repr=False)

    @property
    def depths(self) -> Tuple[int, ...]:
        """Available exit depths (1-based)."""
        return tuple(range(1, len(self.stages['fp32']) + 1))

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return len(self.classes)

    @property
    def precisions(self) -> Tuple[str, ...]:
        """Precisions with ONNX files (fp32 always)."""
        return tuple(self.stages)

    def hash(self) -> str:
        """sha256 over every stage file: identifies the weights in caches and profiles."""
        if self._hash is None:
            h = hashlib.sha256()
            for prec in sorted(self.stages):
                for p in self.stages[prec]:
                    h.update(p.read_bytes())
            self._hash = h.hexdigest()
        return self._hash

    def profile_path(self, device: str) -> Path:
        """Where a profile of this model is found by default: ``profile_cpu.json`` in its
        directory, ``profile_cuda.json`` for a CUDA device."""
        return self.root / f'profile_{"cuda" if str(device).startswith("cuda") else "cpu"}.json'

    def check_resolution(self, wh: Tuple[int, int]) -> None:
        """Raise ModelError if the model cannot take this input size."""
        w, h = wh
        if self.fixed_size is not None and tuple(wh) != self.fixed_size:
            raise ModelError(f'model {self.name} takes only {self.fixed_size[0]}x'
                             f'{self.fixed_size[1]} input (fixed in its ONNX input shape), not '
                             f'{w}x{h}')
        m = self.multiple_of
        if w <= 0 or h <= 0 or w % m or h % m:
            raise ModelError(f'resolution {w}x{h} is not a positive multiple of {m} '
                             f'required by model {self.name}')

    def preprocess(self, frames_rgb: List[np.ndarray], wh: Tuple[int, int]) -> np.ndarray:
        """Resize, reorder and normalise frames into one input batch (float32)."""
        batch = []
        for f in frames_rgb:
            f = self._fit(f, wh)
            if self.channel_order == 'BGR':
                f = f[..., ::-1]
            batch.append(f)
        x = np.stack(batch).astype(np.float32)
        if self.scale != 1.0:
            x *= self.scale
        if np.any(self.mean != 0.0) or np.any(self.std != 1.0):
            x = (x - self.mean) / self.std
        if self.layout == 'NCHW':
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)

    @property
    def resize_mode(self) -> str:
        """How frames reach the input size: ``stretch``, or ``letterbox`` (a detector's)."""
        return self.detector.resize if self.detector is not None else 'stretch'

    def _fit(self, f: np.ndarray, wh: Tuple[int, int]) -> np.ndarray:
        """One frame at the input size ``wh``, stretched or letterboxed."""
        if f.shape[1] == wh[0] and f.shape[0] == wh[1]:
            return f
        if self.resize_mode == 'stretch':
            interp = cv2.INTER_AREA if f.shape[1] > wh[0] else cv2.INTER_LINEAR
            return cv2.resize(f, wh, interpolation=interp)
        sx, sy, px, py = Resize((f.shape[1], f.shape[0]), wh, 'letterbox').scale_pad()
        w, h = max(1, round(f.shape[1] * sx)), max(1, round(f.shape[0] * sy))
        interp = cv2.INTER_AREA if f.shape[1] > w else cv2.INTER_LINEAR
        out = np.full((wh[1], wh[0], 3), LETTERBOX_PAD, np.uint8)
        x0, y0 = int(round(px - 0.1)), int(round(py - 0.1))
        out[y0:y0 + h, x0:x0 + w] = cv2.resize(f, (w, h), interpolation=interp)
        return out

    def detections(self, outs: List[np.ndarray], camera_hw: Tuple[int, int],
                   input_wh: Tuple[int, int]) -> List[Detections]:
        """Per frame of a batch, a detector's outputs -> boxes in camera pixels after NMS."""
        spec, out = self.detector, []
        for i in range(len(outs[0])):
            raw = spec.decode([o[i:i + 1] for o in outs], self.num_classes, input_wh,
                              self.output_names)
            resize = Resize((camera_hw[1], camera_hw[0]), input_wh, spec.resize)
            out.append(postprocess(raw, resize, spec.score_threshold, spec.iou_threshold,
                                   spec.max_det, self.classes))
        return out

    def _foreground(self, plane: np.ndarray) -> np.ndarray:
        """Foreground probability of a binary output's single channel."""
        plane = plane.astype(np.float32, copy=False)
        if self.binary_score == 'logit':
            return 0.5 * (1.0 + np.tanh(0.5 * plane))     # the sigmoid, without overflow
        return plane

    def confidence(self, out: np.ndarray, item: int = 0) -> float:
        """Mean max-class probability of one item of a raw exit output (1 for labels)."""
        if self.output_kind == 'labels':
            return 1.0
        s = out[item] if self.output_layout == 'NCHW' else out[item].transpose(2, 0, 1)
        s = s.astype(np.float32, copy=False)
        if self.output_kind == 'binary':
            fg = self._foreground(s[0])
            return float(np.maximum(fg, 1.0 - fg).mean())
        if self.output_kind == 'logits':
            e = np.exp(s - s.max(0, keepdims=True))
            s = e / e.sum(0, keepdims=True)
        return float(s.max(0).mean())

    def postprocess(self, out: np.ndarray, out_hw: Tuple[int, int],
                    work_hw: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(labels uint8 [N,H,W] at out_hw, confidence [N]) from one exit's raw output.

        Scores are upsampled bilinearly to ``work_hw`` (the point's input size; cheap points
        stay cheap), argmax'ed, then labels are resized (nearest) to ``out_hw``. Confidence is
        the mean max-class probability (1 for label outputs).
        """
        h, w = work_hw or out_hw
        if self.output_kind == 'labels':
            lab = out if out.ndim == 3 else out[:, 0]
            labels = np.stack([cv2.resize(x.astype(np.uint8), (out_hw[1], out_hw[0]),
                                          interpolation=cv2.INTER_NEAREST) for x in lab])
            return labels, np.ones(len(labels), np.float32)
        if out.ndim != 4:
            raise ModelError(f'{self.name}: expected a 4-D {self.output_layout} output, '
                             f'got shape {out.shape}')
        # class planes [N, C, h, w]: resizing plane by plane and a running maximum is twice as
        # fast as resizing an HxWxC map and argmax over its short last axis (same labels)
        planes = out if self.output_layout == 'NCHW' else out.transpose(0, 3, 1, 2)
        if self.output_kind == 'binary':
            return self._binary_labels(planes, out, out_hw, (h, w))
        if planes.shape[1] != self.num_classes:
            raise ModelError(f'{self.name}: output has {planes.shape[1]} channels, '
                             f'model.yaml lists {self.num_classes} classes')
        labels, confs = [], []
        for i, s in enumerate(planes):
            s = s.astype(np.float32, copy=False)
            confs.append(self.confidence(out, i))
            best, lab = None, np.zeros((h, w), np.uint8)
            for c, plane in enumerate(s):
                up = cv2.resize(np.ascontiguousarray(plane), (w, h),
                                interpolation=cv2.INTER_LINEAR) \
                    if plane.shape != (h, w) else plane
                if best is None:
                    best = up.copy()
                    continue
                lab[up > best] = c      # strict: ties keep the lower class, as argmax does
                np.maximum(best, up, out=best)
            if lab.shape != tuple(out_hw):
                lab = cv2.resize(lab, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_NEAREST)
            labels.append(lab)
        return np.stack(labels), np.asarray(confs, np.float32)

    def _binary_labels(self, planes: np.ndarray, out: np.ndarray, out_hw: Tuple[int, int],
                       work_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
        if planes.shape[1] != 1:
            raise ModelError(f'{self.name}: output kind binary needs one channel, the output '
                             f'has {planes.shape[1]}')
        labels, confs = [], []
        for i, s in enumerate(planes):
            fg = self._foreground(s[0])
            if fg.shape != tuple(work_hw):
                fg = cv2.resize(np.ascontiguousarray(fg), (work_hw[1], work_hw[0]),
                                interpolation=cv2.INTER_LINEAR)
            lab = (fg > self.threshold).astype(np.uint8)
            if lab.shape != tuple(out_hw):
                lab = cv2.resize(lab, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_NEAREST)
            labels.append(lab)
            confs.append(self.confidence(out, i))
        return np.stack(labels), np.asarray(confs, np.float32)


def _req(d: dict, key: str, path: Path, kind: type = object):
    if key not in d:
        raise ModelError(f'{path}: missing required key {key!r}')
    v = d[key]
    if not isinstance(v, kind) or (kind is list and not v):
        want = {dict: 'a mapping', list: 'a non-empty list'}.get(kind, kind.__name__)
        raise ModelError(f'{path}: {key} must be {want}, got {v!r}')
    return v


def _number(v, what: str, path: Path, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) \
            or (positive and v <= 0):
        raise ModelError(f'{path}: {what} must be a finite{" positive" if positive else ""} '
                         f'number, got {v!r}')
    return float(v)


def _triple(v, what: str, path: Path, positive: bool = False) -> np.ndarray:
    if not isinstance(v, list) or len(v) != 3:
        raise ModelError(f'{path}: {what} must list 3 numbers (one per channel), got {v!r}')
    return np.asarray([_number(x, what, path, positive) for x in v], np.float32)


def _input_shape(onnx_path: Path, layout: str
                 ) -> Tuple[Optional[int], Optional[Tuple[int, int]]]:
    """(fixed batch, fixed (w, h)) from an ONNX file's first input; None where symbolic."""
    import onnx
    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception as exc:  # onnx raises DecodeError and others for a broken file
        raise ModelError(f'{onnx_path} is not a readable ONNX model: {exc}') from exc
    inputs = {i.name for i in graph.initializer}
    first = next((i for i in graph.input if i.name not in inputs), None)
    if first is None:
        raise ModelError(f'{onnx_path} has no graph input')
    dims = [d.dim_value if d.HasField('dim_value') else None
            for d in first.type.tensor_type.shape.dim]
    if len(dims) != 4:
        return None, None
    h, w = (dims[2], dims[3]) if layout == 'NCHW' else (dims[1], dims[2])
    return dims[0], ((w, h) if w and h else None)


def _inside(p: Path, name: str, field: str) -> Path:
    """``name`` in the directory of the model description ``p``; a :class:`ModelError` when
    it would resolve outside it (an absolute path, ``..``, a link that leads out)."""
    root = p.parent.resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        raise ModelError(f'{p}: {field} entry {name!r} is outside the model directory {root}; '
                         f'put the file beside model.yaml')
    return p.parent / name


def safe_name(name: str) -> str:
    """A model name usable as part of a file name: letters, digits, '.', '_' and '-' only."""
    clean = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.')
    return clean or 'model'


def load_model_description(path: Union[str, Path]) -> ModelDescription:
    """Parse and validate ``model.yaml`` (or a directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / 'model.yaml'
    if not p.is_file():
        raise ModelError(f'model description {p} does not exist')
    try:
        d = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f'{p}: not valid YAML: {exc}') from exc
    if not isinstance(d, dict):
        raise ModelError(f'{p}: expected a mapping at top level')
    task = d.get('task', 'segmentation')
    if task not in TASKS:
        raise ModelError(f'{p}: task must be one of {TASKS}, got {task!r}')
    inp = _req(d, 'input', p, dict)
    out = _req(d, 'output', p, dict) if task == 'segmentation' else {}
    layout, order, kind, out_layout, structure = _choices(d, inp, out, p)
    stages = _stages(d, p)
    classes = _classes(d, kind if task == 'segmentation' else 'boxes', p)
    detector, names = _detector(d, task, structure, stages, len(classes), p)
    score = str(out.get('score', 'logit'))
    if score not in BINARY_SCORES:
        raise ModelError(f'{p}: output.score must be one of {BINARY_SCORES}, got {score}')
    threshold = _number(out.get('threshold', 0.5), 'output.threshold', p)
    if not 0.0 < threshold < 1.0:
        raise ModelError(f'{p}: output.threshold must be a probability in (0, 1), got '
                         f'{threshold}')
    torch_w, torch_cls = _torch_form(d, p)
    multiple = inp.get('multiple_of', 1)
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ModelError(f'{p}: input.multiple_of must be a positive integer, got {multiple!r}')
    fixed_batch, fixed_size = _input_shape(stages['fp32'][0], layout)
    if fixed_size is None and detector is not None and detector.anchors is not None:
        fixed_size = tuple(detector.anchors.input_wh)   # SSD anchors fit one input size
    return ModelDescription(
        root=p.parent, name=str(d.get('name', p.parent.name)), classes=classes,
        structure=structure, layout=layout, channel_order=order,
        scale=_number(inp.get('scale', 1.0), 'input.scale', p, positive=True),
        mean=_triple(inp.get('mean', [0.0, 0.0, 0.0]), 'input.mean', p),
        std=_triple(inp.get('std', [1.0, 1.0, 1.0]), 'input.std', p, positive=True),
        multiple_of=multiple, output_kind=kind, output_layout=out_layout, stages=stages,
        torch_weights=_inside(p, torch_w, 'torch.weights') if torch_w else None,
        torch_class=torch_cls if torch_w else None,
        binary_score=score, threshold=threshold, fixed_batch=fixed_batch or None,
        fixed_size=fixed_size, task=task, detector=detector, output_names=names)


def _detector(d: dict, task: str, structure: str, stages: Dict[str, List[Path]],
              num_classes: int, p: Path) -> Tuple[Optional[DetectorSpec], Tuple[str, ...]]:
    """A detector's ``detection:`` section, checked against every stage file's outputs."""
    if task != 'detection':
        return None, ()
    if structure != 'ladder':
        raise ModelError(f'{p}: a detector\'s depths are a ladder of models (structure: '
                         f'ladder), each a whole detector on the image; got {structure}')
    try:
        spec = parse_detector(d.get('detection', {}))
        sigs = [output_signature(f) for f in stages['fp32']]
        for f, (names, shapes) in zip(stages['fp32'], sigs):
            try:
                spec.check_outputs(names, shapes, num_classes)
            except DetectionError as exc:
                raise DetectionError(f'{f.name}: {exc}') from None
    except DetectionError as exc:
        raise ModelError(f'{p}: {exc}') from None
    names = {tuple(n) for n, _ in sigs}
    if len(names) > 1:
        raise ModelError(f'{p}: the ladder\'s models name their outputs differently: '
                         f'{sorted(names)}')
    return spec, sigs[0][0]


def _choices(d: dict, inp: dict, out: dict, p: Path):
    """The input layout and channel order, the output kind and layout, the structure."""
    layout = str(inp.get('layout', 'NCHW')).upper()
    if layout not in LAYOUTS:
        raise ModelError(f'{p}: input.layout must be one of {LAYOUTS}, got {layout}')
    order = str(inp.get('channel_order', 'RGB')).upper()
    if order not in ('RGB', 'BGR'):
        raise ModelError(f'{p}: input.channel_order must be RGB or BGR, got {order}')
    kind = str(out.get('kind', 'logits'))
    if kind not in OUTPUT_KINDS:
        raise ModelError(f'{p}: output.kind must be one of {OUTPUT_KINDS}, got {kind}')
    out_layout = str(out.get('layout', 'NCHW')).upper()
    if out_layout not in LAYOUTS:
        raise ModelError(f'{p}: output.layout must be one of {LAYOUTS}, got {out_layout}')
    structure = str(d.get('structure', 'ladder' if d.get('task') == 'detection' else
                          'chained'))
    if structure not in STRUCTURES:
        raise ModelError(f'{p}: structure must be one of {STRUCTURES}, got {structure}')
    return layout, order, kind, out_layout, structure


def _stages(d: dict, p: Path) -> Dict[str, List[Path]]:
    """Per precision its stage files, each inside the model's directory and present, as
    many as fp32 has."""
    stages_raw = _req(d, 'stages', p, dict)
    if not isinstance(stages_raw.get('fp32'), list) or not stages_raw['fp32']:
        raise ModelError(f'{p}: stages.fp32 must list at least one ONNX file')
    stages: Dict[str, List[Path]] = {}
    for prec, files in stages_raw.items():
        if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
            raise ModelError(f'{p}: stages.{prec} must be a list of file names, got {files!r}')
        paths = [_inside(p, f, f'stages.{prec}') for f in files]
        missing = [str(x) for x in paths if not x.is_file()]
        if missing:
            raise ModelError(f'{p}: stage files missing for {prec}: {missing}')
        if len(paths) != len(stages_raw['fp32']):
            raise ModelError(f'{p}: stages.{prec} has {len(paths)} files, fp32 has '
                             f'{len(stages_raw["fp32"])}')
        stages[str(prec)] = paths
    return stages


def _classes(d: dict, kind: str, p: Path) -> List[str]:
    """The class names, as many as the output kind can tell apart."""
    classes = [str(c) for c in _req(d, 'classes', p, list)]
    if kind == 'binary' and len(classes) != 2:
        raise ModelError(f'{p}: output kind binary (one foreground channel) needs exactly two '
                         f'classes, [background, <foreground>]; got {classes}')
    if kind in ('logits', 'probabilities') and len(classes) < 2:
        fg = classes[0] if classes else 'foreground'
        raise ModelError(f'{p}: output kind {kind} with {len(classes)} class cannot be '
                         f'argmax-ed (every pixel would be class 0); a one-channel model needs '
                         f'output kind binary and classes [background, {fg}]')
    return classes


def _torch_form(d: dict, p: Path):
    """The optional torch form: weights file and the module class they fit."""
    torch_cfg = d.get('torch') or {}
    if not isinstance(torch_cfg, dict):
        raise ModelError(f'{p}: torch must be a mapping, got {torch_cfg!r}')
    torch_w = torch_cfg.get('weights')
    if torch_w is not None and not isinstance(torch_w, str):
        raise ModelError(f'{p}: torch.weights must be a file name, got {torch_w!r}')
    torch_cls = torch_cfg.get('class')
    if torch_w and not (isinstance(torch_cls, str) and
                        re.fullmatch(r'[A-Za-z_]\w*(\.[A-Za-z_]\w*)+', torch_cls)):
        raise ModelError(f'{p}: torch.class must name the module class the weights fit, as '
                         f'package.module.Class; got {torch_cls!r}')
    return torch_w, torch_cls
