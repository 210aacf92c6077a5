"""The frame gate: which camera frame gets processed, and how old it is then (no ROS here).

One rule, used by the perception node and by every replay of recorded arrivals (evaluate, the
closed loop, the benchmarks): a frame stamped beyond ``future_tolerance_ms`` is dropped
(*future*); one older than its deadline on arrival or when taken is dropped (*stale*); one
frame waits per camera and a newer arrival replaces it (*dropped*); a taken frame may be held
back for the camera's next (the shrinking tail) and is replaced by it (*tail*) or taken when
its hold ends; the camera's frame period, measured from the arrivals, goes to the scheduler.
Times are milliseconds on one steady clock the caller chooses (the node: ``time.monotonic``;
a replay: the recorded arrival times). :func:`replay` drives a gate from recorded arrivals;
with the worker's real take times (:func:`replay_schedule`) it reproduces the node's
decisions. Why: doc/scheduler.md.
"""

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Iterable, List, Optional, Sequence, Tuple

from tts_perception.common.camera_stream import FramePeriod

WAITING, FUTURE, STALE = 'waiting', 'future', 'stale'
LOG_EVENTS = 1024          # the gate keeps its last events (what a replay test compares)


@dataclass
class Arrival:
    """A frame as it reaches the gate: ``transport_ms`` = receiver clock at arrival minus the
    frame's stamp (negative: stamped in the future)."""

    item: Any
    stamp_ns: int
    arrival_ms: float
    transport_ms: float
    held_until_ms: Optional[float] = None    # held back by the worker: not takeable before


@dataclass
class Taken:
    """A frame the worker takes: its age when processing starts = transport + wait."""

    item: Any
    stamp_ns: int
    arrival_ms: float
    transport_ms: float
    wait_ms: float
    take_ms: float
    held: bool = False       # it was held back once already (it is never held twice)

    @property
    def age_ms(self) -> float:
        """Age when processing starts."""
        return self.transport_ms + self.wait_ms


@dataclass
class GateCounts:
    """What the gate did with the frames it was offered."""

    offered: int = 0
    taken: int = 0
    dropped: int = 0        # replaced by a newer frame before the worker was free
    stale: int = 0          # older than the deadline on arrival or when the worker was free
    future: int = 0         # stamped too far in the future
    tail: int = 0           # held back for the next frame (shrinking tail), which replaced it


class FrameGate:
    """Admission for one camera: newest wins, stale and future frames dropped and counted."""

    def __init__(self, deadline_ms: float, future_tolerance_ms: float = 500.0,
                 log_events: int = LOG_EVENTS):
        self.deadline_ms = float(deadline_ms)
        self.future_tolerance_ms = float(future_tolerance_ms)
        self.period = FramePeriod()
        self.counts = GateCounts()
        self.waiting: Optional[Arrival] = None
        # (event, stamp_ns, t_ms, transport or wait ms): offer/future/stale/drop/take/stale_take
        self.log: Deque[Tuple[str, int, float, float]] = deque(maxlen=log_events)

    def offer(self, item: Any, stamp_ns: int, arrival_ms: float, transport_ms: float) -> str:
        """A frame arrived: WAITING (it replaces any waiting one), FUTURE or STALE (dropped)."""
        c = self.counts
        c.offered += 1
        self.period.arrived(arrival_ms / 1e3)
        self.log.append(('offer', int(stamp_ns), arrival_ms, transport_ms))
        if transport_ms < -self.future_tolerance_ms:
            c.future += 1
            self.log.append(('future', int(stamp_ns), arrival_ms, transport_ms))
            return FUTURE
        transport_ms = max(0.0, transport_ms)
        if transport_ms > self.deadline_ms:
            c.stale += 1
            self.log.append(('stale', int(stamp_ns), arrival_ms, transport_ms))
            return STALE
        if self.waiting is not None and self.waiting.held_until_ms is not None:
            c.tail += 1
            self.log.append(('tail', self.waiting.stamp_ns, arrival_ms, 0.0))
        elif self.waiting is not None:
            c.dropped += 1
            self.log.append(('drop', self.waiting.stamp_ns, arrival_ms, 0.0))
        self.waiting = Arrival(item, int(stamp_ns), arrival_ms, transport_ms)
        return WAITING

    def take(self, now_ms: float) -> Optional[Taken]:
        """The worker is free at ``now_ms``: the waiting frame, or None (nothing waits, the
        waiting frame is held until later (:attr:`held_until_ms`), or it went stale while
        waiting: counted)."""
        w = self.waiting
        if w is None or (w.held_until_ms is not None and now_ms < w.held_until_ms):
            return None
        self.waiting = None
        wait = max(0.0, now_ms - w.arrival_ms)
        if w.transport_ms + wait > self.deadline_ms:
            self.counts.stale += 1
            self.log.append(('stale_take', w.stamp_ns, now_ms, wait))
            return None
        self.counts.taken += 1
        self.log.append(('take', w.stamp_ns, now_ms, wait))
        return Taken(w.item, w.stamp_ns, w.arrival_ms, w.transport_ms, wait, now_ms,
                     w.held_until_ms is not None)

    def hold(self, taken: Taken, until_ms: float) -> None:
        """Put a taken frame back, not takeable before ``until_ms`` (the next frame is due
        before then and replaces it, counted as *tail*). A newer frame already waiting wins."""
        if taken.held:
            raise ValueError('a frame is held back at most once')
        self.counts.taken -= 1
        self.log.append(('hold', taken.stamp_ns, taken.take_ms, until_ms))
        if self.waiting is not None:          # (a frame arrived meanwhile: it replaces this one)
            self.counts.tail += 1
            self.log.append(('tail', taken.stamp_ns, taken.take_ms, 0.0))
            return
        self.waiting = Arrival(taken.item, taken.stamp_ns, taken.arrival_ms,
                               taken.transport_ms, until_ms)

    @property
    def held_until_ms(self) -> Optional[float]:
        """When the held-back waiting frame becomes takeable (None: none is held)."""
        return None if self.waiting is None else self.waiting.held_until_ms

    @property
    def period_ms(self) -> Optional[float]:
        """The camera's frame period measured from the arrivals (None until known)."""
        p = self.period.period_s
        return None if p is None else 1e3 * p

    def restart_stream(self) -> None:
        """The camera's time jumped (a bag looped): forget its period, keep the counts."""
        self.period = FramePeriod()


def arrivals_from(stamps_ns: Sequence[int], arrival_ns: Sequence[int], items: Iterable[Any],
                  rate: float = 1.0) -> List[Arrival]:
    """Arrivals of recorded frames: times relative to the first arrival (ms), played at
    ``rate`` x real time; transport = recorded arrival minus stamp."""
    t0 = arrival_ns[0] if len(arrival_ns) else 0
    return [Arrival(item, int(s), (int(a) - int(t0)) / 1e6 / rate, (int(a) - int(s)) / 1e6)
            for s, a, item in zip(stamps_ns, arrival_ns, items)]


def replay(gate: FrameGate, arrivals: Sequence[Arrival],
           process: Callable[[Taken], float]) -> float:
    """Play ``arrivals`` (in arrival order) through ``gate`` with one worker: whenever it is
    free it takes the waiting frame; ``process(taken)`` runs it (or holds it back with
    :meth:`FrameGate.hold`) and returns how long the worker was busy (ms). An idle worker takes
    a frame the instant it arrives or its hold ends. Returns the time the worker was last
    free."""
    t, i, n = float('-inf'), 0, len(arrivals)
    while True:
        i = _offer_until(gate, arrivals, i, t)
        taken = gate.take(t) if gate.waiting is not None else None
        if taken is None:
            nxt = arrivals[i].arrival_ms if i < n else float('inf')
            held = gate.held_until_ms
            if held is not None:
                t = max(t, min(nxt, held))
                continue
            if i >= n:
                return t
            t = nxt
            continue
        t += max(0.0, float(process(taken)))


def replay_schedule(gate: FrameGate, arrivals: Sequence[Arrival],
                    takes_ms: Sequence[float],
                    holds: Optional[Sequence[Optional[float]]] = None
                    ) -> List[Optional[Taken]]:
    """Play ``arrivals`` through ``gate`` with a worker that looks for a frame at the given
    instants (a node's recorded take times): what it takes at each (None: nothing usable).
    ``holds[k]``: the worker held the frame of take k back until then (None: it ran it).
    Arrivals after the last take are offered too (they may wait, or be dropped)."""
    out, i = [], 0
    for k, t in enumerate(takes_ms):
        i = _offer_until(gate, arrivals, i, t)
        got = gate.take(t)
        out.append(got)
        if got is not None and holds is not None and holds[k] is not None:
            gate.hold(got, holds[k])
    _offer_until(gate, arrivals, i, float('inf'))
    return out


def _offer_until(gate: FrameGate, arrivals: Sequence[Arrival], i: int, t: float) -> int:
    """Offer ``arrivals[i:]`` that arrived by ``t``; returns the index of the first later one."""
    while i < len(arrivals) and arrivals[i].arrival_ms <= t:
        a = arrivals[i]
        gate.offer(a.item, a.stamp_ns, a.arrival_ms, a.transport_ms)
        i += 1
    return i
