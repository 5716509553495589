"""Chest X-ray data for lessons 06–07: synthetic radiographs with ground-truth masks
(:mod:`.synthetic`), and loaders for the real formats — Kaggle folder layout, MedMNIST ``.npz``,
DICOM (:mod:`.real`). Everything is re-exported here, so ``from gradcam_helpers.course.xray import ...``
works for both; :func:`load_xray_dataset` is the one switch between them.

No chest X-ray training set can be downloaded offline, so the synthetic generator draws one,
with lung and lesion masks for scoring saliency maps and options for the shortcuts lesson 07
studies (a tag in a corner or below the lungs, lesions on one side).

Conventions
-----------
* Images are ``(N, 1, H, W)`` float32 in [0, 1] (channels first, ready for PyTorch); bright means
  dense (bone, tissue, opacity), dark means air, as on a displayed radiograph.
  ``XrayData.images_hw`` gives the ``(N, H, W)`` view, ``XrayData.images_nhwc`` the Keras layout.
* Labels are int64: 0 = NORMAL, 1 = PNEUMONIA (``CLASS_NAMES``), the order of the Kaggle
  folders and of MedMNIST's PneumoniaMNIST.
* Masks are ``(N, H, W)`` bool. Real data has no masks: those fields are ``None``.
"""
from __future__ import annotations

from pathlib import Path

from .dataset import CLASS_NAMES, XrayData
from .real import (
    IMAGE_SUFFIXES,
    example_radiograph_path,
    load_dicom,
    load_example_radiograph,
    load_kaggle_folder,
    load_medmnist_npz,
    read_grayscale,
)
from .synthetic import (
    CORNERS,
    GRID_PERIOD,
    LESION_SIDES,
    SHORTCUTS,
    TAG_MODES,
    TAG_PLACES,
    burn_tag,
    grid_lines,
    make_xrays,
    tag_bitmap,
)

__all__ = ["CLASS_NAMES", "CORNERS", "GRID_PERIOD", "IMAGE_SUFFIXES", "LESION_SIDES", "SHORTCUTS",
           "TAG_MODES", "TAG_PLACES", "XrayData", "burn_tag", "grid_lines",
           "example_radiograph_path", "load_dicom", "load_example_radiograph",
           "load_kaggle_folder", "load_medmnist_npz", "load_xray_dataset", "make_xrays",
           "read_grayscale", "tag_bitmap"]


def load_xray_dataset(source: str = "synthetic", path: str | Path | None = None, *,
                      split: str = "train", size: int = 64, n: int = 1000, seed: int = 0,
                      max_per_class: int | None = None, **synthetic_options) -> XrayData:
    """One switch for the lessons: the same call returns synthetic or real chest X-rays.

    Parameters
    ----------
    source : {"synthetic", "kaggle", "medmnist"}
    path : folder of the Kaggle layout or the ``pneumoniamnist.npz`` file (not for synthetic)
    split : "train", "val" or "test" (real data). For synthetic data the split only changes the
        seed (train: ``seed``, val: ``seed + 1000``, test: ``seed + 2000``) so the splits hold
        different patients.
    size : image height and width
    n : number of synthetic images
    max_per_class : cap per class for the Kaggle folders
    **synthetic_options : passed to :func:`make_xrays` (e.g. ``shortcut_rate=0.9``)
    """
    if source == "synthetic":
        if path is not None:
            raise ValueError("path is for real data; for synthetic X-rays leave it None")
        offset = {"train": 0, "val": 1000, "test": 2000}
        if split not in offset:
            raise ValueError(f"split must be one of {list(offset)}; got {split!r}")
        return make_xrays(n, size, seed=seed + offset[split], **synthetic_options)
    if synthetic_options:
        raise TypeError(f"options {sorted(synthetic_options)} only apply to source='synthetic'")
    if path is None:
        raise ValueError(f"source={source!r} needs path= (the dataset folder or .npz file)")
    if source == "kaggle":
        return load_kaggle_folder(path, split, size, max_per_class=max_per_class, seed=seed)
    if source == "medmnist":
        return load_medmnist_npz(path, split, size)
    raise ValueError(f"source must be 'synthetic', 'kaggle' or 'medmnist'; got {source!r}")
