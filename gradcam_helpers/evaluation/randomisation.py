"""Randomisation: the sanity check of Adebayo et al. (cascading randomisation of the model's layers)
and the map comparisons it uses (Spearman rank correlation, SSIM).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.adapters import adapter_for
from ..engine.maps import check_maps
from ..engine.pipeline import Explainer
from ..engine.progress import enabled
from ..engine.progress import progress as progress_bar


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two batches of maps of the same shape, (N, H, W) float64 each."""
    a, b = check_maps(a), check_maps(b)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} differ in shape")
    return a, b


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between maps, per image.

    Parameters
    ----------
    a, b : (N, H, W) or (H, W) arrays of the same shape

    Returns
    -------
    (N,) float in [−1, 1]. Ties get their average rank. A constant map has no ranking: two constant
    maps score 1 when they are equal and 0 otherwise, a constant map against a varying one 0 (never NaN).
    """
    from scipy.stats import rankdata

    a, b = _pair(a, b)
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    out = np.zeros(len(a))
    for i, (p, q) in enumerate(zip(a, b)):
        flat_p, flat_q = np.ptp(p) == 0, np.ptp(q) == 0
        if flat_p or flat_q:
            out[i] = float(flat_p and flat_q and np.array_equal(p, q))
            continue
        out[i] = np.corrcoef(rankdata(p), rankdata(q))[0, 1]
    return out


def map_ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Structural similarity (Wang et al., 2004) between maps in [0, 1], per image (scikit-image's
    ``structural_similarity`` with ``data_range=1``); 1 means identical. Maps need at least 7×7 pixels."""
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    if min(a.shape[-2:]) < 7:
        raise ValueError(f"SSIM needs maps of at least 7×7 pixels; got {a.shape[-2:]}")
    return np.array([structural_similarity(p, q, data_range=1.0) for p, q in zip(a, b)])


@dataclass
class SanityCurve:
    """Maps of a model whose layers were randomised one group at a time, from the top.

    Attributes
    ----------
    layers : list of S + 1 labels: ``"original"``, then for each step the lowest layer randomised so far
    groups : list of S lists — the layers randomised at each step (cumulative: earlier ones stay random)
    spearman : (S + 1, N) rank correlation with the original maps (row 0 is 1)
    ssim : (S + 1, N) SSIM with the original maps (row 0 is 1); NaN-free, None for maps under 7×7
    maps : (S + 1, N, H, W) the maps at each step
    targets : (N,) the classes explained (those of the original model, kept for every step)
    """

    layers: list
    groups: list
    spearman: np.ndarray
    ssim: np.ndarray | None
    maps: np.ndarray
    targets: np.ndarray
    method: str = ""


def _randomise(weights: list, adapter, rng: np.random.Generator) -> None:
    """Replace each tensor by N(0, s²) draws, s = its root mean square (a zero tensor stays zero)."""
    for v in weights:
        value = adapter.weight_value(v)
        rms = float(np.sqrt(np.mean(value ** 2))) if value.size else 0.0
        adapter.assign_weight(v, rng.standard_normal(value.shape) * rms)


def sanity_check(model, images, method: str = "gradcam", layer: str | None = None, target=None, *,
                 steps: int | None = None, seed: int = 0, ssim: bool = True,
                 method_options: dict | None = None, progress: bool | None = None,
                 **options: Any) -> SanityCurve:
    """Model-parameter randomisation test, cascading from the top (Adebayo et al., NeurIPS 2018,
    "Sanity Checks for Saliency Maps").

    A map that explains the *model* must change when the model's learnt weights are destroyed. The
    layers with weights are re-initialised one group at a time from the output towards the input
    (cumulatively: the top stays random as lower layers follow), the maps are recomputed for the same
    images and classes, and compared with the original maps by Spearman rank correlation and SSIM.
    A curve that stays near 1 means the method shows the image (edges, contrast), not the model —
    Adebayo et al. found this for Guided Backprop; Grad-CAM's curve falls.

    Works on a copy (PyTorch: ``copy.deepcopy``; Keras: ``keras.models.clone_model`` plus the weights),
    never on ``model`` itself. Each weight tensor is replaced by N(0, s²) draws with s its own root
    mean square (the scale is kept, the learnt values are gone; an all-zero tensor stays zero);
    BatchNormalization's running statistics are kept. Deterministic for a given ``seed``.

    Parameters
    ----------
    model : keras.Model (Functional or Sequential) or torch.nn.Module, trained
    images : a batch as :func:`~gradcam_helpers.explain` takes it
    method, layer, target, **options : as in :func:`~gradcam_helpers.explain`; ``layer`` is a name or
        dotted path (found again in the copy). The targets of the original model are used throughout.
    method_options : dict, optional
        Options of the method's call, e.g. ``{"steps": 16}`` for Integrated Gradients.
    steps : int, optional
        Number of curve points: the top layer alone, then the other layers split into ``steps − 1``
        consecutive groups; None: one point per layer with weights.
    seed : int
        Seed of the random weights.
    ssim : bool
        Also compute SSIM (maps of at least 7×7 pixels).
    progress : bool, optional
        Progress bar over the steps (default: only in a Jupyter kernel).

    Returns
    -------
    SanityCurve
        ``layers`` (labels), ``spearman`` and ``ssim`` (S + 1, N), ``maps`` (S + 1, N, H, W).

    Raises
    ------
    ValueError
        When the model has no weights to randomise.
    """
    if layer is not None and not isinstance(layer, str):
        raise TypeError("sanity_check() needs the layer as a name or dotted path (it is looked up again "
                        f"in a copy of the model); got {type(layer).__name__}")
    copy_ = adapter_for(model).copy_model()
    explainer = Explainer(copy_, layer, **options)
    adapter = explainer.adapter
    x = adapter.validate(images)
    layers = adapter.weighted_layers(x)
    if not layers:
        raise ValueError("the model has no weights to randomise, so a sanity check cannot say anything: "
                         "pass a trained model with weights (convolutions, Dense/Linear layers)")
    call_options = dict(method_options or {})
    original = explainer(x, method=method, target=target, **call_options)
    top_down = layers[::-1]
    n_steps = len(top_down) if steps is None else int(steps)
    if n_steps < 2 and len(top_down) > 1:
        raise ValueError(f"steps must be at least 2 (the top layer, then the rest); got {steps!r}")
    # the classifier (the top layer) is always a step of its own: the first question is whether the
    # map depends on the class weights at all
    rest = np.arange(1, len(top_down))
    groups = [[0]]
    if len(rest):
        groups += [list(g) for g in np.array_split(rest, min(n_steps - 1, len(rest)))]
    rng = np.random.default_rng(seed)
    maps = [original.maps]
    labels, names = ["original"], []
    for group in progress_bar(groups, desc="sanity check", unit="step", disable=not enabled(progress)):
        for j in group:
            _randomise(top_down[j][1], adapter, rng)
        names.append([top_down[j][0] for j in group])
        labels.append(top_down[group[-1]][0])
        maps.append(explainer(x, method=method, target=original.targets, **call_options).maps)
    stack = np.stack(maps)
    spearman = np.stack([rank_correlation(original.maps, m) for m in stack])
    similarity = None
    if ssim and min(stack.shape[-2:]) >= 7:
        similarity = np.stack([map_ssim(original.maps, m) for m in stack])
    return SanityCurve(labels, names, spearman, similarity, stack, original.targets, original.method)
