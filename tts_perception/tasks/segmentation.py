"""Segmentation as a task: label images scored on every 4th pixel by their confusion
matrices (mIoU; per-class IoU), and the ``segments`` difficulty signals read from the
previous label image (obstacle share, boundary share, small-segment score) and the
``change`` signal (the share of labels that changed between two results).
"""

from typing import Any, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tts_perception.common.frames import Frames
from tts_perception.common.scoring import SegmentationScoring
from tts_perception.inference.model_desc import ModelDescription
from tts_perception.tasks.base import Task

SCORE_STEP = 4              # probes and calibrate's accuracy compare every 4th pixel
SMALL_SEGMENT_PX = 256      # a segment of at least this many pixels at the cheapest scale: 0
RESULT_STEP = 8             # result signals are read on every 8th pixel in both directions


def obstacle_class(classes: List[str]) -> int:
    """The label ``prev_obstacle`` counts: the ``obstacle`` class, else -1 (all but class 0)."""
    return classes.index('obstacle') if 'obstacle' in classes else -1


def result_signals(labels: np.ndarray, obstacle_label: int, cheapest_px: int
                   ) -> Tuple[float, float, float]:
    """(obstacle share, boundary share, small-segment score) of one result (HxW class ids).

    The small-segment score is 1 when a segment of a class other than background (class 0)
    would cover under one pixel at the cheapest resolution (``cheapest_px`` pixels in all),
    0 when every segment covers at least :data:`SMALL_SEGMENT_PX` there or none is shown.
    """
    sub = np.ascontiguousarray(labels[::RESULT_STEP, ::RESULT_STEP])
    if sub.size == 0:
        return 0.0, 0.0, 0.0
    hit = (sub == obstacle_label) if obstacle_label >= 0 else (sub != 0)
    boundary = 0.5 * (float((sub[:, 1:] != sub[:, :-1]).mean()) if sub.shape[1] > 1 else 0.0) \
        + 0.5 * (float((sub[1:] != sub[:-1]).mean()) if sub.shape[0] > 1 else 0.0)
    smallest = None
    for c in np.unique(sub):
        if c == 0:
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats((sub == c).astype(np.uint8), 4)
        if n > 1:
            a = int(stats[1:, cv2.CC_STAT_AREA].min())
            smallest = a if smallest is None else min(smallest, a)
    small = 0.0
    if smallest is not None:
        px = smallest / sub.size * max(1, cheapest_px)
        small = float(np.clip(1.0 - np.log1p(px) / np.log1p(SMALL_SEGMENT_PX), 0.0, 1.0))
    return float(hit.mean()), boundary, small


def scored_labels(labels: np.ndarray) -> np.ndarray:
    """A label image in the form it is scored and kept in: every :data:`SCORE_STEP`-th pixel."""
    return labels[::SCORE_STEP, ::SCORE_STEP].copy()


def label_change(previous: np.ndarray, current: np.ndarray) -> float:
    """The share of pixels whose label differs between two scored label images (NaN where
    their sizes differ: a camera that changed size is not a changed scene)."""
    if previous.shape != current.shape or not current.size:
        return float('nan')
    return float(np.count_nonzero(previous != current)) / current.size


class SegmentationTask(Task):
    """A label image per frame (HxW class ids at the camera's size)."""

    name, staged = 'segmentation', True

    def __init__(self, model: ModelDescription):
        super().__init__(model)
        self.scoring = SegmentationScoring(model.num_classes)
        self.obstacle_label = obstacle_class(list(model.classes))

    def references(self, frames: Frames) -> Optional[List[np.ndarray]]:
        """The frames' label images, where they have them."""
        return None if frames.labels is None else [self.scored(x) for x in frames.labels]

    def scored(self, output: np.ndarray) -> np.ndarray:
        return scored_labels(output)

    def nothing(self, reference: np.ndarray) -> np.ndarray:
        return np.zeros_like(reference)

    def expand(self, scored: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(scored, SCORE_STEP, 0), SCORE_STEP, 1)

    def result_signals(self, output: Any, cheapest_px: int, camera_hw: Tuple[int, int]
                       ) -> Tuple[float, float, float]:
        """(obstacle share, boundary share, small-segment score): :func:`result_signals`."""
        return result_signals(output, self.obstacle_label, cheapest_px)

    def change(self, previous: np.ndarray, current: np.ndarray) -> float:
        """:func:`label_change`."""
        return label_change(previous, current)

    def agreement(self, pred: Sequence[np.ndarray], ref: Sequence[np.ndarray]) -> float:
        """The mean share of equal labels."""
        return float(np.mean([np.mean(x == y) for x, y in zip(pred, ref)]))
