"""Synthetic chest radiographs with ground-truth masks, deterministic by seed.

No chest X-ray training set can be downloaded offline, so :func:`make_xrays` draws one: a body
outline, two lung fields, ribs, spine, clavicles, heart shadow and diaphragm, with contrast, noise
and positioning that vary between "patients". PNEUMONIA images carry one to three opacities of
varied size, position and density inside the lung fields. Every image comes with its lung and
lesion masks, so saliency maps can be scored against ground truth. An optional "AP" tag (a
bright text-like stamp in a corner, as portable machines print) can be burned in, correlated with
the label at a chosen rate: the shortcut a model can learn instead of the lungs. Instead of a tag
the cue can be a property of the whole image: the fine lines that an anti-scatter grid leaves on
the radiographs of some machines (``shortcut="grid"``).
"""
from __future__ import annotations

import numpy as np

from .dataset import XrayData

TAG_MODES = ("correlated", "removed", "flipped")
#: The kinds of shortcut cue: a local "tag" (where ``tag_corner`` says) or "grid" lines over the
#: whole frame.
SHORTCUTS = ("tag", "grid")
#: Period of the grid lines in pixels (two bright columns, two plain ones).
GRID_PERIOD = 4
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
#: Where a tag can go: a corner, a random corner, or "abdomen" — below the lungs, in the middle
#: band of the image (outside the lungs, away from the corners and from either side).
TAG_PLACES = CORNERS + ("random", "abdomen")
LESION_SIDES = ("left", "right")

# 3×5 bitmaps for the few letters a tag needs (1 = bright stroke).
_GLYPHS = {
    "A": ["010", "101", "111", "101", "101"],
    "P": ["110", "101", "110", "100", "100"],
    "L": ["100", "100", "100", "100", "111"],
    "R": ["110", "101", "110", "101", "101"],
    "X": ["101", "101", "010", "101", "101"],
    "1": ["010", "110", "010", "010", "111"],
    "2": ["110", "001", "010", "100", "111"],
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field in about [-1, 1]: a ``cells × cells`` grid upsampled bilinearly."""
    coarse = rng.standard_normal((cells + 1, cells + 1))
    t = np.linspace(0, cells, size)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def tag_bitmap(text: str = "AP", scale: int = 1) -> np.ndarray:
    """The tag as a bool array: bright letters (``True``) on a dark box with a one-pixel margin.

    Letters available: ``A P L R X 1 2``.
    """
    unknown = sorted(set(text) - set(_GLYPHS))
    if not text or unknown:
        raise ValueError(f"tag text {text!r} uses letters without a glyph {unknown}; "
                         f"use letters from {''.join(sorted(_GLYPHS))}")
    rows = []
    for r in range(5):
        rows.append("0" + "0".join(_GLYPHS[ch][r] for ch in text) + "0")
    body = np.array([[c == "1" for c in row] for row in rows], dtype=bool)
    pad = np.zeros((1, body.shape[1]), dtype=bool)
    bitmap = np.vstack([pad, body, pad])
    return np.kron(bitmap, np.ones((scale, scale), dtype=bool)).astype(bool)


def _tag_position(rng: np.random.Generator, size: int, shape: tuple[int, int],
                  corner: str) -> tuple[int, int]:
    th, tw = shape
    margin = max(1, round(0.03 * size))
    jitter = max(1, round(0.02 * size))
    y = margin + int(rng.integers(0, jitter + 1))
    x = margin + int(rng.integers(0, jitter + 1))
    if corner.startswith("bottom"):
        y = size - th - y
    if corner.endswith("right"):
        x = size - tw - x
    return y, x


def _abdomen_position(rng: np.random.Generator, size: int, shape: tuple[int, int],
                      lung_mask: np.ndarray) -> tuple[int, int]:
    """Top-left pixel of a tag below the lowest lung pixel, in the middle 40 % of the width."""
    th, tw = shape
    margin = max(1, round(0.03 * size))
    rows = np.flatnonzero(lung_mask.any(axis=1))
    top = (int(rows.max()) + 2) if len(rows) else size // 2
    bottom = size - th - margin
    y = int(rng.integers(min(top, bottom), bottom + 1))
    left, right = round(0.3 * size), round(0.7 * size) - tw
    x = int(rng.integers(left, max(left, right) + 1))
    return y, x


def burn_tag(image: np.ndarray, corner: str = "top-left", text: str = "AP",
             rng: np.random.Generator | None = None, *,
             lung_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Burn a text tag into one ``(H, W)`` image in [0, 1]; returns ``(new_image, tag_mask)``.

    The tag is a dark box with bright letters (``tag_bitmap``), about a fifth of the image wide,
    placed a few pixels (with a small random jitter) from ``corner``: one of ``CORNERS`` or
    ``"random"``; or, with ``corner="abdomen"`` and the image's ``lung_mask`` ``(H, W)`` bool,
    at a random place below the lungs in the middle 40 % of the width (outside the lungs and the
    corner squares, on neither side). The input image is not modified.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    image = np.array(image, dtype=np.float32, copy=True)
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise ValueError(f"burn_tag expects one square (H, W) image; got {image.shape}")
    size = image.shape[0]
    if corner == "random":
        corner = CORNERS[int(rng.integers(len(CORNERS)))]
    if corner not in CORNERS + ("abdomen",):
        raise ValueError(f"corner must be one of {TAG_PLACES}; got {corner!r}")
    if corner == "abdomen" and (lung_mask is None or np.shape(lung_mask) != image.shape):
        raise ValueError("corner='abdomen' needs the image's lung_mask (H, W) to find the lungs' "
                         "lower edge")
    bitmap = tag_bitmap(text, scale=max(1, size // 64))
    th, tw = bitmap.shape
    if th > size // 3 or tw > size // 2:
        raise ValueError(f"the tag {text!r} ({th}×{tw} px) does not fit a {size} px corner; "
                         "use a shorter text or larger images")
    if corner == "abdomen":
        y, x = _abdomen_position(rng, size, (th, tw), np.asarray(lung_mask, dtype=bool))
    else:
        y, x = _tag_position(rng, size, (th, tw), corner)
    image[y:y + th, x:x + tw] = np.where(bitmap, 0.97, 0.04)
    mask = np.zeros(image.shape, dtype=bool)
    mask[y:y + th, x:x + tw] = True
    return image, mask


def grid_lines(image: np.ndarray, contrast: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Add anti-scatter grid lines to one ``(H, W)`` image in [0, 1]; returns ``(new_image, mask)``.

    Vertical lines ``GRID_PERIOD`` pixels apart (two columns brightened by ``contrast``, two
    left as they were) over the whole frame, clipped to [0, 1]: a cue that is the same everywhere
    in the image, unlike a tag. ``mask`` (H, W) bool is all True (the cue is everywhere). The
    input image is not modified.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"grid_lines expects one (H, W) image; got {image.shape}")
    if not 0 < contrast <= 1:
        raise ValueError(f"grid contrast must be in (0, 1]; got {contrast}")
    columns = (np.arange(image.shape[1]) % GRID_PERIOD) < GRID_PERIOD // 2
    lined = np.clip(image + np.float32(contrast) * columns[None, :], 0, 1).astype(np.float32)
    return lined, np.ones(image.shape, dtype=bool)


def _draw_patient(rng: np.random.Generator, size: int, zoom: tuple[float, float],
                  shading: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """One normal chest: (image before noise, lung mask, geometry for the lesion drawer)."""
    t = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(t, t, indexing="ij")
    px = 1.0 / size  # one pixel in normalised units (soft edges stay ~1 px wide)

    # positioning: shift, scale, small rotation
    cx = 0.5 + rng.normal(0, 0.02)
    cy = 0.5 + rng.normal(0, 0.015)
    s = rng.uniform(*zoom)
    a = np.deg2rad(rng.normal(0, 2.0))
    u, v = (xx - cx) / s, (yy - cy) / s
    X = np.cos(a) * u + np.sin(a) * v            # 0 at the body's midline
    Y = -np.sin(a) * u + np.cos(a) * v + 0.5     # 0 top, 1 bottom

    edge = 1.5 * px / s
    # body: a superellipse that runs off the top and bottom, shoulders slope at the top
    bw = rng.uniform(0.46, 0.50)
    shoulder = np.clip(0.16 - Y, 0, None) * 1.6
    body_d = (np.abs(X) / (bw - shoulder + 1e-6)) ** 2.6 + np.abs((Y - 0.6) / 0.75) ** 4
    body = _sigmoid((1 - body_d) / (edge * 6))

    # lungs: tapering ellipses with a diaphragm dome at the bottom
    lung_soft = np.zeros_like(X)
    lung_mask = np.zeros(X.shape, dtype=bool)
    ly = rng.uniform(0.46, 0.50)
    lh = rng.uniform(0.31, 0.35)
    # heart: a tilted ellipse low in the chest, bulging to the patient's left (image right)
    heart_x = rng.uniform(0.05, 0.08)
    heart_y = ly + lh * rng.uniform(0.50, 0.60)
    heart_rx, heart_ry = rng.uniform(0.14, 0.17), rng.uniform(0.11, 0.13)
    tilt = np.deg2rad(rng.uniform(15, 30))
    hu, hv = X - heart_x, Y - heart_y
    heart_d = ((np.cos(tilt) * hu + np.sin(tilt) * hv) / heart_rx) ** 2 \
        + ((-np.sin(tilt) * hu + np.cos(tilt) * hv) / heart_ry) ** 2
    heart = _sigmoid((1 - heart_d) / (edge * 8))
    for side in (-1, 1):
        lx = side * rng.uniform(0.235, 0.255)
        lw = rng.uniform(0.175, 0.195)
        top = ly - lh
        taper = 0.6 + 0.4 * np.clip((Y - top) / (0.9 * lh), 0, 1)
        d = ((X - lx) / (lw * taper)) ** 2 + ((Y - ly) / lh) ** 2
        dome_base = ly + lh * (0.78 if side < 0 else 0.83)   # patient's right (image left) higher
        dome = dome_base - 0.07 * np.clip(1 - ((X - lx) / (1.2 * lw)) ** 2, 0, None)
        inside = np.minimum((1 - d) / (edge * 6), (dome - Y) / edge)
        one = _sigmoid(inside)
        lung_soft = np.maximum(lung_soft, one)
        lung_mask |= inside > 0
    lung_mask &= heart < 0.5
    lung_soft = lung_soft * (1 - heart)

    # bones: spine with vertebrae, ribs, clavicles
    spine = _sigmoid((0.035 - np.abs(X)) / edge) * (0.8 + 0.2 * np.cos(2 * np.pi * Y / 0.055))
    ribs = np.zeros_like(X)
    first, gap = rng.uniform(0.16, 0.19), rng.uniform(0.052, 0.060)
    thick = max(0.011, 0.7 * px)
    for k in range(10):
        # posterior ribs: leave the spine, run laterally and curve down towards the chest wall
        centre = first + k * gap - 0.03 + 1.6 * (np.abs(X) - 0.10) ** 2
        ribs += np.exp(-(((Y - centre) / thick) ** 2)) * (np.abs(X) > 0.04)
    ribs = np.clip(ribs, 0, 1) * _sigmoid((bw - 0.03 - np.abs(X)) / edge)
    ribs = ribs * (0.35 + 0.65 * lung_soft)            # seen best against the dark lungs
    clav_y = 0.15 + rng.uniform(-0.01, 0.01) + 0.35 * (np.abs(X) - 0.18) ** 2
    clavicles = np.exp(-(((Y - clav_y) / max(0.014, px)) ** 2)) * (np.abs(X) > 0.05) \
        * (np.abs(X) < 0.34)

    # vessel markings fan out from the hila, fading to the periphery
    vessels = _smooth_noise(rng, size, max(4, size // 8))
    hilum = np.exp(-(((np.abs(X) - 0.10) / 0.12) ** 2 + ((Y - ly) / 0.15) ** 2))

    tissue = rng.uniform(0.40, 0.48)
    img = 0.03 + body * tissue
    img += 0.12 * _sigmoid((0.06 - np.abs(X)) / edge) * body                    # mediastinum
    img += 0.10 * heart * body
    img += 0.06 * _sigmoid((Y - (ly + lh * 0.8)) / (edge * 4)) * body             # abdomen
    img -= lung_soft * rng.uniform(0.24, 0.30)
    img += lung_soft * (0.025 * vessels * hilum + 0.03 * hilum)
    if shading:  # benign, smooth brightness changes over the lungs (soft tissue, exposure)
        img += shading * lung_soft * _smooth_noise(rng, size, 2)
    img += body * (0.12 * spine + rng.uniform(0.06, 0.09) * ribs + 0.10 * clavicles)
    geo = {"X": X, "Y": Y, "lung_soft": lung_soft, "scale": s}
    return img, lung_mask, geo


def _draw_lesions(rng: np.random.Generator, img: np.ndarray, lung_mask: np.ndarray, geo: dict,
                  size_range: tuple[float, float], density_range: tuple[float, float],
                  max_lesions: int, margin: float = 0.0, mottling: float = 0.0,
                  bronchograms: float = 0.0, side: str | None = None) -> np.ndarray:
    """Add 1..max_lesions opacities inside the lungs (in place); returns the lesion mask.
    ``side`` ("left"/"right" of the image) keeps every opacity's centre in that lung."""
    X, Y, lung_soft = geo["X"], geo["Y"], geo["lung_soft"]
    size = img.shape[0]
    lesion_mask = np.zeros(img.shape, dtype=bool)
    weights = np.array([0.6, 0.3, 0.1][:max_lesions])
    count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(lung_mask)   # pixels to the lung's edge
    if side is not None:
        depth = depth * ((X < 0) if side == "left" else (X > 0))
    texture = _smooth_noise(rng, size, max(3, size // 10))
    for _ in range(count):
        r = rng.uniform(*size_range)
        # the centre lies at least margin × radius inside the lung (so the opacity stays in it)
        need = max(1.0, margin * r * size * geo["scale"])
        candidates = np.flatnonzero(depth >= min(need, depth.max()))
        centre = candidates[int(rng.integers(len(candidates)))]
        cy, cx = divmod(centre, size)
        ratio = rng.uniform(0.7, 1.4)
        theta = rng.uniform(0, np.pi)
        x0, y0 = X[cy, cx], Y[cy, cx]
        du, dv = X - x0, Y - y0
        p = np.cos(theta) * du + np.sin(theta) * dv
        q = -np.sin(theta) * du + np.cos(theta) * dv
        dist = np.sqrt((p / (r * ratio)) ** 2 + (q * ratio / r) ** 2)
        dist = dist * (1 + 0.25 * texture)          # ragged outline
        profile = _sigmoid((1 - dist) / 0.12)
        density = rng.uniform(*density_range)
        # consolidation is patchy: fluffy blotches a few pixels across, and air bronchograms
        # (the air-filled bronchi stay dark inside the white lung) running towards the hilum
        blotches = _smooth_noise(rng, size, max(4, size // 5))
        patchy = np.clip(1 + mottling * blotches, 0.2, None)
        towards_hilum = np.arctan2(-(y0 - 0.45), -x0) + rng.normal(0, 0.3, size=2)
        tubes = np.zeros_like(X)
        for angle in towards_hilum:
            along = np.cos(angle) * du + np.sin(angle) * dv
            across = -np.sin(angle) * du + np.cos(angle) * dv
            tubes = np.maximum(tubes, np.exp(-(across / (0.7 / size)) ** 2) * (along > -0.3 * r))
        opacity = density * profile * lung_soft * patchy * (1 - bronchograms * tubes)
        img += opacity
        lesion_mask |= (profile > 0.5) & lung_mask
    return lesion_mask


def _draw_objects(rng: np.random.Generator, img: np.ndarray, lung_mask: np.ndarray, geo: dict,
                  count_range: tuple[int, int], size_range: tuple[float, float],
                  density_range: tuple[float, float]) -> None:
    """Benign things outside the lungs, in NORMAL and PNEUMONIA images alike (in place): soft
    blobs as dense as an opacity (soft tissue, overlapping shadows) and small bright discs (ECG
    electrodes, buttons). A model must tell *where* a density is, not only that there is one."""
    from scipy import ndimage

    X, Y = geo["X"], geo["Y"]
    size = img.shape[0]
    body = img > 0.15
    gap = ndimage.distance_transform_edt(~lung_mask)   # pixels to the nearest lung pixel
    for _ in range(int(rng.integers(count_range[0], count_range[1] + 1))):
        blob = rng.random() < 0.5
        r = rng.uniform(*size_range) if blob else rng.uniform(0.025, 0.04)
        # a blob is cut off at the lung's edge; a disc keeps its whole outline off the lungs
        need = 0.03 * size if blob else r * size * geo["scale"] * 1.4 + 2
        candidates = np.flatnonzero(body & (gap >= need))
        if not len(candidates):
            continue
        cy, cx = divmod(candidates[int(rng.integers(len(candidates)))], size)
        dist = np.hypot(X - X[cy, cx], Y - Y[cy, cx])
        if blob:   # a soft density as dense as an opacity
            img += rng.uniform(*density_range) * _sigmoid((1 - dist / r) / 0.12) * ~lung_mask
        else:      # an electrode: a bright disc with a darker centre
            disc = _sigmoid((1 - dist / r) / 0.1)
            img += rng.uniform(0.25, 0.45) * disc * (1 - 0.5 * _sigmoid((0.5 - dist / r) / 0.1))


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Exposure, contrast and noise of one 'patient', then clip to [0, 1]."""
    from scipy import ndimage

    size = img.shape[0]
    gy, gx = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    img = img + rng.normal(0, 0.025) * gx + rng.normal(0, 0.025) * gy
    img = np.clip(img, 0, None) ** rng.uniform(0.85, 1.2)
    img = img * rng.uniform(0.85, 1.15) + rng.uniform(-0.04, 0.04)
    img = ndimage.gaussian_filter(img, sigma=0.5 * size / 64)
    img = img + rng.normal(0, rng.uniform(0.008, 0.025), img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def make_xrays(n: int = 1000, size: int = 128, *, seed: int = 0, pneumonia_fraction: float = 0.5,
               shortcut_rate: float | None = None, tag_mode: str = "correlated",
               tag_corner: str = "top-left", tag_text: str = "AP",
               shortcut: str = "tag", grid_contrast: float = 0.04,
               lesion_side: str | None = None,
               lesion_size: tuple[float, float] = (0.08, 0.16),
               lesion_density: tuple[float, float] = (0.10, 0.28),
               max_lesions: int = 3, lesion_margin: float = 0.8, mottling: float = 0.6,
               bronchograms: float = 0.7, objects: tuple[int, int] = (1, 3),
               lung_shading: float = 0.1, zoom: tuple[float, float] = (1.15, 1.25)) -> XrayData:
    """Draw ``n`` synthetic chest X-rays, deterministic by ``seed``.

    Image ``i`` depends only on ``(seed, i)`` and its label, so the same seed with a different
    ``tag_mode`` gives the very same patients with the tag removed or moved to the other class:
    any change in a model's answers comes from the tag alone.

    Parameters
    ----------
    n : int
        Number of images. Labels are balanced exactly (``round(n * pneumonia_fraction)``
        PNEUMONIA images) and shuffled.
    size : int
        Height and width in pixels (the lessons use 64; anything from 32 up works).
    seed : int
    pneumonia_fraction : float in [0, 1]
    shortcut_rate : float in [0, 1] or None
        None: no tag anywhere. Otherwise the chance that a PNEUMONIA image carries the tag; a
        NORMAL image carries it with chance ``1 - shortcut_rate`` (0.9: 90 % of PNEUMONIA and
        10 % of NORMAL images are tagged; 0.5: the tag says nothing about the label).
    tag_mode : {"correlated", "removed", "flipped"}
        "correlated" as above; "removed": the same patients without any tag; "flipped": the tag
        goes with the other class at the same rate (NORMAL images tagged with chance
        ``shortcut_rate``).
    tag_corner : one of ``CORNERS``, "random" or "abdomen"
        Where the tag goes: a corner, a random corner per image, or "abdomen": a random place
        below the lungs in the middle of the width (outside the lungs, not in a corner, on
        neither side — the shortcut that only an "outside the ROI" check catches).
    tag_text : str
        Letters of the tag (see :func:`tag_bitmap`).
    shortcut : {"tag", "grid"}
        The cue that ``shortcut_rate`` and ``tag_mode`` put on images: "tag" the stamp above;
        "grid" the vertical lines of an anti-scatter grid over the whole frame (see
        :func:`grid_lines`; as if one class were imaged mostly on one machine), a cue that is
        the same everywhere. ``has_tag`` then says which images carry the lines and
        ``tag_masks`` is the whole frame for them.
    grid_contrast : float in (0, 1]
        How much the grid lines brighten their columns (image units; the lungs are about 0.2).
    lesion_side : {"left", "right"} or None
        Put every opacity in the lung on that side of the image (None: either lung). A data set
        whose lesions are always on one side.
    lesion_size : (min, max)
        Opacity radius as a fraction of the image width.
    lesion_density : (min, max)
        How much an opacity brightens the lung (image units, the lungs are about 0.2).
    max_lesions : int in 1..3
        PNEUMONIA images carry 1 (60 %), 2 (30 %) or 3 (10 %) opacities, up to this many.
    lesion_margin : float
        An opacity's centre lies at least ``lesion_margin`` × its radius inside the lung (as far
        as the lung's width allows), so most of it shows inside the lung field.
    mottling : float
        How patchy an opacity is: its density varies by about ± this fraction in blotches a few
        pixels across (0: a smooth haze).
    bronchograms : float
        Darkness of the air bronchograms inside an opacity (air-filled bronchi that stay dark in
        the white lung, running towards the hilum; 0: none). Patchiness and bronchograms are the
        opacity's own texture: no other structure in the image has them.
    objects : (min, max)
        Benign densities outside the lungs in every image, NORMAL or not (soft-tissue blobs as
        dense as an opacity, ECG electrodes): a model has to learn *where* a density is.
    lung_shading : float
        Amplitude of smooth, benign brightness changes over the lungs (soft tissue, exposure), so
        that "the lung is brighter overall" is no cue.
    zoom : (min, max)
        Patient size in the frame; about 1.2 crops to the thorax like common chest X-ray sets
        (the lungs cover about 40 % of the image).

    Returns
    -------
    XrayData
        ``images`` (n, 1, size, size) float32 in [0, 1]; ``labels`` 0/1; ``lung_masks``,
        ``lesion_masks``, ``tag_masks`` (n, size, size) bool; ``has_tag`` (n,) bool.

    Examples
    --------
    >>> train = make_xrays(800, 64, seed=0, shortcut_rate=0.9)
    >>> same_patients_no_tag = make_xrays(800, 64, seed=0, shortcut_rate=0.9, tag_mode="removed")
    """
    if n < 0 or size < 32:
        raise ValueError(f"need n >= 0 and size >= 32; got n={n}, size={size}")
    if not 0 <= pneumonia_fraction <= 1:
        raise ValueError(f"pneumonia_fraction must be in [0, 1]; got {pneumonia_fraction}")
    if shortcut_rate is not None and not 0 <= shortcut_rate <= 1:
        raise ValueError(f"shortcut_rate must be in [0, 1] or None; got {shortcut_rate}")
    if tag_mode not in TAG_MODES:
        raise ValueError(f"tag_mode must be one of {TAG_MODES}; got {tag_mode!r}")
    if tag_corner not in TAG_PLACES:
        raise ValueError(f"tag_corner must be one of {TAG_PLACES}; got {tag_corner!r}")
    if lesion_side is not None and lesion_side not in LESION_SIDES:
        raise ValueError(f"lesion_side must be one of {LESION_SIDES} or None; got {lesion_side!r}")
    if not 1 <= max_lesions <= 3:
        raise ValueError(f"max_lesions must be 1, 2 or 3; got {max_lesions}")
    if not 0 <= objects[0] <= objects[1]:
        raise ValueError(f"objects must be (min, max) counts with 0 <= min <= max; got {objects}")
    if shortcut not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {SHORTCUTS}; got {shortcut!r}")
    if not 0 < grid_contrast <= 1:
        raise ValueError(f"grid_contrast must be in (0, 1]; got {grid_contrast}")
    tag_bitmap(tag_text)  # validate the letters early

    n_pos = int(round(n * pneumonia_fraction))
    labels = np.zeros(n, dtype=np.int64)
    labels[:n_pos] = 1
    np.random.default_rng([seed, 7919]).shuffle(labels)

    images = np.zeros((n, 1, size, size), dtype=np.float32)
    lungs = np.zeros((n, size, size), dtype=bool)
    lesions = np.zeros((n, size, size), dtype=bool)
    tags = np.zeros((n, size, size), dtype=bool)
    has_tag = np.zeros(n, dtype=bool)
    for i in range(n):
        anatomy, lesion_rng, noise_rng, tag_rng = (
            np.random.default_rng([seed, i, k]) for k in range(4))
        img, lung_mask, geo = _draw_patient(anatomy, size, zoom, lung_shading)
        if labels[i] == 1:
            lesions[i] = _draw_lesions(lesion_rng, img, lung_mask, geo, lesion_size,
                                       lesion_density, max_lesions, lesion_margin, mottling,
                                       bronchograms, lesion_side)
        if objects[1] > 0:
            _draw_objects(np.random.default_rng([seed, i, 4]), img, lung_mask, geo, objects,
                          lesion_size, lesion_density)
        img = _finish(noise_rng, img)
        if shortcut_rate is not None and tag_mode != "removed":
            with_label = shortcut_rate if (labels[i] == 1) == (tag_mode == "correlated") \
                else 1 - shortcut_rate
            has_tag[i] = tag_rng.random() < with_label
            if has_tag[i] and shortcut == "grid":
                img, tags[i] = grid_lines(img, grid_contrast)
            elif has_tag[i]:
                img, tags[i] = burn_tag(img, tag_corner, tag_text, tag_rng, lung_mask=lung_mask)
        images[i, 0] = img
        lungs[i] = lung_mask
    info = dict(generator="make_xrays", n=n, size=size, seed=seed,
                pneumonia_fraction=pneumonia_fraction, shortcut_rate=shortcut_rate,
                tag_mode=tag_mode, tag_corner=tag_corner, tag_text=tag_text,
                shortcut=shortcut, grid_contrast=grid_contrast,
                lesion_side=lesion_side,
                lesion_size=tuple(lesion_size), lesion_density=tuple(lesion_density),
                max_lesions=max_lesions, lesion_margin=lesion_margin, mottling=mottling,
                bronchograms=bronchograms, objects=tuple(objects),
                lung_shading=lung_shading, zoom=tuple(zoom))
    return XrayData(images=images, labels=labels, lung_masks=lungs, lesion_masks=lesions,
                    has_tag=has_tag if shortcut_rate is not None else np.zeros(n, dtype=bool),
                    tag_masks=tags, source="synthetic", info=info)
