"""Scores for saliency maps.

- Against ground truth: pointing game and energy inside a region. Regions are boolean masks of the
  maps' shape or boxes ``(x0, y0, x1, y1)`` in pixels with exclusive ends (``mask[y0:y1, x0:x1]``).
- Faithfulness to the model, with no ground truth: deletion / insertion (RISE), ROAD, Average Drop /
  Increase in Confidence. They change the images in the order a map ranks the pixels and ask the
  model again through a ``score`` callable (images → class scores; :func:`model_scores` makes one
  from a Keras or PyTorch model), so they work for both frameworks.
- Sanity check (cascading randomisation of the model's layers), with the map comparisons it uses.

Maps are ``(N, H, W)`` (or one ``(H, W)``) float arrays, non-negative, at the images' resolution.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np


def boxes_to_masks(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean masks ``(N, H, W)`` from boxes ``(N, 4)`` as ``(x0, y0, x1, y1)``, ends exclusive."""
    boxes = np.asarray(boxes, dtype=int).reshape(-1, 4)
    height, width = shape
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes):
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f"box {(x0, y0, x1, y1)} does not fit an image of {height}×{width}; "
                             "boxes are (x0, y0, x1, y1) in pixels with exclusive ends")
        mask[y0:y1, x0:x1] = True
    return masks


def _as_batch(maps: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (H, W); got shape {maps.shape}")
    regions = np.asarray(regions)
    if regions.ndim in (1, 2) and regions.shape[-1] == 4 and regions.dtype != bool:
        regions = boxes_to_masks(regions, maps.shape[1:])
    regions = regions.astype(bool)
    if regions.ndim == 2:
        regions = regions[None]
    if regions.shape != maps.shape:
        raise ValueError(f"regions {regions.shape} and maps {maps.shape} differ in shape; resize the "
                         "maps to the image (Explanation.maps already are) or pass boxes (N, 4)")
    if not np.isfinite(maps).all():
        raise ValueError("maps contain NaN or inf")
    return maps, regions


def pointing_game(maps: np.ndarray, regions: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Whether each map's maximum falls inside its region (Zhang et al., 2016, "Top-down neural
    attention by excitation backprop").

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array
    regions : boolean masks of the same shape, or boxes (N, 4) as (x0, y0, x1, y1)
    tolerance : int
        A hit also counts within this many pixels of the region (the paper uses 15 at 224 px).

    Returns
    -------
    hits : (N,) bool array. An all-zero map has no maximum and counts as a miss.
    """
    maps, regions = _as_batch(maps, regions)
    hits = np.zeros(len(maps), dtype=bool)
    for i, (m, r) in enumerate(zip(maps, regions)):
        if m.max() <= 0:
            continue
        y, x = np.unravel_index(np.argmax(m), m.shape)
        if tolerance:
            ys, xs = np.nonzero(r)
            hits[i] = bool(len(ys)) and np.min((ys - y) ** 2 + (xs - x) ** 2) <= tolerance ** 2
        else:
            hits[i] = bool(r[y, x])
    return hits


def energy_inside(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Fraction of each map's total mass inside its region ("energy-based pointing game",
    Wang et al., 2020, Score-CAM).

    Returns
    -------
    fraction : (N,) float array in [0, 1]; 0 for an all-zero map (no mass anywhere, no NaN).
    """
    maps, regions = _as_batch(maps, regions)
    total = maps.sum(axis=(1, 2))
    inside = (maps * regions).sum(axis=(1, 2))
    return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)


# =============================================================================================
# Faithfulness: does the model's score follow the map when the image is changed?
#
# These metrics do not need ground truth. They perturb the images in the order the map ranks the
# pixels and ask the model again, through a ``score`` callable that maps a batch of images (NumPy,
# in the images' own layout) to class scores ``(M, classes)`` — :func:`model_scores` builds one for
# a Keras or PyTorch model from the engine, so every metric works for both frameworks.
# =============================================================================================


ScoreFn = Callable[[np.ndarray], np.ndarray]


def model_scores(model, *, score_fn: Callable | None = None, batch_size: int = 32) -> ScoreFn:
    """A ``score`` callable for the metrics: images → the model's class scores before softmax.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
        Read through the engine's adapter, so a final softmax is bypassed without changing the model.
    score_fn : callable, optional
        Maps the model's output to ``(N, classes)`` class scores (see :class:`~gradcam_helpers.Explainer`).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    callable
        ``score(images) -> (N, classes) float32``; ``images`` as the model takes them (Keras
        ``(N, H, W, C)``, PyTorch ``(N, C, H, W)``), as NumPy arrays or tensors.
    """
    from .api import Explainer

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    adapter = Explainer(model, score_fn=score_fn).adapter

    def score(images) -> np.ndarray:
        x = adapter.validate(images)
        return np.concatenate([adapter.logits(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)])

    return score


def _show(progress_flag: bool | None) -> bool:
    if progress_flag is not None:
        return bool(progress_flag)
    from .progress import _in_kernel

    return _in_kernel()


def _to_numpy(images) -> np.ndarray:
    if hasattr(images, "detach"):  # a torch tensor, without importing torch
        images = images.detach().cpu().numpy()
    return np.asarray(images)


@dataclass
class _Batch:
    """Maps and images checked against each other, the images channels-last for the perturbations."""

    maps: np.ndarray  # (N, H, W) float64
    images: np.ndarray  # (N, H, W, C) float64
    layout: str  # "nhwc", "nchw" or "nhw": how the score callable wants the images

    def to_model(self, nhwc: np.ndarray) -> np.ndarray:
        """Channels-last images back into the caller's layout and dtype (float32)."""
        nhwc = nhwc.astype(np.float32)
        if self.layout == "nchw":
            return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        if self.layout == "nhw":
            return nhwc[..., 0]
        return nhwc


def _check(maps, images, *, unit_range: bool = False) -> _Batch:
    """Check maps (N, H, W) against images (N, H, W[, C]) or (N, C, H, W) and bring both to NumPy."""
    maps = np.asarray(_to_numpy(maps), dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W) or (H, W); got shape {maps.shape}")
    x = _to_numpy(images)
    if x.dtype == np.uint8:
        raise ValueError("images are uint8 (0–255): pass them the way the model takes them, "
                         "e.g. x.astype('float32') / 255.0")
    x = np.asarray(x, dtype=np.float64)
    n, h, w = maps.shape
    if x.ndim == 3 and x.shape == maps.shape:
        batch = _Batch(maps, x[..., None], "nhw")
    elif x.ndim == 4 and x.shape[1:3] == (h, w):
        batch = _Batch(maps, x, "nhwc")
    elif x.ndim == 4 and x.shape[2:4] == (h, w):
        batch = _Batch(maps, x.transpose(0, 2, 3, 1), "nchw")
    else:
        raise ValueError(
            f"maps {maps.shape} and images {x.shape} differ in size: the maps must be (N, H, W) at the "
            "images' resolution (Explanation.maps are; resize raw maps with methods.resize_maps), and "
            "the images (N, H, W, C) or (N, C, H, W)")
    if len(x) != n:
        raise ValueError(f"got {n} maps for {len(x)} images: pass one map per image")
    if n == 0:
        raise ValueError("no maps: pass at least one map and image")
    if not (np.isfinite(maps).all() and np.isfinite(batch.images).all()):
        raise ValueError("maps or images contain NaN or inf")
    if unit_range and (maps.min() < 0 or maps.max() > 1):
        raise ValueError(f"maps must lie in [0, 1] here (they multiply the image); got values in "
                         f"[{maps.min():.3g}, {maps.max():.3g}]: use Explanation.maps or normalise them")
    return batch


def _class_scores(score: ScoreFn, batch: _Batch, nhwc: np.ndarray, targets: np.ndarray,
                  softmax: bool, batch_size: int) -> np.ndarray:
    """score(images)[i, targets[i]] for channels-last images, in chunks, softmaxed if asked."""
    out = []
    for start in range(0, len(nhwc), batch_size):
        chunk = nhwc[start:start + batch_size]
        logits = np.asarray(_to_numpy(score(batch.to_model(chunk))), dtype=np.float64)
        if logits.ndim != 2 or len(logits) != len(chunk):
            raise ValueError(f"score(images) must return (N, classes) class scores for N images; got "
                             f"shape {logits.shape} for {len(chunk)} images")
        if not np.isfinite(logits).all():
            raise ValueError("score(images) returned NaN or inf")
        if softmax:
            z = logits - logits.max(axis=1, keepdims=True)
            logits = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        t = targets[start:start + batch_size]
        out.append(logits[np.arange(len(chunk)), t])
    return np.concatenate(out)


def _targets(score: ScoreFn, batch: _Batch, targets, batch_size: int) -> np.ndarray:
    """One class per image: None → the top class of the unperturbed image."""
    n = len(batch.maps)
    if targets is None:
        chunks = [np.asarray(_to_numpy(score(batch.to_model(batch.images[i:i + batch_size]))))
                  for i in range(0, n, batch_size)]
        logits = np.concatenate(chunks)
        if logits.ndim != 2 or len(logits) != n:
            raise ValueError(f"score(images) must return (N, classes); got shape {logits.shape}")
        return logits.argmax(axis=1)
    t = np.asarray(targets)
    if t.ndim == 0:
        t = np.full(n, int(t))
    if t.shape != (n,) or t.dtype.kind not in "iu":
        raise ValueError(f"targets must be None, an int or {n} ints (one class per image); got {targets!r}")
    return t.astype(np.int64)


def _pixel_order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices from the most to the least salient; equal values in a random (seeded) order,
    so a flat map is a random order rather than a raster scan that favours the top of the image."""
    flat = saliency.ravel()
    shuffled = rng.permutation(flat.size)
    return shuffled[np.argsort(-flat[shuffled], kind="stable")]


def _baseline(kind, image: np.ndarray, blur_sigma: float | None) -> np.ndarray:
    """The image the pixels are replaced with (deletion) or revealed from (insertion); (H, W, C)."""
    h, w, _ = image.shape
    if isinstance(kind, str):
        if kind == "black":
            return np.zeros_like(image)
        if kind == "mean":
            return np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape).copy()
        if kind == "blur":
            from scipy.ndimage import gaussian_filter

            sigma = blur_sigma if blur_sigma is not None else max(1.0, 5.0 * max(h, w) / 224)
            return gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")
        raise ValueError(f"unknown baseline {kind!r}; use 'black', 'blur', 'mean', a number or an array")
    value = np.asarray(kind, dtype=np.float64)
    if value.ndim == 0:
        return np.full_like(image, float(value))
    if value.shape == image.shape:
        return value
    if value.ndim == 3 and value.shape[1:] == image.shape[:2] and value.shape[0] == image.shape[2]:
        return value.transpose(1, 2, 0)  # channels-first baseline for channels-first images
    raise ValueError(f"a baseline array must have one image's shape {image.shape} (or channels first); "
                     f"got {value.shape}")


@dataclass
class Curve:
    """A deletion or insertion curve per image.

    Attributes
    ----------
    fractions : (S + 1,) float — fraction of pixels removed (deletion) or revealed (insertion), 0 … 1
    scores : (N, S + 1) float — the target class's score (a probability with ``softmax=True``) at each step
    targets : (N,) int — the class followed for each image
    """

    fractions: np.ndarray
    scores: np.ndarray
    targets: np.ndarray
    kind: str = ""

    @property
    def auc(self) -> np.ndarray:
        """(N,) area under each image's curve (trapezoid rule over the fraction axis)."""
        y = self.scores
        dx = np.diff(self.fractions)
        return ((y[:, 1:] + y[:, :-1]) / 2 * dx).sum(axis=1)


def _perturbation_curve(kind: str, maps, images, score: ScoreFn, targets, baseline, steps: int,
                        softmax: bool, batch_size: int, seed: int, blur_sigma, progress) -> Curve:
    from .progress import progress as progress_bar

    batch = _check(maps, images)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = _targets(score, batch, targets, batch_size)
    n, h, w = batch.maps.shape
    counts = np.ceil(np.linspace(0, h * w, steps + 1)).astype(int)  # pixels changed at each step
    rng = np.random.default_rng(seed)
    curves = np.zeros((n, steps + 1))
    for i in progress_bar(range(n), desc=kind, unit="image", disable=not _show(progress)):
        image = batch.images[i]
        base = _baseline(baseline, image, blur_sigma)
        rank = np.empty(h * w, dtype=np.int64)
        rank[_pixel_order(batch.maps[i], rng)] = np.arange(h * w)
        changed = (rank[None, :] < counts[:, None]).reshape(steps + 1, h, w, 1)
        if kind == "deletion":
            stack = np.where(changed, base[None], image[None])
        else:
            stack = np.where(changed, image[None], base[None])
        curves[i] = _class_scores(score, batch, stack, np.full(steps + 1, t[i]), softmax, batch_size)
    return Curve(counts / (h * w), curves, t, kind)


def deletion(maps, images, score: ScoreFn, targets=None, *, baseline="black", steps: int = 32,
             softmax: bool = True, batch_size: int = 64, seed: int = 0, blur_sigma: float | None = None,
             progress: bool | None = None) -> Curve:
    """Deletion curve and its area (Petsiuk et al., BMVC 2018, "RISE: Randomized Input Sampling for
    Explanation of Black-box Models").

    The pixels are replaced by a baseline in the order of the map, most salient first, ``ceil(H W /
    steps)`` at a time, and the class score is read after each step. A faithful map removes the
    evidence first, so the score falls fast: **a lower area (AUC) is better**.

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array
        Saliency maps at the images' resolution (e.g. ``Explanation.maps``); only their order matters.
        Pixels with equal values are removed in a random order drawn from ``seed``.
    images : (N, H, W, C), (N, C, H, W) or (N, H, W) float array or tensor
        The images as the model takes them (the layout is read from the maps' size).
    score : callable
        ``score(images) -> (M, classes)``, called with NumPy float32 batches in the images' layout;
        :func:`model_scores` builds one from a Keras or PyTorch model.
    targets : None, int or (N,) ints
        The class to follow; None takes each image's top class.
    baseline : "black" (zeros in the model's input space — the mean colour for mean/std-normalised
        inputs), "blur" (a Gaussian blur of the image, RISE's choice for insertion), "mean" (the
        image's mean colour), a number, or an array of one image's shape.
    steps : int
        Number of steps; RISE used 224 pixels per step on 224×224 images (``steps=224``).
    softmax : bool
        Turn the scores into probabilities first, as RISE does. Use False when ``score`` already
        returns probabilities, or to follow the logit.
    batch_size : int
        Perturbed images per call of ``score``.
    seed : int
        Seed for the order of equal-valued pixels.
    blur_sigma : float, optional
        Sigma in pixels of the "blur" baseline (default 5 pixels per 224).
    progress : bool, optional
        Show a progress bar over the images (default: only in a Jupyter kernel).

    Returns
    -------
    Curve
        ``fractions`` (S + 1,) from 0 to 1, ``scores`` (N, S + 1), ``targets``, and ``auc`` (N,).
    """
    return _perturbation_curve("deletion", maps, images, score, targets, baseline, steps, softmax,
                               batch_size, seed, blur_sigma, progress)


def insertion(maps, images, score: ScoreFn, targets=None, *, baseline="blur", steps: int = 32,
              softmax: bool = True, batch_size: int = 64, seed: int = 0, blur_sigma: float | None = None,
              progress: bool | None = None) -> Curve:
    """Insertion curve and its area (Petsiuk et al., BMVC 2018, RISE).

    The reverse of :func:`deletion`: start from the baseline (by default a blurred copy of the image,
    as in RISE) and reveal the original pixels in the order of the map, most salient first. A faithful
    map brings the evidence back first, so the score rises fast: **a higher area (AUC) is better**.
    Parameters and result as in :func:`deletion`.
    """
    return _perturbation_curve("insertion", maps, images, score, targets, baseline, steps, softmax,
                               batch_size, seed, blur_sigma, progress)


# ---------------------------------------------------------------------------------------------
# ROAD

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
    maps, images, score, targets, softmax, batch_size, progress : as in :func:`deletion`
    fractions : sequence of float
        The fractions of the pixels to remove, each in (0, 1).
    noise : imputation noise (see :func:`noisy_linear_imputation`)
    seed : seed for the order of equal-valued pixels and for the noise

    Returns
    -------
    RoadResult
        ``morf`` and ``lerf`` (N, F), their means and ``gap`` = LeRF − MoRF (higher is better).
    """
    from .progress import progress as progress_bar

    batch = _check(maps, images)
    fr = np.asarray(fractions, dtype=np.float64).ravel()
    if fr.size == 0 or fr.min() <= 0 or fr.max() >= 1:
        raise ValueError(f"fractions must lie strictly between 0 and 1; got {list(fractions)}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = _targets(score, batch, targets, batch_size)
    n, h, w = batch.maps.shape
    rng = np.random.default_rng(seed)
    curves = {"morf": np.zeros((n, len(fr))), "lerf": np.zeros((n, len(fr)))}
    with progress_bar(total=n * 2 * len(fr), desc="ROAD", unit="image", disable=not _show(progress)) as bar:
        for i in range(n):
            order = _pixel_order(batch.maps[i], rng)
            for kind, ranked in (("morf", order), ("lerf", order[::-1])):
                stack = []
                for f in fr:
                    removed = np.zeros(h * w, dtype=bool)
                    removed[ranked[:int(round(f * h * w))]] = True
                    stack.append(noisy_linear_imputation(batch.images[i], removed.reshape(h, w), noise, rng))
                    bar.update(1)
                curves[kind][i] = _class_scores(score, batch, np.stack(stack), np.full(len(fr), t[i]),
                                                softmax, batch_size)
    return RoadResult(fr, curves["morf"], curves["lerf"], t)


# ---------------------------------------------------------------------------------------------
# Average Drop / Increase in Confidence


@dataclass
class ConfidenceChange:
    """Scores of the images and of the images multiplied by their maps (Grad-CAM++'s metrics).

    Attributes
    ----------
    original : (N,) — Y_i, the target class's score on image i
    explained : (N,) — O_i, the same on ``image_i * map_i``
    """

    original: np.ndarray
    explained: np.ndarray

    @property
    def average_drop(self) -> float:
        """100 · mean_i max(0, Y_i − O_i) / Y_i, in percent (lower is better)."""
        drop = np.maximum(self.original - self.explained, 0)
        ratio = np.divide(drop, self.original, out=np.zeros_like(drop), where=self.original > 0)
        return float(100 * ratio.mean())

    @property
    def increase_in_confidence(self) -> float:
        """100 · mean_i [O_i > Y_i], in percent (higher is better)."""
        return float(100 * np.mean(self.explained > self.original))


def confidence_change(maps, images, score: ScoreFn, targets=None, *, softmax: bool = True,
                      batch_size: int = 64) -> ConfidenceChange:
    """Average Drop and Increase in Confidence (Chattopadhay et al., WACV 2018, "Grad-CAM++:
    Improved Visual Explanations for Deep Convolutional Networks").

    The "explanation map" ``E_i = image_i ⊙ map_i`` keeps only what the map highlights. With Y_i the
    class score (softmax probability) on the image and O_i on E_i:

    - Average Drop  = 100 · (1/N) Σ_i max(0, Y_i − O_i) / Y_i   (lower is better)
    - Increase in Confidence = 100 · (1/N) Σ_i [O_i > Y_i]       (higher is better)

    A map of ones everywhere gives 0 and 0; both reward a map that covers much of the image, so read
    them together with deletion or ROAD.

    Parameters
    ----------
    maps : (N, H, W) array in [0, 1] (``Explanation.maps``)
    images, score, targets, softmax, batch_size : as in :func:`deletion`. Zero in the model's input
        space is what "masked out" means here (the mean colour for mean/std-normalised inputs).

    Returns
    -------
    ConfidenceChange
        ``original``, ``explained`` (N,), and the properties ``average_drop`` and
        ``increase_in_confidence`` in percent.
    """
    batch = _check(maps, images, unit_range=True)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = _targets(score, batch, targets, batch_size)
    original = _class_scores(score, batch, batch.images, t, softmax, batch_size)
    explained = _class_scores(score, batch, batch.images * batch.maps[..., None], t, softmax, batch_size)
    return ConfidenceChange(original, explained)


# ---------------------------------------------------------------------------------------------
# Sanity check: cascading randomisation (Adebayo et al., 2018)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between maps, per image.

    Parameters
    ----------
    a, b : (N, H, W) or (H, W) arrays of the same shape

    Returns
    -------
    (N,) float in [−1, 1]. Ties get their average rank. A constant map has no ranking: two constant
    maps score 1 when they are equal and 0 otherwise, a constant map against a varying one 0 (never NaN).
    """
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} differ in shape")
    a, b = a.reshape(-1, a.shape[-2] * a.shape[-1]), b.reshape(-1, b.shape[-2] * b.shape[-1])
    out = np.zeros(len(a))
    for i, (p, q) in enumerate(zip(a, b)):
        flat_p, flat_q = np.ptp(p) == 0, np.ptp(q) == 0
        if flat_p or flat_q:
            out[i] = float(flat_p and flat_q and np.array_equal(p, q))
            continue
        out[i] = np.corrcoef(rankdata(p), rankdata(q))[0, 1]
    return out


def map_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Structural similarity (Wang et al., 2004) between maps in [0, 1], per image (scikit-image's
    ``structural_similarity`` with ``data_range=1``); 1 means identical. Maps need at least 7×7 pixels."""
    from skimage.metrics import structural_similarity

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} differ in shape")
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    if min(a.shape[-2:]) < 7:
        raise ValueError(f"SSIM needs maps of at least 7×7 pixels; got {a.shape[-2:]}")
    return np.array([structural_similarity(p, q, data_range=1.0) for p, q in zip(a, b)])


@dataclass
class SanityCurve:
    """Maps of a model whose layers were randomised one group at a time, from the top.

    Attributes
    ----------
    layers : list of S + 1 labels: ``"original"``, then for each step the lowest layer randomised so far
    groups : list of S lists — the layers randomised at each step (cumulative: earlier ones stay random)
    spearman : (S + 1, N) rank correlation with the original maps (row 0 is 1)
    ssim : (S + 1, N) SSIM with the original maps (row 0 is 1); NaN-free, None for maps under 7×7
    maps : (S + 1, N, H, W) the maps at each step
    targets : (N,) the classes explained (those of the original model, kept for every step)
    """

    layers: list
    groups: list
    spearman: np.ndarray
    ssim: np.ndarray | None
    maps: np.ndarray
    targets: np.ndarray
    method: str = ""
    extras: dict = field(default_factory=dict, repr=False)


def _copy_model(model):
    """A copy with its own weights; the user's model is never changed."""
    from .keras_adapter import is_keras_model

    if is_keras_model(model):
        import keras

        try:
            clone = keras.models.clone_model(model)
        except Exception as error:  # subclassed models without get_config, …
            raise TypeError(
                "the sanity check works on a copy of the model and keras.models.clone_model could not "
                f"copy this one ({type(error).__name__}: {error}). Use a Functional or Sequential model, "
                "or give the subclass a get_config()/from_config()") from error
        clone.set_weights(model.get_weights())
        return clone
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        import copy

        return copy.deepcopy(model)
    raise TypeError(f"sanity_check() takes a keras.Model or a torch.nn.Module; got {type(model).__name__}")


def _randomise(weights: list, adapter, rng: np.random.Generator) -> None:
    """Replace each tensor by N(0, s²) draws, s = its root mean square (a zero tensor stays zero)."""
    for v in weights:
        value = adapter.weight_value(v)
        rms = float(np.sqrt(np.mean(value ** 2))) if value.size else 0.0
        adapter.assign_weight(v, rng.standard_normal(value.shape) * rms)


def sanity_check(model, images, method: str = "gradcam", layer: str | None = None, target=None, *,
                 steps: int | None = None, seed: int = 0, ssim: bool = True,
                 method_options: dict | None = None, progress: bool | None = None,
                 **options: Any) -> SanityCurve:
    """Model-parameter randomisation test, cascading from the top (Adebayo et al., NeurIPS 2018,
    "Sanity Checks for Saliency Maps").

    A map that explains the *model* must change when the model's learnt weights are destroyed. The
    layers with weights are re-initialised one group at a time from the output towards the input
    (cumulatively: the top stays random as lower layers follow), the maps are recomputed for the same
    images and classes, and compared with the original maps by Spearman rank correlation and SSIM.
    A curve that stays near 1 means the method shows the image (edges, contrast), not the model —
    Adebayo et al. found this for Guided Backprop; Grad-CAM's curve falls.

    Works on a copy (PyTorch: ``copy.deepcopy``; Keras: ``keras.models.clone_model`` plus the weights),
    never on ``model`` itself. Each weight tensor is replaced by N(0, s²) draws with s its own root
    mean square (the scale is kept, the learnt values are gone; an all-zero tensor stays zero);
    BatchNormalization's running statistics are kept. Deterministic for a given ``seed``.

    Parameters
    ----------
    model : keras.Model (Functional or Sequential) or torch.nn.Module, trained
    images : a batch as :func:`~gradcam_helpers.explain` takes it
    method, layer, target, **options : as in :func:`~gradcam_helpers.explain`; ``layer`` is a name or
        dotted path (found again in the copy). The targets of the original model are used throughout.
    method_options : dict, optional
        Options of the method's call, e.g. ``{"steps": 16}`` for Integrated Gradients.
    steps : int, optional
        Number of curve points: the top layer alone, then the other layers split into ``steps − 1``
        consecutive groups; None: one point per layer with weights.
    seed : int
        Seed of the random weights.
    ssim : bool
        Also compute SSIM (maps of at least 7×7 pixels).
    progress : bool, optional
        Progress bar over the steps (default: only in a Jupyter kernel).

    Returns
    -------
    SanityCurve
        ``layers`` (labels), ``spearman`` and ``ssim`` (S + 1, N), ``maps`` (S + 1, N, H, W).

    Raises
    ------
    ValueError
        When the model has no weights to randomise.
    """
    from .api import Explainer
    from .progress import progress as progress_bar

    if layer is not None and not isinstance(layer, str):
        raise TypeError("sanity_check() needs the layer as a name or dotted path (it is looked up again "
                        f"in a copy of the model); got {type(layer).__name__}")
    copy_ = _copy_model(model)
    explainer = Explainer(copy_, layer, **options)
    adapter = explainer.adapter
    x = adapter.validate(images)
    layers = adapter.weighted_layers(x)
    if not layers:
        raise ValueError("the model has no weights to randomise, so a sanity check cannot say anything: "
                         "pass a trained model with weights (convolutions, Dense/Linear layers)")
    call_options = dict(method_options or {})
    original = explainer(x, method=method, target=target, **call_options)
    top_down = layers[::-1]
    n_steps = len(top_down) if steps is None else int(steps)
    if n_steps < 2 and len(top_down) > 1:
        raise ValueError(f"steps must be at least 2 (the top layer, then the rest); got {steps!r}")
    # the classifier (the top layer) is always a step of its own: the first question is whether the
    # map depends on the class weights at all
    rest = np.arange(1, len(top_down))
    groups = [[0]]
    if len(rest):
        groups += [list(g) for g in np.array_split(rest, min(n_steps - 1, len(rest)))]
    rng = np.random.default_rng(seed)
    maps = [original.maps]
    labels, names = ["original"], []
    for group in progress_bar(groups, desc="sanity check", unit="step", disable=not _show(progress)):
        for j in group:
            _randomise(top_down[j][1], adapter, rng)
        names.append([top_down[j][0] for j in group])
        labels.append(top_down[group[-1]][0])
        maps.append(explainer(x, method=method, target=original.targets, **call_options).maps)
    stack = np.stack(maps)
    spearman = np.stack([rank_correlation(original.maps, m) for m in stack])
    similarity = None
    if ssim and min(stack.shape[-2:]) >= 7:
        similarity = np.stack([map_ssim(original.maps, m) for m in stack])
    return SanityCurve(labels, names, spearman, similarity, stack, original.targets, original.method)
