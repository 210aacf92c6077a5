"""How much a per-frame choice could save with the bundled detector: every operating point on
held-out simulator frames against the simulator's boxes, and the per-frame hindsight oracle.

    python bench/detector_headroom.py [--model models/tts_detnet] [--seed 3000] [--frames 150]

The frames come from a scripted drive on a course whose seed neither training nor validation
used (10 frames per second of the drive). Every point (rung x resolution x precision) runs
through the package's runner, timed per frame; the table gives its AP50, mAP@[.5:.95], per-class
recall at IoU 0.5, latency, and how its per-frame shortfall against the best static point
correlates with its own a few frames earlier. The oracle sees every point's output on every
frame and takes, frame by frame, the cheapest point with the highest AP50 on that frame (on a
frame without reference boxes, the fewest false boxes); its AP50 and mean latency against the
best static point's are the headroom a scheduler could at most capture. Writes
``bench/results/detector_headroom.json`` and a section of ``docs/results.md``.
"""

import argparse
import itertools
import json
from pathlib import Path
import sys
import time
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts_perception.common.detection_metrics import (average_precision, frame_ap,  # noqa
                                                     FrameBoxes)
from tts_perception.inference.backends import make_backend  # noqa: E402
from tts_perception.inference.model_desc import load_model_description  # noqa: E402
from tts_perception.inference.points import OperatingPoint  # noqa: E402
from tts_perception.inference.runner import infer  # noqa: E402
from tts_perception.sim.world import MIN_BOX_PIXELS  # noqa: E402
from tts_perception.tools.results import command_line, record  # noqa: E402

RESOLUTIONS = ((160, 120), (320, 240), (480, 360), (640, 480))


def drive_frames(seed: int, n: int, every: int = 3):
    """(rgb frames, reference boxes) along a scripted drive at 30 Hz, every ``every``th."""
    from tts_perception.sim.world import scripted_command, World
    frames, refs = [], []
    with World(seed) as w:
        while len(frames) < n and w.progress < 0.97:
            for _ in range(every):
                v, yaw = scripted_command(w, 1.0)
                w.step(v, yaw, 1 / 30)
            frames.append(w.render_rgb())
            refs.append(FrameBoxes(*w.render_boxes()))
    return frames, refs


def frame_value(det, ref: FrameBoxes, num_classes: int) -> float:
    """What the oracle maximises on one frame: its AP50; without reference boxes, minus the
    number of (false) boxes."""
    if not len(ref.classes):
        return -float(len(det))
    return frame_ap(det, ref, num_classes)['ap50']


def run_points(model_dir: Path, frames, refs) -> Dict[str, dict]:
    """Every point's detections, per-frame latency and errors."""
    model = load_model_description(model_dir)
    backend = make_backend('onnxruntime', model)
    backend.prepare(list(model.precisions))
    out = {}
    for depth, (w, h), prec in itertools.product(model.depths, RESOLUTIONS, model.precisions):
        p = OperatingPoint(w, h, depth, prec)
        infer(model, backend, frames[:2], p)                       # warm
        dets, ms = [], []
        for f in frames:
            t = time.perf_counter()
            dets.append(infer(model, backend, [f], p)[0][0])
            ms.append((time.perf_counter() - t) * 1e3)
        out[p.key] = {'dets': dets, 'ms': np.array(ms), 'value': np.array(
            [frame_value(d, r, model.num_classes) for d, r in zip(dets, refs)])}
    return out


def lag_correlation(x: np.ndarray, lag: int) -> float:
    """Correlation of a per-frame series with itself ``lag`` frames earlier, over the pairs
    where both are finite (nan where fewer than 3 pairs or no variation)."""
    a, b = x[lag:], x[:-lag]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or a[ok].std() == 0 or b[ok].std() == 0:
        return float('nan')
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def shortfall_memory(runs: Dict[str, dict], refs, best: str) -> Dict[str, List[float]]:
    """Per point, how its per-frame AP50 shortfall against ``best`` correlates with its own
    value 1 and 4 frames earlier (frames with reference boxes): how much of the oracle's
    per-frame choice the recent past could tell a scheduler that measured it."""
    has = np.array([len(r.classes) > 0 for r in refs])
    out = {}
    for k, r in runs.items():
        short = np.where(has, runs[best]['value'] - r['value'], np.nan)
        out[k] = [lag_correlation(short, lag) for lag in (1, 4)]
    return out


def summarise(runs: Dict[str, dict], refs, num_classes: int) -> dict:
    """The static table, the oracle and the headroom."""
    keys = list(runs)
    table = {}
    for k in keys:
        r = average_precision(runs[k]['dets'], refs, num_classes)
        table[k] = {'ap50': r.ap50, 'map': r.map, 'recall': r.per_class_recall,
                    'p50_ms': float(np.median(runs[k]['ms'])),
                    'mean_ms': float(runs[k]['ms'].mean())}
    cost = np.array([table[k]['mean_ms'] for k in keys])
    val = np.stack([runs[k]['value'] for k in keys])                   # [points, frames]
    choice = np.where(val == val.max(0), cost[:, None], np.inf).argmin(0)
    chosen = [runs[keys[c]]['dets'][f] for f, c in enumerate(choice)]
    r = average_precision(chosen, refs, num_classes)
    frame_ms = np.array([runs[keys[c]]['ms'][f] for f, c in enumerate(choice)])
    best = max(keys, key=lambda k: table[k]['ap50'])
    near = min((k for k in keys if table[k]['ap50'] >= table[best]['ap50'] - 0.01),
               key=lambda k: table[k]['mean_ms'])
    for k, v in shortfall_memory(runs, refs, best).items():
        table[k]['shortfall_lag_r'] = v
    return {'points': table, 'cheapest_within_0.01': near,
            'oracle': {'ap50': r.ap50, 'map': r.map, 'recall': r.per_class_recall,
                       'mean_ms': float(frame_ms.mean()),
                       'share_of_frames': {k: float(np.mean(choice == i))
                                           for i, k in enumerate(keys)}},
            'best_static': best,
            'saving_vs_best_static': 1.0 - float(frame_ms.mean()) / table[best]['mean_ms']}


def markdown(res: dict, classes: List[str]) -> str:
    rows = ['| point | AP50 | mAP | recall ' + ' / '.join(classes) + ' | p50 ms | oracle share '
            '| shortfall r, 1 / 4 frames earlier |', '|---|---|---|---|---|---|---|']
    share = res['oracle']['share_of_frames']
    fmt = (lambda x: '-' if x is None or not np.isfinite(x) else f'{x:.2f}')
    for k, v in res['points'].items():
        rec = ' / '.join(fmt(x) for x in v['recall'])
        lag = ' / '.join(fmt(x) for x in v['shortfall_lag_r'])
        rows.append(f"| {k} | {v['ap50']:.3f} | {v['map']:.3f} | {rec} | {v['p50_ms']:.1f} | "
                    f"{share[k]:.0%} | {lag} |")
    o = res['oracle']
    rec = ' / '.join(fmt(x) for x in o['recall'])
    rows.append(f"| **oracle** | {o['ap50']:.3f} | {o['map']:.3f} | {rec} | "
                f"{o['mean_ms']:.1f} (mean) | | |")
    return '\n'.join(rows)


def main(argv=None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', type=Path, default=ROOT / 'models' / 'tts_detnet')
    ap.add_argument('--seed', type=int, default=3000)
    ap.add_argument('--frames', type=int, default=150)
    ap.add_argument('--out', type=Path, default=ROOT / 'bench' / 'results' /
                    'detector_headroom.json')
    ap.add_argument('--no-record', dest='record', action='store_false')
    a = ap.parse_args(argv)
    frames, refs = drive_frames(a.seed, a.frames)
    model = load_model_description(a.model)
    res = summarise(run_points(a.model, frames, refs), refs, model.num_classes)
    res.update({'seed': a.seed, 'frames': len(frames),
                'reference_boxes': int(sum(len(r.classes) for r in refs))})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    best = res['best_static']
    near, pts = res['cheapest_within_0.01'], res['points']
    summary = (f"Best static point {best}: AP50 {pts[best]['ap50']:.3f} at "
               f"{pts[best]['mean_ms']:.1f} ms a frame; the cheapest static point within 0.01 "
               f"of it, {near}: AP50 {pts[near]['ap50']:.3f} at {pts[near]['mean_ms']:.1f} ms; "
               f"the oracle: AP50 {res['oracle']['ap50']:.3f} at "
               f"{res['oracle']['mean_ms']:.1f} ms ({res['saving_vs_best_static']:.0%} less "
               f"compute than the best static point).")
    table = markdown(res, model.classes)
    print(table + '\n' + summary)
    if a.record:
        record('detector-headroom', 'Bundled detector: every point and the per-frame oracle',
               command_line('make detector-headroom', 'bench/detector_headroom.py', argv),
               f"{len(frames)} frames of a scripted drive on course {a.seed} (never used in "
               f"training or validation); references: every obstacle with at least "
               f"{MIN_BOX_PIXELS} visible pixels at 640x480, far ones included "
               f"({res['reference_boxes'] / len(frames):.0f} a frame); the package's runner "
               f"on ONNX Runtime, one frame at a time (int8: convolutions quantized). "
               f"Shortfall r: how a point's per-frame AP50 shortfall against the best static "
               f"point correlates with its own shortfall 1 and 4 frames (0.1 and 0.4 s) "
               f"earlier, on frames with reference boxes: what a scheduler that measured the "
               f"recent past could know of the oracle's next choice."
               f"\n\n{table}\n\n{summary}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
