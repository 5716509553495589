"""Attention maps of Vision Transformers as methods of their own: NumPy math, one driver.

A transformer's attention layer gives, for each image, each head and each query token, weights over
all tokens that sum to 1 (``A``: (N, heads, T, T), rows = queries). Two maps are read from them:

- ``"attention"`` — the last layer's attention of the class token to the patch tokens, averaged
  over the heads: :func:`last_layer_attention`;
- ``"rollout"`` — attention rollout (Abnar & Zuidema, ACL 2020, "Quantifying Attention Flow in
  Transformers"): each layer's head-averaged attention plus the identity for the residual
  connection, ``(A + I) / 2``, its rows renormalised, multiplied through the layers
  (``R = Â_L ··· Â_2 Â_1``); the class token's row of ``R`` over the patch tokens:
  :func:`attention_rollout`.

Both ignore the class being explained: they say where the model *looked*, not what raised the
class score (Jain & Wallace 2019, "Attention is not Explanation"; Wiegreffe & Pinter 2019,
"Attention is not not Explanation"). Lesson 13 measures them against Grad-CAM.

The maps are on the patch grid ((N, h, w), the tokens after the leading class/register tokens, as
:func:`~.tokens.infer_grid` finds them or the ``tokens_to_grid=`` setting gives them); their kind,
``"attention"``, upsamples them to the image and divides each by its maximum, like a CAM. Without
a class token (no extra token), the map is the attention each patch *receives*, averaged over the
queries. The weights come from the adapter (:meth:`~.adapters.base.Adapter.attention_weights`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .maps import upsampled_maps
from .registry import KINDS, Job, Kind, Method, Raw, driver, register
from .targets import resolve_targets
from .tokens import infer_grid

# the kind of the attention maps: a map on the patch grid, made into Explanation.maps like a CAM
KINDS.setdefault("attention", Kind("attention", upsampled_maps, batched=True))


def _check(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(weights) == 0:
        raise ValueError("no attention weights: pass one (N, heads, T, T) array per layer")
    out = []
    for w in weights:
        w = np.asarray(w, np.float64)
        if w.ndim == 3:
            w = w[:, None]
        if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
            raise ValueError(f"attention weights must be (N, heads, T, T); got shape {w.shape}")
        out.append(w)
    if len({w.shape[-1] for w in out}) != 1:
        raise ValueError("every layer's attention must cover the same T tokens")
    return out


def _read_map(matrix: np.ndarray, grid: tuple[int, int, int]) -> np.ndarray:
    """The (N, h, w) map of a token-to-token matrix (N, T, T): the class token's row over the patch
    tokens (with extra tokens), or the mean over queries of each patch column (without)."""
    extra, h, w = grid
    if extra:
        row = matrix[:, 0, extra:]
    else:
        row = matrix.mean(axis=1)
    return row.reshape(len(matrix), h, w).astype(np.float32)


def last_layer_attention(weights: Sequence[np.ndarray], grid: tuple[int, int, int]) -> np.ndarray:
    """Raw attention: the last layer's class-token attention to the patches, mean over heads.

    Parameters
    ----------
    weights : one (N, heads, T, T) array per attention layer, in call order (rows sum to 1)
    grid : (extra, h, w) — leading extra tokens and the patch grid, ``extra + h w = T``

    Returns
    -------
    (N, h, w) float32 >= 0
    """
    last = _check(weights)[-1].mean(axis=1)
    return _read_map(last, grid)


def rollout_matrix(weights: Sequence[np.ndarray]) -> np.ndarray:
    """The rollout ``R = Â_L ··· Â_1``, ``Â = rownorm((mean_heads A + I) / 2)``: (N, T, T) float64."""
    layers = _check(weights)
    n, t = layers[0].shape[0], layers[0].shape[-1]
    result = np.broadcast_to(np.eye(t), (n, t, t)).copy()
    for a in layers:
        mixed = (a.mean(axis=1) + np.eye(t)) / 2
        mixed /= mixed.sum(axis=-1, keepdims=True)
        result = mixed @ result
    return result


def attention_rollout(weights: Sequence[np.ndarray], grid: tuple[int, int, int]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): the class token's row of :func:`rollout_matrix`
    over the patch tokens.

    Parameters
    ----------
    weights : one (N, heads, T, T) array per attention layer, in call order
    grid : (extra, h, w) as in :func:`last_layer_attention`

    Returns
    -------
    (N, h, w) float32 >= 0
    """
    return _read_map(rollout_matrix(weights), grid)


@driver(needs="attention")
def with_attention(method: Method, job: Job, options: dict) -> Raw:
    """One forward pass with every attention layer's weights captured: ``fn(weights, grid)``."""
    adapter = job.adapter
    weights, logits = adapter.attention_weights(job.images)
    tokens = weights[-1].shape[-1]
    layout = adapter.tokens_layout
    if layout is None:
        grid = infer_grid(tokens, adapter.spatial_size(job.images))
    elif isinstance(layout, tuple):
        grid = (tokens - layout[0] * layout[1], int(layout[0]), int(layout[1]))
    else:
        raise ValueError("attention maps need the grid as tokens_to_grid=(h, w) (the leading T − h·w "
                         "tokens are the class/register tokens); a function cannot be applied to "
                         "attention weights")
    targets = resolve_targets(job.target, logits)
    return Raw(method.fn(weights, grid), logits, targets, "attention")


for _method in (
    Method("attention", "attention", last_layer_attention, with_attention,
           "the last layer's class-token attention, mean over heads (e.g. Dosovitskiy et al., "
           "ICLR 2021)", aliases=("raw_attention",)),
    Method("rollout", "attention", attention_rollout, with_attention,
           "Abnar & Zuidema, ACL 2020", aliases=("attention_rollout",)),
):
    register(_method)

__all__ = ["last_layer_attention", "rollout_matrix", "attention_rollout", "with_attention"]
