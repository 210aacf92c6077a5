"""Checks of the bundled detector on torch CUDA (run by ``scripts/gpu_check.sh`` on a GPU).

Not part of ``make test``: CI has no GPU (the torch form's fp32 agreement with the graphs is
tested on the CPU there). Each check records its numbers; exit 1 if one fails; JSON to --out.

1. ``backend: auto`` resolves to torch on CUDA for the detector;
2. every (resolution, depth, precision) on the GPU: boxes that agree with torch fp32 on the
   CPU (agreement AP50, every class's recall of those boxes above the class floor: a reduced
   precision must not silently lose a class), AP50 and mAP against the simulator's boxes,
   p50/p99 of the frame (pre-processing, network, decode, NMS);
3. ``AdaptivePipeline`` from ``config/pipeline_detector_cuda.yaml`` (its profile made on this
   GPU first) processes frames under its deadline in cuda precisions.
"""

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT_BOUND = 0.9      # AP50 of a precision's boxes against CPU fp32's
CLASS_FLOOR = 0.5          # each class's recall of CPU fp32's boxes (calibrate's int8 bound)
sys.path.insert(0, str(ROOT))

from bench.gpu_check import Checks  # noqa: E402
from tts_perception.adaptive.pipeline import AdaptivePipeline  # noqa: E402
from tts_perception.common.detection_metrics import average_precision, FrameBoxes  # noqa: E402
from tts_perception.inference.backends import resolve_backend_name  # noqa: E402
from tts_perception.inference.backends.torch_backend import TorchBackend  # noqa: E402
from tts_perception.inference.latency import machine_info  # noqa: E402
from tts_perception.inference.model_desc import load_model_description  # noqa: E402
from tts_perception.inference.points import OperatingPoint  # noqa: E402
from tts_perception.inference.runner import infer  # noqa: E402
from tts_perception.tools.bundled_profile import profile_frames  # noqa: E402

RESOLUTIONS = ((160, 120), (320, 240), (480, 360), (640, 480))


def _timed(model, backend, frames, point, sync) -> tuple:
    """Detections of every frame and p50/p99 ms of the whole frame (after 5 warm frames)."""
    for f in frames[:5]:
        infer(model, backend, [f], point)
    dets, ms = [], []
    for f in frames:
        sync()
        t = time.perf_counter()
        dets.append(infer(model, backend, [f], point)[0][0])
        sync()
        ms.append((time.perf_counter() - t) * 1e3)
    return dets, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def check_points(c: Checks, model, cpu, gpu, frames, truth, sync) -> Dict[str, Dict]:
    """Check 2 for every point; per point its figures."""
    out: Dict[str, Dict] = {}
    for res in RESOLUTIONS:
        for depth in model.depths:
            ref = [FrameBoxes(d.boxes, d.classes) for d in
                   (infer(model, cpu, [f], OperatingPoint(*res, depth, 'fp32'))[0][0]
                    for f in frames)]
            for prec in gpu.supported_precisions():
                p = OperatingPoint(*res, depth, prec)
                dets, p50, p99 = _timed(model, gpu, frames, p, sync)
                agree = average_precision(dets, ref, model.num_classes)
                real = average_precision(dets, truth, model.num_classes)
                floor = min((r for r in agree.per_class_recall if r is not None), default=1.0)
                out[p.key] = {'agreement_ap50': agree.ap50, 'class_recall_min': floor,
                              'ap50': real.ap50, 'map': real.map, 'p50_ms': p50, 'p99_ms': p99}
                c.check(f'{p.key}: boxes agree with CPU fp32, no class lost',
                        agree.ap50 >= AGREEMENT_BOUND and floor >= CLASS_FLOOR,
                        **{k: round(v, 4) for k, v in out[p.key].items()})
    return out


def check_pipeline(c: Checks, config: Path, frames: List[np.ndarray]) -> None:
    """Check 3."""
    pipe = AdaptivePipeline.from_yaml(config)
    pipe.prepare()
    pipe.warm_up()
    recs = []
    for f in frames:
        now = time.time_ns()
        _, rec = pipe.process(f, now, now, deadline_ms=pipe.config.deadline_ms)
        recs.append(rec)
    c.check('AdaptivePipeline runs the detector from pipeline_detector_cuda.yaml',
            all(r.precision in ('fp32', 'fp16', 'bf16') for r in recs),
            device=str(pipe.backend.device), miss_rate=float(np.mean([r.missed for r in recs])),
            points=sorted({r.point for r in recs}),
            p50_ms=float(np.median([r.total_ms for r in recs])))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks; exit status 1 when one fails."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda', help='cuda (default), or cpu for a dry run')
    ap.add_argument('--frames', type=Path, default=ROOT / '.gpu_data' / 'profile.npz')
    ap.add_argument('--every', type=int, default=10, help='every n-th packed frame')
    ap.add_argument('--config', type=Path,
                    default=ROOT / 'config' / 'pipeline_detector_cuda.yaml')
    ap.add_argument('--out', type=Path,
                    default=ROOT / 'bench' / 'results' / 'gpu_check_detector.json')
    a = ap.parse_args(argv)
    import torch
    c = Checks()
    model = load_model_description(ROOT / 'models' / 'tts_detnet')
    rgb, _, _, boxes, _ = profile_frames(a.frames)
    frames, truth = list(rgb[::a.every]), boxes[::a.every]
    cuda = a.device.startswith('cuda')
    if cuda:
        name, why = resolve_backend_name('auto', model)
        c.check('auto backend resolves to torch on CUDA for the detector', name == 'torch',
                why=why)
    cpu, gpu = TorchBackend(model, device='cpu'), TorchBackend(model, device=a.device)
    cpu.prepare(['fp32'])
    gpu.prepare(list(gpu.supported_precisions()))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    points = check_points(c, model, cpu, gpu, frames, truth, sync)
    if cuda:
        check_pipeline(c, a.config, frames)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({'machine': machine_info(a.device), 'ok': c.ok,
                                 'points': points, 'checks': c.results}, indent=1))
    print(f'{sum(r["ok"] for r in c.results)}/{len(c.results)} checks passed; wrote {a.out}')
    return 0 if c.ok else 1


if __name__ == '__main__':
    sys.exit(main())
