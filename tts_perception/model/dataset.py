"""Training/validation data made by the simulator (no downloads).

Frames are rendered at 640x480 with ground-truth labels along scripted drives with randomised
pose jitter, from disjoint seed sets for train and validation. Stored as .npz under ``data/``.
"""

from pathlib import Path
from typing import Iterator, Sequence, Tuple

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
    n = len(seeds) * frames_per_seed
    rgb = np.empty((n, height, width, 3), np.uint8)
    lab = np.empty((n, height, width), np.uint8)
    meta = np.empty((n, 2), np.float32)
    prog = Progress(n, label)
    for i, (w, seed, x) in enumerate(poses(seeds, frames_per_seed, width, height, jitter,
                                           rng_seed)):
        rgb[i], lab[i] = w.render_rgb(), w.render_labels()
        meta[i] = (seed, x)
        prog.update(i + 1)
    prog.close()
    return rgb, lab, meta


def poses(seeds: Sequence[int], frames_per_seed: int, width: int = 640, height: int = 480,
          jitter: bool = True, rng_seed: int = 0) -> Iterator[Tuple[object, int, float]]:
    """(world, seed, x) at evenly spaced positions along each seed's course, the robot
    shifted and turned at random (``jitter``) so that frames are not all along the lane."""
    from tts_perception.sim.world import World
    rng = np.random.default_rng(rng_seed)
    for seed in seeds:
        with World(seed, width=width, height=height) as w:
            for x in np.linspace(0.5, w.course.length - 2.0, frames_per_seed):
                w.reset(float(x))
                if jitter:
                    w.state.y += float(rng.uniform(-0.6, 0.6))
                    w.state.yaw = float(rng.uniform(-0.35, 0.35))
                    w.step(0.0, 0.0, 1e-3)
                yield w, seed, float(x)


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
