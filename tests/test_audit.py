"""The dataset audit: table contents, broken files, resuming after a kill, the CLI, the report,
and Ray Data (local, 2 CPUs) against the in-process engine.

Ray starts once for this module (slow: tens of seconds on a busy machine) and only for the tests
that need it. Speed and memory are measured in benchmarks/bench_audit.py, not here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gradcam_helpers.audit import ModelSpec, audit, find_images, summarize, write_report
from gradcam_helpers.audit.store import ResultStore
from gradcam_helpers.audit.synthetic import write_hospital_xrays
from gradcam_helpers.audit.worker import schema, thumbnails
from gradcam_helpers.evaluation.diagnose import DEFAULT_THRESHOLDS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit_factories import TINY  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 48
FACTORY = "gradcam_helpers.course.models.torch_resnet:build_resnet"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}


def _plain(table: pa.Table) -> pa.Table:
    """The rows without the run's settings (for comparing runs with different factories)."""
    return table.replace_schema_metadata(None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """~200 synthetic X-rays from two hospitals, their lung masks, a broken and a truncated
    file, and a random tiny ResNet's checkpoint."""
    import torch

    from gradcam_helpers.course.models.torch_resnet import build_resnet

    base = tmp_path_factory.mktemp("audit")
    write_hospital_xrays(base / "xrays", 200, SIZE, masks=base / "masks", show_progress=False)
    (base / "xrays" / "hospital_a" / "NORMAL" / "zz_broken.png").write_bytes(b"not an image")
    good = base / "xrays" / "hospital_b" / "PNEUMONIA" / "hospital_b_000000.png"
    (good.parent / "zz_truncated.png").write_bytes(good.read_bytes()[:60])
    torch.manual_seed(0)
    torch.save(build_resnet(**TINY).state_dict(), base / "tiny.pt")
    return base


@pytest.fixture(scope="module")
def spec(data):
    return ModelSpec.torch(data / "tiny.pt", FACTORY, **TINY)


@pytest.fixture(scope="module")
def local_run(data, spec):
    return audit(data / "xrays", spec, data / "local.parquet", size=SIZE, layer="layer4[-1]",
                 masks=data / "masks", batch_size=16, progress=False)


def test_find_images_reads_labels_and_folders_from_the_layout(tmp_path):
    for rel in ("train/NORMAL/a.png", "train/pneumonia/b.JPEG", "site1/NORMAL/c.png",
                "flat.png", "notes.txt", ".hidden/d.png", "site1/.e.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    rows = find_images(tmp_path).to_pylist()
    assert rows == [{"path": "flat.png", "label": None, "folder": "."},
                    {"path": "site1/NORMAL/c.png", "label": 0, "folder": "site1"},
                    {"path": "train/NORMAL/a.png", "label": 0, "folder": "train"},
                    {"path": "train/pneumonia/b.JPEG", "label": 1, "folder": "train"}]
    (tmp_path / "empty" / "NORMAL").mkdir(parents=True)
    (tmp_path / "empty" / "NORMAL" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError, match="no image files"):
        find_images(tmp_path / "empty")


def test_each_image_gets_one_row_and_broken_files_an_error_row(data, local_run):
    table = local_run.table()
    files = find_images(data / "xrays").column("path").to_pylist()
    assert table.column("path").to_pylist() == files and local_run.audited == len(files) == 202
    assert local_run.errors == 2
    errors = {r["path"]: r for r in table.to_pylist() if r["error"] is not None}
    assert sorted(errors) == ["hospital_a/NORMAL/zz_broken.png",
                              "hospital_b/PNEUMONIA/zz_truncated.png"]
    for path, row in errors.items():
        assert path.split("/")[-1] in row["error"] and row["pred"] is None and row["thumb"] is None
        assert row["label"] is not None   # the label comes from the folder, readable or not
    ok = table.filter(table.column("error").is_null())
    assert ok.column("pred").null_count == 0 and ok.column("thumb").null_count == 0


def test_rows_hold_what_explain_and_diagnose_compute(data, local_run):
    import torch

    from gradcam_helpers import explain
    from gradcam_helpers.audit.dataset import read_image

    table = local_run.table()
    table = table.filter(table.column("error").is_null())
    rows = table.slice(0, 12).to_pylist()
    model = ModelSpec.torch(data / "tiny.pt", FACTORY, **TINY).load()
    x = np.stack([read_image(data / "xrays" / r["path"], SIZE) for r in rows])[:, None]
    res = explain(model, torch.from_numpy(x), layer="layer4[-1]")
    assert [r["pred"] for r in rows] == res.logits.argmax(1).tolist()
    np.testing.assert_allclose([r["score"] for r in rows], res.probabilities.max(1), rtol=1e-6)
    np.testing.assert_array_equal(np.stack([r["thumb"] for r in rows]).reshape(-1, 16, 16),
                                  thumbnails(res.maps))
    t = DEFAULT_THRESHOLDS
    for r in table.to_pylist():
        assert r["flag_uniform"] == (r["empty"] or r["flatness"] >= t["uniform_threshold"])
        assert r["flag_corner"] == (r["corner_energy"] >= t["corner_threshold"]
                                    or (r["peak_in_corner"] and not r["flag_uniform"]))
        # every image has a lung mask: inside + outside = the whole map
        assert r["energy_in_mask"] + r["outside_roi"] == pytest.approx(1.0)
        assert r["pointing_hit"] is not None and 0.5 <= r["score"] <= 1


def test_a_finished_table_is_skipped_and_other_settings_are_refused(data, spec, local_run):
    before = local_run.table()
    again = audit(data / "xrays", spec, local_run.path, size=SIZE, layer="layer4[-1]",
                  masks=data / "masks", progress=False)
    assert again.audited == 0 and again.skipped == 202
    assert pq.read_table(local_run.path).equals(before)
    with pytest.raises(ValueError, match="method"):
        audit(data / "xrays", spec, local_run.path, size=SIZE, layer="layer4[-1]",
              masks=data / "masks", method="layercam", progress=False)
    assert pq.read_table(local_run.path).equals(before)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gradcam_helpers.audit", *map(str, args)],
                          env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_run_killed_midway_resumes_with_each_image_once(data, tmp_path):
    images = tmp_path / "xrays"
    write_hospital_xrays(images, 16, SIZE, hospitals={"hospital_a": None}, show_progress=False)
    marker = tmp_path / "crashed"
    out = tmp_path / "audit.parquet"
    kwargs = json.dumps({"marker": str(marker), "after": 3, **TINY})
    command = [images, "--model", data / "tiny.pt", "--factory",
               "audit_factories:crash_once_resnet", "--factory-kwargs", kwargs, "--size", SIZE,
               "--layer", "layer4[-1]", "--out", out, "--batch-size", 8, "--part-rows", 8,
               "--quiet"]
    marker.touch()                           # a first, complete run over 16 images
    first = _cli(*command)
    assert first.returncode == 0, first.stderr
    good = pq.read_table(out)
    assert good.num_rows == 16
    marker.unlink()                          # 48 new images; this run dies at forward call 4
    write_hospital_xrays(images, 48, SIZE, hospitals={"hospital_b": 0.9}, show_progress=False)
    killed = _cli(*command)
    assert killed.returncode == 1 and marker.exists(), killed.stderr
    assert pq.read_table(out).equals(good)   # the good table is untouched
    parts = sorted((tmp_path / "audit.parquet.parts").glob("part-*.parquet"))
    done = sum(pq.read_metadata(p).num_rows for p in parts)
    assert parts and 0 < done < 48
    resumed = _cli(*command)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{16 + done} already done" in resumed.stdout
    table = pq.read_table(out)
    paths = table.column("path").to_pylist()
    assert len(paths) == len(set(paths)) == 64
    assert not (tmp_path / "audit.parquet.parts").exists()
    # the same rows as one uninterrupted run
    spec = ModelSpec.torch(data / "tiny.pt", FACTORY, **TINY)
    clean = audit(images, spec, tmp_path / "clean.parquet", size=SIZE, layer="layer4[-1]",
                  batch_size=8, progress=False).table()
    assert _plain(table.sort_by("path")).equals(_plain(clean.sort_by("path")))


def test_cli_explains_a_missing_factory(data, tmp_path):
    result = _cli(data / "xrays", "--model", data / "tiny.pt", "--size", SIZE,
                  "--out", tmp_path / "a.parquet")
    assert result.returncode != 0 and "--factory" in result.stderr


def test_summary_and_report_on_a_table_with_a_known_shortcut(tmp_path):
    """Hospital b: 8 of 10 maps peak in a corner; hospital a: none. Labels and predictions are
    chosen so that every accuracy in the summary is known."""
    n = 20
    folder = ["hospital_a"] * 10 + ["hospital_b"] * 10
    corner = np.r_[np.zeros(10, bool), np.ones(8, bool), np.zeros(2, bool)]
    label = np.r_[np.zeros(5), np.ones(5), np.ones(10)].astype(int)
    pred = label.copy()
    pred[[0, 1, 10]] = 1 - pred[[0, 1, 10]]      # 2 errors in a, 1 error in b (a flagged image)
    thumb = np.zeros((n, 256), np.uint8)
    thumb[:, 100] = 255
    rows = {
        "path": [f"{f}/{i:02d}.png" for i, f in enumerate(folder)], "folder": folder,
        "label": label, "pred": pred, "score": np.full(n, 0.9, np.float32),
        "target": pred, "target_logit": np.ones(n, np.float32),
        "corner_energy": np.where(corner, 0.5, 0.05), "flatness": np.full(n, 0.2),
        "outside_roi": [None] * n, "side_balance": np.zeros(n),
        "peak_in_corner": corner, "empty": np.zeros(n, bool), "flag_corner": corner,
        "flag_uniform": np.zeros(n, bool), "flag_outside_roi": np.zeros(n, bool),
        "flag_one_side": np.zeros(n, bool), "energy_in_mask": [None] * n,
        "pointing_hit": [None] * n, "thumb": thumb.tolist(), "error": [None] * n}
    table = pa.table({k: rows[k] for k in schema().names}, schema=schema())
    store = ResultStore(tmp_path / "t.parquet", schema(), {"root": str(tmp_path / "gone"),
                                                            "size": 32})
    store.add(table)
    path = store.finish()
    s = summarize(path, top=3)
    assert s["overall"]["found"]["corner"] and s["overall"]["patterns"] == ["corner"]
    assert s["by_folder"]["hospital_b"]["found"]["corner"]
    assert not s["by_folder"]["hospital_a"]["suspicious"]
    assert s["by_folder"]["hospital_a"]["accuracy"] == pytest.approx(0.8)
    assert s["accuracy"]["all"] == pytest.approx(17 / 20)
    assert s["accuracy"]["without_flagged"] == pytest.approx(10 / 12)
    assert s["accuracy"]["flagged"] == pytest.approx(7 / 8)
    assert len(s["strongest"]["corner"]) == 3 and s["strongest"]["uniform"] == []
    report = write_report(path, tmp_path / "report")
    text = report.read_text(encoding="utf-8")
    assert "`hospital_b` | 10 | 90.0% | 80.0%" in text and "strongest_corner.png" in text
    assert (tmp_path / "report" / "strongest_corner.png").stat().st_size > 1000
    assert (tmp_path / "report" / "folders.png").exists()


# ------------------------------------------------------------------------------------------
# Ray Data, local, 2 CPUs (started once for these tests)
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    from gradcam_helpers.audit.run import start_local_ray

    # the workers import the test factories by name
    start_local_ray(2, runtime_env={"env_vars": {"PYTHONPATH": ENV["PYTHONPATH"]}})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_writes_the_same_table_as_the_local_engine(data, spec, local_run, ray_local):
    import logging

    import ray.data  # noqa: F401  (configures Ray Data's loggers, which would drop our handler)

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.NOTSET)
            self.seen = []

        def emit(self, record):
            self.seen.append(record)

    records, data_logger = Records(), logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.addHandler(records)
    try:
        run = audit(data / "xrays", spec, data / "ray.parquet", size=SIZE, layer="layer4[-1]",
                    masks=data / "masks", batch_size=16, engine="ray", num_workers=2,
                    progress=False)
    finally:
        data_logger.removeHandler(records)
    assert run.audited == 202 and run.errors == 2
    assert run.table().equals(local_run.table())
    assert ray_local.is_initialized()   # a Ray that the caller started is left running
    # quiet: none of Ray Data's per-dataset INFO lines, nor its notice that its bars are off
    noise = [f"{r.levelname} {r.getMessage()}" for r in records.seen
             if r.levelno < logging.WARNING or "Progress bars" in r.getMessage()]
    assert noise == []
    assert data_logger.level == level   # and the caller's logging is as it was


@pytest.mark.slow
def test_ray_retries_a_killed_worker(data, tmp_path, ray_local):
    images = tmp_path / "xrays"
    write_hospital_xrays(images, 24, SIZE, show_progress=False)
    marker = tmp_path / "killed"
    crashing = ModelSpec.torch(data / "tiny.pt", "audit_factories:crash_once_resnet",
                               marker=str(marker), **TINY)
    run = audit(images, crashing, tmp_path / "ray.parquet", size=SIZE, layer="layer4[-1]",
                batch_size=8, engine="ray", progress=False)
    assert marker.exists()                  # a worker died...
    spec = ModelSpec.torch(data / "tiny.pt", FACTORY, **TINY)
    clean = audit(images, spec, tmp_path / "local.parquet", size=SIZE, layer="layer4[-1]",
                  batch_size=8, progress=False)
    assert _plain(run.table()).equals(_plain(clean.table()))   # ...and nothing was lost


def test_ray_is_not_imported_by_the_local_engine():
    code = ("import sys; import gradcam_helpers.audit, gradcam_helpers.audit.__main__; "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_bad_arguments_are_named(data, spec, tmp_path):
    with pytest.raises(ValueError, match="engine"):
        audit(data / "xrays", spec, tmp_path / "a.parquet", size=SIZE, engine="spark")
    with pytest.raises(ValueError, match=".parquet"):
        audit(data / "xrays", spec, tmp_path / "a.csv", size=SIZE)
    with pytest.raises(ValueError, match="module:function"):
        ModelSpec.torch(data / "tiny.pt", "no_colon_here")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        audit(tmp_path / "missing", spec, tmp_path / "a.parquet", size=SIZE)


def test_a_keras_model_file_is_audited_channels_last(data, tmp_path):
    keras = pytest.importorskip("keras")
    from gradcam_helpers.audit.dataset import read_image

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 1))
    h = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="last_conv")(h)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "tiny.keras")
    images = tmp_path / "xrays"
    write_hospital_xrays(images, 12, SIZE, hospitals={"hospital_b": 0.9}, show_progress=False)
    run = audit(images, tmp_path / "tiny.keras", tmp_path / "k.parquet", size=SIZE,
                layer="last_conv", batch_size=5, progress=False)
    table = run.table()
    assert run.audited == 12 and run.errors == 0
    x = np.stack([read_image(images / p, SIZE) for p in table.column("path").to_pylist()])
    probs = model.predict(x[..., None], verbose=0)
    assert table.column("pred").to_pylist() == probs.argmax(1).tolist()
    np.testing.assert_allclose(table.column("score").to_numpy(), probs.max(1), rtol=1e-5)


def test_the_stderr_filter_drops_only_the_lines_it_names(capfd):
    """Ray's C++ notice about Ray Data's actor arguments is dropped from fd 2, nothing else."""
    import os

    from gradcam_helpers.audit.run import _RAY_DATA_ACTOR_NOTICE, _without_stderr_lines

    notice = (b"[2026-01-01 00:00:00,000 E 1 1] core_worker.cc:2465: Actor with class name: 'M' "
              + _RAY_DATA_ACTOR_NOTICE + b". If the arguments ...\n")
    with _without_stderr_lines(_RAY_DATA_ACTOR_NOTICE):
        os.write(2, b"before\n" + notice + b"a real error\n")
        os.write(2, b"no newline at the end")
    os.write(2, b"\nafter\n" + notice)          # outside the block: untouched
    err = capfd.readouterr().err
    assert err == "before\na real error\nno newline at the end\nafter\n" + notice.decode()


def test_folder_figure_draws_each_patterns_own_rule():
    """The folder figure's bar and dashed line for a pattern are the number and threshold its set
    rule uses: a share of flagged maps against set_fraction, but for one_side the |mean balance|
    against side_bias_threshold — so a one_side bar that crosses its line means the pattern."""
    from matplotlib.collections import LineCollection

    from gradcam_helpers.audit.report import PATTERNS, _folder_figures
    from gradcam_helpers.audit.worker import THUMB_SIZE

    share = {"corner": 0.6, "uniform": 0.0, "outside_roi": 0.1, "one_side": 0.4}
    summary = {"settings": {}, "by_folder": {
        "a": {"fraction_flagged": dict(share), "side_bias": -0.2},
        "b": {"fraction_flagged": dict(share, one_side=0.9), "side_bias": 0.7}}}
    thumb = [128] * (THUMB_SIZE * THUMB_SIZE)
    ok = pa.table({"folder": ["a", "b"], "thumb": [thumb, thumb]})
    fig = _folder_figures(ok, summary)
    ax = fig.axes[0]
    heights = [round(bar.get_height(), 6) for bar in ax.patches]
    k = PATTERNS.index("one_side")
    # folder a's bars, then folder b's: one_side shows |side_bias|, not the flagged share
    assert heights[:len(PATTERNS)] == [0.6, 0.0, 0.1, 0.2]
    assert heights[len(PATTERNS) + k] == 0.7
    levels = sorted(round(float(seg[0][1]), 6) for c in ax.collections if isinstance(c, LineCollection)
                    for seg in c.get_segments())
    assert levels == sorted([DEFAULT_THRESHOLDS["set_fraction"]] * 3 + [DEFAULT_THRESHOLDS["side_bias_threshold"]])
    import matplotlib.pyplot as plt
    plt.close(fig)
