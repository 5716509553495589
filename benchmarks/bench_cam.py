"""Speed benchmark of the CAM engine against its own floors and against naive recipes.

Run it on demand (it is not part of ``make test``)::

    make bench                                            # 20+ minutes on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_cam.py --quick      # batch 1 only, fewer rounds, no Score-CAM
    .venv/bin/python benchmarks/bench_cam.py --only torch # or --only keras
    .venv/bin/python benchmarks/bench_cam.py --only torch --scorecam-width 16 --scorecam-size 112
                                                          # a smaller Score-CAM run, busy machine

What one run measures, for each model and batch size (2 CPU threads unless ``--threads``):

* ``forward``: the model's forward pass alone (torch: under ``no_grad``; Keras: a tf.function);
* ``forward+grad floor``: the least work a gradient CAM needs — one forward pass, and a backward
  pass from the class score down to the target layer only, with no parameter gradient (Keras also
  has eager versions of both, as references);
* every method of the engine's registry through one reused ``Explainer``, and ``explain()`` called
  without keeping an Explainer (as users and lessons do in loops);
* the naive recipe a user would copy from a blog post (written here, in our own code):
  PyTorch — a forward hook and a full backward hook on the target module, then
  ``output.backward()`` over the whole model (parameter gradients included), one call per batch;
  Keras — a ``Model(model.inputs, [layer.output, model.output])`` rebuilt at every call and one
  ``GradientTape`` over the whole model, one image per call (so a batch of 8 is 8 calls);
  and, in PyTorch, torchcam's way (a hook keeps the output in the graph, autograd on everywhere,
  ``autograd.grad`` down to the layer);
* Score-CAM (PyTorch): the engine (exact, and a top-k approximation) against the engine's previous
  implementation and a pytorch-grad-cam-style recipe, with speed-ups, peak memory and the maps'
  differences, on random ResNet-18 / ResNet-50 and the pretrained EfficientNet-Lite0 on a photo.

Machines are noisy (the course machine's 2 cores are shared): every variant is warmed up first,
then the variants are timed in rounds, in a new shuffled order in each round. Other programs only
ever add time, so a ratio is taken between the fastest runs of two variants; the median over rounds
of the ratio within a round is printed beside it as a cross-check.

The speed goals (against the floor, the naive recipes, a reused Explainer and the Score-CAM
recipe) are printed with the result, met or not met; nothing is asserted here.

This file runs the benchmark and writes the report; the measurements live beside it, by what they
measure: ``bench_speed.py`` (the forward, the floor, the engine's methods and the naive recipes:
times and ratios), ``bench_scorecam.py`` (the Score-CAM comparison: time, peak memory, map
differences) and ``_common.py`` (timing in shuffled rounds, ratios, peak memory, threads).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, set_threads  # noqa: E402
from bench_scorecam import (  # noqa: E402
    NOTES_SCORECAM,
    measure_scorecam,
    scorecam_cases,
    scorecam_goals,
    scorecam_markdown,
)
from bench_speed import (  # noqa: E402
    FORWARD,
    GOAL_BATCH,
    GRADIENT_METHODS,
    NOTES_COMMON,
    NOTES_KERAS,
    NOTES_TORCH,
    OTHER_METHODS,
    Case,
    CaseResult,
    default_cases,
    goals,
    markdown,
    measure_case,
)


def run(only: str | None = None, quick: bool = False, rounds: int | None = None,
        threads: int = 2, budget_s: float | None = None, write: bool = True, out=sys.stdout,
        scorecam: bool | None = None, scorecam_size: int = 224, scorecam_width: int = 64,
        scorecam_photo: bool = True, scorecam_rounds: int = 1,
        methods: Sequence[str] | None = None, models: str | None = None) -> dict:
    """The whole benchmark; returns the JSON-able result and writes ``results/`` when ``write``.

    ``scorecam`` (default: unless ``quick``) adds the Score-CAM comparison on PyTorch models
    (:func:`scorecam_cases`, :func:`measure_scorecam`)."""
    cases = [c for c in default_cases(only) if models is None or models in c.label]
    methods = tuple(methods) if methods else GRADIENT_METHODS + OTHER_METHODS
    versions = set_threads(threads, {c.framework for c in cases})
    min_rounds, max_rounds = (3, 5) if quick else (3, 15)
    if rounds is not None:
        min_rounds = max_rounds = rounds
    budget_s = budget_s if budget_s is not None else (30.0 if quick else 60.0)
    batches = (1,) if quick else (1, GOAL_BATCH)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    results: list[CaseResult] = []
    frameworks = {c.framework for c in cases}
    notes = ((NOTES_TORCH if "torch" in frameworks else [])
             + (NOTES_KERAS if "keras" in frameworks else []) + NOTES_COMMON)
    for case in cases:
        print(f"[bench] building {case.label} …", file=sys.stderr, flush=True)
        model = case.build()
        for batch in batches:
            pixel = (not quick) and batch == 1 and case.label.startswith("ResNet-18")
            extra = " (+ the pixel attributions once)" if pixel else ""
            print(f"[bench] {case.label}, batch {batch}{extra}", file=sys.stderr, flush=True)
            res = measure_case(case, batch, model=model, min_rounds=min_rounds, max_rounds=max_rounds,
                               budget_s=budget_s, methods=methods, pixel=pixel)
            results.append(res)
            notes.extend(res.notes)
            print(f"[bench]   {res.timings.rounds} rounds; {time.perf_counter() - started:.0f} s so far",
                  file=sys.stderr, flush=True)
        if quick or scorecam is False:
            notes.append(_scorecam_estimate(case, [r for r in results if r.case == case.label], quick))
    scorecam_results: list[dict] = []
    if (not quick if scorecam is None else scorecam) and only in (None, "torch"):
        for label, build, layer, make_x in scorecam_cases(scorecam_size, scorecam_width, scorecam_photo):
            print(f"[bench] Score-CAM: {label}", file=sys.stderr, flush=True)
            scorecam_results.append(measure_scorecam(label, build(), layer, make_x(),
                                                     rounds=scorecam_rounds))
            print(f"[bench]   {time.perf_counter() - started:.0f} s so far", file=sys.stderr, flush=True)
        notes += NOTES_SCORECAM
    meta = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()} Linux, {os.cpu_count()} CPU cores",
        "threads": threads, "versions": versions, "warmup": 1, "quick": quick, "only": only,
        "rounds": ", ".join(str(n) for n in sorted({r.timings.rounds for r in results})) or "0",
        "load_start": load_start, "load_end": os.getloadavg()[0],
        "wall_seconds": time.perf_counter() - started, "notes": notes,
    }
    goal_rows = goals(results) + [g for r in scorecam_results for g in scorecam_goals(r)]
    text = markdown(results, goal_rows, meta, scorecam_markdown(scorecam_results))
    data = {"meta": meta, "rows": [row for r in results for row in r.rows], "goals": goal_rows,
            "scorecam": scorecam_results,
            "timings": [{"model": r.case, "batch": r.batch, "layer": r.layer,
                         "wall_seconds": r.timings.wall, "cpu_seconds": r.timings.cpu,
                         "load_average": list(r.load)} for r in results]}
    print(text, file=out)
    if write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.md").write_text(text, encoding="utf-8")
        (RESULTS / "latest.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
        print(f"[bench] wrote {RESULTS / 'latest.md'} and latest.json "
              f"({meta['wall_seconds']:.0f} s in all)", file=sys.stderr)
    return data


def _scorecam_estimate(case: Case, results: Sequence[CaseResult], quick: bool) -> str:
    """A note for a model whose Score-CAM was not timed: K forward passes per image, estimated."""
    k = max(r.channels for r in results)
    per_image = min(min(r.timings.wall[FORWARD]) / r.batch for r in results)
    hint = ("; run without --quick to time it on ResNet-18"
            if quick and case.framework == "torch" else "")
    return (f"{case.label}: Score-CAM not timed — it needs {k} masked forward passes per image; "
            f"at the best forward time per image measured here ({per_image:.3f} s) that is ≈ "
            f"{k * per_image / 60:.1f} min per image (an estimate, not a measurement){hint}.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speed of the CAM engine against its floors and "
                                                 "two naive recipes (see benchmarks/README.md).")
    parser.add_argument("--quick", action="store_true",
                        help="batch 1 only, 3–5 rounds, Score-CAM not timed (about 2 minutes)")
    parser.add_argument("--only", choices=("torch", "keras"), help="one framework only")
    parser.add_argument("--rounds", type=int,
                        help="exactly this many timed rounds per case (default: 3 to 15, as time allows)")
    parser.add_argument("--budget", type=float,
                        help="seconds of timed rounds per case, after which it stops once 3 rounds "
                             "are done (default 60; 30 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per framework (default 2)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    parser.add_argument("--scorecam", action=argparse.BooleanOptionalAction, default=None,
                        help="the Score-CAM comparison (default: on, off with --quick)")
    parser.add_argument("--scorecam-size", type=int, default=224,
                        help="input size of the random ResNets in the Score-CAM comparison")
    parser.add_argument("--scorecam-width", type=int, default=64,
                        help="layer1 width of those ResNets (64 = the real ones; 16 = a quarter of "
                             "the channels, for a busy machine)")
    parser.add_argument("--scorecam-rounds", type=int, default=1, help="rounds of the comparison")
    parser.add_argument("--no-photo", action="store_true",
                        help="leave the trained networks (EfficientNet-Lite0, lesson 06 ResNet) out of the Score-CAM comparison")
    parser.add_argument("--methods", help="comma-separated engine methods to time (default: every "
                                          "method of the registry)")
    parser.add_argument("--models", help="only the models whose label contains this text, e.g. 50")
    args = parser.parse_args(argv)
    run(methods=args.methods.split(",") if args.methods else None, models=args.models,
        only=args.only, quick=args.quick, rounds=args.rounds, threads=args.threads,
        budget_s=args.budget, write=not args.no_write, scorecam=args.scorecam,
        scorecam_size=args.scorecam_size, scorecam_width=args.scorecam_width,
        scorecam_photo=not args.no_photo, scorecam_rounds=args.scorecam_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

