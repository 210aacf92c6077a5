"""Frames to calibrate or evaluate on: images in recorded order with their stamps, sequence
ids and, where labelled, class ids. Read from bags by :mod:`tts_perception.bag.recordings`;
calibration and evaluation take them. See ``doc/calibration.md``."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class Frames:
    """Frames to calibrate or evaluate on, in recorded order.

    ``labels``: ground-truth class ids per frame, or None (unlabelled: agreement with the
    golden point); ``boxes``: ground-truth boxes per frame (with ``boxes`` and ``classes``, as
    :class:`~tts_perception.common.detection_metrics.FrameBoxes`), or None; ``seq``:
    sequence id per frame (temporal state restarts where it changes);
    ``arrival_ns``: when each frame was recorded (log time), ``stamps_ns``: its capture stamp.
    """

    rgb: List[np.ndarray]
    stamps_ns: np.ndarray
    labels: Optional[List[np.ndarray]] = None
    seq: Optional[np.ndarray] = None
    arrival_ns: Optional[np.ndarray] = None
    source: Dict[str, Any] = field(default_factory=dict)
    boxes: Optional[List[Any]] = None

    def __post_init__(self) -> None:
        n = len(self.rgb)
        self.stamps_ns = np.asarray(self.stamps_ns, np.int64)
        if self.seq is None:
            self.seq = np.zeros(n, np.int64)
        if self.arrival_ns is None:
            self.arrival_ns = self.stamps_ns.copy()
        if not (len(self.stamps_ns) == len(self.seq) == len(self.arrival_ns) == n) or \
                (self.labels is not None and len(self.labels) != n) or \
                (self.boxes is not None and len(self.boxes) != n):
            raise ValueError('frames, stamps, labels, boxes and sequence ids differ in length')

    def __len__(self) -> int:
        return len(self.rgb)

    def part(self, lo: int, hi: int) -> 'Frames':
        """Frames [lo, hi) as their own set."""
        return Frames(self.rgb[lo:hi], self.stamps_ns[lo:hi],
                      None if self.labels is None else self.labels[lo:hi], self.seq[lo:hi],
                      self.arrival_ns[lo:hi], dict(self.source),
                      None if self.boxes is None else self.boxes[lo:hi])
