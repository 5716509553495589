"""Localisation: does a map point at the object? Scored against ground truth.

Regions are boolean masks of the maps' shape or boxes ``(x0, y0, x1, y1)`` in pixels with exclusive
ends (``mask[y0:y1, x0:x1]``). Maps are ``(N, H, W)`` (or one ``(H, W)``) float arrays, non-negative,
at the images' resolution (``Explanation.maps`` are).
"""
from __future__ import annotations

import numpy as np

from ..engine.maps import check_maps


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
    """Maps (N, H, W) float64 and regions (N, H, W) bool of the same shape (boxes → masks)."""
    maps = check_maps(maps)
    regions = np.asarray(regions)
    if regions.ndim in (1, 2) and regions.shape[-1] == 4 and regions.dtype != bool:
        regions = boxes_to_masks(regions, maps.shape[1:])
    regions = regions.astype(bool)
    if regions.ndim == 2:
        regions = regions[None]
    if regions.shape != maps.shape:
        raise ValueError(f"regions {regions.shape} and maps {maps.shape} differ in shape; resize the "
                         "maps to the image (Explanation.maps already are) or pass boxes (N, 4)")
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
