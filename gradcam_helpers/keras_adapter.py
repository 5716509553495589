"""Keras 3 adapter (TensorFlow backend): find the target layer, capture activations and gradients.

How it works, and why this way: during one call the adapter wraps the ``call`` of the target layer
(and of the final layer, to read the score before softmax) on that layer *instance*, and removes
the wrappers before returning, also when the call raises. This works the same on Functional,
Sequential (built with or without ``Input``), nested and subclassed models — there is no need to
cut the graph with ``Model(model.inputs, [layer.output, ...])``, which fails on Sequential models
(``.output`` is undefined until called symbolically) and on nested bases ("not connected").

The tape watches only the target layer's output, and ``watch_accessed_variables=False``: the layers
below the target are run but not recorded, and no gradient with respect to any weight is computed.
The backward pass runs from the score down to the target layer only.

TensorFlow and Keras are imported lazily, inside the functions that need them.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from ._common import (Capture, LayerCall, check_batch, describe_candidates, guided_backprop_message,
                      resolve_targets)

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def is_keras_model(model: Any) -> bool:
    """True for a Keras 3 model or layer, without importing Keras when it is not loaded."""
    import sys

    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.layers.Layer)


def _sublayers(layer) -> list:
    return list(getattr(layer, "layers", []) or [])


def iter_layers(model) -> Iterator[tuple[str, Any]]:
    """Every layer inside ``model``, nested models included, as (path, layer); paths use '/'."""
    def walk(layer, prefix):
        for sub in _sublayers(layer):
            path = f"{prefix}{sub.name}"
            yield path, sub
            yield from walk(sub, path + "/")
    yield from walk(model, "")


def _is_leaf(layer) -> bool:
    return not _sublayers(layer)


def _is_pooling(layer) -> bool:
    return "Pooling" in type(layer).__name__


def _activation_name(layer) -> str:
    if type(layer).__name__ == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "") if fn is not None else ""


@contextlib.contextmanager
def _wrapped_calls(wrappers: dict) -> Iterator[None]:
    """Temporarily replace ``layer.call`` on each instance by ``make(original)``; always undone."""
    done = []
    try:
        for layer, make in wrappers.items():
            had_own = "call" in layer.__dict__
            original = layer.call
            object.__setattr__(layer, "call", make(original))
            done.append((layer, had_own, original))
        yield
    finally:
        for layer, had_own, original in reversed(done):
            if had_own:
                object.__setattr__(layer, "call", original)
            else:
                object.__delattr__(layer, "call")


class KerasAdapter:
    """Captures what the CAM methods need from a Keras 3 model (TensorFlow backend).

    Parameters
    ----------
    model : keras.Model — Functional, Sequential, a Functional base nested in another model, or a
        subclassed model. Never modified (wrappers are set on layer instances only during a call).
    layer : str, keras.layers.Layer or None — the target layer: its name (searched inside nested
        models too; "outer/inner" paths work), the layer object, or None to take the last layer
        with a 4-D output that is not a pooling layer.
    score_fn : callable or None — maps the model's output tensor to class scores. By default the
        pre-activation of a final softmax/sigmoid is used (the logits).
    """

    framework = "keras"
    channels_axis = -1

    def __init__(self, model, layer=None, score_fn: Callable | None = None):
        import keras

        if keras.config.backend() != "tensorflow":
            raise NotImplementedError(
                f"the Keras adapter supports the TensorFlow backend; this Keras runs on "
                f"'{keras.config.backend()}'. Set KERAS_BACKEND=tensorflow before importing keras, "
                "or, for a torch backend, pass the underlying torch model to explain().")
        self.model = model
        self.score_fn = score_fn
        self._requested_layer = layer
        self._calls: list[LayerCall] | None = None
        self._layers_by_name: dict[str, Any] = {}
        self.layer = None
        self.layer_name = ""
        self._final = None  # (layer, kind) where kind is "dense" or "input" — how to read logits
        self.num_classes = 0
        self._compile = True  # set to False when a model cannot be traced
        self._traced_ok = False
        self._compiled: dict[Any, Any] = {}

    # -------------------------------------------------------------------- model inspection

    def _expected_channels(self) -> int | None:
        try:
            shape = self.model.inputs[0].shape
            return int(shape[-1]) if shape[-1] is not None else None
        except (AttributeError, IndexError, TypeError, ValueError):
            return None

    def validate(self, images) -> np.ndarray:
        x = np.asarray(images)
        if x.dtype == np.uint8:
            raise ValueError("images are uint8 (0–255): convert them the way the model was trained, "
                             "e.g. x.astype('float32') / 255.0")
        check_batch(x, -1, self._expected_channels(), "Keras")
        return x.astype(np.float32, copy=False)

    @staticmethod
    def spatial_size(x: np.ndarray) -> tuple[int, int]:
        return int(x.shape[1]), int(x.shape[2])

    @staticmethod
    def to_channels_last(x: np.ndarray) -> np.ndarray:
        return x

    @staticmethod
    def from_channels_last(x: np.ndarray) -> np.ndarray:
        return x

    def _dry_run(self, x: np.ndarray) -> None:
        """Call the model once on one image and record every leaf layer's call, in finishing order."""
        layers = {id(layer): (path, layer) for path, layer in iter_layers(self.model) if _is_leaf(layer)}
        if not layers:  # a model without sub-layers: nothing to look inside
            layers = {}
        record: dict[int, list] = {}
        order: list[int] = []

        def make(key):
            def wrap(original):
                def call(*args, **kwargs):
                    out = original(*args, **kwargs)
                    shape = tuple(out.shape) if hasattr(out, "shape") else None
                    if key in record:
                        record[key][0] += 1
                        record[key][1] = shape
                        order.remove(key)
                    else:
                        record[key] = [1, shape]
                    order.append(key)
                    return out
                return call
            return wrap

        with _wrapped_calls({layer: make(key) for key, (_, layer) in layers.items()}):
            out = self.model(x[:1], training=False)
        if self.score_fn is not None:
            out = self.score_fn(out)
        if isinstance(out, (list, tuple, dict)):
            raise ValueError("the model has several outputs: pass score_fn=lambda outputs: outputs[i]")
        if len(out.shape) != 2:
            raise ValueError(f"class scores must be (N, classes); the model gives {tuple(out.shape)}. "
                             "Pass score_fn=... to turn the output into class scores")
        self.num_classes = int(out.shape[-1])
        self._calls = []
        self._call_layers = []
        for key in order:
            path, layer = layers[key]
            calls, shape = record[key]
            self._calls.append(LayerCall(path, type(layer).__name__, shape, _is_pooling(layer), calls))
            self._call_layers.append(layer)
        self._layers_by_name = {path: layer for path, layer in iter_layers(self.model)}

    def _find_layer(self, wanted):
        if wanted is None:
            for call, layer in zip(reversed(self._calls), reversed(self._call_layers)):
                if call.output_shape is not None and len(call.output_shape) == 4 and not call.is_pooling:
                    return call.name, layer
            raise ValueError("no layer with a spatial (4-D) output was found: CAM methods need a "
                             "convolutional feature map. Layers seen: "
                             + ", ".join(c.name for c in self._calls))
        import keras

        if isinstance(wanted, keras.layers.Layer):
            for path, layer in self._layers_by_name.items():
                if layer is wanted:
                    return path, layer
            raise ValueError(f"layer {wanted.name!r} is not part of this model. Candidates: "
                             + describe_candidates(self._calls))
        if isinstance(wanted, str):
            if wanted in self._layers_by_name:
                return wanted, self._layers_by_name[wanted]
            short = [(p, l) for p, l in self._layers_by_name.items() if p.split("/")[-1] == wanted]
            if len(short) == 1:
                return short[0]
            if len(short) > 1:
                raise ValueError(f"several layers are named {wanted!r}: "
                                 + ", ".join(p for p, _ in short) + "; pass the full 'outer/inner' path")
            raise ValueError(f"no layer named {wanted!r} in this model. Layers with a spatial output "
                             f"(candidates): {describe_candidates(self._calls)}")
        raise TypeError(f"layer must be a name, a keras layer or None; got {type(wanted).__name__}")

    def _ensure_ready(self, x: np.ndarray) -> None:
        if self._calls is not None:
            return
        self._dry_run(x)
        self.layer_name, self.layer = self._find_layer(self._requested_layer)
        call = next((c for c in self._calls if c.name == self.layer_name), None)
        if call is None:
            raise ValueError(f"layer {self.layer_name!r} is not used when the model runs. Candidates: "
                             + describe_candidates(self._calls))
        if call.output_shape is None or len(call.output_shape) != 4:
            raise ValueError(f"layer {self.layer_name!r} has output shape {call.output_shape}, not a "
                             "spatial (N, h, w, channels) feature map; pick a convolutional layer. "
                             f"Candidates: {describe_candidates(self._calls)}")
        if call.calls > 1:
            raise ValueError(f"layer {self.layer_name!r} runs {call.calls} times in one forward pass "
                             "(a shared layer); pick a layer that runs once")
        if self.score_fn is None:
            last = self._call_layers[-1]
            activation = _activation_name(last)
            if type(last).__name__ in ("Softmax", "Activation") and activation in _PROBABILITY_ACTIVATIONS:
                self._final = (last, "input")
            elif activation in _PROBABILITY_ACTIVATIONS and type(last).__name__ == "Dense":
                self._final = (last, "dense")
            elif activation in _PROBABILITY_ACTIVATIONS:
                raise ValueError(f"the model ends in a {type(last).__name__} layer with {activation}; "
                                 "the adapter can only read the score before it on Dense layers. Pass "
                                 "score_fn=..., or end the model with a separate Activation layer")

    # -------------------------------------------------------------------- capture

    def capture(self, images: np.ndarray, target, gradients: bool) -> Capture:
        """One forward pass (and, if ``gradients``, one backward pass down to the target layer).

        The pass runs as a compiled ``tf.function`` (traced once per Explainer and input shape;
        eager Keras spends most of its time dispatching layer by layer), falling back to eager
        execution for models that cannot be traced.
        """
        import tensorflow as tf

        self._ensure_ready(images)
        n = len(images)
        use_top = target is None
        targets = np.zeros(n, np.int64) if use_top else resolve_targets(
            target, np.zeros((n, self.num_classes), np.float32))
        args = (tf.convert_to_tensor(images), tf.convert_to_tensor(targets), tf.constant(use_top))
        acts = grads = logits = used = None
        if self._compile:
            fn = self._compiled.get(gradients)
            if fn is None:
                fn = self._compiled[gradients] = tf.function(
                    lambda x, t, top: self._run(x, t, top, gradients), reduce_retracing=True)
            try:
                acts, grads, logits, used = fn(*args)
                self._traced_ok = True
            except Exception as error:
                self._give_up_compiling(error)
        if acts is None:
            acts, grads, logits, used = self._run(*args, gradients)
        if gradients and grads is None:
            raise RuntimeError(f"the score does not depend on layer {self.layer_name!r}; pick a layer "
                               "on the path from the input to the output")
        return Capture(np.asarray(acts, dtype=np.float32),
                       np.asarray(grads, dtype=np.float32) if gradients else None,
                       np.asarray(logits, dtype=np.float32), np.asarray(used, dtype=np.int64))

    def _give_up_compiling(self, error: Exception) -> None:
        """A model that cannot be traced (Python control flow on tensor values, …) runs eagerly.

        Only a failure before the compiled function has ever worked means that; later errors
        (out of memory, a bad input) are the user's to see, and are raised unchanged.
        """
        if self._traced_ok:
            raise error
        import warnings

        self._compile = False
        warnings.warn(f"this model could not be compiled with tf.function ({type(error).__name__}); "
                      "explaining it eagerly, which is slower but gives the same maps", stacklevel=3)

    def _run(self, x, targets, use_top, gradients: bool):
        """The capture itself, written so that it runs eagerly and inside a tf.function alike."""
        import tensorflow as tf

        store: dict[str, Any] = {}
        tape = tf.GradientTape(watch_accessed_variables=False, persistent=False)

        def wrap_target(original):
            def call(*args, **kwargs):
                out = original(*args, **kwargs)
                if gradients:
                    tape.watch(out)
                store["activations"] = out
                return out
            return call

        def wrap_final(original):
            def call(inputs, *args, **kwargs):
                store["final_input"] = inputs
                return original(inputs, *args, **kwargs)
            return call

        wrappers = {self.layer: wrap_target}
        if self._final is not None:
            wrappers[self._final[0]] = wrap_final
        with _wrapped_calls(wrappers), tape:
            outputs = self.model(x, training=False)
            logits = self._logits(outputs, store)
            chosen = tf.where(use_top, tf.argmax(logits, axis=1, output_type=tf.int64), targets)
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        activations = store["activations"]
        grads = tape.gradient(score, activations) if gradients else tf.zeros((0,))
        return activations, grads, logits, chosen

    def _logits(self, outputs, store):
        import tensorflow as tf

        if self.score_fn is not None:
            logits = self.score_fn(outputs)
        elif self._final is None:
            logits = outputs
        elif self._final[1] == "input":
            logits = store["final_input"]
        else:
            dense = self._final[0]
            logits = tf.matmul(store["final_input"], dense.kernel)
            if dense.bias is not None:
                logits = logits + dense.bias
        if isinstance(logits, (list, tuple)):
            raise ValueError("the model has several outputs: pass score_fn=lambda outputs: outputs[i]")
        if len(logits.shape) != 2:
            raise ValueError(f"class scores must be (N, classes); the model gives {tuple(logits.shape)}. "
                             "Pass score_fn=... to turn the output into class scores")
        return tf.convert_to_tensor(logits)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Class scores before softmax for a batch (no gradients) — used by Score-CAM."""
        import tensorflow as tf

        self._ensure_ready(images)
        x = tf.convert_to_tensor(images)
        if self._compile:
            fn = self._compiled.get("logits")
            if fn is None:
                fn = self._compiled["logits"] = tf.function(self._run_logits, reduce_retracing=True)
            try:
                return np.asarray(fn(x), dtype=np.float32)
            except Exception as error:
                self._give_up_compiling(error)
        return np.asarray(self._run_logits(x), dtype=np.float32)

    def _run_logits(self, x):
        store: dict[str, Any] = {}

        def wrap_final(original):
            def call(inputs, *args, **kwargs):
                store["final_input"] = inputs
                return original(inputs, *args, **kwargs)
            return call

        wrappers = {self._final[0]: wrap_final} if self._final is not None else {}
        with _wrapped_calls(wrappers):
            return self._logits(self.model(x, training=False), store)

    def cam_class_weights(self) -> np.ndarray:
        """The Dense kernel (K, classes) that follows global average pooling after the target layer.

        Raises ValueError, saying why and pointing to Grad-CAM, when the model does not have the
        CAM structure  target layer → GlobalAveragePooling2D → Dense.
        """
        names = [c.name for c in self._calls]
        after = self._call_layers[names.index(self.layer_name) + 1:]
        kinds = [type(l).__name__ for l in after]
        ignorable = {"Dropout", "Flatten", "Identity"}
        core = [l for l in after if type(l).__name__ not in ignorable]
        if self._final is not None and self._final[1] == "input":
            core = core[:-1]  # the separate softmax layer
        if (len(core) == 2 and type(core[0]).__name__ in ("GlobalAveragePooling2D", "GlobalAvgPool2D")
                and type(core[1]).__name__ == "Dense"):
            return np.asarray(core[1].kernel, dtype=np.float32)
        raise ValueError(
            "CAM needs the architecture  feature maps → GlobalAveragePooling2D → one Dense layer, "
            f"because its weights are that Dense layer's kernel. After {self.layer_name!r} this model "
            f"has: {' → '.join(kinds) or 'nothing'}. Use method='gradcam' instead: Grad-CAM works on "
            "any architecture and gives the same map as CAM on GAP networks.")

    # -------------------------------------------------------------------- input gradients

    def input_gradients(self, x: np.ndarray, target, guided: bool = False):
        """d score / d input for pixel attributions (see :mod:`gradcam_helpers.attributions`).

        Parameters
        ----------
        x : (M, H, W, C) float array
        target : None, an int or (M,) class indices
        guided : apply Guided Backprop's rule to every ReLU (a ``ReLU`` layer, an ``Activation``
            or any layer with ``activation="relu"``/``"relu6"``) during this call; the wrappers
            are undone before returning, also on error

        Returns
        -------
        (gradients (M, H, W, C) float32, logits (M, classes) float32, targets (M,) int64)
        """
        import tensorflow as tf

        x = np.asarray(x, np.float32)
        self._ensure_ready(x)
        relus = [layer for _, layer in iter_layers(self.model) if _is_leaf(layer) and _is_relu(layer)]
        if guided and not relus:
            raise ValueError(guided_backprop_message("layer"))
        n = len(x)
        use_top = target is None
        targets = np.zeros(n, np.int64) if use_top else resolve_targets(
            target, np.zeros((n, self.num_classes), np.float32))
        args = (tf.convert_to_tensor(x), tf.convert_to_tensor(targets), tf.constant(use_top))
        relus = relus if guided else []
        result = None
        if self._compile:
            fn = self._compiled.get(("input", guided))
            if fn is None:
                fn = self._compiled[("input", guided)] = tf.function(
                    lambda a, t, top: self._run_input_gradients(a, t, top, relus),
                    reduce_retracing=True)
            try:
                result = fn(*args)
                self._traced_ok = True
            except Exception as error:
                self._give_up_compiling(error)
        if result is None:
            result = self._run_input_gradients(*args, relus)
        grads, logits, used = result
        if grads is None:
            raise RuntimeError("the class score does not depend on the input")
        return (np.asarray(grads, np.float32), np.asarray(logits, np.float32),
                np.asarray(used, np.int64))

    def _run_input_gradients(self, x, targets, use_top, relus):
        import tensorflow as tf

        store: dict[str, Any] = {}

        def wrap_final(original):
            def call(inputs, *args, **kwargs):
                store["final_input"] = inputs
                return original(inputs, *args, **kwargs)
            return call

        @tf.custom_gradient
        def guided_identity(y):
            return tf.identity(y), lambda dy: tf.nn.relu(dy)

        def wrap_guided(original):
            def call(*args, **kwargs):
                return guided_identity(original(*args, **kwargs))
            return call

        wrappers = {layer: wrap_guided for layer in relus}
        if self._final is not None:
            wrappers[self._final[0]] = wrap_final
        with _wrapped_calls(wrappers), tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            logits = self._logits(self.model(x, training=False), store)
            chosen = tf.where(use_top, tf.argmax(logits, axis=1, output_type=tf.int64), targets)
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        return tape.gradient(score, x), logits, chosen


def _is_relu(layer) -> bool:
    """A layer whose output is a ReLU (or ReLU6) of something: where Guided Backprop's rule goes."""
    kind = type(layer).__name__
    if kind == "ReLU":
        return float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
    return _activation_name(layer) in ("relu", "relu6")
