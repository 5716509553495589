"""Read an audit table: the verdict per pattern, the flags by folder, accuracy with and without the
flagged images, and the images that raise each flag most strongly — as numbers
(:func:`summarize`) and as a Markdown report with figures (:func:`write_report`).

The set rules are those of :meth:`gradcam_helpers.evaluation.diagnose.Diagnosis.summary`, applied to the
table's columns: the report says what ``diagnose_maps`` would say about the same maps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..course.xray import CLASS_NAMES
from ..evaluation.diagnose import DEFAULT_THRESHOLDS, PATTERNS, Diagnosis
from .dataset import read_image
from .store import read_settings
from .worker import THUMB_SIZE

#: How strongly a row shows each pattern (the column that ranks the flagged images).
STRENGTH = {"corner": "corner_energy", "uniform": "flatness", "outside_roi": "outside_roi",
            "one_side": "side_balance"}


def _load(table: Any):
    import pyarrow.parquet as pq

    if isinstance(table, (str, Path)):
        return pq.read_table(table), read_settings(table)
    return table, {}


def _column(table, name: str) -> np.ndarray:
    col = table.column(name)
    if col.type == __import__("pyarrow").bool_():
        return np.asarray(col.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64 if col.null_count
                      else None)


def diagnosis_of(table, thresholds: dict | None = None) -> Diagnosis:
    """A :class:`~gradcam_helpers.evaluation.diagnose.Diagnosis` rebuilt from the rows of an audit table
    without an error (null ``outside_roi`` becomes NaN)."""
    c = {name: _column(table, name) for name in ("corner_energy", "flatness", "side_balance",
                                                 "peak_in_corner", "empty")}
    outside = table.column("outside_roi").to_numpy(zero_copy_only=False).astype(np.float64)
    flags = {p: _column(table, f"flag_{p}") for p in PATTERNS}
    return Diagnosis(corner_energy=c["corner_energy"].astype(np.float64),
                     peak_in_corner=c["peak_in_corner"], flatness=c["flatness"].astype(np.float64),
                     outside_roi=outside, side_balance=c["side_balance"].astype(np.float64),
                     empty=c["empty"], flags=flags,
                     thresholds={**DEFAULT_THRESHOLDS, **(thresholds or {})})


def _accuracy(correct: np.ndarray, keep: np.ndarray) -> float:
    return float(correct[keep].mean()) if keep.any() else float("nan")


def summarize(table: Any, top: int = 8) -> dict:
    """Numbers of an audit table (a path or a ``pyarrow.Table``).

    Returns
    -------
    dict with
        ``n`` (rows), ``errors`` (rows with an error), ``settings`` (the run's settings);
        ``overall``: :meth:`Diagnosis.summary` of every audited image (``verdict``, ``found``,
        ``fraction_flagged``, ``patterns``...);
        ``by_folder``: folder -> that summary for the folder's images, plus ``n`` and
        ``accuracy`` (NaN without labels);
        ``accuracy``: on the labelled images — ``all``; ``without_flagged`` and ``flagged``
        (images flagged by a pattern the set shows, i.e. ``overall["patterns"]``); and per
        pattern ``without_<pattern>`` / ``only_<pattern>``;
        ``strongest``: pattern -> the paths of up to ``top`` flagged images, strongest first.
    """
    table, settings = _load(table)
    thresholds = settings.get("thresholds") or {}
    ok_mask = np.asarray(table.column("error").is_null().to_numpy(zero_copy_only=False))
    ok = table.filter(ok_mask)
    diag = diagnosis_of(ok, thresholds)
    overall = diag.summary()
    label = ok.column("label").to_numpy(zero_copy_only=False).astype(np.float64)
    labelled = ~np.isnan(label)
    pred = ok.column("pred").to_numpy(zero_copy_only=False).astype(np.float64)
    correct = pred == label
    found = overall["patterns"]
    flagged = np.zeros(len(label), dtype=bool)
    for p in found:
        flagged |= diag.flags[p]
    accuracy = {"all": _accuracy(correct, labelled),
                "without_flagged": _accuracy(correct, labelled & ~flagged),
                "flagged": _accuracy(correct, labelled & flagged),
                "n_labelled": int(labelled.sum()), "n_flagged": int((labelled & flagged).sum())}
    for p in PATTERNS:
        accuracy[f"without_{p}"] = _accuracy(correct, labelled & ~diag.flags[p])
        accuracy[f"only_{p}"] = _accuracy(correct, labelled & diag.flags[p])
    folders = np.asarray(ok.column("folder").to_pylist(), dtype=object)
    by_folder = {}
    for folder in sorted(set(folders.tolist())):
        sel = folders == folder
        part = diagnosis_of(ok.filter(sel), thresholds).summary()
        part["accuracy"] = _accuracy(correct, sel & labelled)
        by_folder[folder] = part
    paths = np.asarray(ok.column("path").to_pylist(), dtype=object)
    strongest = {}
    for p in PATTERNS:
        strength = np.nan_to_num(np.abs(_column(ok, STRENGTH[p]).astype(np.float64)))
        idx = np.flatnonzero(diag.flags[p])
        idx = idx[np.argsort(-strength[idx], kind="stable")][:top]
        strongest[p] = paths[idx].tolist()
    return {"n": table.num_rows, "errors": int((~ok_mask).sum()), "settings": settings,
            "overall": overall, "by_folder": by_folder, "accuracy": accuracy,
            "strongest": strongest}


def _thumb(row_thumb) -> np.ndarray:
    return np.asarray(row_thumb, dtype=np.float32).reshape(THUMB_SIZE, THUMB_SIZE) / 255.0


def _figure(rows: int, cols: int, size: float):
    import matplotlib_fontja  # noqa: F401  (Japanese glyphs)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * size, rows * size), dpi=80)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _overlay_grid(table, paths: list[str], settings: dict, title: str, value: str):
    from ..course.overlay import overlay

    by_path = {p: i for i, p in enumerate(table.column("path").to_pylist())}
    cols = min(len(paths), 4)
    rows = (len(paths) + cols - 1) // cols
    fig, axes = _figure(rows, cols, 2.2)
    names = settings.get("class_names") or list(CLASS_NAMES)
    root, size = Path(settings.get("root", ".")), int(settings.get("size", 64))
    for ax in axes.flat[len(paths):]:
        ax.axis("off")
    for ax, path in zip(axes.flat, paths):
        row = table.slice(by_path[path], 1).to_pylist()[0]
        cam = _thumb(row["thumb"])
        try:
            picture = overlay(read_image(root / path, size), cam, alpha=0.45)
        except (ValueError, OSError):   # the images moved: show the map alone
            picture = cam
        ax.imshow(picture, cmap="jet" if picture.ndim == 2 else None)
        label = "?" if row["label"] is None else names[row["label"]]
        ax.set_title(f"{row['folder']} | {label}→{names[row['pred']]}\n{value} {row[STRENGTH[title]]:+.2f}",
                     fontsize=8)
    fig.suptitle(f"{title}: フラグの最も強い画像")
    fig.tight_layout()
    return fig


def _folder_figures(ok, summary: dict):
    folders = list(summary["by_folder"])
    fig, axes = _figure(1, 2, 4.2)
    ax = axes[0, 0]
    width = 0.8 / max(1, len(folders))
    for k, folder in enumerate(folders):
        frac = [summary["by_folder"][folder]["fraction_flagged"][p] for p in PATTERNS]
        ax.bar(np.arange(len(PATTERNS)) + k * width, frac, width, label=folder)
    ax.axhline({**DEFAULT_THRESHOLDS, **(summary["settings"].get("thresholds") or {})}["set_fraction"],
               color="k", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(PATTERNS)) + width * (len(folders) - 1) / 2, PATTERNS, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("フラグの立った画像の割合")
    ax.legend(fontsize=8)
    ax.set_title("フォルダ別のフラグ")
    # the mean map per folder: where the model looks on average
    ax = axes[0, 1]
    folder_col = np.asarray(ok.column("folder").to_pylist(), dtype=object)
    thumbs = np.stack([_thumb(t) for t in ok.column("thumb").to_pylist()]) if ok.num_rows \
        else np.zeros((0, THUMB_SIZE, THUMB_SIZE))
    gap = np.full((THUMB_SIZE, 2), np.nan)          # a blank strip between two folders
    tiles = []
    for f in folders:
        tiles += [thumbs[folder_col == f].mean(axis=0), gap]
    ax.imshow(np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((1, 1)), cmap="jet",
              vmin=0, vmax=1)
    ax.set_xticks([(THUMB_SIZE + 2) * k + THUMB_SIZE / 2 - 0.5 for k in range(len(folders))],
                  folders, fontsize=8)
    ax.set_title("フォルダごとの平均マップ", fontsize=10)
    fig.tight_layout()
    return fig


def _pct(v: float) -> str:
    return "–" if v != v else f"{v:.1%}"


def write_report(table: str | Path, out_dir: str | Path, *, top: int = 8) -> Path:
    """Write ``out_dir/report.md`` and its figures (PNG) for an audit table.

    Sections: the verdict per pattern; flags and accuracy by folder (with the mean map of each
    folder); accuracy with and without the flagged images; for each pattern the ``top`` images
    that raise its flag most strongly, as overlays (read from the table's image folder; the
    stored 16 × 16 map alone if the images are gone); the first rows with an error.

    Returns
    -------
    Path of ``report.md``.
    """
    import pyarrow.parquet as pq

    table = Path(table)
    out_dir = Path(out_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(table, top=top)
    full = pq.read_table(table)
    ok = full.filter(full.column("error").is_null())
    settings = summary["settings"]
    overall, acc = summary["overall"], summary["accuracy"]
    model = settings.get("model", {})
    lines = [f"# ショートカット学習の監査: {summary['n']} 枚", "",
             f"- 画像: `{settings.get('root')}` ({settings.get('size')} px)",
             f"- モデル: `{model.get('path')}` ({model.get('framework')}"
             + (f", `{model.get('factory')}`" if model.get("factory") else "") + ")",
             f"- 手法: {settings.get('method')}, 層: {settings.get('layer') or '自動'}, "
             f"マスク: {settings.get('masks') or 'なし'}",
             f"- 読めなかった画像: {summary['errors']} 枚", "",
             "## 判定", "", f"**{overall['verdict']}**", "",
             "| パターン | フラグの立った画像 | 集合として |", "|---|---|---|"]
    for p in PATTERNS:
        lines.append(f"| `{p}` | {_pct(overall['fraction_flagged'][p])} | "
                     f"{'あり' if overall['found'][p] else '—'} |")
    lines += ["", f"左右の偏り (平均): {overall['side_bias']:+.2f}", "",
              "## フォルダ別", "",
              "| フォルダ | 画像 | 正解率 | " + " | ".join(f"`{p}`" for p in PATTERNS) + " | 判定 |",
              "|---|---|---|" + "---|" * len(PATTERNS) + "---|"]
    for folder, s in summary["by_folder"].items():
        lines.append(f"| `{folder}` | {s['n']} | {_pct(s['accuracy'])} | "
                     + " | ".join(_pct(s["fraction_flagged"][p]) for p in PATTERNS)
                     + f" | {'疑いあり: ' + ', '.join(s['patterns']) if s['patterns'] else '—'} |")
    fig = _folder_figures(ok, summary)
    fig.savefig(out_dir / "folders.png")
    lines += ["", "![フォルダ別のフラグと平均マップ](folders.png)", "",
              "## フラグの立った画像を除いた正解率", "",
              f"ラベルのある画像 {acc['n_labelled']} 枚のうち、集合として見つかったパターン"
              f" ({', '.join(overall['patterns']) or 'なし'}) のフラグが立った画像は "
              f"{acc['n_flagged']} 枚です。", "",
              "| 画像 | 正解率 |", "|---|---|",
              f"| すべて | {_pct(acc['all'])} |",
              f"| フラグの立った画像を除く | {_pct(acc['without_flagged'])} |",
              f"| フラグの立った画像だけ | {_pct(acc['flagged'])} |"]
    for p in PATTERNS:
        lines.append(f"| `{p}` のフラグなし / あり | {_pct(acc[f'without_{p}'])} / "
                     f"{_pct(acc[f'only_{p}'])} |")
    lines += ["", "## パターンごとに最も強くフラグを立てた画像", ""]
    for p in PATTERNS:
        paths = summary["strongest"][p]
        if not paths:
            lines += [f"### `{p}`", "", "フラグの立った画像はありません。", ""]
            continue
        fig = _overlay_grid(ok, paths, settings, p, STRENGTH[p])
        fig.savefig(out_dir / f"strongest_{p}.png")
        lines += [f"### `{p}`", "", f"![{p}](strongest_{p}.png)", ""]
    if summary["errors"]:
        bad = full.filter(full.column("error").is_valid()).slice(0, 20).to_pylist()
        lines += ["## 読めなかった画像", "", "| path | error |", "|---|---|"]
        lines += [f"| `{r['path']}` | {r['error'].replace('|', '/')} |" for r in bad]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
