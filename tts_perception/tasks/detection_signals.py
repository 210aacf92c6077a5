"""Difficulty signals from a detector's previous output, the kind LiteReconfig and Chanakya
found to pay: how many objects, how small the smallest would be at the cheapest resolution,
how close the scores sit to the threshold, and how much the detections changed.

Input: the previous frame's and the current frame's :class:`~tts_perception.inference.
detection.Detections` (camera pixels), the camera size, the cheapest operating point's input
size and the score threshold. Output: :func:`detection_features`, one row of
:data:`DETECTION_FEATURES`, every value finite. The detection task reads three of them
into the monitor's ``segments`` slots and ``change`` into its ``change`` slot
(:mod:`~tts_perception.tasks.detection`); see
doc/detection.md.
"""

from typing import Optional, Tuple

import numpy as np

from tts_perception.common.detection_metrics import iou_matrix
from tts_perception.inference.detection import Detections

DETECTION_FEATURES = ('object_count', 'smallest_side_px', 'score_margin', 'change')
NO_OBJECT_SIDE_PX = 1e4      # the smallest side where there is no object: nothing to lose


def smallest_side(d: Detections, camera_wh: Tuple[int, int], cheapest_wh: Tuple[int, int]
                  ) -> float:
    """The shorter side of the smallest box, in pixels of the cheapest input: what a lower
    resolution loses first."""
    if not len(d):
        return NO_OBJECT_SIDE_PX
    sx, sy = cheapest_wh[0] / camera_wh[0], cheapest_wh[1] / camera_wh[1]
    w = (d.boxes[:, 2] - d.boxes[:, 0]) * sx
    h = (d.boxes[:, 3] - d.boxes[:, 1]) * sy
    return float(np.minimum(w, h).min())


def score_margin(d: Detections, threshold: float) -> float:
    """How near the threshold the least certain detection scores (0: on it; 1: no box)."""
    return float(np.abs(d.scores - threshold).min()) if len(d) else 1.0


def change(prev: Optional[Detections], cur: Detections) -> float:
    """1 - the mean best IoU of each box with the other frame's boxes of its class, over
    both frames' boxes (0: the same boxes; 1: nothing in common or no previous frame)."""
    if prev is None:
        return 1.0
    if not len(prev) and not len(cur):
        return 0.0
    if not len(prev) or not len(cur):
        return 1.0
    iou = iou_matrix(prev.boxes, cur.boxes) * (prev.classes[:, None] == cur.classes[None, :])
    return float(1.0 - np.concatenate([iou.max(1), iou.max(0)]).mean())


def detection_features(prev: Optional[Detections], cur: Detections,
                       camera_wh: Tuple[int, int], cheapest_wh: Tuple[int, int],
                       threshold: float) -> np.ndarray:
    """One row of :data:`DETECTION_FEATURES` for the current frame's detections."""
    return np.array([float(len(cur)), smallest_side(cur, camera_wh, cheapest_wh),
                     score_margin(cur, threshold), change(prev, cur)], np.float64)
