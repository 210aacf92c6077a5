"""Online latency model per operating point, corrected by the latencies actually observed.

Prior: the profile's latency quantile per point (measured on this machine by ``profile``).
Correction: every observed latency gives a ratio observed / profiled-median; an upper quantile
of the last ``window`` ratios is a machine-wide slowdown factor applied to every point (CPU
contention or thermal throttling slow all points alike, and only the chosen point is ever
observed). A point with enough recent observations of its own uses them when they are higher.
Deadline misses add a backoff factor that decays on each hit.
"""

from collections import deque
from typing import Deque, Dict, Mapping, Optional

import numpy as np


class LatencyModel:
    """Predicts an upper quantile of each point's latency (ms)."""

    def __init__(self, profile: Mapping[str, Mapping[str, float]], quantile: str = 'p95',
                 window: int = 12, ratio_quantile: float = 0.9, own_min_samples: int = 5,
                 backoff_step: float = 1.15, backoff_max: float = 2.0,
                 backoff_decay: float = 0.97,
                 batch_profile: Optional[Mapping[str, Mapping[str, float]]] = None):
        if not profile:
            raise ValueError('latency profile is empty')
        for key, row in profile.items():
            for q in ('p50', quantile):
                if q not in row or not np.isfinite(row[q]) or row[q] <= 0:
                    raise ValueError(f'latency profile for {key} lacks a positive {q}')
        self.base = {k: float(v['p50']) for k, v in profile.items()}
        self.upper = {k: float(v[quantile]) for k, v in profile.items()}
        self.batch = {k: {int(n): float(ms) for n, ms in v.items()}
                      for k, v in (batch_profile or {}).items()}
        self.window, self.ratio_q = window, ratio_quantile
        self.ratios: Deque[float] = deque(maxlen=window)
        self.own: Dict[str, Deque[tuple]] = {}   # key -> (observation index, ms)
        self.count = 0
        self.own_min = own_min_samples
        self.backoff = 1.0
        self._cache: Dict[str, float] = {}    # predictions, cleared by every observation
        self._slowdown: Optional[float] = None
        self.backoff_step, self.backoff_max, self.backoff_decay = (backoff_step, backoff_max,
                                                                   backoff_decay)

    @property
    def slowdown(self) -> float:
        """Machine-wide factor from recent observations (1.0 before any)."""
        if self._slowdown is None:
            self._slowdown = 1.0 if not self.ratios else float(
                max(0.5, np.quantile(np.fromiter(self.ratios, float), self.ratio_q)))
        return self._slowdown

    def reset(self) -> None:
        """Forget every online observation (back to the profile prior)."""
        self.ratios.clear()
        self.own.clear()
        self.backoff = 1.0
        self._invalidate()

    def _invalidate(self) -> None:
        self._cache.clear()
        self._slowdown = None

    def predict(self, key: str) -> float:
        """Predicted upper-quantile latency of point ``key`` (ms)."""
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._predict(key)
        return hit

    def _predict(self, key: str) -> float:
        pred = self.upper[key] * self.slowdown
        own = [ms for t, ms in self.own.get(key, ()) if t > self.count - 2 * self.window]
        if len(own) >= self.own_min:  # only recent own samples: stale ones never refresh
            pred = max(pred, float(np.quantile(own, self.ratio_q)))
        return pred * self.backoff

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
        base = self.base[key] if n == 1 else self.batch.get(key, {}).get(n)
        if base:
            ref = self.base[key] if n == 1 else base
            self.ratios.append(measured_ms / ref)
        self.count += 1
        if n == 1:
            self.own.setdefault(key, deque(maxlen=self.window)).append((self.count, measured_ms))

    def on_outcome(self, missed: bool) -> None:
        """Back off after a miss; decay towards 1 after a hit."""
        self._invalidate()
        if missed:
            self.backoff = min(self.backoff_max, self.backoff * self.backoff_step)
        else:
            self.backoff = max(1.0, self.backoff * self.backoff_decay)
