"""What a camera's stream tells by itself: its frame period, and the frames lost before they
reached the node (no ROS here; the perception node feeds arrivals and stamps)."""

from collections import deque
from typing import Deque, Optional, Tuple

import numpy as np


class FramePeriod:
    """Running estimate of a camera's frame period from arrival times (steady clock, s)."""

    def __init__(self, alpha: float = 0.1):
        self.alpha, self.last, self.period_s = alpha, None, None

    def arrived(self, t: float) -> None:
        """Record an arrival; gaps over 1 s (camera paused) do not count."""
        if self.last is not None:
            gap = t - self.last
            if 0.0 < gap < 1.0:
                self.period_s = gap if self.period_s is None else \
                    (1 - self.alpha) * self.period_s + self.alpha * gap
        self.last = t


SHORT = 0.4     # a stamp gap under this many periods is a late frame's, not the camera's


class TransportLoss:
    """Frames lost between the camera and the node, from two lower bounds of the same count.

    - The camera's own stamps: a camera stamps its frames at a steady period, so a gap of k
      periods between two frames that arrived means k - 1 frames in between never did. The
      period is a low quantile of the recent stamp gaps: it holds while at least a tenth of
      the gaps are between consecutive frames (a stream that loses exactly every other frame
      for ever looks like a camera at half the rate). A driver that stamps a frame when it
      publishes it and falls behind sends the next one right after: a long gap and then a
      short one. A gap under ``SHORT`` periods stays out of the estimate, and one under half
      a period takes back the frame that the gap before it counted. The first ``warmup`` gaps
      wait until the estimate exists and are then counted with it; a gap longer than
      ``max_gap_s`` (the camera paused) counts nothing. Blind when no frame arrives at all.
    - What the middleware reports (:meth:`reported`: the subscription's message-lost event,
      from the writer's sequence numbers). Blind to frames of a writer it never heard of.

    ``lost`` is the larger of the two. Frames the node receives and then drops (newest wins,
    stale) are not lost here.
    """

    def __init__(self, window: int = 100, warmup: int = 10, max_gap_s: float = 2.0,
                 recent_s: float = 10.0, quantile: float = 10.0):
        self.gaps: Deque[float] = deque(maxlen=window)
        self._period: Optional[float] = None     # period_s, set where a gap is added
        self.warmup, self.max_gap_s, self.recent_s, self.quantile = (
            warmup, max_gap_s, recent_s, quantile)
        self.last_stamp_ns: Optional[int] = None
        self.from_stamps = 0                 # since start (or the last reset)
        self.from_middleware = 0
        self.received = 0
        self._held: Deque[Tuple[float, float]] = deque(maxlen=warmup)   # (arrival s, gap s)
        self._arrivals: Deque[Tuple[float, int]] = deque()   # (arrival s, lost before it)
        self._reports: Deque[Tuple[float, int]] = deque()    # (report s, frames lost)
        self._counted_before = 0         # what the gap before the last arrival counted

    @property
    def lost(self) -> int:
        """Frames lost in transport: the larger of the two lower bounds."""
        return max(self.from_stamps, self.from_middleware)

    @property
    def period_s(self) -> Optional[float]:
        """The camera's frame period from its stamps (None until ``warmup`` gaps)."""
        return self._period

    def arrived(self, stamp_ns: int, now_s: float) -> None:
        """A frame stamped ``stamp_ns`` arrived at ``now_s`` (steady clock)."""
        self.received += 1
        self._forget(now_s)
        last = self.last_stamp_ns
        if last is not None and stamp_ns <= last:    # repeated or out of order: no gap
            self._arrivals.append((now_s, 0))
            return
        self.last_stamp_ns = stamp_ns
        if last is None:
            self._arrivals.append((now_s, 0))
            return
        gap = (stamp_ns - last) / 1e9
        period = self.period_s
        # a gap under SHORT periods is a late frame's (stamped when it was published, right
        # behind the one before), not the camera's: it stays out of the estimate
        if gap <= self.max_gap_s and (period is None or gap >= SHORT * period):
            self.gaps.append(gap)
            if len(self.gaps) >= self.warmup:
                self._period = float(np.percentile(self.gaps, self.quantile))
            period = self._period
        if period is None:
            if gap > self.max_gap_s:      # counts nothing: held, it would pile up for ever
                self._arrivals.append((now_s, 0))
            else:
                self._held.append((now_s, gap))
            return
        for t, g in [*self._held, (now_s, gap)]:
            self._count(t, g, period)
        self._held.clear()

    def reported(self, n: int, now_s: float) -> None:
        """The middleware reports ``n`` more frames lost (message-lost event)."""
        if n > 0:
            self.from_middleware += n
            self._reports.append((now_s, n))
            self._forget(now_s)

    def _count(self, t: float, gap: float, period: float) -> None:
        k = 0 if gap > self.max_gap_s or period <= 0 else int(round(gap / period)) - 1
        if k < 0:       # under half a period: the frame before was late, not one lost
            k = -1 if self._counted_before > 0 else 0
        self._counted_before = max(0, k)
        self.from_stamps += k
        self._arrivals.append((t, k))

    def _forget(self, now_s: float) -> None:
        """Drop what is older than ``recent_s``: memory stays bounded by the camera's rate."""
        for q in (self._arrivals, self._reports):
            while q and q[0][0] < now_s - self.recent_s:
                q.popleft()

    def recent_fraction(self, now_s: float) -> float:
        """Share of the camera's frames lost in transport over the last ``recent_s``."""
        self._forget(now_s)
        lost = max(0, sum(k for _, k in self._arrivals), sum(n for _, n in self._reports))
        total = lost + len(self._arrivals)
        return lost / total if total else 0.0
