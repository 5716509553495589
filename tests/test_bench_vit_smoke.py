"""Smoke test of benchmarks/bench_vit.py: its measurement and its report run end to end on a tiny
ViT, so the script cannot rot silently. Speed itself is not tested here (run the script for that)."""
from __future__ import annotations

import pytest
from _benchmarks import loaded

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_vit.py", "bench_vit") as module:
        yield module


@pytest.mark.slow
def test_bench_vit_measures_every_variant_and_writes_the_table(bench):
    from gradcam_helpers.course.models.torch_vit import build_torch_vit

    def tiny():
        return build_torch_vit(image_size=16, patch=4, dim=8, depth=2, heads=2, channels=3).eval()

    case = bench.bench.Case("torch", "tiny ViT", tiny, "blocks.1.norm1", 16, 3)
    results = [bench.measure(case, batch, min_rounds=1, max_rounds=1, warmup=0) for batch in (1, 2)]
    expected = [bench.bench.FORWARD, bench.bench.FLOOR, "gradcam", bench.bench.EXPLAIN, "attention",
                "rollout"]
    meta = {"date": "today", "machine": "test", "threads": 2, "versions": {}, "warmup": 0,
            "rounds": "1", "load_start": 0.0, "load_end": 0.0, "notes": ["a note"]}
    text = bench.report(results, meta)
    assert text.startswith("# Vision Transformer benchmark")
    lines = text.splitlines()
    header = "| " + " | ".join(bench.bench.COLUMNS) + " |"
    start = lines.index(header) + 2
    rows = [line.strip("|").split("|") for line in lines[start:start + 2 * len(expected)]]
    assert sorted((r[1].strip(), r[2].strip()) for r in rows) == sorted(
        (str(b), v) for b in (1, 2) for v in expected)
    goals = bench.goals(results)
    assert [g["batch"] for g in goals] == [1, 2] and all(g["value"] > 0 for g in goals)
    assert "Grad-CAM ≤ 1.1× the forward+grad floor" in text
    assert [c.layer for c in bench.default_cases()] == ["blocks.1.norm1", "blocks.11.norm1"]
