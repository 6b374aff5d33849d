"""The timing rule every speed benchmark here shares (imported by the scripts beside it)."""

from __future__ import annotations

import contextlib
import json
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

import torch


def time_call(run: Callable[[], object], device: str, repeats: int, context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext) -> tuple[float, float]:
    """Median wall seconds of `run()` over `repeats` calls after one warm-up, and peak memory in MiB.

    Each call runs inside a fresh `context()` (e.g. an autocast) and is fenced by
    `torch.cuda.synchronize()` on GPU. Peak memory is the CUDA allocator's peak on GPU and the
    process's maximum resident set on CPU, so measure one configuration per process.
    """
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with context():
        run()  # warm-up
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        with context():
            run()
        sync()
        times.append(time.perf_counter() - start)
    peak_mib = torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return statistics.median(times), peak_mib


def run_child(cmd: list[str]) -> dict:
    """Run one configuration in its own process (so its peak memory is its own) and read the JSON
    dict it prints last."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])
