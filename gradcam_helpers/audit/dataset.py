"""Which images an audit covers: a folder walked recursively, labels from class folders.

Two layouts are understood, and any mix of them:

* the Kaggle layout ``root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (or any folders holding
  ``NORMAL/`` and ``PNEUMONIA/``, e.g. one per hospital): the label comes from the nearest folder
  named after a class (case-insensitive);
* a flat folder, or folders without class names: no label.

Each image's ``folder`` is its folder relative to the root *without* the class folder, so
``hospital_b/PNEUMONIA/0001.png`` belongs to ``hospital_b`` — the unit the report compares.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import pyarrow

from ..course.xray import CLASS_NAMES, IMAGE_SUFFIXES, load_dicom, read_grayscale

#: File endings an audit reads (DICOM included); other files in the folder are ignored.
AUDIT_SUFFIXES: tuple[str, ...] = IMAGE_SUFFIXES + (".dcm",)


def find_images(root: str | Path, class_names: Sequence[str] = CLASS_NAMES) -> "pyarrow.Table":
    """List the images under ``root``, sorted, with their label (if any) and folder.

    Parameters
    ----------
    root : folder to walk (hidden files and folders are skipped)
    class_names : folder names that give a label: the index in this sequence

    Returns
    -------
    pyarrow.Table with columns ``path`` (str, relative to ``root``, ``/``-separated), ``label``
    (int64, null when no class folder is above the image) and ``folder`` (str, ``"."`` at the root).

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder or holds no image file.
    """
    import pyarrow as pa

    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder that holds the images "
                                "(the Kaggle layout or a flat folder)")
    upper = [name.upper() for name in class_names]
    paths, labels, folders = [], [], []
    for file in sorted(root.rglob("*")):
        rel = file.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not file.is_file() \
                or file.suffix.lower() not in AUDIT_SUFFIXES:
            continue
        parents = list(rel.parts[:-1])
        label = None
        for k in range(len(parents) - 1, -1, -1):
            if parents[k].upper() in upper:
                label = upper.index(parents[k].upper())
                del parents[k]
                break
        paths.append(rel.as_posix())
        labels.append(label)
        folders.append("/".join(parents) or ".")
    if not paths:
        raise FileNotFoundError(f"no image files ({', '.join(AUDIT_SUFFIXES)}) under {root}")
    return pa.table({"path": pa.array(paths, pa.string()), "label": pa.array(labels, pa.int64()),
                     "folder": pa.array(folders, pa.string())})


def read_image(path: str | Path, size: int) -> np.ndarray:
    """One image file (PNG/JPEG/... or DICOM) as ``(size, size)`` float32 in [0, 1]; raises
    ``ValueError`` naming the file when it cannot be read."""
    path = Path(path)
    if path.suffix.lower() == ".dcm":
        return load_dicom(path, size=size)
    return read_grayscale(path, size)


def find_mask(masks_root: Path, rel_path: str) -> Path | None:
    """The mask of image ``rel_path``: the same relative path under ``masks_root``, as ``.png``
    or with the image's own name; None when there is none."""
    rel = Path(rel_path)
    for candidate in (masks_root / rel.with_suffix(".png"), masks_root / rel):
        if candidate.is_file():
            return candidate
    return None


def read_mask(path: Path, size: int) -> np.ndarray:
    """A mask image as ``(size, size)`` bool (bright = inside)."""
    return read_grayscale(path, size) >= 0.5
