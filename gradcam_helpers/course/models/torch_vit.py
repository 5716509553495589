"""The PyTorch twin of lesson 13's tiny ViT (:mod:`.keras_vit`), and loading Keras weights into it.

Module for module the same network: ``patch_embed`` (nn.Conv2d), ``cls`` / ``pos`` parameters,
``stem`` (nn.Conv2d + nn.ReLU, or nn.Identity), ``blocks[b]`` with ``norm1`` (nn.LayerNorm), ``attn`` (``nn.MultiheadAttention``, batch first),
``norm2``, ``mlp1`` / ``mlp2`` (nn.Linear, exact GELU), then ``norm`` and ``head``. With
:func:`load_keras_weights` its logits equal the Keras model's (checked in the tests and in lesson
13 to ~1e-5). torch is imported inside the functions.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def build_torch_vit(image_size: int = 48, patch: int = 6, dim: int = 48, depth: int = 2,
                    heads: int = 3, stem: int = 0, channels: int = 1, num_classes: int = 10,
                    mlp_ratio: int = 2):
    """The twin of :func:`.keras_vit.build_tiny_vit` (same arguments); an ``nn.Module`` taking
    (N, C, S, S) images and returning (N, classes) logits. ``mlp_ratio``: the MLP's width is
    ``mlp_ratio · dim`` (2 in the lesson's model, 4 in ViT-B/16: :func:`build_vit_b16`)."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp1 = nn.Linear(dim, mlp_ratio * dim)
            self.act = nn.GELU()
            self.mlp2 = nn.Linear(mlp_ratio * dim, dim)

        def forward(self, x):
            y = self.norm1(x)
            x = x + self.attn(y, y, y, need_weights=False)[0]
            return x + self.mlp2(self.act(self.mlp1(self.norm2(x))))

    class TinyViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            side = image_size // patch
            self.stem = (nn.Sequential(nn.Conv2d(channels, stem, 3, padding=1), nn.ReLU())
                         if stem else nn.Identity())
            self.patch_embed = nn.Conv2d(stem or channels, dim, patch, stride=patch)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(torch.zeros(1, side * side + 1, dim))
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.head = nn.Linear(dim, num_classes)
            nn.init.trunc_normal_(self.cls, std=0.02)
            nn.init.trunc_normal_(self.pos, std=0.02)

        def forward(self, x):
            x = self.patch_embed(self.stem(x)).flatten(2).transpose(1, 2)  # (N, P, D), row by row
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
    if any(layer.name == "stem" for layer in keras_model.layers):
        stem = get("stem")
        state["stem.0.weight"] = _w(stem, "kernel").transpose(3, 2, 0, 1)
        state["stem.0.bias"] = _w(stem, "bias")
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
        stems = [layer for layer in keras_model.layers if layer.name == "stem"]
        architecture = {"image_size": image_size, "patch": int(conv.kernel_size[0]),
                        "stem": int(stems[0].filters) if stems else 0,
                        "dim": int(conv.filters), "heads": int(attn.num_heads),
                        "depth": sum(1 for layer in keras_model.layers if layer.name.endswith("_attn")),
                        "channels": int(keras_model.inputs[0].shape[-1]),
                        "num_classes": int(keras_model.get_layer("logits").units)}
    model = build_torch_vit(**architecture)
    state = {k: torch.from_numpy(np.ascontiguousarray(v, np.float32))
             for k, v in keras_state_dict(keras_model).items()}
    model.load_state_dict(state)
    return model.eval()


# ------------------------------------------------------------------------------------------------
# a real pretrained ViT, for learners with a network


def build_vit_b16(num_classes: int = 1000, image_size: int = 224):
    """ViT-B/16 (Dosovitskiy et al., ICLR 2021) in the twin's layout: 16 × 16 patches, 768-wide
    tokens, 12 blocks of 12 heads, MLP 3072, RGB input; random weights (load them with
    :func:`load_timm_vit`). About 86 M parameters."""
    return build_torch_vit(image_size=image_size, patch=16, dim=768, depth=12, heads=12,
                           channels=3, num_classes=num_classes, mlp_ratio=4)


def timm_state_dict(state: dict, depth: int) -> dict:
    """A timm ``VisionTransformer`` ``state_dict`` (``cls_token``, ``pos_embed``,
    ``patch_embed.proj.*``, ``blocks.i.attn.qkv.*`` …) renamed for :func:`build_torch_vit`.

    timm's fused ``qkv`` Linear stacks the query, key and value rows exactly as
    ``nn.MultiheadAttention.in_proj_weight`` does, and ``attn.proj`` is ``out_proj``; the tensors are
    only renamed. A key this does not know raises, naming it (a model with another layout).
    """
    renamed = {"cls_token": "cls", "pos_embed": "pos", "patch_embed.proj.weight": "patch_embed.weight",
               "patch_embed.proj.bias": "patch_embed.bias", "norm.weight": "norm.weight",
               "norm.bias": "norm.bias", "head.weight": "head.weight", "head.bias": "head.bias"}
    parts = {"norm1": "norm1", "norm2": "norm2", "attn.qkv": "attn.in_proj", "attn.proj": "attn.out_proj",
             "mlp.fc1": "mlp1", "mlp.fc2": "mlp2"}
    for b in range(depth):
        for old, new in parts.items():
            for kind in ("weight", "bias"):
                renamed[f"blocks.{b}.{old}.{kind}"] = f"blocks.{b}.{new}_{kind}" if new == "attn.in_proj" \
                    else f"blocks.{b}.{new}.{kind}"
    unknown = sorted(set(state) - set(renamed))
    if unknown:
        raise ValueError(f"these weights are not a timm ViT of depth {depth} in the expected layout: "
                         f"{', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''}")
    return {renamed[k]: v for k, v in state.items()}


def load_timm_vit(path, *, depth: int = 12, build=None):
    """A pretrained ViT from a timm checkpoint file, without timm: the network is
    :func:`build_vit_b16` (or ``build()``), the weights are renamed by :func:`timm_state_dict`.

    For example, with a network, the ImageNet ViT-B/16 of timm (Apache-2.0), downloaded once::

        # pip install huggingface_hub
        from huggingface_hub import hf_hub_download
        path = hf_hub_download("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "pytorch_model.bin")
        model = load_timm_vit(path)           # images: RGB 224 × 224, (x / 255 − 0.5) / 0.5

    Parameters
    ----------
    path : a ``.bin`` / ``.pth`` file written by ``torch.save(state_dict)`` (or a ``.safetensors``
        file when the ``safetensors`` package is installed)
    depth : the number of blocks in the file (12 for ViT-B/16)
    build : a function returning the network (default :func:`build_vit_b16`)

    Returns
    -------
    torch.nn.Module in eval mode; ``explain(model, x)`` picks ``blocks.{depth-1}.norm1``, and
    ``method="attention"`` / ``"rollout"`` read its ``nn.MultiheadAttention`` weights
    """
    import torch

    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = (build or build_vit_b16)()
    try:
        model.load_state_dict(timm_state_dict(state, depth))
    except RuntimeError as err:
        raise ValueError(f"the checkpoint {path} does not fit the network: {err}") from err
    return model.eval()
