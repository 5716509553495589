"""The adapters: one per framework, each implementing the one contract of :mod:`.base`.

=========================== =======================================================================
module                      what is in it
=========================== =======================================================================
:mod:`.base`                the contract (:class:`~.base.Adapter`) and what both adapters share
:mod:`.keras`               Keras 3 models on any backend (backend-neutral, ``keras.ops``)
:mod:`.keras_gradients`     the protocol of a Keras gradient piece (one per backend)
:mod:`.keras_tensorflow`,   the gradient pieces: ``tf.GradientTape``, ``torch.autograd``,
:mod:`.keras_torch`,        ``jax.value_and_grad`` (with the jaxpr dependency analysis)
:mod:`.keras_jax`
:mod:`.torch`               ``torch.nn.Module``
:mod:`.torch_inference`     the BatchNorm-folded copy for Score-CAM's many forward passes
=========================== =======================================================================

Frameworks are imported lazily: importing an adapter module imports no framework.
"""
from __future__ import annotations

from typing import Any, Callable

from .base import Adapter


def adapter_classes() -> tuple[type[Adapter], ...]:
    """The adapter classes, in the order :func:`adapter_for` asks them.

    Keras comes first: under ``KERAS_BACKEND=torch`` a Keras layer is also a ``torch.nn.Module``,
    and asking "is it torch?" first would send a Keras model to the PyTorch adapter.
    """
    from .keras import KerasAdapter
    from .torch import TorchAdapter

    return (KerasAdapter, TorchAdapter)


def adapter_for(model: Any, layer: Any = None, score_fn: Callable | None = None) -> Adapter:
    """The adapter of ``model`` (each adapter class is asked :meth:`~.base.Adapter.accepts`).

    Parameters
    ----------
    model : keras.Model or torch.nn.Module
    layer : the target layer, as :func:`~gradcam_helpers.explain` takes it
    score_fn : optional callable mapping the model's output to (N, classes) class scores

    Raises
    ------
    TypeError
        When no adapter accepts the model.
    """
    for cls in adapter_classes():
        if cls.accepts(model):
            return cls(model, layer=layer, score_fn=score_fn)
    raise TypeError(f"expected a keras.Model or a torch.nn.Module; got {type(model).__name__}")


def adapter_class(framework: str) -> type[Adapter]:
    """The adapter class of a framework by name ("keras", "torch"), for what needs no model yet
    (loading a model file, the thread count).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    classes = {cls.framework: cls for cls in adapter_classes()}
    if framework not in classes:
        raise ValueError(f"unknown framework {framework!r}; use one of: "
                         + ", ".join(repr(name) for name in classes))
    return classes[framework]
