"""What Grad-CAM costs on each Keras 3 backend, relative to that backend's own forward pass.

Run it on demand (``make bench`` runs it after ``bench_cam.py``)::

    .venv/bin/python benchmarks/bench_backends.py             # ResNet50, 224×224, batch 1 and 8
    .venv/bin/python benchmarks/bench_backends.py --quick     # a small CNN, batch 1: a smoke run
    .venv/bin/python benchmarks/bench_backends.py --backends torch,jax

Keras fixes its backend at import, so each backend runs in its own process, one after the other
(never at the same time: they would share the CPU). In each process the same model (random
weights) is timed in rounds, in a new shuffled order every round, after one warm-up call:

* ``forward`` — the backend's own fastest plain inference: TensorFlow a ``tf.function``, torch
  eager under ``torch.no_grad()``, JAX ``jax.jit`` over ``model.stateless_call``; the output is
  converted to NumPy, as the engine's is;
* ``gradcam`` and ``eigencam`` (no gradient) through one reused ``Explainer``;
* the first call of a fresh ``Explainer`` is timed once (dry run + compiling: what a user waits
  for on the first explanation of a model).

Ratios are taken between the fastest runs (other programs only ever add time); the median over
rounds of the ratio within a round is printed beside it as a cross-check. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BACKENDS = ("tensorflow", "torch", "jax")
COLUMNS = ("backend", "model", "batch", "variant", "best s / call", "median s / call",
           "× forward", "× forward, median of rounds")

# Runs inside each backend's process; its configuration comes in BENCH_BACKENDS_CONFIG.
CHILD = r'''
import json, os, sys, time
import numpy as np

config = json.loads(os.environ["BENCH_BACKENDS_CONFIG"])
sys.path.insert(0, config["benchmarks"])
import keras
from _common import paired_ratio, time_rounds
from gradcam_helpers import Explainer

backend = keras.config.backend()
threads = config["threads"]
if backend == "tensorflow":
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
elif backend == "torch":
    import torch
    torch.set_num_threads(threads)


def build():
    keras.utils.set_random_seed(0)
    if config["quick"]:
        size = 64
        inp = keras.Input((size, size, 3))
        h = inp
        for i, width in enumerate((16, 32, 64)):
            h = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{i}")(h)
            h = keras.layers.MaxPooling2D()(h)
        h = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="last_conv")(h)
        h = keras.layers.GlobalAveragePooling2D()(h)
        return "small CNN 64×64", keras.Model(inp, keras.layers.Dense(10, activation="softmax")(h))
    return "ResNet50 224×224", keras.applications.ResNet50(weights=None)


def plain_forward(model):
    """The backend's own fastest inference call, returning NumPy."""
    if backend == "tensorflow":
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return lambda x: keras.ops.convert_to_numpy(fn(x))
    if backend == "torch":
        def run(x):
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(x, training=False))
        return run
    import jax

    jitted = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])

    def run(x):
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        return keras.ops.convert_to_numpy(jitted(tv, ntv, x))
    return run


name, model = build()
results["model"] = name
forward = plain_forward(model)
for batch in config["batches"]:
    x = np.random.default_rng(0).random((batch,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    xt = keras.ops.convert_to_tensor(x)
    start = time.perf_counter()
    explainer = Explainer(model)
    explainer(x, "gradcam")
    results[f"{batch}/first call"] = time.perf_counter() - start
    variants = {"forward": lambda: forward(xt),
                "gradcam": lambda: explainer(x, "gradcam"),
                "eigencam": lambda: explainer(x, "eigencam")}
    timings = time_rounds(variants, min_rounds=config["min_rounds"], max_rounds=config["max_rounds"],
                          budget_s=config["budget"])
    for variant, times in timings.wall.items():
        results[f"{batch}/{variant}"] = np.asarray(times)
        results[f"{batch}/{variant}/paired"] = paired_ratio(timings.wall, variant, "forward")
'''


def measure(backends: Sequence[str], quick: bool, threads: int, rounds: int | None,
            budget: float | None) -> dict:
    """Run the child once per backend, one after the other; {backend: {key: array}}."""
    from gradcam_helpers.course.backend_processes import run_on_backends

    min_rounds, max_rounds = (3, 5) if quick else (3, 15)
    if rounds is not None:
        min_rounds = max_rounds = rounds
    config = {"benchmarks": str(HERE), "quick": quick, "threads": threads,
              "batches": [1] if quick else [1, 8], "min_rounds": min_rounds,
              "max_rounds": max_rounds, "budget": budget if budget is not None else (20.0 if quick else 60.0)}
    return run_on_backends(CHILD, backends, threads=threads, parallel=False, timeout=3600,
                           env={"BENCH_BACKENDS_CONFIG": json.dumps(config)})


def rows(measured: dict) -> list[dict]:
    """One row per backend, batch and variant, with the ratios to that backend's forward pass."""
    out = []
    for backend, result in measured.items():
        batches = sorted({int(k.split("/")[0]) for k in result if k[0].isdigit()})
        for batch in batches:
            forward = float(result[f"{batch}/forward"].min())
            for variant in ("forward", "gradcam", "eigencam"):
                times = result[f"{batch}/{variant}"]
                out.append({"backend": backend, "model": str(result["model"]), "batch": batch,
                            "variant": variant, "best_seconds": float(times.min()),
                            "median_seconds": float(sorted(times)[len(times) // 2]),
                            "x_forward": float(times.min()) / forward,
                            "x_forward_median_of_rounds": float(result[f"{batch}/{variant}/paired"]),
                            "rounds": len(times)})
            first = float(result[f"{batch}/first call"])
            out.append({"backend": backend, "model": str(result["model"]), "batch": batch,
                        "variant": "gradcam, first call of a new Explainer (dry run + compile)",
                        "best_seconds": first, "median_seconds": first, "x_forward": first / forward,
                        "x_forward_median_of_rounds": float("nan"), "rounds": 1})
    return out


def _num(value: float) -> str:
    if value != value:  # NaN: measured once
        return "1 run"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def markdown(table: Sequence[dict], meta: dict) -> str:
    lines = [f"{meta['machine']}; {meta['threads']} threads per backend; {meta['versions']}; "
             f"load average {meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end.",
             "",
             "`× forward`: the ratio of the fastest runs to the same backend's fastest plain forward "
             "pass (TensorFlow: tf.function; torch: eager under no_grad; JAX: jax.jit of "
             "stateless_call), in the same process and the same rounds.",
             "",
             "| " + " | ".join(COLUMNS) + " |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['backend']} | {r['model']} | {r['batch']} | {r['variant']} | "
                     f"{_num(r['best_seconds'])} | {_num(r['median_seconds'])} | "
                     f"{r['x_forward']:.2f} | {_num(r['x_forward_median_of_rounds'])} |")
    return "\n".join(lines) + "\n"


def run(backends: Sequence[str] = BACKENDS, quick: bool = False, threads: int = 2,
        rounds: int | None = None, budget: float | None = None, write: bool = True,
        out=sys.stdout) -> dict:
    """The whole benchmark; returns the JSON-able result and writes ``results/`` when ``write``."""
    import importlib.metadata as md

    load_start = os.getloadavg()[0]
    measured = measure(backends, quick, threads, rounds, budget)
    table = rows(measured)
    versions = {}
    for package in ("keras", "tensorflow", "torch", "jax"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    meta = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores",
            "threads": threads, "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
            "load_start": load_start, "load_end": os.getloadavg()[0], "quick": quick}
    text = markdown(table, meta)
    print(text, file=out)
    result = {"meta": meta, "rows": table,
              "times": {b: {k: v.tolist() for k, v in r.items() if v.dtype.kind == "f"}
                        for b, r in measured.items()}}
    if write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "backends.md").write_text(text, encoding="utf-8")
        (RESULTS / "backends.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Grad-CAM's cost on each Keras backend relative to "
                                                 "its own forward pass (see benchmarks/README.md).")
    parser.add_argument("--quick", action="store_true",
                        help="a small CNN at batch 1, 3–5 rounds: a smoke run (about a minute)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated subset of tensorflow,torch,jax")
    parser.add_argument("--rounds", type=int, help="exactly this many timed rounds")
    parser.add_argument("--budget", type=float, help="seconds of timed rounds per batch size")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per backend (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    run(backends, quick=args.quick, threads=args.threads, rounds=args.rounds, budget=args.budget,
        write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing the package
    sys.exit(main())
