"""Robustness of an explanation: does the map stay put when the input moves a little?

:func:`max_sensitivity` is the max-sensitivity of Yeh et al. (NeurIPS 2019, "On the (In)fidelity
and Sensitivity of Explanations"): the largest change of the map over small random perturbations of
the input. A map that jumps when a few pixel values change by a hair cannot be trusted to say what
the model looked at, even if the model's answer did not change.

Framework-neutral: the metric only calls ``explain(images) -> maps`` with NumPy arrays, e.g.
``lambda x: explainer(x, method="gradcam", target=t).maps`` for a Keras or a PyTorch model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ExplainFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Sensitivity:
    """Max-sensitivity of N images.

    Attributes
    ----------
    values : (N,) float64 >= 0 — the largest change of each image's map over the samples
    samples : (N, S) float64 >= 0 — the change for each of the S perturbations
    radius : float — the half-width r of the uniform noise, in the images' own units
    relative : bool — whether each change was divided by the image's norm ||x||
    """

    values: np.ndarray
    samples: np.ndarray
    radius: float
    relative: bool


def _numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor, without importing torch
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _layout(x: np.ndarray, map_shape: tuple, channels_last: bool | None) -> str:
    """"nhw", "nhwc" or "nchw": where the images' pixels are, read from the maps' (H, W)."""
    if x.ndim == 3:
        return "nhw"
    if channels_last is not None:
        return "nhwc" if channels_last else "nchw"
    if x.shape[1:3] == map_shape:
        return "nhwc"
    if x.shape[2:4] == map_shape:
        return "nchw"
    raise ValueError(
        f"cannot tell where the channels of the images {x.shape} are from maps of size {map_shape}: "
        "return maps at the images' resolution (Explanation.maps are) or pass channels_last=True/False")


def _checked_maps(maps, n: int, shape: tuple | None, source: str) -> np.ndarray:
    """``maps`` as (N, H, W) float64; ``source`` names where they came from in the errors."""
    m = _numpy(maps).astype(np.float64)
    if m.ndim != 3 or len(m) != n:
        raise ValueError(f"{source} must be maps (N, H, W), one per image ({n}); got shape {m.shape}. "
                         "Return e.g. explain(model, images, ...).maps")
    if shape is not None and m.shape != shape:
        raise ValueError(f"{source} gave maps of shape {m.shape}, but {shape} for the unperturbed "
                         "images: the maps must keep their size")
    if not np.isfinite(m).all():
        raise ValueError(f"{source} contain NaN or inf")
    return m


def max_sensitivity(explain: ExplainFn, images, *, radius: float, samples: int = 10,
                    relative: bool = True, maps=None, seed: int = 0,
                    channels_last: bool | None = None) -> Sensitivity:
    """Max-sensitivity (Yeh et al., NeurIPS 2019, "On the (In)fidelity and Sensitivity of
    Explanations"), estimated by Monte Carlo sampling as Quantus' ``MaxSensitivity`` does.

    For each of ``samples`` draws, every input element gets independent uniform noise
    δ ~ U(−r, r) (Quantus' ``uniform_noise``), the maps are recomputed, and the change of each
    image's map is measured with the Frobenius norm:

        absolute:  max_s || Φ(x + δ_s) − Φ(x) ||_F                  (Yeh et al.'s definition)
        relative:  max_s || Φ(x + δ_s) − Φ(x) ||_F / || x ||_F       (Quantus' default)

    Lower is more robust; 0 means the map did not move at all. The number depends on the radius,
    the number of samples, the map's scale (compare maps scaled the same way, e.g. each to [0, 1])
    and the input's scale, so compare methods only under one setting.

    Parameters
    ----------
    explain : callable
        ``explain(images) -> maps``: images (N, …) float32 NumPy in the layout of ``images``,
        maps (N, H, W) (NumPy or tensor). It must explain the same class for the perturbed images
        as for the original ones: fix the targets, e.g.
        ``lambda x: explainer(x, method="gradcam", target=t).maps``.
    images : (N, H, W, C), (N, C, H, W) or (N, H, W) float array or tensor
        The images as the model takes them (preprocessed); ``radius`` is in these units.
    radius : float > 0
        Half-width r of the uniform noise (Quantus' ``lower_bound``; its default is 0.2).
    samples : int >= 1
        Number of perturbations (Quantus' ``nr_samples``, default 200; the maximum grows with it).
    relative : bool
        Divide by each image's Frobenius norm, as Quantus does by default (True), or not (False).
    maps : (N, H, W) array, optional
        Φ(x) if already computed (saves one call of ``explain``).
    seed : int
        Seed of the noise. The noise is drawn channels-last and transposed for channels-first
        images, so a Keras model and its PyTorch twin see the same perturbed pixels.
    channels_last : bool, optional
        Where the channels of 4-D images are; None reads it from the maps' size.

    Returns
    -------
    Sensitivity
        ``values`` (N,) the max-sensitivity of each image, ``samples`` (N, S) each draw's change.

    Raises
    ------
    ValueError
        For a radius that is not a positive number, fewer than one sample, uint8 or non-finite
        images, a relative score of an all-zero image, or maps of the wrong shape or with NaN.
    """
    if isinstance(radius, (bool, str)) or not np.isscalar(radius) or not np.isfinite(radius) \
            or radius <= 0:
        raise ValueError(f"radius must be a positive number (the half-width of the uniform noise, in "
                         f"the images' units, e.g. 0.02); got {radius!r}")
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples must be a positive integer; got {samples!r}")
    if not callable(explain):
        raise TypeError("explain must be a callable images -> maps, e.g. "
                        "lambda x: explain(model, x, 'gradcam', target=t).maps")
    x = _numpy(images)
    if x.dtype == np.uint8:
        raise ValueError("images are uint8 (0–255): pass them the way the model takes them, "
                         "e.g. x.astype('float32') / 255.0")
    x = x.astype(np.float64)
    if x.ndim not in (3, 4) or len(x) == 0:
        raise ValueError(f"images must be a non-empty batch (N, H, W, C), (N, C, H, W) or (N, H, W); "
                         f"got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("images contain NaN or inf")
    n = len(x)
    norms = np.sqrt((x.reshape(n, -1) ** 2).sum(axis=1))
    if relative and np.any(norms == 0):
        raise ValueError("an image is all zero, so the relative sensitivity (divided by ||x||) is "
                         "undefined: use relative=False for it")
    if maps is None:
        base = _checked_maps(explain(x.astype(np.float32)), n, None, "explain(images)")
    else:
        base = _checked_maps(maps, n, None, "the maps argument")
    layout = _layout(x, base.shape[1:], channels_last)
    noise_shape = x.transpose(0, 2, 3, 1).shape if layout == "nchw" else x.shape
    rng = np.random.default_rng(seed)
    changes = np.zeros((n, int(samples)))
    for s in range(int(samples)):
        delta = rng.uniform(-radius, radius, size=noise_shape)
        if layout == "nchw":
            delta = delta.transpose(0, 3, 1, 2)
        moved = _checked_maps(explain((x + delta).astype(np.float32)), n, base.shape,
                              "explain(perturbed images)")
        changes[:, s] = np.sqrt(((moved - base).reshape(n, -1) ** 2).sum(axis=1))
    if relative:
        changes = changes / norms[:, None]
    return Sensitivity(changes.max(axis=1), changes, float(radius), bool(relative))
