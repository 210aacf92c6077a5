"""calibrate: fit the scheduler's profile to your model on your robot's own recorded bag.

    python -m tts_perception.calibrate BAG [BAG ...] --model DIR [--image-topic T]
        [--labels-topic T] [--frames N] [--fit-fraction 0.5] [--int8]
        [--resolutions auto | WxH WxH ...] [--precisions auto | P ...] [--int8-bound 0.5]
        [--backend auto] [--out PATH]

Its defaults are the node's: backend ``auto`` and every precision the model lists.

1. Reads the bag's images (``--image-topic``, or its only image topic) and, with
   ``--labels-topic`` (mono8 class ids, matched by header stamp), ground truth. The first
   ``--fit-fraction`` of the frames calibrates; the rest is held out for
   ``python -m tts_perception.evaluate``. Several bags (recordings of different places or
   days): the first ``--fit-fraction`` of each calibrates, and the signals and the compute
   price are validated across them (steps 4 and 5).
2. Operating points: the model's depths x resolutions (default: 1/4, 1/2 and the full camera
   size, in multiples the model takes; its own size for a fixed-size model) x precisions.
3. Accuracy of every point on every frame, against the labels or, without labels, against the
   golden point's own output (*agreement*, as Chameleon, SIGCOMM'18, calibrates on unlabelled
   video), with per-class IoU so that a small class is not hidden by background.
4. Fits the difficulty estimate (its target: how much accuracy the points lose on the frame)
   from the signal groups of :mod:`tts_perception.adaptive.difficulty` (content, the model's
   confidence, the previous result's segments, probes at the node's ``probe_every``), keeping a
   group only where it adds to what the estimate explains out of fold (blocked cross-validation
   over the calibration frames; probes also only where they pay for their compute; with several
   recordings, each recording is one fold: a group is kept only where it predicts a recording
   it was not fitted on); records each group's gain and which are on, and reports the
   estimate's correlation on the held-out frames. The accuracy table per complexity bin is
   trusted only that far: each point's bins are shrunk towards its overall accuracy by the
   out-of-fold correlation (clipped to [0, 1]), so an estimate that does not generalise leaves
   the scheduler choosing by overall accuracy. On the same signals it fits one model per point
   of how far that point falls short of the best on a frame (a frame hard for the shallow exits
   can be easy for a lower resolution), each scaled by how far it held out of fold; the
   scheduler decides with these. Both estimates read every frame within the range of features
   the fit frames spanned (recorded in the profile), so a new course or an unseen result does
   not extrapolate them.
5. The compute price: the scheduler takes, on each frame, the best predicted accuracy
   (weighed for staleness as the node's objective does, at the recorded camera rate) less a
   price per ms of median latency. Calibrate judges that rule on its frames with the point
   models' out-of-fold predictions and keeps the largest price at which the chosen outputs
   stay within ``--accuracy-budget`` of the best static point (the most accurate point that
   sees every class) on each fold, against that fold's own best: a stretch of the recording
   (or, with several, each recording) as hard as a new course may be, not only the average.
6. ``--int8``: static int8 quantization calibrated on these frames (layout-aware, through the
   model's own preprocessing); an int8 point whose worst per-class IoU against fp32 falls
   below ``--int8-bound`` is marked unusable in the profile (the node never chooses it).
7. Measures every point's latency on this machine (``--latency-runs`` per point, in three
   rounds over the points, each quantile the median of the rounds', so that a burst of noise
   on a busy machine does not become one point's tail) and writes the profile (default:
   ``profile_cpu.json`` in the model directory, ``profile_cuda.json`` on a CUDA backend, which
   the node and pipeline find there by default), recording the data it was fitted on, and a
   plot next to it.
"""

import argparse
from dataclasses import asdict, dataclass, field, replace
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.complexity import (ComplexityMonitor, ComplexityParams,
                                                estimator, feature_range, fit_complexity,
                                                fit_point_models, obstacle_class, result_map)
from tts_perception.adaptive.difficulty import (correlation, FEATURES, frame_loss,
                                                frame_shortfall, out_of_fold,
                                                price_for_every_part, probe_losses, probe_pair,
                                                SCORE_STEP, select_signals, SignalGate,
                                                SIGNALS, within_point_correlation)
from tts_perception.adaptive.pipeline import PipelineConfig
from tts_perception.adaptive.profile_data import Profile, PROFILE_VERSION
from tts_perception.adaptive.scheduler import (blind_points, SchedulerConfig, stale_weight,
                                               StreamingTable)
from tts_perception.common.metrics import ConfusionMatrix
from tts_perception.common.progress import Progress
from tts_perception.inference.model_desc import ModelDescription, ModelError
from tts_perception.inference.points import (golden_point, make_points, OperatingPoint,
                                             parse_resolution)
from tts_perception.inference.runner import infer

N_BINS = 5
SUB = SCORE_STEP          # accuracy is scored on every 4th pixel in both directions
INT8_BOUND = 0.5          # worst per-class IoU of int8 vs fp32 below this: point unusable
LATENCY_RUNS = 45          # timed runs per point ...
LATENCY_PASSES = 3         # ... in rounds over the points (see measure_latencies)
STALE_LAGS = 10           # staleness: accuracy against the frames up to 10 camera periods later
FRACTIONS = (0.25, 0.5, 1.0)
# a signal group must add 0.05 to the share of the loss's variance explained out of fold
# (r²) to be kept
MIN_SIGNAL_GAIN = 0.05
FOLDS = 3                 # blocked cross-validation of the difficulty signals
# the accuracy the scheduler may give up below the best static point for compute: under the
# 0.005 at which two accuracies count as equal, with room for scenes calibration never saw
ACCURACY_BUDGET = 0.003


@dataclass
class Frames:
    """Frames to calibrate or evaluate on, in recorded order.

    ``labels``: ground-truth class ids per frame, or None (unlabelled: agreement with the
    golden point); ``seq``: sequence id per frame (temporal state restarts where it changes);
    ``arrival_ns``: when each frame was recorded (log time), ``stamps_ns``: its capture stamp.
    """

    rgb: List[np.ndarray]
    stamps_ns: np.ndarray
    labels: Optional[List[np.ndarray]] = None
    seq: Optional[np.ndarray] = None
    arrival_ns: Optional[np.ndarray] = None
    source: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.rgb)
        self.stamps_ns = np.asarray(self.stamps_ns, np.int64)
        if self.seq is None:
            self.seq = np.zeros(n, np.int64)
        if self.arrival_ns is None:
            self.arrival_ns = self.stamps_ns.copy()
        if not (len(self.stamps_ns) == len(self.seq) == len(self.arrival_ns) == n) or \
                (self.labels is not None and len(self.labels) != n):
            raise ValueError('frames, stamps, labels and sequence ids differ in length')

    def __len__(self) -> int:
        return len(self.rgb)

    def part(self, lo: int, hi: int) -> 'Frames':
        """Frames [lo, hi) as their own set."""
        return Frames(self.rgb[lo:hi], self.stamps_ns[lo:hi],
                      None if self.labels is None else self.labels[lo:hi], self.seq[lo:hi],
                      self.arrival_ns[lo:hi], dict(self.source))


def read_bag(bag: Path, image_topic: Optional[str] = None, labels_topic: Optional[str] = None,
             max_frames: int = 0, quiet: bool = False) -> Frames:
    """A bag's frames (optionally with labels) as :class:`Frames`; BagError naming what is
    wrong (no image topic, several and none chosen, a labels topic that is not mono8 or
    matches no frame)."""
    from tts_perception.bag.rosbag import (BagError, image_topics, ImageDecodeError,
                                           read_frames, same_topic)
    topics = image_topics(bag, [image_topic] if image_topic else None)
    if labels_topic:
        topics = {t: m for t, m in topics.items() if not same_topic(t, labels_topic)}
        image_topics(bag, [labels_topic])           # present and an image topic
    if image_topic is None:
        if len(topics) != 1:
            raise BagError(f'bag {bag} has image topics {sorted(topics)}; choose one with '
                           f'--image-topic')
        image_topic = next(iter(topics))
    rgb, stamps, arrivals, labels = [], [], [], {}
    prog = Progress(max_frames or 1, f'read {Path(bag).name}', quiet=quiet or not max_frames)
    want = [image_topic] + ([labels_topic] if labels_topic else [])
    for f in read_frames(bag, want, keep_raw=bool(labels_topic)):
        if same_topic(f.topic, image_topic):
            if max_frames and len(rgb) >= max_frames:
                if not labels_topic:
                    break
                continue
            rgb.append(f.rgb)
            stamps.append(f.stamp_ns)
            arrivals.append(f.log_time_ns)
            prog.update(len(rgb))
        else:
            if f.encoding != 'mono8':
                raise ImageDecodeError(f'labels topic {labels_topic} must be mono8 class ids, '
                                       f'got {f.encoding}')
            labels[f.stamp_ns] = f.raw
    prog.close()
    if not rgb:
        raise BagError(f'bag {bag}: topic {image_topic} has no frames')
    lab = None
    if labels_topic:
        keep = [i for i, s in enumerate(stamps) if s in labels]
        if not keep:
            raise BagError(f'bag {bag}: no message on {labels_topic} has the header stamp of '
                           f'a frame on {image_topic}')
        rgb = [rgb[i] for i in keep]
        stamps, arrivals = [stamps[i] for i in keep], [arrivals[i] for i in keep]
        lab = [labels[s] for s in stamps]
    return Frames(rgb, np.asarray(stamps), lab, None, np.asarray(arrivals),
                  {'bag': str(Path(bag).resolve()), 'image_topic': image_topic,
                   'labels_topic': labels_topic, 'first_stamp_ns': int(stamps[0]),
                   'frames': len(rgb)})


def read_recordings(bags: Sequence[Path], fit_fraction: float, image_topic: Optional[str] = None,
                    labels_topic: Optional[str] = None, max_frames: int = 0,
                    quiet: bool = False) -> Tuple[Frames, List[int]]:
    """The frames of one or more recordings for calibrate, and how many of each it fits on: the
    first ``fit_fraction`` of each recording's frames. One bag: its frames in order. Several:
    every recording's fit frames first, in bag order, then their held-out frames, each part
    its own sequence (temporal state restarts), with the recordings listed in the source."""
    parts = [read_bag(b, image_topic, labels_topic, max_frames, quiet) for b in bags]
    if len(parts) == 1:
        return parts[0], [int(round(len(parts[0]) * fit_fraction))]
    shapes = {p.rgb[0].shape for p in parts}
    if len(shapes) > 1:
        raise ValueError(f'the bags\' images differ in size (height, width, channels): '
                         f'{sorted(shapes)}')
    fits = [int(round(len(p) * fit_fraction)) for p in parts]
    pieces = [p.part(0, k) for p, k in zip(parts, fits)] + \
        [p.part(k, len(p)) for p, k in zip(parts, fits) if k < len(p)]
    recordings = [{'bag': p.source['bag'], 'image_topic': p.source['image_topic'],
                   'frames': len(p), 'fit_frames': k,
                   'eval_from_stamp_ns': int(p.stamps_ns[k]) if k < len(p) else None}
                  for p, k in zip(parts, fits)]
    labelled = parts[0].labels is not None
    return Frames([x for q in pieces for x in q.rgb],
                  np.concatenate([q.stamps_ns for q in pieces]),
                  [x for q in pieces for x in q.labels] if labelled else None,
                  np.concatenate([np.full(len(q), i, np.int64) for i, q in enumerate(pieces)]),
                  np.concatenate([q.arrival_ns for q in pieces]),
                  {**parts[0].source, 'recordings': recordings}), fits


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


def _scores(model: ModelDescription, backend, frames: Frames, points: Sequence[OperatingPoint],
            quiet: bool) -> Tuple[Dict[str, List[np.ndarray]], Dict[str, np.ndarray]]:
    """Subsampled labels of every point on every frame (all exits of a (resolution,
    precision) from one pass) and every point's confidence per frame."""
    combos = sorted({(p.resolution, p.precision) for p in points})
    depth = max(p.depth for p in points)
    preds: Dict[str, List[np.ndarray]] = {p.key: [] for p in points}
    confs = {p.key: np.zeros(len(frames), np.float32) for p in points}
    prog = Progress(len(frames) * len(combos), 'accuracy', quiet=quiet)
    k = 0
    for i, rgb in enumerate(frames.rgb):
        for (w, h), prec in combos:
            full = OperatingPoint(w, h, depth, prec)
            for d, (labels, conf) in enumerate(infer(model, backend, [rgb], full,
                                                     all_exits=True), 1):
                key = OperatingPoint(w, h, d, prec).key
                if key in preds:
                    preds[key].append(labels[0][::SUB, ::SUB].copy())
                    confs[key][i] = conf[0]
            k += 1
            prog.update(k)
    prog.close()
    return preds, confs


def _confusions(preds: Dict[str, List[np.ndarray]], refs: List[np.ndarray], n: int
                ) -> Dict[str, np.ndarray]:
    """Per point, per frame confusion matrices [F, C, C] against the references."""
    return {k: np.stack([ConfusionMatrix(n).add(p, r).m for p, r in zip(v, refs)])
            for k, v in preds.items()}


def staleness(preds: Dict[str, List[np.ndarray]], refs: List[np.ndarray], seq: Sequence,
              num_classes: int, frames: range, lags: int = STALE_LAGS) -> Dict[str, List[float]]:
    """Per point, the accuracy (mIoU) of its output on frame t against the reference of frame
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
            cm = ConfusionMatrix(num_classes)
            for t in pk:
                cm.add(pv[t], refs[t + k])
            row.append(cm.miou())
        out[key] = row
    return out


def _miou(m: np.ndarray) -> float:
    return ConfusionMatrix(len(m)).add_matrix(m).miou()


def complexity_features(model: ModelDescription, frames: Frames,
                        golden_labels: List[np.ndarray], golden_conf: np.ndarray,
                        probe: Optional[np.ndarray] = None, cheapest_px: int = 160 * 120
                        ) -> np.ndarray:
    """The monitor's features frame by frame, in sequence (the previous result being the
    golden point's, upsampled from the scored grid; ``probe``: the probe_loss feature of
    each frame, see :func:`~tts_perception.adaptive.difficulty.probe_losses`)."""
    mon = ComplexityMonitor(ComplexityParams.neutral(), obstacle_label=obstacle_class(
        model.classes), cheapest_px=cheapest_px)
    feats, first = [], []
    for i, rgb in enumerate(frames.rgb):
        if i > 0 and frames.seq[i] != frames.seq[i - 1]:
            mon.reset()
        first.append(not mon.has_result)
        feats.append(mon.features(rgb))
        g = golden_labels[i]
        mon.observe_result(np.repeat(np.repeat(g, SUB, 0), SUB, 1), float(golden_conf[i]))
    out = np.stack(feats)
    # a sequence's first frame has no previous result: it takes the other frames' mean, as
    # the node takes the fitted mean then (any other value is an outlier the fit would follow)
    first = np.asarray(first)
    result = [FEATURES.index(f) for g in ('confidence', 'segments') for f in SIGNALS[g]]
    if first.any() and not first.all():
        out[np.ix_(first, result)] = out[~first][:, result].mean(0)
    out[:, FEATURES.index('probe_loss')] = 0.0 if probe is None else probe
    return out


def result_features(model: ModelDescription, labels: Sequence[np.ndarray],
                    confidence: np.ndarray, cheapest_px: int) -> np.ndarray:
    """[frames, RESULT_FEATURES]: what each result shows, as the monitor reads it (labels on
    the scored grid, upsampled as in :func:`complexity_features`)."""
    mon = ComplexityMonitor(ComplexityParams.neutral(), obstacle_label=obstacle_class(
        model.classes), cheapest_px=cheapest_px)
    return np.stack([mon.result_values(np.repeat(np.repeat(g, SUB, 0), SUB, 1), float(c))
                     for g, c in zip(labels, confidence)])


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
               bins: np.ndarray, trust: float) -> Tuple[Dict, Dict, Dict]:
    """Per point its accuracy per complexity bin on ``frames`` (shrunk towards its overall
    accuracy by ``trust``, and as measured) and overall."""
    table, raw, overall = {}, {}, {}
    b_f = bins[frames]
    for p in points:
        m = cms[p.key][frames]
        overall[p.key] = _miou(m.sum(0))
        raw[p.key] = [_miou(m[b_f == b].sum(0)) if (b_f == b).any() else overall[p.key]
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
                weight: Optional[Dict[str, float]], probe_ms: float) -> str:
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
                               cost, budget, weight)['outcome']
        out[name] = (a, c + (probe_ms if name == 'with' else 0.0))
    (a1, c1), (a0, c0) = out['with'], out['without']
    reference = max(overall_fit[k] for k in seeing)
    if c1 < c0 and a1 >= min(a0, reference - budget):
        return ''
    return (f'probes do not pay out of fold: at the compute price for the accuracy budget, '
            f'with them {a1:.3f} at {c1:.2f} ms (probes included), without {a0:.3f} at '
            f'{c0:.2f} ms')


def reduced_precision_checks(model: ModelDescription, points: Sequence[OperatingPoint],
                             preds: Dict[str, List[np.ndarray]], fit: slice, bound: float
                             ) -> Tuple[Dict, Dict, Dict[str, str]]:
    """Per (resolution, depth) of every precision other than fp32: pixel agreement and worst
    per-class IoU with fp32 on the calibration frames; int8 points below ``bound`` are
    unusable (point -> reason)."""
    agreement: Dict[str, Dict[str, float]] = {}
    worst: Dict[str, Dict[str, float]] = {}
    unusable: Dict[str, str] = {}
    keys = {p.key for p in points}
    for p in points:
        if p.precision == 'fp32':
            continue
        ref = OperatingPoint(p.width, p.height, p.depth, 'fp32').key
        if ref not in keys:
            continue
        rd = f'{p.width}x{p.height}/d{p.depth}'
        a, b = preds[p.key][fit], preds[ref][fit]
        agreement.setdefault(p.precision, {})[rd] = float(np.mean(
            [np.mean(x == y) for x, y in zip(a, b)]))
        cm = ConfusionMatrix(model.num_classes)
        for x, y in zip(a, b):
            cm.add(x, y)
        iou = cm.iou()
        if not np.isfinite(iou).any():
            continue
        c = int(np.nanargmin(iou))
        worst.setdefault(p.precision, {})[rd] = float(iou[c])
        if p.precision == 'int8' and iou[c] < bound:
            unusable[p.key] = (f'int8 loses class {model.classes[c]}: IoU with fp32 '
                               f'{iou[c]:.3f} < bound {bound}')
    return agreement, worst, unusable


def timed_runs(model, backend, frames: Sequence[np.ndarray], point: OperatingPoint, n: int,
               warmup: int = 5, batch: int = 1, first: int = 0, clock=time.perf_counter
               ) -> List[float]:
    """Latency (ms) of ``n`` runs of one point incl. pre/post-processing after ``warmup``
    untimed ones, on batches of ``frames`` taken in turn from index ``first``."""
    times = []
    for i in range(warmup + n):
        fr = [frames[(first + i * batch + j) % len(frames)] for j in range(batch)]
        t = clock()
        infer(model, backend, fr, point)
        if i >= warmup:
            times.append((clock() - t) * 1e3)
    return times


def measure_latency(model, backend, frames: np.ndarray, point: OperatingPoint, n: int = 30,
                    warmup: int = 5, batch: int = 1) -> Dict[str, float]:
    """Latency distribution (ms) of one point incl. pre/post-processing, after warm-up, in one
    block of runs."""
    return pass_quantiles([timed_runs(model, backend, frames, point, n, warmup, batch)])


def pass_quantiles(passes: Sequence[Sequence[float]]) -> Dict[str, float]:
    """A point's latency distribution (ms) from its timed runs in several passes: each
    quantile is the median over the passes of that pass's quantile (the mean is over every
    run), so a burst of host noise within one pass moves that pass's tail, not the point's."""
    runs = [np.asarray(x, float) for x in passes if len(x)]
    if not runs:
        raise ValueError('no timed runs')
    q = {k: float(np.median([np.percentile(a, v) for a in runs]))
         for k, v in (('p50', 50), ('p95', 95), ('p99', 99))}
    every = np.concatenate(runs)
    return {**q, 'mean': float(every.mean()), 'n': int(len(every))}


def measure_latencies(model, backend, frames: Sequence[np.ndarray],
                      points: Sequence[OperatingPoint], n: int = LATENCY_RUNS,
                      passes: int = LATENCY_PASSES,
                      warmup: int = 5, clock=time.perf_counter, progress=None
                      ) -> Dict[str, Dict[str, float]]:
    """Latency distribution (ms) of every point incl. pre/post-processing: ``passes`` rounds
    over the points, each point warmed up and timed ceil(n / passes) times per round, combined
    by :func:`pass_quantiles`. On a busy machine noise comes in bursts of seconds; timed in one
    block, a point's tail was whatever burst fell on its block (a 2-core machine once gave one
    point a p95 of 1.8 x its p50, and the node then judged it to miss a deadline it met);
    timed in rounds, a burst lands in one round of a few points. ``progress(done, total)``
    is called after each point's block."""
    passes = max(1, passes)
    per = max(1, -(-n // passes))
    times: Dict[str, List[List[float]]] = {p.key: [] for p in points}
    total, done = passes * len(points), 0
    for r in range(passes):
        for p in points:
            times[p.key].append(timed_runs(model, backend, frames, p, per, warmup,
                                           first=r * per, clock=clock))
            done += 1
            if progress is not None:
                progress(done, total)
    return {k: pass_quantiles(v) for k, v in times.items()}


def machine_info(device: str) -> Dict[str, object]:
    """Where a profile or bench ran: platform, CPUs and, on CUDA, the GPU and torch build."""
    info: Dict[str, object] = {'platform': platform.platform(),
                               'processor': platform.processor(), 'cpus': os.cpu_count()}
    if str(device).startswith('cuda'):
        import torch
        info.update(gpu=torch.cuda.get_device_name(0), torch=torch.__version__,
                    cuda=torch.version.cuda)
    return info


def point_decisions(feats: np.ndarray, acc: np.ndarray, cms: Dict[str, np.ndarray],
                    points: Sequence[OperatingPoint], seeing: Sequence[str],
                    signals_on: Sequence[str], folds: Sequence[np.ndarray], held: slice,
                    overall_fit: Dict[str, float], cost: Dict[str, float], budget: float,
                    weight: Optional[Dict[str, float]] = None,
                    fitted_range: Optional[List[List[float]]] = None) -> Dict[str, Any]:
    """The per-point shortfall models and the compute price (see the module's steps 4 and 5),
    and the outcome of the rule there on the fold frames (accuracy, mean compute ms).
    ``acc`` [points, frames]: per-frame accuracy; ``cms``: per point its per-frame confusion
    matrices; ``seeing``: the usable points that see every class (the price is judged on
    those); ``overall_fit``: each point's accuracy on the fold frames; ``cost``: latency per
    point (ms); ``weight``: per point the factor the scheduler
    weighs its accuracy with for staleness (:func:`stale_weights`; none: 1);
    ``fitted_range``: the fit frames' feature range, which the held-out frames are read
    within as the node reads them (none: as they are). Returns the profile's fields and
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
        SchedulerConfig().accuracy_tolerance)
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


def build_profile(model: ModelDescription, backend, frames: Frames,
                  points: Sequence[OperatingPoint], fit_n: int, latency_runs: int = LATENCY_RUNS,
                  int8_bound: float = INT8_BOUND, quiet: bool = False,
                  accuracy_budget: float = ACCURACY_BUDGET,
                  recording_fits: Optional[Sequence[int]] = None) -> Profile:
    """The profile table of ``points`` from ``frames``: accuracy and complexity fitted on the
    first ``fit_n`` frames, correlation checked on the rest, latency measured now.
    ``recording_fits``: where the fit frames are several recordings' (:func:`read_recordings`),
    how many of them each has, in order: each recording is then one fold of the validation."""
    n = len(frames)
    if recording_fits is not None and sum(recording_fits) != fit_n:
        raise ValueError(f'the recordings\' fit frames {list(recording_fits)} do not add up '
                         f'to the {fit_n} fit frames')
    if fit_n < 10:
        raise ValueError(f'calibration needs at least 10 frames to fit on, got {fit_n}')
    golden = golden_point(points)
    preds, confs = _scores(model, backend, frames, points, quiet)
    labelled = frames.labels is not None
    refs = [x[::SUB, ::SUB] for x in frames.labels] if labelled else preds[golden.key]
    cms = _confusions(preds, refs, model.num_classes)
    per_frame = {k: np.array([_miou(m) for m in v]) for k, v in cms.items()}
    acc = np.stack([per_frame[p.key] for p in points])
    acc = np.where(np.isfinite(acc), acc, 1.0)        # nothing to find and nothing found
    loss = frame_loss(acc)
    fit, held = slice(0, fit_n), slice(fit_n, n)
    prog = Progress(LATENCY_PASSES * len(points), 'latency', quiet=quiet)
    lat = measure_latencies(model, backend, frames.rgb, points, n=latency_runs,
                            progress=lambda done, total: prog.update(done))
    prog.close()
    batch_lat = {}
    prog = Progress(len(points), 'batch latency', quiet=quiet)
    for j, p in enumerate(points):
        if model.fixed_batch is None:      # a model with a fixed batch size is never batched
            runs = max(10, latency_runs // 2)
            batch_lat[p.key] = {str(b): measure_latency(model, backend, frames.rgb, p, n=runs,
                                                        warmup=2, batch=b)['p95']
                                for b in (2, 4)}
        prog.update(j + 1)
    prog.close()
    per_class = {}
    for p in points:
        tot = cms[p.key][fit].sum(0)
        per_class[p.key] = ConfusionMatrix(len(tot)).add_matrix(tot).iou_values()
    agreement, worst, unusable = reduced_precision_checks(model, points, preds, fit,
                                                          int8_bound)
    floor = SchedulerConfig().class_floor
    blind = blind_points(per_class, model.classes, floor)

    # how fast each point's output goes stale at the recorded camera rate, and what the
    # scheduler's objective weighs each point's accuracy with for it
    stale = staleness(preds, refs, frames.seq, model.num_classes, range(fit_n))
    gaps = np.diff(np.asarray(frames.stamps_ns[:fit_n], np.int64))
    gaps = gaps[(gaps > 0) & (np.diff(frames.seq[:fit_n]) == 0)]
    stale_period = float(np.median(gaps)) / 1e6 if len(gaps) else None
    median = {k: v['p50'] for k, v in lat.items()}
    weights = stale_weights(stale, stale_period, median)

    # difficulty: probes as the pipeline makes them, every probe_every frames, on the
    # usable points that see every class (all usable points if none does)
    probe_every = PipelineConfig().probe_every
    usable = [p.key for p in points if p.key not in unusable]
    seeing = [k for k in usable if k not in blind] or usable
    overall_fit = {p.key: _miou(cms[p.key][fit].sum(0)) for p in points}
    cheap, ref = probe_pair(seeing, lambda k: lat[k]['p50'], overall_fit.__getitem__,
                            SchedulerConfig().accuracy_tolerance)
    probe = None
    if cheap != ref and probe_every > 0:
        raw_probe = probe_losses(preds[cheap], preds[ref], frames.seq, probe_every,
                                 model.num_classes, float('nan'))
        known = raw_probe[:fit_n][np.isfinite(raw_probe[:fit_n])]
        probe = np.where(np.isfinite(raw_probe), raw_probe, known.mean() if len(known) else 0.0)
    cheapest_px = min(OperatingPoint.parse(k).width * OperatingPoint.parse(k).height
                      for k in seeing)
    feats = complexity_features(model, frames, preds[golden.key], confs[golden.key], probe,
                                cheapest_px)
    groups = [g for g in ('content', 'confidence', 'segments', 'probe')
              if g != 'probe' or probe is not None]
    folds = validation_folds(fit_n, recording_fits)
    if min(len(f) for f in folds) >= 3:
        signals_on, gates = select_signals(feats, loss, folds, estimator, groups,
                                           MIN_SIGNAL_GAIN)
    else:                                   # too few frames to validate: no evidence, no signal
        signals_on, gates = [], {}
    if 'probe' in signals_on:
        # each probe charged both of its points, although the pipeline runs only the one
        # the rule did not run on the frame: a margin against a probe that explains the loss
        # on these frames and not on a new course
        note = _probe_pays(feats, acc, cms, points, seeing, signals_on, folds, held,
                           overall_fit, median, accuracy_budget, weights,
                           (median[cheap] + median[ref]) / probe_every)
        if note:        # the other groups chosen again, against no probe
            probe_gate = SignalGate(False, gates['probe'].validation_gain,
                                    gates['probe'].validation_correlation, note)
            signals_on, gates = select_signals(feats, loss, folds, estimator,
                                               [g for g in groups if g != 'probe'],
                                               MIN_SIGNAL_GAIN)
            gates['probe'] = probe_gate
    for g, v in gates.items():          # each group alone, fitted on every fit frame
        if fit_n < n:
            v.eval_correlation = correlation(estimator(feats[fit], loss[fit], [g])(
                feats[held]), loss[held])
    fitted_range = feature_range(feats[fit])
    params = replace(fit_complexity(feats[fit], loss[fit], signals_on),
                     result_map=result_map({k: result_features(model, preds[k][fit],
                                                               confs[k][fit], cheapest_px)
                                            for k in preds}, golden.key),
                     feature_range=fitted_range)
    mon = ComplexityMonitor(params)
    cplx = np.array([mon.score_features(f) for f in feats])
    # how far the per-bin table can be trusted: the estimate's correlation with the loss
    # out of fold (each fold predicted by a fit on the others)
    trust_r = correlation(out_of_fold(feats, loss, folds, estimator, signals_on),
                          loss[:fit_n]) if signals_on else None
    trust = float(np.clip(trust_r or 0.0, 0.0, 1.0))
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    bins = _bins(cplx)
    table, raw, overall = _bin_table(cms, points, fit, bins, trust)

    decide = point_decisions(feats, acc, cms, points, seeing, signals_on, folds, held,
                             overall_fit, median, accuracy_budget, weights, fitted_range)
    params.point_models = decide.pop('point_models')
    decide.pop('outcome')
    metric = 'mIoU' if labelled else 'agreement mIoU (vs the golden point)'
    return Profile.from_dict({
        'version': PROFILE_VERSION, 'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'machine': machine_info(backend.device),
        'model': model.name, 'model_hash': model.hash(), 'classes': list(model.classes),
        'backend': backend.name, 'device': str(backend.device),
        'data': {**frames.source, 'reference': 'labels' if labelled else 'golden point',
                 'fit_frames': int(fit_n), 'eval_frames': int(n - fit_n),
                 'eval_from_stamp_ns': frames.source['recordings'][0]['eval_from_stamp_ns']
                 if 'recordings' in frames.source else
                 int(frames.stamps_ns[fit_n]) if fit_n < n else None},
        'frames': int(n), 'points': [p.key for p in points], 'golden': golden.key,
        'latency_ms': lat, 'batch_latency_ms': batch_lat,
        'accuracy': {'metric': metric, 'bin_edges': edges.tolist(), 'miou': table,
                     'miou_unshrunk': raw,
                     'overall': overall, 'per_class_iou': per_class,
                     'bin_counts': np.bincount(bins[fit], minlength=N_BINS).tolist(),
                     'compute_price': decide.pop('compute_price'),
                     'accuracy_budget': decide.pop('accuracy_budget')},
        'complexity': {**params.to_dict(), 'fit_correlation': correlation(cplx[fit], loss[fit]),
                       'signals': {g: asdict(v) for g, v in gates.items()},
                       'probe_every': probe_every if 'probe' in signals_on else 0,
                       'validation_correlation': trust_r,
                       'eval_correlation': correlation(cplx[held], loss[held]),
                       'table_trust': trust, **decide},
        'int8_agreement_bound': int8_bound, 'precision_agreement': agreement,
        'precision_worst_class_iou': worst,
        'unusable': unusable,
        'class_floor': {'floor': floor, 'blind': blind},
        'staleness': stale, 'staleness_period_ms': stale_period,
    }, 'calibrate\'s profile')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    from tts_perception.bag.rosbag import BagError, ImageDecodeError
    from tts_perception.inference.backends import make_backend
    from tts_perception.inference.model_desc import load_model_description
    from tts_perception.tools.profile_report import plot_profile, print_signals, print_table
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('bag', type=Path, nargs='+',
                    help='one or more recordings (several: each one fold of the validation)')
    ap.add_argument('--model', type=Path, required=True, help='directory with model.yaml')
    ap.add_argument('--image-topic', default=None)
    ap.add_argument('--labels-topic', default=None, help='mono8 class ids (optional)')
    ap.add_argument('--frames', type=int, default=0,
                    help='use the first N frames of each bag (0: all)')
    ap.add_argument('--fit-fraction', type=float, default=0.5)
    ap.add_argument('--resolutions', nargs='+', default=['auto'])
    ap.add_argument('--precisions', nargs='+', default=['auto'],
                    help='auto (the node\'s default): every precision the model lists that '
                    'the backend runs')
    ap.add_argument('--int8', action='store_true',
                    help='quantize the model to int8 on these frames and profile it too')
    ap.add_argument('--int8-bound', type=float, default=INT8_BOUND)
    ap.add_argument('--accuracy-budget', type=float, default=ACCURACY_BUDGET,
                    help='accuracy the scheduler may give up below the best static point for '
                    'compute (calibrate finds the compute price that keeps it on these frames)')
    ap.add_argument('--backend', default=PipelineConfig().backend,
                    help='the node\'s default: the best engine available')
    ap.add_argument('--latency-runs', type=int, default=LATENCY_RUNS,
                    help='timed runs per point, in rounds over the points')
    ap.add_argument('--out', type=Path, default=None)
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    try:
        if not 0.0 < a.fit_fraction <= 1.0:
            raise ValueError(f'--fit-fraction must be in (0, 1], got {a.fit_fraction}')
        frames, fits = read_recordings(a.bag, a.fit_fraction, a.image_topic, a.labels_topic,
                                       a.frames, a.quiet)
        if not 0.0 <= a.accuracy_budget < 1.0:
            raise ValueError(f'--accuracy-budget must be in [0, 1), got {a.accuracy_budget}')
        model = load_model_description(a.model)
        h, w = frames.rgb[0].shape[:2]
        res = default_resolutions(model, (w, h)) if a.resolutions == ['auto'] else \
            [parse_resolution(r) for r in a.resolutions]
        for r in res:
            model.check_resolution(r)
        fit_n = sum(fits)
        if a.int8:
            mid = res[len(res) // 2]
            calib = frames.rgb[:fit_n][::max(1, fit_n // 32)]
            files = quantize(model, calib, mid)
            model = load_model_description(a.model)
            print(f'int8: wrote {", ".join(f.name for f in files)} (calibrated on '
                  f'{len(calib)} frames at {mid[0]}x{mid[1]}); model.yaml lists them')
        backend = make_backend(a.backend, model)
        asked = list(model.precisions) if a.precisions == ['auto'] else list(a.precisions)
        precisions = [p for p in dict.fromkeys(asked + (['int8'] if a.int8 else []))
                      if p in backend.supported_precisions()]
        if not precisions:
            raise ModelError(f'none of {a.precisions} runs on backend {backend.name}')
        points = make_points(res, model.depths, precisions)
        backend.prepare(precisions, res)
        t = build_profile(model, backend, frames, points, fit_n, a.latency_runs,
                          a.int8_bound, a.quiet, a.accuracy_budget, fits)
    except (BagError, ImageDecodeError, ModelError, ValueError) as exc:
        sys.stderr.write(f'calibrate: {exc}\n')
        return 2
    out = t.save(a.out or model.profile_path(backend.device))
    print_table(t)
    for k, why in t.unusable.items():
        print(f'unusable: {k}: {why}')
    print_signals(t)
    plot_profile(t, out.with_suffix('.png'))
    print(f'wrote {out} and {out.with_suffix(".png")}')
    return 0


def quantize(model: ModelDescription, frames: Sequence[np.ndarray], wh: Tuple[int, int]
             ) -> List[Path]:
    """int8 stages of ``model`` calibrated on ``frames``, listed in its model.yaml."""
    from tts_perception.inference.quantize import add_int8_stages, quantize_model
    files = quantize_model(model, frames, wh)
    add_int8_stages(model.root / 'model.yaml', files)
    return files


if __name__ == '__main__':
    sys.exit(main())
