"""calibrate: fit the scheduler's profile to your model on your robot's own recorded bag.

    python -m tts_perception.calibrate BAG [BAG ...] --model DIR [--image-topic T]
        [--labels-topic T] [--frames N] [--fit-fraction 0.5] [--int8]
        [--resolutions auto | WxH WxH ...] [--precisions auto | P ...] [--int8-bound 0.5]
        [--backend auto] [--out PATH]

Its defaults are the node's: backend ``auto`` and every precision the model lists. Reads the
bags' frames (the first ``--fit-fraction`` of each calibrates, the rest is held out for
``python -m tts_perception.evaluate``), optionally quantizes to int8 on them, fits the profile
(:mod:`tts_perception.adaptive.calibration`) and writes it with a plot next to it (default:
``profile_cpu.json`` in the model directory, ``profile_cuda.json`` on a CUDA backend).
What each step does and why: doc/calibration.md.
"""

import argparse
from pathlib import Path
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tts_perception.adaptive.calibration import (ACCURACY_BUDGET, build_profile,
                                                 default_resolutions, INT8_BOUND)
from tts_perception.adaptive.pipeline import PipelineConfig
from tts_perception.bag.recordings import read_recordings
from tts_perception.inference.latency import LATENCY_RUNS
from tts_perception.inference.model_desc import ModelDescription, ModelError
from tts_perception.inference.points import make_points, parse_resolution


def _calibrate(a: argparse.Namespace):
    """Read the recordings, quantize if asked, fit the profile: (profile, model, backend)."""
    from tts_perception.inference.backends import make_backend
    from tts_perception.inference.model_desc import load_model_description
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
    return t, model, backend


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    from tts_perception.bag.rosbag import BagError, ImageDecodeError
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
        t, model, backend = _calibrate(a)
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
    from tts_perception.tasks import task_for
    files = quantize_model(model, frames, wh, task_for(model).quantized_ops)
    add_int8_stages(model.root / 'model.yaml', files)
    return files
