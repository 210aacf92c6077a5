"""Detection post-processing time: decode a YOLO-layout output, NMS, boxes back to camera
pixels, per frame.

    python bench/bench_detection.py [--candidates 300] [--classes 80] [--runs 2000]
        [--out bench/results/detection.json] [--no-record]

A ``[1, 4 + classes, candidates]`` output (Ultralytics layout) with boxes clustered around a
few objects, as a detector's candidates are, goes through
:func:`~tts_perception.inference.detection.decode_yolo` and
:func:`~tts_perception.inference.detection.postprocess` (letterboxed 640x640 input, 640x480
camera). Writes the latency quantiles as JSON and a section of docs/results.md; the target
(issue 38): p95 at most 1 ms at 300 candidates.
"""

import argparse
import json
from pathlib import Path
import sys
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tts_perception.inference.detection import decode_yolo, postprocess, Resize  # noqa: E402
from tts_perception.tools.results import command_line, machine_tag, record  # noqa: E402

TARGET_P95_MS = 1.0


def candidates(n: int, classes: int, seed: int = 0) -> np.ndarray:
    """A YOLO output of ``n`` candidates around 10 objects, scores spread over [0, 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(60, 580, (10, 2))
    pick = rng.integers(0, 10, n)
    out = np.zeros((1, 4 + classes, n), np.float32)
    out[0, :2] = (centres[pick] + rng.normal(0, 4, (n, 2))).T
    out[0, 2:4] = rng.uniform(20, 120, (2, n))
    out[0, 4:] = rng.random((classes, n)) ** 8          # most class scores near 0
    return out


def run(n: int, classes: int, runs: int) -> dict:
    out = candidates(n, classes)
    resize = Resize((640, 480), (640, 640), 'letterbox')
    times, kept = [], 0
    for i in range(runs + 50):
        t = time.perf_counter()
        d = postprocess(decode_yolo(out, classes), resize)
        if i >= 50:                                      # warm-up
            times.append((time.perf_counter() - t) * 1e3)
        kept = len(d)
    q = {k: float(np.percentile(times, v)) for k, v in (('p50', 50), ('p95', 95), ('p99', 99))}
    return {'candidates': n, 'classes': classes, 'runs': runs, 'kept': kept, **q,
            'target_p95_ms': TARGET_P95_MS, 'met': q['p95'] <= TARGET_P95_MS,
            'machine': machine_tag()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--candidates', type=int, default=300)
    ap.add_argument('--classes', type=int, default=80)
    ap.add_argument('--runs', type=int, default=2000)
    ap.add_argument('--out', type=Path, default=ROOT / 'bench' / 'results' / 'detection.json')
    ap.add_argument('--no-record', dest='record', action='store_false')
    a = ap.parse_args(argv)
    res = run(a.candidates, a.classes, a.runs)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    line = (f'| {res["candidates"]} | {res["classes"]} | {res["kept"]} | {res["p50"]:.3f} | '
            f'{res["p95"]:.3f} | {res["p99"]:.3f} | {"met" if res["met"] else "not met"} |')
    print(f'decode + NMS + to camera: p50 {res["p50"]:.3f} ms, p95 {res["p95"]:.3f} ms '
          f'({"met" if res["met"] else "NOT met"}: p95 <= {TARGET_P95_MS} ms)')
    if a.record:
        record('bench-detection', 'Detection post-processing: decode, NMS, boxes to camera',
               command_line('make bench-detection', 'bench/bench_detection.py', argv),
               f'{res["runs"]} frames, one thread; target p95 ≤ {TARGET_P95_MS} ms.\n\n'
               '| candidates | classes | boxes kept | p50 ms | p95 ms | p99 ms | target |\n'
               '|---|---|---|---|---|---|---|\n' + line)
    return 0


if __name__ == '__main__':
    sys.exit(main())
