"""The deadline scheduler: pick the operating point for one frame.

Input per frame: the operating points, each with its predicted latency (the latency model's
online-corrected quantile, plus a switch cost), its predicted accuracy on this frame (the
profile's table or per-point model at the difficulty estimate), the frame's remaining budget
and the camera's period. Output: a :class:`Decision` (the point, the reason, whether a miss is
expected). Invariants: it never blocks; among points that fit the budget it maximises the
predicted streaming accuracy (weighed with the frame's own by ``frame_accuracy_weight``) less
the profile's compute price times the point's median latency, then takes the cheapest point
within ``accuracy_tolerance``; hysteresis and a dwell time hold the current point unless it
stops fitting; a point below ``class_floor`` is never chosen while one at or above it exists;
when nothing fits, the least late point runs and the decision says a miss is expected.
Static and golden policies answer through the same interface.

The rule and why (streaming accuracy, the compute price, the shrinking tail of
:func:`tail_wait`, the class floor): ``doc/scheduler.md``.
"""

import bisect
from dataclasses import dataclass
from typing import Dict, Hashable, List, Mapping, Optional, Sequence, TypeVar

import numpy as np

from tts_perception.adaptive.latency_model import LatencyModel
from tts_perception.common.settings import setting
from tts_perception.inference.points import golden_point, OperatingPoint

K = TypeVar('K', bound=Hashable)     # a point's key or index


@dataclass
class SchedulerConfig:
    """Scheduler knobs (the same names are YAML keys and perception_node parameters)."""

    policy: str = setting('adaptive', 'adaptive | golden | static:WxH/dN/precision')
    safety_margin_ms: float = setting(2.0, 'Budget kept free before the deadline (ms)',
                                      0.0, 1000.0)
    # about what int8 costs a point: a wider tolerance lets bin-to-bin prediction errors on
    # new scenes add up to a loss larger than itself
    accuracy_tolerance: float = setting(0.002, 'Take the cheapest point within this of the '
                                        'best predicted value (streaming accuracy weighed '
                                        'with the frame\'s own, frame_accuracy_weight)',
                                        0.0, 1.0)
    # 0.75: a streaming gain counts where it is more than a third of the frame accuracy it
    # costs (at 0.5, points shown at the same camera frame tie when a lower resolution ages
    # as much better as it is worse on its own frame, and the cheaper one wins the tie)
    frame_accuracy_weight: float = setting(
        0.75, 'Weight of the frame\'s own accuracy in the objective beside its streaming '
        'accuracy (0: streaming only, 1: the frame\'s accuracy only)', 0.0, 1.0)
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


def seeing_points(keys: Sequence[K], worst: Mapping[K, float], floor: float) -> List[K]:
    """Of ``keys`` (point keys, or indices), the points whose worst per-class IoU (``worst``;
    1 where unknown) is at or above the class floor; all of them when none is (the floor
    cannot hold)."""
    return [k for k in keys if worst.get(k, 1.0) >= floor] or list(keys)


def blind_points(per_class_iou: Mapping[str, Sequence[Optional[float]]],
                 classes: Sequence[str], floor: float, measure: str = 'IoU') -> Dict[str, str]:
    """Points below the class floor, each with the class it loses (``measure``: what the
    per-class values are, the task's class floor measure: IoU, or recall for a detector)."""
    out = {}
    for k, ious in per_class_iou.items():
        known = [(v, c) for v, c in zip(ious, classes) if v is not None]
        if known and min(known)[0] < floor:
            v, c = min(known)
            out[k] = f'blind to {c}: {measure} {v:.3f} < class floor {floor:g}'
    return out


def stale_weight(stale, frame_accuracy_weight: float):
    """The factor a point's accuracy is weighed with in the objective: (1 - w) x its
    staleness factor + w, w = ``frame_accuracy_weight`` (scalars or arrays)."""
    return (1.0 - frame_accuracy_weight) * stale + frame_accuracy_weight


def tail_wait(latency_ms: float, queued_ms: float, period_ms: Optional[float]) -> bool:
    """Whether waiting for the next frame (due ``period_ms`` after this one arrived) and
    running it shows a result no later than starting this frame now, ``queued_ms`` after it
    arrived, with a point that takes ``latency_ms`` (frames arriving every period)."""
    if period_ms is None or not np.isfinite(period_ms) or period_ms <= 0 or queued_ms <= 0:
        return False
    now = np.ceil((queued_ms + latency_ms) / period_ms - 1e-9)
    wait = 1.0 + np.ceil(latency_ms / period_ms - 1e-9)
    return bool(wait <= now)


class AccuracyTable:
    """Predicted accuracy (mIoU) per point per complexity bin, from the profile, and each
    point's overall accuracy (what a per-point shortfall is taken from)."""

    def __init__(self, table: Mapping[str, Sequence[float]], bin_edges: Sequence[float],
                 overall: Optional[Mapping[str, float]] = None):
        self.overall = {k: float(v) for k, v in (overall or {}).items()}
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

    def frame(self, keys: Sequence[str], complexity: float,
              shortfall: Optional[Mapping[str, float]] = None) -> List[float]:
        """Predicted accuracy of each of ``keys`` on one frame: its overall accuracy less its
        predicted ``shortfall`` on the frame (relative to its mean) where both are known, else
        the bin of ``complexity``."""
        b = self.bin_of(complexity)
        sf, ov = shortfall or {}, self.overall
        return [ov[k] - sf[k] if k in sf and k in ov else self.table[k][b] for k in keys]


class StreamingTable:
    """How fast each point's output goes stale: its accuracy against the frames 0, 1, .., K
    camera periods after its own (``period_ms`` apart), from the profile."""

    SAMPLES = (np.arange(8) + 0.5) / 8      # where in one output interval the frames fall

    def __init__(self, staleness: Mapping[str, Sequence[float]], period_ms: Optional[float]):
        self.period_ms = period_ms
        self.table = {k: np.asarray(v, float) for k, v in staleness.items() if len(v)}

    def usable(self) -> bool:
        """Whether there is anything to predict with."""
        return bool(self.table) and bool(self.period_ms) and self.period_ms > 0 and \
            len({len(v) for v in self.table.values()}) == 1 and \
            all(np.isfinite(v).all() for v in self.table.values())

    def relative(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` divided by their accuracy at lag 0 [points, lags]."""
        rows = np.stack([self.table[k] for k in keys])
        return rows / np.where(rows[:, :1] > 0, rows[:, :1], 1.0)

    def expected_many(self, rel: np.ndarray, latency_ms: np.ndarray, age_ms: float,
                      period_ms: float) -> np.ndarray:
        """Per point (rows of :meth:`relative`), the mean accuracy of its result over the
        camera frames it is shown at, relative to its accuracy on its own frame."""
        lat = np.asarray(latency_ms, float)
        done = age_ms + lat
        # keeping up (L <= T): shown at one frame, the first after it is done; slower: one
        # output every L ms, shown at frames anywhere in that interval
        first = np.maximum(1.0, np.ceil(done / period_ms - 1e-9)) * period_ms
        lags_ms = np.where((lat <= period_ms)[:, None], first[:, None],
                           done[:, None] + lat[:, None] * self.SAMPLES[None, :])
        x = np.clip(lags_ms / self.period_ms, 0.0, rel.shape[1] - 1.0)   # profile periods
        i0 = np.minimum(x.astype(np.int64), rel.shape[1] - 2) if rel.shape[1] > 1 else \
            np.zeros(x.shape, np.int64)
        frac = x - i0
        r = np.arange(len(rel))[:, None]
        hi = np.minimum(i0 + 1, rel.shape[1] - 1)
        return (rel[r, i0] * (1.0 - frac) + rel[r, hi] * frac).mean(1)

    def expected(self, key: str, latency_ms: float, age_ms: float, period_ms: float) -> float:
        """:meth:`expected_many` for one point."""
        return float(self.expected_many(self.relative([key]), np.array([latency_ms]), age_ms,
                                        period_ms)[0])


class Scheduler:
    """Per-camera scheduler state over a shared latency model."""

    def __init__(self, points: Sequence[OperatingPoint], accuracy: AccuracyTable,
                 latency: LatencyModel, config: Optional[SchedulerConfig] = None,
                 worst_class_iou: Optional[Mapping[str, float]] = None,
                 streaming: Optional[StreamingTable] = None, compute_price: float = 0.0):
        if not points:
            raise ValueError('scheduler needs at least one operating point')
        self.points: List[OperatingPoint] = list(points)
        self.accuracy, self.latency = accuracy, latency
        if not (np.isfinite(compute_price) and compute_price >= 0.0):
            raise ValueError(f'compute_price must be a finite number >= 0, got {compute_price}')
        self.compute_price = float(compute_price)
        self.config = config or SchedulerConfig()
        missing = [p.key for p in self.points
                   if p.key not in latency.upper or p.key not in accuracy.table]
        if missing:
            raise ValueError(f'profile has no latency/accuracy for points {missing}; '
                             f're-run profile for this point set')
        self.golden = golden_point(self.points)
        self._key_list = [p.key for p in self.points]
        self._median = [latency.base[k] for k in self._key_list]    # profiled p50 (ms)
        self.streaming = streaming if streaming is not None and streaming.usable() and all(
            p.key in streaming.table for p in self.points) else None
        self._stale_rel = self.streaming.relative(self._key_list) if self.streaming else None
        worst = worst_class_iou or {}
        self._worst = {i: float(worst.get(k, 1.0)) for i, k in enumerate(self._key_list)}
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

    def choose(self, complexity: float, budget_ms: float, period_ms: Optional[float] = None,
               age_ms: float = 0.0, shortfall: Optional[Mapping[str, float]] = None
               ) -> Decision:
        """Decide the point for a frame with ``budget_ms`` left (after age and margin), on a
        camera of period ``period_ms`` (None: not known yet), the frame ``age_ms`` old;
        ``shortfall``: per point its predicted shortfall on this frame relative to its mean
        (:meth:`~tts_perception.adaptive.complexity.ComplexityParams.shortfall`)."""
        cfg = self.config
        if cfg.policy != 'adaptive':
            return self._choose_fixed(complexity, budget_ms, shortfall)
        cur = self.current
        predict = self.latency.predict
        switch = cfg.switch_cost_ms
        # plain lists over the point index: hashing frozen dataclasses dominated this loop
        cur_i = self._index.get(cur) if cur is not None else None
        costs = [predict(k) + (switch if cur_i is not None and i != cur_i else 0.0)
                 for i, k in enumerate(self._key_list)]
        accs = frame_accs = self.accuracy.frame(self._key_list, complexity, shortfall)
        stale = None
        st = self.streaming
        streaming = st is not None and period_ms is not None and np.isfinite(period_ms) \
            and period_ms > 0
        if streaming:
            stale = st.expected_many(self._stale_rel, np.asarray(costs), age_ms, period_ms)
            accs = (np.asarray(accs) * stale_weight(stale, cfg.frame_accuracy_weight)).tolist()
        usable = seeing_points(range(len(costs)), self._worst, cfg.class_floor)
        feasible = [i for i in usable if costs[i] <= budget_ms]
        if not feasible:
            return self._nothing_fits(usable, costs, accs, frame_accs, stale, budget_ms, age_ms)
        # the objective: (streaming) accuracy less the compute price of the point's profiled
        # median latency, as calibrate priced it (the online upper quantile in ``costs`` is
        # for the deadline, and pessimistic about points that have not run lately)
        price = self.compute_price
        vals = [a - price * m for a, m in zip(accs, self._median)] if price > 0.0 else accs
        best_val = max(vals[i] for i in feasible)
        ci = min((i for i in feasible if vals[i] >= best_val - cfg.accuracy_tolerance),
                 key=costs.__getitem__)
        cand = self.points[ci]
        if cur_i is None or cur_i not in feasible:     # (a blind current point is never so)
            reason = 'start' if cur is None else 'current point no longer fits'
            self._commit(cand)
            return Decision(cand, reason, costs[ci], accs[ci], budget_ms, False)
        return self._switch(ci, cur_i, vals, costs, accs, budget_ms)

    def _choose_fixed(self, complexity: float, budget_ms: float,
                      shortfall: Optional[Mapping[str, float]]) -> Decision:
        """A static or golden policy: its point, whatever the budget."""
        p = self._static or self.golden
        pred = self._cost(p)
        d = Decision(p, self.config.policy.split(':')[0], pred,
                     self.accuracy.frame([p.key], complexity, shortfall)[0], budget_ms,
                     pred > budget_ms)
        self.current = p
        return d

    def _nothing_fits(self, usable: Sequence[int], costs: List[float], accs: List[float],
                      frame_accs: List[float], stale, budget_ms: float,
                      age_ms: float) -> Decision:
        """No point that sees every class fits the budget: the least late of them, or, where
        the class floor is the reason, the best by expected streaming accuracy."""
        blind = len(usable) < len(costs)
        # the class floor's price, not a load spike: only blind points fit, or the points
        # that see every class miss the deadline even at their profiled median (then an
        # old frame, when nothing fits, must not change the rule that a fresh one gets)
        floor_bound = blind and (any(c <= budget_ms for c in costs) or min(
            self._median[i] for i in usable) > budget_ms + max(0.0, age_ms))
        if floor_bound and stale is not None:
            # of the points that see every class, the best expected streaming accuracy
            # itself (the deadline is missed either way, so what the robot sees is the
            # newest late result; the frame's own accuracy weighs in only between points
            # that meet the deadline)
            i = max(usable, key=lambda j: frame_accs[j] * stale[j])
            which = 'best streaming point'
        else:
            # nothing fits at all (a load spike, a tight deadline): the least late
            i = min(usable, key=costs.__getitem__)
            which = 'cheapest point'
        self._commit(self.points[i])
        return Decision(self.points[i], f'nothing fits that sees every class: the {which} '
                        f'that does (the deadline cannot be met with every class seen)'
                        if floor_bound else f'nothing fits: {which}', costs[i],
                        accs[i], budget_ms, True)

    def _switch(self, ci: int, cur_i: int, vals: List[float], costs: List[float],
                accs: List[float], budget_ms: float) -> Decision:
        """The best candidate ``ci`` against the current point ``cur_i`` (both feasible):
        switch on an accuracy gain above the hysteresis, or once a cheaper candidate has been
        proposed for ``dwell_frames``; else hold."""
        cfg, cur, cand = self.config, self.current, self.points[ci]
        if ci == cur_i:
            self._proposal, self._proposal_count = None, 0
            return Decision(cur, 'best within tolerance', costs[ci], accs[ci], budget_ms, False)
        if cand == self._proposal:
            self._proposal_count += 1
        else:
            self._proposal, self._proposal_count = cand, 1
        gain = vals[ci] - vals[cur_i]
        if gain > cfg.hysteresis or self._proposal_count >= cfg.dwell_frames:
            reason = 'accuracy gain' if gain > cfg.hysteresis else 'cheaper, held for dwell'
            self._commit(cand)
            return Decision(cand, reason, costs[ci], accs[ci], budget_ms, False)
        return Decision(cur, 'hold (hysteresis)', costs[cur_i], accs[cur_i], budget_ms, False)

    def _commit(self, p: OperatingPoint) -> None:
        self.current = p
        self._proposal, self._proposal_count = None, 0
