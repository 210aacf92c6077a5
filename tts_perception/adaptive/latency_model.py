"""Online latency model per operating point, corrected by the latencies actually observed.

Input: the profile's latency quantile per point (the prior) and every observed latency.
Output: :meth:`LatencyModel.predict`, the latency the scheduler plans a point for. Rules: a
machine-wide slowdown from the recent observed/profiled ratios (their upper quantile over the
same quantile on the profiled machine, so a machine running as profiled has a factor of 1),
widened when the ratios scatter more than the profile's tail; a per-point excess over it (the
smaller of the point's last two, relaxing towards 1, seeded by the start-up timing); a point
with no recent sample of its own is predicted at least at the recent ratios as observed; a
miss by a factor k raises the slowdown to k at once, and a backoff decays on each hit. Why
each rule: doc/scheduler.md (predicted latency).
"""

from collections import deque
from dataclasses import dataclass
from statistics import NormalDist
from typing import Deque, Dict, List, Mapping, Optional

import numpy as np


def _quantile(values, q: float) -> float:
    """Linear-interpolated quantile of a short list (np.quantile costs ~0.1 ms here)."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


@dataclass(frozen=True)
class LatencyModelConfig:
    """How fast the latency model follows the machine (the defaults were tuned on load steps
    in bench/bench_core.py and the unit tests)."""

    window: int = 12               # recent observed/profiled ratios kept
    ratio_quantile: float = 0.9    # machine-wide factor = this quantile of the window ...
    recent: int = 2                # ... or the last `recent` ratios if all are higher
    backoff_step: float = 1.15     # extra factor after each miss ...
    backoff_max: float = 2.0       # ... up to this ...
    backoff_decay: float = 0.97    # ... relaxing per frame without a miss
    point_relax: float = 0.995     # per-point excess relaxes by this per observation
    shock_max: float = 6.0         # a miss by k is taken at once as a slowdown of k (capped)
    shock_decay: float = 0.8       # the shock fades per observation
    normal_band: float = 1.3       # ratios within this of the factor count as normal


def quantile_key(q: float) -> str:
    """0.95 -> 'p95', the profile table's column for that latency quantile."""
    return f'p{int(round(100 * q))}'


class LatencyModel:
    """Predicts an upper quantile of each point's latency (ms)."""

    def __init__(self, profile: Mapping[str, Mapping[str, float]], quantile: float = 0.95,
                 batch_profile: Optional[Mapping[str, Mapping[str, float]]] = None,
                 config: LatencyModelConfig = LatencyModelConfig()):
        c = config
        window, ratio_quantile, recent = c.window, c.ratio_quantile, c.recent
        backoff_step, backoff_max, backoff_decay = c.backoff_step, c.backoff_max, c.backoff_decay
        point_relax, shock_max, shock_decay = c.point_relax, c.shock_max, c.shock_decay
        normal_band = c.normal_band
        quantile = quantile_key(quantile)
        if not profile:
            raise ValueError('latency profile is empty')
        for key, row in profile.items():
            for q in ('p50', quantile):
                if q not in row or not np.isfinite(row[q]) or row[q] <= 0:
                    raise ValueError(f'latency profile for {key} lacks a positive {q}')
        self.base = {k: float(v['p50']) for k, v in profile.items()}
        self.upper = {k: float(v[quantile]) for k, v in profile.items()}
        self._calib: Dict[str, float] = {}   # start-up calibration (initial excess)
        # the spread (upper quantile / median) the profile saw on a quiet machine
        self.spread_ref = float(np.median([self.upper[k] / self.base[k] for k in self.base]))
        # the window quantile's ratio to the median on that quiet machine, from the profile's
        # quantile by a log-normal tail (p90/p50 = (p95/p50) ** (z_0.90 / z_0.95))
        z = NormalDist().inv_cdf
        q_prof = int(quantile[1:]) / 100.0
        tail_exp = z(ratio_quantile) / z(q_prof) if ratio_quantile > 0.5 and q_prof > 0.5 \
            else 0.0
        self.tail_ref = max(1.0, self.spread_ref ** tail_exp)
        self.batch = {k: {int(n): float(ms) for n, ms in v.items()}
                      for k, v in (batch_profile or {}).items()}
        self.ratio_q, self.recent = ratio_quantile, recent
        self.ratios: Deque[tuple] = deque(maxlen=window)   # (point key, ratio)
        self.point_ratio: Dict[str, List[float]] = {}   # key -> last two (ratio / slowdown)
        self.point_relax = point_relax
        self.backoff = 1.0
        self.shock, self.shock_max, self.shock_decay = 1.0, shock_max, shock_decay
        self.normal_band = normal_band
        self._suspect: Optional[tuple] = None   # (key, excess, factor) of the last miss
        self._cache: Dict[str, float] = {}    # predictions, cleared by every observation
        self._slowdown: Optional[float] = None
        self._raw_slowdown: Optional[float] = None
        self.backoff_step, self.backoff_max, self.backoff_decay = (backoff_step, backoff_max,
                                                                   backoff_decay)

    @property
    def slowdown(self) -> float:
        """Machine-wide factor from recent observations (1.0 before any)."""
        if self._slowdown is None:
            r = self._normalised(None)
            self._slowdown = max(self._factor_of(r), self.shock) * self._spread_of(r)
        return self._slowdown

    @property
    def spread(self) -> float:
        """How much wider than on the quiet profiled machine the latency spread is now (>= 1):
        the window's upper quantile over its median, relative to the profile's p95/p50. Under
        contention latencies scatter more, and the profile's quantile no longer covers it."""
        return self._spread_of(self._normalised(None))

    def _normalised(self, exclude: Optional[str]) -> List[float]:
        # each ratio over its point's current excess: once a point is known to be slow, its
        # past samples stop inflating the machine-wide factor
        return [x / self._excess(k) for k, x in self.ratios if k != exclude or not k]

    def _factor_of(self, r: List[float]) -> float:
        if not r:
            return 1.0
        # upper quantile of the window over the profile's own, or the latest few if all
        # higher: a load step shows in the very next prediction instead of after ~window/10
        # frames
        recent = min(r[-self.recent:]) if len(r) >= self.recent else 0.0
        return max(0.5, _quantile(r, self.ratio_q) / self.tail_ref, recent)

    def _tail_of(self, r: List[float]) -> float:
        # the window's upper quantile as observed (what one run of a point may take, over the
        # profile's median): a point is slow only beyond it, and so is the machine after a miss
        if not r:
            return self.tail_ref
        return max(0.5, _quantile(r, self.ratio_q), self._factor_of(r))

    def _spread_of(self, r: List[float]) -> float:
        if len(r) < 6:
            return 1.0
        med = _quantile(r, 0.5)
        return min(2.0, max(1.0, _quantile(r, self.ratio_q) / med / self.spread_ref))

    def calibrate(self, measured_ms: Mapping[str, float]) -> Dict[str, float]:
        """Points measured slower now than in the profile start with that factor as their
        per-point excess; returns the factors. Points measured faster keep the (conservative)
        profile values. Like any excess it relaxes as other points run, so a point that was
        slow only while the machine warmed up is tried again instead of being ruled out for
        good (and branded again by its next slow run if it really is slow)."""
        applied = {}
        for key, ms in measured_ms.items():
            if key in self.base and ms > 0 and np.isfinite(ms):
                applied[key] = max(1.0, ms / self.base[key])
        self._calib = {k: f for k, f in applied.items() if f > 1.0}
        self._apply_calibration()
        return applied

    def _apply_calibration(self) -> None:
        for key, f in self._calib.items():
            self.point_ratio[key] = [f, f]
        self._invalidate()

    def reset(self) -> None:
        """Forget every online observation (back to the profile prior and the start-up
        calibration)."""
        self.ratios.clear()
        self.point_ratio.clear()
        self.backoff = self.shock = 1.0
        self._suspect = None
        self._apply_calibration()

    def _invalidate(self) -> None:
        self._cache.clear()
        self._slowdown = self._raw_slowdown = None

    def predict(self, key: str) -> float:
        """Predicted upper-quantile latency of point ``key`` (ms)."""
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._predict(key)
        return hit

    def _predict(self, key: str) -> float:
        f = self.slowdown * self._excess(key)
        if all(k != key for k, _ in self.ratios):
            # nothing of its own in the window: the machine as the window shows it, unexcused.
            # After a load step every point that ran since is branded slow by its excess over
            # the window's older ratios, which then hides the step from the machine-wide factor;
            # a point that did not run since would otherwise be predicted as before the step
            f = max(f, self.raw_slowdown)
        return self.upper[key] * f * self.backoff

    @property
    def raw_slowdown(self) -> float:
        """The machine-wide factor from the window's ratios as observed, no point's excess
        taken out (1.0 before any)."""
        if self._raw_slowdown is None:
            r = [x for _, x in self.ratios]
            self._raw_slowdown = max(self._factor_of(r), self.shock) * self._spread_of(r)
        return self._raw_slowdown

    def _excess(self, key: str) -> float:
        last = self.point_ratio.get(key)
        return max(1.0, min(last)) if last is not None and len(last) == 2 else 1.0

    def predict_increment(self, key_from: str, key_to: str) -> float:
        """Predicted extra time to go from one depth to a deeper one of the same point."""
        return max(0.0, self.predict(key_to) - self.predict(key_from))

    def predict_batch(self, key: str, n: int) -> Optional[float]:
        """Predicted latency of a batch of ``n`` frames, if the profile measured it."""
        if n == 1:
            return self.predict(key)
        ms = self.batch.get(key, {}).get(n)
        return None if ms is None else ms * self.slowdown * self.backoff

    def observe(self, key: str, measured_ms: float, n: int = 1) -> None:
        """Feed one measured latency of ``key`` (a batch of ``n`` when n > 1)."""
        if not np.isfinite(measured_ms) or measured_ms <= 0:
            return
        self._invalidate()
        ref = self.base[key] if n == 1 else self.batch.get(key, {}).get(n)
        if not ref:
            return
        r = measured_ms / ref
        if self._suspect is not None and n == 1:
            self._settle_suspect(key, r / self._excess(key))
        # the machine state as the *other* points show it: a point's own slowness must not
        # hide inside the machine-wide factor it is compared with. Only if other points were
        # seen lately, though: when one point has run alone, the slowness it shows cannot be
        # told apart from the machine's, and blaming the machine is the safe side (blaming the
        # point would make every other point look fast right after a load step); likewise
        # while a shock (a recent miss) says the machine itself just changed
        if self._others_seen_lately(key) and self.shock < 1.05:
            before = self._tail_of(self._normalised(key))
        else:
            before = max(self._tail_of(self._normalised(None)), self.shock)
        self.ratios.append((key if n == 1 else '', r))
        if n > 1:
            return
        relax = self.point_relax
        for v in self.point_ratio.values():
            v[:] = [1.0 + (x - 1.0) * relax for x in v]
        last = self.point_ratio.setdefault(key, [])
        last.append(r / before)
        del last[:-2]

    def _others_seen_lately(self, key: str, lately: int = 4, enough: int = 3) -> bool:
        recent = list(self.ratios)
        others = [i for i, (k, _) in enumerate(recent) if k != key]
        return len(others) >= enough and others[-1] >= len(recent) - lately

    def on_outcome(self, missed: bool, overshoot: float = 1.0, key: Optional[str] = None
                   ) -> None:
        """Back off after a miss; decay towards 1 after a hit.

        ``overshoot`` is the frame's measured / predicted latency. A miss by that much is
        taken as a machine-wide slowdown at once (a *shock*, capped at ``shock_max``, that
        fades by ``shock_decay`` per frame as the window of observations catches up), so the
        frame after a sudden load step is planned for it. The point ``key`` that missed stays
        suspect: if the next other point runs at its usual speed, the machine was fine, the
        shock is withdrawn and the suspect point alone is branded slow by its overshoot.
        """
        self._invalidate()
        # the window's tail: a miss by k says one run takes k times what was planned for the
        # tail (conservative: the miss is taken as the machine's median, not its tail)
        base = self._tail_of(self._normalised(None))
        in_effect = max(base, self.shock)
        self.shock = 1.0 + (self.shock - 1.0) * self.shock_decay
        if missed:
            self.backoff = min(self.backoff_max, self.backoff * self.backoff_step)
            if np.isfinite(overshoot) and overshoot > 1.0:
                self.shock = max(self.shock, min(self.shock_max, in_effect * overshoot))
                if key is not None:
                    self._suspect = (key, overshoot * self._excess(key), base)
        else:
            self.backoff = max(1.0, self.backoff * self.backoff_decay)

    def _settle_suspect(self, key: str, ratio: float) -> None:
        """Another point ran after a shock: was the machine slow, or only the suspect?"""
        suspect, excess, base = self._suspect
        if key == suspect:
            return
        self._suspect = None
        if ratio < self.normal_band * base:     # the machine is fine: blame the point
            self.shock = 1.0
            self.point_ratio[suspect] = [excess, excess]
