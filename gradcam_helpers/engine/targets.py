"""Which scalar of the model's output is explained, for each image: the one place that decides it.

Today a target is a **class**: the score explained for image ``i`` is ``logits[i, c_i]``, the class
score *before* softmax. The user says which class with ``target=``:

- ``None`` — each image's top class (chosen where the logits are computed, so no extra pass);
- an int — that class for every image;
- a sequence of ints (integral floats accepted) — one class per image.

Every part of the package resolves targets here: the pipeline checks the count before any work
(:func:`check_count`) and hands each batch its share (:func:`select`), the adapters turn the user's
value into class indices (:func:`class_indices`, :func:`resolve_targets`), and the faithfulness
metrics follow the same classes. Targets that are not a class logit (a segmentation region, a
detection box: something that turns the model's output into one scalar per image) are meant to be
resolved here too, by growing these functions, so that the pipeline and the methods do not change.
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: what a target may be, for the error messages
TARGET_FORMS = "None (each image's top class), an int (that class for every image) or one class " \
               "index per image"


def check_count(target: Any, n: int) -> None:
    """Raise before any work when ``target`` gives a class per image for another number of images.

    Parameters
    ----------
    target : None, an int, or a sequence of class indices
    n : the number of images
    """
    values = np.asarray(target) if target is not None else None
    if values is not None and values.ndim == 1 and len(values) != n:
        raise ValueError(f"got {len(values)} targets for {n} images: pass one class index per image, "
                         "a single int for all of them, or None for each image's top class")


def select(target: Any, chunk: slice) -> Any:
    """The part of ``target`` that belongs to the images ``chunk`` (None and an int apply to all)."""
    if target is None or np.ndim(target) == 0:
        return target
    return np.asarray(target)[chunk]


def class_indices(target: Any, n: int, num_classes: int | None = None) -> np.ndarray | None:
    """The user's ``target`` as one class index per image, checked; None stays None (top class).

    Parameters
    ----------
    target : None, an int, or a sequence of ``n`` ints (integral floats accepted)
    n : the number of images
    num_classes : when given, every index must be in ``0 … num_classes - 1``

    Returns
    -------
    (n,) int64 array, or None when ``target`` is None

    Raises
    ------
    ValueError
        For a non-integer, a wrong count or an index out of range, saying what to pass instead.
    """
    if target is None:
        return None
    values = np.asarray(target)
    integral = values.dtype.kind in "iu" or (values.dtype.kind == "f" and bool(np.all(values == np.round(values))))
    if not integral or values.ndim > 1:
        raise ValueError(f"target must be {TARGET_FORMS}; got {target!r}")
    values = values.astype(np.int64)
    if values.ndim == 0:
        values = np.full(n, int(values), dtype=np.int64)
    elif values.shape != (n,):
        raise ValueError(f"got {values.size} targets for {n} images: pass one class index per image, "
                         "a single int for all of them, or None for each image's top class")
    if num_classes is not None:
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(f"target class {int(bad[0])} is out of range: the model has {num_classes} "
                             f"classes (valid indices 0 … {num_classes - 1})")
    return values


def resolve_targets(target: Any, logits: np.ndarray) -> np.ndarray:
    """One class index per image: ``target`` checked against the logits, or each image's top class.

    Parameters
    ----------
    target : None, an int, or a sequence of class indices (see :func:`class_indices`)
    logits : (N, classes) class scores

    Returns
    -------
    (N,) int64 array
    """
    n, classes = np.shape(logits)
    chosen = class_indices(target, n, classes)
    return np.argmax(logits, axis=1).astype(np.int64) if chosen is None else chosen
