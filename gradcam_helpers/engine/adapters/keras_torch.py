"""The PyTorch gradient piece of the Keras adapter, for ``KERAS_BACKEND=torch`` (the protocol:
:mod:`.keras_gradients`).

Autograd is off below the target layer and on above it: nothing below the target is recorded, no
parameter gets a gradient, and nothing is compiled. torch is imported lazily, inside the methods.
"""
from __future__ import annotations

from typing import Any, Callable

from .keras_gradients import select_scores
from .torch import guided_relu


class TorchGradients:
    """The PyTorch piece: autograd off below the target layer, ``torch.autograd.grad`` above it.

    Nothing is compiled (``torch.compile`` costs far more than one explanation saves); ``compile``
    only runs the function with autograd off, and :meth:`capture` turns it on after the target
    layer has run, on a detached copy of its output that requires grad. So nothing below the
    target is recorded, no parameter gets a gradient, ``requires_grad`` flags and an outer
    ``torch.no_grad()`` do not matter, and the caller's grad mode is restored on return.
    """

    name = "torch"

    def __init__(self, model=None):
        pass

    @staticmethod
    def compile(fn: Callable) -> Callable:
        import torch

        def run(*args):
            with torch.no_grad():  # restores the caller's grad mode on exit, also after an error
                return fn(*args)
        return run

    @staticmethod
    def capture(forward: Callable, x, targets, use_top, gradients: bool, activation_shape=None):
        """See :meth:`~.keras_gradients.GradientPiece.capture` (``activation_shape`` is not needed
        here)."""
        import torch

        store: dict[str, Any] = {}

        def on_target(out):
            if gradients:
                torch.set_grad_enabled(True)  # record from here on: the head only
                out = out.detach().requires_grad_(True)
            store["activations"] = out
            return out

        with torch.no_grad():
            logits = forward(x, on_target)
            chosen, total = select_scores(logits, targets, use_top)
            activations = store["activations"]
            grads: torch.Tensor | None = torch.zeros(0)
            if gradients:
                grads = None  # the score does not depend on the layer: reported by the adapter
                if total.requires_grad:
                    grads = torch.autograd.grad(total, activations, allow_unused=True)[0]
        return activations.detach(), grads, logits.detach(), chosen

    @staticmethod
    def input_gradients(forward: Callable, x, targets, use_top):
        """See :meth:`~.keras_gradients.GradientPiece.input_gradients`."""
        import torch

        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logits = forward(x)
            chosen, total = select_scores(logits, targets, use_top)
            grads = None  # the score does not depend on the input: reported by the adapter
            if total.requires_grad:
                grads = torch.autograd.grad(total, x, allow_unused=True)[0]
        return grads, logits.detach(), chosen

    @staticmethod
    def guided_relu(y: Any) -> Any:
        """See :meth:`~.keras_gradients.GradientPiece.guided_relu` (the rule of the PyTorch
        adapter, :func:`.torch.guided_relu`)."""
        return guided_relu(y)
