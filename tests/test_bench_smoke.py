"""Smoke test of benchmarks/bench_cam.py and the measurements it runs (bench_speed.py,
bench_scorecam.py): they run end to end on tiny models, so the scripts cannot rot silently. Speed
itself is not tested here (run `make bench` for that)."""
from __future__ import annotations

import numpy as np
import pytest
from _benchmarks import loaded


@pytest.fixture(scope="module")
def bench():
    """The speed measurement: floors, engine methods, naive recipes, the table and goals."""
    with loaded("bench_speed.py", "bench_speed") as module:
        yield module


@pytest.fixture(scope="module")
def scorecam():
    with loaded("bench_scorecam.py", "bench_scorecam") as module:
        yield module


@pytest.fixture(scope="module")
def runner():
    """bench_cam.py, which runs both and writes the report (``make bench``)."""
    with loaded("bench_cam.py", "bench_cam") as module:
        yield module


def _tiny_torch():
    import torch

    from gradcam_helpers.course.models.torch_resnet import resnet18

    torch.manual_seed(0)
    return resnet18(num_classes=5, width=4).eval()


def _tiny_keras():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="last_conv")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(h))


def _expected_variants(bench, naive):
    return ([bench.FORWARD, bench.FLOOR, *bench.GRADIENT_METHODS, *bench.OTHER_METHODS,
             bench.EXPLAIN, bench.TORCHCAM] + naive + [bench.SCORECAM])


def _check_table(bench, results, expected_rows):
    meta = {"date": "today", "machine": "test", "threads": 2, "versions": {}, "warmup": 1,
            "rounds": "1", "load_start": 0.0, "load_end": 0.0, "notes": ["a note"]}
    goal_rows = bench.goals(results)
    text = bench.markdown(results, goal_rows, meta)
    lines = text.splitlines()
    header = "| " + " | ".join(bench.COLUMNS) + " |"
    assert header in lines
    start = lines.index(header) + 2
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    assert [(row[0], int(row[1]), row[2]) for row in table] == expected_rows
    for row in table:
        assert len(row) == len(bench.COLUMNS)
        assert all(np.isfinite([float(v) for v in row[3:8]])), row
        assert float(row[3]) <= float(row[4]), row  # the fastest run is not slower than the median
    for row in (row for r in results for row in r.rows):
        values = [row["best_seconds"], row["median_seconds"], row["x_forward"], row["x_floor"],
                  row["x_floor_median_of_rounds"]]
        assert all(np.isfinite(values)) and all(v > 0 for v in values), row
    # the floor is its own reference and the forward pass is the other one
    for row in table:
        if row[2] == bench.FLOOR:
            assert float(row[7]) == pytest.approx(1.0)
        if row[2] == bench.FORWARD:
            assert float(row[6]) == pytest.approx(1.0)
    # one floor goal per case and one naive-recipe goal at batch GOAL_BATCH
    assert [(g["model"], g["batch"]) for g in goal_rows if g["goal"].startswith("gradient methods")] \
        == [(r.case, r.batch) for r in results]
    # explain() vs a reused Explainer at batch 1, Grad-CAM vs the floor at batch 8
    assert [(g["model"], g["batch"]) for g in goal_rows if g["goal"].startswith("explain()")] == \
        [(r.case, 1) for r in results if r.batch == 1]
    assert [g["batch"] for g in goal_rows if g["goal"].startswith("Grad-CAM ≤")] == \
        [bench.GOAL_BATCH for r in results if r.batch == bench.GOAL_BATCH]
    assert "## Goals" in text and "- a note" in text
    return goal_rows


@pytest.mark.slow
def test_torch_case_runs_and_tabulates(bench, one_torch_thread):
    case = bench.Case("torch", "tiny torch", _tiny_torch, "layer4", size=32)
    results = [bench.measure_case(case, b, min_rounds=1, max_rounds=1, warmup=1, scorecam=(b == 1))
               for b in (1, bench.GOAL_BATCH)]
    names = _expected_variants(bench, [bench.NAIVE_TORCH])
    expected = [("tiny torch", 1, n) for n in names] + \
        [("tiny torch", bench.GOAL_BATCH, n) for n in names if n != bench.SCORECAM]
    goal_rows = _check_table(bench, results, expected)
    assert any("naive PyTorch" in g["goal"] and g["batch"] == bench.GOAL_BATCH for g in goal_rows)
    # the naive recipe computes the same Grad-CAM maps as the engine (so the race is fair)
    note = next(n for n in results[1].notes if "max |difference|" in n)
    assert float(note.rsplit("=", 1)[1]) < 1e-4, note


@pytest.mark.slow
def test_keras_case_runs_and_tabulates(bench):
    case = bench.Case("keras", "tiny keras", _tiny_keras, "last_conv", size=24)
    results = [bench.measure_case(case, b, min_rounds=1, max_rounds=1, warmup=0, scorecam=(b == 1))
               for b in (1, 2)]
    names = [bench.FORWARD, bench.FLOOR, bench.FORWARD_EAGER, bench.FLOOR_EAGER, *bench.GRADIENT_METHODS,
             *bench.OTHER_METHODS, bench.EXPLAIN, bench.NAIVE_KERAS, bench.SCORECAM]
    batched = names[:-1] + [bench.NAIVE_KERAS_BATCHED]
    expected = [("tiny keras", 1, n) for n in names] + [("tiny keras", 2, n) for n in batched]
    _check_table(bench, results, expected)
    note = next(n for n in results[0].notes if "max |difference|" in n)
    assert float(note.rsplit("=", 1)[1]) < 1e-4, note


def test_method_lists_come_from_the_registry(bench):
    from gradcam_helpers.engine.registry import METHODS

    assert set(bench.GRADIENT_METHODS) == {m.name for m in METHODS.values()
                                           if m.needs == "gradients" and m.kind == "cam"}
    assert "eigencam" in bench.OTHER_METHODS


def test_scorecam_comparison_runs_and_reports(scorecam, one_torch_thread):
    import torch

    from gradcam_helpers.course.models.torch_resnet import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=5, width=4).eval()
    x = torch.rand(1, 3, 96, 96)  # layer4: 3 × 3
    result = scorecam.measure_scorecam("tiny", model, "layer4", x, rounds=1)
    assert set(result["wall_seconds"]) == {scorecam.SC_EXACT, scorecam.SC_EXACT_SOFTMAX, scorecam.SC_EAGER,
                                           scorecam.SC_PREVIOUS, scorecam.SC_PGC, scorecam.SC_TOPK}
    assert result["channels"] == 32 and result["top_k"] == 8
    assert result["exact_vs_previous"] <= 1e-5  # exact means exact
    assert result["exact_vs_eager"] <= 1e-5  # the model's inference copy changes nothing
    assert result["softmax_vs_pgc_correlation"] > 0.95
    assert all(v[0] > 0 for v in result["wall_seconds"].values())
    goals = scorecam.scorecam_goals(result)
    assert [g["goal"].split()[0] for g in goals] == ["Score-CAM"] * 3 and goals[0]["met"]
    lines = scorecam.scorecam_markdown([result])
    assert sum(line.startswith("| tiny |") for line in lines) == 6


def test_keras_floor_requires_a_final_dense_layer(bench):
    import keras

    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(2, 3, name="c")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(h))
    with pytest.raises(ValueError, match="Dense"):
        bench.keras_variants(model, "c", np.zeros((1, 8, 8, 3), np.float32), ["gradcam"])


def test_ratios_use_the_fastest_runs(bench):
    times = {"a": [2.0, 1.0, 9.0], "b": [1.0, 0.5, 0.6]}
    assert bench.best_ratio(times, "a", "b") == pytest.approx(2.0)
    assert bench.paired_ratio(times, "a", "b") == pytest.approx(2.0)  # median of 2, 2, 15
    assert bench.paired_ratio({"a": [3.0], "b": [2.0, 1.5]}, "a", "b") == pytest.approx(2.0)


def test_goals_are_judged_per_case(bench):
    timings = bench.Timings(
        wall={bench.FORWARD: [1.0], bench.FLOOR: [1.0], "gradcam": [1.1], "layercam": [1.3],
              bench.NAIVE_TORCH: [3.5]},
        cpu={})
    result = bench.CaseResult("m", "torch", bench.GOAL_BATCH, "layer4", timings)
    floor_goal, naive_goal, gradcam_goal = bench.goals([result])
    assert floor_goal["met"] is False and "layercam 1.30" in floor_goal["measured"]
    # Grad-CAM alone within 1.1× the floor (1.1 / 1.0)
    assert gradcam_goal["met"] is True and gradcam_goal["value"] == pytest.approx(1.1)
    # gradcam alone would pass (3.5 / 1.1 ≈ 3.2) but every gradient method must: layercam 2.7 < 3
    assert naive_goal["met"] is False and naive_goal["value"] == pytest.approx(3.5 / 1.3)
    assert naive_goal["floor_value"] == pytest.approx(3.5)
    result.timings.wall["layercam"] = [1.15]
    floor_goal, naive_goal, gradcam_goal = bench.goals([result])
    assert floor_goal["met"] is True and naive_goal["met"] is True
    assert not floor_goal["noisy"] and not naive_goal["noisy"]
    result.timings.wall["gradcam"] = [1.15]  # within GOAL_FLOOR's 1.2×, not within GOAL_GRADCAM_FLOOR's 1.1×
    assert [g["met"] for g in bench.goals([result])] == [True, True, False]


def test_goal_flags_disagreeing_estimates_as_noisy(bench):
    # fastest runs: 1.0 / 1.0 (met); within rounds: 1, 3, 3 → median 3 (not met)
    timings = bench.Timings(wall={bench.FORWARD: [1.0] * 3, bench.FLOOR: [1.0] * 3,
                                  "gradcam": [1.0, 3.0, 3.0]}, cpu={})
    (goal,) = bench.goals([bench.CaseResult("m", "torch", 1, "layer4", timings)])
    assert goal["met"] is True and goal["noisy"] is True


def test_explain_goal_compares_with_the_reused_explainer(bench):
    timings = bench.Timings(wall={bench.FORWARD: [1.0] * 2, bench.FLOOR: [1.0] * 2,
                                  "gradcam": [1.0, 1.0], bench.EXPLAIN: [1.1, 1.3]}, cpu={})
    goal = bench.goals([bench.CaseResult("m", "torch", 1, "layer4", timings)])[-1]
    assert goal["goal"].startswith("explain()") and goal["value"] == pytest.approx(1.1)
    assert goal["met"] is True and goal["noisy"] is True  # median of rounds 1.2 > 1.15


def test_cli_rejects_unknown_framework(runner):
    with pytest.raises(SystemExit):
        runner.main(["--only", "jax"])


def test_pixel_attributions_get_rows(bench, one_torch_thread):
    case = bench.Case("torch", "tiny torch", _tiny_torch, "layer4", size=32)
    result = bench.measure_case(case, 1, min_rounds=1, max_rounds=1, warmup=0, naive=False,
                                pixel=True, methods=("gradcam",))
    names = {row["variant"] for row in result.rows}
    assert set(bench.pixel_methods()) == {"saliency", "smoothgrad", "integrated_gradients",
                                          "guided_backprop", "guided_gradcam"}
    assert set(bench.pixel_methods()) <= names
    assert all(row["best_seconds"] > 0 for row in result.rows if row["variant"] in names)


def test_the_report_calls_the_cpu_shared_only_for_load_beyond_its_own_threads(bench, monkeypatch):
    """The load average at the end counts the benchmark's own threads; only the rest is others'."""
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    meta = {"date": "today", "machine": "test", "threads": 2, "versions": {}, "warmup": 1,
            "rounds": "1", "load_start": 0.2, "load_end": 2.1, "notes": []}
    assert "shared with other work" not in bench.markdown([], [], meta)
    assert "shared with other work" in bench.markdown([], [], {**meta, "load_end": 4.5})
    assert "shared with other work" in bench.markdown([], [], {**meta, "load_start": 1.8})
