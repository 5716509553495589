"""The one protocol of a Keras gradient piece, and the score selection the pieces share.

Keras 3 runs the same model on TensorFlow, PyTorch or JAX (``KERAS_BACKEND``, fixed when keras is
first imported). Everything the Keras adapter does — finding the layer, wrapping its ``call``,
reading the score before softmax, the checks — is written once with Keras itself. One thing has no
backend-neutral API in Keras (keras-team/keras#20760 declined one): *the gradient of the chosen
class scores with respect to the target layer's output* (and to the input, for pixel methods).
Each backend takes it its own way, in its own module:

========== ==========================================================================================
backend    how the gradient is taken, and what is not done
========== ==========================================================================================
tensorflow ``tf.GradientTape`` that watches only the target layer's output (no variable is
           recorded), inside a ``tf.function``; the layers below the target are not differentiated
           (:mod:`.keras_tensorflow`)
torch      autograd off until the target layer has run, whose output is swapped for a detached leaf
           that requires grad; ``torch.autograd.grad(score, leaf)``: nothing is recorded below the
           target and no parameter gets a gradient; not compiled (:mod:`.keras_torch`)
jax        a pure function of the model's variables (bound in a ``keras.StatelessScope``, as
           ``model.stateless_call`` does), compiled with ``jax.jit``; a zero *probe* is added to the
           target layer's output and ``jax.value_and_grad`` differentiates the scores with respect
           to it (:mod:`.keras_jax`)
========== ==========================================================================================
"""
from __future__ import annotations

from typing import Any, Callable, Protocol


class GradientPiece(Protocol):
    """What the Keras adapter needs from a backend; built with the model (``piece(model)``).

    ``forward(x, on_target)`` is the adapter's backend-neutral pass: it runs the model and lets
    ``on_target(output)`` see — and replace — the target layer's output; it returns the logits.
    ``targets`` are the requested classes, ``use_top`` (a boolean tensor) says to explain each
    image's top class instead. Tensors in and out are the backend's own.
    """

    name: str

    def compile(self, fn: Callable) -> Callable:
        """A compiled version of ``fn`` (or ``fn`` itself, run the backend's way)."""

    def capture(self, forward: Callable, x: Any, targets: Any, use_top: Any, gradients: bool,
                activation_shape: tuple | None = None) -> tuple[Any, Any, Any, Any]:
        """Run ``forward`` once; return (activations, d score / d activations — an empty tensor
        without ``gradients``, None when the score does not depend on the layer —, logits, chosen
        classes). The score is the sum over the batch of each image's chosen logit, so each image's
        gradient is its own. ``activation_shape`` is the target's output shape from the dry run."""

    def input_gradients(self, forward: Callable, x: Any, targets: Any,
                        use_top: Any) -> tuple[Any, Any, Any]:
        """d score / d input: (gradients or None when the score does not depend on the input,
        logits, chosen classes); ``forward(x)`` returns the logits."""

    def guided_relu(self, y: Any) -> Any:
        """The identity, with a backward pass that keeps only positive gradients: after a ReLU it
        makes the ReLU's gradient Guided Backprop's 1[x > 0] * max(dL/dy, 0)."""


def select_scores(logits: Any, targets: Any, use_top: Any) -> tuple[Any, Any]:
    """The explained class of each image and the sum of their scores (written with ``keras.ops``).

    Parameters
    ----------
    logits : (N, classes) tensor of the active backend, the scores before softmax
    targets : (N,) int tensor, the requested classes (ignored where ``use_top``)
    use_top : bool or boolean scalar tensor, explain each image's top class

    Returns
    -------
    chosen : (N,) int32 tensor
    total : scalar tensor, ``sum_i logits[i, chosen[i]]``. Its gradient with respect to an
        activation gives every image its own class's gradient in one backward pass: the images of a
        batch do not interact (Keras models run in inference mode here).
    """
    from keras import ops

    top = ops.cast(ops.argmax(logits, axis=1), "int32")
    chosen = ops.where(use_top, top, ops.cast(targets, "int32"))
    picked = ops.take_along_axis(logits, ops.expand_dims(chosen, 1), axis=1)
    return chosen, ops.sum(picked)
