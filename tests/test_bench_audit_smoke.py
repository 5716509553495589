"""Smoke test of benchmarks/bench_audit.py: its in-process measurement runs end to end on a small
set and its table and cluster estimate add up. Speed and memory themselves are not tested here
(``make bench``); the Ray engine is tested in tests/test_audit.py."""
from __future__ import annotations

import pytest
from _benchmarks import loaded

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def bench():
    with loaded("bench_audit.py", "bench_audit") as module:
        yield module


def test_quick_run_measures_both_sizes(bench, tmp_path):
    result = bench.main(["--quick", "--no-ray", "--no-write", "--small", "40", "--large", "100",
                         "--workdir", str(tmp_path)])
    small, large = result["runs"]
    assert (small["images"], large["images"]) == (40, 100)
    assert small["errors"] == large["errors"] == 0
    for run in (small, large):
        assert run["peak_rss_mb"] > 50 and run["seconds"] > run["first_batch_seconds"] > 0
        assert run["steady_images_per_second"] > 0
    assert "| local | 100 |" in result["markdown"] and "Memory, in-process" in result["markdown"]
    assert result["cluster"] == []


def test_cluster_estimate_scales_with_workers(bench):
    ray_run = {"engine": "ray", "images": 1000, "steady_images_per_second": 20.0}
    rows = bench.cluster_estimate(ray_run, workers=(2, 200), images=10**6)
    assert rows[0]["seconds_per_image_per_worker"] == pytest.approx(0.1)
    assert rows[0]["hours"] == pytest.approx(10**6 * 0.1 / 2 / 3600)
    assert rows[1]["hours"] == pytest.approx(rows[0]["hours"] / 100)
