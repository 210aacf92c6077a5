"""profile: measure every operating point on this machine and write the scheduler's table.

    python -m tts_perception.tools.profile [--config config/pipeline.yaml] [--out PATH]

1. Renders (or reuses ``data/profile.npz``) scripted drives over held-out seeds at 10 Hz,
   640x480 with ground-truth labels: real sequences, so temporal features are real.
2. Runs every (resolution, precision) at full depth once per frame and scores every exit;
   fits the complexity monitor on the per-frame accuracy loss of the points against the best.
3. Measures each point's latency distribution after warm-up (p50/p95/p99) and the latency
   of batches of 2 and 4 frames.
4. Measures label agreement of every reduced precision (int8; fp16/bf16 on CUDA) with fp32
   per (resolution, depth).
5. Writes the profile JSON (latency, accuracy per complexity bin, complexity parameters,
   int8 agreement, model hash, machine) and a plot, and prints a table.
"""

import argparse
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import yaml

from tts_perception.inference.backends import make_backend
from tts_perception.adaptive.complexity import ComplexityMonitor, ComplexityParams, fit_complexity
from tts_perception.common.metrics import ConfusionMatrix, frame_miou
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.runner import infer
from tts_perception.inference.points import (golden_point, make_points, OperatingPoint,
                                             parse_resolution)
from tts_perception.common.progress import Progress

PROFILE_SEEDS = (2000, 2001)
N_BINS = 5
INT8_AGREEMENT_BOUND = 0.85


def render_profile_frames(path: Path, seeds: Sequence[int] = PROFILE_SEEDS,
                          frames_per_seed: int = 150, rate: float = 10.0, speed: float = 2.0):
    """Sequential 640x480 frames + labels of scripted drives (cached at ``path``)."""
    if path.exists():
        d = np.load(path)
        return d['rgb'], d['labels'], d['seq']
    from tts_perception.sim.world import scripted_command, World
    rgb, lab, seq = [], [], []
    prog = Progress(len(seeds) * frames_per_seed, f'render {path.name}')
    for si, seed in enumerate(seeds):
        with World(seed) as w:
            stride = max(1, int(round(60.0 / speed * rate / frames_per_seed)))
            for i in range(frames_per_seed * stride):
                v, om = scripted_command(w, speed)
                w.step(v, om, 1.0 / rate)
                if i % stride == 0:
                    rgb.append(w.render_rgb())
                    lab.append(w.render_labels())
                    seq.append(si)
                    prog.update(len(rgb))
    prog.close()
    rgb, lab, seq = np.stack(rgb), np.stack(lab), np.asarray(seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, rgb=rgb, labels=lab, seq=seq)
    return rgb, lab, seq


def measure_latency(model, backend, frames: np.ndarray, point: OperatingPoint, n: int = 30,
                    warmup: int = 5, batch: int = 1) -> Dict[str, float]:
    """Latency distribution (ms) of one point incl. pre/post-processing, after warm-up."""
    times = []
    for i in range(warmup + n):
        fr = [frames[(i * batch + j) % len(frames)] for j in range(batch)]
        t = time.perf_counter()
        infer(model, backend, fr, point)
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1e3)
    a = np.asarray(times)
    return {'p50': float(np.percentile(a, 50)), 'p95': float(np.percentile(a, 95)),
            'p99': float(np.percentile(a, 99)), 'mean': float(a.mean()), 'n': int(len(a))}


def machine_info(device: str) -> Dict[str, object]:
    """Where a profile or bench ran: platform, CPUs and, on CUDA, the GPU and torch build."""
    info: Dict[str, object] = {'platform': platform.platform(),
                               'processor': platform.processor(), 'cpus': os.cpu_count()}
    if str(device).startswith('cuda'):
        import torch
        info.update(gpu=torch.cuda.get_device_name(0), torch=torch.__version__,
                    cuda=torch.version.cuda)
    return info


def run_profile(config: Dict, out: Path, data_dir: Path = Path('data'),
                frames_per_seed: int = 150, latency_runs: int = 30, quiet: bool = False
                ) -> Dict:
    """Do the whole profile; returns the table (also written to ``out``)."""
    model = load_model_description(config['model_path'])
    backend = make_backend(config.get('backend', 'auto'), model,
                           threads=config.get('threads', 0))
    precisions = [p for p in config.get('precisions', ['fp32', 'int8'])
                  if p in backend.supported_precisions()]
    resolutions = [parse_resolution(r) for r in config['resolutions']]
    points = make_points(resolutions, model.depths, precisions)
    backend.prepare(precisions, resolutions)
    rgb, lab, seq = render_profile_frames(data_dir / 'profile.npz',
                                          frames_per_seed=frames_per_seed)
    nf = len(rgb)
    golden = golden_point(points)

    # --- accuracy of every point on every frame (all exits from one pass)
    per_frame: Dict[str, np.ndarray] = {p.key: np.zeros(nf) for p in points}
    preds: Dict[str, List[np.ndarray]] = {p.key: [] for p in points}
    prog = Progress(nf * len(resolutions) * len(precisions), 'accuracy', quiet=quiet)
    k = 0
    for i in range(nf):
        for (w, h) in resolutions:
            for prec in precisions:
                full = OperatingPoint(w, h, max(model.depths), prec)
                for d, (labels, conf) in enumerate(infer(model, backend, [rgb[i]], full,
                                                         all_exits=True), 1):
                    key = OperatingPoint(w, h, d, prec).key
                    per_frame[key][i] = frame_miou(labels[0], lab[i], model.num_classes)
                    preds[key].append(labels[0][::4, ::4].copy())
                k += 1
                prog.update(k)
    prog.close()

    # --- complexity: features in sequence (previous result = the golden point's), fit
    mon = ComplexityMonitor(ComplexityParams.neutral(),
                            obstacle_label=model.classes.index('obstacle')
                            if 'obstacle' in model.classes else -1)
    feats = np.zeros((nf, 7), np.float32)
    for i in range(nf):
        if i > 0 and seq[i] != seq[i - 1]:
            mon.reset()
        feats[i] = mon.features(rgb[i])
        g = preds[golden.key][i]
        mon.observe_result(np.repeat(np.repeat(g, 4, 0), 4, 1), 0.9)
    best = np.max(np.stack([per_frame[p.key] for p in points]), 0)
    loss = np.mean(np.stack([best - per_frame[p.key] for p in points]), 0)
    params = fit_complexity(feats, loss)
    mon.params = params
    cplx = np.array([mon.score_features(f) for f in feats])
    corr = float(np.corrcoef(cplx, loss)[0, 1])
    edges = np.linspace(0.0, 1.0, N_BINS + 1)
    bins = np.clip(np.searchsorted(edges, cplx, side='right') - 1, 0, N_BINS - 1)
    acc_table, overall = {}, {}
    sub_lab = [x[::4, ::4] for x in lab]
    for p in points:
        cms = [ConfusionMatrix(model.num_classes) for _ in range(N_BINS)]
        tot = ConfusionMatrix(model.num_classes)
        for i in range(nf):
            cms[bins[i]].add(preds[p.key][i], sub_lab[i])
            tot.add(preds[p.key][i], sub_lab[i])
        overall[p.key] = tot.miou()
        acc_table[p.key] = [c.miou() if c.m.sum() else tot.miou() for c in cms]

    # --- agreement of every reduced precision (int8, fp16, bf16) with fp32 labels
    agreement: Dict[str, Dict[str, float]] = {}
    if 'fp32' in precisions:
        for prec in [p for p in precisions if p != 'fp32']:
            agreement[prec] = {}
            for (w, h) in resolutions:
                for d in model.depths:
                    a = OperatingPoint(w, h, d, 'fp32').key
                    b = OperatingPoint(w, h, d, prec).key
                    agreement[prec][f'{w}x{h}/d{d}'] = float(np.mean(
                        [np.mean(x == y) for x, y in zip(preds[a], preds[b])]))

    # --- latency
    lat, batch_lat = {}, {}
    prog = Progress(len(points), 'latency', quiet=quiet)
    for j, p in enumerate(points):
        lat[p.key] = measure_latency(model, backend, rgb, p, n=latency_runs)
        runs = max(10, latency_runs // 2)
        if model.fixed_batch is None:      # a model with a fixed batch size is never batched
            batch_lat[p.key] = {str(n): measure_latency(model, backend, rgb, p, n=runs,
                                                        warmup=2, batch=n)['p95']
                                for n in (2, 4)}
        prog.update(j + 1)
    prog.close()

    table = {
        'created': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'machine': machine_info(backend.device),
        'model': model.name, 'model_hash': model.hash(), 'backend': backend.name,
        'device': backend.device, 'frames': int(nf), 'seeds': list(PROFILE_SEEDS),
        'points': [p.key for p in points], 'golden': golden.key,
        'latency_ms': lat, 'batch_latency_ms': batch_lat,
        'accuracy': {'metric': 'mIoU', 'bin_edges': edges.tolist(), 'miou': acc_table,
                     'overall': overall, 'bin_counts': np.bincount(bins, minlength=N_BINS)
                     .tolist()},
        'complexity': {**params.to_dict(), 'fit_correlation': corr},
        'int8_agreement': agreement.get('int8', {}),
        'int8_agreement_bound': INT8_AGREEMENT_BOUND, 'precision_agreement': agreement,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=1))
    return table


def print_table(t: Dict) -> None:
    """Human-readable profile summary."""
    print(f'\nprofile: {t["model"]} on {t["backend"]} ({t["device"]}), {t["frames"]} frames, '
          f'complexity fit r={t["complexity"]["fit_correlation"]:.2f}')
    print(f'{"point":>18} {"p50 ms":>7} {"p95 ms":>7} {"mIoU":>6}  per complexity bin')
    for k in t['points']:
        lt = t['latency_ms'][k]
        bins = ' '.join(f'{v:.3f}' for v in t['accuracy']['miou'][k])
        print(f'{k:>18} {lt["p50"]:7.2f} {lt["p95"]:7.2f} {t["accuracy"]["overall"][k]:6.3f}  '
              f'{bins}')
    for prec, agree in t.get('precision_agreement', {'int8': t['int8_agreement']}).items():
        if agree:
            print(f'{prec} vs fp32 label agreement: worst {min(agree.values()):.3f} '
                  f'(bound {t["int8_agreement_bound"]})')


def plot_profile(t: Dict, path: Path) -> None:
    """Latency vs accuracy scatter of all points."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in t['points']:
        p = OperatingPoint.parse(k)
        ax.scatter(t['latency_ms'][k]['p95'], t['accuracy']['overall'][k],
                   marker='o' if p.precision == 'fp32' else 'x', s=20 + 10 * p.depth)
        ax.annotate(k, (t['latency_ms'][k]['p95'], t['accuracy']['overall'][k]), fontsize=6)
    ax.set_xscale('log')
    ax.set_xlabel('latency p95 (ms)')
    ax.set_ylabel('mIoU (held-out seeds)')
    ax.set_title(f'operating points on {t["device"]}')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', type=Path, default=Path('config/pipeline.yaml'))
    ap.add_argument('--out', type=Path, default=None, help='default: profile_path of config')
    ap.add_argument('--data', type=Path, default=Path('data'))
    ap.add_argument('--frames-per-seed', type=int, default=150)
    ap.add_argument('--latency-runs', type=int, default=30)
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(a.config.read_text())
    out = a.out or Path(cfg['profile_path'])
    t = run_profile(cfg, out, a.data, a.frames_per_seed, a.latency_runs)
    print_table(t)
    plot_profile(t, out.with_suffix('.png'))
    print(f'wrote {out} and {out.with_suffix(".png")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
