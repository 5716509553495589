"""The CAM family, framework-free: every method's math, written once, over NumPy arrays.

The adapters (``keras_adapter``, ``torch_adapter``) capture what a method needs from a model; this
module turns it into maps. Shapes are channels-last throughout:

- ``activations`` A : (N, h, w, K) float — the target layer's output for N images
- ``gradients``   G : (N, h, w, K) float — d(score of image i's target class) / dA, where the score
  is the class logit **before softmax** (the gradient of a saturated softmax output is ~0 and the
  map degenerates; see lesson 04)
- a method returns ``raw`` maps (N, h, w) float32 >= 0 (after ReLU, before normalisation).

Each gradient method is one function of (A, G) — most only say how channel weights are computed,
and ``weighted_sum`` does the rest. Channel weights and maps are computed **per image**: nothing is
pooled over the batch.

References are given in each function's docstring. Where two published conventions differ, the
docstring says which one is followed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

EPS = 1e-7


@dataclass(frozen=True)
class Method:
    """A method as the pipeline sees it: its name, what it needs, and its function.

    ``needs`` is what the adapter must capture, and fixes how ``fn`` is called:

    - ``"gradients"``: ``fn(A, G)`` with the target layer's activations and gradients;
    - ``"activations"``: ``fn(A)``;
    - ``"cam_weights"``: ``fn(A, W)`` with ``W`` (N, K) the dense weights of each image's class;
    - ``"scores"``: ``fn(A, W)`` with ``W`` (N, K) channel weights from forward passes of masked
      inputs (Score-CAM; the pipeline drives the passes).

    ``kind`` says what the result is: ``"cam"`` (a map at the target layer's resolution, upsampled
    by the pipeline) or ``"pixel"`` (an attribution at input resolution, from the *input* gradient:
    a new ``needs`` value such as ``"input_gradients"``, handled by the pipeline). ``aliases`` are
    other spellings accepted by :func:`get_method` (case, hyphens, underscores and spaces are
    ignored anyway).
    """

    name: str
    needs: str
    paper: str
    fn: Callable[..., np.ndarray] = field(compare=False, repr=False, default=None)
    kind: str = "cam"
    aliases: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# shared steps


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0), the last step of every method: only evidence *for* the class is kept."""
    return np.maximum(x, 0)


def weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ReLU(sum_k weights[n, k] * A[n, :, :, k]) for each image n.

    Parameters
    ----------
    activations : (N, h, w, K) array
    weights : (N, K) array, one weight per channel **per image**

    Returns
    -------
    (N, h, w) float32 array, >= 0
    """
    maps = np.einsum("nhwk,nk->nhw", activations.astype(np.float64), weights.astype(np.float64))
    return relu(maps).astype(np.float32)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Divide each map by its own maximum so that it lies in [0, 1].

    A map that is all zero (no positive evidence) stays all zero: no division by zero, no NaN.
    Maps are expected to be >= 0 (every method ends with ReLU); negative values are clipped.

    The Grad-CAM paper and the Keras example divide by the maximum; pytorch-grad-cam subtracts
    the minimum first. After the ReLU the minimum is 0 whenever some location has no evidence, and
    the two agree; they differ only on maps that are positive everywhere, where dividing by the
    maximum keeps the information that attention is spread over the whole image.

    Parameters
    ----------
    maps : (N, H, W) array

    Returns
    -------
    (N, H, W) float32 array in [0, 1]
    """
    maps = np.asarray(maps, dtype=np.float32)
    if not np.isfinite(maps).all():
        maps = np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)
    out = np.maximum(maps, 0)
    peak = out.reshape(len(out), -1).max(axis=1) if out.size else np.zeros(len(out), np.float32)
    # no absolute threshold: a network with tiny activations (random weights, say) has tiny but
    # real maps, and they are scaled like any other
    scale = np.where(peak > 0, peak, 1.0).astype(np.float32)
    out /= scale[:, None, None]
    return np.minimum(out, 1.0, out=out)


@functools.lru_cache(maxsize=32)
def _interpolation_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 weights of 1-D linear interpolation, half-pixel centres, edges clamped."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = pos - low
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(n_out), high), frac)
    matrix.setflags(write=False)
    return matrix


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (N, h, w) maps to (N, H, W), half-pixel centres, edges clamped.

    The same convention as ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` and
    ``tf.image.resize(..., "bilinear")`` for upsampling, in plain NumPy so that the core needs no
    image library and gives identical results for both frameworks. Bilinear interpolation is
    separable: two small matrix products (rows, then columns), computed in float64.

    Returns
    -------
    (N, H, W) float32 array
    """
    maps = np.asarray(maps)
    out_h, out_w = size
    in_h, in_w = maps.shape[1:]
    if (in_h, in_w) == (out_h, out_w):
        return maps.astype(np.float32)
    rows = _interpolation_matrix(in_h, out_h)  # (H, h)
    cols = _interpolation_matrix(in_w, out_w)  # (W, w)
    return (rows @ maps.astype(np.float64) @ cols.T).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# gradient methods: f(A, G) -> raw maps


def gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., ICCV 2017, "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization").

    alpha[n, k] = mean_{i,j} G[n, i, j, k];   map[n] = ReLU(sum_k alpha[n, k] A[n, :, :, k]).

    On a network whose last convolution is followed by global average pooling and one Dense layer,
    alpha[n, k] = W[k, c] / (h w): Grad-CAM equals CAM up to a positive factor.
    """
    return weighted_sum(activations, gradients.mean(axis=(1, 2)))


def gradcam_plus_plus(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay et al., WACV 2018, "Grad-CAM++: Improved Visual Explanations for Deep
    Convolutional Networks").

    With the paper's exponential-score identity (higher derivatives written as powers of G):

        a[n,i,j,k] = G^2 / (2 G^2 + sum_{a,b} A[n,a,b,k] * G^3)   (0 where G = 0)
        alpha[n,k] = sum_{i,j} a[n,i,j,k] * ReLU(G[n,i,j,k])
        map[n]     = ReLU(sum_k alpha[n,k] A[n,:,:,k])

    This is the convention of the authors' code and of pytorch-grad-cam.
    """
    a = activations.astype(np.float64)
    g = gradients.astype(np.float64)
    g2 = g * g
    g3 = g2 * g  # (not g**3: a float power is ten times slower on large maps)
    denominator = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
    # where G = 0 the numerator is 0 too; a zero denominator elsewhere gives weight 0, not inf
    aij = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    weights = (aij * relu(g)).sum(axis=(1, 2))
    return weighted_sum(a, weights)


def xgradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """XGrad-CAM (Fu et al., BMVC 2020, "Axiom-based Grad-CAM").

    alpha[n,k] = sum_{i,j} (A[n,i,j,k] / sum_{a,b} A[n,a,b,k]) * G[n,i,j,k]: gradients weighted by
    the channel's normalised activation. Channels with no activation get weight 0.
    """
    a = activations.astype(np.float64)
    g = gradients.astype(np.float64)
    total = a.sum(axis=(1, 2))
    weights = np.divide((a * g).sum(axis=(1, 2)), total, out=np.zeros_like(total),
                        where=total != 0)
    return weighted_sum(a, weights)


def hirescam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos & Carin, 2020, "Use HiResCAM instead of Grad-CAM for faithful explanations
    of convolutional neural networks").

    map[n] = ReLU(sum_k G[n,:,:,k] * A[n,:,:,k]): the element-wise product, no spatial averaging of
    the gradient, so the map shows the locations that actually raised the score.
    """
    product = (activations.astype(np.float64) * gradients.astype(np.float64)).sum(axis=-1)
    return relu(product).astype(np.float32)


def layercam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """LayerCAM (Jiang et al., IEEE TIP 2021, "LayerCAM: Exploring Hierarchical Class Activation
    Maps for Localization").

    map[n] = ReLU(sum_k ReLU(G[n,:,:,k]) * A[n,:,:,k]): each location weighted by its own positive
    gradient, which keeps fine detail when used on earlier layers.
    """
    product = (relu(gradients.astype(np.float64)) * activations.astype(np.float64)).sum(axis=-1)
    return relu(product).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# methods without gradients


def cam(activations: np.ndarray, class_weights: np.ndarray) -> np.ndarray:
    """CAM (Zhou et al., CVPR 2016, "Learning Deep Features for Discriminative Localization").

    For a network  A -> global average pooling -> Dense(W, b):  map[n] = ReLU(sum_k W[k, c_n] A[n,:,:,k])
    with c_n image n's target class. The bias is left out (it is the same everywhere).

    Parameters
    ----------
    activations : (N, h, w, K) array
    class_weights : (N, K) array — column ``W[:, c_n]`` of the Dense kernel for each image
    """
    return weighted_sum(activations, class_weights)


def eigencam(activations: np.ndarray) -> np.ndarray:
    """Eigen-CAM (Muhammad & Yeasin, IJCNN 2020, "Eigen-CAM: Class Activation Map using Principal
    Components").

    The projection of each location's K-vector on the first principal component of that image's
    centred activations (an SVD of the (h w, K) matrix), then ReLU. Class-agnostic: the target
    does not change the map. The sign of a principal component is arbitrary; it is chosen so that
    the projection correlates positively with the mean activation over channels, so the map
    highlights strongly activated regions instead of flipping between runs.
    """
    a = activations.astype(np.float64)
    n, h, w, k = a.shape
    maps = np.zeros((n, h, w), dtype=np.float64)
    for i in range(n):
        flat = a[i].reshape(h * w, k)
        centred = flat - flat.mean(axis=0, keepdims=True)
        if not np.any(centred):
            continue  # every location identical: no principal direction, no evidence
        # the first principal direction from the smaller of the two Gram matrices (an SVD of
        # the (h w, K) matrix gives the same vector and is several times slower)
        if h * w <= k:
            values, vectors = np.linalg.eigh(centred @ centred.T)
            projection = vectors[:, -1] * np.sqrt(max(values[-1], 0.0))
        else:
            _, vectors = np.linalg.eigh(centred.T @ centred)
            projection = centred @ vectors[:, -1]
        if np.dot(projection, flat.mean(axis=1) - flat.mean()) < 0:
            projection = -projection
        maps[i] = projection.reshape(h, w)
    return relu(maps).astype(np.float32)


def score_cam_masks(activations: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Score-CAM's masks: each channel upsampled to the input size and min-max scaled to [0, 1].

    A flat channel gives an all-zero mask (no division by zero).

    Returns
    -------
    (N, K, H, W) float32 array in [0, 1]
    """
    n, h, w, k = activations.shape
    channels = np.moveaxis(activations, -1, 1).reshape(n * k, h, w)
    up = resize_maps(channels, size).astype(np.float64)
    low = up.min(axis=(1, 2), keepdims=True)
    high = up.max(axis=(1, 2), keepdims=True)
    spread = high - low
    masks = np.divide(up - low, spread, out=np.zeros_like(up), where=spread > 0)
    return masks.reshape(n, k, *size).astype(np.float32)


def score_cam_weights(masked_logits: np.ndarray, target: int, convention: str = "paper") -> np.ndarray:
    """Channel weights of Score-CAM from the logits of the K masked copies of one image.

    Parameters
    ----------
    masked_logits : (K, classes) array, the model's pre-softmax scores for ``image * mask_k``
    target : the class being explained
    convention : ``"paper"`` (default) — the softmax probability of the target class for each
        masked input, as in the Score-CAM authors' code (Wang et al., CVPR-W 2020, "Score-CAM:
        Score-Weighted Visual Explanations for Convolutional Neural Networks"); or
        ``"channel_softmax"`` — the target logits softmax-normalised across the K channels, as in
        pytorch-grad-cam.

    Returns
    -------
    (K,) float64 array of weights
    """
    z = masked_logits.astype(np.float64)
    if convention == "paper":
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True))[:, target]
    if convention == "channel_softmax":
        t = z[:, target] - z[:, target].max()
        e = np.exp(t)
        return e / e.sum()
    raise ValueError(f"unknown Score-CAM convention {convention!r}; use 'paper' or 'channel_softmax'")


# ---------------------------------------------------------------------------------------------
# the registry the pipeline reads

METHODS: dict[str, Method] = {}
_INDEX: dict[str, str] = {}


def _normalise(name: str) -> str:
    """The form :func:`get_method` compares: lower case, without hyphens, underscores or spaces."""
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")


def register(method: Method) -> Method:
    """Add a method to the registry (its name and aliases must be new); returns it.

    Everything that lists methods — :func:`get_method`, the tests, the benchmark, the widgets —
    reads :data:`METHODS`, so a new method is this one call plus its function.
    """
    keys = {_normalise(n) for n in (method.name, *method.aliases)}
    taken = [k for k in keys if k in _INDEX and _INDEX[k] != method.name]
    if taken:
        raise ValueError(f"method name(s) {taken} already registered")
    if method.fn is None:
        raise ValueError(f"method {method.name!r} has no function")
    METHODS[method.name] = method
    for key in keys:
        _INDEX[key] = method.name
    return method


def names(*, needs: str | None = None, kind: str | None = None) -> list[str]:
    """The registered method names, in registration order, optionally only one ``needs``/``kind``."""
    return [m.name for m in METHODS.values()
            if (needs is None or m.needs == needs) and (kind is None or m.kind == kind)]


def get_method(name: str) -> Method:
    """Look a method up by name; case, hyphens, underscores and spaces are ignored, so "Grad-CAM++",
    "gradcam++" and "grad_cam++" are the same. The error lists the valid names."""
    key = _INDEX.get(_normalise(name))
    if key is None:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[key]


for _method in (
    Method("cam", "cam_weights", "Zhou et al., CVPR 2016", cam),
    Method("gradcam", "gradients", "Selvaraju et al., ICCV 2017", gradcam),
    Method("gradcam++", "gradients", "Chattopadhay et al., WACV 2018", gradcam_plus_plus,
           aliases=("gradcampp", "gradcamplusplus")),
    Method("xgradcam", "gradients", "Fu et al., BMVC 2020", xgradcam),
    Method("hirescam", "gradients", "Draelos & Carin, 2020", hirescam),
    Method("layercam", "gradients", "Jiang et al., IEEE TIP 2021", layercam),
    Method("eigencam", "activations", "Muhammad & Yeasin, IJCNN 2020", eigencam),
    Method("scorecam", "scores", "Wang et al., CVPR-W 2020", weighted_sum),
):
    register(_method)


# pixel attributions: their math is in ``attributions``; the pipeline drives them through the
# adapters' input gradients, and ``raw`` is (N, H, W, C) at input resolution
from . import attributions as _attr  # noqa: E402

for _method in (
    Method("saliency", "input_gradients", "Simonyan et al., ICLR-W 2014", _attr.saliency,
           kind="pixel", aliases=("vanillagradient", "gradient")),
    Method("smoothgrad", "input_gradients", "Smilkov et al., 2017", _attr.smoothgrad, kind="pixel"),
    Method("integrated_gradients", "input_gradients", "Sundararajan et al., ICML 2017",
           _attr.integrated_gradients, kind="pixel", aliases=("ig", "integratedgradient")),
    Method("guided_backprop", "input_gradients", "Springenberg et al., ICLR-W 2015",
           _attr.guided_backprop, kind="pixel", aliases=("guidedbackpropagation", "gbp")),
    Method("guided_gradcam", "input_gradients", "Selvaraju et al., ICCV 2017", _attr.guided_gradcam,
           kind="pixel"),
):
    register(_method)
