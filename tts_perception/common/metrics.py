"""Segmentation metrics (confusion matrix, IoU, mIoU) and the streaming rule every task is
scored by: at each frame's arrival, the newest output finished by then."""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np


class ConfusionMatrix:
    """Accumulates a (num_classes x num_classes) confusion matrix (rows: truth)."""

    def __init__(self, num_classes: int):
        self.n = num_classes
        self.m = np.zeros((num_classes, num_classes), np.int64)

    def add(self, pred: np.ndarray, truth: np.ndarray) -> 'ConfusionMatrix':
        """Add one prediction/ground-truth pair of equal shape."""
        if pred.shape != truth.shape:
            raise ValueError(f'prediction shape {pred.shape} != truth shape {truth.shape}')
        idx = truth.astype(np.int64).ravel() * self.n + pred.astype(np.int64).ravel()
        self.m += np.bincount(idx, minlength=self.n * self.n).reshape(self.n, self.n)
        return self

    def add_matrix(self, m: np.ndarray) -> 'ConfusionMatrix':
        """Add another confusion matrix of the same classes."""
        if np.shape(m) != self.m.shape:
            raise ValueError(f'confusion matrix shape {np.shape(m)} != {self.m.shape}')
        self.m += np.asarray(m, np.int64)
        return self

    def iou(self) -> np.ndarray:
        """Per-class IoU (nan for classes absent from both prediction and truth)."""
        tp = np.diag(self.m).astype(np.float64)
        denom = self.m.sum(0) + self.m.sum(1) - tp
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(denom > 0, tp / denom, np.nan)

    def iou_values(self) -> List[Optional[float]]:
        """Per-class IoU as plain floats, None for classes absent from both (JSON-able)."""
        return [None if not np.isfinite(v) else float(v) for v in self.iou()]

    def miou(self) -> float:
        """Mean IoU over classes present."""
        v = self.iou()
        return float(np.nanmean(v)) if np.isfinite(v).any() else float('nan')


def frame_miou(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> float:
    """mIoU of a single frame."""
    return ConfusionMatrix(num_classes).add(pred, truth).miou()


def shown_at(outputs: Sequence[Tuple[float, Any]], arrivals_ms: Sequence[float]
             ) -> List[Optional[Any]]:
    """Per arrival, the newest output finished by then (``outputs``: (finished ms, output)
    in finishing order); None before the first (Li, Wang, Ramanan, ECCV 2020)."""
    shown, k, latest = [], 0, None
    for arrive in arrivals_ms:
        while k < len(outputs) and outputs[k][0] <= arrive:
            latest = outputs[k][1]
            k += 1
        shown.append(latest)
    return shown
