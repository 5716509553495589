"""Token sequences of a Vision Transformer as patch grids: NumPy only.

A ViT cuts an (H, W) image into patches of p × p pixels, one token each, and usually puts a class
token (CLS) in front of them — sometimes also a distillation token (DeiT) or register tokens
(DINOv2 with registers). A transformer block's output is then a sequence ``(N, T, D)``:
``T = extra + h · w`` tokens of ``D`` features, with ``h = H / p`` and ``w = W / p``. The CAM
methods need a grid ``(N, h, w, D)``: :func:`tokens_to_grid` drops the extra tokens (which come
first) and reshapes the rest, row by row, as the patches were cut.

The grid is found from ``T`` and the image size alone: the smallest number of leading extra tokens
``e`` (0 to :data:`MAX_EXTRA_TOKENS`) for which ``T − e = h · w`` with ``h / w = H / W``. A layout
this cannot find (extra tokens at the end, a grid with another aspect ratio) is given with the
``tokens_to_grid=`` option of :func:`~..pipeline.explain` / :class:`~..pipeline.Explainer`: an
``(h, w)`` pair (the leading ``T − h w`` tokens are dropped) or a function ``(N, T, D) → (N, h, w,
D)`` (pytorch-grad-cam's ``reshape_transform``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

#: the most leading extra tokens (class, distillation, register tokens) the automatic layout tries
MAX_EXTRA_TOKENS = 16

def _layout_hint(tokens: int, image_size: tuple[int, int]) -> str:
    return (f"{tokens} tokens do not fit a patch grid of a {image_size[0]}×{image_size[1]} image "
            f"after dropping up to {MAX_EXTRA_TOKENS} leading class/register tokens. Pass "
            "tokens_to_grid=(h, w) (the leading T − h·w tokens are dropped) or "
            "tokens_to_grid=a function (N, T, D) → (N, h, w, D) to explain(...) / Explainer(...)")


def infer_grid(tokens: int, image_size: tuple[int, int]) -> tuple[int, int, int]:
    """The patch grid of a sequence of ``tokens`` tokens for an image of ``image_size``.

    Parameters
    ----------
    tokens : T, the sequence length (extra tokens included)
    image_size : (H, W) of the input images

    Returns
    -------
    (extra, h, w) : the number of leading extra tokens and the grid, ``extra + h * w == tokens``,
        ``h * W == w * H``; the smallest ``extra`` that fits

    Raises
    ------
    ValueError
        When no grid fits, naming the ``tokens_to_grid=`` option.
    """
    height, width = (int(image_size[0]), int(image_size[1]))
    for extra in range(0, min(MAX_EXTRA_TOKENS, tokens - 1) + 1):
        n = tokens - extra
        # h / w = H / W  →  h = sqrt(n H / W)
        h = int(round(np.sqrt(n * height / width)))
        for hh in (h - 1, h, h + 1):
            if hh >= 1 and n % hh == 0:
                ww = n // hh
                if hh * width == ww * height:
                    return extra, hh, ww
    raise ValueError(_layout_hint(tokens, (height, width)))


def tokens_to_grid(tokens: np.ndarray, image_size: tuple[int, int], layout: Any = None) -> np.ndarray:
    """A token sequence ``(N, T, D)`` as a patch grid ``(N, h, w, D)``, extra tokens dropped.

    Parameters
    ----------
    tokens : (N, T, D) array — a transformer layer's output (or its gradient)
    image_size : (H, W) of the input images
    layout : None (automatic, :func:`infer_grid`), an ``(h, w)`` pair (the leading ``T − h w``
        tokens are dropped), or a function ``(N, T, D) → (N, h, w, D)``

    Returns
    -------
    (N, h, w, D) array of the input's dtype

    Raises
    ------
    ValueError
        When ``T`` fits no grid (naming ``tokens_to_grid=``), or a given layout does not fit.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 3:
        raise ValueError(f"a token sequence is (N, T, D); got shape {tokens.shape}")
    n, t, d = tokens.shape
    if callable(layout):
        grid = np.asarray(layout(tokens))
        if grid.ndim != 4 or grid.shape[0] != n:
            raise ValueError(f"tokens_to_grid=function must return (N, h, w, D) with N = {n}; it "
                             f"returned shape {grid.shape}")
        return grid
    if layout is None:
        extra, h, w = infer_grid(t, image_size)
    else:
        try:
            h, w = (int(v) for v in layout)
        except (TypeError, ValueError):
            raise ValueError("tokens_to_grid must be None, an (h, w) pair or a function "
                             f"(N, T, D) → (N, h, w, D); got {layout!r}") from None
        extra = t - h * w
        if h < 1 or w < 1 or extra < 0:
            raise ValueError(f"tokens_to_grid=({h}, {w}) needs at least {h * w} tokens; the layer "
                             f"gives {t}")
    return tokens[:, extra:].reshape(n, h, w, d)


def check_layout(layout: Any) -> Any:
    """``layout`` if it is a valid ``tokens_to_grid=`` value, else ValueError saying what is."""
    if layout is None or callable(layout):
        return layout
    if (isinstance(layout, tuple) and len(layout) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                    for v in layout)):
        return layout
    raise ValueError("tokens_to_grid must be None (automatic), an (h, w) pair of ints >= 1 or a "
                     f"function (N, T, D) → (N, h, w, D); got {layout!r}")


def is_token_shape(shape: Any) -> bool:
    """Whether a layer's output shape (batch first) looks like a token sequence (N, T, D), T ≥ 2."""
    return shape is not None and len(shape) == 3 and shape[1] is not None and int(shape[1]) >= 2


__all__ = ["MAX_EXTRA_TOKENS", "infer_grid", "tokens_to_grid", "check_layout", "is_token_shape"]

