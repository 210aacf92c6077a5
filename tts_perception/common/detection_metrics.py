"""Detection accuracy by the COCO definitions, on frames of boxes (numpy only).

Input: per frame the detections (boxes x1, y1, x2, y2, scores, class ids) and the reference
boxes and class ids. Output (:class:`APResult`): AP at IoU 0.5 (AP50) and mAP@[.5:.95], each
the mean over the classes that have a reference box, their per-class values, and each class's
recall at IoU 0.5 (the class floor's measure). As COCOeval: per frame and class at most
``max_det`` detections by score; each detection, best score first, matches the unmatched
reference of its class with the highest IoU at or above the threshold; precision made
monotone, read at the 101 recall points 0, 0.01, ..., 1. Crowd regions and area ranges are
not modelled. :func:`frame_counts` keeps one frame's AP50 evidence in a fixed-shape array that
sums over frames, as calibration sums confusion matrices. Why: ``doc/detection.md``.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.common.metrics import shown_at

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class FrameBoxes:
    """One frame's boxes [N, 4] (x1, y1, x2, y2), class ids [N] and, for detections, scores."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.classes = np.asarray(self.classes, np.int64).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, np.float64).reshape(-1)


@dataclass
class APResult:
    """AP50 and mAP@[.5:.95] (None: no class has a reference box), per class (None for a
    class without one) and each class's recall at IoU 0.5."""

    ap50: Optional[float]
    map: Optional[float]
    per_class_ap50: List[Optional[float]] = field(default_factory=list)
    per_class_map: List[Optional[float]] = field(default_factory=list)
    per_class_recall: List[Optional[float]] = field(default_factory=list)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0.0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match(det: FrameBoxes, ref: FrameBoxes, cls: int, max_det: int
           ) -> Tuple[np.ndarray, np.ndarray, int]:
    """One frame, one class: the scores of its detections (best first, at most ``max_det``),
    whether each is a true positive at every IoU threshold [T, D], and its reference count."""
    d = np.flatnonzero(det.classes == cls)
    d = d[np.argsort(-det.scores[d], kind='mergesort')][:max_det]
    g = np.flatnonzero(ref.classes == cls)
    tp = np.zeros((len(IOU_THRESHOLDS), len(d)), bool)
    if len(d) and len(g):
        ious = iou_matrix(det.boxes[d], ref.boxes[g])
        for t, thr in enumerate(IOU_THRESHOLDS):
            taken = np.zeros(len(g), bool)
            for i in range(len(d)):
                cand = np.where(taken, -1.0, ious[i])
                j = int(np.argmax(cand))
                if cand[j] >= min(thr, 1 - 1e-10):
                    taken[j] = tp[t, i] = True
    return det.scores[d], tp, len(g)


def _ap(scores: np.ndarray, tp: np.ndarray, n_ref: int) -> np.ndarray:
    """Per IoU threshold, the area under the interpolated precision-recall curve at the
    101 recall points; and the recall reached (last row) -> ([T], [T])."""
    order = np.argsort(-scores, kind='mergesort')
    tp = tp[:, order]
    tps, fps = np.cumsum(tp, 1), np.cumsum(~tp, 1)
    ap, reached = np.zeros(len(tp)), np.zeros(len(tp))
    for t in range(len(tp)):
        ap[t], reached[t] = _interpolated(tps[t], fps[t], n_ref)
    return ap, reached


def _interpolated(tps: np.ndarray, fps: np.ndarray, n_ref: int) -> Tuple[float, float]:
    """(AP, recall reached) of a precision-recall curve given as cumulative true and false
    positives, best score first: precision made monotone, read at the 101 recall points."""
    if not len(tps):
        return 0.0, 0.0
    rc = tps / n_ref
    pr = np.maximum.accumulate((tps / np.maximum(tps + fps, np.finfo(float).eps))[::-1])[::-1]
    idx = np.searchsorted(rc, RECALL_POINTS, side='left')
    return float(np.where(idx < len(pr), pr[np.minimum(idx, len(pr) - 1)], 0.0).mean()), \
        float(rc[-1])


SCORE_BINS = 100


def frame_counts(det: FrameBoxes, ref: FrameBoxes, num_classes: int, max_det: int = 100,
                 bins: int = SCORE_BINS) -> np.ndarray:
    """One frame's AP50 accumulator [classes, 2 x bins + 1]: per class the histograms over
    score bins (scores in [0, 1]) of true (IoU >= 0.5) and false detections, then the number
    of reference boxes. Frames' accumulators add up, like confusion matrices, and
    :func:`ap50_of_counts` reads AP50 from any sum of them (to within the bins' width)."""
    out = np.zeros((num_classes, 2 * bins + 1), np.int64)
    for c in range(num_classes):
        scores, tp, n_ref = _match(det, ref, c, max_det)
        b = np.clip((scores * bins).astype(np.int64), 0, bins - 1)
        out[c, :bins] = np.bincount(b[tp[0]], minlength=bins)
        out[c, bins:2 * bins] = np.bincount(b[~tp[0]], minlength=bins)
        out[c, -1] = n_ref
    return out


def ap50_of_counts(counts: np.ndarray) -> APResult:
    """AP50 (mean over the classes with a reference box), per-class AP50 and recall from a
    sum of :func:`frame_counts` ([classes, 2 x bins + 1]); mAP is not kept (None)."""
    bins = (counts.shape[1] - 1) // 2
    per, recall = [], []
    for row in np.asarray(counts):
        if row[-1] == 0:
            per.append(None), recall.append(None)
            continue
        tp, fp = row[:bins][::-1], row[bins:2 * bins][::-1]        # best scores first
        seen = (tp + fp) > 0
        ap, reached = _interpolated(np.cumsum(tp)[seen], np.cumsum(fp)[seen], int(row[-1]))
        per.append(ap), recall.append(reached)
    have = [v for v in per if v is not None]
    return APResult(float(np.mean(have)) if have else None, None, per, [None] * len(per),
                    recall)


def average_precision(dets: Sequence[FrameBoxes], refs: Sequence[FrameBoxes],
                      num_classes: int, max_det: int = 100) -> APResult:
    """COCO AP of ``dets`` against ``refs``, frame by frame (see the module)."""
    if len(dets) != len(refs):
        raise ValueError(f'{len(dets)} frames of detections, {len(refs)} of references')
    per50: List[Optional[float]] = []
    permap: List[Optional[float]] = []
    recall: List[Optional[float]] = []
    for c in range(num_classes):
        parts = [_match(d, r, c, max_det) for d, r in zip(dets, refs)]
        n_ref = sum(p[2] for p in parts)
        if n_ref == 0:
            per50.append(None), permap.append(None), recall.append(None)
            continue
        scores = np.concatenate([p[0] for p in parts])
        tp = np.concatenate([p[1] for p in parts], 1)
        ap, reached = _ap(scores, tp, n_ref)
        per50.append(float(ap[0]))
        permap.append(float(ap.mean()))
        recall.append(float(reached[0]))
    have = [v for v in per50 if v is not None]
    return APResult(float(np.mean(have)) if have else None,
                    float(np.mean([v for v in permap if v is not None])) if have else None,
                    per50, permap, recall)


def frame_ap(det: FrameBoxes, ref: FrameBoxes, num_classes: int) -> Dict[str, Optional[float]]:
    """One frame's AP50 and mAP (None where the frame has no reference box)."""
    r = average_precision([det], [ref], num_classes)
    return {'ap50': r.ap50, 'map': r.map}


def streaming_ap(outputs: Sequence[Tuple[float, FrameBoxes]], arrivals_ms: Sequence[float],
                 refs: Sequence[FrameBoxes], num_classes: int) -> APResult:
    """Streaming AP (Li, Wang, Ramanan, ECCV 2020): at every camera frame's arrival the
    newest detections finished by then (``outputs``: (finished ms, detections) in finishing
    order; none yet: an empty set) scored against that frame's reference, so latency costs
    accuracy."""
    if len(arrivals_ms) != len(refs):
        raise ValueError(f'{len(arrivals_ms)} arrivals, {len(refs)} references')
    empty = FrameBoxes(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))
    shown = [d if d is not None else empty for d in shown_at(outputs, arrivals_ms)]
    return average_precision(shown, refs, num_classes)
