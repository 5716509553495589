"""The CAM family, framework-free: every method's math, written once, over NumPy arrays, and the
drivers that run them through a model's adapter.

The adapters (:mod:`.adapters`) capture what a method needs from a model; the functions here turn it
into maps. Shapes are channels-last throughout:

- ``activations`` A : (N, h, w, K) float — the target layer's output for N images
- ``gradients``   G : (N, h, w, K) float — d(score of image i's target class) / dA, where the score
  is the class logit **before softmax** (the gradient of a saturated softmax output is ~0 and the
  map degenerates; see lesson 04)
- a method returns ``raw`` maps (N, h, w) float32 >= 0 (after ReLU, before normalisation).

Each gradient method is one function of (A, G) — most only say how channel weights are computed,
and ``weighted_sum`` does the rest. Channel weights and maps are computed **per image**: nothing is
pooled over the batch.

The drivers at the end (``with_gradients``, ``with_activations``, ``with_dense_weights``,
``with_masked_scores``) are the only code here that touches a model, and only through the adapter
contract; the registrations below them make the methods known to the pipeline (see
:mod:`.registry` for the contract). A new gradient CAM is its function of (A, G) and one line in
the registration list.

References are given in each function's docstring. Where two published conventions differ, the
docstring says which one is followed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .maps import resize_maps, softmax
from .progress import progress
from .registry import Job, Method, Option, Raw, driver, one_of, positive_int, register

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
    highlights strongly activated regions instead of flipping between runs. Where that correlation
    is about zero (a LayerNorm output, whose channel mean is about the same at every token), the
    sign makes the projection's largest entry positive.
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
        level = flat.mean(axis=1) - flat.mean()
        agreement = np.dot(projection, level)
        if (np.linalg.norm(level) <= 1e-5 * np.linalg.norm(centred)
                or abs(agreement) <= 1e-3 * np.linalg.norm(projection) * np.linalg.norm(level)):
            # no mean level to agree with (a transformer's LayerNorm output has about the same
            # channel mean at every token): the sign that makes the largest entry positive
            agreement = projection[np.argmax(np.abs(projection))]
        if agreement < 0:
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
    if convention == "paper":
        return softmax(masked_logits, axis=1)[:, target]
    if convention == "channel_softmax":
        return softmax(masked_logits[:, target])
    raise ValueError(f"unknown Score-CAM convention {convention!r}; use 'paper' or 'channel_softmax'")


# ---------------------------------------------------------------------------------------------
# drivers: what each family needs from the model, through the adapter


def _raw(raw: np.ndarray, cap: Any, job: Job) -> Raw:
    return Raw(raw, cap.logits, cap.targets, job.adapter.layer_name)


@driver(needs="gradients")
def with_gradients(method: Method, job: Job, options: dict) -> Raw:
    """One forward pass and one backward pass down to the target layer: ``fn(A, G, **options)``."""
    cap = job.adapter.capture(job.images, job.target, gradients=True)
    return _raw(method.fn(cap.activations, cap.gradients, **options), cap, job)


@driver(needs="activations")
def with_activations(method: Method, job: Job, options: dict) -> Raw:
    """One forward pass: ``fn(A, **options)``."""
    cap = job.adapter.capture(job.images, job.target, gradients=False)
    return _raw(method.fn(cap.activations, **options), cap, job)


@driver(needs="cam_weights")
def with_dense_weights(method: Method, job: Job, options: dict) -> Raw:
    """One forward pass and the weights of the Dense layer after global average pooling:
    ``fn(A, W)`` with ``W`` (N, K) the weights of each image's class."""
    adapter = job.adapter
    cap = adapter.capture(job.images, job.target, gradients=False)
    weights = adapter.cam_class_weights()  # (K, classes)
    channels = cap.activations.shape[-1]
    if weights.shape[0] != channels:
        raise ValueError(f"the Dense kernel has {weights.shape[0]} inputs but the layer "
                         f"{adapter.layer_name!r} has {channels} channels")
    if adapter.bound is not None:   # a target object: its dense column (× −1 for "the other class")
        columns, sign = adapter.bound.target.cam_columns(adapter.bound)
        return _raw(method.fn(cap.activations, weights[:, columns].T * sign[:, None], **options),
                    cap, job)
    return _raw(method.fn(cap.activations, weights[:, cap.targets].T, **options), cap, job)


@driver(needs="scores")
def with_masked_scores(method: Method, job: Job, options: dict) -> Raw:
    """Score-CAM: one forward pass, then forward passes of the image masked by each channel;
    ``fn(A, W)`` with ``W`` (N, K) the channel weights from those passes.

    Exact, with less work than one pass per channel: a channel whose activation is zero
    everywhere has an all-zero mask and contributes weight × 0 = 0 to the map, so it gets no
    forward pass (with ``"channel_softmax"``, which normalises over channels, all such channels
    share the logits of one pass of the all-zero image). Masks are made one batch at a time
    (not all K at once), multiply the image on the model's device, and the passes run without
    autograd, with the model's modes and hooks set up once per image
    (:meth:`~.adapters.base.Adapter.masked_scorer`). ``score_cam_channels=k`` keeps only the k
    channels of highest activation variance (the "Faster Score-CAM" approximation; the rest get
    weight 0).
    """
    adapter, x = job.adapter, job.images
    batch_size, convention = options["score_cam_batch_size"], options["score_cam_convention"]
    top_k = options["score_cam_channels"]
    cap = adapter.capture(x, job.target, gradients=False)
    acts = cap.activations  # (N, h, w, K)
    size = adapter.spatial_size(x)
    n, k = acts.shape[0], acts.shape[-1]
    live = [np.flatnonzero(np.any(acts[i] != 0, axis=(0, 1))) for i in range(n)]
    if top_k is not None:
        live = [c[np.argsort(-acts[i][..., c].reshape(-1, len(c)).var(axis=0), kind="stable")[:top_k]]
                for i, c in enumerate(live)]
    share_dead = convention == "channel_softmax" and top_k is None
    total = sum(len(c) + (share_dead and len(c) < k) for c in live)
    show = job.progress if job.progress is not None else total > 2048
    weights = np.zeros((n, k))
    with progress(total=total, desc="Score-CAM", unit="mask", disable=not show) as bar:
        for i in range(n):
            logits = np.zeros((k, adapter.num_classes), np.float32)
            with adapter.masked_scorer(x[i:i + 1], fast=options["score_cam_fast"]) as score:
                for start in range(0, len(live[i]), batch_size):
                    chunk = live[i][start:start + batch_size]
                    masks = score_cam_masks(acts[i:i + 1, :, :, chunk], size)[0]
                    logits[chunk] = score(masks)
                    bar.update(len(chunk))
                dead = np.setdiff1d(np.arange(k), live[i])
                if share_dead and len(dead):
                    logits[dead] = score(np.zeros((1, *size), np.float32))[0]
                    bar.update(1)
            used = live[i] if not share_dead else np.arange(k)
            if len(used) and adapter.bound is not None and convention == "paper":
                # a target object: the weight is the target's own value on the masked image (its
                # "classes" are the batch's images, so a softmax over them would mean nothing)
                weights[i, used] = logits[used, int(cap.targets[i])]
            elif len(used):
                weights[i, used] = score_cam_weights(logits[used], int(cap.targets[i]), convention)
    return _raw(method.fn(acts, weights), cap, job)


# ---------------------------------------------------------------------------------------------
# the registrations the pipeline reads

SCORE_CAM_OPTIONS = (
    positive_int("score_cam_batch_size", 16, "masked images per forward pass"),
    one_of("score_cam_convention", ("paper", "channel_softmax"),
           "channel weights: the softmax probability of each masked input (the paper) or the "
           "target logits softmax-normalised across channels (pytorch-grad-cam)"),
    positive_int("score_cam_channels", None, "None: exact; k: only the k channels of highest "
                 "activation variance get a pass (Faster Score-CAM, approximate)", optional=True),
    Option("score_cam_fast", True, "PyTorch: run the masked passes on an equivalent copy of the "
           "model with BatchNorm folded and channels-last memory (same maps up to float rounding)",
           lambda v: isinstance(v, bool), "True or False"),
)

for _method in (
    Method("cam", "cam", cam, with_dense_weights, "Zhou et al., CVPR 2016"),
    Method("gradcam", "cam", gradcam, with_gradients, "Selvaraju et al., ICCV 2017"),
    Method("gradcam++", "cam", gradcam_plus_plus, with_gradients, "Chattopadhay et al., WACV 2018",
           aliases=("gradcampp", "gradcamplusplus")),
    Method("xgradcam", "cam", xgradcam, with_gradients, "Fu et al., BMVC 2020"),
    Method("hirescam", "cam", hirescam, with_gradients, "Draelos & Carin, 2020"),
    Method("layercam", "cam", layercam, with_gradients, "Jiang et al., IEEE TIP 2021"),
    Method("eigencam", "cam", eigencam, with_activations, "Muhammad & Yeasin, IJCNN 2020"),
    Method("scorecam", "cam", weighted_sum, with_masked_scores, "Wang et al., CVPR-W 2020",
           options=SCORE_CAM_OPTIONS),
):
    register(_method)
