"""Pack the bench's frames into compressed ``.npz`` files for a machine without rosbags/MuJoCo.

    python bench/pack_frames.py --out .gpu_data

writes ``eval.npz`` (the eval bag's frames, labels and stamps, for ``bench_core.py --frames``)
and ``profile.npz`` (the profile frames, for
``python -m tts_perception.tools.bundled_profile --data``).
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
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    frames = load_frames(a.bag, 30.0, None)
    np.savez_compressed(a.out / 'eval.npz', rgb=np.stack([f[0] for f in frames]),
                        labels=np.stack([f[1] for f in frames]),
                        stamps=np.array([f[2] for f in frames], np.int64))
    rgb, lab, seq, _ = render_profile_frames(a.data / 'profile.npz')
    np.savez_compressed(a.out / 'profile.npz', rgb=rgb, labels=lab, seq=seq)
    for f in ('eval.npz', 'profile.npz'):
        print(f'{a.out / f}: {(a.out / f).stat().st_size / 1e6:.1f} MB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
