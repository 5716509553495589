"""A large synthetic X-ray set on disk to audit: two "hospitals", one of which prints a tag.

``hospital_a`` uses fixed machines: no tag. ``hospital_b`` images its sickest patients with a
portable machine that burns "AP" into the top-left corner, so there the tag goes with PNEUMONIA
(``shortcut_rate``) — the situation in which a model learns the tag. Lung masks go to a separate
folder that mirrors the images, for the audit's ``masks=``.

From the command line (about 10 ms per image at 96 px)::

    python -m gradcam_helpers.audit.synthetic data/audit_xrays --n 20000 --size 96
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np

from ..course.xray import CLASS_NAMES, make_xrays
from ..engine.progress import progress

#: hospital -> shortcut_rate of :func:`~gradcam_helpers.course.xray.make_xrays` (None: no tag).
HOSPITALS: dict[str, float | None] = {"hospital_a": None, "hospital_b": 0.9}


def write_hospital_xrays(root: str | Path, n: int, size: int = 96, *, seed: int = 5000,
                         masks: str | Path | None = None,
                         hospitals: dict[str, float | None] | None = None, chunk: int = 500,
                         show_progress: bool = True) -> dict[str, int]:
    """Write ``n`` synthetic chest X-rays as 8-bit PNG files, split evenly between hospitals.

    Layout: ``root/<hospital>/<NORMAL|PNEUMONIA>/<hospital>_<index>.png`` (the Kaggle class
    folders, one level down), and the lung mask of each image under ``masks`` at the same relative
    path. Images are drawn ``chunk`` at a time, so memory does not grow with ``n``. Files that
    exist are overwritten; the same arguments write the same files.

    Parameters
    ----------
    root : output folder of the images
    n : total number of images (``n // len(hospitals)`` per hospital, the rest to the first)
    size : height and width in pixels
    seed : base seed (the lessons train on seeds 0–2999; the default keeps these patients new)
    masks : output folder of the lung masks (PNG, 255 = lung), or None
    hospitals : name -> ``shortcut_rate`` (default :data:`HOSPITALS`)
    chunk : images generated at once

    Returns
    -------
    dict hospital -> number of images written
    """
    hospitals = dict(HOSPITALS if hospitals is None else hospitals)
    if n < 0 or chunk < 1 or not hospitals:
        raise ValueError(f"need n >= 0, chunk >= 1 and at least one hospital; got n={n}, "
                         f"chunk={chunk}, hospitals={hospitals}")
    root = Path(root).expanduser()
    masks = None if masks is None else Path(masks).expanduser()
    counts = {name: n // len(hospitals) for name in hospitals}
    counts[next(iter(hospitals))] += n - sum(counts.values())
    with progress(total=n, desc="writing X-rays", unit="image", disable=not show_progress) as bar:
        for k_h, h in enumerate(hospitals):
            for k, start in enumerate(range(0, counts[h], chunk)):
                count = min(chunk, counts[h] - start)
                data = make_xrays(count, size, seed=seed + 1000 * k_h + k,
                                  shortcut_rate=hospitals[h])
                for i in range(count):
                    rel = Path(h) / CLASS_NAMES[data.labels[i]] / f"{h}_{start + i:06d}.png"
                    _save_png(root / rel, data.images_hw[i])
                    if masks is not None:
                        _save_png(masks / rel, data.lung_masks[i])
                bar.update(count)
    return counts


def _save_png(path: Path, array: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.round(np.clip(np.asarray(array, dtype=np.float32), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the synthetic X-ray folder that the command line ``argv`` asks for."""
    parser = argparse.ArgumentParser(
        prog="python -m gradcam_helpers.audit.synthetic",
        description="Write synthetic chest X-rays from two hospitals (one prints a corner tag).")
    parser.add_argument("root", help="output folder of the images")
    parser.add_argument("--n", type=int, default=20000, help="number of images (default 20000)")
    parser.add_argument("--size", type=int, default=96, help="pixels per side (default 96)")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--masks", help="output folder of the lung masks (default ROOT_masks)")
    args = parser.parse_args(argv)
    masks = args.masks or str(Path(args.root).expanduser()) + "_masks"
    counts = write_hospital_xrays(args.root, args.n, args.size, seed=args.seed, masks=masks)
    print(f"wrote {sum(counts.values())} images to {args.root} ({counts}), masks to {masks}")


if __name__ == "__main__":
    main()
