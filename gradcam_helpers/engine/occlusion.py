"""Occlusion sensitivity, framework-free: hide one region of the image at a time and measure how
much the class score drops.

Zeiler & Fergus (ECCV 2014, "Visualizing and Understanding Convolutional Networks", section 4.2)
slid a grey square over the image and watched the class probability; captum's ``Occlusion`` turns
the drops into a per-pixel attribution. That is what :func:`occlusion` computes: for every position
of a ``window`` × ``window`` square (moved by ``stride``; the last row and column of positions sit
on the image's edge so that every pixel is covered),

    drop(p)      = S_c(x) − S_c(x with the square at p set to ``fill``)
    raw[n, i, j] = mean of drop(p) over the positions p whose square covers pixel (i, j)

with S_c the score of class c **before softmax**. A positive value says "hiding this region lowers
the score: the model uses it for class c"; a negative value, that hiding it raises the score. It is
the image counterpart of permutation feature importance (lesson 14): a feature (a region) is
destroyed and the loss of score is its importance — one model evaluation per position, no gradient,
so it works for any model, at the price of many forward passes.

Only forward passes are needed, which the adapter gives (``logits``), so the same function serves
Keras (every backend) and PyTorch. The result is a pixel attribution ``(N, H, W, C)``, equal in all
channels (the square covers every channel, as captum's ``sliding_window_shapes=(C, k, k)``); its
displayable map is :func:`~.maps.attribution_maps`, the absolute value scaled to [0, 1].
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .progress import progress
from .registry import Job, Method, Option, Raw, driver, positive_int, register
from .targets import resolve_targets

ScoreFn = Callable[[np.ndarray], np.ndarray]


def window_positions(size: int, window: int, stride: int) -> np.ndarray:
    """Start indices of the square along one axis: 0, stride, 2·stride, ... and, when the last of
    those does not reach the edge, ``size − window`` (so that every pixel is covered).

    Raises
    ------
    ValueError
        When the window is larger than the image (the message names both sizes and the fix).
    """
    if window > size:
        raise ValueError(f"the occlusion window ({window} pixels) is larger than the image "
                         f"({size} pixels); pass a smaller window=...")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return np.asarray(starts, dtype=np.int64)


def occlusion(x: np.ndarray, targets: np.ndarray, score_fn: ScoreFn, *, window: int = 8,
              stride: int = 4, fill: float = 0.0, batch_size: int = 32,
              show_progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion sensitivity (see the module docstring).

    Parameters
    ----------
    x : (N, H, W, C) float inputs, channels last, preprocessed for the model
    targets : (N,) class indices (the column of ``score_fn``'s output explained for each image)
    score_fn : ``score_fn(batch (M, H, W, C) float32) -> (M, classes)`` scores before softmax
    window : side of the square, in pixels (1 <= window <= min(H, W))
    stride : step between two positions, in pixels (stride <= window leaves no pixel uncovered
        between positions; any stride >= 1 is accepted, the edge position is always added)
    fill : the value written into the square (in the model's input units: 0 is black for x / 255)
    batch_size : occluded copies per forward pass
    show_progress : progress bar (None: only for more than 2,048 passes)

    Returns
    -------
    raw : (N, H, W, C) float32, signed — the mean score drop of the squares covering each pixel,
        the same value in every channel
    drops : (N, rows, cols) float32 — the score drop at each position of the square (its grid)
    """
    x = np.asarray(x, np.float32)
    targets = np.asarray(targets, np.int64)
    if not np.isfinite(fill):
        raise ValueError(f"fill must be a finite number; got {fill!r}")
    n, h, w, _ = x.shape
    rows, cols = window_positions(h, window, stride), window_positions(w, window, stride)
    positions = [(r, c) for r in rows for c in cols]
    coverage = np.zeros((h, w), np.float64)
    for r, c in positions:
        coverage[r:r + window, c:c + window] += 1
    raw = np.zeros((n, h, w), np.float64)
    drops = np.zeros((n, len(positions)), np.float64)
    total = n * len(positions)
    show = show_progress if show_progress is not None else total > 2048
    with progress(total=total, desc="occlusion", unit="pass", disable=not show) as bar:
        for i in range(n):
            base = float(np.asarray(score_fn(x[i:i + 1]), np.float64)[0, targets[i]])
            for start in range(0, len(positions), batch_size):
                chunk = positions[start:start + batch_size]
                copies = np.repeat(x[i:i + 1], len(chunk), axis=0)
                for k, (r, c) in enumerate(chunk):
                    copies[k, r:r + window, c:c + window, :] = fill
                scores = np.asarray(score_fn(copies), np.float64)[:, targets[i]]
                drops[i, start:start + len(chunk)] = base - scores
                bar.update(len(chunk))
            for k, (r, c) in enumerate(positions):
                raw[i, r:r + window, c:c + window] += drops[i, k]
    raw /= coverage
    per_channel = np.repeat(raw[..., None], x.shape[-1], axis=-1).astype(np.float32)
    return per_channel, drops.reshape(n, len(rows), len(cols)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the driver: forward passes of occluded copies, through the adapter


@driver(needs="scores")
def with_occluded_scores(method: Method, job: Job, options: dict) -> Raw:
    """Occlusion: one forward pass of the images (the scores and classes explained), then forward
    passes of occluded copies (``adapter.logits`` on each batch, in the model's own layout and on
    its device); ``fn(x, targets, score_fn, ...)``. Adds ``extras["drops"]`` (N, rows, cols), the
    score drop at each position of the square."""
    adapter = job.adapter
    x = np.ascontiguousarray(adapter.to_channels_last(job.images), dtype=np.float32)
    for size in x.shape[1:3]:   # a window larger than the image raises before any pass
        window_positions(size, options["window"], options["stride"])
    logits = np.concatenate([adapter.logits(job.images[start:start + job.batch_size])
                             for start in range(0, len(x), job.batch_size)])
    targets = resolve_targets(job.target, logits)

    def score_fn(batch: np.ndarray) -> np.ndarray:
        return adapter.logits(adapter.validate(adapter.from_channels_last(batch)))

    raw, drops = method.fn(x, targets, score_fn, batch_size=job.batch_size,
                           show_progress=job.progress, **options)
    return Raw(raw, np.asarray(logits, np.float32), targets, "input", {"drops": drops})


def _is_finite_number(v: Any) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and bool(np.isfinite(v)))


register(Method(
    "occlusion", "pixel", occlusion, with_occluded_scores, "Zeiler & Fergus, ECCV 2014",
    aliases=("occlusionsensitivity",), options=(
        positive_int("window", 8, "side of the occluding square, in pixels"),
        positive_int("stride", 4, "step between two positions of the square, in pixels"),
        Option("fill", 0.0, "the value written into the square, in the model's input units",
               _is_finite_number, "a finite number"))))
