"""Lesson 13's tiny Vision Transformer (Keras 3), and its cached trainer on the MNIST canvases.

The architecture (``build_tiny_vit``), a ViT in miniature (Dosovitskiy et al., ICLR 2021)::

    image (S, S, 1) → [stem Conv2D(F, 3×3, ReLU)] → patch_embed Conv2D(D, p×p, stride p)
                                                                   → (N, S/p, S/p, D)
      → patch_tokens Reshape((S/p)², D)                            → (N, P, D)
      → class_token AddClassToken (a learnt CLS token in front, learnt positions added) → (N, 1 + P, D)
      → block{b}_norm1 LayerNormalization → block{b}_attn MultiHeadAttention(heads) → block{b}_add1
        → block{b}_norm2 → block{b}_mlp1 Dense(2D, gelu) → block{b}_mlp2 Dense(D) → block{b}_add2
        (b = 0 … depth − 1, pre-norm blocks with residual connections)
      → norm LayerNormalization → take_class TakeClassToken → (N, D) → logits Dense(10)

The model returns logits (no softmax). Its PyTorch twin with the same weights is
:mod:`.torch_vit`. ``get_tiny_vit()`` trains it on one-digit canvases
(:func:`gradcam_helpers.course.mnist.make_localization_set`) — under a minute on two CPU threads —
or loads it from the cache (:mod:`gradcam_helpers.course.cache`).

Keras is imported inside the functions; the two small custom layers are made (and registered for
``.keras`` files) on first use.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .keras_mnist import TrainedModel, fit_epochs, load_or_train_keras, new_history

#: Bump when the builder or the trainer changes so that old cached files are not used any more.
VIT_VERSION = 1

NUM_CLASSES = 10

_LAYERS: dict[str, Any] = {}


def custom_layers() -> dict[str, Any]:
    """The two custom layers of the tiny ViT, ``{"AddClassToken": ..., "TakeClassToken": ...}``,
    registered with Keras (so ``.keras`` files load) on the first call."""
    if _LAYERS:
        return _LAYERS
    import keras

    @keras.saving.register_keras_serializable(package="gradcam_helpers")
    class AddClassToken(keras.layers.Layer):
        """(N, P, D) patch tokens → (N, 1 + P, D): a learnt class token in front, then learnt
        position embeddings added to every token."""

        def build(self, input_shape):
            tokens, dim = int(input_shape[1]), int(input_shape[2])
            init = keras.initializers.TruncatedNormal(stddev=0.02)
            self.cls = self.add_weight(shape=(1, 1, dim), initializer=init, name="cls")
            self.pos = self.add_weight(shape=(1, tokens + 1, dim), initializer=init, name="pos")

        def call(self, x):
            from keras import ops

            cls = ops.broadcast_to(self.cls, (ops.shape(x)[0], 1, ops.shape(x)[2]))
            return ops.concatenate([cls, x], axis=1) + self.pos

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[1] + 1, input_shape[2])

    @keras.saving.register_keras_serializable(package="gradcam_helpers")
    class TakeClassToken(keras.layers.Layer):
        """(N, T, D) → (N, D): the class token (position 0)."""

        def call(self, x):
            return x[:, 0]

        def compute_output_shape(self, input_shape):
            return (input_shape[0], input_shape[2])

    _LAYERS.update(AddClassToken=AddClassToken, TakeClassToken=TakeClassToken)
    return _LAYERS


def build_tiny_vit(image_size: int = 48, patch: int = 6, dim: int = 48, depth: int = 2,
                   heads: int = 3, stem: int = 0, channels: int = 1, num_classes: int = NUM_CLASSES):
    """The tiny ViT (see the module docstring); returns an uncompiled ``keras.Model``.

    Parameters
    ----------
    image_size : S, the side of the square input (a multiple of ``patch``)
    patch : p, the patch side: S/p × S/p patches, one token each
    dim : D, the token width (a multiple of ``heads``)
    depth : the number of transformer blocks
    heads : attention heads per block
    stem : 0 (a pure ViT: the patches are embedded by one linear map), or the filters of one 3×3
        ReLU convolution ``stem`` before the patch embedding (a small "hybrid" ViT, as in
        Dosovitskiy et al.: local features make it learn from few images much faster)
    channels, num_classes : input channels, classes
    """
    import keras
    from keras import layers

    if image_size % patch or dim % heads:
        raise ValueError(f"image_size ({image_size}) must be a multiple of patch ({patch}) and dim "
                         f"({dim}) a multiple of heads ({heads})")
    custom = custom_layers()
    side = image_size // patch
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = inputs
    if stem:
        x = layers.Conv2D(stem, 3, padding="same", activation="relu", name="stem")(x)
    x = layers.Conv2D(dim, patch, strides=patch, name="patch_embed")(x)
    x = layers.Reshape((side * side, dim), name="patch_tokens")(x)
    x = custom["AddClassToken"](name="class_token")(x)
    for b in range(depth):
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm1")(x)
        y = layers.MultiHeadAttention(heads, dim // heads, name=f"block{b}_attn")(y, y)
        x = layers.Add(name=f"block{b}_add1")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_norm2")(x)
        y = layers.Dense(2 * dim, activation="gelu", name=f"block{b}_mlp1")(y)
        y = layers.Dense(dim, name=f"block{b}_mlp2")(y)
        x = layers.Add(name=f"block{b}_add2")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    x = custom["TakeClassToken"](name="take_class")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_vit")


def architecture(config: dict) -> dict:
    """The keyword arguments of :func:`build_tiny_vit` held in a trainer's ``config``."""
    return {k: config[k] for k in ("image_size", "patch", "dim", "depth", "heads", "stem")}


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])


def get_tiny_vit(data=None, *, image_size: int = 40, patch: int = 5, dim: int = 32, depth: int = 2,
                 heads: int = 2, stem: int = 16, train_canvases: int = 4000,
                 val_canvases: int = 500, epochs: int = 10, batch_size: int = 64,
                 learning_rate: float = 3e-3,
                 seed: int = 0, retrain: bool = False, verbose: bool = True) -> TrainedModel:
    """The lesson 13 ViT trained on one-digit canvases: from the cache, or trained and cached.

    Training canvases are made from the training digits (fresh positions every epoch), validation
    canvases from the test digits, by :func:`~gradcam_helpers.course.mnist.make_localization_set`.

    Parameters
    ----------
    data : MnistData or None (``load_mnist()``: offline, the full set if Keras has it cached)
    image_size, patch, dim, depth, heads, stem : the architecture (:func:`build_tiny_vit`): by
        default 40 × 40 canvases cut into 8 × 8 patches of 5 px, 32-wide tokens, 2 blocks of 2
        heads, a 16-filter convolution stem
    train_canvases, val_canvases : canvases per training epoch / for validation
    epochs, batch_size, learning_rate : training (AdamW, weight decay 0.01; the rate warms up
        linearly over the first tenth of the steps, then decays as a cosine)
    seed : seeds Keras and NumPy
    retrain : train again even if a cached model exists
    verbose : one line per epoch, or where the model was loaded from

    Returns
    -------
    TrainedModel — ``history`` has ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
    ``seconds`` per epoch.
    """
    import keras

    from ..cache import cache_path, fingerprint
    from ..mnist import load_mnist, make_localization_set

    if data is None:
        data = load_mnist()
    config = {"model": "tiny_vit", "version": VIT_VERSION, "image_size": int(image_size),
              "patch": int(patch), "dim": int(dim), "depth": int(depth), "heads": int(heads),
              "stem": int(stem),
              "train_canvases": int(train_canvases), "val_canvases": int(val_canvases),
              "epochs": int(epochs), "batch_size": int(batch_size),
              "learning_rate": float(learning_rate), "seed": int(seed),
              "data": {"source": getattr(data, "source", "custom"),
                       "fingerprint": fingerprint(data.x_train, data.y_train, data.x_test,
                                                  data.y_test)},
              "keras": keras.__version__.split(".")[0], "backend": keras.config.backend()}
    path = cache_path(f"tiny_vit-v{VIT_VERSION}", config, ".keras", framework="keras")

    def train():
        keras.utils.set_random_seed(config["seed"])
        model = build_tiny_vit(**architecture(config))
        steps = config["epochs"] * int(np.ceil(config["train_canvases"] / config["batch_size"]))
        warmup = steps // 10
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, steps - warmup, warmup_target=config["learning_rate"], warmup_steps=warmup)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        val = make_localization_set(data.x_test, data.y_test, config["val_canvases"],
                                    canvas=config["image_size"], seed=config["seed"] + 10_000)
        history = new_history()
        if verbose:
            print(f"学習します / training tiny_vit: {config['train_canvases']:,} canvases per epoch "
                  f"({config['data']['source']}), validation {config['val_canvases']:,}, "
                  f"{config['epochs']} epochs")

        def fit_epoch(epoch: int):
            fit = make_localization_set(data.x_train, data.y_train, config["train_canvases"],
                                        canvas=config["image_size"],
                                        seed=config["seed"] * 1000 + epoch)
            return model.fit(fit.images, fit.labels, batch_size=config["batch_size"], epochs=1,
                             shuffle=False, verbose=0), {}

        fit_epochs(model, config["epochs"], fit_epoch, val.images, val.labels, history, verbose)
        return model, history

    custom_layers()  # registered before a cached file is read
    trained = load_or_train_keras(path, config, train, retrain, verbose)
    _compile(trained.model, config["learning_rate"])
    return trained
