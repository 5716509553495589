"""ResNet-18/34/50 in plain PyTorch, with torchvision's module names, and a cached trainer for the
chest X-ray lessons.

torchvision does not import alongside the CPU torch wheel this course pins, so the network is
written out here. The module tree matches ``torchvision.models.resnet`` name for name::

    conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc
    BasicBlock:  conv1, bn1, relu (inplace=True), conv2, bn2, downsample
    Bottleneck:  conv1, bn1, conv2, bn2, conv3, bn3, relu (inplace=True), downsample

so ``model.layer4[-1]`` is the last residual block, as in most Grad-CAM code, and a torchvision
``state_dict`` (e.g. ImageNet weights you have on disk) loads with ``strict=True`` when
``in_channels=3``, ``num_classes=1000`` and ``width=64`` (the defaults), whatever the knobs
below except ``width``.

Knobs for small images on a CPU. ``width`` changes the shape of every convolution, BatchNorm and
``fc`` weight (so torchvision's weights no longer fit); the others change no weight's shape:

* ``width``: channels of the first stage (torchvision: 64; 16 trains in seconds);
* ``stem_stride`` and ``stem_pool``: the stem shrinks the image 4× (stride-2 conv, then a max
  pool). On a 64 px image that leaves ``layer4`` a 2 × 2 map, too coarse for Grad-CAM;
* ``stage_strides``: the stride of each stage's first block (torchvision: 1, 2, 2, 2). Stride 1
  keeps the resolution *and* a small receptive field, so each cell of ``layer4`` answers for
  its own neighbourhood: Grad-CAM maps become sharper (the chest X-ray lesson uses ``stem_stride=2,
  stem_pool=False, stage_strides=(1, 2, 1, 1)``: a 16 × 16 ``layer4`` on 64 px images);
* ``replace_stride_with_dilation`` (torchvision's name): keep the resolution but widen the
  receptive field with dilated convolutions, as in segmentation networks;
* ``zero_init_residual`` (torchvision's name): start each block as the identity.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50",
           "DEFAULT_TRAIN_CONFIG", "train_xray_resnet", "predict_proba", "build_resnet"]


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=dilation, dilation=dilation,
                     bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions plus the identity (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carries the stride, as torchvision's "ResNet v1.5"), 1×1 expand ×4."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """A ResNet whose ``state_dict`` keys match torchvision's.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18
    num_classes : outputs of ``fc`` (logits, no softmax)
    in_channels : 1 for grayscale X-rays, 3 for photos
    width : channels of ``layer1`` (torchvision: 64); stages use width × (1, 2, 4, 8)
    stem_stride : stride of ``conv1`` (torchvision: 2)
    stem_pool : keep the 3×3 stride-2 ``maxpool`` (torchvision: True)
        When False, ``maxpool`` is ``nn.Identity``, so the module name still exists.
    zero_init_residual : start each block's last BN at zero (torchvision's option)

    Notes
    -----
    Input ``(N, in_channels, H, W)`` float; output ``(N, num_classes)`` logits.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int],
                 num_classes: int = 1000, in_channels: int = 3, width: int = 64,
                 stem_stride: int = 2, stem_pool: bool = True,
                 replace_stride_with_dilation: Sequence[bool] = (False, False, False),
                 stage_strides: Sequence[int] = (1, 2, 2, 2),
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be four positive block counts; got {layers}")
        if width < 1 or in_channels < 1 or num_classes < 1 or stem_stride not in (1, 2):
            raise ValueError("need width, in_channels, num_classes >= 1 and stem_stride 1 or 2; got "
                             f"{width}, {in_channels}, {num_classes}, {stem_stride}")
        dilate = [bool(d) for d in replace_stride_with_dilation]
        if len(dilate) != 3:
            raise ValueError("replace_stride_with_dilation needs three flags (layer2, layer3, "
                             f"layer4); got {replace_stride_with_dilation}")
        strides = [int(v) for v in stage_strides]
        if len(strides) != 4 or any(v not in (1, 2) for v in strides):
            raise ValueError(f"stage_strides needs four strides of 1 or 2 (layer1..layer4); got "
                             f"{stage_strides}")
        self.config = dict(block=block.__name__, layers=list(layers), num_classes=num_classes,
                           in_channels=in_channels, width=width, stem_stride=stem_stride,
                           stem_pool=stem_pool, replace_stride_with_dilation=dilate,
                           stage_strides=strides)
        self.inplanes = width
        self.dilation = 1
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=stem_stride, padding=3,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if stem_pool else nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0], stride=strides[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], strides[1], dilate[0])
        self.layer3 = self._make_layer(block, width * 4, layers[2], strides[2], dilate[1])
        self.layer4 = self._make_layer(block, width * 8, layers[3], strides[3], dilate[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:  # keep the resolution, widen the receptive field instead (as torchvision)
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, previous_dilation)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything up to and including ``layer4``: (N, C, h, w)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.fc(torch.flatten(x, 1))


_ARCHS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
          "resnet50": (Bottleneck, (3, 4, 6, 3))}


def build_resnet(arch: str = "resnet18", **kwargs: Any) -> ResNet:
    """``resnet18`` / ``resnet34`` / ``resnet50`` by name, with ``ResNet``'s keyword arguments."""
    if arch not in _ARCHS:
        raise ValueError(f"arch must be one of {sorted(_ARCHS)}; got {arch!r}")
    block, layers = _ARCHS[arch]
    return ResNet(block, layers, **kwargs)


def resnet18(num_classes: int = 1000, in_channels: int = 3, width: int = 64,
             **kwargs: Any) -> ResNet:
    """ResNet-18 (BasicBlock, 2-2-2-2). See :class:`ResNet` for the arguments."""
    return build_resnet("resnet18", num_classes=num_classes, in_channels=in_channels,
                        width=width, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, width: int = 64,
             **kwargs: Any) -> ResNet:
    """ResNet-34 (BasicBlock, 3-4-6-3). See :class:`ResNet` for the arguments."""
    return build_resnet("resnet34", num_classes=num_classes, in_channels=in_channels,
                        width=width, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, width: int = 64,
             **kwargs: Any) -> ResNet:
    """ResNet-50 (Bottleneck, 3-4-6-3). See :class:`ResNet` for the arguments."""
    return build_resnet("resnet50", num_classes=num_classes, in_channels=in_channels,
                        width=width, **kwargs)


# --------------------------------------------------------------------------------------------
# Training for the lessons (deterministic, cached)
# --------------------------------------------------------------------------------------------

#: Settings of :func:`train_xray_resnet`. ``version`` changes whenever the training code does, so
#: old cached models are not reused.
DEFAULT_TRAIN_CONFIG: dict[str, Any] = dict(
    # the network: ResNet-18, 12 channels in layer1; on 96 px images the stem halves the size
    # and only layer2 strides again, so layer4 is a 24 × 24 map with a small receptive field
    arch="resnet18", width=12, stem_stride=2, stem_pool=False, stage_strides=(1, 2, 1, 1),
    replace_stride_with_dilation=(False, False, False), zero_init_residual=True,
    # the optimisation
    epochs=6, batch_size=32, lr=3e-3, weight_decay=1e-4, augment_shift=0, seed=0,
    version=3,
)


def _as_arrays(data: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(images (N, C, H, W) float32, labels (N,) int64, fingerprint) from XrayData or a pair."""
    if hasattr(data, "images") and hasattr(data, "labels"):
        images, labels = data.images, data.labels
    else:
        try:
            images, labels = data
        except (TypeError, ValueError):
            raise TypeError("data must be an XrayData or a pair (images (N, C, H, W), labels (N,))"
                            ) from None
    images = np.ascontiguousarray(images, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got {images.shape}. Add the channel axis: "
                         "images[:, None]")
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images (> 0); got {len(images)} images and "
                         f"{len(labels)} labels")
    import hashlib

    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(images.tobytes())
    digest.update(labels.tobytes())
    return images, labels, digest.hexdigest()[:16]


def _model_from_config(config: dict[str, Any], in_channels: int, num_classes: int) -> ResNet:
    return build_resnet(config["arch"], num_classes=num_classes, in_channels=in_channels,
                        width=config["width"], stem_stride=config["stem_stride"],
                        stem_pool=config["stem_pool"],
                        replace_stride_with_dilation=config["replace_stride_with_dilation"],
                        stage_strides=config["stage_strides"],
                        zero_init_residual=config["zero_init_residual"])


def train_xray_resnet(data: Any, config: dict[str, Any] | None = None, *, cache: bool = True,
                      progress: bool = True, num_classes: int = 2) -> ResNet:
    """Train a ResNet on chest X-rays, or load the same training's result from the cache.

    Training is deterministic: the weights, the batch order and the optimiser all follow
    ``config["seed"]``. The cached file's name holds a hash of the whole config and of the
    training images and labels, so changing either trains a new model; writing is atomic, so two
    kernels training at once do not corrupt the file.

    Parameters
    ----------
    data : XrayData, or a pair ``(images (N, C, H, W) float32, labels (N,) int)``
    config : dict or None
        Overrides of :data:`DEFAULT_TRAIN_CONFIG`: the network (``arch``, ``width``,
        ``stem_stride``, ``stem_pool``, ``stage_strides``, ``replace_stride_with_dilation``,
        ``zero_init_residual``) and the optimisation (``epochs``, ``batch_size``, ``lr`` — the
        peak of a one-cycle schedule for AdamW —, ``weight_decay``, ``augment_shift`` — random
        translations of up to that many pixels —, ``seed``). Unknown keys raise ``KeyError`` (a
        typo would otherwise silently train the default).
    cache : bool
        Look for / store the trained weights in :func:`gradcam_helpers.course.cache.cache_dir`.
    progress : bool
        Show a progress bar while training (epoch, loss and accuracy of the running epoch);
        see :func:`gradcam_helpers.engine.progress.progress`.

    Returns
    -------
    ResNet in eval mode. ``model.history`` holds per-epoch ``loss`` and ``accuracy`` on the
    training data, ``model.train_config`` the full config, ``model.cache_path`` the file (or None)
    and ``model.from_cache`` whether it was loaded instead of trained.
    """
    from ..cache import atomic_write, cache_path, load_or_train

    unknown = sorted(set(config or {}) - set(DEFAULT_TRAIN_CONFIG))
    if unknown:
        raise KeyError(f"unknown training settings {unknown}; known: {sorted(DEFAULT_TRAIN_CONFIG)}")
    cfg = {**DEFAULT_TRAIN_CONFIG, **(config or {})}
    images, labels, fingerprint = _as_arrays(data)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}; got {np.unique(labels)}")
    in_channels = images.shape[1]

    def train():
        return _train(cfg, images, labels, in_channels, num_classes, progress)

    def load(file):
        stored = torch.load(file, map_location="cpu", weights_only=True)
        model = _model_from_config(cfg, in_channels, num_classes)
        model.load_state_dict(stored["state_dict"])
        return model, stored["history"]

    def save(result, file):
        blob = {"state_dict": result[0].state_dict(), "history": result[1], "config": dict(cfg)}
        atomic_write(file, lambda tmp: torch.save(blob, tmp))

    path = None
    if cache:
        key_config = {**cfg, "data": fingerprint, "num_classes": num_classes, "in_channels": in_channels}
        path = cache_path(f"xray_{cfg['arch']}_w{cfg['width']}", key_config, ".pt", framework="torch")
        (model, history), from_cache = load_or_train(path, load, train, save)
    else:
        (model, history), from_cache = train(), False
    model.eval()
    model.history = history
    model.train_config = cfg
    model.cache_path = path
    model.from_cache = from_cache
    return model


def _train(cfg: dict[str, Any], images: np.ndarray, labels: np.ndarray, in_channels: int,
           num_classes: int, progress: bool) -> tuple[ResNet, dict]:
    from ...engine.progress import progress as progress_bar

    torch.manual_seed(cfg["seed"])
    model = _model_from_config(cfg, in_channels, num_classes)
    if num_classes == 2:
        # Only the difference of the two logits matters to softmax; start the two rows of fc as
        # opposites (the gradients of the two rows are opposite too, so they stay that way).
        # Each class's logit is then its evidence *against the other class*, without a common
        # part that Grad-CAM of one logit would also paint.
        with torch.no_grad():
            model.fc.weight[0] = -model.fc.weight[1]
            model.fc.bias.zero_()
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    n, bs, epochs = len(x_all), int(cfg["batch_size"]), int(cfg["epochs"])
    steps_per_epoch = (n + bs - 1) // bs
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg["lr"],
                                  weight_decay=cfg["weight_decay"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg["lr"],
                                                   total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.25)
    order_rng = torch.Generator().manual_seed(cfg["seed"])
    loss_fn = nn.CrossEntropyLoss()
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "seconds": []}
    shift = int(cfg["augment_shift"])
    bar = progress_bar(total=epochs * steps_per_epoch, desc="training", unit="batch",
                       disable=not progress)
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=order_rng)
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * bs:(step + 1) * bs]
            xb, yb = x_all[idx], y_all[idx]
            if shift:
                xb = _random_shift(xb, shift, order_rng)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            bar.update(1)
        history["loss"].append(total_loss / n)
        history["accuracy"].append(correct / n)
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{total_loss / n:.3f}",
                        acc=f"{correct / n:.3f}")
    bar.close()
    optimiser.zero_grad(set_to_none=True)   # hand back a model without leftover .grad tensors
    _recompute_batchnorm_statistics(model, x_all, bs)
    model.eval()
    return model, history


def _recompute_batchnorm_statistics(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    """Replace the running BatchNorm statistics (an average over weights that kept changing
    during training) by exact averages over the training images under the final weights."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def _random_shift(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``shift`` pixels (edges replicated)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w]
                        for i, (dy, dx) in enumerate(offsets.tolist())])


def predict_proba(model: nn.Module, images: np.ndarray | torch.Tensor,
                  batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities ``(N, K)`` float32 for images ``(N, C, H, W)``; the model's
    train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)) if not torch.is_tensor(images) \
        else images.float()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out.append(torch.softmax(model(x[start:start + batch_size]), dim=1))
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)
