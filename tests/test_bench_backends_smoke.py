"""Smoke test of benchmarks/bench_backends.py: the command `make bench` runs goes end to end in its
quick form (torch backend only, the cheapest to start) and prints a full table with finite ratios.
Speed itself is not tested here (run `make bench` for that)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("keras") is None
                                or importlib.util.find_spec("torch") is None,
                                reason="needs keras and torch")]
VARIANTS = ["forward", "gradcam", "eigencam",
            "gradcam, first call of a new Explainer (dry run + compile)"]


def test_quick_run_on_one_backend_prints_a_full_table():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_backends.py"), "--quick",
                           "--backends", "torch", "--rounds", "2", "--threads", "1", "--no-write"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.splitlines()
    header = "| backend | model | batch | variant | best s / call | median s / call | × forward | × forward, median of rounds |"
    assert header in lines
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in lines[lines.index(header) + 2:] if line.startswith("| torch")]
    assert [row[3] for row in rows] == VARIANTS
    assert all(row[:3] == ["torch", "small CNN 64×64", "1"] for row in rows)
    for row in rows:
        best, median, ratio = float(row[4]), float(row[5]), float(row[6])
        assert 0 < best <= median and ratio > 0, row
    assert float(rows[0][6]) == pytest.approx(1.0)  # the forward pass is its own reference
    assert rows[3][7] == "1 run"
