"""One frame's whole step: the single rule the node, evaluate, the closed loop and the bench run.

Input: frames taken from their cameras' frame gates (:class:`Item`: the gate, what it gave,
the request, and how long the frame waited for the busy worker). For each frame, in order:
hold it back for the camera's next frame when the shrinking-tail rule says starting now only
shows an older frame at the same instant (the gate keeps it, counted as *tail* if replaced),
else process it; the processed frames run as one batch; every result goes out (``publish``)
before any probe; then, while ``may_probe()`` allows (no frame waiting), a difficulty probe
per result where one is due and fits the time until the camera's next frame. Output: one
:class:`Step` per item, in the items' order. Why each rule: ``doc/scheduler.md``.
"""

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, List, Optional, Sequence

from tts_perception.adaptive.pipeline import AdaptivePipeline, DecisionRecord, FrameRequest
from tts_perception.common.frame_gate import FrameGate, Taken


@dataclass
class Item:
    """A frame to step: its camera's gate, what the gate gave, the request to run, how long
    it waited for the busy worker (the only part of its age that waiting avoids), and the
    caller's own record of its camera (``source``, handed back untouched in its Step)."""

    gate: FrameGate
    taken: Taken
    req: FrameRequest
    waited_ms: float
    source: Any = None


@dataclass
class Step:
    """What became of an item: held back, or processed with its output, record and the
    compute of the probe that followed it (0 when none ran)."""

    item: Item
    held: bool
    output: Any = None         # the task's: a label image, Detections
    rec: Optional[DecisionRecord] = None
    probe_ms: float = 0.0


def run_step(pipe: AdaptivePipeline, items: Sequence[Item],
             publish: Optional[Callable[[Step], None]] = None,
             may_probe: Optional[Callable[[], bool]] = None,
             gate_lock: Optional[ContextManager] = None) -> List[Step]:
    """Hold or process every item, publish the results, then probe (see the module).
    ``gate_lock`` guards the gates where another thread offers frames to them. The
    pipeline's steps it sequences are private to the package: this is their one caller."""
    lock = gate_lock if gate_lock is not None else nullcontext()
    steps = []
    for it in items:
        held = not it.taken.held and pipe._wait_for_next(it.req, it.waited_ms)
        if held:
            with lock:
                it.gate.hold(it.taken, pipe._hold_until(it.taken.take_ms, it.taken.wait_ms,
                                                        it.gate.period_ms))
        steps.append(Step(it, held))
    run = [s for s in steps if not s.held]
    if not run:
        return steps
    for s, (output, rec) in zip(run, pipe._process_batch([s.item.req for s in run])):
        s.output, s.rec = output, rec
        if publish is not None:
            publish(s)
    for s in run:             # probes only after every result is out
        if may_probe is not None and not may_probe():
            break
        s.probe_ms = pipe._probe(s.rec.camera, pipe._probe_slack(s.rec, s.item.gate.period_ms))
    return steps
