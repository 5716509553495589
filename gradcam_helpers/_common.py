"""What the pipeline and both adapters share: the capture record, target checks, layer listings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class Capture:
    """What an adapter hands to the framework-free core for one batch.

    activations : (N, h, w, K) float32, channels-last, the target layer's output
    gradients : (N, h, w, K) float32 or None, d score_i / d activations (score = pre-softmax logit)
    logits : (N, classes) float32, the class scores before softmax
    targets : (N,) int64, the class explained for each image
    """

    activations: np.ndarray
    gradients: np.ndarray | None
    logits: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class LayerCall:
    """One layer/module call seen in a dry forward pass (in the order the calls finished)."""

    name: str
    kind: str  # class name, e.g. "Conv2D", "BasicBlock"
    output_shape: tuple | None  # None when the output is not a single tensor
    is_pooling: bool
    calls: int


def resolve_targets(target, logits: np.ndarray) -> np.ndarray:
    """Turn the user's ``target`` into one class index per image, checking it against the logits.

    ``None`` → each image's top class; an int → that class for every image; a sequence → one
    class per image.
    """
    n, classes = logits.shape
    if target is None:
        return np.argmax(logits, axis=1).astype(np.int64)
    values = np.asarray(target)
    if values.dtype.kind not in "iu" and not (values.dtype.kind == "f" and np.all(values == np.round(values))):
        raise ValueError(f"target must be None, an int or a list of ints (class indices); got {target!r}")
    values = values.astype(np.int64)
    if values.ndim == 0:
        values = np.full(n, int(values), dtype=np.int64)
    elif values.shape != (n,):
        raise ValueError(f"got {values.size} targets for {n} images: pass one class index per image, "
                         "a single int for all of them, or None for each image's top class")
    bad = values[(values < 0) | (values >= classes)]
    if bad.size:
        raise ValueError(f"target class {int(bad[0])} is out of range: the model has {classes} classes "
                         f"(valid indices 0 … {classes - 1})")
    return values


def describe_candidates(calls: Sequence[LayerCall], limit: int = 12) -> str:
    """A short list of the non-pooling layers that have a spatial (4-D) output, deepest last."""
    spatial = [c for c in calls
               if c.output_shape is not None and len(c.output_shape) == 4 and not c.is_pooling]
    names = [f"{c.name} {tuple(c.output_shape[1:])}" for c in spatial]
    if len(names) > limit:
        names = ["…"] + names[-limit:]
    return ", ".join(names) if names else "(none: this model has no layer with a 4-D output)"


def check_batch(images, channels_axis: int, expected_channels: int | None, framework: str) -> None:
    """Rank, emptiness and channel checks with messages that say how to fix the input."""
    shape = tuple(images.shape)
    layout = "(N, H, W, C)" if channels_axis == -1 else "(N, C, H, W)"
    if len(shape) != 4:
        hint = ""
        if len(shape) == 3:
            hint = (" — for one image add the batch axis (x[None] / np.expand_dims(x, 0)); for a batch"
                    " of grayscale images add the channel axis")
        elif len(shape) == 2:
            hint = " — a single grayscale image needs both a batch and a channel axis"
        raise ValueError(f"{framework} images must be a 4-D batch {layout}; got shape {shape}{hint}")
    if shape[0] == 0:
        raise ValueError("the batch is empty (N = 0): pass at least one image")
    if expected_channels is not None and shape[channels_axis] != expected_channels:
        other = 1 if channels_axis == -1 else -1
        hint = ""
        if shape[other] == expected_channels:
            hint = (" — the channels look like they are on the wrong axis: "
                    + ("use x.permute(0, 3, 1, 2) (PyTorch wants channels first)" if framework == "PyTorch"
                       else "use np.transpose(x, (0, 2, 3, 1)) (Keras wants channels last)"))
        elif expected_channels == 3 and shape[channels_axis] == 1:
            hint = " — repeat the grayscale channel three times or build the model for 1 channel"
        raise ValueError(f"the model expects {expected_channels} channel(s) but the images have "
                         f"{shape[channels_axis]} on the channel axis of {layout}{hint}")


def guided_backprop_message(unit: str) -> str:
    """Guided Backprop on a model without ReLU layers (the same advice in both frameworks)."""
    return (f"Guided Backprop changes the backward pass of ReLU {unit}s, and this model has none "
            f"(a ReLU called as a function inside another {unit} cannot be seen): use "
            "method='saliency' or 'integrated_gradients', or build the model with ReLU "
            f"{unit}s")
