"""How a task's outputs are scored, as one algebra for every task: a frame's *evidence* (a
fixed-shape integer array) against a reference, evidence that adds up over frames, and the
accuracy and per-class measure read from any sum of it.

Segmentation: evidence is the confusion matrix, accuracy its mIoU, per class the IoU.
Detection: evidence is :func:`~tts_perception.common.detection_metrics.frame_counts` (per
class score histograms of true and false detections and the reference count), accuracy
AP50, per class the recall at IoU 0.5 (the class floor's measure). Calibration, the oracle
and the scheduler's price only sum evidence and read values, so they hold no task branch.
Why: ``doc/detection.md``.
"""

from typing import Any, List, Optional, Protocol

import numpy as np

from tts_perception.common.detection_metrics import ap50_of_counts, frame_counts
from tts_perception.common.metrics import ConfusionMatrix


class Scoring(Protocol):
    """A task's scores: ``metric`` names the accuracy, ``per_class_metric`` the class floor's
    measure."""

    metric: str
    per_class_metric: str

    def evidence(self, pred: Any, ref: Any) -> np.ndarray:
        """One frame's evidence of ``pred`` against ``ref`` (adds up over frames)."""

    def value(self, evidence: np.ndarray) -> float:
        """The accuracy of a sum of evidence; nan where there is nothing to score."""

    def per_class(self, evidence: np.ndarray) -> List[Optional[float]]:
        """Per class the class floor's measure of a sum of evidence (None: class absent)."""

    def frame_values(self, evidence: np.ndarray) -> np.ndarray:
        """[points, frames] each frame's own accuracy from evidence [points, frames, ...]."""

    def contributions(self, evidence: np.ndarray) -> np.ndarray:
        """[points, frames] what each frame's output adds to the point's accuracy over the
        frames, to first order (the oracle's second per-frame measure)."""


def confusion_miou(evidence: np.ndarray) -> float:
    """mIoU of a confusion matrix (nan: no class in prediction or truth)."""
    return ConfusionMatrix(len(evidence)).add_matrix(evidence).miou()


class SegmentationScoring:
    """Confusion matrices; mIoU; per-class IoU."""

    metric, per_class_metric = 'mIoU', 'IoU'

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def evidence(self, pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return ConfusionMatrix(self.num_classes).add(pred, ref).m

    def value(self, evidence: np.ndarray) -> float:
        return confusion_miou(evidence)

    def per_class(self, evidence: np.ndarray) -> List[Optional[float]]:
        return ConfusionMatrix(self.num_classes).add_matrix(evidence).iou_values()

    def frame_values(self, evidence: np.ndarray) -> np.ndarray:
        """Per-frame mIoU over the classes present in the frame's output or truth (0 where
        none is)."""
        c = np.asarray(evidence, np.float64)
        tp = np.diagonal(c, axis1=-2, axis2=-1)
        union = c.sum(axis=-1) + c.sum(axis=-2) - tp
        present = union > 0
        iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
        return iou.sum(axis=-1) / np.maximum(1, present.sum(axis=-1))

    def contributions(self, evidence: np.ndarray) -> np.ndarray:
        return confusion_contribution(evidence)


def confusion_contribution(confusion: np.ndarray, reference: Optional[int] = None
                           ) -> np.ndarray:
    """Per point and frame, what the frame's output adds to the point's mIoU over the frames
    (the score every policy is judged by: the mIoU of the summed confusion matrices), to first
    order about the class totals of the ``reference`` point's outputs (default: the point with
    the best mIoU over the frames): the mean over the classes the reference has of
    (true positives - IoU x union) / union total, times the number of frames, so that a
    point's mean over the frames is, to first order, its mIoU less the reference's.
    ``confusion`` [points, frames, C, C] -> [points, frames].

    A frame's own mIoU weighs a class it shows by the frame's pixels of it alone: a few wrong
    pixels of a class that is rare on that frame cost as much as half of a large one, while
    over the recording they cost next to nothing; the per-frame choices that add up to the
    best mIoU of the recording follow this instead."""
    c = np.asarray(confusion, np.float64)
    totals = c.sum(1)
    if reference is None:
        reference = int(np.argmax([confusion_miou(t) for t in totals]))
    ref = totals[reference]
    tp_ref = np.diag(ref)
    union = ref.sum(0) + ref.sum(1) - tp_ref
    present = union > 0
    if not present.any():
        return np.zeros(c.shape[:2])
    iou = tp_ref[present] / union[present]
    tp = np.diagonal(c, axis1=2, axis2=3)[..., present]
    u = c.sum(3)[..., present] + c.sum(2)[..., present] - tp
    return ((tp - iou * u) / union[present]).sum(-1) / present.sum() * c.shape[1]


class DetectionScoring:
    """Per-class score histograms of true and false detections; AP50; per-class recall."""

    metric, per_class_metric = 'AP50', 'recall'

    def __init__(self, num_classes: int, max_det: int = 100):
        self.num_classes, self.max_det = num_classes, max_det

    def evidence(self, pred: Any, ref: Any) -> np.ndarray:
        return frame_counts(pred, ref, self.num_classes, self.max_det)

    def value(self, evidence: np.ndarray) -> float:
        ap = ap50_of_counts(evidence).ap50
        return float('nan') if ap is None else float(ap)

    def per_class(self, evidence: np.ndarray) -> List[Optional[float]]:
        return ap50_of_counts(evidence).per_class_recall

    def frame_values(self, evidence: np.ndarray) -> np.ndarray:
        """Per-frame AP50; a frame without a reference box scores 1 without a detection and
        0 with one (every detection there is false)."""
        ev = np.asarray(evidence)
        out = np.zeros(ev.shape[:2])
        for i, j in np.ndindex(*ev.shape[:2]):
            v = self.value(ev[i, j])
            out[i, j] = v if np.isfinite(v) else float(ev[i, j, :, :-1].sum() == 0)
        return out

    def contributions(self, evidence: np.ndarray) -> np.ndarray:
        """The change of AP50 over the frames when the frame's evidence in the most accurate
        point's total is swapped for this point's, times the number of frames (so a point's
        mean is about its AP50 less the reference's)."""
        ev = np.asarray(evidence)
        totals = ev.sum(1)
        ref = int(np.nanargmax([_finite(self.value(t)) for t in totals]))
        base = _finite(self.value(totals[ref]))
        out = np.zeros(ev.shape[:2])
        for f in range(ev.shape[1]):
            rest = totals[ref] - ev[ref, f]
            for p in range(ev.shape[0]):
                out[p, f] = _finite(self.value(rest + ev[p, f])) - base
        return out * ev.shape[1]


def _finite(v: float) -> float:
    return v if np.isfinite(v) else 0.0
