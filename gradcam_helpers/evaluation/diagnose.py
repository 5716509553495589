"""Shortcut-learning diagnosis: patterns in a set of saliency maps that say "the model may not be
looking at what it should".

Four patterns, each measured per map and summarised over a set:

``corner``
    Energy concentrated in the image corners, where scanners print tags, rulers and laterality
    markers. Measures: the fraction of the map's mass inside the four corner squares, and
    whether the map's maximum lies in one of them. A CAM at a coarse layer is blurred over
    several pixels, so the evidence for a small tag spills out of its corner square; the
    position of the maximum stays put, so either sign flags the map — except on a map flagged
    ``uniform``, whose maximum is barely above the rest and may fall anywhere (a model that
    reads a cue spread over the whole frame gives such maps; lesson 07 shows one whose maxima
    land in a corner by chance in about a quarter of its maps).
``uniform``
    A near-uniform (or empty) map: the explanation points nowhere in particular. Measure: the
    *flatness* ``mean(map) / max(map)``, 1 for a constant map, about the lit area's share for a
    single blob.
``outside_roi``
    Attention outside the region of interest (e.g. the lungs). Measure: the fraction of the
    map's mass outside the ROI mask.
``one_side``
    Attention on one side only. Measure: the signed balance ``(R - L) / (R + L)`` of the mass
    right and left of the midline (-1: all on the image's left, +1: all on its right). One
    pneumonia in one lung rightly gives a one-sided map, so for a *set* this pattern is found only
    when the maps lean to the *same* side on average (a marker at a fixed place does that; lesions
    scattered over both lungs do not).

The functions take plain arrays — maps ``(N, H, W)`` non-negative (e.g. ``Explanation.maps``,
in [0, 1]), ROI masks ``(N, H, W)`` or one ``(H, W)`` bool — and return a :class:`Diagnosis`
holding NumPy arrays and dicts (no pandas).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.maps import check_maps

PATTERNS: tuple[str, ...] = ("corner", "uniform", "outside_roi", "one_side")

#: Default thresholds; every one is a keyword of :func:`diagnose_maps`.
DEFAULT_THRESHOLDS: dict[str, float] = {
    # side of each corner square as a fraction of the image's height/width: four squares of 0.2
    # cover 16 % of the image, so a uniform map puts 16 % of its mass there
    "corner_size": 0.2,
    # a map is flagged when its corners hold at least this share of its mass (≈ 2× uniform),
    # or when its maximum lies in a corner square (and the map is not flagged uniform)
    "corner_threshold": 0.3,
    # flatness mean/max at or above this: more than half of the frame is "lit" on average
    "uniform_threshold": 0.5,
    # share of the mass outside the ROI at or above this: most attention is off the ROI
    "outside_threshold": 0.5,
    # |(R - L) / (R + L)| at or above this: at least 90 % of the mass on one side
    "side_threshold": 0.8,
    # a pattern is found in a set when at least this fraction of its maps is flagged
    "set_fraction": 0.25,
    # ... and, for one_side, when the mean signed balance is at least this far from 0
    "side_bias_threshold": 0.5,
}

_LABELS_JA = {
    "corner": "画像の隅に注目が集中",
    "uniform": "ほぼ一様（どこも見ていない）マップ",
    "outside_roi": "関心領域（ROI）の外に注目",
    "one_side": "いつも同じ片側だけに注目",
}


@dataclass
class Diagnosis:
    """Per-map numbers and flags for the four patterns, and the thresholds used.

    Attributes
    ----------
    corner_energy : (N,) float in [0, 1]
        Share of each map's mass in the four corner squares.
    peak_in_corner : (N,) bool
        The map's maximum lies in a corner square (False for an empty map).
    flatness : (N,) float in [0, 1]
        ``mean / max`` of each map (1 for an empty map: it points nowhere).
    outside_roi : (N,) float in [0, 1], NaN where no ROI was given
        Share of each map's mass outside the ROI.
    side_balance : (N,) float in [-1, 1]
        ``(R - L) / (R + L)`` about the midline; 0 for an empty map.
    empty : (N,) bool
        The map is all zero (no positive evidence anywhere).
    flags : dict pattern -> (N,) bool
        Per-map flags (``uniform`` includes empty maps).
    thresholds : dict
    """

    corner_energy: np.ndarray
    peak_in_corner: np.ndarray
    flatness: np.ndarray
    outside_roi: np.ndarray
    side_balance: np.ndarray
    empty: np.ndarray
    flags: dict[str, np.ndarray]
    thresholds: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.corner_energy)

    def summary(self) -> dict:
        """Summary of the set.

        Returns
        -------
        dict with
            ``n`` : number of maps;
            ``fraction_flagged`` : pattern -> share of maps flagged;
            ``mean`` : mean of each measure (``outside_roi`` NaN without an ROI);
            ``side_bias`` : mean signed balance over the non-empty maps;
            ``found`` : pattern -> bool, whether the set shows the pattern (``set_fraction``
            rule; for one_side the ``side_bias_threshold`` rule);
            ``patterns`` : the found pattern names, in ``PATTERNS`` order;
            ``suspicious`` : any pattern found;
            ``verdict`` : one line in Japanese for the lesson.
        """
        t = self.thresholds
        n = len(self)
        fraction = {p: float(self.flags[p].mean()) if n else 0.0 for p in PATTERNS}
        has_roi = bool(n) and not np.all(np.isnan(self.outside_roi))
        lit = ~self.empty
        side_bias = float(self.side_balance[lit].mean()) if lit.any() else 0.0
        found = {
            "corner": fraction["corner"] >= t["set_fraction"],
            "uniform": fraction["uniform"] >= t["set_fraction"],
            "outside_roi": has_roi and fraction["outside_roi"] >= t["set_fraction"],
            "one_side": abs(side_bias) >= t["side_bias_threshold"],
        }
        patterns = [p for p in PATTERNS if found[p]]
        mean = {
            "corner_energy": float(self.corner_energy.mean()) if n else float("nan"),
            "flatness": float(self.flatness.mean()) if n else float("nan"),
            "outside_roi": float(np.nanmean(self.outside_roi)) if has_roi else float("nan"),
            "side_balance": float(self.side_balance.mean()) if n else float("nan"),
        }
        if patterns:
            details = []
            for p in patterns:
                if p == "one_side":
                    where = "右" if side_bias > 0 else "左"
                    details.append(f"{_LABELS_JA[p]}（平均して画像の{where}側, 偏り {side_bias:+.2f}）")
                else:
                    details.append(f"{_LABELS_JA[p]}（{fraction[p]:.0%} の画像）")
            verdict = "ショートカット学習の疑いあり: " + "; ".join(details)
        else:
            verdict = "ショートカット学習のパターンは見つかりませんでした"
        return {"n": n, "fraction_flagged": fraction, "mean": mean, "side_bias": side_bias,
                "found": found, "patterns": patterns, "suspicious": bool(patterns),
                "verdict": verdict}

    def __repr__(self) -> str:
        s = self.summary()
        flagged = ", ".join(f"{p}={s['fraction_flagged'][p]:.0%}" for p in PATTERNS)
        return f"Diagnosis(n={s['n']}, flagged: {flagged}; {s['verdict']})"


def corner_mask(shape: tuple[int, int], corner_size: float = 0.2) -> np.ndarray:
    """(H, W) bool: the four corner squares, each ``corner_size`` of the height by
    ``corner_size`` of the width (at least one pixel)."""
    if not 0 < corner_size <= 0.5:
        raise ValueError(f"corner_size must be in (0, 0.5]; got {corner_size}")
    h, w = shape
    ch, cw = max(1, round(corner_size * h)), max(1, round(corner_size * w))
    rows = np.zeros(h, dtype=bool)
    cols = np.zeros(w, dtype=bool)
    rows[:ch] = rows[h - ch:] = True
    cols[:cw] = cols[w - cw:] = True
    return rows[:, None] & cols[None, :]


def diagnose_maps(maps: np.ndarray, roi: np.ndarray | None = None, *,
                  midline: float | np.ndarray | None = None,
                  corner_size: float = DEFAULT_THRESHOLDS["corner_size"],
                  corner_threshold: float = DEFAULT_THRESHOLDS["corner_threshold"],
                  uniform_threshold: float = DEFAULT_THRESHOLDS["uniform_threshold"],
                  outside_threshold: float = DEFAULT_THRESHOLDS["outside_threshold"],
                  side_threshold: float = DEFAULT_THRESHOLDS["side_threshold"],
                  set_fraction: float = DEFAULT_THRESHOLDS["set_fraction"],
                  side_bias_threshold: float = DEFAULT_THRESHOLDS["side_bias_threshold"],
                  ) -> Diagnosis:
    """Measure the four shortcut patterns on each map of a set.

    Parameters
    ----------
    maps : (N, H, W) or (H, W) float, non-negative
        Saliency maps at image resolution (their scale does not matter: every measure is a ratio).
    roi : (N, H, W) or (H, W) bool, optional
        Region where attention belongs (e.g. ``XrayData.lung_masks``). Without it
        ``outside_roi`` is NaN and never flagged.
    midline : float or (N,) floats, optional
        Column (in pixels, 0 = left edge) that splits left from right; default the image centre
        ``W / 2``. Pixel ``x`` counts as left when its centre ``x + 0.5`` is left of the midline.
    corner_size, corner_threshold, uniform_threshold, outside_threshold, side_threshold
        Per-map thresholds (see ``DEFAULT_THRESHOLDS`` for what each means and why).
    set_fraction, side_bias_threshold
        Rules for the set summary (:meth:`Diagnosis.summary`).

    Returns
    -------
    Diagnosis
        Per-map numbers and flags; ``.summary()`` for the set.

    Examples
    --------
    >>> d = diagnose_maps(res.maps, roi=test.lung_masks)   # doctest: +SKIP
    >>> d.summary()["verdict"]                             # doctest: +SKIP
    """
    maps = check_maps(maps, nonnegative=True)
    n, h, w = maps.shape
    for name, value in (("corner_threshold", corner_threshold),
                        ("uniform_threshold", uniform_threshold),
                        ("outside_threshold", outside_threshold),
                        ("side_threshold", side_threshold), ("set_fraction", set_fraction),
                        ("side_bias_threshold", side_bias_threshold)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1]; got {value}")
    thresholds = dict(corner_size=corner_size, corner_threshold=corner_threshold,
                      uniform_threshold=uniform_threshold, outside_threshold=outside_threshold,
                      side_threshold=side_threshold, set_fraction=set_fraction,
                      side_bias_threshold=side_bias_threshold)

    total = maps.sum(axis=(1, 2))
    peak = maps.max(axis=(1, 2)) if n else np.zeros(0)
    empty = peak <= 0
    safe_total = np.where(empty, 1.0, total)

    corners = corner_mask((h, w), corner_size)
    corner_energy = np.where(empty, 0.0, (maps * corners).sum(axis=(1, 2)) / safe_total)
    # every pixel at the maximum must be in a corner (a flat map has its "maximum" everywhere)
    at_peak = maps >= peak[:, None, None] * (1 - 1e-6)
    peak_in_corner = ~empty & ~(at_peak & ~corners).any(axis=(1, 2))
    flatness = np.where(empty, 1.0, maps.mean(axis=(1, 2)) / np.where(empty, 1.0, peak))

    if roi is None:
        outside = np.full(n, np.nan)
    else:
        roi = np.asarray(roi)
        if roi.dtype != bool:
            if not np.isin(roi, (0, 1)).all():
                raise ValueError("roi must be a boolean mask (or 0/1 values)")
            roi = roi.astype(bool)
        if roi.ndim == 2:
            roi = np.broadcast_to(roi, maps.shape)
        if roi.shape != maps.shape:
            raise ValueError(f"roi {roi.shape} and maps {maps.shape} differ in shape; pass one "
                             "(H, W) mask or one mask per map at the maps' resolution")
        outside = np.where(empty, 0.0, (maps * ~roi).sum(axis=(1, 2)) / safe_total)

    centres = np.arange(w) + 0.5
    mid = np.full(n, w / 2.0) if midline is None else np.broadcast_to(
        np.asarray(midline, dtype=np.float64), (n,))
    column_mass = maps.sum(axis=1)                           # (N, W)
    left = (column_mass * (centres[None, :] < mid[:, None])).sum(axis=1)
    right = (column_mass * (centres[None, :] > mid[:, None])).sum(axis=1)
    both = left + right
    side_balance = np.divide(right - left, both, out=np.zeros(n), where=both > 0)

    uniform = empty | (flatness >= uniform_threshold)
    flags = {
        # the maximum of a near-flat map says nothing about where it looks
        "corner": ~empty & ((corner_energy >= corner_threshold) | (peak_in_corner & ~uniform)),
        "uniform": uniform,
        "outside_roi": ~empty & ~np.isnan(outside) & (np.nan_to_num(outside) >= outside_threshold),
        "one_side": ~empty & (np.abs(side_balance) >= side_threshold),
    }
    return Diagnosis(corner_energy=corner_energy.astype(np.float64),
                     peak_in_corner=peak_in_corner, flatness=flatness,
                     outside_roi=outside, side_balance=side_balance, empty=empty, flags=flags,
                     thresholds=thresholds)
