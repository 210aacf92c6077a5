"""AdaptivePipeline: per-frame test-time scaling, usable from a script without ROS.

    pipe = AdaptivePipeline.from_yaml('config/pipeline.yaml')
    labels, record = pipe.process(rgb, stamp_ns=..., now_ns=...)

Per frame: complexity score -> scheduler decision under the remaining budget (deadline - age of
the frame when processing starts - safety margin) -> staged inference (optionally *anytime*:
stop at an earlier exit when the next stage would miss or would not change the answer) ->
labels at the input resolution + one :class:`DecisionRecord`. After the result is out the
caller may let the pipeline probe (:meth:`AdaptivePipeline.probe`: where the profile has the
probe signal on, every ``probe_every`` frames, within the slack before the next frame). The
model, backend and latency model are shared; each camera has its own complexity and scheduler
state.
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from tts_perception.adaptive.complexity import ComplexityMonitor, ComplexityParams
from tts_perception.adaptive.difficulty import probe_pair
from tts_perception.adaptive.latency_model import LatencyModel
from tts_perception.adaptive.profile_data import load_profile, Profile, ProfileError
from tts_perception.adaptive.scheduler import (AccuracyTable, Decision, parse_policy, Scheduler,
                                               SchedulerConfig, seeing_points, StreamingTable,
                                               tail_wait, worst_class_iou)
from tts_perception.common.settings import check_value, setting, settings_of
from tts_perception.inference.backends import BACKENDS, make_backend, resolve_backend_name
from tts_perception.inference.model_desc import (load_model_description, ModelDescription,
                                                 ModelError)
from tts_perception.inference.points import make_points, OperatingPoint, parse_resolution
from tts_perception.tasks import Task, task_for


AUTO = 'auto'          # resolutions / precisions: whatever the profile measured
ALL_DEPTHS = 0         # depths: every depth the profile measured


class ConfigError(ValueError):
    """A pipeline configuration that cannot run; ``problems`` lists every reason found."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__('; '.join(self.problems) if len(self.problems) == 1 else
                         f'{len(self.problems)} configuration problems:\n' +
                         '\n'.join(f'  - {x}' for x in self.problems))


@dataclass
class PipelineConfig:
    """Everything the pipeline needs. The field names are the keys of ``config/pipeline.yaml``
    and the perception node's parameters; the scheduler's knobs are embedded (flat in YAML
    and parameters)."""

    model_path: str = setting('models/tts_segnet', 'Model directory holding model.yaml')
    profile_path: str = setting('', 'Profile table (JSON) made by the calibrate or profile '
                                'command; empty = profile_cpu.json in the model directory '
                                '(profile_cuda.json on a CUDA backend)')
    backend: str = setting('auto', 'Inference engine; auto takes the best one available '
                           '(TensorRT, then torch on CUDA, then ONNX Runtime)',
                           choices=BACKENDS)
    resolutions: List[str] = setting([AUTO], 'Allowed input resolutions WxH; auto = every '
                                     'resolution the profile measured for this model')
    depths: List[int] = setting([ALL_DEPTHS], 'Allowed exit depths; 0 = every depth the '
                                'profile measured')
    precisions: List[str] = setting([AUTO], 'Allowed precisions; auto = every precision the '
                                    'profile measured that the backend runs')
    deadline_ms: float = setting(40.0, 'Per-frame deadline (ms), from capture to result',
                                 1.0, 10000.0)
    latency_quantile: float = setting(0.95, 'Latency quantile of the profile used as prior',
                                      choices=(0.5, 0.95, 0.99))
    anytime: bool = setting(False, 'Stop early at an exit when the next stage would miss or '
                            'the exit is confident')
    anytime_confidence: float = setting(0.97, 'Exit confidence at which anytime mode stops',
                                        0.0, 1.0)
    threads: int = setting(0, 'ONNX Runtime intra-op threads (0 = default)', 0, 64)
    probe_every: int = setting(4, 'Probe every N processed frames (run the cheapest usable and '
                               'the reference point on the same frame, when it leaves slack '
                               'before the next one): only where the profile has the probe '
                               'signal on; 0 = never', 0, 10000)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'PipelineConfig':
        """Build from flat keys (scheduler keys included), refusing unknown ones and values
        outside their ranges."""
        sched_keys = {f.name for f in fields(SchedulerConfig)}
        own_keys = {f.name for f in fields(cls)} - {'scheduler'}
        problems = []
        unknown = sorted(set(d) - own_keys - sched_keys)
        if unknown:
            problems.append(f'unknown pipeline config keys {unknown}; known: '
                            f'{sorted(own_keys | sched_keys)}')
        for s in settings_of(cls):
            if s.name in d:
                try:
                    check_value(s, d[s.name])
                except ValueError as exc:
                    problems.append(str(exc))
        for r in d.get('resolutions', ()):
            if r != AUTO:
                try:
                    parse_resolution(r)
                except ValueError as exc:
                    problems.append(str(exc))
        if problems:
            raise ConfigError(problems)
        return cls(**{k: v for k, v in d.items() if k in own_keys},
                   scheduler=SchedulerConfig(**{k: v for k, v in d.items() if k in sched_keys}))

    def to_dict(self) -> Dict[str, Any]:
        """Flat keys, as in the YAML file."""
        d = {k: v for k, v in asdict(self).items() if k != 'scheduler'}
        d.update(asdict(self.scheduler))
        return d


@dataclass
class DecisionRecord:
    """One frame's decision and outcome."""

    camera: str
    stamp_ns: int
    point: str
    width: int
    height: int
    depth: int
    exit_depth: int
    precision: str
    reason: str
    stop_reason: str
    complexity: float
    predicted_ms: float
    measured_ms: float
    overhead_ms: float
    total_ms: float
    age_ms: float
    transport_ms: float
    wait_ms: float
    deadline_ms: float
    budget_ms: float
    expect_miss: bool
    missed: bool
    predicted_accuracy: float
    confidence: float
    batch_size: int = 1

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict (JSON-able)."""
        return asdict(self)


@dataclass
class FrameRequest:
    """One frame to segment.

    ``transport_ms``: age of the frame when it reached the caller (capture -> arrival);
    ``age_ms``: its age when processing starts (transport + time it waited in the caller;
    at least ``transport_ms``); ``shared_deadlines_ms``: the deadlines of the other cameras
    the same worker serves (a frame's budget is then at most half the tightest of them);
    ``period_ms``: the camera's frame period (None: not known), for the streaming objective.
    """

    rgb: np.ndarray
    camera: str = 'default'
    deadline_ms: Optional[float] = None
    stamp_ns: Optional[int] = None
    transport_ms: float = 0.0
    age_ms: Optional[float] = None
    shared_deadlines_ms: Tuple[float, ...] = ()
    period_ms: Optional[float] = None

    def __post_init__(self) -> None:
        if self.age_ms is None:
            self.age_ms = self.transport_ms


@dataclass
class _InFlight:
    """A request being processed: its deadline, complexity score and camera state."""

    req: FrameRequest
    deadline: float
    complexity: float
    state: '_CameraState'


@dataclass
class _Timing:
    """perf_counter instants: the frame's turn began, inference started, inference ended."""

    t_frame: float
    t1: float
    t2: float


def _resolve(path: str, base: Optional[Path]) -> Path:
    p = Path(path)
    if p.is_absolute() or base is None or p.exists():
        return p
    return base / p


def select_points(config: PipelineConfig, profile: Profile, model: ModelDescription,
                  supported: Sequence[str]
                  ) -> Tuple[List[OperatingPoint], Dict[str, str], List[str]]:
    """The operating points a configuration allows: (points, excluded point -> reason,
    problems). ``auto`` lists (and depth 0) take what the profile measured; points the
    profile marks unusable (an int8 version that loses a class) and precisions the backend
    cannot run are excluded with their reason; everything else that does not fit is a
    problem."""
    problems: List[str] = []
    measured = [OperatingPoint.parse(k) for k in profile.latency_ms]
    if AUTO in config.resolutions:
        res = sorted({p.resolution for p in measured}, key=lambda r: r[0] * r[1])
    else:
        res = []
        for r in config.resolutions:
            wh = parse_resolution(r)
            try:
                model.check_resolution(wh)
                res.append(wh)
            except ModelError as exc:
                problems.append(str(exc))
    if ALL_DEPTHS in config.depths:
        depths = sorted({p.depth for p in measured})
    else:
        depths = list(config.depths)
        bad = [d for d in depths if d not in model.depths]
        if bad:
            problems.append(f'depths {bad} not in model {model.name} depths {model.depths}')
    if AUTO in config.precisions:
        precs = sorted({p.precision for p in measured})
    else:
        precs = list(config.precisions)
    excluded = {p: f'backend does not run {p} (it runs {list(supported)})'
                for p in precs if p not in supported}
    precs = [p for p in precs if p in supported]
    if not precs:
        problems.append(f'none of precisions {config.precisions} runs on this backend (it '
                        f'runs {list(supported)})')
    if problems:
        return [], excluded, problems
    want = make_points(res, depths, precs)
    missing = [p.key for p in want if p.key not in profile.latency_ms]
    if missing:
        problems.append(f'profile has no measurements for points {missing}; re-run calibrate '
                        f'(or profile) for this point set')
    unusable = profile.unusable
    excluded.update({p.key: unusable[p.key] for p in want if p.key in unusable})
    points = [p for p in want if p.key not in unusable]
    if not points and not problems:
        problems.append(f'every allowed point is marked unusable by the profile: {unusable}')
    return points, excluded, problems


class _CameraState:
    def __init__(self, monitor: ComplexityMonitor, scheduler: Scheduler):
        self.monitor, self.scheduler = monitor, scheduler
        self.last: Optional[Tuple[np.ndarray, str, np.ndarray]] = None   # rgb, point, labels
        self.since_probe: Optional[int] = None      # frames since the last probe (None: never)
        # the latest frame's predicted shortfall per point (ComplexityParams.shortfall)
        self.shortfall: Dict[str, float] = {}
        self.probes, self.probe_ms = 0, 0.0


class AdaptivePipeline:
    """Model + backend + profile + per-camera schedulers."""

    def __init__(self, config: PipelineConfig, base_dir: Optional[Path] = None,
                 model: Optional[ModelDescription] = None, backend=None,
                 profile: Union[Profile, Dict[str, Any], None] = None):
        self.config = config
        self.base_dir = base_dir
        self.model, self.backend = model, backend
        self.profile: Optional[Profile] = None
        self.excluded: Dict[str, str] = {}
        problems = self._load(profile)
        if problems:
            raise ConfigError(problems)
        self.task: Task = task_for(self.model)
        self.backend_name, self.backend_reason = resolve_backend_name(config.backend, self.model)
        self._read_profile()
        self._prepared = False
        self.prepare()
        self.cameras: Dict[str, _CameraState] = {}
        self.sched_config = config.scheduler     # one object, shared by every camera
        self.camera('default')  # validates the policy against the points now

    def _load(self, profile: Union[Profile, Dict[str, Any], None]) -> List[str]:
        """Load the model, the backend and the profile where not given, and select the
        points; every problem found, not only the first."""
        config, problems = self.config, []
        if isinstance(profile, Profile):
            self.profile = profile
        elif profile is not None:
            try:
                self.profile = Profile.from_dict(profile, 'the profile given')
            except ProfileError as exc:
                problems.append(str(exc))
        if self.model is None:
            try:
                self.model = load_model_description(_resolve(config.model_path, self.base_dir))
            except ModelError as exc:
                problems.append(str(exc))
        if self.model is not None and self.backend is None:
            try:
                self.backend = make_backend(config.backend, self.model, threads=config.threads)
            except Exception as exc:  # BackendUnavailable, the engine's own load errors
                problems.append(f'backend {config.backend}: {exc}')
        problems += self._load_profile(profile)
        if self.model is not None and self.profile is not None and self.backend is not None:
            self.points, self.excluded, more = select_points(
                config, self.profile, self.model, self.backend.supported_precisions())
            problems += more
            if not more:
                try:
                    parse_policy(config.scheduler.policy, self.points)
                except ValueError as exc:
                    problems.append(str(exc))
        return problems

    def _load_profile(self, given) -> List[str]:
        """The profile from ``profile_path`` (default: the model's for the backend's device)
        where none was given, checked against the model's files."""
        config, problems = self.config, []
        profile_path = _resolve(config.profile_path, self.base_dir) if config.profile_path \
            else (self.model.profile_path(self.backend.device) if self.backend is not None
                  else None)
        if self.profile is None and given is None and profile_path is not None:
            try:
                self.profile = load_profile(profile_path)
            except ProfileError as exc:
                problems.append(str(exc))
        elif self.profile is None and given is None and self.model is None:
            problems.append('profile_path is empty and the model did not load, so there is '
                            'no default profile to look for')
        if self.model is not None and self.profile is not None and \
                self.profile.model_hash != self.model.hash():
            problems.append(f'profile {profile_path} was made for model hash '
                            f'{self.profile.model_hash[:12]}, the model files hash to '
                            f'{self.model.hash()[:12]}; re-run calibrate (or profile)')
        return problems

    def _read_profile(self) -> None:
        """The scheduler's tables from the profile: accuracy, class floor, staleness,
        latency, difficulty, and the probe pair."""
        config, prof = self.config, self.profile
        self.accuracy = AccuracyTable(prof.accuracy.miou, prof.accuracy.bin_edges,
                                      prof.accuracy.overall)
        self.worst_class_iou = worst_class_iou(prof.accuracy.per_class_iou)   # class floor
        self.streaming = StreamingTable(prof.staleness, prof.staleness_period_ms)
        self.latency = LatencyModel({k: asdict(v) for k, v in prof.latency_ms.items()},
                                    config.latency_quantile,
                                    batch_profile=prof.batch_latency_ms or None)
        self.complexity_params = ComplexityParams.from_dict(asdict(prof.complexity))
        seeing = seeing_points([p.key for p in self.points], self.worst_class_iou,
                               config.scheduler.class_floor)
        self.probe_points = probe_pair(seeing, lambda k: prof.latency_ms[k].p50,
                                       lambda k: prof.accuracy.overall.get(
                                           k, float(np.mean(prof.accuracy.miou[k]))),
                                       config.scheduler.accuracy_tolerance)
        self._cheapest_px = min(OperatingPoint.parse(k).width * OperatingPoint.parse(k).height
                                for k in seeing)

    def prepare(self) -> None:
        """Load/build every point on the backend and warm it up (no-op when prepared)."""
        if self._prepared:
            return
        self.backend.prepare(sorted({p.precision for p in self.points}),
                             sorted({p.resolution for p in self.points}))
        self.warm_up()
        self._prepared = True

    def warm_up(self, camera_hw: Tuple[int, int] = (480, 640), runs: int = 3) -> None:
        """Run every point once (the first real frame pays no first-shape cost), then time
        each ``runs - 1`` times and rescale the profile's latency prior of points that run
        slower here and now than when the profile was made (the fastest of the timed runs). A
        point timed slower than its profile is timed again after all the others, and the
        faster of the two counts: one hiccup (a clock change, another process) while its few
        runs were timed must not rule it out of the first frames."""
        frame = np.zeros((camera_hw[0], camera_hw[1], 3), np.uint8)
        for p in self.points:
            self._timed_runs(p, frame, 1)
        measured = {p.key: self._timed_runs(p, frame, runs - 1) for p in self.points}
        for p in self.points:
            if measured[p.key] > self.latency.base.get(p.key, float('inf')):
                measured[p.key] = min(measured[p.key], self._timed_runs(p, frame, runs - 1))
        self.latency.calibrate({k: ms for k, ms in measured.items() if np.isfinite(ms)})

    def _timed_runs(self, p: OperatingPoint, frame: np.ndarray, runs: int) -> float:
        """The fastest of ``runs`` runs of point ``p`` on ``frame`` (ms; inf for none)."""
        best = float('inf')
        for _ in range(runs):
            t = time.perf_counter()
            try:
                self.task.infer(self.backend, [frame], p)
            except ModelError:
                raise
            except Exception as exc:  # the engine's own error types
                raise ModelError(f'model {self.model.name} cannot run operating point '
                                 f'{p.key} (input {p.width}x{p.height}): {exc}') from exc
            best = min(best, (time.perf_counter() - t) * 1e3)
        return best

    @classmethod
    def from_yaml(cls, path: Union[str, Path], **overrides) -> 'AdaptivePipeline':
        """Build from a YAML file of :class:`PipelineConfig` keys (paths relative to it or cwd)."""
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f'pipeline config {p} does not exist')
        d = yaml.safe_load(p.read_text()) or {}
        d.update(overrides)
        root = p.resolve().parent.parent if p.resolve().parent.name == 'config' else None
        return cls(PipelineConfig.from_dict(d), base_dir=root)

    def camera(self, name: str) -> _CameraState:
        """Per-camera state, created on first use."""
        st = self.cameras.get(name)
        if st is None:
            sched = Scheduler(self.points, self.accuracy, self.latency, self.sched_config,
                              self.worst_class_iou, self.streaming,
                              self.profile.accuracy.compute_price)
            st = _CameraState(ComplexityMonitor(self.complexity_params,
                                                read_result=self.task.result_signals,
                                                keep=self.task.scored,
                                                read_change=self.task.change,
                                                cheapest_px=self._cheapest_px), sched)
            self.cameras[name] = st
        return st

    def probe_stats(self, name: str) -> Tuple[int, float]:
        """The difficulty probes run for camera ``name`` and their compute (ms)."""
        st = self.cameras.get(name)
        return (st.probes, st.probe_ms) if st is not None else (0, 0.0)

    def set_anytime(self, anytime: bool, confidence: float) -> None:
        """Anytime early exit on or off, and the exit confidence at which it stops."""
        self.config.anytime, self.config.anytime_confidence = bool(anytime), float(confidence)

    def reset_camera(self, name: str) -> None:
        """Forget a camera's history (complexity, scheduler state): its time went backwards
        (a bag looped, a simulation restarted)."""
        self.cameras.pop(name, None)

    def restart(self, policy: str) -> None:
        """Start a new run under ``policy``: every camera's history and the latency model's
        online corrections are forgotten (benchmarks and evaluations compare policies from
        the same start)."""
        self.set_policy(policy)
        self.cameras.clear()
        self.latency.reset()

    def set_policy(self, policy: str) -> None:
        """Change the policy of every camera (validated first; raises ValueError)."""
        parse_policy(policy, self.points)
        for st in list(self.cameras.values()):
            st.scheduler.set_policy(policy)
        self.sched_config.policy = policy

    def update_scheduler(self, **kw) -> None:
        """Change scheduler knobs (safety_margin_ms, accuracy_tolerance, ...): the one
        scheduler config every camera shares."""
        for k, v in kw.items():
            if k == 'policy':
                self.set_policy(v)
            else:
                setattr(self.sched_config, k, v)

    # ------------------------------------------------------------------ execution
    def _point(self, p: OperatingPoint, depth: int) -> OperatingPoint:
        return OperatingPoint(p.width, p.height, depth, p.precision)

    def _run(self, frames: List[np.ndarray], point: OperatingPoint, budget_ms: float,
             t_start: float) -> Tuple[np.ndarray, np.ndarray, int, str]:
        m, cfg = self.model, self.config
        if not cfg.anytime or not self.task.staged:
            outputs, conf = self.task.infer(self.backend, frames, point)
            return outputs, conf, point.depth, 'planned depth'
        x = m.preprocess(frames, point.resolution)
        feat, exit_depth, stop = x, point.depth, 'planned depth'
        for s in range(point.depth):
            inp = x if m.structure == 'ladder' else feat
            feat, out = self.backend.run_stage(point.precision, s, inp)
            if s == point.depth - 1:
                continue
            conf = m.confidence(out)
            if conf >= cfg.anytime_confidence:
                exit_depth, stop = s + 1, f'confident ({conf:.3f})'
                break
            elapsed = (time.perf_counter() - t_start) * 1e3
            nxt = self.latency.predict_increment(self._point(point, s + 1).key,
                                                 self._point(point, s + 2).key)
            if elapsed + nxt > budget_ms:
                exit_depth, stop = s + 1, 'deadline (next stage would miss)'
                break
        h, w = frames[0].shape[:2]
        labels, conf = m.postprocess(out, (h, w), work_hw=(point.height, point.width))
        return labels, conf, exit_depth, stop

    def process(self, frame: np.ndarray, stamp_ns: Optional[int] = None,
                now_ns: Optional[int] = None, camera: str = 'default',
                deadline_ms: Optional[float] = None) -> Tuple[np.ndarray, DecisionRecord]:
        """Segment one RGB frame; returns (labels HxW uint8, record).

        The frame's age when processing starts is ``now_ns - stamp_ns`` (0 when either is
        missing).
        """
        age = (now_ns - stamp_ns) / 1e6 if (now_ns is not None and stamp_ns is not None) \
            else 0.0
        req = FrameRequest(frame, camera, deadline_ms, stamp_ns, transport_ms=max(0.0, age))
        return self._process_batch([req])[0]

    def _process_batch(self, requests: Sequence[FrameRequest]
                       ) -> List[Tuple[np.ndarray, DecisionRecord]]:
        """Frames waiting at once (e.g. several cameras): (labels, record) per request.

        Runs them as one batch when the profile says a batch fits every frame's deadline,
        otherwise one by one (each with its own budget).
        """
        t0 = time.perf_counter()
        frames = []
        for req in requests:
            rgb = req.rgb
            if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 \
                    or rgb.dtype != np.uint8:
                raise ValueError(f'frame must be an RGB uint8 HxWx3 array, got '
                                 f'{getattr(rgb, "shape", None)} {getattr(rgb, "dtype", None)}')
            st = self.camera(req.camera)
            deadline = float(req.deadline_ms if req.deadline_ms is not None
                             else self.config.deadline_ms)
            complexity, st.shortfall = st.monitor.assess(rgb)
            frames.append(_InFlight(req, deadline, complexity, st))
        if len(frames) > 1 and self.model.fixed_batch is None and \
                len({f.req.rgb.shape for f in frames}) == 1:
            batched = self._try_batch(frames, t0)
            if batched is not None:
                return batched
        return [self._single(f, t0 if i == 0 else time.perf_counter(), t0)
                for i, f in enumerate(frames)]

    def _budget(self, f: '_InFlight', t_ref: float, t0: float) -> float:
        """What is left of the frame's deadline less the safety margin; on a worker shared by
        several cameras, no more than half the tightest other camera's deadline."""
        waited = (t_ref - t0) * 1e3
        own = f.deadline - f.req.age_ms - waited - self.sched_config.safety_margin_ms
        shared = f.req.shared_deadlines_ms
        return min(0.5 * min(shared), own) if shared else own

    def _single(self, f: '_InFlight', t_frame: float, t0: float
                ) -> Tuple[np.ndarray, DecisionRecord]:
        budget = self._budget(f, time.perf_counter(), t0)
        dec = f.state.scheduler.choose(f.complexity, budget, f.req.period_ms,
                                       f.req.age_ms + (t_frame - t0) * 1e3, f.state.shortfall)
        t1 = time.perf_counter()
        labels, conf, exit_depth, stop = self._run([f.req.rgb], dec.point, budget, t1)
        t2 = time.perf_counter()
        run_point = self._point(dec.point, exit_depth)
        rec = self._finish(f, dec, run_point, stop, (t_frame - t0) * 1e3,
                           _Timing(t_frame, t1, t2), labels[0], float(conf[0]), 1)
        self._learn(run_point.key, rec.measured_ms, 1, dec.predicted_ms, rec.missed)
        return labels[0], rec

    def _learn(self, key: str, measured: float, n: int, predicted: float, missed: bool) -> None:
        """Feed one run (a frame or a whole batch of ``n``) to the latency model, once."""
        self.latency.observe(key, measured, n)
        self.latency.on_outcome(missed, measured / max(predicted, 1e-3), key if n == 1 else None)

    def _finish(self, f: '_InFlight', dec: Decision, run_point: OperatingPoint, stop: str,
                queued_ms: float, t: '_Timing', output: Any, conf: float,
                n: int) -> DecisionRecord:
        """The frame's record; ``queued_ms`` = time it waited for other frames of its call."""
        measured = (t.t2 - t.t1) * 1e3
        total = (t.t2 - t.t_frame) * 1e3
        req = f.req
        age = req.age_ms + queued_ms
        missed = age + total > f.deadline
        f.state.monitor.observe_result(output, conf, run_point.key)
        st = f.state
        st.last = (req.rgb, run_point.key, self.task.scored(output))
        st.since_probe = None if st.since_probe is None else st.since_probe + 1
        p = dec.point
        return DecisionRecord(
            camera=req.camera, stamp_ns=int(req.stamp_ns or 0), point=run_point.key,
            width=p.width, height=p.height, depth=p.depth, exit_depth=run_point.depth,
            precision=p.precision, reason=dec.reason, stop_reason=stop,
            complexity=f.complexity, predicted_ms=dec.predicted_ms, measured_ms=measured,
            overhead_ms=(t.t1 - t.t_frame) * 1e3, total_ms=total, age_ms=age,
            transport_ms=req.transport_ms, wait_ms=req.age_ms - req.transport_ms + queued_ms,
            deadline_ms=f.deadline, budget_ms=dec.budget_ms, expect_miss=dec.expect_miss,
            missed=missed, predicted_accuracy=self.accuracy.frame(
                [run_point.key], f.complexity, f.state.shortfall)[0]
            if run_point.key in self.accuracy.table else dec.predicted_accuracy,
            confidence=conf, batch_size=n)

    def _try_batch(self, frames: List['_InFlight'], t0: float):
        n = len(frames)
        now = time.perf_counter()
        budgets = [self._budget(f, now, t0) for f in frames]
        min_budget = min(budgets)
        cands = []
        for pt in self.points:
            pred = self.latency.predict_batch(pt.key, n)
            if pred is None or pred > min_budget:
                continue
            acc = float(np.mean([self.accuracy.frame([pt.key], f.complexity,
                                                     f.state.shortfall)[0] for f in frames]))
            # priced as the single-frame path: each frame's share of the batch, at the median
            # (the profile keeps the batch's upper quantile only)
            median = pred / n * self.latency.base[pt.key] / self.latency.upper[pt.key]
            cands.append((acc - self.profile.accuracy.compute_price * median, acc, pred, pt))
        if not cands:
            return None
        top = max(c[0] for c in cands)
        good = [c for c in cands if c[0] >= top - self.sched_config.accuracy_tolerance]
        _, acc, pred, best = min(good, key=lambda c: c[2])
        t1 = time.perf_counter()
        labels, conf = self.task.infer(self.backend, [f.req.rgb for f in frames],
                                       best)  # full depth
        t2 = time.perf_counter()
        out = []
        for i, f in enumerate(frames):
            dec = Decision(best, f'batch of {n}', pred, acc, budgets[i], False)
            f.state.scheduler.current = best
            rec = self._finish(f, dec, best, 'planned depth', 0.0, _Timing(t0, t1, t2),
                               labels[i], float(conf[i]), n)
            out.append((labels[i], rec))
        # one batch is one observation: feeding it once per frame would put n copies of the
        # same latency into the window and back off n times for one miss
        self._learn(best.key, (t2 - t1) * 1e3, n, pred, any(r.missed for _, r in out))
        return out

    def _wait_for_next(self, req: FrameRequest, waited_ms: float) -> bool:
        """Shrinking tail: whether the adaptive scheduler would rather wait for the camera's
        next frame than start ``req`` now (:func:`~tts_perception.adaptive.scheduler.
        tail_wait`). ``waited_ms``: how long the frame waited because the worker was busy,
        the only part of its age waiting avoids; the rest of its time since arrival (decoding,
        waking the worker) the next frame pays too, so it counts as latency. Uses the
        predicted latency of the point the camera runs now; only with a known camera period
        and a profile that measured staleness."""
        st = self.cameras.get(req.camera)
        if st is None or st.scheduler.current is None or st.scheduler.streaming is None or \
                self.sched_config.policy != 'adaptive':
            return False
        q = max(0.0, waited_ms)
        overhead = max(0.0, req.age_ms - req.transport_ms - q)
        return tail_wait(self.latency.predict(st.scheduler.current.key) + overhead, q,
                         req.period_ms)

    @staticmethod
    def _hold_until(taken_ms: float, queued_ms: float, period_ms: float) -> float:
        """Until when a held-back frame waits for the next one: its due time plus a quarter
        period (the next frame may be late; then the held one runs)."""
        return taken_ms - queued_ms + 1.25 * period_ms

    @property
    def probing(self) -> bool:
        """Whether this pipeline probes: the profile has the probe signal on, ``probe_every``
        is above 0 and there are two different points to compare."""
        return self.complexity_params.probes and self.config.probe_every > 0 and \
            self.probe_points[0] != self.probe_points[1]

    def _probe(self, camera: str, slack_ms: float) -> float:
        """After a frame's result is out (never before: a probe must not delay it): when a
        probe is due on ``camera`` and its predicted cost fits ``slack_ms`` (the time until
        the next frame is expected; 0 when one is waiting), run the probe's points that did
        not run on that frame, measure what the cheap one lost and feed it to the camera's
        difficulty estimate. Returns the compute it took (ms; 0 when no probe ran)."""
        st = self.cameras.get(camera)
        if st is None or st.last is None or not self.probing or \
                self.sched_config.policy != 'adaptive':
            return 0.0
        if st.since_probe is not None and st.since_probe < self.config.probe_every:
            return 0.0
        rgb, ran, labels = st.last
        todo = [k for k in self.probe_points if k != ran]
        if sum(self.latency.predict(k) for k in todo) > slack_ms:
            return 0.0                              # due: the next frame with slack probes
        out = {ran: labels}
        t0 = time.perf_counter()
        for k in todo:
            t = time.perf_counter()
            out[k] = self.task.scored(self.task.infer(self.backend, [rgb],
                                                      OperatingPoint.parse(k))[0][0])
            self.latency.observe(k, (time.perf_counter() - t) * 1e3, 1)
        ms = (time.perf_counter() - t0) * 1e3
        cheap, ref = self.probe_points
        st.monitor.observe_probe(self.task.loss(out[cheap], out[ref]))
        st.since_probe, st.last = 0, None
        st.probes += 1
        st.probe_ms += ms
        return ms

    @staticmethod
    def _probe_slack(rec: DecisionRecord, period_ms: Optional[float]) -> float:
        """Time left (ms) after ``rec``'s result until the camera's next frame arrives, if
        frames arrive every ``period_ms`` (0 when the period is not known)."""
        if period_ms is None or not np.isfinite(period_ms):
            return 0.0
        return max(0.0, period_ms - (rec.age_ms - rec.transport_ms) - rec.total_ms)

    def release(self) -> None:
        """Free backend resources (sessions, accelerator memory); :meth:`prepare` restores."""
        self.backend.release()
        self._prepared = False
