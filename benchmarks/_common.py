"""What every benchmark here shares: timing in shuffled rounds, ratios of the fastest runs, the
numbers of the tables, peak memory, thread counts, and where the results go.

Imported by ``bench_speed.py``, ``bench_scorecam.py``, ``bench_cam.py`` (which runs both and writes
one report), ``bench_vit.py`` and the child processes of ``bench_backends.py``.
"""
from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

try:
    import gradcam_helpers  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(HERE.parent))

#: the variant timed once per case, not in every round (one forward pass per channel)
SCORECAM = "scorecam"


# ------------------------------------------------------------------------------------------------
# timing


@dataclass
class Timings:
    """Seconds per call of each variant, one entry per round: wall clock and process CPU time.

    The report uses the wall clock. The CPU time goes to the JSON only: on a shared CPU it is
    inflated too (threads that wait for each other spin), so it is no cleaner.
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    @property
    def rounds(self) -> int:
        return min((len(v) for k, v in self.wall.items() if k != SCORECAM), default=0)


def time_rounds(variants: dict[str, Callable[[], Any]], *, min_rounds: int = 3, max_rounds: int = 7,
                budget_s: float = 75.0, warmup: int = 1, seed: int = 0) -> Timings:
    """Warm every variant up, then time each once per round, in a new shuffled order every round.

    Rounds go on until ``max_rounds``, or until ``budget_s`` seconds of timed rounds have passed and
    at least ``min_rounds`` are done.
    """
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    rng = random.Random(seed)
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    started = time.perf_counter()
    for done in range(max_rounds):
        if done >= min_rounds and time.perf_counter() - started > budget_s:
            break
        rng.shuffle(names)
        for name in names:
            gc.collect()
            w0, c0 = time.perf_counter(), time.process_time()
            variants[name]()
            c1, w1 = time.process_time(), time.perf_counter()
            wall[name].append(w1 - w0)
            cpu[name].append(c1 - c0)
    return Timings(wall, cpu)


def best_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """min(times[name]) / min(times[base]): the ratio of the fastest runs.

    Other programs on a shared CPU only ever add time, so each variant's fastest run is the best
    estimate of its own cost, and the ratio of the fastest runs the best estimate of the ratio.
    """
    return min(times[name]) / min(times[base])


def paired_ratio(times: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of times[name][r] / times[base][r] (a cross-check of :func:`best_ratio`).

    A variant timed only once (Score-CAM) is compared with the base's fastest run.
    """
    if len(times[name]) == 1 and len(times[base]) > 1:
        return times[name][0] / min(times[base])
    return statistics.median(t / b for t, b in zip(times[name], times[base]))


def short_number(value: float) -> str:
    """Three significant digits, without exponent notation for large values."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def torch_module(model, path: str):
    """The submodule of a torch model at a dotted path (``"layer4"``, ``"features.3"``)."""
    module = model
    for part in path.split("."):
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms by a thread (MiB).

    Freed memory is handed back to the system first (``malloc_trim``), so the level at entry is
    not inflated by what the previous variant left in the allocator.
    """

    def __enter__(self):
        import ctypes
        import threading

        import psutil

        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:  # not glibc
            pass
        self._process = psutil.Process()
        self.base = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        self.mib = (self.peak - self.base) / 2**20


def set_threads(threads: int, frameworks: set[str]) -> dict[str, str]:
    """Fix the thread count of each framework used (TF's must be set before its first op)."""
    versions = {"numpy": np.__version__, "python": platform.python_version()}
    if "keras" in frameworks:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        versions.update(tensorflow=tf.__version__, keras=keras.__version__)
    if "torch" in frameworks:
        import torch

        torch.set_num_threads(threads)
        versions["torch"] = torch.__version__
    return versions
