"""Checks of the torch CUDA path that need a GPU (run by ``scripts/gpu_check.sh`` on one).

Not part of ``make test``: CI has no GPU. Each check records its numbers; the script exits 1
if any check fails, and writes everything to ``--out`` (JSON).

1. ``backend: auto`` resolves to torch on CUDA when TensorRT is absent;
2. fp32/fp16/bf16 copies of the bundled model: every (resolution, depth) gives a valid label
   image, and its labels agree with torch fp32 on the CPU within the profile's bound;
3. int8 is refused on torch with a clear error;
4. ``release()`` gives the GPU memory back;
5. ``AdaptivePipeline`` from ``config/pipeline_cuda.yaml`` processes frames under a deadline
   and its decision records say cuda precisions;
6. the whole frame path on the device (:mod:`tts_perception.inference.device_path`) agrees
   with host pre/post-processing per point and precision, with p50/p99 of both.
"""

import argparse
import json
from pathlib import Path
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PIXEL_AGREEMENT_BOUND = 0.85   # share of pixels a reduced precision labels as fp32 does
sys.path.insert(0, str(ROOT))

from tts_perception.inference.backends import (  # noqa: E402
    BackendUnavailable, resolve_backend_name)
from tts_perception.inference.backends.torch_backend import TorchBackend  # noqa: E402
from tts_perception.inference.model_desc import load_model_description  # noqa: E402
from tts_perception.adaptive.pipeline import AdaptivePipeline  # noqa: E402
from tts_perception.inference.runner import infer  # noqa: E402
from tts_perception.inference.points import OperatingPoint  # noqa: E402
from tts_perception.inference.latency import machine_info  # noqa: E402


class Checks:
    """Collects named pass/fail results with their numbers."""

    def __init__(self) -> None:
        self.results: List[Dict] = []

    def check(self, name: str, ok: bool, **numbers) -> None:
        """Record one check and print it."""
        self.results.append({'check': name, 'ok': bool(ok), **numbers})
        print(f'[{"PASS" if ok else "FAIL"}] {name} {numbers if numbers else ""}', flush=True)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(r['ok'] for r in self.results)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the checks; exit status 1 when one fails."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cuda', help='cuda (default), or cpu for a dry run')
    ap.add_argument('--frames', type=Path, default=ROOT / '.gpu_data' / 'eval.npz')
    ap.add_argument('--config', type=Path, default=ROOT / 'config' / 'pipeline_cuda.yaml')
    ap.add_argument('--out', type=Path, default=ROOT / 'bench' / 'results' / 'gpu_check.json')
    a = ap.parse_args(argv)
    import torch
    c = Checks()
    model = load_model_description(ROOT / 'models' / 'tts_segnet')
    d = np.load(a.frames)
    rgb, truth = d['rgb'][::15], d['labels'][::15]

    if a.device.startswith('cuda'):
        name, why = resolve_backend_name('auto', model)
        c.check('auto backend resolves to torch on CUDA', name == 'torch', why=why)

    cpu = TorchBackend(model, device='cpu')
    cpu.prepare(['fp32'])
    gpu = TorchBackend(model, device=a.device)
    precisions = list(gpu.supported_precisions())
    gpu.prepare(precisions)
    mem_prepared = torch.cuda.memory_allocated() if a.device.startswith('cuda') else 0
    agreement: Dict[str, Dict[str, float]] = {p: {} for p in precisions}
    for res in ((160, 120), (320, 240), (640, 480)):
        for depth in model.depths:
            ref = [infer(model, cpu, [f], OperatingPoint(*res, depth, 'fp32'))[0][0]
                   for f in rgb]
            for prec in precisions:
                point = OperatingPoint(*res, depth, prec)
                out = [infer(model, gpu, [f], point)[0][0] for f in rgb]
                valid = all(o.shape == (480, 640) and o.dtype == np.uint8 and
                            o.max() < model.num_classes for o in out)
                agree = float(np.mean([np.mean(o == r) for o, r in zip(out, ref)]))
                right = float(np.mean([np.mean(o == t) for o, t in zip(out, truth)]))
                agreement[prec][point.key] = agree
                c.check(f'{point.key}: valid labels, agrees with CPU fp32',
                        valid and agree >= PIXEL_AGREEMENT_BOUND and right > 0.7,
                        agreement=round(agree, 5), pixel_accuracy=round(right, 4))
    # the whole frame on the device vs pre/post-processing on the host, same precision
    from tts_perception.inference.device_path import infer_on_device
    sync = torch.cuda.synchronize if a.device.startswith('cuda') else (lambda: None)
    frame_path: Dict[str, Dict[str, float]] = {}
    for prec in precisions:
        for res in ((160, 120), (320, 240), (640, 480)):
            point = OperatingPoint(*res, max(model.depths), prec)
            host = [infer(model, gpu, [f], point)[0][0] for f in rgb]
            dev = [infer_on_device(model, gpu, [f], point, a.device)[0][0] for f in rgb]
            agree = float(np.mean([np.mean(x == y) for x, y in zip(host, dev)]))
            times = {}
            for name, fn in (('host', infer), ('device', infer_on_device)):
                ts = []
                for i in range(60):
                    sync()
                    t = time.perf_counter()
                    fn(model, gpu, [rgb[i % len(rgb)]], point, *(
                        (a.device,) if name == 'device' else ()))
                    sync()
                    if i >= 10:
                        ts.append((time.perf_counter() - t) * 1e3)
                times[name] = {'p50': float(np.percentile(ts, 50)),
                               'p99': float(np.percentile(ts, 99))}
            frame_path[point.key] = {'agreement': agree, **{
                f'{k}_{q}_ms': v[q] for k, v in times.items() for q in ('p50', 'p99')}}
            c.check(f'{point.key}: frame path on the device agrees with the host path',
                    agree >= 0.999, **{k: round(v, 4) for k, v in frame_path[point.key].items()})
    try:
        gpu.check_precisions(['int8'])
        c.check('int8 on torch is refused', False)
    except BackendUnavailable as exc:
        c.check('int8 on torch is refused', 'int8' in str(exc), error=str(exc))

    if a.device.startswith('cuda'):
        gpu.release()
        torch.cuda.synchronize()
        mem_released = torch.cuda.memory_allocated()
        c.check('release() frees GPU memory', mem_released < mem_prepared,
                prepared_bytes=mem_prepared, released_bytes=mem_released)

    pipe = AdaptivePipeline.from_yaml(a.config, backend='torch')
    recs = []
    for i, (f, t) in enumerate(zip(d['rgb'][:100], d['labels'][:100])):
        now = time.time_ns()
        labels, rec = pipe.process(f, now, now, deadline_ms=pipe.config.deadline_ms)
        recs.append(rec)
    miss = float(np.mean([r.missed for r in recs]))
    c.check('AdaptivePipeline on torch CUDA from pipeline_cuda.yaml',
            labels.shape == (480, 640) and all(r.precision in precisions for r in recs),
            device=str(pipe.backend.device), miss_rate=miss,
            points=sorted({r.point for r in recs}),
            p50_ms=float(np.median([r.total_ms for r in recs])))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({'machine': machine_info(a.device), 'ok': c.ok,
                                 'agreement_with_cpu_fp32': agreement,
                                 'frame_path_on_device': frame_path,
                                 'checks': c.results}, indent=1))
    print(f'{sum(r["ok"] for r in c.results)}/{len(c.results)} checks passed; wrote {a.out}')
    return 0 if c.ok else 1


if __name__ == '__main__':
    sys.exit(main())
