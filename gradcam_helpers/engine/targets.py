"""Which scalar of the model's output is explained, for each image: the one place that decides it.

By default a target is a **class**: the score explained for image ``i`` is ``logits[i, c_i]``, the
class score *before* softmax. The user says which class with ``target=``:

- ``None`` — each image's top class (chosen where the logits are computed, so no extra pass);
- an int — that class for every image;
- a sequence of ints (integral floats accepted) — one class per image.

Every part of the package resolves targets here: the pipeline checks the count before any work
(:func:`check_count`) and hands each batch its share (:func:`select`), the adapters turn the user's
value into class indices (:func:`class_indices`, :func:`resolve_targets`), and the faithfulness
metrics follow the same classes. A target that is not a class logit is an object (below): the
pipeline binds it to each batch (:meth:`Target.bind`) and, while it is bound, the adapters score
:meth:`Bound.virtual_scores` instead of the class scores.

**Target objects: binary, multi-label, segmentation and detection models.**

Every explanation method explains **one number per image**. For a classifier with a softmax it is
the class's logit (``target=3``, the default path of :func:`gradcam_helpers.explain`). Other models
need another number, and a *target* says which:

========================  =====================================================  =================
target                    the scalar s(x) of image n                             model output
========================  =====================================================  =================
``ClassLogit(c)``         z_c — the same as ``target=c``                         (N, classes)
``BinaryLogit()``         z, the log-odds of the positive class (p = σ(z));      (N, 1) or (N,)
                          ``positive=False``: −z, the log-odds of the other
                          class; ``probability=True``: σ(±z)
``LabelLogit(k)``         z_k of one label of a multi-label model (one sigmoid   (N, labels)
                          per label); ``probability=True``: σ(z_k)
``SegmentationScore(c)``  Σ_{p ∈ R} z_c(p) (or the mean over R) — R the pixels   (N, C, H, W) torch,
                          predicted as class c (default) or a region you pass    (N, H, W, C) Keras
``BoxScore(...)``         z_{b,c}, the class logit of one predicted box b;       (N, B, 4 + classes)
                          ``iou=True``: z_{b,c} · IoU(box_b, reference)
========================  =====================================================  =================

How a target works (the same in Keras 3 and PyTorch): :meth:`Target.bind` looks at the model's
output **for the original images** (NumPy) and fixes, per image, *what* is explained — the class,
the predicted mask, the box — as K weight maps over the output. The explained scalar is then a
weighted sum of the outputs, ``v_k = Σ_j W[n, k, j] · out[n, j]``, followed by a small function of
those K values (σ for a probability, a product with an IoU for a box). Because the weights are
fixed from the original image, every forward pass that a method makes on *changed* images
(Score-CAM's masked copies, the path of Integrated Gradients, SmoothGrad's noisy copies) scores the
same pixels, the same box and the same class.

The sum of a mask's logits is the target of Seg-Grad-CAM (Vinogradova, Dibrov & Myers, AAAI 2020,
"Towards Interpretable Semantic Segmentation via Gradient-weighted Class Activation Mapping"; also
pytorch-grad-cam's ``SemanticSegmentationTarget``). Multiplying a box's class score by its IoU with
a reference box follows D-RISE (Petsiuk et al., CVPR 2021, "Black-box Explanation of Object
Detectors via Saliency Maps"), which scores a proposal by IoU × class similarity × objectness;
pytorch-grad-cam's ``FasterRCNNBoxScoreTarget`` *adds* IoU and score instead. The negative logit as
"the other class" of a single-output model is pytorch-grad-cam's ``BinaryClassifierOutputTarget``.

Which methods apply (the pipeline raises for the others, naming a method that applies):

- every gradient CAM (Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM), Score-CAM (its channel
  weight is the target's value on the masked image: the logit, or the probability with
  ``probability=True``) and every pixel attribution (saliency, SmoothGrad, Integrated Gradients,
  Guided Backprop, Guided Grad-CAM): they only need the scalar;
- CAM: only for ``ClassLogit``, ``BinaryLogit`` and ``LabelLogit`` on a global-average-pooling →
  one-dense-layer head (its weights are that layer's column, times −1 for the other class of a
  binary model), and not with ``probability=True`` (CAM is a map of the logit; the probability is a
  monotone function of it, so the map would be the same);
- Eigen-CAM does not depend on any target (it is the first principal component of the activations):
  with a target object it raises instead of silently explaining something else.

The arithmetic is written once (:meth:`Bound.virtual_scores`); each adapter provides a few tensor
operations for its framework (:class:`TargetOps`).
"""
from __future__ import annotations

import abc
import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

#: what a target may be, for the error messages
TARGET_FORMS = "None (each image's top class), an int (that class for every image) or one class " \
               "index per image"


def check_count(target: Any, n: int) -> None:
    """Raise before any work when ``target`` gives a class per image for another number of images.

    Parameters
    ----------
    target : None, an int, or a sequence of class indices
    n : the number of images
    """
    values = np.asarray(target) if target is not None else None
    if values is not None and values.ndim == 1 and len(values) != n:
        raise ValueError(f"got {len(values)} targets for {n} images: pass one class index per image, "
                         "a single int for all of them, or None for each image's top class")


def select(target: Any, chunk: slice) -> Any:
    """The part of ``target`` that belongs to the images ``chunk`` (None and an int apply to all)."""
    if target is None or np.ndim(target) == 0:
        return target
    return np.asarray(target)[chunk]


def class_indices(target: Any, n: int, num_classes: int | None = None) -> np.ndarray | None:
    """The user's ``target`` as one class index per image, checked; None stays None (top class).

    Parameters
    ----------
    target : None, an int, or a sequence of ``n`` ints (integral floats accepted)
    n : the number of images
    num_classes : when given, every index must be in ``0 … num_classes - 1``

    Returns
    -------
    (n,) int64 array, or None when ``target`` is None

    Raises
    ------
    ValueError
        For a non-integer, a wrong count or an index out of range, saying what to pass instead.
    """
    if target is None:
        return None
    values = np.asarray(target)
    integral = values.dtype.kind in "iu" or (values.dtype.kind == "f" and bool(np.all(values == np.round(values))))
    if not integral or values.ndim > 1:
        raise ValueError(f"target must be {TARGET_FORMS}; got {target!r}")
    values = values.astype(np.int64)
    if values.ndim == 0:
        values = np.full(n, int(values), dtype=np.int64)
    elif values.shape != (n,):
        raise ValueError(f"got {values.size} targets for {n} images: pass one class index per image, "
                         "a single int for all of them, or None for each image's top class")
    if num_classes is not None:
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise ValueError(f"target class {int(bad[0])} is out of range: the model has {num_classes} "
                             f"classes (valid indices 0 … {num_classes - 1})")
    return values


def resolve_targets(target: Any, logits: np.ndarray) -> np.ndarray:
    """One class index per image: ``target`` checked against the logits, or each image's top class.

    Parameters
    ----------
    target : None, an int, or a sequence of class indices (see :func:`class_indices`)
    logits : (N, classes) class scores

    Returns
    -------
    (N,) int64 array
    """
    n, classes = np.shape(logits)
    chosen = class_indices(target, n, classes)
    return np.argmax(logits, axis=1).astype(np.int64) if chosen is None else chosen


# ------------------------------------------------------------------------------------------------
# target objects


__all__ = ["Target", "ClassLogit", "BinaryLogit", "LabelLogit", "SegmentationScore", "BoxScore",
           "Bound", "TargetOps", "NUMPY_OPS", "box_iou", "as_target", "check_method"]


# ------------------------------------------------------------------------------------------------
# the arithmetic, written once for NumPy, torch and keras.ops


class TargetOps(Protocol):
    """The operations a target's scalar needs; each adapter provides them for its framework.

    reshape(t, shape), matmul(a, b) : as NumPy's
    constant(array, like) : a float array as a tensor with ``like``'s dtype and device
    tile_rows(t, r) : (n, E) → (r n, E), row ``i n + j`` = ``t[j]``
    sigmoid(v), abs(v) : elementwise
    """

    def reshape(self, t: Any, shape: tuple) -> Any: ...

    def matmul(self, a: Any, b: Any) -> Any: ...

    def constant(self, array: np.ndarray, like: Any) -> Any: ...

    def tile_rows(self, t: Any, r: int) -> Any: ...

    def sigmoid(self, v: Any) -> Any: ...

    def abs(self, v: Any) -> Any: ...


class _NumpyOps:
    """:class:`TargetOps` for NumPy arrays (float64)."""

    @staticmethod
    def reshape(t, shape):
        return np.reshape(t, shape)

    @staticmethod
    def matmul(a, b):
        return np.asarray(a, np.float64) @ np.asarray(b, np.float64)

    @staticmethod
    def constant(array, like=None):
        return np.asarray(array, np.float64)

    @staticmethod
    def tile_rows(t, r):
        return np.tile(t, (r, 1))

    @staticmethod
    def contract(outputs, weights):
        """v[n, k] = Σ_m weights[n, k, m] · outputs[n].flat[m] (each image with its own weights)."""
        weights = np.asarray(weights, np.float64)
        flat = np.asarray(outputs, np.float64).reshape(len(weights), 1, weights.shape[-1])
        return (flat * weights).sum(axis=-1)

    @staticmethod
    def sigmoid(v):
        v = np.asarray(v, np.float64)
        return 0.5 * (1.0 + np.tanh(0.5 * v))

    @staticmethod
    def abs(v):
        return np.abs(v)


NUMPY_OPS = _NumpyOps()


def _maximum(ops: TargetOps, a, b):
    """max(a, b) = (a + b + |a − b|) / 2: at a tie the gradient is split ½ / ½ in every framework
    (``maximum`` itself breaks ties differently in TensorFlow, torch and JAX)."""
    return 0.5 * (a + b + ops.abs(a - b))


def _minimum(ops: TargetOps, a, b):
    return 0.5 * (a + b - ops.abs(a - b))


def _relu(ops: TargetOps, a):
    return 0.5 * (a + ops.abs(a))


def _iou_columns(ops: TargetOps, a, b):
    """IoU of boxes given as columns ``a = (x0, y0, x1, y1)`` of (N,) values each, same for b."""
    iw = _relu(ops, _minimum(ops, a[2], b[2]) - _maximum(ops, a[0], b[0]))
    ih = _relu(ops, _minimum(ops, a[3], b[3]) - _maximum(ops, a[1], b[1]))
    inter = iw * ih
    area_a = _relu(ops, a[2] - a[0]) * _relu(ops, a[3] - a[1])
    area_b = _relu(ops, b[2] - b[0]) * _relu(ops, b[3] - b[1])
    return inter / (area_a + area_b - inter)   # > 0: a reference box has a positive area


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes ``(x0, y0, x1, y1)`` (exclusive ends), broadcast.

    Parameters
    ----------
    a, b : (..., 4) float arrays that broadcast against each other

    Returns
    -------
    (...) float64 in [0, 1]; 0 where both boxes are empty (no 0 / 0)
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda c: (np.clip(c[..., 2] - c[..., 0], 0, None)  # noqa: E731
                      * np.clip(c[..., 3] - c[..., 1], 0, None))
    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


# the small functions applied to the K weighted sums v (N, K); ``extra`` are per-image arrays

def _first(ops: TargetOps, v):
    return v[:, 0]


def _sigmoid_first(ops: TargetOps, v):
    return ops.sigmoid(v[:, 0])


def _box_times_iou(ops: TargetOps, v, reference):
    box = [v[:, 1], v[:, 2], v[:, 3], v[:, 4]]
    ref = [reference[:, 0], reference[:, 1], reference[:, 2], reference[:, 3]]
    return v[:, 0] * _iou_columns(ops, box, ref)


# ------------------------------------------------------------------------------------------------
# a bound target: what is explained for each image of one batch


@dataclass
class Bound:
    """A target fixed for one batch of images.

    Attributes
    ----------
    combine : the function of the weighted sums: ``combine(ops, v, *extra) -> (N,)``
    weights : (N, K, M) float32 — K weight maps over the M output values of each image
    extra : per-image float32 arrays that ``combine`` takes (e.g. the reference boxes (N, 4))
    classes : (N,) int64 — the class (label, mask class, box class) explained for each image
    info : what was chosen, for the Explanation (e.g. ``"mask"`` (N, h, w) bool, ``"box"`` (N,))
    target : the :class:`Target` that made it
    """

    combine: Callable
    weights: np.ndarray
    extra: tuple = ()
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    info: dict = field(default_factory=dict)
    target: "Target | None" = None

    def __len__(self) -> int:
        return len(self.weights)

    def evaluate(self, outputs: np.ndarray) -> np.ndarray:
        """The scalar for NumPy outputs (N, ...) with these images' choices: (N,) float64."""
        v = NUMPY_OPS.contract(np.asarray(outputs, np.float64), self.weights)
        return np.asarray(self.combine(NUMPY_OPS, v, *self.extra), np.float64)

    def virtual_scores(self, ops: TargetOps, outputs: Any) -> Any:
        """Every image's scalar on every row of ``outputs``: (R, N), in the framework of ``ops``.

        Column j applies image j's choices (weights, reference box) to each of the R outputs. The
        adapters return this in place of the class scores while a target is bound, so the methods'
        "class" j *is* image j's target: the R rows may be the N images themselves (the diagonal
        is each image's scalar), one image's masked copies (Score-CAM) or its path points
        (Integrated Gradients), and the methods need no change.

        Parameters
        ----------
        outputs : (R, ...) the model's output (final softmax/sigmoid bypassed), M values per row
        """
        n, k, m = self.weights.shape
        flat = ops.reshape(outputs, (-1, m))
        rows = int(flat.shape[0])
        w = ops.constant(np.ascontiguousarray(self.weights.transpose(2, 0, 1).reshape(m, n * k)),
                         flat)
        v = ops.reshape(ops.matmul(flat, w), (rows * n, k))
        extra = tuple(ops.tile_rows(ops.constant(e, flat), rows) for e in self.extra)
        return ops.reshape(self.combine(ops, v, *extra), (rows, n))


# ------------------------------------------------------------------------------------------------
# targets


class Target(abc.ABC):
    """Says which scalar of a model's output to explain (see the module docstring)."""

    #: whether CAM (the dense layer's weight column) can explain this target
    cam_applies: bool = False

    @abc.abstractmethod
    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        """Fix what is explained for each image from the model's output on the original images.

        Parameters
        ----------
        outputs : (N, ...) float — the model's output before a final softmax/sigmoid
        channels_axis : where a per-pixel output keeps its classes: 1 in PyTorch (N, C, H, W),
            -1 in Keras (N, H, W, C)

        Raises
        ------
        ValueError
            When the output's shape does not fit this target (the message names the target that
            fits), or a requested class, region or box does not exist.
        """

    #: the attributes that may hold one value per image, with the number of dimensions of one
    #: image's value (an int: 0; a box: 1; a mask: 2); :meth:`for_images` slices them
    per_image: dict[str, int] = {}

    def cam_columns(self, bound: Bound) -> tuple[np.ndarray, np.ndarray]:
        """(column of the dense layer's weights, sign) per image, for CAM."""
        raise ValueError(_cam_message(self))

    def for_images(self, part: slice, n: int) -> "Target":
        """This target for the images ``part`` of a call on ``n`` images: the values given one per
        image (:attr:`per_image`) are sliced, the others kept. The pipeline binds a target to one
        batch at a time, so a region, reference box or class per image must follow the batch.

        Raises
        ------
        ValueError
            When a per-image value has another number of entries than there are images.
        """
        clone = copy.copy(self)
        for name, single in self.per_image.items():
            value = getattr(self, name)
            if value is None:
                continue
            values = np.asarray(value)
            if values.ndim != single + 1:
                continue                      # one value for every image
            if len(values) != n:
                raise ValueError(f"{type(self).__name__}: {name} has {len(values)} entries, one per "
                                 f"image, but there are {n} images: pass one per image, or one "
                                 f"value for all of them")
            setattr(clone, name, values[part])
        return clone

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"


def _shape_text(outputs: np.ndarray) -> str:
    return "(N, " + ", ".join(str(s) for s in outputs.shape[1:]) + ")" if outputs.ndim > 1 else "(N,)"


def _output(target: "Target", outputs, fits: Callable[[np.ndarray], bool], expected: str) -> np.ndarray:
    """The model's output as an array, or a ValueError saying which target fits its shape."""
    outputs = np.asarray(outputs)
    if fits(outputs):
        return outputs
    advice = _suggest(outputs)
    if type(target).__name__ in advice:   # the right kind of output, not the right layout
        advice = "Wrap the model (or pass score_fn=...) so that its output has that layout."
    raise ValueError(f"{type(target).__name__} explains {expected}; this model gives "
                     f"{_shape_text(outputs)}. {advice}")


def _per_image(value, n: int, name: str) -> np.ndarray:
    """An int or one int per image → (n,) int64."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ValueError(f"{name} must be an int or one int per image; got {value!r}")
    arr = arr.astype(np.int64)
    if arr.ndim == 0:
        return np.full(n, int(arr), np.int64)
    if arr.shape != (n,):
        raise ValueError(f"got {arr.size} values of {name} for {n} images: pass one per image or a "
                         "single int for all of them")
    return arr


def _one_column(outputs: np.ndarray, columns: np.ndarray, sign: np.ndarray | float = 1.0) -> np.ndarray:
    """Weights (N, 1, M) that pick ``outputs[n].flat[columns[n]]`` (times ``sign``)."""
    n = len(outputs)
    m = int(np.prod(outputs.shape[1:], dtype=np.int64)) if outputs.ndim > 1 else 1
    w = np.zeros((n, 1, m), np.float32)
    w[np.arange(n), 0, columns] = sign
    return w


class ClassLogit(Target):
    """The logit of one class of a softmax classifier (the default of ``explain``).

    ``explain(..., target=ClassLogit(3))`` is ``explain(..., target=3)``; ``index=None`` explains
    each image's top class. Output (N, classes).
    """

    cam_applies = True

    def __init__(self, index: int | Sequence[int] | None = None):
        self.index = index

    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        outputs = _output(self, outputs, lambda o: o.ndim == 2,
                          "one class of a classifier whose output is (N, classes)")
        classes = _class_indices(self.index, outputs, "class")
        return Bound(_first, _one_column(outputs, classes), classes=classes, target=self)

    def cam_columns(self, bound: Bound) -> tuple[np.ndarray, np.ndarray]:
        return bound.classes, np.ones(len(bound))


def _class_indices(index, outputs: np.ndarray, word: str) -> np.ndarray:
    n, classes = outputs.shape
    chosen = np.argmax(outputs, axis=1).astype(np.int64) if index is None else _per_image(
        index, n, word)
    bad = chosen[(chosen < 0) | (chosen >= classes)]
    if bad.size:
        hint = (" This model has one output unit (a binary model): use BinaryLogit() for the "
                "positive class and BinaryLogit(positive=False) for the other one."
                if classes == 1 else "")
        plural = word if classes == 1 else word + ("es" if word == "class" else "s")
        raise ValueError(f"{word} {int(bad[0])} is out of range: the model has {classes} {plural} "
                         f"(valid indices 0 … {classes - 1}).{hint}")
    return chosen


def _suggest(outputs: np.ndarray) -> str:
    """Which target fits an output of this shape."""
    return suggest_target(outputs.ndim, outputs.shape[-1] if outputs.ndim else 0)


def suggest_target(rank: int, last: int) -> str:
    """Which target fits an output of rank ``rank`` whose last axis has ``last`` values."""
    if rank == 1 or (rank == 2 and last == 1):
        return "For a model with one output unit (sigmoid) use BinaryLogit()."
    if rank == 2:
        return ("For a softmax classifier pass target=class index (ClassLogit); for one sigmoid per "
                "label use LabelLogit(label).")
    if rank == 3:
        return ("For a detector whose output is a fixed set of boxes (N, boxes, 4 + classes) use "
                "BoxScore(...).")
    if rank == 4:
        return "For a per-pixel output (a segmentation model) use SegmentationScore(class)."
    return "Pass score_fn=... to turn the output into one of the shapes the targets take."


class BinaryLogit(Target):
    """A single-output binary model (one sigmoid unit): its logit, or the other class's.

    With ``p = σ(z)`` the probability of the positive class, the logit z is the positive class's
    log-odds ``log(p / (1 − p))``, and ``−z`` is the other class's: ``σ(−z) = 1 − p``. So the
    "other class" of a single-output model is explained by the negative logit.

    Parameters
    ----------
    positive : True explains the positive class (z), False the other class (−z)
    probability : explain σ(±z), the probability, instead of the log-odds. The gradient is the
        log-odds' gradient times σ'(z) = p (1 − p) > 0, so Grad-CAM's map (normalised) is the same,
        but it shrinks towards 0 when the model is sure (saturation), and Integrated Gradients'
        attributions then add up to a difference of probabilities

    Output (N, 1) or (N,).
    """

    cam_applies = True

    def __init__(self, positive: bool = True, probability: bool = False):
        self.positive = bool(positive)
        self.probability = bool(probability)

    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        outputs = _output(self, outputs,
                          lambda o: o.ndim == 1 or (o.ndim == 2 and o.shape[1] == 1),
                          "a model with one output unit, (N, 1) or (N,)")
        n = len(outputs)
        sign = 1.0 if self.positive else -1.0
        classes = np.full(n, 1 if self.positive else 0, np.int64)
        return Bound(_sigmoid_first if self.probability else _first,
                     _one_column(outputs, np.zeros(n, np.int64), sign), classes=classes,
                     target=self)

    def cam_columns(self, bound: Bound) -> tuple[np.ndarray, np.ndarray]:
        _no_probability_for_cam(self)
        return np.zeros(len(bound), np.int64), np.full(len(bound), 1.0 if self.positive else -1.0)


def _no_probability_for_cam(target) -> None:
    if target.probability:
        raise ValueError("CAM is a map of the logit; the probability σ(z) is a monotone function "
                         "of it, so CAM's normalised map would be the same. Drop probability=True, "
                         "or use a gradient method (method='gradcam') to explain the probability")


class LabelLogit(Target):
    """One label of a multi-label model (one sigmoid per label, labels not exclusive).

    Parameters
    ----------
    index : the label (an int, one per image, or None for each image's highest logit)
    probability : explain σ(z_k) instead of the logit z_k (see :class:`BinaryLogit`). Not a
        softmax: in a multi-label model the labels do not compete

    Output (N, labels).
    """

    cam_applies = True
    per_image = {"index": 0}

    def __init__(self, index: int | Sequence[int] | None = None, probability: bool = False):
        self.index = index
        self.probability = bool(probability)

    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        outputs = _output(self, outputs, lambda o: o.ndim == 2,
                          "one label of a multi-label classifier whose output is (N, labels)")
        labels = _class_indices(self.index, outputs, "label")
        return Bound(_sigmoid_first if self.probability else _first, _one_column(outputs, labels),
                     classes=labels, target=self)

    def cam_columns(self, bound: Bound) -> tuple[np.ndarray, np.ndarray]:
        _no_probability_for_cam(self)
        return bound.classes, np.ones(len(bound))


class SegmentationScore(Target):
    """The logits of one class summed (or averaged) over a region of a segmentation output.

    Parameters
    ----------
    index : the class (output channel)
    mask : None — the pixels the model predicts as ``index`` on each original image ("why did the
        model mark these pixels as this class?"); or a region: (h, w) for every image or (N, h, w),
        bool or 0/1, at the **output's** resolution ("why these pixels?")
    reduce : "sum" (Seg-Grad-CAM) or "mean" (the same map after normalisation, a scale that does
        not grow with the region's size)
    rule : how the predicted mask is read: "positive" (logit > 0: one sigmoid per class) or
        "argmax" (the class with the highest logit: a softmax over classes); None picks "positive"
        for one output channel and "argmax" for several

    Output (N, C, h, w) in PyTorch, (N, h, w, C) in Keras. A region without pixels raises (the
    gradient of an empty sum is zero: there would be nothing to explain).
    """

    per_image = {"mask": 2}

    def __init__(self, index: int = 0, mask: np.ndarray | None = None, reduce: str = "sum",
                 rule: str | None = None):
        if reduce not in ("sum", "mean"):
            raise ValueError(f"reduce must be 'sum' or 'mean'; got {reduce!r}")
        if rule not in (None, "positive", "argmax"):
            raise ValueError(f"rule must be None, 'positive' or 'argmax'; got {rule!r}")
        self.index = int(index)
        self.mask = None if mask is None else np.asarray(mask)
        self.reduce = reduce
        self.rule = rule

    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        outputs = _output(self, outputs, lambda o: o.ndim == 4,
                          "a per-pixel output, (N, C, h, w) in PyTorch or (N, h, w, C) in Keras")
        axis = channels_axis % 4
        logits = np.moveaxis(outputs, axis, -1)   # (N, h, w, C)
        n, h, w, classes = logits.shape
        if not 0 <= self.index < classes:
            raise ValueError(f"class {self.index} is out of range: the output has {classes} "
                             f"channel(s) on axis {axis} (valid 0 … {classes - 1})")
        if self.mask is None:
            rule = self.rule or ("positive" if classes == 1 else "argmax")
            region = (logits[..., self.index] > 0 if rule == "positive"
                      else np.argmax(logits, axis=-1) == self.index)
            source = f"the predicted mask of class {self.index}"
        else:
            region = self._region(n, (h, w))
            source = "the mask you passed"
        counts = region.sum(axis=(1, 2))
        if (counts == 0).any():
            i = int(np.flatnonzero(counts == 0)[0])
            raise ValueError(f"{source} has no pixel in image {i}: there is nothing to explain. "
                             "Pass mask=... with the region you want explained, or another class")
        per_pixel = region.astype(np.float32)
        if self.reduce == "mean":
            per_pixel /= counts[:, None, None].astype(np.float32)
        weights = np.zeros((n, h, w, classes), np.float32)
        weights[..., self.index] = per_pixel
        flat = np.moveaxis(weights, -1, axis).reshape(n, 1, -1)
        return Bound(_first, flat, classes=np.full(n, self.index, np.int64),
                     info={"mask": region}, target=self)

    def _region(self, n: int, size: tuple[int, int]) -> np.ndarray:
        mask = self.mask
        assert mask is not None, "called only for a target with a mask"
        if mask.dtype != bool:
            if not np.all((mask == 0) | (mask == 1)):
                raise ValueError("mask must be boolean or 0/1")
            mask = mask.astype(bool)
        if mask.shape == size:
            return np.broadcast_to(mask, (n,) + size).copy()
        if mask.shape == (n,) + size:
            return mask.copy()
        raise ValueError(f"the mask has shape {mask.shape}, but the model's output is {size[0]} × "
                         f"{size[1]} per image: pass a mask of shape {size} (or ({n}, {size[0]}, "
                         f"{size[1]})) at the output's resolution, e.g. shrink an input-sized mask "
                         "with mask[::k, ::k] or a max-pool")


class BoxScore(Target):
    """The class logit of one box of a detector whose output is a fixed set of boxes.

    The output is (N, B, 4 + classes): for each of B boxes ``(x0, y0, x1, y1)`` in input pixels,
    then one logit per class (both frameworks).

    Parameters
    ----------
    box : which box — an int or one per image; None chooses it (below)
    index : which class's logit; None: the chosen box's highest logit
    reference : (4,) or (N, 4) boxes ``(x0, y0, x1, y1)``, e.g. the ground truth. With ``box=None``
        the explained box is the one with the highest logit (of class ``index``, or of any class)
        among the boxes whose IoU with the reference is at least ``min_iou`` — the detection that
        claims the reference, as when detections are matched to ground truth for average
        precision; when no box reaches ``min_iou``, the box with the highest IoU. Without a
        reference: the box with the highest logit (of class ``index``, or of any class)
    iou : multiply the logit by the box's IoU with ``reference`` (D-RISE's recipe): the scalar then
        also rewards evidence that moves the box onto the reference. Needs ``reference``
    min_iou : see ``reference``

    The chosen box's IoU with the reference, on the original image, is in ``info["iou"]``: check
    it when a reference may have no detection.
    """

    per_image = {"box": 0, "index": 0, "reference": 1}

    def __init__(self, box: int | Sequence[int] | None = None, index: int | Sequence[int] | None = None,
                 reference: np.ndarray | Sequence[float] | None = None, iou: bool = False,
                 min_iou: float = 0.5):
        self.box = box
        self.index = index
        self.reference = None if reference is None else np.asarray(reference, np.float64)
        self.iou = bool(iou)
        if not 0 <= min_iou <= 1:
            raise ValueError(f"min_iou must be in [0, 1]; got {min_iou}")
        self.min_iou = float(min_iou)
        if self.iou and self.reference is None:
            raise ValueError("iou=True multiplies the box's score by its IoU with a reference box: "
                             "pass reference=(x0, y0, x1, y1), e.g. the ground-truth box")

    def bind(self, outputs: np.ndarray, channels_axis: int = -1) -> Bound:
        outputs = _output(self, outputs, lambda o: o.ndim == 3 and o.shape[2] >= 5,
                          "a detector whose output is a fixed set of boxes, (N, boxes, 4 + classes) "
                          "with the box (x0, y0, x1, y1) first")
        n, count, width = outputs.shape
        boxes, logits = outputs[..., :4].astype(np.float64), outputs[..., 4:]
        classes_n = width - 4
        reference = self._reference(n)
        index = None if self.index is None else _per_image(self.index, n, "index")
        if index is not None and ((index < 0) | (index >= classes_n)).any():
            raise ValueError(f"class {int(index[(index < 0) | (index >= classes_n)][0])} is out of "
                             f"range: the detector has {classes_n} classes (valid 0 … "
                             f"{classes_n - 1})")
        if self.box is not None:
            chosen = _per_image(self.box, n, "box")
            if ((chosen < 0) | (chosen >= count)).any():
                raise ValueError(f"box {int(chosen[(chosen < 0) | (chosen >= count)][0])} is out of "
                                 f"range: the detector gives {count} boxes (valid 0 … {count - 1})")
        else:
            score = (logits[np.arange(n), :, index] if index is not None
                     else logits.max(axis=2)).astype(np.float64)       # (N, B)
            if reference is not None:
                overlap = box_iou(boxes, reference[:, None, :])      # (N, B)
                claims = overlap >= self.min_iou
                score = np.where(claims, score, -np.inf)
                chosen = np.where(claims.any(axis=1), np.argmax(score, axis=1),
                                  np.argmax(overlap, axis=1)).astype(np.int64)
            else:
                chosen = np.argmax(score, axis=1).astype(np.int64)
        rows = np.arange(n)
        if index is None:
            index = np.argmax(logits[rows, chosen], axis=1).astype(np.int64)
        columns = chosen * width + 4 + index
        weights = _one_column(outputs, columns)
        extra: tuple = ()
        combine: Callable[..., Any] = _first
        if self.iou:
            assert reference is not None, "iou=True requires reference= (checked in __init__)"
            coords = np.zeros((n, 4, count * width), np.float32)
            for k in range(4):
                coords[rows, k, chosen * width + k] = 1
            weights = np.concatenate([weights, coords], axis=1)
            extra = (reference.astype(np.float32),)
            combine = _box_times_iou
        info = {"box": chosen, "boxes": boxes[rows, chosen].astype(np.float32)}
        if reference is not None:
            info["reference"] = reference.astype(np.float32)
            info["iou"] = box_iou(boxes[rows, chosen], reference)
        return Bound(combine, weights, extra, classes=index, info=info, target=self)

    def _reference(self, n: int) -> np.ndarray | None:
        ref = self.reference
        if ref is None:
            return None
        if ref.shape == (4,):
            ref = np.broadcast_to(ref, (n, 4))
        if ref.shape != (n, 4):
            raise ValueError(f"reference must be one box (4,) or one per image ({n}, 4) as "
                             f"(x0, y0, x1, y1); got shape {ref.shape}")
        if not np.all(np.isfinite(ref)) or np.any(ref[:, 2] <= ref[:, 0]) or np.any(
                ref[:, 3] <= ref[:, 1]):
            raise ValueError("every reference box needs x1 > x0 and y1 > y0 (finite), as "
                             "(x0, y0, x1, y1) in input pixels")
        return np.array(ref, np.float64)


def as_target(target) -> Target | None:
    """``None``, an int or a sequence of ints (the class-index path) → None; a
    :class:`ClassLogit` → None too (the same path, via :func:`legacy_index`); another target → itself.

    Raises TypeError for anything else, listing what a target can be.
    """
    if target is None or isinstance(target, ClassLogit):
        return None
    if isinstance(target, Target):
        return target
    if isinstance(target, (int, np.integer)) or (
            isinstance(target, (list, tuple, np.ndarray)) and np.asarray(target).dtype.kind in "iuf"):
        return None
    raise TypeError(f"target must be None, a class index (int), one index per image, or a target "
                    f"object (ClassLogit, BinaryLogit, LabelLogit, SegmentationScore, BoxScore); "
                    f"got {type(target).__name__}")


def legacy_index(target):
    """The class-index form of ``target`` for the default path (``ClassLogit(c)`` → c)."""
    return target.index if isinstance(target, ClassLogit) else target


def check_method(target: Target | None, method: str, needs: str) -> None:
    """Raise when a method does not apply to a target (see the module docstring)."""
    if target is None:
        return
    if needs == "activations":
        raise ValueError(f"{method} does not depend on the target: it is the first principal "
                         f"component of the layer's activations, the same map for every class, "
                         f"box or region. Drop target=... to use it, or use method='gradcam' to "
                         f"explain {type(target).__name__}")
    if needs == "attention":
        raise ValueError(f"{method} does not depend on the target: it reads the model's attention "
                         f"weights, the same map for every class, box or region. Drop target=... "
                         f"to use it, or use method='gradcam' to explain {type(target).__name__}")
    if needs == "cam_weights" and not target.cam_applies:
        raise ValueError(_cam_message(target))
    if needs == "cam_weights" and getattr(target, "probability", False):
        _no_probability_for_cam(target)


def _cam_message(target: Target) -> str:
    return (f"CAM cannot explain {type(target).__name__}: CAM's weights are the columns of a "
            "classifier's last dense layer, and this target is not one class or label of a "
            "classifier. Use method='gradcam' (it works with every target)")
