"""One entry point for both frameworks: ``explain(model, images, method=..., layer=..., target=...)``.

The pipeline is the same for every method and both frameworks:

1. the adapter checks the images and captures, in one forward pass (plus one backward pass down to
   the target layer for gradient methods), the activations, gradients and pre-softmax logits;
2. the framework-free core (``methods``) turns them into raw maps at feature resolution;
3. the maps are upsampled to the input size and normalised per image to [0, 1].
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import methods as core



@dataclass
class Explanation:
    """The result of :func:`explain`.

    Attributes
    ----------
    maps : (N, H, W) float32 in [0, 1] — at input resolution, each map divided by its own maximum
        (an all-zero map stays all zero)
    raw : (N, h, w) float32 >= 0 — at the target layer's resolution, after ReLU, before normalisation;
        for pixel attributions (N, H, W, C) float32, signed, channels last, at input resolution
    targets : (N,) int64 — the class explained for each image
    logits : (N, classes) float32 — the model's class scores before softmax
    layer : str — the target layer's name (Keras) or dotted path (PyTorch)
    method : str
    framework : "keras" or "torch"
    """

    maps: np.ndarray
    raw: np.ndarray
    targets: np.ndarray
    logits: np.ndarray
    layer: str
    method: str
    framework: str
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def scores(self) -> np.ndarray:
        """(N,) the pre-softmax score of each image's target class."""
        return self.logits[np.arange(len(self.targets)), self.targets]

    @property
    def probabilities(self) -> np.ndarray:
        """(N, classes) softmax of the logits."""
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def __len__(self) -> int:
        return len(self.maps)


def _make_adapter(model, layer, score_fn):
    # "is it Keras?" first: under KERAS_BACKEND=torch a Keras layer is also a torch.nn.Module
    from .keras_adapter import is_keras_model
    from .torch_adapter import is_torch_model

    if is_keras_model(model):
        from .keras_adapter import KerasAdapter

        return KerasAdapter(model, layer=layer, score_fn=score_fn)
    if is_torch_model(model):
        from .torch_adapter import TorchAdapter

        return TorchAdapter(model, layer=layer, score_fn=score_fn)
    raise TypeError(f"explain() takes a keras.Model or a torch.nn.Module; got {type(model).__name__}")


class Explainer:
    """A reusable explainer for one model and one target layer.

    The first call inspects the model once (a dry forward pass on one image finds the target layer
    and the final softmax); later calls reuse that. Nothing is left attached to the model between
    calls: no hooks, no wrappers.

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    layer : None, a name / dotted path, or the layer/module itself (see :func:`explain`)
    score_fn : optional callable mapping the model's output to (N, classes) class scores; by default
        a final softmax/sigmoid is bypassed and its input (the logits) is used
    batch_size : images per forward pass (memory bound); the result is the same for any value
    score_cam_batch_size : masked images per forward pass in Score-CAM
    score_cam_convention : ``"paper"`` or ``"channel_softmax"`` (see :func:`methods.score_cam_weights`)
    score_cam_channels : None (exact Score-CAM) or k: only the k channels of highest activation
        variance get a forward pass — faster, approximate ("Faster Score-CAM")
    score_cam_fast : PyTorch: run Score-CAM's masked passes on an equivalent copy of the model
        with BatchNorm folded into the convolutions and channels-last memory (see
        ``TorchAdapter.inference_copy``; the same maps up to float rounding). False: the model itself
    progress : show a progress bar with an ETA for Score-CAM (True/False; None = only when it is
        slow: more than 2,048 masked passes)
    """

    def __init__(self, model, layer=None, *, score_fn: Callable | None = None, batch_size: int = 32,
                 score_cam_batch_size: int = 16, score_cam_convention: str = "paper",
                 score_cam_channels: int | None = None, score_cam_fast: bool = True,
                 progress: bool | None = None):
        if batch_size < 1 or score_cam_batch_size < 1:
            raise ValueError("batch sizes must be at least 1")
        self.adapter = _make_adapter(model, layer, score_fn)
        self.batch_size = batch_size
        self.score_cam_batch_size = score_cam_batch_size
        if score_cam_convention not in ("paper", "channel_softmax"):
            raise ValueError(f"unknown Score-CAM convention {score_cam_convention!r}; use 'paper' or "
                             "'channel_softmax'")
        self.score_cam_convention = score_cam_convention
        if score_cam_channels is not None and score_cam_channels < 1:
            raise ValueError(f"score_cam_channels must be None (exact) or at least 1; got "
                             f"{score_cam_channels}")
        self.score_cam_channels = score_cam_channels
        self.score_cam_fast = score_cam_fast
        self.progress = progress

    @property
    def layer(self) -> str:
        """The target layer's name; known after the first call."""
        return self.adapter.layer_name

    def __call__(self, images, method: str = "gradcam", target=None, **method_options) -> Explanation:
        """Explain a batch. See :func:`explain` for the arguments and the result."""
        spec = core.get_method(method)
        allowed = _METHOD_OPTIONS.get(spec.name, ())
        unknown = sorted(set(method_options) - set(allowed))
        if unknown:
            raise TypeError(f"method {spec.name!r} takes no option(s) {', '.join(unknown)}"
                            + (f"; its options are: {', '.join(allowed)}" if allowed else ""))
        x = self.adapter.validate(images)
        n = len(x)
        targets = None if target is None else np.asarray(target)
        if targets is not None and targets.ndim == 1 and len(targets) != n:
            raise ValueError(f"got {len(targets)} targets for {n} images: pass one class index per "
                             "image, a single int for all of them, or None for each image's top class")
        if spec.needs == "input_gradients":
            return self._explain_pixels(x, spec, target, method_options)
        parts = []
        for start in range(0, n, self.batch_size):
            chunk = slice(start, start + self.batch_size)
            t = targets if targets is None or targets.ndim == 0 else targets[chunk]
            parts.append(self._explain_batch(x[chunk], spec, t))
        raw = np.concatenate([p[0] for p in parts])
        capture_logits = np.concatenate([p[1] for p in parts])
        used_targets = np.concatenate([p[2] for p in parts])
        size = self.adapter.spatial_size(x)
        maps = core.normalize_maps(core.resize_maps(raw, size))
        return Explanation(maps=maps, raw=raw.astype(np.float32), targets=used_targets,
                           logits=capture_logits, layer=self.adapter.layer_name, method=spec.name,
                           framework=self.adapter.framework)

    def _explain_pixels(self, x, spec: core.Method, target, options: dict) -> Explanation:
        """Pixel attributions: the adapter gives input gradients, ``attributions`` the math."""
        from . import attributions as attr

        adapter = self.adapter
        nhwc = np.ascontiguousarray(adapter.to_channels_last(x), dtype=np.float32)
        size = self.batch_size
        grads, logits, targets = [], [], []
        for start in range(0, len(nhwc), size):
            t = target if target is None or np.ndim(target) == 0 else np.asarray(target)[start:start + size]
            g, z, used = adapter.input_gradients(nhwc[start:start + size], t)
            grads.append(g), logits.append(z), targets.append(used)
        grads, logits, targets = np.concatenate(grads), np.concatenate(logits), np.concatenate(targets)

        def plain(batch, t):
            return adapter.input_gradients(batch, t)[:2]

        def guided(batch, t):
            return adapter.input_gradients(batch, t, guided=True)[:2]

        extras: dict = {}
        layer = "input"
        if spec.name == "saliency":
            raw = grads
        elif spec.name == "smoothgrad":
            raw = attr.smoothgrad(nhwc, targets, plain, batch_size=size, **options)
        elif spec.name == "integrated_gradients":
            options = dict(options)
            options["baseline"] = self._baseline_nhwc(options.get("baseline"), x)
            raw, base_logits = attr.integrated_gradients(nhwc, targets, plain, batch_size=size, **options)
            rows = np.arange(len(targets))
            extras["baseline_scores"] = base_logits[rows, targets]
            extras["delta"] = (raw.astype(np.float64).sum(axis=(1, 2, 3))
                               - (logits[rows, targets] - extras["baseline_scores"]))
        elif spec.name == "guided_backprop":
            raw = attr.guided_backprop(nhwc, targets, guided, batch_size=size)
        elif spec.name == "guided_gradcam":
            gb = attr.guided_backprop(nhwc, targets, guided, batch_size=size)
            cam = self(x, method="gradcam", target=targets)
            raw = attr.guided_gradcam(gb, cam.maps)
            extras["gradcam"], extras["guided_backprop"] = cam.maps, gb
            layer = cam.layer
        else:  # pragma: no cover - the registry and this switch are edited together
            raise NotImplementedError(spec.name)
        if not np.all(np.isfinite(raw)):
            raise FloatingPointError(f"{spec.name} produced non-finite values: check the model's "
                                     "output for NaN/inf")
        return Explanation(maps=attr.to_maps(raw), raw=np.asarray(raw, np.float32), targets=targets,
                           logits=logits, layer=layer, method=spec.name,
                           framework=adapter.framework, extras=extras)

    def _baseline_nhwc(self, baseline, x):
        """The user's baseline (a number, one image or a batch, in the model's own layout) as
        channels-last; the same error in both frameworks for a wrong shape."""
        from .attributions import baseline_error

        if baseline is None:
            return None
        b = baseline.detach().cpu().numpy() if hasattr(baseline, "detach") else np.asarray(baseline)
        if b.ndim == 0:
            return b.astype(np.float32)
        shape = tuple(x.shape)
        if b.shape not in (shape, shape[1:]):
            layout = "N, C, H, W" if self.adapter.channels_axis == 1 else "N, H, W, C"
            raise ValueError(baseline_error(b.shape, shape, layout))
        b = np.broadcast_to(b, shape).astype(np.float32)
        return b.transpose(0, 2, 3, 1) if self.adapter.channels_axis == 1 else b

    def _explain_batch(self, x, spec: core.Method, target):
        adapter = self.adapter
        cap = adapter.capture(x, target, gradients=spec.needs == "gradients")
        a = cap.activations
        if spec.needs == "gradients":
            raw = spec.fn(a, cap.gradients)
        elif spec.needs == "activations":
            raw = spec.fn(a)
        elif spec.needs == "cam_weights":
            weights = adapter.cam_class_weights()  # (K, classes)
            if weights.shape[0] != a.shape[-1]:
                raise ValueError(f"the Dense kernel has {weights.shape[0]} inputs but the layer "
                                 f"{adapter.layer_name!r} has {a.shape[-1]} channels")
            raw = spec.fn(a, weights[:, cap.targets].T)
        elif spec.needs == "scores":
            raw = spec.fn(a, self._score_cam_weights(x, cap))
        else:
            raise NotImplementedError(f"the pipeline cannot yet provide what {spec.name!r} needs "
                                      f"({spec.needs!r})")
        if not np.all(np.isfinite(raw)):
            raise FloatingPointError(f"{spec.name} produced non-finite values: check the model's "
                                     "output for NaN/inf (e.g. a log of 0 in the last layer)")
        return raw, cap.logits, cap.targets

    def _score_cam_weights(self, x, cap) -> np.ndarray:
        """(N, K) Score-CAM channel weights from forward passes of masked copies of each image.

        Exact, with less work than one pass per channel: a channel whose activation is zero
        everywhere has an all-zero mask and contributes weight × 0 = 0 to the map, so it gets no
        forward pass (with ``"channel_softmax"``, which normalises over channels, all such channels
        share the logits of one pass of the all-zero image). Masks are made one batch at a time
        (not all K at once), multiply the image on the model's device, and the passes run without
        autograd, with the model's modes and hooks set up once per image.
        ``score_cam_channels=k`` keeps only the k channels of highest activation variance (the
        "Faster Score-CAM" approximation; the rest get weight 0).
        """
        from .progress import progress

        adapter = self.adapter
        acts = cap.activations  # (N, h, w, K)
        size = adapter.spatial_size(x)
        n, k = acts.shape[0], acts.shape[-1]
        live = [np.flatnonzero(np.any(acts[i] != 0, axis=(0, 1))) for i in range(n)]
        if self.score_cam_channels is not None:
            live = [c[np.argsort(-acts[i][..., c].reshape(-1, len(c)).var(axis=0),
                                 kind="stable")[:self.score_cam_channels]]
                    for i, c in enumerate(live)]
        share_dead = self.score_cam_convention == "channel_softmax" and self.score_cam_channels is None
        total = sum(len(c) + (share_dead and len(c) < k) for c in live)
        show = self.progress if self.progress is not None else total > 2048
        weights = np.zeros((n, k))
        with progress(total=total, desc="Score-CAM", unit="mask", disable=not show) as bar:
            for i in range(n):
                logits = np.zeros((k, adapter.num_classes), np.float32)
                with adapter.masked_scorer(x[i:i + 1], fast=self.score_cam_fast) as score:
                    for start in range(0, len(live[i]), self.score_cam_batch_size):
                        chunk = live[i][start:start + self.score_cam_batch_size]
                        masks = core.score_cam_masks(acts[i:i + 1, :, :, chunk], size)[0]
                        logits[chunk] = score(masks)
                        bar.update(len(chunk))
                    dead = np.setdiff1d(np.arange(k), live[i])
                    if share_dead and len(dead):
                        logits[dead] = score(np.zeros((1, *size), np.float32))[0]
                        bar.update(1)
                used = live[i] if not share_dead else np.arange(k)
                if len(used):
                    weights[i, used] = core.score_cam_weights(logits[used], int(cap.targets[i]),
                                                              self.score_cam_convention)
        return weights


#: options of one call, by method (the other keyword arguments of explain() go to Explainer)
_METHOD_OPTIONS = {
    "smoothgrad": ("samples", "noise", "seed"),
    "integrated_gradients": ("baseline", "steps", "rule"),
}


def explain(model, images, method: str = "gradcam", layer=None, target=None, *,
            score_fn: Callable | None = None, **options: Any) -> Explanation:
    """Explain why ``model`` classified ``images`` as it did, with a CAM-family method.

    Parameters
    ----------
    model : keras.Model (Functional, Sequential, nested base, subclassed) or torch.nn.Module
    images : Keras: (N, H, W, C) float array; PyTorch: (N, C, H, W) tensor or array.
        Preprocessed the way the model expects.
    method : a CAM method — "cam", "gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
        "eigencam", "scorecam" — or a pixel attribution — "saliency", "smoothgrad",
        "integrated_gradients", "guided_backprop", "guided_gradcam" (see
        :mod:`gradcam_helpers.attributions` for each one's formula and paper)
    layer : None (automatic: the last layer with a 4-D output that is not a pooling layer), a name
        (Keras; nested models are searched) / dotted path such as "layer4.1" or "layer4[-1]"
        (PyTorch), or the layer/module object
    target : None (each image's top class), an int (that class for every image) or a sequence of
        ints (one per image)
    score_fn, **options : see :class:`Explainer`; and the options of one method:
        ``samples`` (25), ``noise`` (0.15), ``seed`` (0) for "smoothgrad";
        ``baseline`` (None: zeros of the model's input; a number, one image or a batch in the
        images' layout), ``steps`` (50), ``rule`` ("gausslegendre") for "integrated_gradients"

    Returns
    -------
    Explanation
        ``maps`` (N, H, W) float32 in [0, 1] at input resolution, ``raw`` (N, h, w), ``targets``,
        ``logits`` (pre-softmax), ``scores``, ``layer``, ``method``.

        For pixel attributions ``raw`` is the signed attribution per input element, channels
        last (N, H, W, C) in both frameworks (captum's ``Saliency(abs=False)``,
        ``IntegratedGradients``, ``GuidedBackprop``), and ``maps`` is
        :func:`gradcam_helpers.attributions.to_maps` of it: sum over channels of ``|raw|``,
        divided by each map's maximum. ``layer`` is "input" (Guided Grad-CAM: the Grad-CAM layer).
        Integrated Gradients adds ``extras["baseline_scores"]`` and ``extras["delta"]`` (sum of
        the attributions minus (score − baseline score): completeness says it is ~0).

    Notes
    -----
    Gradient methods differentiate the class score *before* softmax: the softmax output of a
    confident prediction is flat, so its gradient is nearly zero and the map degenerates.

    Calling ``explain`` in a loop costs what a reused :class:`Explainer` costs: it keeps the
    Explainers of the last few (model, layer, score_fn, options) it saw, so the model is inspected
    once, and again only when its structure changes (a layer swapped, added or removed).
    :func:`clear_cache` lets those models go.
    """
    call_options = {k: options.pop(k) for k in list(options)
                    if any(k in names for names in _METHOD_OPTIONS.values())}
    return _cached_explainer(model, layer, score_fn, options)(images, method=method, target=target,
                                                              **call_options)


# explain() reuses the Explainer of a recent call on the same model, with the same layer, score_fn
# and options: its model inspection (a dry forward pass) and, in Keras, its compiled functions are
# built once instead of at every call. The adapter itself inspects the model again when its
# structure changed (a layer swapped, added or removed). Bounded, so at most a few models are kept
# alive; clear_cache() lets them go.
_EXPLAINERS: "OrderedDict[tuple, Explainer]" = OrderedDict()
_MAX_CACHED = 4


def _cached_explainer(model, layer, score_fn, options) -> Explainer:
    layer_key = layer if isinstance(layer, (str, type(None))) else ("object", id(layer))
    try:
        option_key = tuple(sorted(options.items()))
        hash(option_key)
    except TypeError:  # an unhashable option: no reuse
        return Explainer(model, layer, score_fn=score_fn, **options)
    # ids are safe here: a cached Explainer keeps its model, layer and score_fn alive, so an equal
    # id means the same object
    key = (id(model), layer_key, id(score_fn), option_key)
    explainer = _EXPLAINERS.get(key)
    if explainer is None:
        explainer = Explainer(model, layer, score_fn=score_fn, **options)
        _EXPLAINERS[key] = explainer
        while len(_EXPLAINERS) > _MAX_CACHED:
            _EXPLAINERS.popitem(last=False)
    _EXPLAINERS.move_to_end(key)
    return explainer


def clear_cache() -> None:
    """Forget the Explainers that :func:`explain` keeps for recently explained models."""
    _EXPLAINERS.clear()
