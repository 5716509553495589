"""Complexity of a map: is the explanation concentrated on a few pixels or spread over the image?

Two numbers per map, both computed on the absolute values (the mass) of the map:

- :func:`sparseness` — the Gini index of the values (Chalasani et al., ICML 2020, "Concise
  Explanations of Neural Networks using Adversarial Training"; Quantus calls it *Sparseness*):
  0 for a flat map, ``1 − 1/n`` for a map with one non-zero pixel out of n. Higher = sparser.
- :func:`complexity` — the Shannon entropy of the map read as a distribution of its mass over the
  pixels (Bhatt, Weller & Moura, IJCAI 2020, "Evaluating and Aggregating Feature-based Model
  Explanations"; Quantus calls it *Complexity*): 0 for one non-zero pixel, ``ln n`` for a flat map.
  Lower = less complex.

Neither says whether the map is *right*: a map on one wrong pixel is as sparse as one on the right
pixel. Read them with a faithfulness metric. Both are pure NumPy and work on maps from any framework.
"""
from __future__ import annotations

import numpy as np


def _mass(maps: np.ndarray) -> np.ndarray:
    """|maps| as (N, n) float64 rows, one per map, after checking the shape and the values."""
    if hasattr(maps, "detach"):  # a torch tensor, without importing torch
        maps = maps.detach().cpu().numpy()
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or one (H, W) map; got shape {a.shape}. For pixel "
                         "attributions (N, H, W, C), reduce the channels first, e.g. "
                         "np.abs(raw).sum(axis=-1)")
    if a.shape[0] == 0 or a.shape[1] * a.shape[2] == 0:
        raise ValueError(f"maps must hold at least one map with at least one pixel; got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("maps contain NaN or inf: check the explanation (Explanation.maps never do)")
    return np.abs(a).reshape(len(a), -1)


def sparseness(maps: np.ndarray) -> np.ndarray:
    """Gini index of each map's absolute values (Chalasani et al., 2020; Quantus' *Sparseness*).

    With the n values sorted ascending, a_(1) <= … <= a_(n),

        G = sum_i (2 i − n − 1) a_(i) / (n sum_i a_(i)),

    which equals the mean absolute difference of all pairs divided by twice the mean,
    ``sum_ij |a_i − a_j| / (2 n sum_i a_i)``.

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array, any real values (their absolute values are used)

    Returns
    -------
    (N,) float64 in [0, 1 − 1/n], n = H W: 0 for a flat map, 1 − 1/n for one non-zero pixel.
    An all-zero map singles out nothing and scores 0, like a flat one (no NaN).

    Raises
    ------
    ValueError
        For maps that are not (N, H, W) / (H, W), empty, or contain NaN or inf.
    """
    a = np.sort(_mass(maps), axis=1)
    n = a.shape[1]
    total = a.sum(axis=1)
    rank_weight = 2 * np.arange(1, n + 1) - n - 1
    weighted = a @ rank_weight
    return np.divide(weighted, n * total, out=np.zeros(len(a)), where=total > 0)


def complexity(maps: np.ndarray) -> np.ndarray:
    """Entropy of each map's mass distribution (Bhatt et al., 2020; Quantus' *Complexity*).

    With ``p_i = |a_i| / sum_j |a_j|`` the share of pixel i,

        H = − sum_i p_i ln p_i        (natural logarithm; 0 ln 0 = 0)

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array, any real values (their absolute values are used)

    Returns
    -------
    (N,) float64 in [0, ln n], n = H W: 0 for one non-zero pixel, ln n for a flat map.
    An all-zero map is scored as a flat one, ln n (it singles out nothing; no NaN).

    Raises
    ------
    ValueError
        For maps that are not (N, H, W) / (H, W), empty, or contain NaN or inf.
    """
    a = _mass(maps)
    n = a.shape[1]
    total = a.sum(axis=1, keepdims=True)
    p = np.divide(a, total, out=np.full_like(a, 1.0 / n), where=total > 0)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=1)
