"""A load step for benchmarks and evaluation: competing CPU processes or a GPU neighbour."""

import multiprocessing as mp
import time
from typing import List


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def _gpu_neighbour(stop_at: float) -> None:
    """Another process's work on the same GPU: back-to-back 4096^3 bf16 matrix products."""
    import torch
    a = torch.randn(4096, 4096, device='cuda', dtype=torch.bfloat16)
    while time.time() < stop_at:
        for _ in range(8):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def start_load(kind: str, procs: int = 2) -> List:
    """Start competing processes: ``cpu`` spinners or one ``gpu`` neighbour."""
    end = time.time() + 600
    if kind == 'gpu':
        ctx = mp.get_context('spawn')  # CUDA cannot be used in a forked child
        ps = [ctx.Process(target=_gpu_neighbour, args=(end,), daemon=True)]
    else:
        ps = [mp.Process(target=_spin, args=(end,), daemon=True) for _ in range(procs)]
    for p in ps:
        p.start()
    time.sleep(3.0 if kind == 'gpu' else 0.2)  # the GPU neighbour needs its context first
    return ps


def stop_load(procs: List) -> None:
    """End the load processes."""
    for p in procs:
        p.terminate()
        p.join()
