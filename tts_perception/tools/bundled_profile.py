"""bundled_profile: the bundled model's profile, calibrated on simulator drives with ground
truth.

    python -m tts_perception.tools.bundled_profile [--config config/pipeline.yaml] [--out PATH]

Renders (or reuses ``data/profile.npz``) scripted drives over held-out seeds at 10 Hz, 640x480
with ground-truth labels (real sequences, so temporal features are real), then does what
``python -m tts_perception.calibrate`` does on a bag (:func:`build_profile`): accuracy of every
point per complexity bin, the complexity fit, reduced-precision checks against fp32 and
latency on this machine; writes the profile JSON and a plot and prints a table.
"""

import argparse
from pathlib import Path
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from tts_perception.inference.backends import make_backend
from tts_perception.inference.model_desc import load_model_description
from tts_perception.inference.points import make_points, parse_resolution
from tts_perception.common.progress import Progress
from tts_perception.adaptive.profile_data import Profile
from tts_perception.adaptive.calibration import build_profile, default_resolutions
from tts_perception.common.detection_metrics import FrameBoxes
from tts_perception.common.frames import Frames
from tts_perception.tools.profile_report import plot_profile, print_signals, print_table
from tts_perception.sim.course import COURSE_LENGTH_M

PROFILE_SEEDS = (2000, 2001)


def render_profile_frames(path: Path, seeds: Sequence[int] = PROFILE_SEEDS,
                          frames_per_seed: int = 150, rate: float = 10.0, speed: float = 2.0):
    """Sequential 640x480 frames + labels of scripted drives (cached at ``path``) and the sim
    time between two frames of a drive (s)."""
    rgb, lab, seq, _, period = profile_frames(path, seeds, frames_per_seed, rate, speed)
    return rgb, lab, seq, period


def profile_frames(path: Path, seeds: Sequence[int] = PROFILE_SEEDS, frames_per_seed: int = 150,
                   rate: float = 10.0, speed: float = 2.0):
    """:func:`render_profile_frames` and the ground-truth boxes of each frame
    (:meth:`~tts_perception.sim.world.World.render_boxes`): (rgb, labels, seq, boxes,
    period s). A cache without boxes is rendered again."""
    stride = max(1, int(round(COURSE_LENGTH_M / speed * rate / frames_per_seed)))
    if path.exists():
        d = np.load(path)
        if 'box_frame' in d:
            return d['rgb'], d['labels'], d['seq'], _frame_boxes(d, len(d['rgb'])), \
                stride / rate
    from tts_perception.sim.world import scripted_command, World
    rgb, lab, seq, boxes = [], [], [], []
    prog = Progress(len(seeds) * frames_per_seed, f'render {path.name}')
    for si, seed in enumerate(seeds):
        with World(seed) as w:
            for i in range(frames_per_seed * stride):
                v, om = scripted_command(w, speed)
                w.step(v, om, 1.0 / rate)
                if i % stride == 0:
                    rgb.append(w.render_rgb())
                    lab.append(w.render_labels())
                    boxes.append(w.render_boxes())
                    seq.append(si)
                    prog.update(len(rgb))
    prog.close()
    rgb, lab, seq = np.stack(rgb), np.stack(lab), np.asarray(seq)
    flat = {'box_frame': np.repeat(np.arange(len(boxes)), [len(c) for _, c in boxes]),
            'box_xyxy': np.concatenate([b for b, _ in boxes]).reshape(-1, 4),
            'box_class': np.concatenate([c for _, c in boxes]).astype(np.int64)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, rgb=rgb, labels=lab, seq=seq, **flat)
    return rgb, lab, seq, _frame_boxes(flat, len(rgb)), stride / rate


def _frame_boxes(d, n: int) -> List[FrameBoxes]:
    """Per frame its boxes from the cache's flat box arrays."""
    return [FrameBoxes(d['box_xyxy'][d['box_frame'] == i], d['box_class'][d['box_frame'] == i])
            for i in range(n)]


def run_profile(config: Dict, out: Optional[Path] = None, data_dir: Path = Path('data'),
                frames_per_seed: int = 150, latency_runs: int = 30, quiet: bool = False
                ) -> Tuple[Profile, Path]:
    """Do the whole profile; returns it and the file it was written to (``out``, default: the
    model's own profile file for the backend's device)."""
    model = load_model_description(config['model_path'])
    backend = make_backend(config.get('backend', 'auto'), model,
                           threads=config.get('threads', 0))
    want = config.get('precisions', ['auto'])
    precisions = [p for p in backend.supported_precisions() if 'auto' in want or p in want]
    rgb, lab, seq, boxes, period_s = profile_frames(data_dir / 'profile.npz',
                                                    frames_per_seed=frames_per_seed)
    res = config.get('resolutions', ['auto'])
    resolutions = default_resolutions(model, (rgb.shape[2], rgb.shape[1])) if 'auto' in res \
        else [parse_resolution(r) for r in res]
    points = make_points(resolutions, model.depths, precisions)
    backend.prepare(precisions, resolutions)
    frames = Frames(list(rgb), np.arange(len(rgb)) * int(round(period_s * 1e9)), list(lab), seq,
                    source={'simulator_seeds': list(PROFILE_SEEDS),
                            'frames_per_seed': frames_per_seed}, boxes=boxes)
    table = build_profile(model, backend, frames, points, fit_n=len(frames),
                          latency_runs=latency_runs, quiet=quiet)
    return table, table.save(out or model.profile_path(backend.device))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', type=Path, default=Path('config/pipeline.yaml'))
    ap.add_argument('--out', type=Path, default=None,
                    help='default: profile_<cpu|cuda>.json in the model directory')
    ap.add_argument('--data', type=Path, default=Path('data'))
    ap.add_argument('--frames-per-seed', type=int, default=150)
    ap.add_argument('--latency-runs', type=int, default=30)
    a = ap.parse_args(argv)
    cfg = yaml.safe_load(a.config.read_text())
    t, out = run_profile(cfg, a.out, a.data, a.frames_per_seed, a.latency_runs)
    print_table(t)
    print_signals(t)
    plot_profile(t, out.with_suffix('.png'))
    print(f'wrote {out} and {out.with_suffix(".png")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
