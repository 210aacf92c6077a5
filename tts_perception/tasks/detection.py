"""Detection as a task: boxes per frame, scored by their AP50 evidence (per-class score
histograms of true and false detections; per-class recall as the class floor), and the
``segments`` group's three difficulty signals read from the previous frame's boxes, the
signals LiteReconfig and Chanakya found to pay: how many objects, how near the threshold the
least certain scores, how small the smallest object is at the cheapest resolution; and the
``change`` signal, how much the boxes moved or changed between two results. Why:
``doc/detection.md``.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.common.detection_metrics import average_precision, FrameBoxes
from tts_perception.common.frames import Frames
from tts_perception.common.scoring import DetectionScoring
from tts_perception.inference.detection import Detections
from tts_perception.inference.model_desc import ModelDescription
from tts_perception.tasks.base import Task
from tts_perception.tasks.detection_signals import change, score_margin, smallest_side

SMALL_OBJECT_PX = 32    # a smallest side of at least this many pixels at the cheapest scale: 0


class DetectionTask(Task):
    """A :class:`~tts_perception.inference.detection.Detections` per frame (camera pixels).
    A ladder's depths are whole detectors, so an anytime run does not stop between them."""

    name, staged = 'detection', False
    # int8 convolutions only: quantizing the decoding tail puts box pixels and scores into
    # one uint8 range (the bundled detector: AP50 0.39 -> 0.03)
    quantized_ops = ('Conv',)
    exact_names = ('ap50', 'map')

    def __init__(self, model: ModelDescription):
        super().__init__(model)
        self.threshold = model.detector.score_threshold
        self.scoring = DetectionScoring(model.num_classes, model.detector.max_det)

    def references(self, frames: Frames) -> Optional[List[FrameBoxes]]:
        """The frames' ground-truth boxes, where they have them."""
        return frames.boxes

    def scored(self, output: Detections) -> Detections:
        return output

    def nothing(self, reference: FrameBoxes) -> Detections:
        return Detections.empty()

    def expand(self, scored: Detections) -> Detections:
        return scored

    def result_signals(self, output: Detections, cheapest_px: int,
                       camera_hw: Tuple[int, int]) -> Tuple[float, float, float]:
        """(object count, 1 - the least certain score's margin to the threshold, small-object
        score: 1 for a smallest side under one pixel at the cheapest point, 0 from
        :data:`SMALL_OBJECT_PX`), in the ``segments`` group's three slots."""
        h, w = camera_hw
        s = math.sqrt(max(1, cheapest_px) / max(1, w * h))
        side = smallest_side(output, (w, h), (max(1, round(w * s)), max(1, round(h * s))))
        small = float(np.clip(1.0 - np.log1p(side) / np.log1p(SMALL_OBJECT_PX), 0.0, 1.0))
        return float(len(output)), 1.0 - score_margin(output, self.threshold), small

    def change(self, previous: Detections, current: Detections) -> float:
        """:func:`~tts_perception.tasks.detection_signals.change`: 1 - the mean best IoU of
        each box with the other result's boxes of its class."""
        return change(previous, current)

    def exact_figures(self, outputs: Sequence[Detections], refs: Sequence[FrameBoxes]
                      ) -> Dict[str, Optional[float]]:
        """COCO AP50 and mAP@[.5:.95] (exact, not from the score histograms)."""
        r = average_precision(outputs, refs, self.model.num_classes,
                              self.model.detector.max_det)
        return {'ap50': r.ap50, 'map': r.map}

    def agreement(self, pred: Sequence[Detections], ref: Sequence[Detections]) -> float:
        """AP50 of the outputs against fp32's boxes (1 where neither has a box)."""
        ev = sum(self.scoring.evidence(p, r) for p, r in zip(pred, ref))
        v = self.scoring.value(ev)
        return 1.0 if not np.isfinite(v) else v
