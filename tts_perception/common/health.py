"""Whether a perception node is doing its work, from its counters alone (no ROS here).

Inputs: snapshots of one camera's counters taken at each diagnostics period, and the state of
the inference worker. Output: None when healthy, else the text of an ERROR that names what
grows instead of ``processed`` and what to do about it. Frames that arrive and are never
processed for a window (every one stamped in the future, stale, failing inference, refused)
are an error even though the node runs; so is a worker that died or has not finished a frame
for ``busy_bound_s``.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

HINTS = {
    'future': 'frames stamped in the future: the camera clock and this node\'s disagree '
              '(use_sim_time?)',
    'stale': 'frames older than the deadline on arrival: use_sim_time must match the camera '
             'clock, or the deadline is too short for the transport',
    'errors': 'inference fails on every frame (the log says why)',
    'bad': 'frames refused by their encoding or size (max_image_pixels)',
    'dropped': 'frames replaced by newer ones before the worker took them',
}


@dataclass(frozen=True)
class Counts:
    """One camera's counters at steady-clock time ``t`` (s)."""

    t: float
    received: int = 0
    processed: int = 0
    future: int = 0
    stale: int = 0
    errors: int = 0
    bad: int = 0
    dropped: int = 0


def starving(old: Counts, new: Counts) -> Optional[str]:
    """Frames arrived between the two snapshots and none was processed: what grew instead."""
    arrived = new.received - old.received
    if arrived <= 0 or new.processed > old.processed:
        return None
    grew = {k: getattr(new, k) - getattr(old, k) for k in HINTS}
    grew = {k: d for k, d in grew.items() if d > 0}
    what = '; '.join(f'{k} +{d}: {HINTS[k]}' for k, d in grew.items()) or \
        'no counter grew: the worker holds them'
    return f'{arrived} frames arrived in {new.t - old.t:.1f} s and none was processed ({what})'


def worker_problem(active: bool, alive: bool, busy_for_s: Optional[float],
                   busy_bound_s: float) -> Optional[str]:
    """The inference worker of an active node has died, or has been on one batch of frames
    for longer than ``busy_bound_s`` (``busy_for_s`` None: it is idle)."""
    if not active:
        return None
    if not alive:
        return 'the inference worker has died'
    if busy_for_s is not None and busy_for_s > busy_bound_s:
        return f'the inference worker has not finished a frame for {busy_for_s:.1f} s'
    return None


LOSS_WARN = 0.05          # share of frames lost in transport that raises a WARN
MISS_WARN = 0.05          # share of processed frames that missed the deadline: a WARN
OK, WARN, ERROR = 'OK', 'WARN', 'ERROR'


@dataclass(frozen=True)
class CameraState:
    """What one camera's health is judged from, at steady-clock time ``now`` (s):
    ``last_arrival`` (None: no frame yet), its frame ``period_s`` (None: not known), the
    counters at the last diagnostics periods (oldest first), the share of frames lost in
    transport lately, frames processed and missed."""

    now: float
    last_arrival: Optional[float]
    period_s: Optional[float]
    history: Tuple[Counts, ...]
    lost_share: float
    processed: int
    missed: int


def camera_level(cam: CameraState, loss_fix: str) -> Tuple[str, str]:
    """(OK | WARN | ERROR, message) of one camera: transport losses (``loss_fix`` says how to
    stop them), no processing though frames arrive, no input yet, silence, misses."""
    last = cam.last_arrival
    silent = cam.now - (last if last is not None else cam.now)
    quiet = last is not None and silent > max(1.0, 5 * (cam.period_s or 0.2))
    starved = starving(cam.history[0], cam.history[-1]) if len(cam.history) > 1 else None
    if cam.lost_share > LOSS_WARN:      # the fix is named even when nothing gets through
        msg = (f'{100 * cam.lost_share:.0f} % of the camera\'s frames lost before they '
               f'reached this node: {loss_fix}')
        return (ERROR if quiet or last is None or starved else WARN), msg
    if starved is not None:
        return ERROR, starved
    if last is None:
        return WARN, 'no input yet'
    if quiet:
        return ERROR, f'no input for {silent:.1f} s'
    level = WARN if cam.processed and cam.missed / cam.processed > MISS_WARN else OK
    return level, f'{cam.processed} frames, {cam.missed} misses'
