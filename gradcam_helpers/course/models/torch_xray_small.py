"""Two small PyTorch networks on the synthetic chest X-rays, for lesson 15 (targets beyond one
class score), and one cached trainer for both.

* :class:`XrayCNN` — a classifier with ``outputs`` independent logits and *no* final activation:
  one logit is a **binary** model (``p = sigmoid(z)``: PNEUMONIA when ``z > 0``), two logits a
  **multi-label** model (one sigmoid per label, e.g. "an opacity in the image-left lung" and "… in
  the image-right lung": both can be true at once)::

      image (N, 1, H, W)
        → block1 (conv 3×3, BN, ReLU) → pool1 → block2 → pool2 → block3 → block4
        → gap (AdaptiveAvgPool2d(1)) → fc Linear(width * 4, outputs)            logits (N, outputs)

  ``block4`` (stride 4: a 16 × 16 map on 64 px images) is the layer the lesson explains; global
  average pooling followed by one linear layer is CAM's architecture, so CAM applies too.

* :class:`LungUNet` — a small U-Net-like **segmentation** network (Ronneberger et al., MICCAI 2015,
  "U-Net: Convolutional Networks for Biomedical Image Segmentation", shrunk): an encoder that halves
  the resolution twice, a decoder that doubles it back with skip connections, and a 1 × 1 head with
  one logit per pixel, "lung"::

      image → enc1 (H) → pool → enc2 (H/2) → pool → bottleneck (H/4)
            → up → dec2 ([up, enc2], H/2) → up → dec1 ([up, enc1], H) → head (1×1)   (N, 1, H, W)

Both are trained by :func:`train_sigmoid_model` with binary cross-entropy on the logits (one
sigmoid per output value: per label, or per pixel), deterministically (seeded weights and batch
order), and cached: the file name holds a hash of the settings, of the training data and of the
thread count (:mod:`gradcam_helpers.course.cache`), and is written atomically.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["XrayCNN", "LungUNet", "side_labels", "train_sigmoid_model", "DEFAULT_CONFIG",
           "predict_logits"]


def _block(cin: int, cout: int) -> nn.Sequential:
    """conv 3×3 (no bias: BN has one) → BatchNorm → ReLU, resolution kept."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def _sizes(**sizes: int) -> dict[str, int]:
    """The constructor's sizes, checked (each at least 1)."""
    bad = {k: v for k, v in sizes.items() if int(v) < 1}
    if bad:
        raise ValueError(f"{', '.join(sizes)} must be >= 1; got {bad}")
    return {k: int(v) for k, v in sizes.items()}


class XrayCNN(nn.Module):
    """A small GAP classifier with ``outputs`` logits (no sigmoid: the loss and the engine apply it).

    Input ``(N, in_channels, H, W)`` float (H, W multiples of 4); output ``(N, outputs)`` logits.

    Parameters
    ----------
    outputs : int
        Number of logits: 1 for a binary model, L for L labels.
    width : int
        Channels of ``block1``; the blocks have width × (1, 2, 4, 4).
    in_channels : int
        1 for grayscale X-rays.
    """

    def __init__(self, outputs: int = 1, width: int = 12, in_channels: int = 1) -> None:
        super().__init__()
        self.config = _sizes(outputs=outputs, width=width, in_channels=in_channels)
        self.block1 = _block(in_channels, width)
        self.pool1 = nn.MaxPool2d(2)
        self.block2 = _block(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.block3 = _block(2 * width, 4 * width)
        self.block4 = _block(4 * width, 4 * width)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.block1(x))
        x = self.block4(self.block3(self.pool2(self.block2(x))))
        return self.fc(torch.flatten(self.gap(x), 1))


class LungUNet(nn.Module):
    """A small U-Net: one logit per pixel (``classes=1``: lung or not; more classes: one logit
    each, e.g. for a softmax over classes).

    Input ``(N, in_channels, H, W)`` float (H, W multiples of 4); output ``(N, classes, H, W)``
    logits at the input's resolution.

    Parameters
    ----------
    classes : int
        Output channels of the 1 × 1 head.
    width : int
        Channels of ``enc1``; ``enc2`` and ``bottleneck`` have 2× and 4× that.
    in_channels : int
        1 for grayscale X-rays.
    """

    def __init__(self, classes: int = 1, width: int = 8, in_channels: int = 1) -> None:
        super().__init__()
        self.config = _sizes(classes=classes, width=width, in_channels=in_channels)
        self.enc1 = _block(in_channels, width)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = _block(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.bottleneck = nn.Sequential(_block(2 * width, 4 * width), _block(4 * width, 4 * width))
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec2 = _block(6 * width, 2 * width)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = _block(3 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"LungUNet needs a height and width divisible by 4; got "
                             f"{tuple(x.shape[-2:])}")
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool1(e1))
        b = self.bottleneck(self.pool2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


def side_labels(lesion_masks: np.ndarray) -> np.ndarray:
    """Multi-label targets from lesion masks: (opacity in the image-left half, … right half).

    Parameters
    ----------
    lesion_masks : (N, H, W) bool — e.g. ``XrayData.lesion_masks``

    Returns
    -------
    (N, 2) float32 in {0, 1}: column 0 "an opacity in the left half of the image" (the patient's
    right lung), column 1 "… in the right half" (the patient's left lung). A NORMAL image is
    (0, 0); a PNEUMONIA image can have one or both.
    """
    masks = np.asarray(lesion_masks, dtype=bool)
    if masks.ndim != 3:
        raise ValueError(f"lesion_masks must be (N, H, W); got {masks.shape}")
    half = masks.shape[2] // 2
    return np.stack([masks[:, :, :half].any(axis=(1, 2)), masks[:, :, half:].any(axis=(1, 2))],
                    axis=1).astype(np.float32)


#: Settings of :func:`train_sigmoid_model`. ``version`` changes whenever the training code does.
DEFAULT_CONFIG: dict[str, Any] = dict(width=12, epochs=5, batch_size=32, lr=3e-3,
                                      weight_decay=1e-4, seed=0, version=1)

_ARCHITECTURES = {"classifier": XrayCNN, "unet": LungUNet}


def _build(kind: str, cfg: dict, in_channels: int, outputs: int) -> nn.Module:
    if kind == "classifier":
        return XrayCNN(outputs=outputs, width=cfg["width"], in_channels=in_channels)
    return LungUNet(classes=outputs, width=cfg["width"], in_channels=in_channels)


def _check_data(kind: str, images, targets) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(images, dtype=np.float32)
    y = np.ascontiguousarray(targets, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got {x.shape}. Add the channel axis: "
                         "images[:, None]")
    if len(x) == 0 or len(y) != len(x):
        raise ValueError(f"need as many targets as images (> 0); got {len(x)} images and "
                         f"{len(y)} targets")
    if kind == "classifier" and y.ndim != 2:
        raise ValueError(f"a classifier's targets are (N, outputs) in {{0, 1}}; got {y.shape}. For "
                         "one binary label use labels[:, None]")
    if kind == "unet" and (y.ndim != 4 or y.shape[2:] != x.shape[2:]):
        raise ValueError(f"a U-Net's targets are masks (N, classes, H, W) of the images' size "
                         f"{x.shape[2:]}; got {y.shape}. For one mask per image use masks[:, None]")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("targets must be 0 or 1 (one sigmoid per output value)")
    return x, y


def train_sigmoid_model(kind: str, images: np.ndarray, targets: np.ndarray,
                        config: dict[str, Any] | None = None, *, cache: bool = True,
                        progress: bool = True) -> nn.Module:
    """Train an :class:`XrayCNN` (``kind="classifier"``) or a :class:`LungUNet` (``"unet"``) with
    binary cross-entropy on its logits, or load the same training's result from the cache.

    Parameters
    ----------
    kind : "classifier" or "unet"
    images : (N, C, H, W) float32 in [0, 1]
    targets : classifier: (N, outputs) in {0, 1} (one column per label; (N, 1) for a binary
        model); U-Net: (N, classes, H, W) masks in {0, 1}
    config : overrides of :data:`DEFAULT_CONFIG` — ``width`` (first block's channels; the U-Net's
        default in the lesson is 8), ``epochs``, ``batch_size``, ``lr`` (peak of a one-cycle
        schedule for AdamW), ``weight_decay``, ``seed``. Unknown keys raise ``KeyError``.
    cache : look for / store the weights in :func:`gradcam_helpers.course.cache.cache_dir`
    progress : show a progress bar (loss of the running epoch)

    Returns
    -------
    nn.Module in eval mode, with ``history`` (per epoch ``loss`` and ``seconds``), ``train_config``,
    ``cache_path`` (or None) and ``from_cache``.
    """
    from ..cache import atomic_write, cache_path, load_or_train

    if kind not in _ARCHITECTURES:
        raise ValueError(f"kind must be one of {sorted(_ARCHITECTURES)}; got {kind!r}")
    unknown = sorted(set(config or {}) - set(DEFAULT_CONFIG))
    if unknown:
        raise KeyError(f"unknown training settings {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    x, y = _check_data(kind, images, targets)
    in_channels, outputs = x.shape[1], y.shape[1]

    def train():
        return _train(kind, cfg, x, y, progress)

    def load(file):
        stored = torch.load(file, map_location="cpu", weights_only=True)
        model = _build(kind, cfg, in_channels, outputs)
        model.load_state_dict(stored["state_dict"])
        return model, stored["history"]

    def save(result, file):
        blob = {"state_dict": result[0].state_dict(), "history": result[1], "config": dict(cfg)}
        atomic_write(file, lambda tmp: torch.save(blob, tmp))

    path = None
    if cache:
        from ..cache import fingerprint

        key = {**cfg, "kind": kind, "data": fingerprint(x, y)}
        path = cache_path(f"xray_{kind}_w{cfg['width']}", key, ".pt", framework="torch")
        (model, history), from_cache = load_or_train(path, load, train, save)
    else:
        (model, history), from_cache = train(), False
    model.eval()
    model.history = history
    model.train_config = cfg
    model.cache_path = path
    model.from_cache = from_cache
    return model


def _train(kind: str, cfg: dict, x: np.ndarray, y: np.ndarray, progress: bool):
    from ...engine.progress import progress as progress_bar
    from .torch_resnet import _recompute_batchnorm_statistics

    torch.manual_seed(cfg["seed"])
    model = _build(kind, cfg, x.shape[1], y.shape[1])
    x_all, y_all = torch.from_numpy(x), torch.from_numpy(y)
    n, bs, epochs = len(x_all), int(cfg["batch_size"]), int(cfg["epochs"])
    steps = (n + bs - 1) // bs
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg["lr"],
                                                   total_steps=epochs * steps, pct_start=0.25)
    order_rng = torch.Generator().manual_seed(cfg["seed"])
    loss_fn = nn.BCEWithLogitsLoss()
    history: dict[str, list[float]] = {"loss": [], "seconds": []}
    bar = progress_bar(total=epochs * steps, desc=f"training {kind}", unit="batch",
                       disable=not progress)
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=order_rng)
        total = 0.0
        for step in range(steps):
            idx = order[step * bs:(step + 1) * bs]
            loss = loss_fn(model(x_all[idx]), y_all[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            bar.update(1)
        history["loss"].append(total / n)
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{total / n:.3f}")
    bar.close()
    optimiser.zero_grad(set_to_none=True)
    _recompute_batchnorm_statistics(model, x_all, bs)
    model.eval()
    return model, history


def predict_logits(model: nn.Module, images: np.ndarray | torch.Tensor,
                   batch_size: int = 128) -> np.ndarray:
    """The model's logits as float32 NumPy (any output shape), without gradients; the model's
    train/eval mode is restored afterwards.

    Parameters
    ----------
    images : (N, C, H, W) float

    Returns
    -------
    (N, ...) float32 — (N, outputs) for :class:`XrayCNN`, (N, classes, H, W) for :class:`LungUNet`
    """
    was_training = model.training
    model.eval()
    x = images.float() if torch.is_tensor(images) else torch.from_numpy(
        np.ascontiguousarray(images, dtype=np.float32))
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out.append(model(x[start:start + batch_size]))
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32)
