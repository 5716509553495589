"""A small GAP CNN trained on localisation canvases, for lesson 04's pointing-game checks.

Lesson 04 asks whether the Grad-CAM map for a class lands on the digit of that class, on 64×64
canvases with one or two real MNIST digits (:func:`gradcam_helpers.course.mnist.make_localization_set`,
:func:`~gradcam_helpers.course.mnist.make_two_digit_set`). A CNN trained on centred 28×28 digits has never
seen a digit surrounded by blank space, nor two digits at once; this one has::

    image (None, None, 1)
      → conv1 Conv2D(16, 3×3) → bn1 BatchNormalization → relu1 ReLU → pool1 MaxPooling2D(2)
      → conv2 Conv2D(32, 3×3) → bn2 → relu2 → pool2 MaxPooling2D(2)
      → conv3 Conv2D(64, 3×3) → bn3 → relu3
      → conv4 Conv2D(64, 3×3) → bn4 → relu4
      → gap GlobalAveragePooling2D → predictions Dense(10, softmax)

All convolutions use padding "same" (and no bias: the batch normalisation that follows has one), so
any input size works. ``relu4`` (the layer the lesson explains, :data:`TARGET_LAYER`) has a 26-pixel
receptive field — about one digit — at a quarter of the input resolution. Batch normalisation makes
the few epochs that a laptop CPU can afford enough: without it the same network, trained as long,
puts the map of one digit's class on the other digit several times as often (in our runs about
7 % of the maps instead of 1–2 %).

Training data are made fresh each epoch from the **training** digits only (the lessons evaluate on
canvases built from the test digits): ``one_digit`` canvases with one digit (its label) and
``two_digit`` canvases with two digits of different classes (target 0.5 for each class), each
``canvas`` × ``canvas`` pixels. Training on 48-pixel canvases is cheaper than on 64-pixel ones and,
because the network is fully convolutional, carries over to 64-pixel canvases.

:func:`get_localization_cnn` returns the model from the cache (:mod:`gradcam_helpers.course.cache`) or
trains it deterministically (seeded) and caches it; the file name carries ``config_key(config)``
with every training setting, a fingerprint of the training digits and :data:`VERSION`. Writes are
atomic, so two kernels training at once leave one complete file.

TensorFlow/Keras are imported inside the functions: importing this module is cheap.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..cache import cache_path, fingerprint
from .keras_mnist import TrainedModel, load_or_train_keras

#: Bump when the builder or the trainer changes, so that old cached files are not used any more.
VERSION = 1

#: The layer lesson 04 explains: the output of the last convolution block (after BN and ReLU).
TARGET_LAYER = "relu4"

NUM_CLASSES = 10


#: What :func:`get_localization_cnn` returns (the same record as the MNIST models'): ``model``
#: (input ``(None, None, 1)`` float in [0, 1], output (N, 10) softmax, compiled), ``history``
#: (per epoch: ``loss`` on that epoch's canvases, ``accuracy`` on the one-digit ones, ``seconds``),
#: ``config``, ``path`` and ``from_cache``.
LocalizationModel = TrainedModel


def build_localization_cnn(num_classes: int = NUM_CLASSES):
    """The canvas CNN (see the module docstring). Not compiled.

    Returns
    -------
    keras.Model
        Named ``"localization_cnn"``, with layers ``image, conv1, bn1, relu1, pool1, conv2, bn2,
        relu2, pool2, conv3, bn3, relu3, conv4, bn4, relu4, gap, predictions``; input
        ``(None, None, 1)``.
    """
    import keras
    from keras import layers

    def block(x, filters: int, index: int):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = layers.BatchNormalization(name=f"bn{index}")(x)
        return layers.ReLU(name=f"relu{index}")(x)

    inputs = keras.Input(shape=(None, None, 1), name="image")
    x = block(inputs, 16, 1)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = block(x, 32, 2)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = block(x, 64, 3)
    x = block(x, 64, 4)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="localization_cnn")


def get_localization_cnn(data=None, *, epochs: int = 5, one_digit: int = 12_000,
                         two_digit: int = 6_000, canvas: int = 48, batch_size: int = 64,
                         learning_rate: float = 2e-3, seed: int = 0, retrain: bool = False,
                         verbose: bool = True) -> LocalizationModel:
    """The canvas CNN trained on localisation canvases: from the cache, or trained and cached.

    Parameters
    ----------
    data : MnistData, optional
        As returned by :func:`gradcam_helpers.course.mnist.load_mnist`; ``None`` calls ``load_mnist()``.
        Only ``x_train`` / ``y_train`` are used.
    epochs : int
        Passes; each one uses freshly generated canvases.
    one_digit, two_digit : int
        Canvases per epoch with one digit (target: its class) and with two digits of different
        classes (target: 0.5 for each class). At least one must be positive.
    canvas : int
        Side of the training canvases in pixels (>= 28).
    batch_size, learning_rate : Adam settings.
    seed : int
        Seeds Keras (weights), the canvases and the shuffling.
    retrain : bool
        Train again even if a cached model exists (the new file replaces it).
    verbose : bool
        One line per epoch while training, or one line saying where the model was loaded from.

    Returns
    -------
    LocalizationModel
    """
    import keras

    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}")
    if one_digit < 0 or two_digit < 0 or one_digit + two_digit == 0:
        raise ValueError("one_digit and two_digit are canvas counts >= 0, and at least one must be "
                         f"positive; got one_digit={one_digit}, two_digit={two_digit}")
    if canvas < 28:
        raise ValueError(f"canvas must be at least 28 pixels (an MNIST digit); got {canvas}")
    if data is None:
        from ..mnist import load_mnist

        data = load_mnist()
    x, y = _training_digits(data)
    config = {"model": "localization_cnn", "version": VERSION, "epochs": int(epochs),
              "one_digit": int(one_digit), "two_digit": int(two_digit), "canvas": int(canvas),
              "batch_size": int(batch_size), "learning_rate": float(learning_rate),
              "seed": int(seed), "keras": keras.__version__.split(".")[0],
              "data": {"source": getattr(data, "source", "custom"), "n": len(x),
                       "fingerprint": fingerprint(x, y)}}
    model_path, _ = cache_paths(config)

    def train():
        keras.utils.set_random_seed(config["seed"])
        model = build_localization_cnn()
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]),
                      loss="categorical_crossentropy")
        if verbose:
            print(f"学習します / training {model.name}: {one_digit:,} + {two_digit:,} canvases of "
                  f"{canvas}×{canvas} per epoch from {len(x):,} training digits "
                  f"({config['data']['source']}), {epochs} epochs", flush=True)
        return model, _train(model, config, x, y, verbose)

    return load_or_train_keras(model_path, config, train, retrain, verbose)


def cache_paths(config: dict) -> tuple[Path, Path]:
    """The ``.keras`` model file and ``.json`` history file for a full config; the key also holds
    the thread count (:func:`gradcam_helpers.course.cache.cache_path`)."""
    model = cache_path(f"{config['model']}-v{config['version']}", config, ".keras", framework="keras")
    return model, model.with_suffix(".json")


# ---------------------------------------------------------------------------------------------
# internals


def _training_digits(data) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(getattr(data, "x_train", None), dtype=np.float32)
    y = np.asarray(getattr(data, "y_train", None))
    if x.ndim != 4 or x.shape[1:] != (28, 28, 1) or y.shape != (len(x),):
        raise ValueError(f"expected MnistData with x_train (N, 28, 28, 1) and N labels; got "
                         f"{x.shape} and {y.shape}. Use gradcam_helpers.course.mnist.load_mnist().")
    return x, y.astype(np.int64)


def make_canvases(x: np.ndarray, y: np.ndarray, one_digit: int, two_digit: int, canvas: int,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of training canvases.

    Returns
    -------
    images : (one_digit + two_digit, canvas, canvas, 1) float32 in [0, 1]
    targets : (n, 10) float32 — one-hot for one digit, 0.5 / 0.5 for two digits
    single : (n,) bool — True for the one-digit canvases
    """
    from ..mnist import make_localization_set, make_two_digit_set

    eye = np.eye(NUM_CLASSES, dtype=np.float32)
    images, targets, single = [], [], []
    if one_digit:
        one = make_localization_set(x, y, one_digit, canvas=canvas, seed=seed)
        images.append(one.images)
        targets.append(eye[one.labels])
        single.append(np.ones(one_digit, bool))
    if two_digit:
        two = make_two_digit_set(x, y, two_digit, canvas=canvas, seed=seed + 1)
        images.append(two.images)
        targets.append(0.5 * eye[two.labels[:, 0]] + 0.5 * eye[two.labels[:, 1]])
        single.append(np.zeros(two_digit, bool))
    return np.concatenate(images), np.concatenate(targets), np.concatenate(single)


def _train(model, config: dict, x: np.ndarray, y: np.ndarray, verbose: bool) -> dict:
    """Epoch loop: fresh canvases, seeded shuffling, one short line per epoch."""
    rng = np.random.default_rng(config["seed"] + 1)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "seconds": []}
    for epoch in range(config["epochs"]):
        start = time.perf_counter()
        images, targets, single = make_canvases(
            x, y, config["one_digit"], config["two_digit"], config["canvas"],
            seed=config["seed"] * 1000 + 2 * epoch)
        order = rng.permutation(len(images))
        fit = model.fit(images[order], targets[order], batch_size=config["batch_size"], epochs=1,
                        shuffle=False, verbose=0)
        accuracy = float("nan")
        if single.any():  # a quick check on (at most 2,000 of) this epoch's one-digit canvases
            seen = np.flatnonzero(single)[:2000]
            top = np.argmax(model.predict(images[seen], batch_size=256, verbose=0), axis=1)
            accuracy = float(np.mean(targets[seen, top] > 0))
        history["loss"].append(float(fit.history["loss"][-1]))
        history["accuracy"].append(accuracy)
        history["seconds"].append(time.perf_counter() - start)
        if verbose:
            print(f"epoch {epoch + 1}/{config['epochs']} | loss {history['loss'][-1]:.3f} | "
                  f"acc (one digit) {accuracy:.3f} | {history['seconds'][-1]:.1f} s", flush=True)
    return history
