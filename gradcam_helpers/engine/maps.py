"""Maps and arrays, written once for the whole package: NumPy only.

- :func:`to_numpy` — a tensor of any framework (torch, TensorFlow, JAX) or an array as NumPy;
- :func:`softmax` — probabilities from class scores;
- :func:`check_maps` — the one check of a batch of maps (shape, finiteness, sign);
- :func:`resize_maps`, :func:`normalize_maps` — what turns a raw map at a layer's (or a grid's)
  resolution into a map at the image's resolution in [0, 1];
- :func:`upsampled_maps` and :func:`attribution_maps` — the two ways the pipeline turns a method's
  raw result into ``Explanation.maps`` (a map on a grid; a signed attribution per input element).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np


def to_numpy(value: Any, dtype: Any = None) -> np.ndarray:
    """A tensor of any framework, on any device, or an array-like, as a NumPy array.

    Parameters
    ----------
    value : torch.Tensor (gradients detached, moved to the CPU; half precision widened to float32),
        a TensorFlow eager tensor or variable, a JAX array, or anything ``np.asarray`` takes
    dtype : optional NumPy dtype of the result

    Returns
    -------
    np.ndarray
        A copy for tensors; ``value`` itself (no copy) for a NumPy array of the right dtype.
    """
    if hasattr(value, "detach"):  # torch, without importing it
        value = value.detach().cpu()
        if str(value.dtype) in ("torch.float16", "torch.bfloat16"):
            value = value.float()
        value = value.numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # TensorFlow
        value = value.numpy()
    return np.asarray(value, dtype=dtype)


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, computed stably in float64.

    Parameters
    ----------
    scores : array of class scores (logits), any shape
    axis : the class axis

    Returns
    -------
    float64 array of ``scores``'s shape, in [0, 1], summing to 1 along ``axis``
    """
    z = np.asarray(scores, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def check_maps(maps: Any, *, nonnegative: bool = False) -> np.ndarray:
    """The one check of a batch of maps: (N, H, W) (one (H, W) map is a batch of one), finite.

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array-like or tensor
    nonnegative : also refuse negative values (beyond float rounding, -1e-6); they are clipped to 0

    Returns
    -------
    (N, H, W) float64 array

    Raises
    ------
    ValueError
        For another rank, NaN or inf, or (``nonnegative``) a negative value, saying how to fix it.
    """
    out = to_numpy(maps, np.float64)
    if out.ndim == 2:
        out = out[None]
    if out.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (H, W); got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError("maps contain NaN or inf")
    if nonnegative:
        if out.size and out.min() < -1e-6:
            raise ValueError(f"maps must be non-negative (min {out.min():.3g}); CAM maps are taken "
                             "after ReLU — pass Explanation.maps or np.maximum(maps, 0)")
        out = np.maximum(out, 0)
    return out


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Divide each map by its own maximum so that it lies in [0, 1].

    A map that is all zero (no positive evidence) stays all zero: no division by zero, no NaN.
    Maps are expected to be >= 0 (every method ends with ReLU); negative values are clipped.

    The Grad-CAM paper and the Keras example divide by the maximum; pytorch-grad-cam subtracts
    the minimum first. After the ReLU the minimum is 0 whenever some location has no evidence, and
    the two agree; they differ only on maps that are positive everywhere, where dividing by the
    maximum keeps the information that attention is spread over the whole image.

    Parameters
    ----------
    maps : (N, H, W) array

    Returns
    -------
    (N, H, W) float32 array in [0, 1]
    """
    maps = np.asarray(maps, dtype=np.float32)
    if not np.isfinite(maps).all():
        maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.maximum(maps, 0)
    peak = out.reshape(len(out), -1).max(axis=1) if out.size else np.zeros(len(out), np.float32)
    # no absolute threshold: a network with tiny activations (random weights, say) has tiny but
    # real maps, and they are scaled like any other
    scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
    out /= scale[:, None, None]
    return np.minimum(out, 1.0, out=out)


@functools.lru_cache(maxsize=32)
def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 weights of 1-D linear interpolation, half-pixel centres, edges clamped."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = pos - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    matrix.setflags(write=False)
    return matrix


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W), half-pixel centres, edges clamped.

    The same convention as ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` and
    ``tf.image.resize(..., "bilinear")`` for upsampling, in plain NumPy so that the engine needs no
    image library and gives identical results for both frameworks. Bilinear interpolation is
    separable: two small matrix products (rows, then columns), computed in float64.

    Parameters
    ----------
    maps : (N, h, w) array
    size : (H, W)

    Returns
    -------
    (N, H, W) float32 array
    """
    maps = np.asarray(maps)
    out_h, out_w = size
    in_h, in_w = maps.shape[1:]
    if (in_h, in_w) == (out_h, out_w):
        return maps.astype(np.float32)
    rows = _interpolation_matrix(in_h, out_h)  # (H, h)
    cols = _interpolation_matrix(in_w, out_w)  # (W, w)
    return (rows @ maps.astype(np.float64) @ cols.T).astype(np.float32)


def upsampled_maps(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``Explanation.maps`` of a map on a grid (a layer's, a patch grid's): resized to ``size``,
    then each divided by its own maximum.

    Parameters
    ----------
    raw : (N, h, w) float >= 0
    size : (H, W) of the images

    Returns
    -------
    (N, H, W) float32 in [0, 1]
    """
    return normalize_maps(resize_maps(raw, size))


def attribution_maps(raw: np.ndarray) -> np.ndarray:
    """The displayable map of a pixel attribution: ``sum_c |raw[..., c]|``, divided by its maximum.

    The absolute value keeps evidence of both signs (for Integrated Gradients a pixel that lowers
    the score matters as much as one that raises it); summing over the colour channels gives one
    value per pixel. Each map is scaled by its own maximum (an all-zero attribution stays zero), as
    CAM maps are, so the two kinds of map can be compared and ranked the same way.

    Parameters
    ----------
    raw : (N, H, W, C) signed attributions at the images' resolution

    Returns
    -------
    (N, H, W) float32 in [0, 1]
    """
    return normalize_maps(np.abs(np.asarray(raw, dtype=np.float64)).sum(axis=-1))
