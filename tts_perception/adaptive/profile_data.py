"""The profile: what calibrate measured of a model on one backend and device, as one typed,
versioned structure with one loader that validates it.

    prof = load_profile('models/tts_segnet/profile_cpu.json')   # -> Profile (or ProfileError)
    prof.latency_ms['320x240/d3/int8'].p95
    prof.save(path)

Written by calibrate (and the bundled model's ``bundled_profile``), read by the pipeline,
evaluate, the closed loop and the benchmarks. A version 4 file (before the ``change`` signal)
is read with that signal off and weighing nothing (:func:`_from_version_4`); a file of any
other version is refused with the command that makes a new one; every field is checked
against its type, so a malformed inner section names its path
(``accuracy.miou['160x120/d1/fp32'][2]``) instead of failing later.
"""

from dataclasses import asdict, dataclass, field, fields, is_dataclass, MISSING
import json
import math
from pathlib import Path
import typing
from typing import Any, Dict, List, Optional, Union

from tts_perception.adaptive.difficulty import FEATURES, RESULT_FEATURES, SignalGate

PROFILE_VERSION = 5
REMAKE = ('`python -m tts_perception.calibrate BAG --model DIR` (a model on your own bag) or '
          '`make profile` (the bundled model; `python -m tts_perception.tools.bundled_profile '
          '--config config/pipeline_cuda.yaml` on a GPU)')


class ProfileError(RuntimeError):
    """A profile that is missing, corrupt, of another version or made for another model."""


@dataclass
class PointLatency:
    """One point's measured latency (ms) over ``n`` runs."""

    p50: float
    p95: float
    p99: float
    mean: float
    n: int


@dataclass
class Recording:
    """One of several recordings a profile was calibrated on: its first ``fit_frames`` frames
    were fitted on, the rest (from ``eval_from_stamp_ns``) held out."""

    bag: str
    image_topic: str
    frames: int                                 # frames read from the bag
    fit_frames: int
    eval_from_stamp_ns: Optional[int] = None


@dataclass
class DataInfo:
    """Which frames the profile was measured on and against what: ``fit_frames`` and
    ``eval_frames`` in all; ``eval_from_stamp_ns``, ``bag`` and the fields after it of the
    (first) recording; ``recordings``: each of several."""

    reference: str                              # 'labels' | 'golden point'
    fit_frames: int
    eval_frames: int
    eval_from_stamp_ns: Optional[int] = None    # first held-out frame's stamp
    bag: Optional[str] = None
    image_topic: Optional[str] = None
    labels_topic: Optional[str] = None
    frames: Optional[int] = None                # frames read from the bag
    first_stamp_ns: Optional[int] = None
    simulator_seeds: Optional[List[int]] = None
    frames_per_seed: Optional[int] = None
    recordings: List[Recording] = field(default_factory=list)

    def recording(self, bag: str) -> Optional[Recording]:
        """The recording of ``bag`` (a resolved path) the profile was calibrated on, None for
        another bag."""
        if self.recordings:
            return next((r for r in self.recordings if r.bag == bag), None)
        if self.bag != bag or self.image_topic is None:
            return None
        return Recording(self.bag, self.image_topic, self.frames or 0, self.fit_frames,
                         self.eval_from_stamp_ns)


@dataclass
class AccuracyProfile:
    """Accuracy per point: per complexity bin (shrunk by the monitor's held-out trust and as
    measured), overall, per class (None: the reference never shows that class)."""

    metric: str
    bin_edges: List[float]
    miou: Dict[str, List[float]]
    miou_unshrunk: Dict[str, List[float]]
    overall: Dict[str, float]
    per_class_iou: Dict[str, List[Optional[float]]]
    bin_counts: List[int]
    # accuracy per ms of profiled median latency the scheduler trades (0: none), and the accuracy
    # budget below the best static point calibrate found it for
    compute_price: float = 0.0
    accuracy_budget: Optional[float] = None
    # point -> the task's exact figures on the same frames as ``overall`` (a detector's COCO
    # AP50 and mAP@[.5:.95]; none for a segmenter, whose mIoU is exact)
    exact: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)


@dataclass
class ComplexityProfile:
    """The complexity monitor's fitted parameters, which difficulty signals are on (and what
    each gained out of fold) and how well the estimate predicted the loss: on the frames it
    was fitted on, out of fold (``validation_correlation``) and on the held-out frames."""

    features: List[str]
    mean: List[float]
    std: List[float]
    weights: List[float]
    bias: float
    cdf_knots: List[float]
    signals_on: List[str] = field(default_factory=list)
    signals: Dict[str, SignalGate] = field(default_factory=dict)
    # point -> [offset, scale] per result feature, onto the fitted point's scale
    result_map: Dict[str, List[List[float]]] = field(default_factory=dict)
    # point -> [offset, weight per feature]: its shortfall on a frame relative to its mean
    point_models: Dict[str, List[float]] = field(default_factory=dict)
    # per feature [low, high] of the fit frames, which estimates read every frame within
    feature_range: List[List[float]] = field(default_factory=list)
    probe_every: int = 0                 # the probe cadence the probe signal was measured at
    fit_correlation: Optional[float] = None
    validation_correlation: Optional[float] = None
    eval_correlation: Optional[float] = None
    table_trust: float = 0.0
    # the point models' within-point correlation of predicted and actual shortfall, out of
    # fold and on the held-out frames
    point_validation_correlation: Optional[float] = None
    point_eval_correlation: Optional[float] = None


@dataclass
class ClassFloor:
    """The class floor calibrate applied and the points below it."""

    floor: float
    blind: Dict[str, str] = field(default_factory=dict)


@dataclass
class Profile:
    """A model's measured operating points on one backend and device."""

    created: str
    model: str
    model_hash: str
    classes: List[str]
    backend: str
    device: str
    machine: Dict[str, Any]
    data: DataInfo
    frames: int
    points: List[str]
    golden: str
    latency_ms: Dict[str, PointLatency]
    accuracy: AccuracyProfile
    complexity: ComplexityProfile
    batch_latency_ms: Dict[str, Dict[str, float]] = field(default_factory=dict)
    precision_agreement: Dict[str, Dict[str, float]] = field(default_factory=dict)
    precision_worst_class_iou: Dict[str, Dict[str, float]] = field(default_factory=dict)
    int8_agreement_bound: float = 0.5
    unusable: Dict[str, str] = field(default_factory=dict)     # point -> why never chosen
    class_floor: Optional[ClassFloor] = None
    # point -> accuracy of its output on a frame against the frames 0..K camera periods later
    staleness: Dict[str, List[float]] = field(default_factory=dict)
    staleness_period_ms: Optional[float] = None       # the period of those frames
    version: int = PROFILE_VERSION

    @classmethod
    def from_dict(cls, d: Any, source: str = 'profile') -> 'Profile':
        """Validate and build; raises ProfileError naming the file, the field and the fix."""
        if not isinstance(d, dict):
            raise ProfileError(f'{source} is not a profile (a JSON object), got '
                               f'{type(d).__name__}')
        v = d.get('version', 1)
        if v == 4:
            d, v = _from_version_4(d), PROFILE_VERSION
        if v != PROFILE_VERSION:
            raise ProfileError(f'{source} is a version {v} profile; this package reads version '
                               f'{PROFILE_VERSION}: make a new one with {REMAKE}')
        try:
            prof = _build(cls, d, '')
            _check_ranges(prof)
            return prof
        except _Bad as exc:
            raise ProfileError(f'{source}: {exc}; make a new one with {REMAKE}') from None

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able form (what :meth:`save` writes)."""
        return asdict(self)

    def save(self, path: Union[str, Path]) -> Path:
        """Write as JSON (the folder is made)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=1))
        return p


def _from_version_4(d: Dict[str, Any]) -> Dict[str, Any]:
    """A version 4 profile as version 5: the ``prev_change`` feature added to the complexity
    fit with weight 0 (its group off: version 4 never measured it). A file that does not have
    version 4's features is left for the checks to refuse."""
    d = json.loads(json.dumps(d))
    c = d.get('complexity')
    at = FEATURES.index('prev_change')
    old = [f for f in FEATURES if f != 'prev_change']
    if not isinstance(c, dict) or c.get('features') != old:
        return d
    for key, value in (('features', 'prev_change'), ('mean', 0.0), ('std', 1.0),
                       ('weights', 0.0), ('feature_range', [0.0, 0.0])):
        if isinstance(c.get(key), list) and (c[key] or key != 'feature_range'):
            c[key].insert(at, value)
    for m in (c.get('result_map') or {}).values():
        if isinstance(m, list):
            m.insert(RESULT_FEATURES.index('prev_change'), [0.0, 1.0])
    for m in (c.get('point_models') or {}).values():
        if isinstance(m, list):
            m.insert(1 + at, 0.0)
    if isinstance(c.get('signals'), dict):
        c['signals']['change'] = {'on': False, 'note': 'not measured: a version 4 profile, '
                                  'made before the change signal'}
    d['version'] = PROFILE_VERSION
    return d


def load_profile(path: Union[str, Path]) -> Profile:
    """Read and validate a profile JSON file."""
    p = Path(path)
    if not p.exists():
        raise ProfileError(f'profile {p} does not exist; create it with {REMAKE}')
    if not p.is_file():
        raise ProfileError(f'profile {p} is not a file (profile_path must name the JSON file '
                           f'calibrate wrote)')
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f'profile {p} is not valid JSON: {exc}') from exc
    return Profile.from_dict(d, f'profile {p}')


class _Bad(ValueError):
    pass


def _in_range(where: str, values: Any, lo: float, hi: float) -> None:
    """Every number in ``values`` (a number, list or dict, nested; None skipped) within
    [lo, hi], else :class:`_Bad` naming the first one's path."""
    if isinstance(values, dict):
        for k, v in values.items():
            _in_range(f'{where}[{k!r}]', v, lo, hi)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            _in_range(f'{where}[{i}]', v, lo, hi)
    elif values is not None and not lo <= values <= hi:
        raise _Bad(f'{where} must be in [{lo}, {hi}], got {values!r}')


def _check_ranges(p: 'Profile') -> None:
    """The values with a physical range: latencies and counts >= 0, accuracies in [0, 1]."""
    inf = float('inf')
    for key, lat in p.latency_ms.items():
        for name in ('p50', 'p95', 'p99', 'mean'):
            _in_range(f'latency_ms[{key!r}].{name}', getattr(lat, name), 0.0, inf)
        _in_range(f'latency_ms[{key!r}].n', lat.n, 1, inf)
    _in_range('batch_latency_ms', p.batch_latency_ms, 0.0, inf)
    acc = p.accuracy
    for name in ('miou', 'miou_unshrunk', 'overall', 'per_class_iou', 'exact'):
        _in_range(f'accuracy.{name}', getattr(acc, name), 0.0, 1.0)
    _in_range('accuracy.bin_counts', acc.bin_counts, 0, inf)
    _in_range('accuracy.compute_price', acc.compute_price, 0.0, inf)
    _in_range('staleness', p.staleness, 0.0, 1.0)
    _in_range('frames', p.frames, 0, inf)
    if p.class_floor is not None:
        _in_range('class_floor.floor', p.class_floor.floor, 0.0, 1.0)


def _build(tp: Any, v: Any, where: str) -> Any:
    """``v`` checked against the type ``tp`` (dataclasses, Optional, List, Dict, scalars)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return v
    if is_dataclass(tp):
        if not isinstance(v, dict):
            raise _Bad(f'{where or "the file"} must be an object, got {type(v).__name__}')
        hints = typing.get_type_hints(tp)
        known = {f.name for f in fields(tp)}
        extra = sorted(set(v) - known)
        if extra:
            raise _Bad(f'{where or "the file"} has unknown fields {extra}')
        kw = {}
        for f in fields(tp):
            sub = f'{where}.{f.name}' if where else f.name
            if f.name in v:
                kw[f.name] = _build(hints[f.name], v[f.name], sub)
            elif f.default is MISSING and f.default_factory is MISSING:
                raise _Bad(f'{sub} is missing')
        return tp(**kw)
    if origin is Union:                                   # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if v is None else _build(args[0], v, where)
    if origin is list:
        if not isinstance(v, list):
            raise _Bad(f'{where} must be a list, got {type(v).__name__}')
        (a,) = typing.get_args(tp)
        return [_build(a, x, f'{where}[{i}]') for i, x in enumerate(v)]
    if origin is dict:
        if not isinstance(v, dict):
            raise _Bad(f'{where} must be an object, got {type(v).__name__}')
        _, a = typing.get_args(tp)
        return {str(k): _build(a, x, f'{where}[{k!r}]') for k, x in v.items()}
    if tp is bool:
        if not isinstance(v, bool):
            raise _Bad(f'{where} must be true or false, got {v!r}')
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Bad(f'{where} must be a number, got {v!r}')
        if not math.isfinite(v):
            raise _Bad(f'{where} must be a finite number, got {v!r}')
        return float(v)
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f'{where} must be an integer, got {v!r}')
        return v
    if tp is str:
        if not isinstance(v, str):
            raise _Bad(f'{where} must be a string, got {v!r}')
        return v
    raise _Bad(f'{where}: unsupported type {tp}')          # pragma: no cover - a bug here
