"""One entry point for every method and both frameworks: ``explain(model, images, method=...)``.

The pipeline is the same for every method; it never asks which method it runs:

1. the model's adapter (:func:`~.adapters.adapter_for`) checks the images;
2. the method's options are bound (defaults, the Explainer's defaults, the call's; validated) and
   the number of targets is checked (:mod:`.targets`);
3. the method's driver (:class:`~.registry.Method` ``run``) gets from the adapter what the method
   needs and calls its math — on chunks of ``batch_size`` images or on all of them, as the
   method's kind says (:data:`~.registry.KINDS`);
4. the kind turns the raw result into ``Explanation.maps``: upsampled and divided by each map's
   maximum (CAM family), or the absolute attribution summed over channels (pixel methods).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .adapters import adapter_for
from .maps import softmax
from .registry import KINDS, Job, Raw, all_option_names, describe_methods, get_method, options_named
from .targets import as_target, check_count, check_method, legacy_index, select
from .tokens import check_layout


@dataclass
class Explanation:
    """The result of :func:`explain`.

    Attributes
    ----------
    maps : (N, H, W) float32 in [0, 1] — at input resolution, each map divided by its own maximum
        (an all-zero map stays all zero)
    raw : (N, h, w) float32 >= 0 — at the target layer's resolution, after ReLU, before normalisation;
        for pixel attributions (N, H, W, C) float32, signed, channels last, at input resolution
    targets : (N,) int64 — the class explained for each image (with a target object: the class,
        label or box class it explains; a binary model's positive class is 1, the other 0)
    logits : (N, classes) float32 — the model's class scores before softmax; with a target object
        the model's output as it gives it (final softmax/sigmoid bypassed), e.g. (N, C, h, w)
    layer : str — the target layer's name (Keras) or dotted path (PyTorch); "input" for pixel methods,
        "attention" for the attention maps (``raw`` on the patch grid)
    method : str
    framework : "keras" or "torch"
    extras : dict — what a method adds (Integrated Gradients: ``baseline_scores``, ``delta``);
        with a target object ``extras["target"]`` holds what it chose for each image (``"mask"``
        (N, h, w) bool, ``"box"`` (N,), ``"iou"``, ...)
    target_scores : (N,) float32 or None — with a target object, the explained scalar of each image
    """

    maps: np.ndarray
    raw: np.ndarray
    targets: np.ndarray
    logits: np.ndarray
    layer: str
    method: str
    framework: str
    extras: dict = field(default_factory=dict, repr=False)
    target_scores: np.ndarray | None = field(default=None, repr=False)

    @property
    def scores(self) -> np.ndarray:
        """(N,) the explained scalar of each image: the pre-softmax score of its target class, or
        a target object's value (a region's summed logit, a box's score, ...)."""
        if self.target_scores is not None:
            return self.target_scores
        return self.logits[np.arange(len(self.targets)), self.targets]

    @property
    def probabilities(self) -> np.ndarray:
        """(N, classes) float32 softmax of the logits."""
        return softmax(self.logits, axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.maps)


def _concatenate(parts: list[Raw]) -> Raw:
    """One :class:`Raw` from the drivers' results on consecutive chunks of images."""
    if len(parts) == 1:
        return parts[0]
    extras = {key: np.concatenate([p.extras[key] for p in parts])
              for key in parts[0].extras if all(key in p.extras for p in parts)}
    return Raw(np.concatenate([p.raw for p in parts]), np.concatenate([p.logits for p in parts]),
               np.concatenate([p.targets for p in parts]), parts[0].layer, extras)


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
    progress : show a progress bar with an ETA for slow work (Score-CAM's masked passes; True/False;
        None = only when it is slow: more than 2,048 masked passes)
    tokens_to_grid : for a transformer layer whose output is a token sequence (N, T, D): None (the
        patch grid is inferred from T and the image size, leading class/register tokens dropped),
        an (h, w) pair (the leading T − h·w tokens dropped), or a function (N, T, D) → (N, h, w, D)
        (:mod:`~.tokens`)
    **method_options : defaults for the methods' options, used by every call of a method that has
        that option (e.g. ``score_cam_convention="channel_softmax"``, ``steps=32``); checked here.
        The options of each method are listed in :func:`explain`.

    Raises
    ------
    TypeError
        For a keyword that is neither a setting above nor an option of a registered method.
    ValueError
        For an invalid value.
    """

    def __init__(self, model: Any, layer: Any = None, *, score_fn: Callable | None = None,
                 batch_size: int = 32, progress: bool | None = None, tokens_to_grid: Any = None,
                 **method_options: Any) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        for name, value in method_options.items():
            declared = options_named(name)
            if not declared:
                raise TypeError(f"Explainer() got an unknown keyword {name!r}; it takes layer, "
                                f"score_fn, batch_size, progress and the methods' options: "
                                f"{', '.join(all_option_names())}")
            for option in declared:
                option.check(value)
        self.adapter = adapter_for(model, layer, score_fn)
        self.adapter.tokens_layout = check_layout(tokens_to_grid)
        self.batch_size = batch_size
        self.progress = progress
        self.method_options = dict(method_options)

    @property
    def layer(self) -> str:
        """The target layer's name; known after the first call."""
        return self.adapter.layer_name

    def __call__(self, images: Any, method: str = "gradcam", target: Any = None,
                 **options: Any) -> Explanation:
        """Explain a batch. See :func:`explain` for the arguments and the result."""
        spec = get_method(method)
        bound = spec.bind(self.method_options, options)
        x = self.adapter.validate(images)
        n = len(x)
        chosen = as_target(target)
        if chosen is None:
            target = legacy_index(target)
            check_count(target, n)
        else:
            check_method(chosen, spec.name, spec.needs)
        kind = KINDS[spec.kind]
        step = self.batch_size if kind.batched else max(n, 1)
        parts, infos = [], []
        for start in range(0, n, step):
            chunk = slice(start, start + step)
            if chosen is None:
                parts.append(spec.run(spec, self._job(x[chunk], select(target, chunk)), bound))
            else:
                part, info = self._run_target(spec, bound, chosen.for_images(chunk, n), x[chunk])
                parts.append(part)
                infos.append(info)
        result = _concatenate(parts)
        if not np.all(np.isfinite(result.raw)):
            raise FloatingPointError(f"{spec.name} produced non-finite values: check the model's "
                                     "output for NaN/inf (e.g. a log of 0 in the last layer)")
        extras = dict(result.extras)
        target_scores = extras.pop("target_scores", None)
        if infos:
            extras["target"] = {key: np.concatenate([info[key] for info in infos])
                                for key in infos[0]}
        return Explanation(maps=kind.to_maps(result.raw, self.adapter.spatial_size(x)),
                           raw=np.asarray(result.raw, np.float32), targets=result.targets,
                           logits=result.logits, layer=result.layer, method=spec.name,
                           framework=self.adapter.framework, extras=extras,
                           target_scores=target_scores)

    def _run_target(self, spec: Any, options: dict, target: Any, x: Any) -> tuple[Raw, dict]:
        """Run a method for a target object on one batch: the target is bound to the batch (its
        mask, box, class fixed from the original images), and while it is bound the adapter's
        scores are the target's, with image j's target as "class" j (see
        :meth:`~.adapters.base.Adapter.scoring`), so the method runs unchanged."""
        chosen, outputs = self.adapter.bind_target(target, x)
        index = np.arange(len(x))
        with self.adapter.scoring(chosen):
            raw = spec.run(spec, self._job(x, index), options)
        scores = np.asarray(raw.logits, np.float32)[index, raw.targets]
        extras = dict(raw.extras, target_scores=scores)
        return Raw(raw.raw, outputs, chosen.classes, raw.layer, extras), dict(chosen.info)

    def _job(self, x: Any, target: Any) -> Job:
        def explain_these(method: str, **options: Any) -> Explanation:
            return self(x, method=method, **options)
        return Job(self.adapter, x, target, self.batch_size, self.progress, explain_these)


#: the keywords of explain() that are the Explainer's settings (the others are the method's options)
EXPLAINER_SETTINGS = ("batch_size", "progress", "tokens_to_grid")


def explain(model: Any, images: Any, method: str = "gradcam", layer: Any = None, target: Any = None,
            *, score_fn: Callable | None = None, **options: Any) -> Explanation:
    """Explain why ``model`` classified ``images`` as it did.

    Parameters
    ----------
    model : keras.Model (Functional, Sequential, nested base, subclassed) or torch.nn.Module
    images : Keras: (N, H, W, C) float array; PyTorch: (N, C, H, W) tensor or array.
        Preprocessed the way the model expects.
    method : one of the registered methods (case, hyphens, underscores and spaces ignored), with
        its options (name, default, meaning):

{methods}
    layer : None (automatic: the last layer with a 4-D output that is not a pooling layer; in a
        transformer, the input of the last attention layer, i.e. the last block's first norm), a name
        (Keras; nested models are searched) / dotted path such as "layer4.1" or "layer4[-1]"
        (PyTorch), or the layer/module object
    target : None (each image's top class), an int (that class for every image), a sequence of
        ints (one per image), or a target object for a model whose output is not one class score
        per class (:mod:`~gradcam_helpers.engine.targets`): ``BinaryLogit()`` (one sigmoid unit;
        ``positive=False`` for the other class, ``probability=True`` for σ), ``LabelLogit(k)``
        (multi-label), ``SegmentationScore(c, mask=None)`` (a region's summed logit),
        ``BoxScore(box=None, index=None, reference=None, iou=False)`` (one box of a detector).
        Every method applies except CAM for segmentation and boxes and Eigen-CAM (which ignores
        the target): those raise, naming ``method='gradcam'``
    score_fn : see :class:`Explainer`
    **options : ``batch_size``, ``progress`` and ``tokens_to_grid`` (see :class:`Explainer`), and the options of
        ``method`` listed above; any other keyword raises ``TypeError`` naming the valid ones

    Returns
    -------
    Explanation
        ``maps`` (N, H, W) float32 in [0, 1] at input resolution, ``raw`` (N, h, w), ``targets``,
        ``logits`` (pre-softmax), ``scores``, ``layer``, ``method``.

        For pixel attributions ``raw`` is the signed attribution per input element, channels
        last (N, H, W, C) in both frameworks (captum's ``Saliency(abs=False)``,
        ``IntegratedGradients``, ``GuidedBackprop``), and ``maps`` is
        :func:`~gradcam_helpers.engine.maps.attribution_maps` of it: sum over channels of ``|raw|``,
        divided by each map's maximum. ``layer`` is "input" (Guided Grad-CAM: the Grad-CAM layer).
        Integrated Gradients adds ``extras["baseline_scores"]`` and ``extras["delta"]`` (sum of
        the attributions minus (score − baseline score): completeness says it is ~0).

    Notes
    -----
    Gradient methods differentiate the class score *before* softmax: the softmax output of a
    confident prediction is flat, so its gradient is nearly zero and the map degenerates.

    Calling ``explain`` in a loop costs what a reused :class:`Explainer` costs: it keeps the
    Explainers of the last few (model, layer, score_fn, settings) it saw, so the model is inspected
    once, and again only when its structure changes (a layer swapped, added or removed).
    :func:`clear_cache` lets those models go.
    """
    settings = {k: options.pop(k) for k in EXPLAINER_SETTINGS if k in options}
    return _cached_explainer(model, layer, score_fn, settings)(images, method=method, target=target,
                                                               **options)


explain.__doc__ = (explain.__doc__ or "").replace("{methods}", describe_methods())


# explain() reuses the Explainer of a recent call on the same model, with the same layer, score_fn
# and settings: its model inspection (a dry forward pass) and, in Keras, its compiled functions are
# built once instead of at every call. The adapter itself inspects the model again when its
# structure changed (a layer swapped, added or removed). Bounded, so at most a few models are kept
# alive; clear_cache() lets them go.
_EXPLAINERS: "OrderedDict[tuple, Explainer]" = OrderedDict()
_MAX_CACHED = 4


def _cached_explainer(model: Any, layer: Any, score_fn: Callable | None,
                      settings: dict[str, Any]) -> Explainer:
    layer_key = layer if isinstance(layer, (str, type(None))) else ("object", id(layer))
    try:
        setting_key = tuple(sorted(settings.items()))
        hash(setting_key)
    except TypeError:  # an unhashable setting: no reuse
        return Explainer(model, layer, score_fn=score_fn, **settings)
    # ids are safe here: a cached Explainer keeps its model, layer and score_fn alive, so an equal
    # id means the same object
    key = (id(model), layer_key, id(score_fn), setting_key)
    explainer = _EXPLAINERS.get(key)
    if explainer is None:
        explainer = Explainer(model, layer, score_fn=score_fn, **settings)
        _EXPLAINERS[key] = explainer
        while len(_EXPLAINERS) > _MAX_CACHED:
            _EXPLAINERS.popitem(last=False)
    _EXPLAINERS.move_to_end(key)
    return explainer


def clear_cache() -> None:
    """Forget the Explainers that :func:`explain` keeps for recently explained models."""
    _EXPLAINERS.clear()
