"""Pixel attributions, framework-free: Saliency, SmoothGrad, Integrated Gradients, Guided
Backprop and Guided Grad-CAM, over NumPy arrays.

CAM methods explain with a feature map at a layer's resolution; these methods attribute the class
score to every **input element** (pixel × channel). Their core needs the gradient of the class score
*before softmax* with respect to the input, which an adapter provides as a function::

    gradient_fn(x, targets) -> (gradients, logits)
        x         : (M, H, W, C) float32 — model inputs, channels last (as preprocessed for the model)
        targets   : (M,) int64 — the class whose score is differentiated, one per input
        gradients : (M, H, W, C) float32 — d logits[m, targets[m]] / d x[m]
        logits    : (M, classes) float32

and everything else — noise, paths, step weights, products — happens here, once for both
frameworks. Each method returns the **signed** attribution per input element, ``(N, H, W, C)``,
the quantity captum's ``Saliency(abs=False)``, ``IntegratedGradients`` and ``GuidedBackprop``
return (in the input's own layout). :func:`~.maps.attribution_maps` reduces it to a displayable
map.

The drivers at the end run the methods through a model's adapter (its ``input_gradients``, see
:mod:`.adapters.base`), and the registrations below them make the methods known to the pipeline
(the contract is in :mod:`.registry`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .maps import to_numpy
from .registry import Job, Method, Option, Raw, driver, one_of, positive_int, register
from .targets import select

GradientFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _batched(gradient_fn: GradientFn, x: np.ndarray, targets: np.ndarray, batch_size: int):
    """gradient_fn over chunks of at most ``batch_size`` inputs; returns (gradients, logits)."""
    grads, logits = [], []
    for start in range(0, len(x), batch_size):
        g, z = gradient_fn(x[start:start + batch_size], targets[start:start + batch_size])
        grads.append(np.asarray(g, dtype=np.float32))
        logits.append(np.asarray(z, dtype=np.float32))
    return np.concatenate(grads), np.concatenate(logits)


def saliency(x: np.ndarray, targets: np.ndarray, gradient_fn: GradientFn, *,
             batch_size: int = 32) -> np.ndarray:
    """Saliency (Simonyan, Vedaldi & Zisserman, ICLR-W 2014, "Deep Inside Convolutional Networks:
    Visualising Image Classification Models and Saliency Maps").

        raw[n] = d S_c(x) / d x  evaluated at x[n]

    with S_c the score of class c = targets[n] before softmax: how much each input element would
    change the score if it changed a little. The paper shows ``max_c |raw|``; here ``raw`` keeps the
    sign (captum's ``Saliency(abs=False)``) and :func:`~.maps.attribution_maps` does the display
    reduction.

    Parameters
    ----------
    x : (N, H, W, C) float inputs, channels last
    targets : (N,) class indices
    gradient_fn : see the module docstring

    Returns
    -------
    (N, H, W, C) float32, signed
    """
    grads, _ = _batched(gradient_fn, np.asarray(x, np.float32), np.asarray(targets), batch_size)
    return grads


def smoothgrad(x: np.ndarray, targets: np.ndarray, gradient_fn: GradientFn, *, samples: int = 25,
               noise: float = 0.15, seed: int = 0, batch_size: int = 32) -> np.ndarray:
    """SmoothGrad (Smilkov et al., 2017, "SmoothGrad: removing noise by adding noise").

        raw[n] = (1 / S) sum_{s=1..S} d S_c / d x  at  x[n] + eps_s,   eps_s ~ N(0, sigma_n^2 I)
        sigma_n = noise * (max(x[n]) - min(x[n]))

    The gradient of a ReLU network jumps from point to point; averaging it over a small cloud of
    noisy copies keeps what is stable. The paper recommends ``noise`` between 0.10 and 0.20 and
    about 50 samples; 25 keep it quick on a CPU. Deterministic for a given ``seed``; with
    ``noise=0`` it equals :func:`saliency`.

    Parameters
    ----------
    x, targets, gradient_fn : as for :func:`saliency`
    samples : S >= 1 noisy copies per image
    noise : sigma as a fraction of each image's value range, >= 0
    seed : seed of the noise

    Returns
    -------
    (N, H, W, C) float32, signed
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1; got {samples}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (a fraction of the value range); got {noise}")
    x = np.asarray(x, np.float32)
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    out = np.zeros(x.shape, np.float64)
    for i in range(len(x)):
        sigma = noise * float(x[i].max() - x[i].min())
        noisy = x[i][None] + sigma * rng.standard_normal((samples,) + x.shape[1:]).astype(np.float32)
        grads, _ = _batched(gradient_fn, noisy, np.full(samples, targets[i]), batch_size)
        out[i] = grads.astype(np.float64).mean(axis=0)
    return out.astype(np.float32)


def path_points(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Nodes alpha_k in [0, 1] and weights w_k of the integral from 0 to 1 (sum w_k = 1).

    ``"gausslegendre"`` (the default, as in captum): Gauss–Legendre nodes, exact for polynomials of
    degree 2 steps − 1, so 50 steps are usually plenty; ``"riemann_trapezoid"``: alpha_k = k/(steps-1)
    with the trapezoid weights, the rule of the Integrated Gradients paper's appendix.
    """
    if steps < 2 and rule == "riemann_trapezoid" or steps < 1:
        raise ValueError(f"steps must be at least 1 (2 for the trapezoid rule); got {steps}")
    if rule == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        return 0.5 * (nodes + 1), 0.5 * weights
    if rule == "riemann_trapezoid":
        alphas = np.linspace(0, 1, steps)
        weights = np.full(steps, 1 / (steps - 1))
        weights[[0, -1]] /= 2
        return alphas, weights
    raise ValueError(f"unknown integration rule {rule!r}; use 'gausslegendre' or 'riemann_trapezoid'")


def baseline_error(shape: tuple, image_shape: tuple, layout: str) -> str:
    """The message for a baseline of the wrong shape (the same in both frameworks)."""
    return (f"the Integrated Gradients baseline has shape {tuple(shape)}; it must be a number, one "
            f"image of shape {tuple(image_shape[1:])} or a batch of the images' shape "
            f"{tuple(image_shape)} ({layout}, preprocessed like the images)")


def integrated_gradients(x: np.ndarray, targets: np.ndarray, gradient_fn: GradientFn, *,
                         baseline: np.ndarray | float | None = None, steps: int = 50,
                         rule: str = "gausslegendre", batch_size: int = 32
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Integrated Gradients (Sundararajan, Taly & Yan, ICML 2017, "Axiomatic Attribution for Deep
    Networks").

        raw[n] = (x[n] - x') * integral_0^1  d S_c / d x  at  x' + alpha (x[n] - x')  d alpha
               ≈ (x[n] - x') * sum_k w_k  d S_c / d x  at  x' + alpha_k (x[n] - x')

    with x' the baseline (an input that carries no evidence) and (alpha_k, w_k) from
    :func:`path_points`. *Completeness*: the attributions add up to S_c(x) − S_c(x'), which the
    returned deltas let you check (the paper asks for a gap within 5 %; more steps shrink it).

    Parameters
    ----------
    x, targets, gradient_fn : as for :func:`saliency`
    baseline : (N, H, W, C) / (H, W, C) array, a number, or None for zeros — "black" for models
        whose preprocessing maps black to 0 (x / 255); for other preprocessing pass the
        preprocessed black image
    steps : number of points on the path (default 50)
    rule : "gausslegendre" or "riemann_trapezoid" (see :func:`path_points`)

    Returns
    -------
    raw : (N, H, W, C) float32, signed
    baseline_logits : (N, classes) float32 — the model's logits at the baseline, so that
        ``raw.sum((1, 2, 3))`` can be compared with ``S_c(x) − S_c(x')``
    """
    x = np.asarray(x, np.float32)
    targets = np.asarray(targets)
    base = np.zeros_like(x) if baseline is None else np.asarray(baseline, np.float32)
    if base.ndim == 0:
        base = np.full_like(x, float(base))
    elif base.shape == x.shape[1:]:
        base = np.broadcast_to(base, x.shape)
    elif base.shape != x.shape:
        raise ValueError(baseline_error(base.shape, x.shape, "N, H, W, C"))
    if not np.all(np.isfinite(base)):
        raise ValueError("the Integrated Gradients baseline contains NaN or inf")
    alphas, weights = path_points(steps, rule)
    raw = np.zeros(x.shape, np.float64)
    _, base_logits = _batched(gradient_fn, np.ascontiguousarray(base), targets, batch_size)
    for i in range(len(x)):
        diff = (x[i] - base[i]).astype(np.float32)
        path = base[i][None] + alphas[:, None, None, None].astype(np.float32) * diff[None]
        grads, _ = _batched(gradient_fn, path, np.full(len(alphas), targets[i]), batch_size)
        raw[i] = diff * np.tensordot(weights, grads.astype(np.float64), axes=1)
    return raw.astype(np.float32), base_logits


def guided_gradcam(guided: np.ndarray, gradcam_maps: np.ndarray) -> np.ndarray:
    """Guided Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from Deep
    Networks via Gradient-based Localization", section 3.1).

        raw[n, i, j, c] = GB[n, i, j, c] * L[n, i, j]

    with GB the Guided Backprop attribution (fine detail, but hardly class-specific) and L the
    Grad-CAM map upsampled to the input and scaled to [0, 1] (coarse, class-specific): the product
    keeps the detail inside the region that speaks for the class.

    Parameters
    ----------
    guided : (N, H, W, C) Guided Backprop attributions
    gradcam_maps : (N, H, W) Grad-CAM maps in [0, 1] at input resolution

    Returns
    -------
    (N, H, W, C) float32, signed
    """
    guided = np.asarray(guided, np.float32)
    if gradcam_maps.shape != guided.shape[:3]:
        raise ValueError(f"Grad-CAM maps {gradcam_maps.shape} do not match the attributions "
                         f"{guided.shape[:3]}")
    return guided * np.asarray(gradcam_maps, np.float32)[..., None]


def guided_backprop(x: np.ndarray, targets: np.ndarray, guided_gradient_fn: GradientFn, *,
                    batch_size: int = 32) -> np.ndarray:
    """Guided Backprop (Springenberg et al., ICLR-W 2015, "Striving for Simplicity: The All
    Convolutional Net").

    The input gradient of the score, taken with the ReLU backward rule changed: a ReLU passes a
    gradient only where its input was positive (as usual) *and* the gradient is positive,

        dS/dx = 1[x > 0] * max(dS/dy, 0)        (y = ReLU(x); for ReLU6 1[0 < x < 6])

    so only evidence that raises the score flows back, and the result looks like a sharp edge
    image of the object. The adapters provide ``guided_gradient_fn``: the ordinary input gradient
    taken while every ReLU/ReLU6 of the model follows this rule (hooks / wrappers set for the call
    and removed afterwards, also on error). Adebayo et al. (2018, "Sanity Checks for Saliency
    Maps") showed that the result barely depends on the top layers' weights (lesson 09).

    Parameters
    ----------
    x, targets : as for :func:`saliency`
    guided_gradient_fn : like ``gradient_fn`` of the module docstring, with the guided rule

    Returns
    -------
    (N, H, W, C) float32, signed
    """
    return saliency(x, targets, guided_gradient_fn, batch_size=batch_size)


# ---------------------------------------------------------------------------------------------
# drivers: the adapter's input gradients, for the functions above


def _input_pass(job: Job) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The images channels-last and, in chunks, the input gradient of each image's class at the
    image itself: (x (N, H, W, C) float32, gradients, logits, targets)."""
    adapter = job.adapter
    x = np.ascontiguousarray(adapter.to_channels_last(job.images), dtype=np.float32)
    grads, logits, targets = [], [], []
    for start in range(0, len(x), job.batch_size):
        chunk = slice(start, start + job.batch_size)
        g, z, used = adapter.input_gradients(x[chunk], select(job.target, chunk))
        grads.append(g)
        logits.append(z)
        targets.append(used)
    return x, np.concatenate(grads), np.concatenate(logits), np.concatenate(targets)


def _gradient_fn(job: Job, guided: bool = False) -> GradientFn:
    """The ``gradient_fn`` of the module docstring, from the adapter (Guided Backprop's rule on)."""
    def gradient_fn(x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grads, logits, _ = job.adapter.input_gradients(x, targets, guided=guided)
        return grads, logits
    return gradient_fn


@driver(needs="input_gradients")
def with_the_gradient(method: Method, job: Job, options: dict) -> Raw:
    """Saliency: the input gradient at each image, which is what the first pass computes
    (``method.fn(x, targets, gradient_fn)`` would compute it again)."""
    _, grads, logits, targets = _input_pass(job)
    return Raw(grads, logits, targets, "input")


@driver(needs="input_gradients")
def with_input_gradients(method: Method, job: Job, options: dict) -> Raw:
    """``fn(x, targets, gradient_fn, batch_size=..., **options)`` (SmoothGrad)."""
    x, _, logits, targets = _input_pass(job)
    raw = method.fn(x, targets, _gradient_fn(job), batch_size=job.batch_size, **options)
    return Raw(raw, logits, targets, "input")


@driver(needs="input_gradients")
def with_guided_gradients(method: Method, job: Job, options: dict) -> Raw:
    """``fn(x, targets, guided_gradient_fn, batch_size=...)`` with Guided Backprop's ReLU rule."""
    x, _, logits, targets = _input_pass(job)
    raw = method.fn(x, targets, _gradient_fn(job, guided=True), batch_size=job.batch_size, **options)
    return Raw(raw, logits, targets, "input")


def _baseline_channels_last(baseline: Any, job: Job) -> Any:
    """The user's baseline (a number, one image or a batch, in the model's own layout) as
    channels-last; the same error in both frameworks for a wrong shape."""
    if baseline is None:
        return None
    b = to_numpy(baseline)
    if b.ndim == 0:
        return b.astype(np.float32)
    shape = tuple(job.images.shape)
    channels_first = job.adapter.channels_axis == 1
    if b.shape not in (shape, shape[1:]):
        raise ValueError(baseline_error(b.shape, shape, "N, C, H, W" if channels_first else "N, H, W, C"))
    b = np.broadcast_to(b, shape).astype(np.float32)
    return b.transpose(0, 2, 3, 1) if channels_first else b


@driver(needs="input_gradients")
def with_path_gradients(method: Method, job: Job, options: dict) -> Raw:
    """Integrated Gradients along the path from the baseline; adds ``extras["baseline_scores"]``
    and ``extras["delta"]`` (sum of the attributions − (score − baseline score), ~0 by
    completeness)."""
    x, _, logits, targets = _input_pass(job)
    options = dict(options, baseline=_baseline_channels_last(options["baseline"], job))
    raw, base_logits = method.fn(x, targets, _gradient_fn(job), batch_size=job.batch_size, **options)
    rows = np.arange(len(targets))
    baseline_scores = base_logits[rows, targets]
    delta = raw.astype(np.float64).sum(axis=(1, 2, 3)) - (logits[rows, targets] - baseline_scores)
    return Raw(raw, logits, targets, "input", {"baseline_scores": baseline_scores, "delta": delta})


@driver(needs="input_gradients")
def with_guided_gradients_and_gradcam(method: Method, job: Job, options: dict) -> Raw:
    """Guided Grad-CAM: Guided Backprop and the Grad-CAM maps of the same classes, then
    ``fn(guided, gradcam_maps)``; both parts are kept in ``extras``."""
    x, _, logits, targets = _input_pass(job)
    guided = guided_backprop(x, targets, _gradient_fn(job, guided=True), batch_size=job.batch_size)
    cam = job.explain("gradcam", target=targets)
    raw = method.fn(guided, cam.maps)
    return Raw(raw, logits, targets, cam.layer, {"gradcam": cam.maps, "guided_backprop": guided})


# ---------------------------------------------------------------------------------------------
# the registrations the pipeline reads


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


for _method in (
    Method("saliency", "pixel", saliency, with_the_gradient, "Simonyan et al., ICLR-W 2014",
           aliases=("vanillagradient", "gradient")),
    Method("smoothgrad", "pixel", smoothgrad, with_input_gradients, "Smilkov et al., 2017", options=(
        positive_int("samples", 25, "noisy copies per image"),
        Option("noise", 0.15, "sigma as a fraction of each image's value range",
               lambda v: _is_number(v) and v >= 0, "a number >= 0"),
        Option("seed", 0, "seed of the noise", lambda v: isinstance(v, (int, np.integer)), "an int"))),
    Method("integrated_gradients", "pixel", integrated_gradients, with_path_gradients,
           "Sundararajan et al., ICML 2017", aliases=("ig", "integratedgradient"), options=(
               Option("baseline", None, "None: zeros of the model's input; a number, one image or a "
                      "batch in the images' layout"),
               positive_int("steps", 50, "points on the path"),
               one_of("rule", ("gausslegendre", "riemann_trapezoid"), "the integration rule"))),
    Method("guided_backprop", "pixel", guided_backprop, with_guided_gradients,
           "Springenberg et al., ICLR-W 2015", aliases=("guidedbackpropagation", "gbp")),
    Method("guided_gradcam", "pixel", guided_gradcam, with_guided_gradients_and_gradcam,
           "Selvaraju et al., ICCV 2017"),
):
    register(_method)
