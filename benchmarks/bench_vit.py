"""Speed of Grad-CAM and the attention maps on Vision Transformers, against the forward+grad floor.

Run it on demand (it is not part of ``make test``)::

    .venv/bin/python benchmarks/bench_vit.py              # a few minutes on a quiet 2-core CPU
    .venv/bin/python benchmarks/bench_vit.py --quick      # batch 1 only, fewer rounds
    .venv/bin/python benchmarks/bench_vit.py --models lesson

Models (PyTorch, random weights: speed does not depend on them): lesson 13's tiny ViT
(:func:`gradcam_helpers.course.models.torch_vit.build_torch_vit` with the lesson's settings, 40 × 40
inputs, 65 tokens) and a ViT-B/16-sized model (:func:`~gradcam_helpers.course.models.torch_vit.build_vit_b16`,
224 × 224, 197 tokens, 86 M parameters), at batch 1 and 8. The target is the last block's first
norm, the engine's automatic choice.

Variants, timed in shuffled rounds exactly as in ``bench_cam.py`` (whose timing code, in
``_common.py``, and table format, in ``bench_speed.py``, this script reuses): ``forward`` (under ``no_grad``), ``forward+grad floor`` (one forward
pass, autograd on only above the target, the gradient of the top class score to the target's
output — the least work a gradient CAM needs), Grad-CAM through a reused ``Explainer``,
``explain()`` without one, and the attention maps (``attention``, ``rollout``: one forward pass
with the attention weights requested from every ``nn.MultiheadAttention``). The goal — Grad-CAM
≤ 1.1× the floor — is printed, met or not met; nothing is asserted here.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import gradcam_helpers  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(HERE.parent))

import bench_speed as bench  # noqa: E402  (the cases, variants and table format)
from _common import RESULTS, best_ratio, paired_ratio, time_rounds  # noqa: E402

GOAL_GRADCAM_FLOOR = 1.1
ATTENTION_METHODS = ("attention", "rollout")


def lesson_vit():
    from gradcam_helpers.course.models.torch_vit import build_torch_vit

    return build_torch_vit(image_size=40, patch=5, dim=32, depth=2, heads=2, stem=16).eval()


def vit_b16():
    from gradcam_helpers.course.models.torch_vit import build_vit_b16

    return build_vit_b16().eval()


def default_cases() -> list[bench.Case]:
    return [bench.Case("torch", "lesson 13 ViT (40², 65 tokens)", lesson_vit, "blocks.1.norm1", 40, 1),
            bench.Case("torch", "ViT-B/16 (224², 197 tokens)", vit_b16, "blocks.11.norm1", 224, 3)]


def variants(model, layer: str, x) -> dict[str, Callable]:
    """forward, the floor, Grad-CAM, explain() and the attention maps for one model and batch."""
    from gradcam_helpers import explain

    base, explainer = bench.torch_variants(model, layer, x, ("gradcam",), naive=False)
    out = {name: base[name] for name in (bench.FORWARD, bench.FLOOR, "gradcam", bench.EXPLAIN)}
    out[bench.EXPLAIN] = lambda: explain(model, x, layer=layer)
    for method in ATTENTION_METHODS:
        out[method] = (lambda m=method: explainer(x, method=m))
    return out


def measure(case: bench.Case, batch: int, *, min_rounds: int = 3, max_rounds: int = 7,
            budget_s: float = 60.0, warmup: int = 1, seed: int = 0) -> bench.CaseResult:
    """Time the variants of ``case`` at ``batch``; the result carries its table rows."""
    import torch

    torch.manual_seed(seed)
    model = case.build()
    x = bench.make_input(case, batch, seed)
    load_before = os.getloadavg()[0]
    timings = time_rounds(variants(model, case.layer, x), min_rounds=min_rounds,
                                max_rounds=max_rounds, budget_s=budget_s, warmup=warmup, seed=seed)
    result = bench.CaseResult(case.label, case.framework, batch, case.layer, timings,
                              load=(load_before, os.getloadavg()[0]))
    result.rows = bench.case_rows(result)
    return result


def goals(results: Sequence[bench.CaseResult]) -> list[dict]:
    """Grad-CAM ≤ 1.1× the floor, per model and batch (printed, never asserted)."""
    out = []
    for r in results:
        wall = r.timings.wall
        value = best_ratio(wall, "gradcam", bench.FLOOR)
        median = paired_ratio(wall, "gradcam", bench.FLOOR)
        out.append({"goal": f"Grad-CAM ≤ {GOAL_GRADCAM_FLOOR:g}× the forward+grad floor",
                    "model": r.case, "batch": r.batch,
                    "measured": f"{value:.2f}× (median of rounds {median:.2f}×)", "value": value,
                    "met": value <= GOAL_GRADCAM_FLOOR,
                    "noisy": (value <= GOAL_GRADCAM_FLOOR) != (median <= GOAL_GRADCAM_FLOOR)})
    return out


def report(results: Sequence[bench.CaseResult], meta: dict) -> str:
    """The Markdown report, in ``bench_cam.py``'s table format."""
    text = bench.markdown(results, goals(results), meta)
    return text.replace("# CAM engine benchmark", "# Vision Transformer benchmark", 1)


def main(argv: Sequence[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description="Grad-CAM and attention maps on ViTs vs the floor")
    parser.add_argument("--quick", action="store_true", help="batch 1 only, at most 3 rounds")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--models", help="only the models whose label contains this text")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    cases = [c for c in default_cases() if not args.models or args.models.lower() in c.label.lower()]
    batches = (1,) if args.quick else (1, 8)
    load_start = os.getloadavg()[0]
    results = [measure(case, batch, max_rounds=3 if args.quick else 7)
               for case in cases for batch in batches]
    meta = {"date": _dt.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores", "threads": args.threads,
            "versions": {"torch": torch.__version__}, "warmup": 1,
            "rounds": ", ".join(sorted({str(r.timings.rounds) for r in results})),
            "load_start": load_start, "load_end": os.getloadavg()[0],
            "notes": ["PyTorch only: a Keras floor for a transformer's norm layer needs the head "
                      "above it as a model of its own, and the residual stream makes that head "
                      "take two inputs; the Keras ViT's maps equal the PyTorch twin's (tests/"
                      "test_vit_engine.py)."]}
    text = report(results, meta)
    print(text)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"vit-{meta['date']}.md"
        path.write_text(text, encoding="utf-8")
        print(f"written: {path.relative_to(HERE.parent)}")
    return text


if __name__ == "__main__":
    main()
