"""Calibration as a library: fit the scheduler's profile of a model to recorded frames.

Input: :class:`~tts_perception.common.frames.Frames` (the first ``fit_n`` fit, the rest is
held out), the model, a backend and the operating points. Output: a validated
:class:`~tts_perception.adaptive.profile_data.Profile`. The steps, each a function of its own:
*score* every point on every frame (against labels, else the golden point), *measure* every
point's latency here, *stream* (how fast each output goes stale at the recorded rate), *fit*
the difficulty estimate from the signal groups that hold out of fold, *price* compute so the
scheduler's choices stay within the accuracy budget, and *assemble* the profile. Held-out
figures come only from frames no step fitted on. Why each step: ``doc/calibration.md``.
"""

from dataclasses import asdict, dataclass, replace
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.complexity import (ComplexityMonitor, ComplexityParams,
                                                estimator, feature_range, fit_complexity,
                                                fit_point_models, nan_mean_std, result_map)
from tts_perception.adaptive.difficulty import (correlation, FEATURES, frame_loss, Value,
                                                frame_shortfall, out_of_fold,
                                                price_for_every_part, probe_losses, probe_pair,
                                                select_signals, SignalGate,
                                                SIGNALS, within_point_correlation)
from tts_perception.adaptive.pipeline import PipelineConfig
from tts_perception.adaptive.profile_data import Profile, PROFILE_VERSION
from tts_perception.adaptive.scheduler import (blind_points, SchedulerConfig, stale_weight,
                                               StreamingTable)
from tts_perception.common.frames import Frames
from tts_perception.common.scoring import confusion_miou, Scoring
from tts_perception.common.progress import Progress
from tts_perception.inference.latency import (LATENCY_PASSES, LATENCY_RUNS, machine_info,
                                              measure_latencies, measure_latency)
from tts_perception.inference.model_desc import ModelDescription
from tts_perception.inference.points import golden_point, OperatingPoint
from tts_perception.tasks import Task, task_for
from tts_perception.tasks.segmentation import SCORE_STEP

N_BINS = 5
SUB = SCORE_STEP          # segmentation is scored on every 4th pixel in both directions
INT8_BOUND = 0.5          # worst per-class IoU of int8 vs fp32 below this: point unusable
STALE_LAGS = 10           # staleness: accuracy against the frames up to 10 camera periods later
FRACTIONS = (0.25, 0.5, 1.0)
# a signal group must add 0.05 to the share of the loss's variance explained out of fold
# (r²) to be kept
MIN_SIGNAL_GAIN = 0.05
FOLDS = 3                 # blocked cross-validation of the difficulty signals
# the accuracy the scheduler may give up below the best static point for compute: under the
# 0.005 at which two accuracies count as equal, with room for scenes calibration never saw
ACCURACY_BUDGET = 0.003


def default_resolutions(model: ModelDescription, frame_wh: Tuple[int, int]
                        ) -> List[Tuple[int, int]]:
    """1/4, 1/2 and the full camera size in multiples the model takes (its own size for a
    fixed-size model)."""
    if model.fixed_size is not None:
        return [model.fixed_size]
    m = model.multiple_of
    out = []
    for f in FRACTIONS:
        wh = tuple(max(m, int(v * f / m + 0.5) * m) for v in frame_wh)
        if wh not in out:
            out.append(wh)
    return out


def _scores(task: Task, backend, frames: Frames, points: Sequence[OperatingPoint],
            quiet: bool) -> Tuple[Dict[str, List[Any]], Dict[str, np.ndarray]]:
    """Every point's output on every frame in its scored form (all exits of a (resolution,
    precision) from one pass) and every point's confidence per frame."""
    combos = sorted({(p.resolution, p.precision) for p in points})
    depth = max(p.depth for p in points)
    preds: Dict[str, List[Any]] = {p.key: [] for p in points}
    confs = {p.key: np.zeros(len(frames), np.float32) for p in points}
    prog = Progress(len(frames) * len(combos), 'accuracy', quiet=quiet)
    k = 0
    for i, rgb in enumerate(frames.rgb):
        for (w, h), prec in combos:
            full = OperatingPoint(w, h, depth, prec)
            for d, (outputs, conf) in enumerate(task.infer(backend, [rgb], full,
                                                           all_exits=True), 1):
                key = OperatingPoint(w, h, d, prec).key
                if key in preds:
                    preds[key].append(task.scored(outputs[0]))
                    confs[key][i] = conf[0]
            k += 1
            prog.update(k)
    prog.close()
    return preds, confs


def _evidence(scoring: Scoring, preds: Dict[str, List[Any]], refs: List[Any]
              ) -> Dict[str, np.ndarray]:
    """Per point, per frame evidence [F, ...] against the references (confusion matrices
    for segmentation: :mod:`~tts_perception.common.scoring`)."""
    return {k: np.stack([scoring.evidence(p, r) for p, r in zip(v, refs)])
            for k, v in preds.items()}


def staleness(preds: Dict[str, List[Any]], refs: List[Any], seq: Sequence,
              scoring: Scoring, frames: range, lags: int = STALE_LAGS) -> Dict[str, List[float]]:
    """Per point, the accuracy of its output on frame t against the reference of frame
    t + k, k = 0..``lags``, over ``frames`` (pairs within one sequence only; the rows end
    before the first lag no pair of frames is that far apart)."""
    pairs = []
    for k in range(lags + 1):
        pk = [t for t in frames if t + k in frames and seq[t + k] == seq[t]]
        if not pk:
            break
        pairs.append(pk)
    out = {}
    for key, pv in preds.items():
        row = []
        for k, pk in enumerate(pairs):
            row.append(scoring.value(sum(scoring.evidence(pv[t], refs[t + k]) for t in pk)))
        out[key] = row
    return out


def complexity_features(task: Task, frames: Frames,
                        golden_outputs: List[Any], golden_conf: np.ndarray,
                        probe: Optional[np.ndarray] = None, cheapest_px: int = 160 * 120
                        ) -> np.ndarray:
    """The monitor's features frame by frame, in sequence (the previous result being the
    golden point's, as the task expands it from its scored form; ``probe``: the probe_loss
    feature of each frame, see :func:`~tts_perception.adaptive.difficulty.probe_losses`)."""
    mon = _monitor(task, cheapest_px)
    feats = []
    for i, rgb in enumerate(frames.rgb):
        if i > 0 and frames.seq[i] != frames.seq[i - 1]:
            mon.reset()
        feats.append(mon.features(rgb, fill=False))
        mon.observe_result(task.expand(golden_outputs[i]), float(golden_conf[i]))
    out = np.stack(feats).astype(np.float64)
    out[:, FEATURES.index('probe_loss')] = 0.0 if probe is None else probe
    # a result feature with no value (a sequence's first frame; its second one's change)
    # takes the other frames' mean, as the node takes the fitted mean then (any other value
    # is an outlier the fit would follow)
    missing = np.isnan(out)
    out[missing] = np.broadcast_to(nan_mean_std(out)[0], out.shape)[missing]
    return out


def _monitor(task: Task, cheapest_px: int) -> ComplexityMonitor:
    """A monitor that reads every signal of ``task``'s results, as the node's does."""
    return ComplexityMonitor(ComplexityParams.neutral(), read_result=task.result_signals,
                             keep=task.scored, read_change=task.change,
                             cheapest_px=cheapest_px)


def result_features(task: Task, frames: Frames, outputs: Sequence[Any],
                    confidence: np.ndarray, cheapest_px: int) -> np.ndarray:
    """[frames, RESULT_FEATURES]: what each result shows, as the monitor reads it (scored
    outputs expanded as in :func:`complexity_features`; the change from the result before
    in the same sequence, NaN for a sequence's first)."""
    mon = _monitor(task, cheapest_px)
    hw = frames.rgb[0].shape[:2]
    return np.stack([mon.result_values(task.expand(g), float(c), hw,
                                       outputs[i - 1] if i and frames.seq[i] == frames.seq[i - 1]
                                       else None)
                     for i, (g, c) in enumerate(zip(outputs, confidence))])


def validation_folds(fit_n: int, recording_fits: Optional[Sequence[int]] = None
                     ) -> List[np.ndarray]:
    """The folds of calibrate's blocked cross-validation over its ``fit_n`` fit frames: each
    recording's (``recording_fits``: how many of them each has, in order) where there are
    several, so that a signal must predict a recording it was not fitted on; else
    :data:`FOLDS` contiguous runs of frames."""
    if recording_fits is not None and len(recording_fits) > 1:
        ends = np.cumsum(recording_fits)
        return [np.arange(e - k, e) for k, e in zip(recording_fits, ends)]
    return np.array_split(np.arange(fit_n), FOLDS)


def _bins(cplx: np.ndarray) -> np.ndarray:
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    return np.clip(np.searchsorted(edges, cplx, side='right') - 1, 0, N_BINS - 1)


def _bin_table(cms: Dict[str, np.ndarray], points: Sequence[OperatingPoint], frames: slice,
               bins: np.ndarray, trust: float, value: Value) -> Tuple[Dict, Dict, Dict]:
    """Per point its accuracy per complexity bin on ``frames`` (shrunk towards its overall
    accuracy by ``trust``, and as measured) and overall."""
    table, raw, overall = {}, {}, {}
    b_f = bins[frames]
    for p in points:
        m = cms[p.key][frames]
        overall[p.key] = value(m.sum(0))
        raw[p.key] = [value(m[b_f == b].sum(0)) if (b_f == b).any() else overall[p.key]
                      for b in range(N_BINS)]
        # bins shrunk towards the point's overall accuracy as far as the estimate is not
        # predictive: differences between bins that do not generalise are noise, and
        # following them picks cheaper points that are worse on new frames
        table[p.key] = [overall[p.key] + trust * (v - overall[p.key]) for v in raw[p.key]]
    return table, raw, overall


def _probe_pays(feats: np.ndarray, acc: np.ndarray, cms: Dict[str, np.ndarray],
                points: Sequence[OperatingPoint], seeing: Sequence[str],
                signals_on: Sequence[str], folds: Sequence[np.ndarray], held: slice,
                overall_fit: Dict[str, float], cost: Dict[str, float], budget: float,
                weight: Optional[Dict[str, float]], probe_ms: float,
                value: Value = confusion_miou) -> str:
    """'' when the probe pays out of fold, judged with the rule the scheduler runs
    (:func:`point_decisions`: the point models' out-of-fold predictions and the compute price
    that keeps the choices within ``budget`` of the best static point): with the probe, its
    compute included, the choices cost less than without it and stay as accurate or within
    the budget; otherwise why not. Arguments as :func:`point_decisions`'s; ``probe_ms``:
    the probes' compute per frame."""
    out = {}
    for name, on in (('with', list(signals_on)),
                     ('without', [g for g in signals_on if g != 'probe'])):
        a, c = point_decisions(feats, acc, cms, points, seeing, on, folds, held, overall_fit,
                               cost, budget, weight, value=value)['outcome']
        out[name] = (a, c + (probe_ms if name == 'with' else 0.0))
    (a1, c1), (a0, c0) = out['with'], out['without']
    reference = max(overall_fit[k] for k in seeing)
    if c1 < c0 and a1 >= min(a0, reference - budget):
        return ''
    return (f'probes do not pay out of fold: at the compute price for the accuracy budget, '
            f'with them {a1:.3f} at {c1:.2f} ms (probes included), without {a0:.3f} at '
            f'{c0:.2f} ms')


def reduced_precision_checks(task: Task, points: Sequence[OperatingPoint],
                             preds: Dict[str, List[Any]], fit: slice, bound: float
                             ) -> Tuple[Dict, Dict, Dict[str, str]]:
    """Per (resolution, depth) of every precision other than fp32: agreement with fp32
    (:meth:`~tts_perception.tasks.base.Task.agreement`) and the worst class's measure against
    fp32's outputs on the calibration frames; int8 points below ``bound`` are unusable
    (point -> reason)."""
    agreement: Dict[str, Dict[str, float]] = {}
    worst: Dict[str, Dict[str, float]] = {}
    unusable: Dict[str, str] = {}
    keys = {p.key for p in points}
    scoring, classes = task.scoring, task.model.classes
    for p in points:
        if p.precision == 'fp32':
            continue
        ref = OperatingPoint(p.width, p.height, p.depth, 'fp32').key
        if ref not in keys:
            continue
        rd = f'{p.width}x{p.height}/d{p.depth}'
        a, b = preds[p.key][fit], preds[ref][fit]
        agreement.setdefault(p.precision, {})[rd] = task.agreement(a, b)
        per = scoring.per_class(sum(scoring.evidence(x, y) for x, y in zip(a, b)))
        if all(v is None for v in per):
            continue
        c = min((i for i, v in enumerate(per) if v is not None), key=lambda i: per[i])
        worst.setdefault(p.precision, {})[rd] = float(per[c])
        if p.precision == 'int8' and per[c] < bound:
            unusable[p.key] = (f'int8 loses class {classes[c]}: {scoring.per_class_metric} '
                               f'with fp32 {per[c]:.3f} < bound {bound}')
    return agreement, worst, unusable


def point_decisions(feats: np.ndarray, acc: np.ndarray, cms: Dict[str, np.ndarray],
                    points: Sequence[OperatingPoint], seeing: Sequence[str],
                    signals_on: Sequence[str], folds: Sequence[np.ndarray], held: slice,
                    overall_fit: Dict[str, float], cost: Dict[str, float], budget: float,
                    weight: Optional[Dict[str, float]] = None,
                    fitted_range: Optional[List[List[float]]] = None,
                    value: Value = confusion_miou) -> Dict[str, Any]:
    """The per-point shortfall models and the compute price (see the module's steps 4 and 5),
    and the outcome of the rule there on the fold frames (accuracy, mean compute ms).
    ``acc`` [points, frames]: per-frame accuracy; ``cms``: per point its per-frame confusion
    matrices; ``seeing``: the usable points that see every class (the price is judged on
    those); ``overall_fit``: each point's accuracy on the fold frames; ``cost``: latency per
    point (ms); ``weight``: per point the factor the scheduler
    weighs its accuracy with for staleness (:func:`stale_weights`; none: 1);
    ``fitted_range``: the fit frames' feature range, which the held-out frames are read
    within as the node reads them (none: as they are); ``value``: the task's accuracy of a
    sum of ``cms`` (:mod:`~tts_perception.common.scoring`). Returns the profile's fields and
    ``outcome``."""
    keys = [p.key for p in points]
    short = frame_shortfall(acc)
    fit = np.concatenate(folds)
    out: Dict[str, Any] = {'point_models': {}, 'point_validation_correlation': None,
                           'point_eval_correlation': None}
    use = [keys.index(k) for k in seeing]
    overall = np.array([overall_fit[keys[i]] for i in use])
    dev = np.zeros((len(use), len(fit)))
    if signals_on:
        models, oof = fit_point_models(feats, short, keys, signals_on, folds)
        out['point_models'] = models
        dev = oof[use]
        out['point_validation_correlation'] = within_point_correlation(dev, short[use][:, fit])
        if held.stop > held.start:
            params = replace(ComplexityParams.neutral(), point_models=models,
                             feature_range=fitted_range or [])
            sf = [params.shortfall(f) for f in feats[held]]
            pred = np.array([[s[keys[i]] for s in sf] for i in use])
            out['point_eval_correlation'] = within_point_correlation(pred, short[use][:, held])
    conf = np.stack([cms[keys[i]][fit] for i in use])
    w = np.array([(weight or {}).get(keys[i], 1.0) for i in use])
    ends = np.cumsum([len(f) for f in folds])
    price, chosen, ms = price_for_every_part(
        (overall[:, None] - dev) * w[:, None], conf, np.array([cost[keys[i]] for i in use]),
        budget, [slice(e - len(f), e) for f, e in zip(folds, ends)],
        SchedulerConfig().accuracy_tolerance, value=value)
    out.update(compute_price=price, accuracy_budget=budget, outcome=(chosen, ms))
    return out


def stale_weights(stale: Dict[str, List[float]], period_ms: Optional[float],
                  cost: Dict[str, float]) -> Dict[str, float]:
    """Per point, the factor the scheduler weighs its accuracy with on a camera at the
    recorded rate, a fresh frame run at the point's ``cost``: (1 - w) x its staleness factor
    + w, w the node's ``frame_accuracy_weight`` (1 where staleness is unknown)."""
    table = StreamingTable(stale, period_ms)
    if not table.usable():
        return {k: 1.0 for k in cost}
    keys = [k for k in cost if k in table.table]
    f = table.expected_many(table.relative(keys), np.array([cost[k] for k in keys]), 0.0,
                            float(period_ms))
    w = SchedulerConfig().frame_accuracy_weight
    return {k: float(stale_weight(x, w)) for k, x in zip(keys, f)}


@dataclass
class Scores:
    """Step *score*: every point on every frame, by the ``task``. ``preds``: outputs in their
    scored form; ``cms``: per point its per-frame evidence [F, ...] (confusion matrices for
    segmentation: :mod:`~tts_perception.common.scoring`); ``acc`` [points, frames]
    its per-frame accuracy and ``loss`` the frame's; the rest is judged on the fit frames
    only (``seeing``: the usable points that see every class, all usable where none does)."""

    task: Task
    golden: str
    labelled: bool
    preds: Dict[str, List[Any]]
    confs: Dict[str, np.ndarray]
    refs: List[Any]
    cms: Dict[str, np.ndarray]
    acc: np.ndarray
    loss: np.ndarray
    per_class: Dict[str, Any]
    overall_fit: Dict[str, float]
    agreement: Dict[str, Dict[str, float]]
    worst: Dict[str, Dict[str, float]]
    unusable: Dict[str, str]
    blind: Any
    seeing: List[str]


def score(task: Task, backend, frames: Frames, points: Sequence[OperatingPoint],
          fit: slice, int8_bound: float = INT8_BOUND, quiet: bool = False) -> Scores:
    """Accuracy of every point on every frame, against the task's references of the frames
    or, where they have none, the golden point's output; the per-class measure, reduced
    precision and class floor on ``fit``."""
    golden = golden_point(points)
    preds, confs = _scores(task, backend, frames, points, quiet)
    refs = task.references(frames)
    labelled = refs is not None
    refs = refs if labelled else preds[golden.key]
    scoring = task.scoring
    cms = _evidence(scoring, preds, refs)
    acc = np.stack([np.array([scoring.value(m) for m in cms[p.key]]) for p in points])
    acc = np.where(np.isfinite(acc), acc, 1.0)        # nothing to find and nothing found
    per_class = {p.key: scoring.per_class(cms[p.key][fit].sum(0)) for p in points}
    agreement, worst, unusable = reduced_precision_checks(task, points, preds, fit,
                                                          int8_bound)
    blind = blind_points(per_class, task.model.classes, SchedulerConfig().class_floor,
                         scoring.per_class_metric)
    usable = [p.key for p in points if p.key not in unusable]
    return Scores(task, golden.key, labelled, preds, confs, refs, cms, acc, frame_loss(acc),
                  per_class, {p.key: scoring.value(cms[p.key][fit].sum(0)) for p in points},
                  agreement, worst, unusable, blind,
                  [k for k in usable if k not in blind] or usable)


@dataclass
class Timing:
    """Step *measure*: each point's latency distribution (ms) and, for a model that takes
    any batch, its p95 at batches of 2 and 4."""

    latency: Dict[str, Dict[str, float]]
    batch: Dict[str, Dict[str, float]]

    @property
    def median(self) -> Dict[str, float]:
        return {k: v['p50'] for k, v in self.latency.items()}


def measure(model: ModelDescription, backend, frames: Frames, points: Sequence[OperatingPoint],
            latency_runs: int = LATENCY_RUNS, quiet: bool = False) -> Timing:
    """Every point's latency on this machine, in rounds over the points
    (:func:`~tts_perception.inference.latency.measure_latencies`), and its batch latency."""
    prog = Progress(LATENCY_PASSES * len(points), 'latency', quiet=quiet)
    lat = measure_latencies(model, backend, frames.rgb, points, n=latency_runs,
                            progress=lambda done, total: prog.update(done))
    prog.close()
    batch = {}
    prog = Progress(len(points), 'batch latency', quiet=quiet)
    for j, p in enumerate(points):
        if model.fixed_batch is None:      # a model with a fixed batch size is never batched
            runs = max(10, latency_runs // 2)
            batch[p.key] = {str(b): measure_latency(model, backend, frames.rgb, p, n=runs,
                                                    warmup=2, batch=b)['p95']
                            for b in (2, 4)}
        prog.update(j + 1)
    prog.close()
    return Timing(lat, batch)


@dataclass
class Streaming:
    """Step *stream*: per point its accuracy against the frames after (``stale``), the
    recorded camera period, and the factor the scheduler weighs its accuracy with."""

    stale: Dict[str, List[float]]
    period_ms: Optional[float]
    weights: Dict[str, float]


def stream(scores: Scores, frames: Frames, fit_n: int, timing: Timing) -> Streaming:
    """How fast each point's output goes stale at the recorded camera rate (fit frames)."""
    stale = staleness(scores.preds, scores.refs, frames.seq, scores.task.scoring,
                      range(fit_n))
    gaps = np.diff(np.asarray(frames.stamps_ns[:fit_n], np.int64))
    gaps = gaps[(gaps > 0) & (np.diff(frames.seq[:fit_n]) == 0)]
    period = float(np.median(gaps)) / 1e6 if len(gaps) else None
    return Streaming(stale, period, stale_weights(stale, period, timing.median))


@dataclass
class Difficulty:
    """Step *fit*: the monitor's features per frame, the signal groups kept and why, the
    fitted monitor parameters, its score per frame, and how far its bins are trusted."""

    feats: np.ndarray
    folds: List[np.ndarray]
    signals_on: List[str]
    gates: Dict[str, SignalGate]
    params: ComplexityParams
    cplx: np.ndarray
    trust_r: Optional[float]
    probe_every: int


def _probe_signal(scores: Scores, frames: Frames, timing: Timing, fit_n: int
                  ) -> Tuple[Optional[np.ndarray], str, str]:
    """The probe_loss feature per frame, as the pipeline probes every probe_every frames on
    the usable points that see every class (None when there is no pair to probe), and the
    pair (cheap, reference)."""
    probe_every = PipelineConfig().probe_every
    cheap, ref = probe_pair(scores.seeing, lambda k: timing.latency[k]['p50'],
                            scores.overall_fit.__getitem__,
                            SchedulerConfig().accuracy_tolerance)
    if cheap == ref or probe_every <= 0:
        return None, cheap, ref
    raw = probe_losses(scores.preds[cheap], scores.preds[ref], frames.seq, probe_every,
                       scores.task.loss, float('nan'))
    known = raw[:fit_n][np.isfinite(raw[:fit_n])]
    return np.where(np.isfinite(raw), raw, known.mean() if len(known) else 0.0), cheap, ref


def _gate_signals(feats: np.ndarray, scores: Scores, points: Sequence[OperatingPoint],
                  timing: Timing, streaming: Streaming, folds: List[np.ndarray], held: slice,
                  groups: List[str], budget: float, probe_ms: float
                  ) -> Tuple[List[str], Dict[str, SignalGate]]:
    """The signal groups that add to what the estimate explains out of fold; a probe only
    where it also pays for its compute (:func:`_probe_pays`)."""
    if min(len(f) for f in folds) < 3:     # too few frames to validate: no evidence, no signal
        return [], {}
    signals_on, gates = select_signals(feats, scores.loss, folds, estimator, groups,
                                       MIN_SIGNAL_GAIN)
    if 'probe' not in signals_on:
        return signals_on, gates
    # each probe charged both of its points, although the pipeline runs only the one the
    # rule did not run on the frame: a margin against a probe that explains the loss on these
    # frames and not on a new course
    note = _probe_pays(feats, scores.acc, scores.cms, points, scores.seeing, signals_on, folds,
                       held, scores.overall_fit, timing.median, budget, streaming.weights,
                       probe_ms, scores.task.scoring.value)
    if not note:
        return signals_on, gates
    probe_gate = SignalGate(False, gates['probe'].validation_gain,
                            gates['probe'].validation_correlation, note)
    signals_on, gates = select_signals(feats, scores.loss, folds, estimator,
                                       [g for g in groups if g != 'probe'], MIN_SIGNAL_GAIN)
    gates['probe'] = probe_gate
    return signals_on, gates


def fit_difficulty(model: ModelDescription, frames: Frames, points: Sequence[OperatingPoint],
                   scores: Scores, timing: Timing, streaming: Streaming, fit_n: int,
                   recording_fits: Optional[Sequence[int]], budget: float) -> Difficulty:
    """The difficulty estimate from the signal groups kept by blocked cross-validation over
    the fit frames (each recording one fold where there are several), each group's held-out
    correlation, and the result map read within the fit frames' feature range."""
    fit, held = slice(0, fit_n), slice(fit_n, len(frames))
    probe, cheap, ref = _probe_signal(scores, frames, timing, fit_n)
    cheapest_px = min(OperatingPoint.parse(k).width * OperatingPoint.parse(k).height
                      for k in scores.seeing)
    feats = complexity_features(scores.task, frames, scores.preds[scores.golden],
                                scores.confs[scores.golden], probe, cheapest_px)
    groups = [g for g in SIGNALS if g != 'probe' or probe is not None]
    folds = validation_folds(fit_n, recording_fits)
    probe_every = PipelineConfig().probe_every
    probe_ms = (timing.median[cheap] + timing.median[ref]) / probe_every if probe is not None \
        else 0.0
    signals_on, gates = _gate_signals(feats, scores, points, timing, streaming, folds, held,
                                      groups, budget, probe_ms)
    loss = scores.loss
    for g, v in gates.items():          # each group alone, fitted on every fit frame
        if fit_n < len(frames):
            v.eval_correlation = correlation(estimator(feats[fit], loss[fit], [g])(
                feats[held]), loss[held])
    results = {k: result_features(scores.task, frames, scores.preds[k][fit],
                                  scores.confs[k][fit], cheapest_px) for k in scores.preds}
    params = replace(fit_complexity(feats[fit], loss[fit], signals_on),
                     result_map=result_map(results, scores.golden),
                     feature_range=feature_range(feats[fit]))
    mon = ComplexityMonitor(params)
    cplx = np.array([mon.score_features(f) for f in feats])
    # how far the per-bin table can be trusted: the estimate's correlation with the loss
    # out of fold (each fold predicted by a fit on the others)
    trust_r = correlation(out_of_fold(feats, loss, folds, estimator, signals_on),
                          loss[:fit_n]) if signals_on else None
    return Difficulty(feats, folds, signals_on, gates, params, cplx, trust_r,
                      probe_every if 'probe' in signals_on else 0)


def price(points: Sequence[OperatingPoint], scores: Scores, timing: Timing,
          streaming: Streaming, difficulty: Difficulty, held: slice,
          budget: float) -> Dict[str, Any]:
    """Step *price*: the per-point shortfall models (set on ``difficulty.params``) and the
    compute price that keeps the scheduler's choices within ``budget`` of the best static
    point on every fold (:func:`point_decisions`); the rest as the profile's fields."""
    decide = point_decisions(difficulty.feats, scores.acc, scores.cms, points, scores.seeing,
                             difficulty.signals_on, difficulty.folds, held, scores.overall_fit,
                             timing.median, budget, streaming.weights,
                             difficulty.params.feature_range, scores.task.scoring.value)
    difficulty.params.point_models = decide.pop('point_models')
    decide.pop('outcome')
    return decide


def _data_source(frames: Frames, fit_n: int, labelled: bool) -> Dict[str, Any]:
    """What the profile was fitted on, and where its held-out frames begin."""
    n = len(frames)
    return {**frames.source, 'reference': 'labels' if labelled else 'golden point',
            'fit_frames': int(fit_n), 'eval_frames': int(n - fit_n),
            'eval_from_stamp_ns': frames.source['recordings'][0]['eval_from_stamp_ns']
            if 'recordings' in frames.source else
            int(frames.stamps_ns[fit_n]) if fit_n < n else None}


def _accuracy_section(points: Sequence[OperatingPoint], scores: Scores, bins: np.ndarray,
                      fit: slice, trust: float, decide: Dict[str, Any]) -> Dict[str, Any]:
    """The profile's accuracy table: per point per complexity bin (shrunk by ``trust``)."""
    table, raw, overall = _bin_table(scores.cms, points, fit, bins, trust,
                                     scores.task.scoring.value)
    metric = scores.task.scoring.metric
    return {'metric': metric if scores.labelled else f'agreement {metric} (vs the golden point)',
            'bin_edges': np.linspace(0.0, 1.0, N_BINS + 1).tolist(), 'miou': table,
            'miou_unshrunk': raw, 'overall': overall, 'per_class_iou': scores.per_class,
            'bin_counts': np.bincount(bins[fit], minlength=N_BINS).tolist(),
            'compute_price': decide.pop('compute_price'),
            'accuracy_budget': decide.pop('accuracy_budget'),
            'exact': {p.key: scores.task.exact_figures(scores.preds[p.key][fit],
                                                       scores.refs[fit]) for p in points}}


def assemble(model: ModelDescription, backend, frames: Frames,
             points: Sequence[OperatingPoint], fit_n: int, int8_bound: float, scores: Scores,
             timing: Timing, streaming: Streaming, difficulty: Difficulty,
             decide: Dict[str, Any]) -> Profile:
    """Step *assemble*: the profile, validated by its one loader."""
    fit, held = slice(0, fit_n), slice(fit_n, len(frames))
    trust = float(np.clip(difficulty.trust_r or 0.0, 0.0, 1.0))
    cplx, loss = difficulty.cplx, scores.loss
    accuracy = _accuracy_section(points, scores, _bins(cplx), fit, trust, decide)
    return Profile.from_dict({
        'version': PROFILE_VERSION, 'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'machine': machine_info(backend.device),
        'model': model.name, 'model_hash': model.hash(), 'classes': list(model.classes),
        'backend': backend.name, 'device': str(backend.device),
        'data': _data_source(frames, fit_n, scores.labelled),
        'frames': len(frames), 'points': [p.key for p in points], 'golden': scores.golden,
        'latency_ms': timing.latency, 'batch_latency_ms': timing.batch,
        'accuracy': accuracy,
        'complexity': {**difficulty.params.to_dict(),
                       'fit_correlation': correlation(cplx[fit], loss[fit]),
                       'signals': {g: asdict(v) for g, v in difficulty.gates.items()},
                       'probe_every': difficulty.probe_every,
                       'validation_correlation': difficulty.trust_r,
                       'eval_correlation': correlation(cplx[held], loss[held]),
                       'table_trust': trust, **decide},
        'int8_agreement_bound': int8_bound, 'precision_agreement': scores.agreement,
        'precision_worst_class_iou': scores.worst, 'unusable': scores.unusable,
        'class_floor': {'floor': SchedulerConfig().class_floor, 'blind': scores.blind},
        'staleness': streaming.stale, 'staleness_period_ms': streaming.period_ms,
    }, 'calibrate\'s profile')


def build_profile(model: ModelDescription, backend, frames: Frames,
                  points: Sequence[OperatingPoint], fit_n: int, latency_runs: int = LATENCY_RUNS,
                  int8_bound: float = INT8_BOUND, quiet: bool = False,
                  accuracy_budget: float = ACCURACY_BUDGET,
                  recording_fits: Optional[Sequence[int]] = None) -> Profile:
    """The profile of ``points`` from ``frames``: score, measure, stream, fit, price and
    assemble (see the module), fitted on the first ``fit_n`` frames and checked on the rest.
    ``recording_fits``: where the fit frames are several recordings'
    (:func:`~tts_perception.bag.recordings.read_recordings`), how many each has, in order:
    each recording is then one fold of the validation."""
    if recording_fits is not None and sum(recording_fits) != fit_n:
        raise ValueError(f'the recordings\' fit frames {list(recording_fits)} do not add up '
                         f'to the {fit_n} fit frames')
    if fit_n < 10:
        raise ValueError(f'calibration needs at least 10 frames to fit on, got {fit_n}')
    fit, held = slice(0, fit_n), slice(fit_n, len(frames))
    scores = score(task_for(model), backend, frames, points, fit, int8_bound, quiet)
    timing = measure(model, backend, frames, points, latency_runs, quiet)
    streaming = stream(scores, frames, fit_n, timing)
    difficulty = fit_difficulty(model, frames, points, scores, timing, streaming, fit_n,
                                recording_fits, accuracy_budget)
    decide = price(points, scores, timing, streaming, difficulty, held, accuracy_budget)
    return assemble(model, backend, frames, points, fit_n, int8_bound, scores, timing,
                    streaming, difficulty, decide)
