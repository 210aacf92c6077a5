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
