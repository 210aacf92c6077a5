"""What evaluate produces: a policy's run over the held-out frames and the comparison of the
policies, as typed structures. ``evaluate.json`` holds each run's :meth:`PolicyRun.summary`
and the :class:`Comparison`'s :meth:`~Comparison.to_dict`; :meth:`PolicyRun.from_summary` and
:meth:`Comparison.from_dict` read them back (the benches' tables), refusing unknown fields.
Definitions of every figure: ``doc/calibration.md``.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

import numpy as np

# a run's fields that stay out of the JSON
PER_FRAME = ('records', 'streaming_per_frame', 'outputs')


@dataclass
class FrameRecord:
    """One processed frame of a run: when it started and finished on the camera's timeline
    (ms), the point, its compute (``measured_ms``; ``probe_ms`` of the probe after it), its
    age and total, the difficulty it was decided with, and its confusion against the truth."""

    frame: int
    start_ms: float
    done_ms: float
    point: str
    measured_ms: float
    probe_ms: float
    total_ms: float
    age_ms: float
    missed: bool
    complexity: float
    shortfall: Dict[str, float]
    stop_reason: str
    confusion: np.ndarray


@dataclass
class PolicyRun:
    """One policy through the simulated camera: counts, accuracy (of the processed frames)
    and streaming accuracy (of every frame, the newest finished output), compute, and per
    frame the records and the streaming accuracy; the two figures evaluate adds when it can:
    the profile's prediction of the streaming accuracy and the compute at median latencies."""

    policy: str
    anytime: bool
    frames: int
    processed: int
    dropped: int
    tail: int
    missed: int
    miss_rate: float
    late_or_dropped: float
    accuracy: float
    per_class_iou: List[Optional[float]]
    worst_class_iou: float
    streaming_accuracy: float
    streaming_per_class_iou: List[Optional[float]]
    mean_compute_ms: Optional[float]
    probes: int
    mean_probe_ms: float
    p95_total_ms: float
    camera_period_ms: Optional[float]
    points: Dict[str, int]
    records: List[FrameRecord] = field(default_factory=list)
    streaming_per_frame: List[float] = field(default_factory=list)
    predicted_streaming_accuracy: Optional[float] = None
    median_compute_ms: Optional[float] = None
    # the task's exact figures its evidence cannot add up (a detector's AP50 and mAP@[.5:.95];
    # streaming_*: of every frame's newest output)
    exact: Dict[str, Optional[float]] = field(default_factory=dict)
    # frame -> its output in scored form, kept only for a task with exact figures (what the
    # oracle's exact figures are computed from)
    outputs: Dict[int, Any] = field(default_factory=dict)

    def compute_ms(self, basis: str) -> Optional[float]:
        """Mean compute per processed frame: ``median`` (at the points' median latencies,
        the oracle's scale) or ``measured``."""
        return self.median_compute_ms if basis == 'median' else self.mean_compute_ms

    def summary(self) -> Dict[str, Any]:
        """The JSON form: every field but the per-frame ones."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_FRAME}

    @classmethod
    def from_summary(cls, d: Dict[str, Any]) -> 'PolicyRun':
        """A run read back from its summary (no per-frame data)."""
        return cls(**_known(cls, d, 'a policy run'))


@dataclass
class Share:
    """The share of the per-frame oracle's compute saving adaptive captures, or, where there
    is none, why not."""

    value: Optional[float] = None
    reason: str = ''


@dataclass
class Comparison:
    """The targets and the oracle's bound, computed from the runs (see
    :func:`~tts_perception.tools.evaluate.compare`). ``compute_basis``: ``median`` or
    ``measured``; the oracle fields are None without the oracle's frontier."""

    compute_basis: str
    adaptive_policy: str
    adaptive_accuracy: float
    adaptive_streaming_accuracy: float
    adaptive_mean_compute_ms: Optional[float]
    best_static_streaming: str
    best_static_streaming_accuracy: float
    streaming_target_met: bool
    best_static_meeting_deadline: Optional[str] = None
    best_static_accuracy: Optional[float] = None
    cheapest_static_reaching_it: Optional[str] = None
    cheapest_static_compute_ms: Optional[float] = None
    compute_ratio: Optional[float] = None
    accuracy_target_met: Optional[bool] = None
    oracle_compute_ms_at_best_static_accuracy: Optional[float] = None
    oracle_compute_ms_at_cheapest_static_accuracy: Optional[float] = None
    static_compute_ms_at_adaptive_accuracy: Optional[float] = None
    oracle_compute_ms_at_adaptive_accuracy: Optional[float] = None
    share_vs_best_static: Share = field(default_factory=Share)
    share_vs_cheapest_static: Share = field(default_factory=Share)
    share_at_its_accuracy: Share = field(default_factory=Share)
    # the task's exact figures of the oracle's cheapest choices reaching the best static
    # point's accuracy (a detector's AP50 and mAP@[.5:.95]; empty: none)
    oracle_exact_at_best_static_accuracy: Dict[str, Optional[float]] = field(
        default_factory=dict)
    rule_compute_ms_at_target: Optional[float] = None
    rule_share_vs_cheapest_static: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'Comparison':
        d = _known(cls, d, 'a comparison')
        for k in ('share_vs_best_static', 'share_vs_cheapest_static', 'share_at_its_accuracy'):
            if isinstance(d.get(k), dict):
                d[k] = Share(**_known(Share, d[k], k))
        return cls(**d)


def _known(cls, d: Dict[str, Any], what: str) -> Dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f'{what} has unknown fields {unknown}')
    return dict(d)
