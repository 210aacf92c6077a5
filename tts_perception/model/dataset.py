"""Training/validation data made by the simulator (no downloads).

Frames are rendered at 640x480 with ground-truth labels along scripted drives with randomised
pose jitter, from disjoint seed sets for train and validation. Stored as .npz under ``data/``.
"""

from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

from tts_perception.common.progress import Progress

TRAIN_SEEDS = tuple(range(1000, 1010))
VAL_SEEDS = (2000, 2001, 2002)


def render_split(seeds: Sequence[int], frames_per_seed: int, width: int = 640,
                 height: int = 480, jitter: bool = True, rng_seed: int = 0,
                 label: str = 'render') -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb N*H*W*3, labels N*H*W, seed_and_x N*2) sampled along each seed's course.

    Frames of one seed are consecutive positions along its course (in driving order) so the
    complexity monitor's temporal features can be fit on them.
    """
    from tts_perception.sim.world import World
    rng = np.random.default_rng(rng_seed)
    n = len(seeds) * frames_per_seed
    rgb = np.empty((n, height, width, 3), np.uint8)
    lab = np.empty((n, height, width), np.uint8)
    meta = np.empty((n, 2), np.float32)
    prog = Progress(n, label)
    i = 0
    for seed in seeds:
        with World(seed, width=width, height=height) as w:
            xs = np.linspace(0.5, w.course.length - 2.0, frames_per_seed)
            for x in xs:
                w.reset(float(x))
                if jitter:
                    w.state.y += float(rng.uniform(-0.6, 0.6))
                    w.state.yaw = float(rng.uniform(-0.35, 0.35))
                    w.step(0.0, 0.0, 1e-3)
                rgb[i], lab[i] = w.render_rgb(), w.render_labels()
                meta[i] = (seed, x)
                i += 1
                prog.update(i)
    prog.close()
    return rgb, lab, meta


def load_or_make(path: Path, seeds: Sequence[int], frames_per_seed: int, **kw):
    """Cached split at ``path`` (npz), rendered on first use."""
    path = Path(path)
    if path.exists():
        d = np.load(path)
        return d['rgb'], d['labels'], d['meta']
    rgb, lab, meta = render_split(seeds, frames_per_seed, label=f'render {path.name}', **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, rgb=rgb, labels=lab, meta=meta)
    return rgb, lab, meta
