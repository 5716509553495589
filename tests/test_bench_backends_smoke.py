"""Smoke test of benchmarks/bench_backends.py: one real quick run (torch backend only, the cheapest
to start) goes end to end, and the table has one row per variant with finite ratios. Speed itself
is not tested here (run `make bench` for that)."""
from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None
                                or importlib.util.find_spec("torch") is None,
                                reason="needs keras and torch")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_backends", ROOT / "benchmarks" / "bench_backends.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_quick_run_on_one_backend_writes_a_full_table(bench):
    out = io.StringIO()
    result = bench.run(["torch"], quick=True, threads=1, rounds=2, write=False, out=out)
    variants = [r["variant"] for r in result["rows"]]
    assert variants == ["forward", "gradcam", "eigencam",
                        "gradcam, first call of a new Explainer (dry run + compile)"]
    assert {r["backend"] for r in result["rows"]} == {"torch"}
    for row in result["rows"]:
        assert np.isfinite(row["best_seconds"]) and row["best_seconds"] > 0, row
        assert row["best_seconds"] <= row["median_seconds"], row
        assert np.isfinite(row["x_forward"]) and row["x_forward"] > 0, row
    assert result["rows"][0]["x_forward"] == pytest.approx(1.0)
    assert result["rows"][1]["rounds"] == 2
    text = out.getvalue()
    assert "| " + " | ".join(bench.COLUMNS) + " |" in text
    assert text.count("| torch | small CNN 64×64 | 1 |") == 4
