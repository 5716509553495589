"""A small one-stage digit detector (Keras 3) for lesson 15: a fixed set of boxes per image.

The MNIST canvases of :mod:`gradcam_helpers.course.mnist` carry the box of every digit, so a detector can
be trained here in a minute. This one is a tiny "one box per grid cell" detector in the spirit of
YOLO (Redmon et al., CVPR 2016, "You Only Look Once") and FCOS (Tian et al., ICCV 2019, "FCOS:
Fully Convolutional One-Stage Object Detection"): every cell of a stride-4 grid predicts one box —
its distances to the box's left, top, right and bottom edges — and one logit per class (a sigmoid
each, so "no digit here" is every logit negative)::

    image (None, None, 1)
      → conv1 Conv2D(16, 3×3) → bn1 → relu1 → pool1 MaxPooling2D(2)
      → conv2 Conv2D(32, 3×3) → bn2 → relu2 → pool2 MaxPooling2D(2)
      → conv3 Conv2D(48, 3×3) → bn3 → relu3
      → conv4 Conv2D(48, 3×3) → bn4 → relu4                       (H/4, W/4, 48)
      → head Conv2D(4 + 10, 1×1)                                   (H/4, W/4, 14)
      → boxes BoxDecoder                                           (N, B, 4 + 10),  B = H/4 · W/4

Output ``(N, B, 4 + 10)``: for box ``b`` (grid cell ``(b // (W/4), b % (W/4))``), columns 0–3 are
``(x0, y0, x1, y1)`` in input pixels (exclusive ends, like the canvases' boxes) and columns 4–13
the class logits of the digits 0–9. That is the layout :class:`gradcam_helpers.engine.targets.BoxScore`
reads. ``relu4`` (:data:`TARGET_LAYER`) is the layer the lesson explains: a 26-pixel receptive
field, about one digit.

Training (:func:`get_digit_detector`): the cell that holds a digit's box centre, and the cells
around it whose centres lie inside the box (FCOS's "centre sampling"), are that digit's positives;
their class logit learns 1 and their box the digit's ink box, every other cell learns 0 for every
class (binary cross-entropy). As in RetinaNet (Lin et al., ICCV 2017, "Focal Loss for Dense Object
Detection") the class logits start at the prior ``-log((1 - π) / π)`` with π = 0.01, so the many
empty cells do not swamp the first steps. After training, the BatchNormalization statistics are
recomputed under the final weights on fresh canvases: their running averages lag behind weights
that were still changing, and on this short training that lag alone made the inference-mode logits
of the digits' cells negative. Canvases are made fresh every epoch from the **training** digits
(lessons evaluate on canvases of the test digits), with one digit or two digits of different
classes, 48 × 48 pixels; the network is fully convolutional and runs on 64 × 64 canvases too.

TensorFlow/Keras are imported inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..cache import cache_path, fingerprint, load_keras, load_or_train, save_keras
from .keras_mnist import TrainedModel, _short

#: Bump when the builder or the trainer changes, so that old cached files are not used any more.
VERSION = 3

#: The layer lesson 15 explains: the last convolution block before the 1 × 1 head.
TARGET_LAYER = "relu4"

NUM_CLASSES = 10

#: Input pixels per grid cell.
STRIDE = 4

#: Cells around a digit's centre cell that are its positives too (3 × 3 cells, inside the box).
RADIUS = 1

#: The class logits' starting bias: the prior probability 0.01 of a digit in a cell (RetinaNet).
PRIOR_BIAS = float(-np.log((1 - 0.01) / 0.01))

#: Weight of the box loss (L1 in grid cells) against the class loss.
BOX_WEIGHT = 0.1

_REGISTERED: dict = {}


def _serializables() -> dict:
    """The detector's own Keras objects, defined and registered once Keras is imported (a saved
    model names them, so they must be registered before :func:`keras.models.load_model`)."""
    if _REGISTERED:
        return _REGISTERED
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="gradcam_helpers")
    class BoxDecoder(keras.layers.Layer):
        """(N, h, w, 4 + K) head → (N, h·w, 4 + K): boxes in input pixels, then the class logits.

        A cell's centre is ``((j + 0.5) · stride, (i + 0.5) · stride)``; the first four head
        channels are its distances to the box's left, top, right and bottom edges, made positive
        with softplus and scaled by ``2 · stride``.
        """

        def __init__(self, stride: int = STRIDE, **kwargs):
            super().__init__(**kwargs)
            self.stride = int(stride)

        def call(self, head):
            shape = ops.shape(head)
            n, h, w, c = shape[0], shape[1], shape[2], shape[3]
            dtype = head.dtype
            ys = (ops.cast(ops.arange(h), dtype) + 0.5) * self.stride
            xs = (ops.cast(ops.arange(w), dtype) + 0.5) * self.stride
            cy = ops.expand_dims(ops.expand_dims(ys, 1) + ops.zeros((1, w), dtype), 0)
            cx = ops.expand_dims(ops.zeros((h, 1), dtype) + ops.expand_dims(xs, 0), 0)
            dist = ops.softplus(head[..., :4]) * (2.0 * self.stride)
            boxes = ops.stack([cx - dist[..., 0], cy - dist[..., 1], cx + dist[..., 2],
                               cy + dist[..., 3]], axis=-1)
            out = ops.concatenate([boxes, head[..., 4:]], axis=-1)
            return ops.reshape(out, (n, h * w, c))

        def get_config(self):
            return {**super().get_config(), "stride": self.stride}

    @keras.saving.register_keras_serializable(package="gradcam_helpers")
    def detection_loss(y_true, y_pred):
        """Class loss (binary cross-entropy, every cell and class) + ``BOX_WEIGHT`` × box loss (L1 in grid cells, positive cells only), divided
        by the number of positive cells.

        ``y_true`` (N, B, 4 + K + 1): the box, the one-hot class and a positive flag per cell.
        """
        k = ops.shape(y_pred)[-1] - 4
        positive = y_true[..., 4 + k]
        count = ops.maximum(ops.sum(positive), 1.0)
        logits, labels = y_pred[..., 4:], y_true[..., 4:4 + k]
        bce = ops.maximum(logits, 0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
        box = ops.sum(ops.abs(y_pred[..., :4] - y_true[..., :4]), axis=-1) / STRIDE
        return (ops.sum(bce) + BOX_WEIGHT * ops.sum(box * positive)) / count

    _REGISTERED.update(BoxDecoder=BoxDecoder, detection_loss=detection_loss)
    return _REGISTERED


def build_digit_detector(num_classes: int = NUM_CLASSES):
    """The detector (see the module docstring), not compiled.

    Returns
    -------
    keras.Model named ``"digit_detector"``; input ``(None, None, 1)`` float in [0, 1] (height and
    width multiples of 4), output ``(N, B, 4 + num_classes)``.
    """
    import keras
    from keras import layers

    decoder = _serializables()["BoxDecoder"]

    def block(x, filters: int, index: int):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"bn{index}")(x)
        return layers.ReLU(name=f"relu{index}")(x)

    inputs = keras.Input(shape=(None, None, 1), name="image")
    x = layers.MaxPooling2D(2, name="pool1")(block(inputs, 16, 1))
    x = layers.MaxPooling2D(2, name="pool2")(block(x, 32, 2))
    x = block(block(x, 48, 3), 48, 4)
    bias = np.concatenate([np.zeros(4), np.full(num_classes, PRIOR_BIAS)]).astype("float32")
    head = layers.Conv2D(4 + num_classes, 1, name="head",
                         bias_initializer=keras.initializers.Constant(bias))(x)
    outputs = decoder(STRIDE, name="boxes")(head)
    return keras.Model(inputs, outputs, name="digit_detector")


def detector_targets(boxes: np.ndarray, labels: np.ndarray, size: tuple[int, int],
                     num_classes: int = NUM_CLASSES, stride: int = STRIDE,
                     radius: int = RADIUS) -> np.ndarray:
    """Training targets for canvases: the cells around each digit's box centre are its positives.

    A cell is positive for a digit when it is the cell of the box centre, or lies at most
    ``radius`` cells from it (in rows and columns) with its own centre inside the box ("centre
    sampling", as in FCOS).

    Parameters
    ----------
    boxes : (n, 4) or (n, D, 4) int — ``(x0, y0, x1, y1)`` of each digit, exclusive ends
    labels : (n,) or (n, D) int — the digits' classes
    size : (H, W) of the canvases
    num_classes, stride : as the detector's
    radius : how many cells around the centre cell are positives too

    Returns
    -------
    (n, (H / stride) · (W / stride), 4 + num_classes + 1) float32 — per cell the box, the one-hot
    class and a positive flag (1 for a digit's cells). Where two digits claim one cell, the second
    one's target stays there.
    """
    boxes = np.asarray(boxes, np.float32)
    labels = np.asarray(labels, np.int64)
    if boxes.ndim == 2:
        boxes, labels = boxes[:, None], labels[:, None]
    if boxes.shape[:2] != labels.shape or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (n, [D,] 4) with labels (n, [D]); got {boxes.shape} and "
                         f"{labels.shape}")
    h, w = size[0] // stride, size[1] // stride
    out = np.zeros((len(boxes), h * w, 4 + num_classes + 1), np.float32)
    centres = (np.arange(max(h, w)) + 0.5) * stride
    for i in range(len(boxes)):
        for box, label in zip(boxes[i], labels[i]):
            row = min(int((box[1] + box[3]) / 2 // stride), h - 1)
            col = min(int((box[0] + box[2]) / 2 // stride), w - 1)
            for r in range(max(row - radius, 0), min(row + radius, h - 1) + 1):
                for c in range(max(col - radius, 0), min(col + radius, w - 1) + 1):
                    inside = box[0] <= centres[c] < box[2] and box[1] <= centres[r] < box[3]
                    if not inside and (r, c) != (row, col):
                        continue
                    cell = r * w + c
                    out[i, cell, :4] = box
                    out[i, cell, 4:4 + num_classes] = 0
                    out[i, cell, 4 + label] = 1
                    out[i, cell, -1] = 1
    return out


def detector_canvases(x: np.ndarray, y: np.ndarray, one_digit: int, two_digit: int, canvas: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of training canvases and their targets (:func:`detector_targets`).

    Returns
    -------
    images : (one_digit + two_digit, canvas, canvas, 1) float32 in [0, 1]
    targets : (n, (canvas / 4)², 15) float32
    """
    from ..mnist import make_localization_set, make_two_digit_set

    images, targets = [], []
    if one_digit:
        one = make_localization_set(x, y, one_digit, canvas=canvas, seed=seed)
        images.append(one.images)
        targets.append(detector_targets(one.boxes, one.labels, (canvas, canvas)))
    if two_digit:
        two = make_two_digit_set(x, y, two_digit, canvas=canvas, seed=seed + 1)
        images.append(two.images)
        targets.append(detector_targets(two.boxes, two.labels, (canvas, canvas)))
    return np.concatenate(images), np.concatenate(targets)


def get_digit_detector(data=None, *, epochs: int = 5, one_digit: int = 3000, two_digit: int = 1500,
                       canvas: int = 48, batch_size: int = 64, learning_rate: float = 2e-3,
                       seed: int = 0, retrain: bool = False, verbose: bool = True) -> TrainedModel:
    """The digit detector trained on MNIST canvases: from the cache, or trained and cached.

    Parameters
    ----------
    data : MnistData, optional — from :func:`gradcam_helpers.course.mnist.load_mnist` (``None`` calls it);
        only ``x_train`` / ``y_train`` are used
    epochs : passes; each one draws fresh canvases
    one_digit, two_digit : canvases per epoch with one digit and with two digits of different
        classes; at least one positive
    canvas : side of the training canvases in pixels (a multiple of 4, at least 28)
    batch_size, learning_rate : Adam settings
    seed : seeds Keras (weights), the canvases and the shuffling
    retrain : train again even when a cached model exists (the new file replaces it)
    verbose : one line per epoch while training, or one line saying where it was loaded from

    Returns
    -------
    TrainedModel — ``model`` (not compiled), ``history`` (per epoch ``loss`` and ``seconds``),
    ``config``, ``path``, ``from_cache``.
    """
    import keras

    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}")
    if one_digit < 0 or two_digit < 0 or one_digit + two_digit == 0:
        raise ValueError("one_digit and two_digit are canvas counts >= 0, and at least one must be "
                         f"positive; got one_digit={one_digit}, two_digit={two_digit}")
    if canvas < 28 or canvas % STRIDE:
        raise ValueError(f"canvas must be a multiple of {STRIDE} of at least 28 pixels; got {canvas}")
    if data is None:
        from ..mnist import load_mnist

        data = load_mnist()
    from .keras_localization import _training_digits

    x, y = _training_digits(data)
    config = {"model": "digit_detector", "version": VERSION, "epochs": int(epochs),
              "one_digit": int(one_digit), "two_digit": int(two_digit), "canvas": int(canvas),
              "batch_size": int(batch_size), "learning_rate": float(learning_rate),
              "seed": int(seed), "keras": keras.__version__.split(".")[0],
              "data": {"source": getattr(data, "source", "custom"), "n": len(x),
                       "fingerprint": fingerprint(x, y)}}
    path = cache_path(f"digit_detector-v{VERSION}", config, ".keras", framework="keras")

    def train():
        keras.utils.set_random_seed(config["seed"])
        model = build_digit_detector()
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      loss=_serializables()["detection_loss"])
        if verbose:
            print(f"学習します / training {model.name}: {one_digit:,} + {two_digit:,} canvases of "
                  f"{canvas}×{canvas} per epoch from {len(x):,} training digits "
                  f"({config['data']['source']}), {epochs} epochs", flush=True)
        return model, _train(model, config, x, y, verbose)

    def load(file: Path):
        _serializables()
        return load_keras(file)

    (model, history), from_cache = load_or_train(
        path, load, train, lambda result, file: save_keras(*result, config, file), retrain=retrain)
    if verbose and from_cache:
        print("キャッシュから読み込みました / loaded from cache: " + _short(path))
    elif verbose:
        print("保存しました / cached: " + _short(path))
    return TrainedModel(model, history, config, path, from_cache=from_cache)


def _train(model, config: dict, x: np.ndarray, y: np.ndarray, verbose: bool) -> dict:
    """Epoch loop: fresh canvases, seeded shuffling, one short line per epoch."""
    rng = np.random.default_rng(config["seed"] + 1)
    history: dict[str, list[float]] = {"loss": [], "seconds": []}
    for epoch in range(config["epochs"]):
        start = time.perf_counter()
        images, targets = detector_canvases(x, y, config["one_digit"], config["two_digit"],
                                            config["canvas"], seed=config["seed"] * 1000 + 2 * epoch)
        order = rng.permutation(len(images))
        fit = model.fit(images[order], targets[order], batch_size=config["batch_size"], epochs=1,
                        shuffle=False, verbose=0)
        history["loss"].append(float(fit.history["loss"][-1]))
        history["seconds"].append(time.perf_counter() - start)
        if verbose:
            print(f"epoch {epoch + 1}/{config['epochs']} | loss {history['loss'][-1]:.3f} | "
                  f"{history['seconds'][-1]:.1f} s", flush=True)
    images, _ = detector_canvases(x, y, 2 * BN_CANVASES // 3, BN_CANVASES // 3, config["canvas"],
                                  seed=config["seed"] * 1000 + 999)
    recompute_batchnorm(model, images)
    return history


#: Canvases (two thirds with one digit) whose statistics replace BatchNormalization's running ones.
BN_CANVASES = 1536


def recompute_batchnorm(model, images: np.ndarray) -> None:
    """Set every BatchNormalization layer's moving mean and variance to the statistics of
    ``images`` under the current weights: one training-mode pass with momentum 0 (in training mode
    each layer normalises with the batch's own statistics, so it sees the inputs it saw during
    training and stores their mean and variance), then the momenta are restored.

    Parameters
    ----------
    images : (M, H, W, 1) float32 — canvases like the training ones
    """
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    try:
        for layer in norms:
            layer.momentum = 0.0
        model(np.asarray(images, np.float32), training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def predict_boxes(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The detector's raw output for a batch: ``(N, B, 4 + 10)`` float32 (boxes, class logits)."""
    return np.asarray(model.predict(np.asarray(images, np.float32), batch_size=batch_size,
                                    verbose=0), np.float32)


def top_detections(outputs: np.ndarray, score_threshold: float = 0.5,
                   iou_threshold: float = 0.3) -> list[list[tuple[np.ndarray, int, float, int]]]:
    """The detections of each image after non-maximum suppression (for drawing and counting).

    Parameters
    ----------
    outputs : (N, B, 4 + K) — the detector's output (boxes, class logits)
    score_threshold : keep boxes whose best class probability ``sigmoid(logit)`` is at least this
    iou_threshold : drop a box that overlaps a better-scoring kept box by more than this IoU

    Returns
    -------
    One list per image, best first, of ``(box (4,) float, class, probability, box index b)``.
    """
    from ...engine.targets import box_iou

    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim != 3 or outputs.shape[-1] < 5:
        raise ValueError(f"outputs must be a detector's (N, B, 4 + classes); got {outputs.shape}")
    result = []
    for out in outputs:
        logits = out[:, 4:]
        classes = logits.argmax(axis=1)
        probs = 1 / (1 + np.exp(-logits[np.arange(len(out)), classes]))
        kept: list = []
        for b in np.argsort(-probs, kind="stable"):
            if probs[b] < score_threshold:
                break
            if all(box_iou(out[b, :4], k[0]) <= iou_threshold for k in kept):
                kept.append((out[b, :4].astype(np.float32), int(classes[b]), float(probs[b]), int(b)))
        result.append(kept)
    return result
