"""The deadline scheduler: pick the operating point for one frame.

Among the points whose predicted latency (upper quantile, online-corrected, plus a switch cost
when the point changes) fits the remaining budget, take the best predicted accuracy for this
frame's complexity; then the cheapest point within ``accuracy_tolerance`` of that best (spend
compute only where it buys accuracy). Hysteresis keeps the current point unless the new one is
better by more than ``hysteresis`` or has been proposed for ``dwell_frames`` frames in a row; a
current point that no longer fits is left at once. If nothing fits, the cheapest point runs
and the record says a miss is expected. It never blocks.

Class floor: a point whose worst per-class IoU in the profile (against the labels or the golden
point) is below ``class_floor`` is blind to that class. The adaptive policy never takes it
while a point at or above the floor exists: among those the rule above decides, and when none
of them fits, the cheapest of them runs (the least stale of the points that see every class)
and the record says that the deadline cannot be met with every class seen. A fast blind point
is never chosen silently.

Static policies (one fixed point) and golden (the most expensive point) use the same
interface, for comparison.
"""

import bisect
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from tts_perception.adaptive.latency_model import LatencyModel
from tts_perception.common.settings import setting
from tts_perception.inference.points import golden_point, OperatingPoint


@dataclass
class SchedulerConfig:
    """Scheduler knobs (the same names are YAML keys and perception_node parameters)."""

    policy: str = setting('adaptive', 'adaptive | golden | static:WxH/dN/precision')
    safety_margin_ms: float = setting(2.0, 'Budget kept free before the deadline (ms)',
                                      0.0, 1000.0)
    accuracy_tolerance: float = setting(0.01, 'Take the cheapest point within this of the '
                                        'best predicted mIoU', 0.0, 1.0)
    hysteresis: float = setting(0.02, 'mIoU gain needed to switch at once', 0.0, 1.0)
    dwell_frames: int = setting(4, 'Frames a cheaper proposal must persist before switching',
                                1, 1000)
    switch_cost_ms: float = setting(0.5, 'Predicted extra cost of changing point (ms)',
                                    0.0, 100.0)
    class_floor: float = setting(0.3, 'A point whose worst per-class IoU in the profile is '
                                 'below this is blind to that class: the adaptive policy never '
                                 'chooses it while a point at or above it exists', 0.0, 1.0)


@dataclass
class Decision:
    """What the scheduler chose and why."""

    point: OperatingPoint
    reason: str
    predicted_ms: float
    predicted_accuracy: float
    budget_ms: float
    expect_miss: bool


def parse_policy(policy: str, points: Optional[Sequence[OperatingPoint]] = None
                 ) -> Optional[OperatingPoint]:
    """Validate a policy string; returns the static point (None for adaptive/golden).

    Raises ValueError with the reason (also used by the perception node's parameter check).
    """
    if policy.startswith('static:'):
        p = OperatingPoint.parse(policy.split(':', 1)[1])
        if points is not None and p not in points:
            raise ValueError(f'static point {p.key} is not among the allowed points')
        return p
    if policy not in ('adaptive', 'golden'):
        raise ValueError(f'policy must be adaptive, golden or static:<point>, got {policy!r}')
    return None


def worst_class_iou(per_class_iou: Mapping[str, Sequence[Optional[float]]]
                    ) -> Dict[str, float]:
    """Point -> its worst per-class IoU in a profile (a class the reference never shows has
    no IoU and does not count)."""
    return {k: min((v for v in ious if v is not None), default=1.0)
            for k, ious in per_class_iou.items()}


def blind_points(per_class_iou: Mapping[str, Sequence[Optional[float]]],
                 classes: Sequence[str], floor: float) -> Dict[str, str]:
    """Points below the class floor, each with the class it loses."""
    out = {}
    for k, ious in per_class_iou.items():
        known = [(v, c) for v, c in zip(ious, classes) if v is not None]
        if known and min(known)[0] < floor:
            v, c = min(known)
            out[k] = f'blind to {c}: IoU {v:.3f} < class floor {floor:g}'
    return out


class AccuracyTable:
    """Predicted accuracy (mIoU) per point per complexity bin, from the profile."""

    def __init__(self, table: Mapping[str, Sequence[float]], bin_edges: Sequence[float]):
        self.edges = np.asarray(bin_edges, float)
        self._edges = [float(e) for e in self.edges[1:-1]]   # inner edges, for bisect
        self.table = {k: [float(x) for x in v] for k, v in table.items()}
        nb = len(self.edges) - 1
        for k, v in self.table.items():
            if len(v) != nb:
                raise ValueError(f'accuracy table for {k} has {len(v)} bins, edges give {nb}')

    def bin_of(self, complexity: float) -> int:
        """Complexity bin index."""
        return bisect.bisect_right(self._edges, complexity)

    def predict(self, key: str, complexity: float) -> float:
        """Predicted accuracy of a point on a frame of this complexity."""
        return self.table[key][self.bin_of(complexity)]


class Scheduler:
    """Per-camera scheduler state over a shared latency model."""

    def __init__(self, points: Sequence[OperatingPoint], accuracy: AccuracyTable,
                 latency: LatencyModel, config: Optional[SchedulerConfig] = None,
                 worst_class_iou: Optional[Mapping[str, float]] = None):
        if not points:
            raise ValueError('scheduler needs at least one operating point')
        self.points: List[OperatingPoint] = list(points)
        self.accuracy, self.latency = accuracy, latency
        self.config = config or SchedulerConfig()
        missing = [p.key for p in self.points
                   if p.key not in latency.upper or p.key not in accuracy.table]
        if missing:
            raise ValueError(f'profile has no latency/accuracy for points {missing}; '
                             f're-run profile for this point set')
        self.golden = golden_point(self.points)
        self._key_list = [p.key for p in self.points]
        worst = worst_class_iou or {}
        self._worst = [float(worst.get(k, 1.0)) for k in self._key_list]
        self._index = {p: i for i, p in enumerate(self.points)}
        self.current: Optional[OperatingPoint] = None
        self._proposal: Optional[OperatingPoint] = None
        self._proposal_count = 0
        self.set_policy(self.config.policy)

    def set_policy(self, policy: str) -> None:
        """Switch policy at run time (validated)."""
        self._static = parse_policy(policy, self.points)
        self.config.policy = policy

    def _cost(self, p: OperatingPoint) -> float:
        extra = self.config.switch_cost_ms if (self.current is not None and p != self.current) \
            else 0.0
        return self.latency.predict(p.key) + extra

    def choose(self, complexity: float, budget_ms: float) -> Decision:
        """Decide the point for a frame with ``budget_ms`` left (after age and margin)."""
        cfg = self.config
        if cfg.policy != 'adaptive':
            p = self._static or self.golden
            pred = self._cost(p)
            d = Decision(p, cfg.policy.split(':')[0], pred,
                         self.accuracy.predict(p.key, complexity), budget_ms, pred > budget_ms)
            self.current = p
            return d
        b = self.accuracy.bin_of(complexity)
        cur = self.current
        predict, table = self.latency.predict, self.accuracy.table
        switch = cfg.switch_cost_ms
        # plain lists over the point index: hashing frozen dataclasses dominated this loop
        cur_i = self._index.get(cur) if cur is not None else None
        costs = [predict(k) + (switch if cur_i is not None and i != cur_i else 0.0)
                 for i, k in enumerate(self._key_list)]
        accs = [table[k][b] for k in self._key_list]
        seeing = [i for i, w in enumerate(self._worst) if w >= cfg.class_floor]
        usable = seeing or list(range(len(costs)))      # all blind: the floor cannot hold
        feasible = [i for i in usable if costs[i] <= budget_ms]
        if not feasible:
            i = min(usable, key=costs.__getitem__)
            self._commit(self.points[i])
            blind_fits = len(usable) < len(costs) and any(c <= budget_ms for c in costs)
            return Decision(self.points[i], 'nothing fits that sees every class: the cheapest '
                            'point that does (the deadline cannot be met with every class '
                            'seen)' if blind_fits else 'nothing fits: cheapest point', costs[i],
                            accs[i], budget_ms, True)
        best_acc = max(accs[i] for i in feasible)
        ci = min((i for i in feasible if accs[i] >= best_acc - cfg.accuracy_tolerance),
                 key=costs.__getitem__)
        cand = self.points[ci]
        if cur_i is None or cur_i not in feasible:     # (a blind current point is never so)
            reason = 'start' if cur is None else 'current point no longer fits'
            self._commit(cand)
            return Decision(cand, reason, costs[ci], accs[ci], budget_ms, False)
        if ci == cur_i:
            self._proposal, self._proposal_count = None, 0
            return Decision(cur, 'best within tolerance', costs[ci], accs[ci], budget_ms, False)
        if cand == self._proposal:
            self._proposal_count += 1
        else:
            self._proposal, self._proposal_count = cand, 1
        gain = accs[ci] - accs[cur_i]
        if gain > cfg.hysteresis or self._proposal_count >= cfg.dwell_frames:
            reason = 'accuracy gain' if gain > cfg.hysteresis else 'cheaper, held for dwell'
            self._commit(cand)
            return Decision(cand, reason, costs[ci], accs[ci], budget_ms, False)
        return Decision(cur, 'hold (hysteresis)', costs[cur_i], accs[cur_i], budget_ms, False)

    def _commit(self, p: OperatingPoint) -> None:
        self.current = p
        self._proposal, self._proposal_count = None, 0
