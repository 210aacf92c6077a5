"""The per-frame hindsight oracle: the bound a per-frame policy is measured against.

Every operating point runs on every evaluated frame and is scored against that frame's
reference; with hindsight the oracle picks, on each frame, the point that maximises
``accuracy - lambda * latency`` (latency: each point's median). Sweeping ``lambda`` (densely:
between two values the choices change on few frames) traces its frontier of (mean compute,
accuracy); accuracy is the task's value of the chosen outputs' summed evidence (mIoU of the
confusion matrices, AP50 of the score histograms: :mod:`~tts_perception.common.scoring`), as
for every policy. A frame's accuracy is taken both as its own and as what it adds to the
accuracy over the frames (the scoring's ``contributions``); the frontier is the better of the
two sweeps at every compute. With the outputs kept, each frontier point also carries the
task's exact figures of its choices (a detector's COCO AP50 and mAP, which the additive
evidence cannot give). A policy's
*share of the oracle's saving* at the accuracy of a static point is (static compute - policy
compute) / (static compute - the oracle's compute at that accuracy). At the policy's own
accuracy the static side is the static frontier (:func:`static_cost_at`), which also takes the
policy's accuracy where no single static point has it.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.difficulty import choice_outcome, rule_choice
from tts_perception.common.scoring import SegmentationScoring

MIN_SAVING = 0.05           # the least saving (share of the static compute) a share is taken of


@dataclass
class PerFrameTable:
    """Every point on every frame: its evidence (``confusion``: confusion matrices for
    segmentation, the default ``scoring``) and the points' median latencies."""

    points: List[str]
    latency_ms: np.ndarray          # (P,)
    confusion: np.ndarray           # (P, F, ...) evidence
    scoring: Any = None             # common.scoring; default: confusion matrices
    # [point][frame] the outputs in scored form, where exact figures are computed from them
    outputs: Optional[List[List[Any]]] = None

    def __post_init__(self) -> None:
        if self.scoring is None:
            self.scoring = SegmentationScoring(self.confusion.shape[-1])

    def frame_contribution(self) -> np.ndarray:
        """(P, F) what each frame's output adds to the point's accuracy over the frames, to
        first order (the scoring's ``contributions``)."""
        return self.scoring.contributions(self.confusion)

    def frame_accuracy(self) -> np.ndarray:
        """(P, F) each frame's own accuracy (the scoring's ``frame_values``)."""
        return self.scoring.frame_values(self.confusion)


def per_frame_table(points: Sequence[str], latency_ms: Dict[str, float], n_frames: int,
                    scoring, score: Callable[[str, int], np.ndarray]) -> PerFrameTable:
    """``score(point, frame)`` -> that point's evidence on that frame (``scoring``'s)."""
    conf = np.stack([np.stack([score(p, f) for f in range(n_frames)]) for p in points])
    return PerFrameTable(list(points), np.array([latency_ms[p] for p in points], float), conf,
                         scoring)


@dataclass
class FrontierPoint:
    mean_compute_ms: float
    accuracy: float
    weight: float                   # lambda, accuracy per ms
    points: Dict[str, int]          # how often each point was chosen
    # the task's exact figures of these choices (a detector's AP50 and mAP; empty: none)
    exact: Dict[str, Optional[float]] = field(default_factory=dict)


def _weights(weights: Optional[Sequence[float]]) -> Sequence[float]:
    """The lambdas a frontier sweeps: ``weights``, or 0 and 1000 from 1e-6 to 10 (densely:
    between two values the choices change on few frames)."""
    return np.concatenate([[0.0], np.geomspace(1e-6, 10.0, 1000)]) if weights is None \
        else weights


def _outcome(table: PerFrameTable, choice: np.ndarray, weight: float) -> FrontierPoint:
    """The (mean compute, accuracy) of running point ``choice[f]`` on each frame f."""
    acc, ms = choice_outcome(table.confusion, table.latency_ms, choice, table.scoring.value)
    counts = np.bincount(choice, minlength=len(table.points))
    return FrontierPoint(ms, acc, float(weight),
                         {table.points[i]: int(n) for i, n in enumerate(counts) if n})


def frontier(table: PerFrameTable, weights: Optional[Sequence[float]] = None,
             exact: Optional[Callable[[List[Any]], Dict[str, Optional[float]]]] = None
             ) -> List[FrontierPoint]:
    """The oracle's (mean compute, accuracy) frontier, cheapest first, dominated ones out;
    with ``exact`` (the task's exact figures of one output per frame) and the table's
    outputs, each frontier point's exact figures too."""
    lat = table.latency_ms[:, None]
    outcomes = [(_outcome(table, choice, w), choice)
                for acc in (table.frame_accuracy(), table.frame_contribution())
                for w in _weights(weights)
                for choice in [np.argmax(acc - w * lat, axis=0)]]
    front = _pareto([p for p, _ in outcomes])
    if exact is not None and table.outputs is not None:
        chosen = {id(p): choice for p, choice in outcomes}
        for p in front:
            p.exact = exact([table.outputs[c][f] for f, c in enumerate(chosen[id(p)])])
    return front


def rule_frontier(table: PerFrameTable, predicted: np.ndarray, tolerance: float = 0.0,
                  weights: Optional[Sequence[float]] = None) -> List[FrontierPoint]:
    """The scheduler's rule (:func:`~tts_perception.adaptive.difficulty.rule_choice`) with the
    accuracy it predicted for every point on every frame (``predicted`` [P, F], -inf for a
    point it may not choose), its price swept in hindsight like the oracle's lambda: how much
    of the oracle's frontier the difficulty signals allow at the best price, before deadlines,
    hysteresis and the streaming factor. Cheapest first, dominated ones out."""
    return _pareto([_outcome(table, rule_choice(predicted, table.latency_ms, float(w),
                                                tolerance), w)
                    for w in _weights(weights)])


def _pareto(candidates: List[FrontierPoint]) -> List[FrontierPoint]:
    """Cheapest first, each more accurate than every cheaper one."""
    candidates.sort(key=lambda p: (p.mean_compute_ms, -p.accuracy))
    kept: List[FrontierPoint] = []
    for p in candidates:
        if not kept or p.accuracy > kept[-1].accuracy + 1e-12:
            kept.append(p)
    return kept


def cost_at(front: Sequence[FrontierPoint], accuracy: float) -> Optional[float]:
    """The oracle's least mean compute reaching ``accuracy`` (None if it never does)."""
    p = point_at(front, accuracy)
    return None if p is None else p.mean_compute_ms


def point_at(front: Sequence[FrontierPoint], accuracy: float) -> Optional[FrontierPoint]:
    """The oracle's cheapest frontier point reaching ``accuracy`` (None if none does)."""
    ok = [p for p in front if p.accuracy >= accuracy]
    return min(ok, key=lambda p: p.mean_compute_ms) if ok else None


def static_cost_at(points: Sequence[Tuple[float, float]], accuracy: float) -> Optional[float]:
    """The least mean compute at which static points reach ``accuracy``: one point, or a fixed
    alternation of two (compute and accuracy interpolated linearly between them; the mIoU of an
    alternation is close to, not exactly, that line). ``points``: (mean compute ms, accuracy).
    None above every point's accuracy."""
    best = [c for c, a in points if a >= accuracy]
    if not best:
        return None
    cost = min(best)
    for c0, a0 in points:
        for c1, a1 in points:
            if a0 < accuracy <= a1 and c0 < c1:
                cost = min(cost, c0 + (c1 - c0) * (accuracy - a0) / (a1 - a0))
    return cost


def saving_captured(static_ms: float, policy_ms: float, oracle_ms: Optional[float]
                    ) -> Optional[float]:
    """Share of the oracle's saving over a static point that a policy captures; None where
    the oracle saves less than ``MIN_SAVING`` of the static point's compute (a share of
    almost nothing says nothing)."""
    if oracle_ms is None or static_ms - oracle_ms <= max(1e-9, MIN_SAVING * static_ms):
        return None
    return (static_ms - policy_ms) / (static_ms - oracle_ms)
