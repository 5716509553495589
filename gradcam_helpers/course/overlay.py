"""Drawing saliency maps: colourise, resize to the image, blend, and lay out figure grids.

Everything here is RGB. OpenCV's ``applyColorMap`` returns BGR, which shown by matplotlib swaps red
and blue (hot regions look blue); this module uses matplotlib colormaps, which are RGB, so that
never happens. Images may be uint8 in 0–255 or float in [0, 1], grayscale or RGB.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..engine.maps import resize_maps


def to_rgb_float(image: np.ndarray) -> np.ndarray:
    """An image as (H, W, 3) float in [0, 1].

    Parameters
    ----------
    image : (H, W), (H, W, 1) or (H, W, 3) array; uint8 in 0–255 or float in [0, 1]
        (a float image with values above 1 is taken as 0–255).
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        raise ValueError(f"image shape {img.shape} looks channels-first; pass (H, W, C), "
                         "e.g. np.transpose(img, (1, 2, 0)) or tensor.permute(1, 2, 0)")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3); got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or inf")
    if img.max() > 1.0 + 1e-6:
        img = img / 255.0
    if img.min() < 0:
        lo, hi = img.min(), img.max()  # e.g. ImageNet-normalised input: rescale for display
        img = (img - lo) / max(hi - lo, 1e-7)
    return np.clip(img, 0.0, 1.0)


def colorize(cam_map: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A map in [0, 1] as an RGB picture, (H, W) → (H, W, 3) float in [0, 1].

    ``cmap`` is any matplotlib colormap name ("jet", "turbo", "inferno", …): low = the colormap's
    first colour, high = its last (red for "jet").
    """
    import matplotlib

    m = np.asarray(cam_map, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"colorize takes one map (H, W); got shape {m.shape}")
    m = np.clip(np.nan_to_num(m), 0.0, 1.0)
    return matplotlib.colormaps[cmap](m)[..., :3].astype(np.float32)


def overlay(image: np.ndarray, cam_map: np.ndarray, alpha: float = 0.4, cmap: str = "jet") -> np.ndarray:
    """Blend a colourised map over an image.

    Parameters
    ----------
    image : (H, W), (H, W, 1) or (H, W, 3), uint8 0–255 or float 0–1
    cam_map : (h, w) float in [0, 1]; resized (bilinear) to the image if its size differs
    alpha : weight of the heatmap, 0 (image only) … 1 (heatmap only)
    cmap : matplotlib colormap name

    Returns
    -------
    (H, W, 3) uint8 RGB
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    rgb = to_rgb_float(image)
    m = np.asarray(cam_map, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"cam_map must be one (h, w) map; got shape {m.shape}")
    if m.shape != rgb.shape[:2]:
        m = resize_maps(m[None], rgb.shape[:2])[0]
    blended = (1.0 - alpha) * rgb + alpha * colorize(m, cmap)
    return np.clip(np.round(blended * 255.0), 0, 255).astype(np.uint8)


def show_explanations(images: Sequence[np.ndarray] | np.ndarray, maps, titles: Sequence[str] | None = None,
                      alpha: float = 0.4, cmap: str = "jet", columns: Sequence[str] = ("入力画像", "ヒートマップ", "重ね合わせ"),
                      size: float = 2.4):
    """A grid figure, one row per image: image | map | overlay.

    Parameters
    ----------
    images : N images, each as accepted by :func:`overlay` (channels last)
    maps : (N, H, W) maps in [0, 1], or an :class:`~gradcam_helpers.engine.pipeline.Explanation`
    titles : optional N row titles (e.g. "正解 3 / 予測 3")
    columns : the three column titles

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    maps = getattr(maps, "maps", maps)
    images = list(images)
    if len(images) != len(maps):
        raise ValueError(f"{len(images)} images but {len(maps)} maps")
    fig, axes = plt.subplots(len(images), 3, figsize=(3 * size, len(images) * size), squeeze=False)
    for row, (img, m) in enumerate(zip(images, maps)):
        rgb = to_rgb_float(img)
        axes[row, 0].imshow(rgb)
        axes[row, 1].imshow(m, cmap=cmap, vmin=0, vmax=1)
        axes[row, 2].imshow(overlay(rgb, m, alpha=alpha, cmap=cmap))
        if titles is not None:
            axes[row, 0].set_ylabel(titles[row])
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], columns):
        ax.set_title(title)
    fig.tight_layout()
    return fig
