"""evaluate: the adaptive policy vs every static point vs golden on your bag, no DDS needed.

    python -m tts_perception.evaluate BAG [--model DIR] [--profile P] [--deadline-ms D |
        --deadline-fraction F] [--rate 1.0] [--load none|cpu|gpu] [--all] [--out DIR]

Input: the part of the bag calibrate held out (every frame with ``--all`` or for a bag the
profile was not fitted on), replayed at its recorded arrival times through the node's own
frame gate and frame step; the deadline is the node's ``deadline_ms`` unless given. Output
per policy (:class:`~tts_perception.tools.eval_results.PolicyRun`): accuracy against the
labels (or agreement with the golden point), streaming accuracy, compute, misses and drops;
the per-frame hindsight oracle's frontier and the :class:`~tts_perception.tools.eval_results.
Comparison` of the policies against it; ``evaluate.json``, a Pareto plot and adaptive's
timeline. Compute times are the real ones, measured as the frames run. What each figure means
and why: doc/calibration.md.
"""

import argparse
from collections import Counter
from dataclasses import asdict
import json
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.difficulty import (correlation, frame_loss, frame_shortfall,
                                                within_point_correlation)
from tts_perception.adaptive.frame_step import Item, run_step
from tts_perception.adaptive.pipeline import AdaptivePipeline, FrameRequest, PipelineConfig
from tts_perception.adaptive.profile_data import Profile
from tts_perception.adaptive.scheduler import seeing_points
from tts_perception.common.frame_gate import arrivals_from, FrameGate, replay, Taken
from tts_perception.common.metrics import shown_at
from tts_perception.common.progress import Progress
from tts_perception.common.scoring import Scoring
from tts_perception.tasks import Task
from tts_perception.bag.recordings import read_bag
from tts_perception.common.frames import Frames
from tts_perception.inference.latency import machine_info
from tts_perception.tools.eval_results import Comparison, FrameRecord, PolicyRun, Share
from tts_perception.tools.load import start_load, stop_load
from tts_perception.tools import oracle

MEETS_DEADLINE = 0.01      # a static point "meets the deadline" at <= 1 % missed or dropped


def references(pipe: AdaptivePipeline, frames: Frames, quiet: bool = False
               ) -> Tuple[List[Any], str]:
    """Truth per frame in the task's scored form: the frames' own (labels, boxes), or the
    golden point's output; and the name of the accuracy scored against it."""
    task = pipe.task
    own = task.references(frames)
    if own is not None:
        return own, task.scoring.metric
    golden = pipe.camera('default').scheduler.golden
    prog = Progress(len(frames), 'golden outputs', quiet=quiet)
    out = []
    for i, rgb in enumerate(frames.rgb):
        out.append(task.scored(task.infer(pipe.backend, [rgb], golden)[0][0]))
        prog.update(i + 1)
    prog.close()
    return out, f'agreement {task.scoring.metric}'


def simulate(pipe: AdaptivePipeline, frames: Frames, refs: List[Any], policy: str,
             deadline_ms: float, anytime: bool = False, rate: float = 1.0,
             load: str = 'none', quiet: bool = True) -> PolicyRun:
    """One policy through the simulated camera: the node's frame gate and frame step on the
    frames' recorded arrivals; per-frame records and the summary."""
    pipe.restart(policy)
    pipe.set_anytime(anytime, pipe.config.anytime_confidence)
    n, task = len(frames), pipe.task
    arrivals = arrivals_from(frames.stamps_ns, frames.arrival_ns, range(n), rate)
    gate = FrameGate(deadline_ms)
    outputs, recs = [], []
    procs: List = []
    prog = Progress(n, policy + (' +anytime' if anytime else ''), quiet=quiet)

    def process(taken: Taken) -> float:
        j = taken.item
        if load != 'none' and not procs and j >= n // 2:
            procs.extend(start_load(load))
        req = FrameRequest(frames.rgb[j], deadline_ms=deadline_ms, stamp_ns=taken.stamp_ns,
                           transport_ms=taken.transport_ms, age_ms=taken.age_ms,
                           period_ms=gate.period_ms)
        (step,) = run_step(pipe, [Item(gate, taken, req, taken.wait_ms)])   # as the node
        if step.held:
            return 0.0
        pred = task.scored(step.output)
        rec = _record(pipe, step, pred, refs[j])
        outputs.append((rec.done_ms, pred))
        recs.append(rec)
        prog.update(j + 1)
        return step.rec.total_ms + step.probe_ms
    try:
        replay(gate, arrivals, process)
    finally:
        stop_load(procs)
        prog.close()
    arrive = [a.arrival_ms for a in arrivals]
    stream, per_frame_stream = streaming(task, outputs, arrive, refs)
    run = summarise(policy, anytime, n, task.scoring, gate, recs, stream, per_frame_stream)
    run.exact = exact_figures(task, outputs, recs, arrive, refs)
    if task.exact_names:
        run.outputs = {r.frame: o for r, (_, o) in zip(recs, outputs)}
    return run


def exact_figures(task: Task, outputs: Sequence, recs: List[FrameRecord],
                  arrivals_ms: Sequence[float], refs: List[Any]) -> Dict[str, Any]:
    """The task's figures that its evidence cannot add up (a detector's exact AP50 and
    mAP@[.5:.95]), of the processed frames and, as ``streaming_*``, of every frame's newest
    finished output (none yet: the task's empty output)."""
    own = task.exact_figures([o for _, o in outputs], [refs[r.frame] for r in recs])
    shown = [s if s is not None else task.nothing(refs[i])
             for i, s in enumerate(shown_at(outputs, arrivals_ms))]
    return {**own, **{f'streaming_{k}': v for k, v in task.exact_figures(shown, refs).items()}}


def _record(pipe: AdaptivePipeline, step, pred: Any, ref: Any) -> FrameRecord:
    """A processed frame's record, its output in scored form (``pred``) against ``ref``."""
    taken, rec = step.item.taken, step.rec
    return FrameRecord(
        frame=taken.item, start_ms=taken.take_ms, done_ms=taken.take_ms + rec.total_ms,
        point=rec.point, measured_ms=rec.measured_ms, probe_ms=step.probe_ms,
        total_ms=rec.total_ms, age_ms=rec.age_ms, missed=rec.missed,
        complexity=rec.complexity, shortfall=dict(pipe.camera(rec.camera).shortfall),
        stop_reason=rec.stop_reason,
        confusion=pipe.task.scoring.evidence(pred, ref))


def streaming(task: Task, outputs: Sequence, arrivals_ms: Sequence[float], refs: List[Any]):
    """Streaming accuracy (streaming AP for a detector, Li, Wang, Ramanan, ECCV 2020): at
    each frame's arrival the newest output finished by then (``outputs``: (done ms, scored
    output) in finishing order; none yet: the task's empty output) against that frame's
    truth; the summed evidence over every frame and the accuracy per frame."""
    scoring, total, per_frame_stream = task.scoring, None, []
    for i, latest in enumerate(shown_at(outputs, arrivals_ms)):
        pred = latest if latest is not None else task.nothing(refs[i])
        m = scoring.evidence(pred, refs[i])
        total = m if total is None else total + m
        per_frame_stream.append(scoring.value(m))
    return total, per_frame_stream


def summarise(policy: str, anytime: bool, n: int, scoring: Scoring, gate: FrameGate,
              recs: List[FrameRecord], stream: np.ndarray,
              per_frame_stream: List[float]) -> PolicyRun:
    """A run's figures from its records, its gate's counts and its streaming evidence."""
    c = gate.counts
    dropped = c.dropped + c.stale + c.future + c.tail
    acc = sum(r.confusion for r in recs)
    per_class = scoring.per_class(acc)
    missed = sum(r.missed for r in recs)
    ms = np.array([r.measured_ms + r.probe_ms for r in recs])     # probes are compute
    return PolicyRun(
        policy=policy, anytime=anytime, frames=n, processed=len(recs), dropped=dropped,
        tail=c.tail, missed=int(missed), miss_rate=missed / max(1, len(recs)),
        late_or_dropped=(missed + dropped) / n, accuracy=scoring.value(acc),
        per_class_iou=per_class,
        worst_class_iou=min((v for v in per_class if v is not None), default=float('nan')),
        streaming_accuracy=scoring.value(stream),
        streaming_per_class_iou=scoring.per_class(stream),
        mean_compute_ms=float(ms.mean()) if len(ms) else None,
        probes=int(sum(r.probe_ms > 0 for r in recs)),
        mean_probe_ms=float(np.mean([r.probe_ms for r in recs])) if recs else 0.0,
        p95_total_ms=float(np.percentile([r.total_ms for r in recs], 95)),
        camera_period_ms=gate.period_ms, points=dict(Counter(r.point for r in recs)),
        records=recs, streaming_per_frame=per_frame_stream)


def warm_points(pipe: AdaptivePipeline, frames: Frames, runs: int = 20) -> None:
    """Run every point on a few real frames before the first policy, so that none of them
    pays the engine's first runs (its arena growing, its caches filling)."""
    for p in pipe.points:
        for i in range(runs):
            pipe.task.infer(pipe.backend, [frames.rgb[i % len(frames)]], p)


def median_compute(run: PolicyRun, latency: Dict[str, float]) -> float:
    """A run's mean compute per processed frame with each chosen point at its median latency
    (``latency``, from the static runs: the oracle's scale), its probes as measured."""
    recs = run.records
    return float(np.mean([latency[r.point] + r.probe_ms for r in recs])) if recs \
        else float('nan')


def median_latency(run: PolicyRun) -> float:
    """A run's median measured latency per processed frame (ms)."""
    return float(np.median([r.measured_ms for r in run.records]))


def predicted_streaming(pipe: AdaptivePipeline, runs: Dict[str, PolicyRun]
                        ) -> Dict[str, float]:
    """Per static run, the streaming accuracy the profile predicts for it: its accuracy on
    calibrate's frames x the scheduler's staleness factor (:class:`~tts_perception.adaptive.
    scheduler.StreamingTable`, the profile's table) at its median latency in this run, on this
    camera's period, a fresh frame. The scheduler ranks late points by this; beside the
    measured streaming accuracy it tells whether calibrate's frames rank the points as these
    frames do. Empty where the profile measured no staleness."""
    table, overall = pipe.streaming, pipe.profile.accuracy.overall
    if not table.usable():
        return {}
    return {k: overall[k] * table.expected(k, median_latency(r), 0.0, r.camera_period_ms)
            for k, r in runs.items() if k in overall and k in table.table and r.records
            and r.camera_period_ms}


def policies(pipe: AdaptivePipeline) -> List[tuple]:
    """(name, policy, anytime) of every policy to compare."""
    out = [('adaptive', 'adaptive', False)]
    if len({p.depth for p in pipe.points}) > 1 and pipe.task.staged:
        out.append(('adaptive+anytime', 'adaptive', True))
    out.append(('golden', 'golden', False))
    out += [(p.key, f'static:{p.key}', False) for p in pipe.points]
    return out


def per_frame(pipe: AdaptivePipeline, frames: Frames, refs: List[Any],
              runs: Dict[str, PolicyRun], quiet: bool = True
              ) -> Optional[oracle.PerFrameTable]:
    """Every point on every frame, the per-frame oracle's table (None unless every point ran
    as a static policy: its median compute is the point's latency). A frame a static run
    already scored is taken from its record; only the frames it dropped are run again. For
    a task with exact figures the table keeps every output too."""
    keys = [p.key for p in pipe.points]
    if any(k not in runs or not runs[k].records for k in keys):
        return None
    latency = {k: median_latency(runs[k]) for k in keys}
    by_key = {p.key: p for p in pipe.points}
    task = pipe.task
    scored = {(k, r.frame): r.confusion for k in keys for r in runs[k].records}
    kept = {(k, f): o for k in keys for f, o in runs[k].outputs.items()}
    prog = Progress(len(keys) * len(frames), 'oracle: every point on every frame', quiet=quiet)
    done = [0]

    def score(key: str, f: int) -> np.ndarray:
        done[0] += 1
        prog.update(done[0])
        if (key, f) in scored:          # (and in kept, for a task with exact figures)
            return scored[(key, f)]
        output = task.scored(task.infer(pipe.backend, [frames.rgb[f]], by_key[key])[0][0])
        if task.exact_names:
            kept[(key, f)] = output
        return task.scoring.evidence(output, refs[f])
    table = oracle.per_frame_table(keys, latency, len(frames), task.scoring, score)
    prog.close()
    if task.exact_names:
        table.outputs = [[kept[(k, f)] for f in range(len(frames))] for k in keys]
    return table


def difficulty_correlation(table: oracle.PerFrameTable, run: PolicyRun) -> Optional[float]:
    """Correlation, over the frames a run processed, of the difficulty estimate it decided
    with and the frame's accuracy loss (:func:`~tts_perception.adaptive.difficulty.
    frame_loss`, from every point on the frame): the estimate on frames it was not fitted
    on. None where undefined (no spread)."""
    loss = frame_loss(table.frame_accuracy())
    recs = run.records
    return correlation(np.array([r.complexity for r in recs], float),
                       np.array([loss[r.frame] for r in recs], float))


def point_difficulty_correlation(table: oracle.PerFrameTable, run: PolicyRun
                                 ) -> Optional[float]:
    """How well the per-point estimate a run decided with told which frames were hard for
    which point: over the frames it processed, the within-point correlation
    (:func:`~tts_perception.adaptive.difficulty.within_point_correlation`) of each point's
    predicted shortfall and its actual one (short of the best point on the frame). None
    without point models."""
    short = frame_shortfall(table.frame_accuracy())
    recs = [r for r in run.records if r.shortfall]
    keys = [k for k in table.points if recs and all(k in r.shortfall for r in recs)]
    if not keys:
        return None
    rows = [table.points.index(k) for k in keys]
    frames = [r.frame for r in recs]
    return within_point_correlation(
        np.array([[r.shortfall[k] for r in recs] for k in keys]), short[rows][:, frames])


def decided_predictions(pipe: AdaptivePipeline, table: oracle.PerFrameTable, run: PolicyRun
                        ) -> Optional[np.ndarray]:
    """The accuracy the scheduler predicted for every point on every frame of ``run`` ([P, F]
    over ``table``'s points; -inf for a point below the class floor while one sees every
    class): what :func:`~tts_perception.tools.oracle.rule_frontier` replays. None unless the
    run processed every frame."""
    recs = sorted(run.records, key=lambda r: r.frame)
    if [r.frame for r in recs] != list(range(table.confusion.shape[1])):
        return None
    keys = table.points
    seeing = set(seeing_points(keys, pipe.worst_class_iou, pipe.sched_config.class_floor))
    pred = np.array([pipe.accuracy.frame(keys, r.complexity, r.shortfall)
                     for r in recs], float).T
    pred[[k not in seeing for k in keys]] = -np.inf
    return pred


def compare(runs: Dict[str, PolicyRun], tolerance: float = 0.005,
            front: Optional[List[oracle.FrontierPoint]] = None,
            rule_front: Optional[List[oracle.FrontierPoint]] = None) -> Comparison:
    """The targets, computed from the runs (adaptive = the better of with and without
    anytime, by streaming accuracy), and the oracle's bound where its frontier is given; with
    ``rule_front`` (:func:`~tts_perception.tools.oracle.rule_frontier`) also the share the
    scheduler's rule would capture with its signals at the best price in hindsight.
    Compute is each run's median compute where every run has it (the oracle's scale), else
    its measured compute; ``compute_basis`` says which."""
    basis = 'median' if all(r.median_compute_ms is not None for r in runs.values()) \
        else 'measured'
    cost = {k: r.compute_ms(basis) for k, r in runs.items()}
    statics = {k: r for k, r in runs.items() if not k.startswith('adaptive') and k != 'golden'}
    ok = {k: r for k, r in statics.items() if r.late_or_dropped <= MEETS_DEADLINE}
    ad_key = max((k for k in runs if k.startswith('adaptive')),
                 key=lambda k: (runs[k].streaming_accuracy, runs[k].accuracy))
    ad = runs[ad_key]
    best_stream = max(statics, key=lambda k: statics[k].streaming_accuracy)
    out = Comparison(
        compute_basis=basis, adaptive_policy=ad_key, adaptive_accuracy=ad.accuracy,
        adaptive_streaming_accuracy=ad.streaming_accuracy, adaptive_mean_compute_ms=cost[ad_key],
        best_static_streaming=best_stream,
        best_static_streaming_accuracy=statics[best_stream].streaming_accuracy,
        streaming_target_met=bool(ad.streaming_accuracy >=
                                  statics[best_stream].streaming_accuracy))
    if ok:
        _accuracy_targets(out, statics, ok, cost, tolerance)
        if front is not None:
            _oracle_shares(out, statics, ok, cost, tolerance, front, rule_front)
    return out


def _accuracy_targets(out: Comparison, statics: Dict[str, PolicyRun], ok: Dict[str, PolicyRun],
                      cost: Dict[str, float], tolerance: float) -> None:
    """The best static point meeting the deadline, the cheapest reaching its accuracy less
    ``tolerance``, adaptive's compute ratio to it and whether adaptive reaches it."""
    best = max(ok, key=lambda k: ok[k].accuracy)
    level = ok[best].accuracy - tolerance
    reach = [k for k in statics if statics[k].accuracy >= level]
    cheapest = min(reach, key=lambda k: cost[k])
    out.best_static_meeting_deadline, out.best_static_accuracy = best, ok[best].accuracy
    out.cheapest_static_reaching_it, out.cheapest_static_compute_ms = cheapest, cost[cheapest]
    out.compute_ratio = out.adaptive_mean_compute_ms / cost[cheapest]
    out.accuracy_target_met = bool(out.adaptive_accuracy >= level)


def _share(out: Comparison, static_ms: Optional[float], oracle_ms: Optional[float],
           need: float) -> Share:
    """Adaptive's share of the oracle's saving over ``static_ms``, or why there is none."""
    if static_ms is None:
        return Share(None, 'no static point meeting the deadline reaches it')
    if oracle_ms is None:
        return Share(None, 'the oracle does not reach that accuracy')
    if out.adaptive_accuracy < need:
        return Share(None, 'adaptive is below that accuracy')
    v = oracle.saving_captured(static_ms, out.adaptive_mean_compute_ms, oracle_ms)
    return Share(v, '' if v is not None else
                 f'the oracle saves under {100 * oracle.MIN_SAVING:.0f} % there')


def _oracle_shares(out: Comparison, statics: Dict[str, PolicyRun], ok: Dict[str, PolicyRun],
                   cost: Dict[str, float], tolerance: float,
                   front: List[oracle.FrontierPoint],
                   rule_front: Optional[List[oracle.FrontierPoint]]) -> None:
    """Adaptive's share of the per-frame oracle's saving against the best static point
    meeting the deadline, the cheapest static point reaching it (the two differ when a
    cheaper precision matches it: then only the second says what the per-frame decision
    adds) and the static frontier at adaptive's own accuracy; the rule's share with it."""
    best, cheapest = out.best_static_meeting_deadline, out.cheapest_static_reaching_it
    at_best = oracle.point_at(front, statics[best].accuracy)
    out.oracle_compute_ms_at_best_static_accuracy = None if at_best is None else \
        at_best.mean_compute_ms
    out.oracle_exact_at_best_static_accuracy = {} if at_best is None else dict(at_best.exact)
    out.share_vs_best_static = _share(out, cost[best],
                                      out.oracle_compute_ms_at_best_static_accuracy,
                                      statics[best].accuracy - tolerance)
    target = statics[cheapest].accuracy - tolerance
    oracle_ms = out.oracle_compute_ms_at_cheapest_static_accuracy = oracle.cost_at(
        front, statics[cheapest].accuracy)
    out.share_vs_cheapest_static = _share(out, cost[cheapest], oracle_ms, target)
    if rule_front is not None:      # the rule at the best price in hindsight, at that target
        rule_ms = out.rule_compute_ms_at_target = oracle.cost_at(rule_front, target)
        out.rule_share_vs_cheapest_static = None if rule_ms is None else \
            oracle.saving_captured(cost[cheapest], rule_ms, oracle_ms)
    own = out.static_compute_ms_at_adaptive_accuracy = oracle.static_cost_at(
        [(cost[k], r.accuracy) for k, r in ok.items()], out.adaptive_accuracy)
    oracle_own = out.oracle_compute_ms_at_adaptive_accuracy = oracle.cost_at(
        front, out.adaptive_accuracy)
    out.share_at_its_accuracy = _share(out, own, oracle_own, out.adaptive_accuracy)


def _panels(runs: Dict[str, PolicyRun], metric: str) -> List[List[tuple]]:
    """Rows (per frame; streaming) of pareto panels: (title, value of a run, exact figure
    name or None): the metric, then each exact figure of the task (a detector's AP50, mAP)."""
    names = sorted({k for r in runs.values() for k in r.exact if not k.startswith('stream')})

    def exact(k):
        return lambda r: r.exact.get(k)
    return [[(metric, lambda r: r.accuracy, None)] +
            [(f'{k} (exact)', exact(k), k) for k in names],
            [('streaming ' + metric, lambda r: r.streaming_accuracy, None)] +
            [(f'streaming {k} (exact)', exact(f'streaming_{k}'), None) for k in names]]


def _mark(ax, runs: Dict[str, PolicyRun], value) -> None:
    """One mark per policy at its compute and ``value``."""
    for k, r in runs.items():
        y = value(r)
        if y is None:
            continue
        style = {'marker': '*', 's': 160, 'color': 'C3'} if k.startswith('adaptive') else \
            {'marker': 'D', 's': 60, 'color': 'k'} if k == 'golden' else \
            {'marker': 'o', 's': 25, 'color': 'C0' if r.late_or_dropped <=
             MEETS_DEADLINE else 'C7'}
        x = r.median_compute_ms or r.mean_compute_ms    # the oracle's scale
        ax.scatter(x, y, **style)
        ax.annotate(k, (x, y), fontsize=6)


def plot_pareto(runs: Dict[str, PolicyRun], path: Path, metric: str,
                front: Optional[List[oracle.FrontierPoint]] = None,
                rule_front: Optional[List[oracle.FrontierPoint]] = None) -> None:
    """Accuracy, streaming accuracy and the task's exact figures (a detector's AP50 and mAP)
    vs mean compute, one mark per policy; the per-frame oracle's frontier on the per-frame
    panels (its exact figures of the same choices on theirs) and the signals' bound
    (:func:`~tts_perception.tools.oracle.rule_frontier`) on the accuracy panel."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = _panels(runs, metric)
    cols = len(rows[0])
    fig, axes = plt.subplots(2, cols, figsize=(5.5 * cols, 8.5), sharex=True, squeeze=False)
    for i, row in enumerate(rows):
        for ax, (title, value, exact) in zip(axes[i], row):
            _mark(ax, runs, value)
            if front and i == 0:
                ys = [p.accuracy if exact is None else p.exact.get(exact) for p in front]
                ax.plot([p.mean_compute_ms for p, y in zip(front, ys) if y is not None],
                        [y for y in ys if y is not None], '-', color='C2', lw=1,
                        label='per-frame oracle (hindsight)')
                if rule_front and exact is None:
                    ax.plot([p.mean_compute_ms for p in rule_front],
                            [p.accuracy for p in rule_front], '--', color='C1', lw=1,
                            label='the rule with adaptive\'s predictions, price in hindsight')
                ax.legend(fontsize=7)
            ax.set_xscale('log')
            ax.set_xlabel('mean compute per processed frame (ms, at the points\' median '
                          'latencies)', fontsize=7)
            ax.set_ylabel(title)
    axes[0][0].set_title('grey: static points that miss or drop > 1 % of frames', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_timeline(run: PolicyRun, deadline: float, path: Path) -> None:
    """Per frame: latency vs deadline, chosen point, complexity, streaming accuracy."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tts_perception.common.plotting import plot_points
    recs = run.records
    fr = [r.frame for r in recs]
    fig, ax = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
    ax[0].plot(fr, [r.age_ms + r.total_ms for r in recs], lw=0.8,
               label='age + processing')
    ax[0].axhline(deadline, color='r', ls='--', label='deadline')
    ax[0].set_ylabel('ms')
    ax[0].legend(fontsize=7)
    plot_points(ax[1], fr, [r.point for r in recs])
    ax[2].plot(fr, [r.complexity for r in recs], lw=0.8)
    ax[2].set_ylabel('complexity')
    ax[3].plot(run.streaming_per_frame, lw=0.8)
    ax[3].set_ylabel('streaming acc.')
    ax[3].set_xlabel('camera frame')
    ax[0].set_title(f'{run.policy}{" +anytime" if run.anytime else ""}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def held_out(frames_for, profile: Profile, bag: Path, use_all: bool):
    """The frames to evaluate on and a sentence saying which ones: of a bag the profile was
    calibrated on, the part calibrate held out."""
    data = profile.data
    rec = data.recording(str(Path(bag).resolve()))
    if use_all or rec is None or rec.eval_from_stamp_ns is None:
        frames = frames_for(rec.image_topic if rec else None,
                            data.labels_topic if rec else None, 0)
        why = 'every frame: ' + ('--all' if use_all else 'the profile was not fitted on this '
                                 'bag' if rec is None else 'no held-out part')
        return frames, why
    frames = frames_for(rec.image_topic, data.labels_topic, rec.frames)
    k = int(np.searchsorted(frames.stamps_ns, rec.eval_from_stamp_ns))
    return frames.part(k, len(frames)), (f'the {len(frames) - k} frames calibrate held out '
                                         f'(after its {k} fit frames)')


def _arguments(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('bag', type=Path)
    ap.add_argument('--model', default=PipelineConfig().model_path)
    ap.add_argument('--profile', default='', help='default: the model directory\'s profile')
    ap.add_argument('--backend', default=PipelineConfig().backend,
                    help='the node\'s default: the best engine available')
    ap.add_argument('--image-topic', default=None, help='default: the one calibrate used')
    ap.add_argument('--labels-topic', default=None)
    ap.add_argument('--all', action='store_true', help='every frame, not only the held-out')
    ap.add_argument('--deadline-ms', type=float, default=None,
                    help=f'default: the node\'s deadline_ms ({PipelineConfig().deadline_ms:g})')
    ap.add_argument('--deadline-fraction', type=float, default=None,
                    help='instead: this x the golden point\'s profiled p95')
    ap.add_argument('--rate', type=float, default=1.0, help='camera speed-up factor')
    ap.add_argument('--load', choices=('none', 'cpu', 'gpu'), default='none',
                    help='a load step from the middle of the frames on')
    ap.add_argument('--policies', nargs='+', default=None, help='default: all')
    ap.add_argument('--out', type=Path, default=None, help='default: eval_out/<bag name>')
    ap.add_argument('--quiet', action='store_true')
    return ap.parse_args(argv)


def run_policies(pipe: AdaptivePipeline, frames: Frames, refs: List[Any],
                 deadline: float, a: argparse.Namespace) -> Dict[str, PolicyRun]:
    """Every policy asked for through the simulated camera, after warming every point."""
    warm_points(pipe, frames)
    todo = [p for p in policies(pipe) if a.policies is None or p[0] in a.policies]
    runs = {}
    prog = Progress(len(todo), 'policies', quiet=a.quiet)
    for i, (name, pol, anytime) in enumerate(todo):
        runs[name] = simulate(pipe, frames, refs, pol, deadline, anytime, a.rate, load=a.load)
        prog.update(i + 1, name)
    prog.close()
    for k, v in predicted_streaming(pipe, runs).items():
        runs[k].predicted_streaming_accuracy = v
    return runs


def judge(pipe: AdaptivePipeline, frames: Frames, refs: List[Any],
          runs: Dict[str, PolicyRun], quiet: bool) -> Tuple[Dict[str, Any], Any, Any]:
    """The per-frame oracle's frontier, the rule's, the difficulty correlations and the
    comparison, where the runs allow them (every point ran as a static policy); sets each
    run's compute at median latencies. Returns the result's fields and the two frontiers."""
    table = per_frame(pipe, frames, refs, runs, quiet)
    res: Dict[str, Any] = {}
    if table is None:
        front = rule_front = None
    else:
        latency = dict(zip(table.points, table.latency_ms.tolist()))
        for r in runs.values():
            r.median_compute_ms = median_compute(r, latency)
        front = oracle.frontier(table, exact=lambda outputs: pipe.task.exact_figures(outputs,
                                                                                     refs))
        res['oracle_frontier'] = [asdict(p) for p in front]
        decided = decided_predictions(pipe, table, runs['adaptive']) \
            if 'adaptive' in runs else None
        rule_front = None if decided is None else oracle.rule_frontier(
            table, decided, pipe.sched_config.accuracy_tolerance)
        if rule_front is not None:
            res['rule_frontier'] = [asdict(p) for p in rule_front]
        if 'adaptive' in runs:
            res['difficulty_correlation'] = difficulty_correlation(table, runs['adaptive'])
            res['point_difficulty_correlation'] = point_difficulty_correlation(
                table, runs['adaptive'])
    if any(k.startswith('adaptive') for k in runs) and len(runs) > 2:
        res['comparison'] = compare(runs, front=front, rule_front=rule_front).to_dict()
    return res, front, rule_front


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    from tts_perception.adaptive.pipeline import ConfigError
    from tts_perception.bag.rosbag import BagError, ImageDecodeError
    from tts_perception.common.paths import share_dir
    a = _arguments(argv)
    try:
        pipe = AdaptivePipeline(PipelineConfig(model_path=a.model, profile_path=a.profile,
                                               backend=a.backend), base_dir=share_dir())

        def frames_for(topic, labels, n):
            return read_bag(a.bag, a.image_topic or topic, a.labels_topic or labels, n,
                            a.quiet)
        frames, which = held_out(frames_for, pipe.profile, a.bag, a.all)
        if len(frames) < 2:
            raise ValueError(f'{which}: {len(frames)} frame(s), too few to evaluate')
    except (BagError, ImageDecodeError, ConfigError, ValueError) as exc:
        sys.stderr.write(f'evaluate: {exc}\n')
        return 2
    golden = pipe.camera('default').scheduler.golden
    deadline = a.deadline_ms or (
        a.deadline_fraction * pipe.profile.latency_ms[golden.key].p95
        if a.deadline_fraction else PipelineConfig().deadline_ms)
    refs, metric = references(pipe, frames, a.quiet)
    runs = run_policies(pipe, frames, refs, deadline, a)
    judged, front, rule_front = judge(pipe, frames, refs, runs, a.quiet)
    res = {'bag': str(a.bag), 'frames': which, 'n_frames': len(frames), 'metric': metric,
           'model': pipe.model.name, 'classes': pipe.model.classes,
           'backend': pipe.backend.name, 'device': str(pipe.backend.device),
           'machine': machine_info(pipe.backend.device), 'deadline_ms': deadline,
           'rate': a.rate, 'load': a.load, 'excluded_points': pipe.excluded,
           'complexity_eval_correlation': pipe.profile.complexity.eval_correlation,
           'runs': {k: r.summary() for k, r in runs.items()}, **judged}
    out = a.out or Path('eval_out') / Path(a.bag).name
    out.mkdir(parents=True, exist_ok=True)
    (out / 'evaluate.json').write_text(json.dumps(res, indent=1))
    plot_pareto(runs, out / 'pareto.png', metric, front, rule_front)
    if 'adaptive' in runs:
        plot_timeline(runs['adaptive'], deadline, out / 'timeline.png')
    print_table(res)
    print(f'wrote {out / "evaluate.json"}, {out / "pareto.png"}, {out / "timeline.png"}')
    return 0


def _pct(share: Share) -> str:
    return 'n/a' if share.value is None else f'{100 * share.value:.0f} %'


def print_table(res: Dict[str, Any]) -> None:
    """The printed summary of an ``evaluate.json``."""
    print(f'\n{res["model"]} on {res["n_frames"]} frames of {res["bag"]} ({res["frames"]}); '
          f'deadline {res["deadline_ms"]:.1f} ms; {res["metric"]}; {res["backend"]} on '
          f'{res["device"]}')
    print(f'{"policy":>20} {"acc":>6} {"stream":>6} {"compute":>8} {"miss%":>6} {"drop%":>6}  '
          f'worst class')
    for k, d in res['runs'].items():
        r = PolicyRun.from_summary(d)
        print(f'{k:>20} {r.accuracy:6.3f} {r.streaming_accuracy:6.3f} '
              f'{r.mean_compute_ms:8.2f} {100 * r.miss_rate:6.1f} '
              f'{100 * r.dropped / r.frames:6.1f}  {r.worst_class_iou:.3f}' +
              ''.join(f'  {k} {v:.3f}' for k, v in r.exact.items() if v is not None))
    if res.get('comparison'):
        print_comparison(Comparison.from_dict(res['comparison']))
    if 'difficulty_correlation' in res:     # only where every point ran on every frame
        r = res['difficulty_correlation']
        print('difficulty estimate vs accuracy loss on these frames (adaptive\'s decisions): ' +
              ('n/a (a constant)' if r is None else f'r={r:.2f}'))
        r = res.get('point_difficulty_correlation')
        if r is not None:
            print(f'per-point estimate vs each point\'s shortfall on these frames (within '
                  f'points): r={r:.2f}')


def print_comparison(c: Comparison) -> None:
    ratio = float('nan') if c.compute_ratio is None else c.compute_ratio
    print(f'adaptive ({c.adaptive_policy}): accuracy target '
          f'{"met" if c.accuracy_target_met else "NOT met"} (best static meeting the '
          f'deadline: {c.best_static_meeting_deadline}); compute ratio vs the cheapest '
          f'static reaching it ({c.cheapest_static_reaching_it}): {ratio:.2f}; share of the '
          f'per-frame oracle\'s saving captured vs the best static point: '
          f'{_pct(c.share_vs_best_static)}, vs the cheapest: '
          f'{_pct(c.share_vs_cheapest_static)}, at its own accuracy: '
          f'{_pct(c.share_at_its_accuracy)}; streaming target '
          f'{"met" if c.streaming_target_met else "NOT met"}')
    if c.oracle_exact_at_best_static_accuracy:
        print('the oracle at the best static point\'s accuracy, exact: ' + ', '.join(
            f'{k} {v:.3f}' for k, v in c.oracle_exact_at_best_static_accuracy.items()
            if v is not None))
    if c.rule_compute_ms_at_target is not None or c.rule_share_vs_cheapest_static is not None:
        v = c.rule_share_vs_cheapest_static
        print(f'the scheduler\'s rule with the signals adaptive decided with, at the best '
              f'price in hindsight: share vs the cheapest static point '
              f'{"n/a" if v is None else f"{100 * v:.0f} %"}')


if __name__ == '__main__':
    sys.exit(main())
