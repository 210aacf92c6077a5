"""Benchmarks of the adaptive core (``make bench``): JSON under bench/results/ + a printed table.

1. decision overhead per 640x480 frame (complexity + scheduling), target p95 <= 0.25 ms
   (:data:`OVERHEAD_TARGET_MS`), with the bundled profile and, where ``make eval-sim`` has
   made it, with a calibrated profile of the same model (``--calibrated-profile``: its per-point
   difficulty models on, as the node runs after calibrate);
2. per-point latency on this machine (re-measured now) with the profile's accuracy;
3. adaptive vs every static point vs golden on a recorded simulator bag with ground truth,
   under a deadline the golden point cannot meet here: mIoU, miss rate, mean compute;
4. the same with a load step injected halfway: competing CPU processes, or with ``--load gpu``
   a neighbour process running large matrix products on the same GPU;
5. a per-frame oracle bound: on each frame, the most accurate point whose measured latency met
   the deadline on that frame, i.e. the best any per-frame scheduler could have done.

``--frames F.npz`` replays frames packed by ``bench/pack_frames.py`` instead of the bag (for a
machine without rosbags/MuJoCo, e.g. a GPU box); ``--config config/pipeline_cuda.yaml`` runs the
torch CUDA points.

Frames arrive at their recorded stamps (the bag's camera rate) and pass the perception node's
frame gate (:mod:`tts_perception.common.frame_gate`): newest wins, stale frames dropped, each
frame's age at processing start counts against its deadline.
"""

import argparse
from collections import Counter
import json
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts_perception.common.metrics import ConfusionMatrix  # noqa: E402
from tts_perception.adaptive.frame_step import Item, run_step  # noqa: E402
from tts_perception.adaptive.pipeline import AdaptivePipeline, FrameRequest  # noqa: E402
from tts_perception.common.frame_gate import (  # noqa: E402
    arrivals_from, FrameGate, replay, Taken)
from tts_perception.inference.latency import machine_info, measure_latency  # noqa: E402
from tts_perception.tools.load import start_load, stop_load  # noqa: E402
from tts_perception.tools.results import command_line  # noqa: E402

RESULTS = ROOT / 'bench' / 'results'


EVAL_SEED = 3000           # the evaluation course (training: 1000-1009; profile: 2000-2001)
CALIBRATION_SEED = 3001    # the course make eval-sim calibrates on, never evaluated on
# make eval-sim-courses also evaluates on these courses, used nowhere else (calibration courses:
# 3001-3003; closed loop: 5000-5009)
MORE_EVAL_SEEDS = (3004, 3005)
OVERHEAD_TARGET_MS = 0.25  # decision overhead per 640x480 frame, p95
CALIBRATED_PROFILE = ROOT / 'data' / 'eval_sim' / 'model' / 'profile_cpu.json'   # eval-sim's


def eval_bag(path: Path, seconds: float = 30.0, seed: int = EVAL_SEED) -> Path:
    """A simulator bag of a held-out course (10 Hz, labels), recorded once: the evaluation
    course by default."""
    from tts_perception.bag.record import record_sim
    if not (path / 'metadata.yaml').exists():
        record_sim(path, seed=seed, seconds=seconds, rate=10.0, speed=1.8)
    return path


def load_frames(bag: Path, seconds: float, npz: Optional[Path]) -> List:
    """(rgb, labels, stamp_ns) triples from the eval bag or a packed ``.npz``."""
    if npz is not None:
        d = np.load(npz)
        return list(zip(d['rgb'], d['labels'], d['stamps'].tolist()))
    from tts_perception.bag.rosbag import read_labeled_frames
    from tts_perception.bag.record import IMAGE_TOPIC, LABEL_TOPIC
    return read_labeled_frames(eval_bag(bag, seconds), IMAGE_TOPIC, LABEL_TOPIC)


def run_policy(pipe: AdaptivePipeline, frames, policy: str, deadline: float,
               load_from: Optional[int] = None, load: str = 'cpu') -> Dict:
    """Replay frames through one policy, arriving at their recorded stamps and passing the
    perception node's frame gate; optional load from frame ``load_from`` on."""
    pipe.restart(policy)
    ncls = pipe.model.num_classes
    cm = ConfusionMatrix(ncls)
    recs: List[Dict] = []
    procs: List = []
    stamps = [int(f[2]) for f in frames]
    gate = FrameGate(deadline)

    def process(taken: Taken) -> float:
        i = taken.item
        if load_from is not None and i >= load_from and not procs:
            procs.extend(start_load(load))
        rgb, lab, stamp = frames[i]
        req = FrameRequest(rgb, deadline_ms=deadline, stamp_ns=stamp, age_ms=taken.age_ms,
                           period_ms=gate.period_ms)
        (step,) = run_step(pipe, [Item(gate, taken, req, taken.wait_ms)])   # as the node
        if step.held:
            return 0.0
        rec, probe_ms = step.rec, step.probe_ms
        fcm = ConfusionMatrix(ncls).add(step.output[::2, ::2], lab[::2, ::2])
        cm.add_matrix(fcm.m)
        recs.append({**rec.to_dict(), 'frame': i, 'confusion': fcm.m, 'probe_ms': probe_ms})
        return rec.total_ms + probe_ms
    try:
        replay(gate, arrivals_from(stamps, stamps, range(len(frames))), process)
    finally:
        stop_load(procs)
    ms = np.array([r['measured_ms'] + r['probe_ms'] for r in recs])     # probes are compute
    miss = np.array([r['missed'] for r in recs])
    half = len(recs) // 2
    return {'policy': policy, 'miou': cm.miou(), 'miss_rate': float(miss.mean()),
            'miss_rate_first_half': float(miss[:half].mean()),
            'miss_rate_second_half': float(miss[half:].mean()),
            'dropped': gate.counts.dropped + gate.counts.stale + gate.counts.tail,
            'mean_compute_ms': float(ms.mean()), 'p99_total_ms':
            float(np.percentile([r['total_ms'] for r in recs], 99)),
            'points': dict(Counter(r['point'] for r in recs)),
            # why the scheduler chose as it did, and what it predicted for each point it ran
            'reasons': dict(Counter(r['reason'] for r in recs)),
            'predicted_vs_measured_ms': {
                k: [float(np.median([r['predicted_ms'] for r in recs if r['point'] == k])),
                    float(np.median([r['measured_ms'] for r in recs if r['point'] == k]))]
                for k in sorted({r['point'] for r in recs})},
            'median_budget_ms': float(np.median([r['budget_ms'] for r in recs])),
            'records': recs}


def overhead(pipe: AdaptivePipeline, frames, n: int = 200, period_ms: float = 1e3 / 30) -> Dict:
    """Complexity + scheduling time per 640x480 frame (a 30 Hz camera: the streaming
    objective is weighed)."""
    st = pipe.camera('overhead')
    ts = []
    for i in range(n):
        rgb = frames[i % len(frames)][0]
        t = time.perf_counter()
        c, shortfall = st.monitor.assess(rgb)        # as the pipeline: score and point models
        st.scheduler.choose(c, 30.0, period_ms, shortfall=shortfall)
        ts.append((time.perf_counter() - t) * 1e3)
    a = np.array(ts[10:])
    return {'mean_ms': float(a.mean()), 'p50_ms': float(np.median(a)),
            'p95_ms': float(np.percentile(a, 95)), 'target_ms': OVERHEAD_TARGET_MS}


def oracle_bound(runs: Dict[str, Dict], num_classes: int,
                 only: Optional[Sequence[str]] = None) -> Dict:
    """Per frame, the static point with the best per-frame mIoU among those whose measured
    latency met the deadline on that frame (the fastest one's output, a miss, if none did):
    the best a per-frame scheduler could have done with these latencies."""
    statics = {k: r for k, r in runs.items() if k not in ('adaptive', 'golden')
               and (only is None or k in only)}
    by_frame = {k: {rec['frame']: rec for rec in r['records']} for k, r in statics.items()}
    common = sorted(set.intersection(*(set(v) for v in by_frame.values())))
    n = len(common)
    cm, picks, misses = ConfusionMatrix(num_classes), Counter(), 0
    for i in common:
        recs = {k: by_frame[k][i] for k in statics}
        met = {k: rec for k, rec in recs.items() if not rec['missed']}
        if met:
            k = max(met, key=lambda k: ConfusionMatrix(num_classes).add_matrix(
                met[k]['confusion']).miou())
        else:
            k = min(recs, key=lambda k: recs[k]['total_ms'])
            misses += 1
        cm.add_matrix(recs[k]['confusion'])
        picks[k] += 1
    return {'miou': cm.miou(), 'miss_rate': misses / max(n, 1), 'points': dict(picks)}


def plot_run(run: Dict, deadline: float, path: Path, title: str) -> None:
    """Latency vs deadline and chosen point over time."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tts_perception.common.plotting import plot_points
    recs = run['records']
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    a1.plot([r['total_ms'] for r in recs], lw=0.8, label='total latency')
    a1.plot([r['predicted_ms'] for r in recs], lw=0.8, label='predicted')
    a1.axhline(deadline, color='r', ls='--', label='deadline')
    a1.set_ylabel('ms')
    a1.legend(fontsize=7)
    plot_points(a2, range(len(recs)), [r['point'] for r in recs])
    a3.plot([r['complexity'] for r in recs], lw=0.8)
    a3.set_ylabel('complexity')
    a3.set_xlabel('frame')
    a1.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def calibrated_overhead(a, over: Dict, frames) -> Optional[Dict]:
    """:func:`overhead` with ``a.calibrated_profile`` (None where that file does not exist);
    records whether the profile has per-point models."""
    if not a.calibrated_profile.exists():
        return None
    pipe = AdaptivePipeline.from_yaml(a.config, **over,
                                      profile_path=str(a.calibrated_profile.resolve()))
    return {**overhead(pipe, frames), 'profile': str(a.calibrated_profile),
            'point_models': bool(pipe.profile.complexity.point_models)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run every core benchmark."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'pipeline.yaml')
    ap.add_argument('--bag', type=Path, default=ROOT / 'data' / 'eval_bag')
    ap.add_argument('--seconds', type=float, default=30.0)
    ap.add_argument('--deadline-fraction', type=float, default=0.5,
                    help='deadline = this x golden p95 latency (so golden cannot meet it)')
    ap.add_argument('--frames', type=Path, default=None,
                    help='packed frames (.npz from bench/pack_frames.py) instead of the bag')
    ap.add_argument('--limit', type=int, default=0, help='use only the first N frames (dry run)')
    ap.add_argument('--backend', default=None, help="default: the config's backend")
    ap.add_argument('--load', choices=('auto', 'cpu', 'gpu', 'none'), default='auto',
                    help='kind of load step (auto: gpu for a CUDA backend, else cpu; none: '
                    'no load-step runs)')
    ap.add_argument('--calibrated-profile', type=Path, default=CALIBRATED_PROFILE,
                    help='a profile of the same model made by calibrate, for the decision '
                    'overhead with its per-point models (default: make eval-sim\'s; not '
                    'measured where it does not exist)')
    ap.add_argument('--out', type=Path, default=RESULTS / 'core.json')
    ap.add_argument('--no-record', dest='record', action='store_false',
                    help='do not write the run into docs/results.md')
    a = ap.parse_args(argv)
    a.command = command_line('make bench', 'bench/bench_core.py', argv)
    a.out.parent.mkdir(parents=True, exist_ok=True)     # before any run: plots go there too
    over = {'backend': a.backend} if a.backend else {}
    pipe = AdaptivePipeline.from_yaml(a.config, **over)
    device = str(pipe.backend.device)
    load = a.load if a.load != 'auto' else ('gpu' if device.startswith('cuda') else 'cpu')
    frames = load_frames(a.bag, a.seconds, a.frames)[:a.limit or None]
    res: Dict = {'machine': machine_info(device), 'backend': pipe.backend.name,
                 'device': device, 'machine_profile': pipe.profile.machine,
                 'frames': len(frames), 'load_kind': load}
    res['overhead'] = overhead(pipe, frames)
    res['overhead_calibrated'] = calibrated_overhead(a, over, frames)
    lat = {}
    for p in pipe.points:
        lat[p.key] = {**measure_latency(pipe.model, pipe.backend, [f[0] for f in frames[:20]],
                                        p, n=20, warmup=3),
                      'profile_miou': pipe.profile.accuracy.overall[p.key]}
    res['point_latency'] = lat
    golden = pipe.camera('default').scheduler.golden
    deadline = a.deadline_fraction * lat[golden.key]['p95']
    res['deadline_ms'] = deadline
    runs = {'adaptive': run_policy(pipe, frames, 'adaptive', deadline),
            'golden': run_policy(pipe, frames, 'golden', deadline)}
    for p in pipe.points:
        runs[p.key] = run_policy(pipe, frames, f'static:{p.key}', deadline)
    static_ok = {k: r for k, r in runs.items() if k not in ('adaptive', 'golden')
                 and r['miss_rate'] <= 0.01}
    best_static = max(static_ok.values(), key=lambda r: r['miou']) if static_ok else None
    g, ad = runs['golden'], runs['adaptive']
    ncls = pipe.model.num_classes
    res['oracle'] = {'any_point_that_met_the_deadline': oracle_bound(runs, ncls),
                     'feasible_static_points_only': oracle_bound(runs, ncls, list(static_ok))}
    res['comparison'] = {
        'adaptive_miou': ad['miou'], 'golden_miou': g['miou'],
        'best_feasible_static': best_static['policy'] if best_static else None,
        'best_feasible_static_miou': best_static['miou'] if best_static else None,
        'adaptive_minus_best_static': ad['miou'] - best_static['miou'] if best_static else None,
        'adaptive_over_golden_miou': ad['miou'] / g['miou'],
        'adaptive_over_golden_compute': ad['mean_compute_ms'] / g['mean_compute_ms'],
        'adaptive_miss_rate': ad['miss_rate'],
        'targets': {'vs_best_static': '>= +0.03', 'vs_golden_miou': '>= 0.95',
                    'vs_golden_compute': '<= 0.50', 'miss_rate': '<= 0.01'}}
    stem = a.out.with_suffix('')
    plot_run(ad, deadline, stem.parent / f'{stem.name}_adaptive.png', 'adaptive, no load')
    # load step halfway: adaptive vs the static points feasible before the step
    half = len(frames) // 2
    load_runs: Dict = {}
    if load != 'none':
        load_runs['adaptive'] = run_policy(pipe, frames, 'adaptive', deadline, half, load)
        for k in sorted(static_ok, key=lambda k: -static_ok[k]['miou'])[:3]:
            load_runs[k] = run_policy(pipe, frames, f'static:{k}', deadline, half, load)
        # the cheapest point: the fewest misses any choice of point gets under this load
        floor = min((p.key for p in pipe.points), key=lambda k: runs[k]['mean_compute_ms'])
        if floor not in load_runs:
            load_runs[floor] = run_policy(pipe, frames, f'static:{floor}', deadline, half,
                                          load)
        res['load_step_floor'] = floor
        plot_run(load_runs['adaptive'], deadline,
                 stem.parent / f'{stem.name}_adaptive_load_step.png',
                 f'adaptive, {load} load step at the half')
        res['deadline_misses_after_step'] = [
            i - half for i, r in enumerate(load_runs['adaptive']['records'])
            if i >= half and r['missed']]
    res['runs'] = {k: {kk: vv for kk, vv in v.items() if kk != 'records'}
                   for k, v in runs.items()}
    res['load_step'] = {k: {kk: vv for kk, vv in v.items() if kk != 'records'}
                        for k, v in load_runs.items()}
    a.out.write_text(json.dumps(res, indent=1))
    print(f'\ndecision overhead per 640x480 frame: mean {res["overhead"]["mean_ms"]:.3f} ms, '
          f'p95 {res["overhead"]["p95_ms"]:.3f} ms (target <= {OVERHEAD_TARGET_MS} ms); '
          f'{calibrated_text(res)}')
    print(f'deadline {deadline:.1f} ms = {a.deadline_fraction} x golden p95; '
          f'{len(frames)} frames of {(a.frames or a.bag).name}; {pipe.backend.name} on {device}')
    print(f'{"policy":>22} {"mIoU":>6} {"miss%":>6} {"compute ms":>10}')
    for k, r in runs.items():
        print(f'{k:>22} {r["miou"]:6.3f} {100 * r["miss_rate"]:6.1f} '
              f'{r["mean_compute_ms"]:10.2f}')
    print(f'{load} load step at the half (miss % before -> after):')
    for k, r in load_runs.items():
        print(f'{k:>22} {r["miou"]:6.3f} {100 * r["miss_rate_first_half"]:6.1f} -> '
              f'{100 * r["miss_rate_second_half"]:6.1f}')
    c = res['comparison']
    print(f'adaptive vs best feasible static ({c["best_feasible_static"]}): '
          f'{c["adaptive_minus_best_static"]}; vs golden: mIoU '
          f'x{c["adaptive_over_golden_miou"]:.3f} at compute '
          f'x{c["adaptive_over_golden_compute"]:.3f}')
    for name, o in res['oracle'].items():
        print(f'per-frame oracle ({name}): mIoU {o["miou"]:.3f}, miss {100 * o["miss_rate"]:.1f}%')
    print(f'wrote {a.out}')
    if a.record:
        record_results(res, runs, load_runs, load, a)
    return 0


def calibrated_text(res: Dict) -> str:
    """The decision overhead with the calibrated profile, in words."""
    c = res.get('overhead_calibrated')
    if not c:
        return 'with a calibrated profile: not measured (run make eval-sim first)'
    models = 'per-point models on' if c['point_models'] else 'no per-point models'
    return (f'with make eval-sim\'s calibrated profile ({models}): mean {c["mean_ms"]:.3f} ms, '
            f'p95 {c["p95_ms"]:.3f} ms')


def record_results(res: Dict, runs: Dict, load_runs: Dict, load: str, a) -> None:
    """The run's section of docs/results.md."""
    from tts_perception.tools.results import record
    c = res['comparison']
    best = c['best_feasible_static']      # a policy name, 'static:<point>'
    shown = ['adaptive', 'golden'] + ([best.split(':', 1)[-1]] if best else [])
    cheapest = min((k for k in runs if k not in ('adaptive', 'golden')),
                   key=lambda k: runs[k]['mean_compute_ms'])
    rows = ['| policy | mIoU | miss % | mean compute ms |', '|---|---|---|---|']
    for k in shown + [cheapest]:
        r = runs[k]
        rows.append(f'| {k} | {r["miou"]:.3f} | {100 * r["miss_rate"]:.1f} | '
                    f'{r["mean_compute_ms"]:.2f} |')
    step = ', '.join(f'{k} {100 * r["miss_rate_first_half"]:.1f} -> '
                     f'{100 * r["miss_rate_second_half"]:.1f} %' for k, r in load_runs.items()) \
        or 'not run'
    o = res['oracle']
    body = (f'{res["frames"]} frames of a held-out simulator bag, arriving at their recorded '
            f'stamps through the node\'s frame gate, on {res["backend"]} ({res["device"]}); '
            f'deadline {res["deadline_ms"]:.1f} ms = '
            f'{a.deadline_fraction} x the golden point\'s p95 measured at the start.\n\n'
            + '\n'.join(rows) +
            f'\n\nAdaptive = {100 * c["adaptive_over_golden_miou"]:.1f} % of golden mIoU at '
            f'{100 * c["adaptive_over_golden_compute"]:.1f} % of its compute; vs the best '
            f'static point that meets the deadline: {c["adaptive_minus_best_static"]:+.3f}. '
            f'Per-frame oracle bound: {o["feasible_static_points_only"]["miou"]:.3f} over the '
            f'feasible static points, {o["any_point_that_met_the_deadline"]["miou"]:.3f} over '
            f'any point that met the deadline on the frame. Decision overhead per 640x480 '
            f'frame: mean {res["overhead"]["mean_ms"]:.3f} ms, p95 '
            f'{res["overhead"]["p95_ms"]:.3f} ms (target p95 <= {OVERHEAD_TARGET_MS} ms); '
            f'{calibrated_text(res)}. '
            f'{load} load step at the half (misses before '
            f'-> after): {step}' + (
                f'; {res["load_step_floor"]}, the cheapest point, bounds what any choice of '
                f'point reaches under this load' if res.get('load_step_floor') else '') + '.')
    record(f'core-{res["backend"]}', f'Adaptive pipeline vs fixed points ({res["device"]})',
           a.command, body)


if __name__ == '__main__':
    sys.exit(main())
