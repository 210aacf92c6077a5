"""The task interface: run a point, keep its output in the form it is scored in, score it
(:class:`~tts_perception.common.scoring.Scoring`), and read the difficulty signals the next
frame's choice uses from it. Outputs are whatever the task makes (a label image, a
:class:`~tts_perception.inference.detection.Detections`); callers hand them back unread.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.common.frames import Frames
from tts_perception.common.scoring import Scoring
from tts_perception.inference.model_desc import ModelDescription
from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer


class Task:
    """One task of one model. Subclasses set ``name``, ``scoring`` and ``staged`` (whether
    an anytime run may stop between depths) and define the output-reading methods."""

    name = ''
    staged = False
    quantized_ops: Optional[Tuple[str, ...]] = None    # int8: these operators (None: all)
    exact_names: Tuple[str, ...] = ()       # the figures :meth:`exact_figures` gives
    scoring: Scoring

    def __init__(self, model: ModelDescription):
        self.model = model

    def infer(self, backend, frames: List[np.ndarray], point: OperatingPoint,
              all_exits: bool = False):
        """(outputs per frame, confidence per frame) of ``point``; with ``all_exits`` a list
        of those per depth (:func:`~tts_perception.inference.runner.infer`)."""
        return infer(self.model, backend, frames, point, all_exits)

    def references(self, frames: Frames) -> Optional[List[Any]]:
        """The frames' own references in scored form (None: they carry none for this task,
        and outputs are scored against the golden point's)."""
        raise NotImplementedError

    def scored(self, output: Any) -> Any:
        """The output in the form it is scored and kept in (smaller where it can be)."""
        raise NotImplementedError

    def nothing(self, reference: Any) -> Any:
        """The output shown before the first one is ready, in scored form (nothing found)."""
        raise NotImplementedError

    def expand(self, scored: Any) -> Any:
        """A scored output back in the form the difficulty signals read."""
        raise NotImplementedError

    def result_signals(self, output: Any, cheapest_px: int, camera_hw: Tuple[int, int]
                       ) -> Tuple[float, float, float]:
        """The three ``segments`` group signals of one output (see the subclass)."""
        raise NotImplementedError

    def change(self, previous: Any, current: Any) -> float:
        """The ``change`` signal: how much two consecutive outputs (scored form) differ, in
        [0, 1] (0: the same; NaN: not comparable, read as unknown)."""
        raise NotImplementedError

    def loss(self, cheap: Any, reference: Any) -> float:
        """What ``cheap`` lost against ``reference`` (scored outputs): 1 - accuracy; 0 where
        neither shows anything."""
        v = self.scoring.value(self.scoring.evidence(cheap, reference))
        return 0.0 if not np.isfinite(v) else float(1.0 - v)

    def exact_figures(self, outputs: Sequence[Any], refs: Sequence[Any]
                      ) -> Dict[str, Optional[float]]:
        """Figures over ``outputs`` (scored form) against ``refs`` that the evidence cannot
        add up exactly; none by default."""
        return {}

    def agreement(self, pred: Sequence[Any], ref: Sequence[Any]) -> float:
        """How far reduced-precision outputs agree with fp32's (scored, frame by frame)."""
        raise NotImplementedError
