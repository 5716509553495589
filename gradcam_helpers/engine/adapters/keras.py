"""Keras 3 adapter: find the target layer, capture activations and gradients of the pre-softmax score.

How it works, and why this way: during one call the adapter wraps the ``call`` of the target layer
(and of the final layer, to read the score before softmax) on that layer *instance*, and removes
the wrappers before returning, also when the call raises. This works the same on Functional,
Sequential (built with or without ``Input``), nested and subclassed models — there is no need to
cut the graph with ``Model(model.inputs, [layer.output, ...])``, which fails on Sequential models
(``.output`` is undefined until called symbolically) and on nested bases ("not connected").

:class:`KerasAdapter` is backend-neutral: it finds layers (also inside nested models), wraps their
calls, reads the pre-softmax score, checks inputs, and runs the model through
:meth:`KerasAdapter._forward`, which lets a callback see — and replace — the target layer's output.
It uses ``keras.ops`` only. The one thing Keras has no backend-neutral API for, the gradient, comes
from one small *gradient piece* per Keras backend, behind the protocol
:class:`~.keras_gradients.GradientPiece`: :mod:`.keras_tensorflow`, :mod:`.keras_torch` and
:mod:`.keras_jax` are the only code that imports a backend. A new backend is one such module and
one entry in :data:`GRADIENT_PIECES`.

Keras and its backends are imported lazily, inside the functions that need them.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..maps import to_numpy
from ..targets import class_indices
from .base import (
    ATTENTION_KINDS,
    Adapter,
    CallRecorder,
    Capture,
    attention_message,
    check_batch,
    check_finite,
    describe_candidates,
    exposed_attention_weights,
    guided_backprop_message,
    single_input_message,
)
from .keras_gradients import GradientPiece
from .keras_jax import JaxGradients
from .keras_tensorflow import TensorFlowGradients
from .keras_torch import TorchGradients

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")
_IGNORABLE = ("Dropout", "Flatten", "Identity")
_GAP = ("GlobalAveragePooling2D", "GlobalAvgPool2D")


def is_keras_model(model: Any) -> bool:
    """True for a Keras 3 model or layer, without importing Keras when it is not loaded.

    Ask this before asking "is it torch?": under ``KERAS_BACKEND=torch`` a Keras layer is also a
    ``torch.nn.Module``.
    """
    import sys

    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.layers.Layer)


def _numpy(tensor: Any, dtype: Any) -> np.ndarray:
    """A tensor (or Keras variable) of any Keras backend, on any device, as a NumPy array."""
    return to_numpy(getattr(tensor, "value", tensor), dtype)  # a Keras variable → its backend value


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


#: Keras backend name → its gradient piece.
GRADIENT_PIECES: dict[str, Callable[[Any], GradientPiece]] = {"tensorflow": TensorFlowGradients,
                                                   "torch": TorchGradients, "jax": JaxGradients}


# ------------------------------------------------------------------------------------------------
# the backend-neutral adapter


class KerasAdapter(Adapter):
    """Captures what the CAM methods need from a Keras 3 model.

    Parameters
    ----------
    model : keras.Model — Functional, Sequential, a Functional base nested in another model, or a
        subclassed model. Never modified (wrappers are set on layer instances only during a call).
    layer : str, keras.layers.Layer or None — the target layer: its name (searched inside nested
        models too; "outer/inner" paths work), the layer object, or None to take the last layer
        with a 4-D output that is not a pooling layer.
    score_fn : callable or None — maps the model's output to class scores. By default the
        pre-activation of a final softmax/sigmoid is used (the logits).
    """

    framework = "keras"
    channels_axis = -1
    unit = "layer"
    cam_words = ("GlobalAveragePooling2D", "Dense layer")

    def __init__(self, model, layer=None, score_fn: Callable | None = None):
        import keras

        backend = keras.config.backend()
        if backend not in GRADIENT_PIECES:
            raise NotImplementedError(
                f"Keras runs on the '{backend}' backend; Grad-CAM needs gradients, which the helpers "
                f"take on {', '.join(GRADIENT_PIECES)}. Set KERAS_BACKEND to one of them before "
                "importing keras")
        super().__init__(model, layer, score_fn)
        self.backend = GRADIENT_PIECES[backend](model)
        self._layers_by_name: dict[str, Any] = {}
        self._compile = True  # set to False when a model cannot be compiled
        self._compiled_ok = False
        self._compiled: dict[Any, Callable] = {}

    # -------------------------------------------------------------------- the framework

    @staticmethod
    def accepts(model: Any) -> bool:
        """See :meth:`Adapter.accepts`: a Keras layer or model (:func:`is_keras_model`)."""
        return is_keras_model(model)

    @staticmethod
    def load_model(path: str | Path, build: Callable[[], Any] | None = None,
                   device: str | None = None) -> Any:
        """See :meth:`Adapter.load_model`: a ``.keras`` file (``build`` must be None: the file holds
        the network; ``device`` is Keras's own choice)."""
        import keras

        if build is not None:
            raise ValueError("a .keras file holds the whole model: load it without a build function")
        return keras.saving.load_model(path, compile=False)

    @staticmethod
    def thread_count() -> int:
        """See :meth:`Adapter.thread_count`: TensorFlow's intra-op threads (0 means its default,
        the number of cores)."""
        import tensorflow as tf

        return int(tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1)

    @staticmethod
    def from_channels_last(x: np.ndarray) -> np.ndarray:
        """See :meth:`Adapter.from_channels_last`: Keras models take (N, H, W, C) as it is."""
        return np.asarray(x, dtype=np.float32)

    def copy_model(self) -> Any:
        """See :meth:`Adapter.copy_model`: ``keras.models.clone_model`` and the model's weights."""
        import keras

        try:
            clone = keras.models.clone_model(self.model)
        except Exception as error:  # subclassed models without get_config, …
            raise TypeError(
                "the sanity check works on a copy of the model and keras.models.clone_model could not "
                f"copy this one ({type(error).__name__}: {error}). Use a Functional or Sequential model, "
                "or give the subclass a get_config()/from_config()") from error
        clone.set_weights(self.model.get_weights())
        return clone

    # -------------------------------------------------------------------- inputs

    def _model_inputs(self) -> list:
        try:
            return list(self.model.inputs or [])
        except Exception:  # noqa: BLE001 — a subclassed or unbuilt model has no symbolic inputs
            return []

    def _expected_channels(self) -> int | None:
        try:
            shape = self._model_inputs()[0].shape
            return int(shape[-1]) if shape[-1] is not None else None
        except (IndexError, TypeError, ValueError):
            return None

    def validate(self, images) -> np.ndarray:
        """(N, H, W, C) float32 NumPy array, checked; every error names the fix."""
        inputs = self._model_inputs()
        if len(inputs) > 1 or isinstance(images, dict):
            names = [getattr(t, "name", "?") for t in inputs]
            raise ValueError(single_input_message(len(inputs) if len(inputs) > 1 else "several", names))
        if isinstance(images, (list, tuple)) and len(images) and all(
                hasattr(a, "shape") and len(a.shape) == 4 for a in images):
            raise ValueError(single_input_message(len(images)))
        x = np.asarray(images)
        if x.dtype == np.uint8:
            raise ValueError("images are uint8 (0–255): convert them the way the model was trained, "
                             "e.g. x.astype('float32') / 255.0")
        check_batch(x, -1, self._expected_channels(), "Keras")
        x = x.astype(np.float32, copy=False)
        check_finite(bool(np.isfinite(x).all()), "Keras")
        return x

    @staticmethod
    def spatial_size(x: np.ndarray) -> tuple[int, int]:
        return int(x.shape[1]), int(x.shape[2])

    @staticmethod
    def to_channels_last(x: np.ndarray) -> np.ndarray:
        return x

    # -------------------------------------------------------------------- model inspection

    def _dry_run(self, x: np.ndarray):
        """Call the model once on one image, recording every leaf layer's call."""
        leaves = {id(layer): (path, layer) for path, layer in iter_layers(self.model)
                  if _is_leaf(layer)}
        recorder = CallRecorder()

        def make(key, layer):
            def wrap(original):
                def call(*args, **kwargs):
                    out = original(*args, **kwargs)
                    recorder(key, out, _is_pooling(layer))
                    return out
                return call
            return wrap

        with _wrapped_calls({layer: make(key, layer) for key, (_, layer) in leaves.items()}):
            out = self.model(x[:1], training=False)
        if self.score_fn is not None:
            out = self.score_fn(out)
        calls = recorder.calls(lambda key: (leaves[key][0], type(leaves[key][1]).__name__))
        self._layers_by_name = dict(iter_layers(self.model))
        return calls, [leaves[key][1] for key in recorder.keys], out

    def _structure(self) -> tuple:
        return tuple(layer for _, layer in iter_layers(self.model))

    def _forget(self) -> None:
        self._compiled.clear()  # the compiled functions were traced through the old layers

    def _lookup(self, wanted):
        import keras

        if isinstance(wanted, keras.layers.Layer):
            for path, layer in self._layers_by_name.items():
                if layer is wanted:
                    return path, layer
            raise ValueError(f"layer {wanted.name!r} is not part of this model. Candidates: "
                             + describe_candidates(self.calls))
        if isinstance(wanted, str):
            if wanted in self._layers_by_name:
                return wanted, self._layers_by_name[wanted]
            short = [(p, layer) for p, layer in self._layers_by_name.items() if p.split("/")[-1] == wanted]
            if len(short) == 1:
                return short[0]
            if len(short) > 1:
                raise ValueError(f"several layers are named {wanted!r}: "
                                 + ", ".join(p for p, _ in short) + "; pass the full 'outer/inner' path")
            raise ValueError(f"no layer named {wanted!r} in this model. Layers with a spatial output "
                             f"(candidates): {describe_candidates(self.calls)}")
        raise TypeError(f"layer must be a name, a keras layer or None; got {type(wanted).__name__}")

    def _role(self, layer) -> str:
        kind = type(layer).__name__
        activation = _activation_name(layer)
        if kind in _IGNORABLE:
            return "ignore"
        if kind in _GAP:
            return "gap"
        if kind in ("Softmax", "Activation") and activation in _PROBABILITY_ACTIVATIONS:
            return "probability"
        if kind == "Dense":
            return "dense+probability" if activation in _PROBABILITY_ACTIVATIONS else "dense"
        if activation in _PROBABILITY_ACTIVATIONS:
            raise ValueError(f"the model ends in a {kind} layer with {activation}; the adapter can "
                             "only read the score before it on Dense layers. Pass score_fn=..., or "
                             "end the model with a separate Activation layer")
        return "other"

    @staticmethod
    def _dense_kernel(layer) -> np.ndarray:
        return _numpy(layer.kernel, np.float32)

    # -------------------------------------------------------------------- running the model

    def _forward(self, x, on_target: Callable | None = None, raw: bool = False):
        """The model's class scores before softmax for ``x``; backend-neutral (``keras.ops``).

        ``on_target(output)``, when given, sees the target layer's output during the pass, and what
        it returns goes on through the model in its place (the gradient backends use this). With
        ``raw`` the model's output whatever its shape; otherwise the scores the methods see
        (:meth:`Adapter._target_scores`: a bound target's virtual scores).
        """
        from keras import ops

        store: dict[str, Any] = {}
        wrappers: dict[Any, Callable] = {}
        if on_target is not None:
            def wrap_target(original):
                def call(*args, **kwargs):
                    return on_target(original(*args, **kwargs))
                return call
            wrappers[self.layer] = wrap_target
        if self._final is not None:
            def wrap_final(original):
                def call(inputs, *args, **kwargs):
                    store["final_input"] = inputs
                    return original(inputs, *args, **kwargs)
                return call
            wrappers[self._final[0]] = wrap_final
        with _wrapped_calls(wrappers):
            outputs = self.model(x, training=False)
        if self.score_fn is not None:
            outputs = ops.convert_to_tensor(self.score_fn(outputs))
        elif self._final is not None:
            final, how = self._final
            if how == "input":
                outputs = store["final_input"]
            else:
                outputs = ops.matmul(store["final_input"], final.kernel)
                outputs = outputs + final.bias if final.bias is not None else outputs
        return outputs if raw else self._target_scores(outputs)

    def _run(self, key, make: Callable[[], Callable], *args):
        """``make()``'s function, compiled once per key by the backend (traced once per Explainer
        and input shape; eager Keras spends most of its time dispatching layer by layer), or run
        eagerly for models that cannot be compiled."""
        # a bound target's choices are constants of the traced function: run it eagerly instead
        # of tracing again for every batch
        if self._compile and self._bound is None:
            fn = self._compiled.get(key)
            if fn is None:
                fn = self._compiled[key] = self.backend.compile(make())
            try:
                result = fn(*args)
                self._compiled_ok = True
                return result
            except Exception as error:  # noqa: BLE001 — re-raised unless it is a tracing failure
                self._give_up_compiling(error)
        return make()(*args)

    def _give_up_compiling(self, error: Exception) -> None:
        """A model that cannot be traced (Python control flow on tensor values, …) runs eagerly.

        Only a failure before the compiled function has ever worked means that; later errors
        (out of memory, a bad input) are the user's to see, and are raised unchanged.
        """
        if self._compiled_ok:
            raise error
        import warnings

        self._compile = False
        warnings.warn(f"this model could not be compiled ({type(error).__name__}); explaining it "
                      "eagerly, which is slower but gives the same maps", stacklevel=4)

    def capture(self, images: np.ndarray, target, gradients: bool) -> Capture:
        """One forward pass (and, if ``gradients``, one backward pass down to the target layer)."""
        from keras import ops

        self.inspect(images)
        self.require_layer()
        self.check_class_scores()
        chosen = class_indices(target, len(images), self.num_classes)
        use_top = chosen is None
        targets = np.zeros(len(images), np.int64) if use_top else chosen
        args = (ops.convert_to_tensor(images), ops.convert_to_tensor(targets),
                ops.convert_to_tensor(use_top))
        shape = next(c.output_shape for c in self.calls if c.name == self.layer_name)
        acts, grads, logits, used = self._run(
            ("capture", gradients),
            lambda: lambda x, t, top: self.backend.capture(self._forward, x, t, top, gradients, shape),
            *args)
        if gradients and grads is None:
            raise RuntimeError(f"the score does not depend on layer {self.layer_name!r}; pick a layer "
                               "on the path from the input to the output")
        return self.as_grid(Capture(_numpy(acts, np.float32),
                                    _numpy(grads, np.float32) if gradients else None,
                                    _numpy(logits, np.float32), _numpy(used, np.int64)), images)

    def attention_weights(self, images: np.ndarray):
        """See :meth:`Adapter.attention_weights`: each ``MultiHeadAttention`` layer is called with
        ``return_attention_scores=True`` for this pass (its caller gets what it asked for); a layer
        with an ``attention_weights`` attribute is read after its call. Runs eagerly; every wrapper
        is removed on return."""
        from keras import ops

        self.inspect(images)
        self.check_class_scores()
        layers = [layer for _, layer in iter_layers(self.model) if _is_leaf(layer)
                  and (type(layer).__name__ in ATTENTION_KINDS or hasattr(layer, "attention_weights"))]
        if not layers:
            raise ValueError(attention_message("layer"))
        records: list = []

        def wrap_mha(original):
            def call(*args, **kwargs):
                asked = kwargs.pop("return_attention_scores", False)
                out, scores = original(*args, return_attention_scores=True, **kwargs)
                records.append(scores)
                return (out, scores) if asked else out
            return call

        def wrap_exposing(layer):
            def wrap(original):
                def call(*args, **kwargs):
                    out = original(*args, **kwargs)
                    records.append(exposed_attention_weights(layer, repr(layer.name), "layer"))
                    return out
                return call
            return wrap

        wrappers = {layer: (wrap_mha if type(layer).__name__ in ATTENTION_KINDS
                            else wrap_exposing(layer)) for layer in layers}
        with _wrapped_calls(wrappers):
            logits = self._forward(ops.convert_to_tensor(images))
        if not records:
            raise ValueError(attention_message("layer"))
        weights = [_numpy(w, np.float32) for w in records]
        return [w[:, None] if w.ndim == 3 else w for w in weights], _numpy(logits, np.float32)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """See :meth:`Adapter.logits`: (N, H, W, C) → (N, classes) float32, before softmax."""
        from keras import ops

        self.inspect(images)
        self.check_class_scores()
        out = self._run("logits", lambda: self._forward, ops.convert_to_tensor(images))
        return _numpy(out, np.float32)

    def model_outputs(self, images: np.ndarray) -> np.ndarray:
        """See :meth:`Adapter.model_outputs`: the output as the model gives it ((N, h, w, C) for a
        segmentation model), a final softmax/sigmoid bypassed."""
        from keras import ops

        self.inspect(images)
        out = self._run("outputs", lambda: lambda x: self._forward(x, raw=True),
                        ops.convert_to_tensor(images))
        return _numpy(out, np.float32)

    def weighted_layers(self, images: np.ndarray) -> list[tuple[str, list]]:
        """See :meth:`Adapter.weighted_layers`: (path, float weights except moving statistics) of
        every leaf layer with weights, in the model's layer order (nested models walked in place)."""
        found = []
        for path, layer in iter_layers(self.model):
            if not _is_leaf(layer):
                continue
            weights = [v for v in layer.weights
                       if "moving" not in v.name and str(v.dtype).startswith("float")]
            if weights:
                found.append((path, weights))
        return found

    @staticmethod
    def weight_value(weight) -> np.ndarray:
        """See :meth:`Adapter.weight_value`."""
        return _numpy(weight, np.float64)

    @staticmethod
    def assign_weight(weight, value: np.ndarray) -> None:
        """See :meth:`Adapter.assign_weight`."""
        weight.assign(np.asarray(value).astype(np.dtype(str(weight.dtype))))

    @contextlib.contextmanager
    def masked_scorer(self, image: np.ndarray, fast: bool = True):
        """See :meth:`Adapter.masked_scorer`; image is (1, H, W, C). The passes already run as one
        compiled function (``logits``), so ``fast`` changes nothing here."""
        yield lambda masks: self.logits(image[:1] * masks[..., None])

    # -------------------------------------------------------------------- input gradients

    def input_gradients(self, x: np.ndarray, target, guided: bool = False):
        """See :meth:`Adapter.input_gradients`. With ``guided`` the rule goes on every ReLU (a
        ``ReLU`` layer, an ``Activation`` or any layer with ``activation="relu"``/``"relu6"``) by
        wrapping its ``call`` for this call only."""
        from keras import ops

        x = np.asarray(x, np.float32)
        self.inspect(x)
        relus = []
        if guided:
            relus = [layer for _, layer in iter_layers(self.model) if _is_leaf(layer) and _is_relu(layer)]
            if not relus:
                raise ValueError(guided_backprop_message("layer"))
        self.check_class_scores()
        chosen = class_indices(target, len(x), self.num_classes)
        use_top = chosen is None
        targets = np.zeros(len(x), np.int64) if use_top else chosen

        def wrap_guided(original):
            def call(*args, **kwargs):
                return self.backend.guided_relu(original(*args, **kwargs))
            return call

        def forward(inputs):
            with _wrapped_calls({layer: wrap_guided for layer in relus}):
                return self._forward(inputs)

        grads, logits, used = self._run(
            ("input_gradients", guided),
            lambda: lambda a, t, top: self.backend.input_gradients(forward, a, t, top),
            ops.convert_to_tensor(x), ops.convert_to_tensor(targets), ops.convert_to_tensor(use_top))
        if grads is None:
            raise RuntimeError("the class score does not depend on the input")
        return _numpy(grads, np.float32), _numpy(logits, np.float32), _numpy(used, np.int64)


class _KerasOps:
    """:class:`~..targets.TargetOps` with ``keras.ops`` (any backend)."""

    @staticmethod
    def reshape(t, shape):
        from keras import ops

        return ops.reshape(t, shape)

    @staticmethod
    def matmul(a, b):
        from keras import ops

        return ops.matmul(a, b)

    @staticmethod
    def constant(array, like):
        from keras import ops

        return ops.convert_to_tensor(np.asarray(array), dtype=like.dtype)

    @staticmethod
    def tile_rows(t, r):
        from keras import ops

        return ops.tile(t, (r, 1))

    @staticmethod
    def sigmoid(v):
        from keras import ops

        return ops.sigmoid(v)

    @staticmethod
    def abs(v):
        from keras import ops

        return ops.abs(v)


KerasAdapter.target_ops = _KerasOps()


def _is_relu(layer) -> bool:
    """A layer whose output is a ReLU (or ReLU6) of something: where Guided Backprop's rule goes."""
    kind = type(layer).__name__
    if kind == "ReLU":
        return float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
    return _activation_name(layer) in ("relu", "relu6")
