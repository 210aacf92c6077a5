"""Pack the bench's frames into compressed ``.npz`` files for a machine without rosbags/MuJoCo.

    python bench/pack_frames.py --out .gpu_data

writes ``eval.npz`` (the eval bag's frames, labels and stamps, for ``bench_core.py --frames``),
``profile.npz`` (the profile frames with their labels and boxes, for ``python -m
tts_perception.tools.bundled_profile --data`` and ``bench/gpu_check_detector.py``) and
``node.npz`` (the first ``--node-frames`` frames, no labels, for the node check).

    python bench/pack_frames.py --unpack .gpu_data/node.npz --out /tmp/node_bag

writes a rosbag2 of a packed file's frames (10 Hz stamps), for ``bench/bench_node.py --bag`` on a
machine with ``rosbags`` but no MuJoCo.
"""

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_core import load_frames  # noqa: E402
from tts_perception.tools.bundled_profile import render_profile_frames  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Write eval.npz and profile.npz under --out."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bag', type=Path, default=ROOT / 'data' / 'eval_bag')
    ap.add_argument('--data', type=Path, default=ROOT / 'data')
    ap.add_argument('--out', type=Path, required=True)
    ap.add_argument('--node-frames', type=int, default=40,
                    help='frames in node.npz (the player repeats them)')
    ap.add_argument('--unpack', type=Path, default=None,
                    help='a packed .npz: write its frames as a rosbag2 at --out instead')
    a = ap.parse_args(argv)
    if a.unpack is not None:
        return unpack(a.unpack, a.out)
    a.out.mkdir(parents=True, exist_ok=True)
    frames = load_frames(a.bag, 30.0, None)
    np.savez_compressed(a.out / 'eval.npz', rgb=np.stack([f[0] for f in frames]),
                        labels=np.stack([f[1] for f in frames]),
                        stamps=np.array([f[2] for f in frames], np.int64))
    np.savez_compressed(a.out / 'node.npz',
                        rgb=np.stack([f[0] for f in frames[:a.node_frames]]))
    render_profile_frames(a.data / 'profile.npz')        # renders it where it is missing
    with np.load(a.data / 'profile.npz') as d:           # frames, labels and boxes
        np.savez_compressed(a.out / 'profile.npz', **{k: d[k] for k in d.files})
    for f in ('eval.npz', 'profile.npz', 'node.npz'):
        print(f'{a.out / f}: {(a.out / f).stat().st_size / 1e6:.1f} MB')
    return 0


def unpack(npz: Path, out: Path) -> int:
    """Write the frames of a packed file as a rosbag2 (``camera/image_raw``, 10 Hz stamps)."""
    from tts_perception.bag.rosbag import BagWriter
    rgb = np.load(npz)['rgb']
    with BagWriter(out) as w:
        for i, frame in enumerate(rgb):
            w.write_image('camera/image_raw', 1_000_000_000 + i * 100_000_000, frame)
    print(f'{out}: {len(rgb)} frames')
    return 0


if __name__ == '__main__':
    sys.exit(main())
