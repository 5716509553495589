"""Chest X-ray data for lessons 06–07: synthetic radiographs with ground-truth masks, and loaders
for the real formats (Kaggle folder layout, MedMNIST ``.npz``, DICOM).

No chest X-ray training set can be downloaded offline, so :func:`make_xrays` draws one: a body
outline, two lung fields, ribs, spine, clavicles, heart shadow and diaphragm, with contrast, noise
and positioning that vary between "patients". PNEUMONIA images carry one to three opacities of
varied size, position and density inside the lung fields. Every image comes with its lung and
lesion masks, so saliency maps can be scored against ground truth. An optional "AP" tag (a
bright text-like stamp in a corner, as portable machines print) can be burned in, correlated with
the label at a chosen rate: the shortcut a model can learn instead of the lungs.

Conventions
-----------
* Images are ``(N, 1, H, W)`` float32 in [0, 1] (channels first, ready for PyTorch); bright means
  dense (bone, tissue, opacity), dark means air, as on a displayed radiograph.
  ``XrayData.images_hw`` gives the ``(N, H, W)`` view, ``XrayData.images_nhwc`` the Keras layout.
* Labels are int64: 0 = NORMAL, 1 = PNEUMONIA (``CLASS_NAMES``), the order of the Kaggle
  folders and of MedMNIST's PneumoniaMNIST.
* Masks are ``(N, H, W)`` bool. Real data has no masks: those fields are ``None``.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

CLASS_NAMES: tuple[str, str] = ("NORMAL", "PNEUMONIA")
TAG_MODES = ("correlated", "removed", "flipped")
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class XrayData:
    """A set of chest X-rays with labels and, for synthetic data, ground truth.

    Attributes
    ----------
    images : (N, 1, H, W) float32 in [0, 1]
    labels : (N,) int64, 0 = NORMAL, 1 = PNEUMONIA
    lung_masks : (N, H, W) bool or None
        Both lung fields (the heart shadow and everything below the diaphragm excluded).
    lesion_masks : (N, H, W) bool or None
        The opacities (all False for NORMAL images).
    has_tag : (N,) bool or None
        Whether the shortcut tag was burned into the image.
    tag_masks : (N, H, W) bool or None
        Where the tag is (all False where there is none).
    class_names : ("NORMAL", "PNEUMONIA")
    source : str
        "synthetic", "kaggle", "medmnist" or "dicom".
    info : dict
        How the set was made (generator settings, paths), for the record.
    """

    images: np.ndarray
    labels: np.ndarray
    lung_masks: np.ndarray | None = None
    lesion_masks: np.ndarray | None = None
    has_tag: np.ndarray | None = None
    tag_masks: np.ndarray | None = None
    class_names: tuple[str, ...] = CLASS_NAMES
    source: str = "synthetic"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be (N, 1, H, W); got {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return tuple(self.images.shape[2:])

    @property
    def images_hw(self) -> np.ndarray:
        """(N, H, W) view of the images (for plotting and metrics)."""
        return self.images[:, 0]

    @property
    def images_nhwc(self) -> np.ndarray:
        """(N, H, W, 1) view of the images (the Keras layout)."""
        return self.images.transpose(0, 2, 3, 1)

    def subset(self, index: Sequence[int] | np.ndarray) -> "XrayData":
        """The images at ``index`` (integers or a boolean mask), with their masks and labels."""
        index = np.asarray(index)
        pick = (lambda a: None if a is None else a[index])
        return replace(self, images=self.images[index], labels=self.labels[index],
                       lung_masks=pick(self.lung_masks), lesion_masks=pick(self.lesion_masks),
                       has_tag=pick(self.has_tag), tag_masks=pick(self.tag_masks))

    def fingerprint(self) -> str:
        """A short hash of images and labels: part of a cached model's key, so a model is retrained
        whenever its training data changes."""
        digest = hashlib.sha256()
        digest.update(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        parts = ", ".join(f"{name}={c}" for name, c in zip(self.class_names, counts))
        tag = "" if self.has_tag is None else f", tagged={int(self.has_tag.sum())}"
        return (f"XrayData(source={self.source!r}, n={len(self)}, size={self.size}, {parts}{tag})")


# --------------------------------------------------------------------------------------------
# Synthetic radiographs
# --------------------------------------------------------------------------------------------

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


def burn_tag(image: np.ndarray, corner: str = "top-left", text: str = "AP",
             rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Burn a text tag into one ``(H, W)`` image in [0, 1]; returns ``(new_image, tag_mask)``.

    The tag is a dark box with bright letters (``tag_bitmap``), about a fifth of the image wide,
    placed a few pixels (with a small random jitter) from ``corner``: one of ``CORNERS`` or
    ``"random"``. The input image is not modified.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    image = np.array(image, dtype=np.float32, copy=True)
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise ValueError(f"burn_tag expects one square (H, W) image; got {image.shape}")
    size = image.shape[0]
    if corner == "random":
        corner = CORNERS[int(rng.integers(len(CORNERS)))]
    if corner not in CORNERS:
        raise ValueError(f"corner must be one of {CORNERS} or 'random'; got {corner!r}")
    bitmap = tag_bitmap(text, scale=max(1, size // 64))
    th, tw = bitmap.shape
    if th > size // 3 or tw > size // 2:
        raise ValueError(f"the tag {text!r} ({th}×{tw} px) does not fit a {size} px corner; "
                         "use a shorter text or larger images")
    y, x = _tag_position(rng, size, (th, tw), corner)
    image[y:y + th, x:x + tw] = np.where(bitmap, 0.97, 0.04)
    mask = np.zeros(image.shape, dtype=bool)
    mask[y:y + th, x:x + tw] = True
    return image, mask


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
                  bronchograms: float = 0.0) -> np.ndarray:
    """Add 1..max_lesions opacities inside the lungs (in place); returns the lesion mask."""
    X, Y, lung_soft = geo["X"], geo["Y"], geo["lung_soft"]
    size = img.shape[0]
    lesion_mask = np.zeros(img.shape, dtype=bool)
    weights = np.array([0.6, 0.3, 0.1][:max_lesions])
    count = 1 + int(rng.choice(len(weights), p=weights / weights.sum()))
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(lung_mask)   # pixels to the lung's edge
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
    tag_corner : one of ``CORNERS`` or "random"
    tag_text : str
        Letters of the tag (see :func:`tag_bitmap`).
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
    if tag_corner not in CORNERS + ("random",):
        raise ValueError(f"tag_corner must be one of {CORNERS} or 'random'; got {tag_corner!r}")
    if not 1 <= max_lesions <= 3:
        raise ValueError(f"max_lesions must be 1, 2 or 3; got {max_lesions}")
    if not 0 <= objects[0] <= objects[1]:
        raise ValueError(f"objects must be (min, max) counts with 0 <= min <= max; got {objects}")
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
                                       bronchograms)
        if objects[1] > 0:
            _draw_objects(np.random.default_rng([seed, i, 4]), img, lung_mask, geo, objects,
                          lesion_size, lesion_density)
        img = _finish(noise_rng, img)
        if shortcut_rate is not None and tag_mode != "removed":
            with_label = shortcut_rate if (labels[i] == 1) == (tag_mode == "correlated") \
                else 1 - shortcut_rate
            has_tag[i] = tag_rng.random() < with_label
            if has_tag[i]:
                img, tags[i] = burn_tag(img, tag_corner, tag_text, tag_rng)
        images[i, 0] = img
        lungs[i] = lung_mask
    info = dict(generator="make_xrays", n=n, size=size, seed=seed,
                pneumonia_fraction=pneumonia_fraction, shortcut_rate=shortcut_rate,
                tag_mode=tag_mode, tag_corner=tag_corner, tag_text=tag_text,
                lesion_size=tuple(lesion_size), lesion_density=tuple(lesion_density),
                max_lesions=max_lesions, lesion_margin=lesion_margin, mottling=mottling,
                bronchograms=bronchograms, objects=tuple(objects),
                lung_shading=lung_shading, zoom=tuple(zoom))
    return XrayData(images=images, labels=labels, lung_masks=lungs, lesion_masks=lesions,
                    has_tag=has_tag if shortcut_rate is not None else np.zeros(n, dtype=bool),
                    tag_masks=tags, source="synthetic", info=info)


# --------------------------------------------------------------------------------------------
# Real data: image files, Kaggle folder layout, MedMNIST, DICOM
# --------------------------------------------------------------------------------------------

def read_grayscale(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read one image file as ``(H, W)`` float32 in [0, 1] (``(size, size)`` if ``size``).

    Handles 8-bit and 16-bit grayscale (16-bit is scaled by 65535, not clipped to 255 as
    ``PIL.Image.convert("L")`` would), palette images, RGB (luminance) and images with an alpha
    channel (composited over black, so transparent parts are not mistaken for bright tissue).

    Raises
    ------
    ValueError
        If the file is not an image PIL can read, naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im, dtype=np.float64) / 65535.0
            elif mode == "I":
                raw = np.asarray(im, dtype=np.float64)
                top = 65535.0 if raw.max() <= 65535 else float(raw.max())
                arr = np.clip(raw, 0, None) / top
            elif mode == "F":
                raw = np.asarray(im, dtype=np.float64)
                lo, hi = float(raw.min()), float(raw.max())
                arr = (raw - lo) / (hi - lo) if hi > lo else np.zeros_like(raw)
            else:
                if mode == "P":
                    im = im.convert("RGBA")
                    mode = "RGBA"
                if mode in ("RGBA", "LA", "PA"):
                    im = im.convert("RGBA")
                    black = Image.new("RGBA", im.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(black, im)
                arr = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image file that PIL can read ({err})") from err
    if size is not None:
        arr = _resize(arr, size)
    return np.clip(arr, 0, 1).astype(np.float32)


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of one (H, W) float image to (size, size), antialiased when shrinking."""
    from PIL import Image

    if arr.shape == (size, size):
        return arr.astype(np.float32)
    im = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None),
                      dtype=np.float32)


def _find_split_dir(root: Path, split: str) -> Path:
    """root/split, also accepting the extra ``chest_xray/`` level the Kaggle zip contains."""
    for candidate in (root / split, root / "chest_xray" / split):
        if candidate.is_dir():
            return candidate
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise FileNotFoundError(
        f"no '{split}' folder in {root} (sub-folders found: {present or 'none'}). Expected the "
        f"Kaggle layout root/{{train,val,test}}/{{NORMAL,PNEUMONIA}}/*.jpeg; pass the folder that "
        "contains train/, val/ and test/")


def load_kaggle_folder(root: str | Path, split: str = "train", size: int = 128, *,
                       max_per_class: int | None = None, seed: int = 0) -> XrayData:
    """Load the Kaggle "Chest X-Ray Images (Pneumonia)" layout.

    ``root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (also .jpg/.png/...; folder names are
    matched case-insensitively; hidden files are skipped). The label comes from the folder name
    only.

    Parameters
    ----------
    root : folder holding ``train/``, ``val/``, ``test/`` (or ``chest_xray/`` holding them)
    split : "train", "val" or "test"
    size : output height and width (images are resized without cropping)
    max_per_class : int or None
        Keep at most this many images per class, chosen at random with ``seed`` (the full
        training split has 5,216 images; a few hundred per class keeps a lesson fast).

    Returns
    -------
    XrayData with ``images`` (N, 1, size, size) and no masks.

    Raises
    ------
    FileNotFoundError
        If the split folder or a class folder is missing, or a class folder holds no images.
    ValueError
        If a file cannot be read as an image.
    """
    root = Path(root).expanduser()
    split_dir = _find_split_dir(root, split)
    sub = {p.name.upper(): p for p in split_dir.iterdir() if p.is_dir()}
    missing = [name for name in CLASS_NAMES if name not in sub]
    if missing:
        raise FileNotFoundError(
            f"{split_dir} has no class folder(s) {missing}; found {sorted(sub) or 'none'}. "
            f"Each split needs NORMAL/ and PNEUMONIA/ sub-folders: the label is the folder name")
    extra = sorted(set(sub) - set(CLASS_NAMES))
    if extra:
        warnings.warn(f"ignoring folders {extra} in {split_dir}: only {CLASS_NAMES} are loaded",
                      stacklevel=2)
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(CLASS_NAMES):
        files = sorted(p for p in sub[name].iterdir()
                       if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {sub[name]}")
        if max_per_class is not None and len(files) > max_per_class:
            keep = np.sort(rng.choice(len(files), size=max_per_class, replace=False))
            files = [files[k] for k in keep]
        paths += files
        labels += [label] * len(files)
    images = np.stack([read_grayscale(p, size) for p in _progress(paths, f"{split} images")])
    return XrayData(images=images[:, None], labels=np.asarray(labels, dtype=np.int64),
                    source="kaggle",
                    info=dict(root=str(root), split=split, size=size, files=[str(p) for p in paths]))


def load_medmnist_npz(path: str | Path, split: str = "train", size: int | None = None) -> XrayData:
    """Load MedMNIST's ``pneumoniamnist.npz`` (keys ``train_images``, ``train_labels``, ``val_*``,
    ``test_*``; images (N, 28, 28) uint8, or 64/128/224 px for MedMNIST+; labels (N, 1) with
    0 = normal, 1 = pneumonia).

    Parameters
    ----------
    size : int or None
        Resize to ``size × size``; None keeps the stored size.

    Raises
    ------
    KeyError
        If the split's keys are missing (the message lists the keys the file has).
    ValueError
        If shapes or label values do not fit a two-class grayscale set.
    """
    path = Path(path).expanduser()
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test'; got {split!r}")
    with np.load(path, allow_pickle=False) as npz:
        keys = sorted(npz.files)
        wanted = (f"{split}_images", f"{split}_labels")
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise KeyError(f"{path} has no {missing}; it holds {keys}. A MedMNIST file has "
                           "train_images, train_labels, val_images, val_labels, test_images, "
                           "test_labels")
        images, labels = npz[wanted[0]], npz[wanted[1]]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 4 and images.shape[-1] == 3:
        raise ValueError(f"{wanted[0]} is RGB {images.shape}; PneumoniaMNIST is grayscale — is "
                         "this another MedMNIST set?")
    if images.ndim != 3:
        raise ValueError(f"{wanted[0]} must be (N, H, W); got {images.shape}")
    labels = np.asarray(labels).reshape(len(labels), -1)
    if labels.shape[1] != 1 or len(labels) != len(images):
        raise ValueError(f"{wanted[1]} must hold one label per image; got {labels.shape} for "
                         f"{len(images)} images")
    labels = labels[:, 0]
    bad = np.setdiff1d(np.unique(labels), [0, 1])
    if bad.size:
        raise ValueError(f"{wanted[1]} holds labels {bad.tolist()}; PneumoniaMNIST has only 0 "
                         "(normal) and 1 (pneumonia)")
    if np.issubdtype(images.dtype, np.integer):
        top = 255.0 if images.max(initial=0) <= 255 else 65535.0
        images = images.astype(np.float32) / top
    else:
        images = np.clip(images.astype(np.float32), 0, 1)
    if size is not None:
        images = np.stack([_resize(im, size) for im in images]) if len(images) else \
            np.zeros((0, size, size), np.float32)
    return XrayData(images=np.clip(images, 0, 1)[:, None].astype(np.float32),
                    labels=labels.astype(np.int64), source="medmnist",
                    info=dict(path=str(path), split=split, size=size))


def load_dicom(path: str | Path, window: tuple[float, float] | None = None,
               size: int | None = None) -> np.ndarray:
    """Read a grayscale DICOM image as ``(H, W)`` float32 in [0, 1], displayed as a radiologist
    sees it: bright = dense.

    Steps: stored values → modality LUT (Rescale Slope/Intercept) → VOI: ``window`` if given,
    else the file's VOI LUT Sequence or Window Center/Width, else the image's own min–max → scale
    to [0, 1] → invert when Photometric Interpretation is MONOCHROME1 (in MONOCHROME1 the
    smallest value is displayed white, so without the inversion bones come out black).

    Parameters
    ----------
    window : (center, width) or None
        Override the window stored in the file (DICOM "LINEAR" windowing).
    size : int or None
        Resize to ``size × size``.

    Raises
    ------
    ValueError
        If the file is not DICOM, has no pixel data, or is not grayscale.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    path = Path(path).expanduser()
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a DICOM file ({err}); use read_grayscale for "
                         "PNG/JPEG files") from err
    if "PixelData" not in ds:
        raise ValueError(f"{path} is DICOM but holds no image (no Pixel Data element)")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"{path} is {photometric}; only grayscale (MONOCHROME1/2) radiographs "
                         "are supported")
    try:
        stored = ds.pixel_array
    except Exception as err:  # compressed data without a decoder, broken files
        raise ValueError(f"cannot decode the pixels of {path} ({err}); compressed DICOM needs a "
                         "decoder such as pylibjpeg") from err
    if stored.ndim != 2:
        raise ValueError(f"{path} holds pixel data of shape {stored.shape}; expected one 2-D "
                         "image (multi-frame files: pick a frame yourself)")
    values = apply_modality_lut(stored, ds).astype(np.float64)
    if window is not None:
        values = _linear_window(values, *window)
    elif "VOILUTSequence" in ds:
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        values = apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64) / (2 ** lut_bits - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        center = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
        width = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
        values = _linear_window(values, float(center), float(width))
    else:
        lo, hi = values.min(), values.max()
        values = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    values = np.clip(values, 0, 1)
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    if size is not None:
        values = _resize(values, size)
    return values.astype(np.float32)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM 'LINEAR' VOI windowing (PS3.3 C.11.2.1.2.1) onto [0, 1]."""
    if width < 1:
        raise ValueError(f"window width must be >= 1; got {width}")
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def example_radiograph_path() -> Path:
    """Path of the real adult chest radiograph ``RG1_UNCR.dcm`` shipped by ``pydicom-data``
    (found offline; raises FileNotFoundError naming the package to install otherwise)."""
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file("RG1_UNCR.dcm", download=False)
    except Exception as err:  # pragma: no cover - depends on the installation
        raise FileNotFoundError(f"cannot look up RG1_UNCR.dcm ({err}); "
                                "pip install pydicom-data") from err
    if not found:
        raise FileNotFoundError("RG1_UNCR.dcm is not installed; `pip install pydicom-data` "
                                "ships it (no download at run time)")
    return Path(found)


def load_example_radiograph(size: int | None = None, window: tuple[float, float] | None = None
                            ) -> np.ndarray:
    """The real chest radiograph from ``pydicom-data`` (computed radiography, MONOCHROME1,
    1955 × 1841, no diagnosis label) as ``(H, W)`` float32 in [0, 1] via :func:`load_dicom`."""
    return load_dicom(example_radiograph_path(), window=window, size=size)


def load_xray_dataset(source: str = "synthetic", path: str | Path | None = None, *,
                      split: str = "train", size: int = 64, n: int = 1000, seed: int = 0,
                      max_per_class: int | None = None, **synthetic_options) -> XrayData:
    """One switch for the lessons: the same call returns synthetic or real chest X-rays.

    Parameters
    ----------
    source : {"synthetic", "kaggle", "medmnist"}
    path : folder of the Kaggle layout or the ``pneumoniamnist.npz`` file (not for synthetic)
    split : "train", "val" or "test" (real data). For synthetic data the split only changes the
        seed (train: ``seed``, val: ``seed + 1000``, test: ``seed + 2000``) so the splits hold
        different patients.
    size : image height and width
    n : number of synthetic images
    max_per_class : cap per class for the Kaggle folders
    **synthetic_options : passed to :func:`make_xrays` (e.g. ``shortcut_rate=0.9``)
    """
    if source == "synthetic":
        if path is not None:
            raise ValueError("path is for real data; for synthetic X-rays leave it None")
        offset = {"train": 0, "val": 1000, "test": 2000}
        if split not in offset:
            raise ValueError(f"split must be one of {list(offset)}; got {split!r}")
        return make_xrays(n, size, seed=seed + offset[split], **synthetic_options)
    if synthetic_options:
        raise TypeError(f"options {sorted(synthetic_options)} only apply to source='synthetic'")
    if path is None:
        raise ValueError(f"source={source!r} needs path= (the dataset folder or .npz file)")
    if source == "kaggle":
        return load_kaggle_folder(path, split, size, max_per_class=max_per_class, seed=seed)
    if source == "medmnist":
        return load_medmnist_npz(path, split, size)
    raise ValueError(f"source must be 'synthetic', 'kaggle' or 'medmnist'; got {source!r}")


def _progress(items: Iterable, desc: str):
    items = list(items)
    if len(items) < 200:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False)
