"""From local maps to a global picture: the mean map of each class over a data set.

A saliency map explains one image. Averaged over every image of a class, the maps say where the
model looks *for that class* across the data set — a global explanation made by aggregating local
ones (lesson 14). The mean hides how much the maps differ from image to image, so
:func:`class_mean_maps` also returns the per-pixel standard deviation and the count per class: a
mean over 3 images is not a mean over 300.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..engine.maps import to_numpy


@dataclass
class ClassMeanMaps:
    """The result of :func:`class_mean_maps`.

    Attributes
    ----------
    classes : (K,) int64 — the classes, in the order of the rows below
    mean : (K, H, W) float32 — mean map of the images of each class (in the maps' range)
    std : (K, H, W) float32 — per-pixel standard deviation over those images (0 for one image)
    counts : (K,) int64 — images per class (a class with 0 images has an all-zero mean and std)
    """

    classes: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    counts: np.ndarray


def class_mean_maps(maps: Any, labels: Any, classes: Sequence[int] | None = None) -> ClassMeanMaps:
    """The mean map (and spread) of each class over a set of maps.

    Parameters
    ----------
    maps : (N, H, W) float array (e.g. ``Explanation.maps``, each in [0, 1]); tensors accepted
    labels : (N,) int — the class of each map (the true class, or the predicted one: say which)
    classes : the classes to report, in this order; None = the sorted distinct labels

    Returns
    -------
    ClassMeanMaps

    Raises
    ------
    ValueError
        When ``maps`` is not (N, H, W), the numbers of maps and labels differ, or a map holds NaN or
        inf (the message names the fix).
    """
    m = to_numpy(maps).astype(np.float64)
    y = np.asarray(to_numpy(labels)).reshape(-1)
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, H, W); got shape {m.shape}. For pixel attributions "
                         "pass Explanation.maps, not .raw")
    if len(m) != len(y):
        raise ValueError(f"{len(m)} maps but {len(y)} labels: pass one label per map")
    if not np.all(np.isfinite(m)):
        raise ValueError("the maps contain NaN or inf; fix the maps (np.nan_to_num) before averaging")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError("labels must be class indices (integers)")
        y = y.astype(np.int64)
    wanted = np.unique(y) if classes is None else np.asarray(list(classes), np.int64)
    mean = np.zeros((len(wanted),) + m.shape[1:])
    std = np.zeros_like(mean)
    counts = np.zeros(len(wanted), np.int64)
    for k, c in enumerate(wanted):
        rows = m[y == c]
        counts[k] = len(rows)
        if len(rows):
            mean[k], std[k] = rows.mean(axis=0), rows.std(axis=0)
    return ClassMeanMaps(wanted.astype(np.int64), mean.astype(np.float32), std.astype(np.float32),
                         counts)
