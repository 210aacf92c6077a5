"""Latency of operating points on this machine, pre- and post-processing included: timed runs
in rounds over the points so that a burst of host noise lands in one round, not one point's
tail; and where it ran (:func:`machine_info`). Calibrate and the benches time with it."""

import os
import platform
from pathlib import Path
import time
from typing import Dict, List, Sequence

import numpy as np

from tts_perception.inference.points import OperatingPoint
from tts_perception.inference.runner import infer

LATENCY_RUNS = 45          # timed runs per point ...
LATENCY_PASSES = 3         # ... in rounds over the points (see measure_latencies)


def timed_runs(model, backend, frames: Sequence[np.ndarray], point: OperatingPoint, n: int,
               warmup: int = 5, batch: int = 1, first: int = 0, clock=time.perf_counter
               ) -> List[float]:
    """Latency (ms) of ``n`` runs of one point incl. pre/post-processing after ``warmup``
    untimed ones, on batches of ``frames`` taken in turn from index ``first``."""
    times = []
    for i in range(warmup + n):
        fr = [frames[(first + i * batch + j) % len(frames)] for j in range(batch)]
        t = clock()
        infer(model, backend, fr, point)
        if i >= warmup:
            times.append((clock() - t) * 1e3)
    return times


def measure_latency(model, backend, frames: np.ndarray, point: OperatingPoint, n: int = 30,
                    warmup: int = 5, batch: int = 1) -> Dict[str, float]:
    """Latency distribution (ms) of one point incl. pre/post-processing, after warm-up, in one
    block of runs."""
    return pass_quantiles([timed_runs(model, backend, frames, point, n, warmup, batch)])


def pass_quantiles(passes: Sequence[Sequence[float]]) -> Dict[str, float]:
    """A point's latency distribution (ms) from its timed runs in several passes: each
    quantile is the median over the passes of that pass's quantile (the mean is over every
    run), so a burst of host noise within one pass moves that pass's tail, not the point's."""
    runs = [np.asarray(x, float) for x in passes if len(x)]
    if not runs:
        raise ValueError('no timed runs')
    q = {k: float(np.median([np.percentile(a, v) for a in runs]))
         for k, v in (('p50', 50), ('p95', 95), ('p99', 99))}
    every = np.concatenate(runs)
    return {**q, 'mean': float(every.mean()), 'n': int(len(every))}


def measure_latencies(model, backend, frames: Sequence[np.ndarray],
                      points: Sequence[OperatingPoint], n: int = LATENCY_RUNS,
                      passes: int = LATENCY_PASSES,
                      warmup: int = 5, clock=time.perf_counter, progress=None
                      ) -> Dict[str, Dict[str, float]]:
    """Latency distribution (ms) of every point incl. pre/post-processing: ``passes`` rounds
    over the points, each point warmed up and timed ceil(n / passes) times per round, combined
    by :func:`pass_quantiles`. On a busy machine noise comes in bursts of seconds; timed in one
    block, a point's tail would be whatever burst fell on its block (and the node would judge
    it to miss deadlines it meets); timed in rounds, a burst lands in one round of a few
    points. ``progress(done, total)`` is called after each point's block."""
    passes = max(1, passes)
    per = max(1, -(-n // passes))
    times: Dict[str, List[List[float]]] = {p.key: [] for p in points}
    total, done = passes * len(points), 0
    for r in range(passes):
        for p in points:
            times[p.key].append(timed_runs(model, backend, frames, p, per, warmup,
                                           first=r * per, clock=clock))
            done += 1
            if progress is not None:
                progress(done, total)
    return {k: pass_quantiles(v) for k, v in times.items()}


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo, where ``platform.processor()`` is often
    empty), so that latencies measured on different machines are told apart."""
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine_info(device: str) -> Dict[str, object]:
    """Where a profile or bench ran: platform, CPUs and, on CUDA, the GPU and torch build."""
    info: Dict[str, object] = {'platform': platform.platform(),
                               'processor': cpu_model(), 'cpus': os.cpu_count()}
    if str(device).startswith('cuda'):
        import torch
        info.update(gpu=torch.cuda.get_device_name(0), torch=torch.__version__,
                    cuda=torch.version.cuda)
    return info
