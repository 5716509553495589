"""Faithfulness to the model, with no ground truth: does the model's score follow the map when the
image is changed in the order the map ranks its pixels?

- deletion / insertion (RISE) and their areas;
- Average Drop / Increase in Confidence (Grad-CAM++);
- the pieces the perturbation metrics share (:func:`checked_batch`, :func:`follow_targets`,
  :func:`class_scores`, :func:`pixel_order`), also used by ROAD (:mod:`.road`).

The model is asked through a ``score`` callable that maps a batch of images (NumPy, in the images'
own layout) to class scores ``(M, classes)``: :func:`model_scores` builds one for a Keras or
PyTorch model from the engine, so every metric works for both frameworks. Maps are ``(N, H, W)``
(or one ``(H, W)``) float arrays at the images' resolution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..engine.maps import check_maps, to_numpy
from ..engine.maps import softmax as softmax_of
from ..engine.pipeline import Explainer
from ..engine.progress import enabled
from ..engine.progress import progress as progress_bar
from ..engine.targets import class_indices

ScoreFn = Callable[[np.ndarray], np.ndarray]


def model_scores(model: Any, *, score_fn: Callable | None = None, batch_size: int = 32) -> ScoreFn:
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
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    adapter = Explainer(model, score_fn=score_fn).adapter

    def score(images: Any) -> np.ndarray:
        x = adapter.validate(images)
        return np.concatenate([adapter.logits(x[i:i + batch_size])
                               for i in range(0, len(x), batch_size)])

    return score


@dataclass
class Batch:
    """Maps and images checked against each other, the images channels-last for the perturbations.

    Attributes
    ----------
    maps : (N, H, W) float64
    images : (N, H, W, C) float64
    layout : "nhwc", "nchw" or "nhw": how the score callable wants the images
    """

    maps: np.ndarray
    images: np.ndarray
    layout: str

    def to_model(self, nhwc: np.ndarray) -> np.ndarray:
        """Channels-last images back into the caller's layout and dtype (float32)."""
        nhwc = nhwc.astype(np.float32)
        if self.layout == "nchw":
            return np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
        if self.layout == "nhw":
            return nhwc[..., 0]
        return nhwc


def checked_batch(maps: Any, images: Any, *, unit_range: bool = False) -> Batch:
    """Check maps (N, H, W) against images (N, H, W[, C]) or (N, C, H, W) and bring both to NumPy.

    Parameters
    ----------
    maps : (N, H, W) or (H, W) array or tensor, at the images' resolution
    images : (N, H, W, C), (N, C, H, W) or (N, H, W) float array or tensor (the layout is read from
        the maps' size)
    unit_range : the maps must lie in [0, 1] (they multiply the images)

    Returns
    -------
    Batch
    """
    maps = check_maps(maps)
    x = to_numpy(images)
    if x.dtype == np.uint8:
        raise ValueError("images are uint8 (0–255): pass them the way the model takes them, "
                         "e.g. x.astype('float32') / 255.0")
    x = np.asarray(x, dtype=np.float64)
    n, h, w = maps.shape
    if x.ndim == 3 and x.shape == maps.shape:
        batch = Batch(maps, x[..., None], "nhw")
    elif x.ndim == 4 and x.shape[1:3] == (h, w):
        batch = Batch(maps, x, "nhwc")
    elif x.ndim == 4 and x.shape[2:4] == (h, w):
        batch = Batch(maps, x.transpose(0, 2, 3, 1), "nchw")
    else:
        raise ValueError(
            f"maps {maps.shape} and images {x.shape} differ in size: the maps must be (N, H, W) at the "
            "images' resolution (Explanation.maps are; resize raw maps with "
            "gradcam_helpers.engine.maps.resize_maps), and the images (N, H, W, C) or (N, C, H, W)")
    if len(x) != n:
        raise ValueError(f"got {n} maps for {len(x)} images: pass one map per image")
    if n == 0:
        raise ValueError("no maps: pass at least one map and image")
    if not np.isfinite(batch.images).all():
        raise ValueError("images contain NaN or inf")
    if unit_range and (maps.min() < 0 or maps.max() > 1):
        raise ValueError(f"maps must lie in [0, 1] here (they multiply the image); got values in "
                         f"[{maps.min():.3g}, {maps.max():.3g}]: use Explanation.maps or normalise them")
    return batch


def class_scores(score: ScoreFn, batch: Batch, nhwc: np.ndarray, targets: np.ndarray,
                 softmax: bool, batch_size: int) -> np.ndarray:
    """``score(images)[i, targets[i]]`` for channels-last images, in chunks, softmaxed if asked.

    Returns
    -------
    (M,) float64
    """
    out = []
    for start in range(0, len(nhwc), batch_size):
        chunk = nhwc[start:start + batch_size]
        logits = to_numpy(score(batch.to_model(chunk)), np.float64)
        if logits.ndim != 2 or len(logits) != len(chunk):
            raise ValueError(f"score(images) must return (N, classes) class scores for N images; got "
                             f"shape {logits.shape} for {len(chunk)} images")
        if not np.isfinite(logits).all():
            raise ValueError("score(images) returned NaN or inf")
        if softmax:
            logits = softmax_of(logits, axis=1)
        t = targets[start:start + batch_size]
        out.append(logits[np.arange(len(chunk)), t])
    return np.concatenate(out)


def follow_targets(score: ScoreFn, batch: Batch, targets: Any, batch_size: int) -> np.ndarray:
    """One class per image to follow: ``targets`` checked (:mod:`gradcam_helpers.engine.targets`),
    or, for None, the top class of each unperturbed image.

    Returns
    -------
    (N,) int64
    """
    n = len(batch.maps)
    chosen = class_indices(targets, n)
    if chosen is not None:
        return chosen
    chunks = [to_numpy(score(batch.to_model(batch.images[i:i + batch_size])))
              for i in range(0, n, batch_size)]
    logits = np.concatenate(chunks)
    if logits.ndim != 2 or len(logits) != n:
        raise ValueError(f"score(images) must return (N, classes); got shape {logits.shape}")
    return logits.argmax(axis=1).astype(np.int64)


def pixel_order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices from the most to the least salient; equal values in a random (seeded) order,
    so a flat map is a random order rather than a raster scan that favours the top of the image.

    Parameters
    ----------
    saliency : (H, W) map
    rng : the generator of the order among equal values

    Returns
    -------
    (H W,) int64 flat indices
    """
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
    batch = checked_batch(maps, images)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = follow_targets(score, batch, targets, batch_size)
    n, h, w = batch.maps.shape
    counts = np.ceil(np.linspace(0, h * w, steps + 1)).astype(int)  # pixels changed at each step
    rng = np.random.default_rng(seed)
    curves = np.zeros((n, steps + 1))
    for i in progress_bar(range(n), desc=kind, unit="image", disable=not enabled(progress)):
        image = batch.images[i]
        base = _baseline(baseline, image, blur_sigma)
        rank = np.empty(h * w, dtype=np.int64)
        rank[pixel_order(batch.maps[i], rng)] = np.arange(h * w)
        changed = (rank[None, :] < counts[:, None]).reshape(steps + 1, h, w, 1)
        if kind == "deletion":
            stack = np.where(changed, base[None], image[None])
        else:
            stack = np.where(changed, image[None], base[None])
        curves[i] = class_scores(score, batch, stack, np.full(steps + 1, t[i]), softmax, batch_size)
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
    batch = checked_batch(maps, images, unit_range=True)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    t = follow_targets(score, batch, targets, batch_size)
    original = class_scores(score, batch, batch.images, t, softmax, batch_size)
    explained = class_scores(score, batch, batch.images * batch.maps[..., None], t, softmax, batch_size)
    return ConfidenceChange(original, explained)
