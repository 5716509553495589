"""The PyTorch twin of lesson 13's tiny ViT (:mod:`.keras_vit`), and loading Keras weights into it.

Module for module the same network: ``patch_embed`` (nn.Conv2d), ``cls`` / ``pos`` parameters,
``blocks[b]`` with ``norm1`` (nn.LayerNorm), ``attn`` (``nn.MultiheadAttention``, batch first),
``norm2``, ``mlp1`` / ``mlp2`` (nn.Linear, exact GELU), then ``norm`` and ``head``. With
:func:`load_keras_weights` its logits equal the Keras model's (checked in the tests and in lesson
13 to ~1e-5). torch is imported inside the functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def build_torch_vit(image_size: int = 48, patch: int = 6, dim: int = 48, depth: int = 2,
                    heads: int = 3, channels: int = 1, num_classes: int = 10):
    """The twin of :func:`.keras_vit.build_tiny_vit` (same arguments); an ``nn.Module`` taking
    (N, C, S, S) images and returning (N, classes) logits."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp1 = nn.Linear(dim, 2 * dim)
            self.act = nn.GELU()
            self.mlp2 = nn.Linear(2 * dim, dim)

        def forward(self, x):
            y = self.norm1(x)
            x = x + self.attn(y, y, y, need_weights=False)[0]
            return x + self.mlp2(self.act(self.mlp1(self.norm2(x))))

    class TinyViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            side = image_size // patch
            self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.zeros(1, side * side + 1, dim))
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, num_classes)
            nn.init.trunc_normal_(self.cls, std=0.02)
            nn.init.trunc_normal_(self.pos, std=0.02)

        def forward(self, x):
            x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (N, P, D), patches row by row
            x = torch.cat([self.cls.expand(len(x), -1, -1), x], dim=1) + self.pos
            x = self.norm(self.blocks(x))
            return self.head(x[:, 0])

    if image_size % patch or dim % heads:
        raise ValueError(f"image_size ({image_size}) must be a multiple of patch ({patch}) and dim "
                         f"({dim}) a multiple of heads ({heads})")
    return TinyViT()


def _w(layer: Any, name: str) -> np.ndarray:
    for weight in layer.weights:
        if weight.name.split("/")[-1].split(":")[0] == name:
            return np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
    raise KeyError(f"{layer.name} has no weight {name!r}")


def keras_state_dict(keras_model) -> dict[str, np.ndarray]:
    """The tiny Keras ViT's weights as the twin's ``state_dict`` (NumPy arrays).

    Conv2D kernel (p, p, C, D) → (D, C, p, p); Dense kernel (in, out) → (out, in);
    MultiHeadAttention's query/key/value kernels (D, heads, d) → rows of ``in_proj_weight`` (3D, D)
    and its output kernel (heads, d, D) → ``out_proj.weight`` (D, D).
    """
    get = keras_model.get_layer
    state = {}
    conv = get("patch_embed")
    state["patch_embed.weight"] = _w(conv, "kernel").transpose(3, 2, 0, 1)
    state["patch_embed.bias"] = _w(conv, "bias")
    token = get("class_token")
    state["cls"], state["pos"] = _w(token, "cls"), _w(token, "pos")
    depth = sum(1 for layer in keras_model.layers if layer.name.endswith("_attn"))
    for b in range(depth):
        p = f"blocks.{b}."
        for norm in ("norm1", "norm2"):
            layer = get(f"block{b}_{norm}")
            state[p + norm + ".weight"], state[p + norm + ".bias"] = _w(layer, "gamma"), _w(layer, "beta")
        attn = get(f"block{b}_attn")
        dim = int(state["cls"].shape[-1])
        kernels, biases = [], []
        for part in ("query", "key", "value"):
            sub = getattr(attn, f"_{part}_dense")
            kernels.append(_w(sub, "kernel").reshape(dim, dim).T)
            biases.append(_w(sub, "bias").reshape(dim))
        state[p + "attn.in_proj_weight"] = np.concatenate(kernels)
        state[p + "attn.in_proj_bias"] = np.concatenate(biases)
        out = attn._output_dense
        state[p + "attn.out_proj.weight"] = _w(out, "kernel").reshape(dim, dim).T
        state[p + "attn.out_proj.bias"] = _w(out, "bias")
        for mlp in ("mlp1", "mlp2"):
            layer = get(f"block{b}_{mlp}")
            state[p + mlp + ".weight"], state[p + mlp + ".bias"] = _w(layer, "kernel").T, _w(layer, "bias")
    norm = get("norm")
    state["norm.weight"], state["norm.bias"] = _w(norm, "gamma"), _w(norm, "beta")
    head = get("logits")
    state["head.weight"], state["head.bias"] = _w(head, "kernel").T, _w(head, "bias")
    return state


def torch_twin(keras_model, **architecture: Any):
    """A :func:`build_torch_vit` module with the Keras model's weights (eval mode).

    Parameters
    ----------
    keras_model : a model from :func:`.keras_vit.build_tiny_vit` (trained or not)
    **architecture : the builder's arguments (``image_size``, ``patch``, ``dim``, ``depth``,
        ``heads``); read from the Keras model when omitted
    """
    import torch

    if not architecture:
        image_size = int(keras_model.inputs[0].shape[1])
        conv = keras_model.get_layer("patch_embed")
        attn = keras_model.get_layer("block0_attn")
        architecture = {"image_size": image_size, "patch": int(conv.kernel_size[0]),
                        "dim": int(conv.filters), "heads": int(attn.num_heads),
                        "depth": sum(1 for layer in keras_model.layers if layer.name.endswith("_attn")),
                        "channels": int(keras_model.inputs[0].shape[-1]),
                        "num_classes": int(keras_model.get_layer("logits").units)}
    model = build_torch_vit(**architecture)
    state = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
             for k, v in keras_state_dict(keras_model).items()}
    model.load_state_dict(state)
    return model.eval()
