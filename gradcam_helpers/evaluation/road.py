"""ROAD — RemOve And Debias (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods"): a faithfulness metric whose removal does not leak the map's
shape. The perturbation pieces it shares with deletion/insertion are in :mod:`.faithfulness`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..engine.progress import enabled
from ..engine.progress import progress as progress_bar
from .faithfulness import ScoreFn, checked_batch, class_scores, follow_targets, pixel_order

_NEIGHBOURS = [((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
               ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12)]


def _imputation_system(image, removed, ys, xs):
    """The sparse system  sum_q w_q (x_p - x_q) = 0  for every removed pixel p (known x_q on the right)."""
    from scipy.sparse import coo_matrix

    h, w, c = image.shape
    m = len(ys)
    index = -np.ones((h, w), dtype=np.int64)
    index[ys, xs] = np.arange(m)
    rows, cols, vals = [np.arange(m)], [np.arange(m)], []
    diagonal = np.zeros(m)
    rhs = np.zeros((m, c))
    for (dy, dx), weight in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        p, qy, qx = np.flatnonzero(inside), ny[inside], nx[inside]
        diagonal[p] += weight
        unknown = removed[qy, qx]
        rows.append(p[unknown])
        cols.append(index[qy[unknown], qx[unknown]])
        vals.append(np.full(int(unknown.sum()), -weight))
        rhs[p[~unknown]] += weight * image[qy[~unknown], qx[~unknown]]
    matrix = coo_matrix((np.concatenate([diagonal] + vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(m, m)).tocsc()
    return matrix, rhs


def _solve(matrix, rhs):
    from scipy.sparse.linalg import spsolve

    return spsolve(matrix, rhs).reshape(rhs.shape)


def noisy_linear_imputation(image: np.ndarray, removed: np.ndarray, noise: float = 0.01,
                            rng: np.random.Generator | None = None) -> np.ndarray:
    """Fill the ``removed`` pixels from their neighbours (Rong et al., ICML 2022, "A Consistent and
    Efficient Evaluation Strategy for Attribution Methods").

    Each removed pixel becomes the weighted mean of its 8 neighbours (weight 1/6 for the 4 direct and
    1/12 for the 4 diagonal ones; removed neighbours are unknowns too), one sparse linear system per
    image solved for all channels at once. Then Gaussian noise is added to the filled pixels. Unlike
    a black or blurred patch, the filled region continues the colours around it, so the *shape* of
    the removed set (the map's shape) does not tell the model what was there.

    Parameters
    ----------
    image : (H, W, C) float array
    removed : (H, W) bool array — at least one pixel must be kept
    noise : float
        Standard deviation of the noise, in units of each channel's standard deviation over the
        image (Rong et al. add 0.01 on normalised images). 0 gives the plain linear imputation.
    rng : numpy Generator for the noise

    Returns
    -------
    (H, W, C) float64 array: the kept pixels unchanged, the removed ones filled.
    """
    image = np.asarray(image, dtype=np.float64)
    removed = np.asarray(removed, dtype=bool)
    h, w, c = image.shape
    if removed.shape != (h, w):
        raise ValueError(f"removed {removed.shape} must be the image's (H, W) = {(h, w)}")
    out = image.copy()
    if not removed.any():
        return out
    if removed.all():
        raise ValueError("every pixel is removed: there is nothing to impute from; keep at least one")
    ys, xs = np.nonzero(removed)
    matrix, rhs = _imputation_system(image, removed, ys, xs)
    filled = _solve(matrix, rhs)
    if noise:
        rng = rng if rng is not None else np.random.default_rng(0)
        filled = filled + rng.normal(size=filled.shape) * noise * image.reshape(-1, c).std(axis=0)
    out[ys, xs] = filled
    return out


@dataclass
class RoadResult:
    """ROAD curves: the target score after removing a fraction of the pixels with noisy imputation.

    Attributes
    ----------
    fractions : (F,) float in (0, 1)
    morf : (N, F) — "most relevant first" removal: a faithful map makes it **fall fast** (low is good)
    lerf : (N, F) — "least relevant first" removal: a faithful map keeps it **high**
    targets : (N,) int
    """

    fractions: np.ndarray
    morf: np.ndarray
    lerf: np.ndarray
    targets: np.ndarray

    @property
    def morf_mean(self) -> np.ndarray:
        """(N,) mean MoRF score over the fractions (lower is better)."""
        return self.morf.mean(axis=1)

    @property
    def lerf_mean(self) -> np.ndarray:
        """(N,) mean LeRF score over the fractions (higher is better)."""
        return self.lerf.mean(axis=1)

    @property
    def gap(self) -> np.ndarray:
        """(N,) LeRF − MoRF, averaged over the fractions: one number per image, higher is better."""
        return self.lerf_mean - self.morf_mean


def road(maps, images, score: ScoreFn, targets=None, *,
         fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9), noise: float = 0.01,
         softmax: bool = True, batch_size: int = 64, seed: int = 0,
         progress: bool | None = None) -> RoadResult:
    """ROAD — RemOve And Debias (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
    Strategy for Attribution Methods").

    For each fraction ``f`` the ``f H W`` most relevant pixels (MoRF) or least relevant pixels (LeRF)
    are removed and filled by :func:`noisy_linear_imputation`, and the class score is read. Removing
    with a constant colour, as deletion does, leaks the map's shape: a model can recognise the class
    from the outline of the hole. The linear fill removes that shortcut, and no retraining is needed.

    Parameters
    ----------
    maps, images, score, targets, softmax, batch_size, progress : as in
        :func:`~.faithfulness.deletion`
    fractions : sequence of float
        The fractions of the pixels to remove, each in (0, 1).
    noise : imputation noise (see :func:`noisy_linear_imputation`)
    seed : seed for the order of equal-valued pixels and for the noise

    Returns
    -------
    RoadResult
        ``morf`` and ``lerf`` (N, F), their means and ``gap`` = LeRF − MoRF (higher is better).
    """
    batch = checked_batch(maps, images)
    fr = np.asarray(fractions, dtype=np.float64).ravel()
    if fr.size == 0 or fr.min() <= 0 or fr.max() >= 1:
        raise ValueError(f"fractions must lie strictly between 0 and 1; got {list(fractions)}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = follow_targets(score, batch, targets, batch_size)
    n, h, w = batch.maps.shape
    rng = np.random.default_rng(seed)
    curves = {"morf": np.zeros((n, len(fr))), "lerf": np.zeros((n, len(fr)))}
    with progress_bar(total=n * 2 * len(fr), desc="ROAD", unit="image", disable=not enabled(progress)) as bar:
        for i in range(n):
            order = pixel_order(batch.maps[i], rng)
            for kind, ranked in (("morf", order), ("lerf", order[::-1])):
                stack = []
                for f in fr:
                    removed = np.zeros(h * w, dtype=bool)
                    removed[ranked[:int(round(f * h * w))]] = True
                    stack.append(noisy_linear_imputation(batch.images[i], removed.reshape(h, w), noise, rng))
                    bar.update(1)
                curves[kind][i] = class_scores(score, batch, np.stack(stack), np.full(len(fr), t[i]),
                                                softmax, batch_size)
    return RoadResult(fr, curves["morf"], curves["lerf"], t)
