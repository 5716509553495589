"""The JAX gradient piece of the Keras adapter, for ``KERAS_BACKEND=jax`` (the protocol:
:mod:`.keras_gradients`), and the jaxpr dependency analysis it needs.

The model runs as a pure function of its variables (bound in a ``keras.StatelessScope``, as
``model.stateless_call`` does), compiled with ``jax.jit``; a zero *probe* is added to the target
layer's output and ``jax.value_and_grad`` differentiates the scores with respect to it — the
gradient w.r.t. an additive zero probe *is* the gradient w.r.t. the activation, and nothing that
does not depend on the probe is differentiated. Whether the score depends on the probe at all is
read off the traced graph (:func:`depends_on_first_input`). JAX is imported lazily.
"""
from __future__ import annotations

from typing import Any, Callable

from .keras_gradients import select_scores


class JaxGradients:
    """The JAX piece: a pure function, ``jax.value_and_grad`` w.r.t. a zero probe, ``jax.jit``.

    ``compile(fn)`` jits ``fn`` as a pure function of the model's variables: they are passed in as
    arguments and bound to the model's variables inside a ``keras.StatelessScope`` — what
    ``model.stateless_call`` does, here around the whole pass, so that the pre-softmax score read
    after the model's call (a Dense kernel) is traced too. The weights are therefore never baked
    into the compiled function: an Explainer kept across training steps sees the new weights.

    :meth:`capture` adds a zero *probe* to the target layer's output and differentiates the chosen
    scores with respect to the probe: d score / d probe at probe = 0 is d score / d activation.
    Only what depends on the probe is differentiated: nothing below the target layer. Whether the
    score depends on the probe at all is read off the traced graph (:func:`depends_on_first_input`),
    so a layer off the path raises the same error as on TensorFlow and torch instead of giving a
    zero gradient.
    """

    name = "jax"

    def __init__(self, model):
        self.model = model

    def _state(self) -> tuple[list, list]:
        return ([v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables])

    def compile(self, fn: Callable) -> Callable:
        import jax
        import keras

        model = self.model

        def pure(trainable, non_trainable, *args):
            mapping = (list(zip(model.trainable_variables, trainable))
                       + list(zip(model.non_trainable_variables, non_trainable)))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        jitted = jax.jit(pure)

        def run(*args):
            return jitted(*self._state(), *args)
        return run

    @staticmethod
    def capture(forward: Callable, x, targets, use_top, gradients: bool, activation_shape=None):
        """See :meth:`~.keras_gradients.GradientPiece.capture`. ``activation_shape`` is the target
        layer's output shape (its batch size is ignored): the probe must exist before the pass that
        it is added to.
        """
        import jax
        import jax.numpy as jnp

        def scores(probe):
            store: dict[str, Any] = {}

            def on_target(out):
                out = out if probe is None else out + probe
                store["activations"] = out
                return out

            logits = forward(x, on_target)
            chosen, total = select_scores(logits, targets, use_top)
            return total, (store["activations"], logits, chosen)

        if not gradients:
            _, (activations, logits, chosen) = scores(None)
            return activations, jnp.zeros((0,)), logits, chosen
        probe = jnp.zeros((x.shape[0],) + tuple(activation_shape[1:]), x.dtype)
        # traced once into a graph: whether the score depends on the probe is read off the graph
        # (as TensorFlow's tape and torch's autograd know it), then the same graph is differentiated
        graph, shapes = jax.make_jaxpr(scores, return_shape=True)(probe)
        replay = _as_function(graph, shapes)
        if not depends_on_first_input(graph.jaxpr):
            _, (activations, logits, chosen) = replay(probe)
            return activations, None, logits, chosen  # reported by the adapter, as on the others
        (_, (activations, logits, chosen)), grads = jax.value_and_grad(replay, has_aux=True)(probe)
        return activations, grads, logits, chosen

    @staticmethod
    def input_gradients(forward: Callable, x, targets, use_top):
        """See :meth:`~.keras_gradients.GradientPiece.input_gradients`."""
        import jax

        def scores(inputs):
            logits = forward(inputs)
            chosen, total = select_scores(logits, targets, use_top)
            return total, (logits, chosen)

        (_, (logits, chosen)), grads = jax.value_and_grad(scores, has_aux=True)(x)
        return grads, logits, chosen

    @staticmethod
    def guided_relu(y):
        """See :meth:`~.keras_gradients.GradientPiece.guided_relu`."""
        return _jax_guided()(y)


def _as_function(graph, shapes) -> Callable:
    """A traced ``ClosedJaxpr`` as a function again, returning the pytree ``shapes`` describes."""
    import jax
    from jax.extend.core import jaxpr_as_fun

    run, tree = jaxpr_as_fun(graph), jax.tree_util.tree_structure(shapes)
    return lambda *args: jax.tree_util.tree_unflatten(tree, run(*args))


def depends_on_first_input(jaxpr) -> bool:
    """Whether the first output of a jaxpr is computed from its first input.

    Exact, read off the graph, not off the gradient's size (a zero gradient can be right: a ReLU
    that is off everywhere): a value depends on the input when an operation that computes it takes
    a dependent floating-point value, as TensorFlow's tape and torch's autograd decide that a
    gradient exists. Integer results (argmax) and ``stop_gradient`` carry no gradient and cut the
    path. A nested graph (a jitted function, a custom derivative) is followed inside when its
    inputs and outputs match the call's; otherwise every output of a call with a dependent input
    counts as dependent, which can only keep the gradient, never drop a real one.

    Parameters
    ----------
    jaxpr : jax.extend.core.Jaxpr (or a ClosedJaxpr's ``.jaxpr``)
    """
    return _dependent_outputs(jaxpr, [True] + [False] * (len(jaxpr.invars) - 1))[0]


#: calls whose nested graph maps the call's inputs to its outputs one to one, run once (loops such
#: as scan and while feed outputs back, so they are not followed inside)
_STRAIGHT_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr",
                   "core_call": "call_jaxpr", "custom_jvp_call": "call_jaxpr",
                   "custom_vjp_call": "call_jaxpr", "checkpoint": "jaxpr", "remat": "jaxpr"}


def _dependent_outputs(jaxpr, dependent_inputs: list[bool]) -> list[bool]:
    import jax.numpy as jnp
    from jax.extend.core import Literal

    dependent = {id(v) for v, d in zip(jaxpr.invars, dependent_inputs) if d}

    def is_dependent(v) -> bool:
        return not isinstance(v, Literal) and id(v) in dependent

    for eqn in jaxpr.eqns:
        flags = [is_dependent(v) for v in eqn.invars]
        if not any(flags) or eqn.primitive.name == "stop_gradient":
            continue
        inner = eqn.params.get(_STRAIGHT_CALLS.get(eqn.primitive.name, ""))
        inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr's graph
        if (inner is not None and hasattr(inner, "eqns") and len(inner.invars) == len(eqn.invars)
                and len(inner.outvars) == len(eqn.outvars)):
            out_flags = _dependent_outputs(inner, flags)
        else:
            out_flags = [True] * len(eqn.outvars)
        for v, flag in zip(eqn.outvars, out_flags):
            dtype = getattr(v.aval, "dtype", None)
            if flag and dtype is not None and jnp.issubdtype(dtype, jnp.inexact):
                dependent.add(id(v))
    return [is_dependent(v) for v in jaxpr.outvars]


_JAX_GUIDED: list = []


def _jax_guided():
    """The guided rule as a ``jax.custom_vjp`` function, defined once JAX is imported."""
    if not _JAX_GUIDED:
        import jax
        import jax.numpy as jnp

        @jax.custom_vjp
        def guided_identity(v):
            return v

        guided_identity.defvjp(lambda v: (v, None), lambda _, dy: (jnp.maximum(dy, 0),))
        _JAX_GUIDED.append(guided_identity)
    return _JAX_GUIDED[0]
