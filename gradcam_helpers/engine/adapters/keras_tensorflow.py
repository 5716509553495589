"""The TensorFlow gradient piece of the Keras adapter (the protocol: :mod:`.keras_gradients`).

The tape watches only the target layer's output, with ``watch_accessed_variables=False``: the layers
below the target are run but not recorded, and no gradient with respect to any weight is computed.
The backward pass runs from the score down to the target layer only. The whole pass is compiled
with ``tf.function``. TensorFlow is imported lazily, inside the methods.
"""
from __future__ import annotations

from typing import Any, Callable


class TensorFlowGradients:
    """The TensorFlow piece: ``tf.function`` to compile, ``tf.GradientTape`` for the gradient."""

    name = "tensorflow"

    def __init__(self, model=None):
        pass

    @staticmethod
    def compile(fn: Callable) -> Callable:
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)

    @staticmethod
    def capture(forward: Callable, x, targets, use_top, gradients: bool, activation_shape=None):
        """See :meth:`~.keras_gradients.GradientPiece.capture` (``activation_shape`` is not needed
        here)."""
        import tensorflow as tf

        store: dict[str, Any] = {}
        tape = tf.GradientTape(watch_accessed_variables=False, persistent=False)

        def on_target(out):
            if gradients:
                tape.watch(out)
            store["activations"] = out
            return out

        with tape:
            logits = forward(x, on_target)
            chosen = tf.where(use_top, tf.argmax(logits, axis=1, output_type=tf.int64), targets)
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        activations = store["activations"]
        grads = tape.gradient(score, activations) if gradients else tf.zeros((0,))
        return activations, grads, logits, chosen

    @staticmethod
    def input_gradients(forward: Callable, x, targets, use_top):
        """See :meth:`~.keras_gradients.GradientPiece.input_gradients`."""
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            logits = forward(x)
            chosen = tf.where(use_top, tf.argmax(logits, axis=1, output_type=tf.int64), targets)
            score = tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))
        return tape.gradient(score, x), logits, chosen

    @staticmethod
    def guided_relu(y):
        """See :meth:`~.keras_gradients.GradientPiece.guided_relu`."""
        import tensorflow as tf

        @tf.custom_gradient
        def rule(v):
            return tf.identity(v), lambda dy: tf.nn.relu(dy)

        return rule(y)
