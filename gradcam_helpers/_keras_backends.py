"""The one piece of the Keras adapter that differs between Keras 3's backends: gradients.

Keras 3 runs the same model on TensorFlow, PyTorch or JAX (``KERAS_BACKEND``, fixed when keras is
first imported), and everything the adapter does — finding the layer, wrapping its ``call``,
reading the score before softmax, the checks — is written once with Keras itself. Only one thing
has no backend-neutral API in Keras (keras-team/keras#20760 declined one): *the gradient of the
chosen class scores with respect to the target layer's output*. Each backend takes it its own way:

========== ============================================================================================
backend    how the gradient is taken, and what is not done
========== ============================================================================================
tensorflow ``tf.GradientTape`` that watches only the target layer's output (no variable is recorded),
           inside a ``tf.function``; the layers below the target run but are not differentiated
torch      autograd off until the target layer has run, whose output is swapped for a detached leaf
           that requires grad; ``torch.autograd.grad(score, leaf)``: nothing is recorded below the
           target and no parameter gets a gradient
jax        a pure function of a zero *probe* added to the target layer's output (the model runs
           through ``model.stateless_call`` with its variables as arguments), differentiated with
           ``jax.value_and_grad`` w.r.t. the probe and compiled with ``jax.jit``; the gradient with
           respect to an additive zero probe *is* the gradient with respect to the activation, and
           nothing that does not depend on the probe is differentiated
========== ============================================================================================

The adapter hands a piece a ``forward(x, on_activation, call_model)`` function (see
:class:`Forward`) that runs the model with the target and final layers wrapped and returns
``(activation, logits)``; ``on_activation(out) -> out`` is called on the target layer's output inside
the wrapped call, which is where each backend starts recording. Frameworks are imported lazily.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Protocol

import numpy as np

ForwardFn = Callable[..., tuple[Any, Any]]


def select_scores(logits, targets, use_top: bool):
    """The explained class of each image and the sum of their scores (written with ``keras.ops``).

    Parameters
    ----------
    logits : (N, classes) tensor of the active backend, the scores before softmax
    targets : (N,) int tensor, the requested classes (ignored when ``use_top``)
    use_top : bool, explain each image's top class

    Returns
    -------
    chosen : (N,) int tensor
    total : scalar tensor, ``sum_i logits[i, chosen[i]]`` — its gradient w.r.t. an activation gives
        every image its own class's gradient in one backward pass (the images do not interact)
    """
    from keras import ops

    chosen = ops.argmax(logits, axis=1) if use_top else targets
    chosen = ops.cast(chosen, "int32")
    picked = ops.take_along_axis(logits, ops.expand_dims(chosen, 1), axis=1)
    return chosen, ops.sum(picked)


def to_numpy(tensor, dtype) -> np.ndarray:
    from keras import ops

    return np.asarray(ops.convert_to_numpy(tensor), dtype=dtype)


class GradientPiece(Protocol):
    """What every backend provides. ``x``, ``targets`` are NumPy arrays; results are NumPy."""

    name: str

    def capture(self, forward: ForwardFn, x: np.ndarray, targets: np.ndarray, use_top: bool,
                gradients: bool, activation_shape: tuple) -> tuple[np.ndarray, ...]:
        """Returns (activations, gradients or None, logits, chosen targets)."""

    def logits(self, forward: ForwardFn, x: np.ndarray) -> np.ndarray:
        """(N, classes) float32 scores before softmax, without any gradient."""

    def no_gradients(self) -> contextlib.AbstractContextManager:
        """A context in which the model runs without recording anything (dry runs)."""


class _Compiled:
    """Functions compiled once per key, with one fallback to running them uncompiled.

    A model that cannot be compiled (Python control flow on tensor values, …) runs uncompiled, with
    a warning. Only a failure before a compiled function has ever worked means that; later errors
    (out of memory, bad input) are the user's to see and are raised unchanged.
    """

    def __init__(self, name: str, compile: Callable[[Callable], Callable]):
        self.name = name
        self.compile = compile
        self.enabled = True
        self.worked = False
        self._functions: dict = {}

    def run(self, key, make: Callable[[], Callable], *args):
        """Call the function ``make()`` builds for ``key`` (compiled when possible) on ``args``."""
        if key not in self._functions:
            plain = make()
            self._functions[key] = (plain, self.compile(plain))
        plain, compiled = self._functions[key]
        if self.enabled:
            try:
                result = compiled(*args)
                self.worked = True
                return result
            except Exception as error:  # noqa: BLE001 — re-raised unless nothing ever compiled
                if self.worked:
                    raise
                self.enabled = False
                first_line = (str(error).splitlines() or [""])[0][:200]
                warnings.warn(f"this model could not be compiled with {self.name} "
                              f"({type(error).__name__}: {first_line}); explaining it without "
                              "compiling, which is slower but gives the same maps", stacklevel=4)
        return plain(*args)


class TensorFlowPiece:
    """``tf.GradientTape`` watching only the target's output, in a ``tf.function``."""

    name = "tensorflow"

    def __init__(self):
        import tensorflow as tf

        self.compiled = _Compiled("tf.function", lambda fn: tf.function(fn, reduce_retracing=True))

    @staticmethod
    def _capture_fn(forward, use_top: bool, gradients: bool) -> Callable:
        import tensorflow as tf

        def run(x, targets):
            tape = tf.GradientTape(watch_accessed_variables=False, persistent=False)

            def on_activation(out):
                if gradients:
                    tape.watch(out)
                return out

            with tape:
                activations, logits = forward(x, on_activation)
                chosen, total = select_scores(logits, targets, use_top)
            grads = tape.gradient(total, activations) if gradients else None
            if grads is None:  # not asked for, or the score does not depend on the layer
                grads = tf.zeros((0,))
            return activations, grads, logits, chosen
        return run

    def capture(self, forward, x, targets, use_top, gradients, activation_shape):
        import tensorflow as tf

        acts, grads, logits, chosen = self.compiled.run(
            ("capture", use_top, gradients), lambda: self._capture_fn(forward, use_top, gradients),
            tf.convert_to_tensor(x), tf.convert_to_tensor(targets.astype(np.int32)))
        grads = to_numpy(grads, np.float32) if gradients and int(tf.size(grads)) else None
        return to_numpy(acts, np.float32), grads, to_numpy(logits, np.float32), to_numpy(chosen, np.int64)

    def logits(self, forward, x):
        import tensorflow as tf

        out = self.compiled.run("logits", lambda: lambda x: forward(x)[1], tf.convert_to_tensor(x))
        return to_numpy(out, np.float32)

    def no_gradients(self):
        return contextlib.nullcontext()


class TorchPiece:
    """Autograd off below the target layer; ``torch.autograd.grad`` w.r.t. a detached leaf."""

    name = "torch"

    def capture(self, forward, x, targets, use_top, gradients, activation_shape):
        import torch
        from keras import ops

        def on_activation(out):
            if gradients:
                torch.set_grad_enabled(True)  # record from here on: the head only
                out = out.detach().requires_grad_(True)
            return out

        with torch.no_grad():  # restores the caller's grad mode on exit, also after an error
            activations, logits = forward(ops.convert_to_tensor(x), on_activation)
            chosen, total = select_scores(logits, ops.convert_to_tensor(targets.astype(np.int32)),
                                          use_top)
            grads = None
            if gradients and total.requires_grad:
                grads = torch.autograd.grad(total, activations, allow_unused=True)[0]
        return (to_numpy(activations.detach(), np.float32),
                None if grads is None else to_numpy(grads, np.float32),
                to_numpy(logits.detach(), np.float32), to_numpy(chosen, np.int64))

    def logits(self, forward, x):
        import torch
        from keras import ops

        with torch.inference_mode():
            return to_numpy(forward(ops.convert_to_tensor(x))[1], np.float32)

    def no_gradients(self):
        import torch

        return torch.no_grad()


class JaxPiece:
    """A pure function of the variables, the images and a zero probe; ``jax.value_and_grad``, jit."""

    name = "jax"

    def __init__(self, model):
        import jax

        self.model = model
        self.compiled = _Compiled("jax.jit", jax.jit)
        # what keras's own predict_step passes: training=False only where call() takes it
        self._kwargs = {"training": False} if getattr(model, "_call_has_training_arg", True) else {}

    def _run_model(self, trainable, non_trainable):
        def call(x):
            return self.model.stateless_call(trainable, non_trainable, x, **self._kwargs)[0]
        return call

    def _state(self) -> tuple:
        return ([v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables])

    def _capture_fn(self, forward, use_top: bool, gradients: bool) -> Callable:
        import jax

        def scores(probe, trainable, non_trainable, x, targets):
            def on_activation(out):
                return out if probe is None else out + probe  # d/d probe = d/d activation

            activations, logits = forward(x, on_activation, self._run_model(trainable, non_trainable))
            chosen, total = select_scores(logits, targets, use_top)
            return total, (activations, logits, chosen)

        if not gradients:
            def run(trainable, non_trainable, x, targets):
                _, (activations, logits, chosen) = scores(None, trainable, non_trainable, x, targets)
                return activations, None, logits, chosen
            return run

        value_and_grad = jax.value_and_grad(scores, argnums=0, has_aux=True)

        def run(trainable, non_trainable, x, targets, probe):
            (_, (activations, logits, chosen)), grads = value_and_grad(
                probe, trainable, non_trainable, x, targets)
            return activations, grads, logits, chosen
        return run

    def capture(self, forward, x, targets, use_top, gradients, activation_shape):
        import jax.numpy as jnp

        args = self._state() + (jnp.asarray(x), jnp.asarray(targets, dtype=jnp.int32))
        if gradients:
            args += (jnp.zeros((len(x),) + tuple(activation_shape[1:]), jnp.float32),)
        acts, grads, logits, chosen = self.compiled.run(
            ("capture", use_top, gradients), lambda: self._capture_fn(forward, use_top, gradients),
            *args)
        return (to_numpy(acts, np.float32), None if grads is None else to_numpy(grads, np.float32),
                to_numpy(logits, np.float32), to_numpy(chosen, np.int64))

    def logits(self, forward, x):
        import jax.numpy as jnp

        def make():
            def run(trainable, non_trainable, x):
                return forward(x, None, self._run_model(trainable, non_trainable))[1]
            return run

        out = self.compiled.run("logits", make, *self._state(), jnp.asarray(x))
        return to_numpy(out, np.float32)

    def no_gradients(self):
        return contextlib.nullcontext()


def piece_for(model) -> GradientPiece:
    """The gradient piece of the backend Keras runs on (``keras.config.backend()``)."""
    import keras

    backend = keras.config.backend()
    if backend == "tensorflow":
        return TensorFlowPiece()
    if backend == "torch":
        return TorchPiece()
    if backend == "jax":
        return JaxPiece(model)
    raise NotImplementedError(
        f"Keras runs on the '{backend}' backend; Grad-CAM needs gradients, which the helpers take on "
        "'tensorflow', 'torch' and 'jax'. Set KERAS_BACKEND to one of them before importing keras")
