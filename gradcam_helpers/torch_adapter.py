"""PyTorch adapter: find the target module, capture its output and d(score)/d(output).

Why not ``register_full_backward_hook``: on a module whose output is then modified in place (the
``out += identity; relu(inplace=True)`` of ResNet blocks) it raises or reports wrong gradients.
Instead a forward hook replaces the module's output by a detached copy that requires grad, and
``torch.autograd.grad(score, that_copy)`` gives exactly the gradient we need:

- the graph below the target layer is cut, so no backward pass runs there, and autograd is off
  until the target layer has run, so the layers below record nothing;
- no parameter gradient is computed (``.grad`` of the parameters is never touched);
- it works with frozen parameters and inside an outer ``torch.no_grad()``.

Every hook is removed before returning, also when the call raises, and the train/eval mode of
every sub-module is restored. torch is imported lazily.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Iterator

import numpy as np

from ._common import (Capture, LayerCall, check_batch, describe_candidates, guided_backprop_message,
                      resolve_targets)

_POOLING = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "LPPool2d")
_PROBABILITY = ("Softmax", "LogSoftmax", "Sigmoid", "Softmax2d")


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module``, without importing torch when it is not loaded."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


@contextlib.contextmanager
def _eval_mode(model) -> Iterator[None]:
    """Put every sub-module in eval mode; restore each one's own mode afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


@contextlib.contextmanager
def _hooks() -> Iterator[list]:
    """A list to put hook handles in; every handle is removed on exit, also after an exception."""
    handles: list = []
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


def _model_device_dtype(model):
    import torch

    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


class TorchAdapter:
    """Captures what the CAM methods need from a ``torch.nn.Module``.

    Parameters
    ----------
    model : torch.nn.Module — never modified; hooks are removed and modes restored after each call
    layer : None, a module, or a dotted path ("layer4", "layer4.1", "layer4[-1]", "features.28").
        None picks the last module with a 4-D output that is neither a pooling layer nor a container
        whose output is a pooling layer's (on a torchvision-style ResNet: "layer4").
    score_fn : optional callable mapping the model's output to (N, classes) class scores. By
        default a final nn.Softmax / nn.LogSoftmax / nn.Sigmoid module is bypassed.
    """

    framework = "torch"
    channels_axis = 1

    def __init__(self, model, layer=None, score_fn: Callable | None = None):
        self.model = model
        self.score_fn = score_fn
        self._requested_layer = layer
        self._calls: list[LayerCall] | None = None
        self.layer = None
        self.layer_name = ""
        self._final = None  # a final probability module whose *input* is the logits

    # -------------------------------------------------------------------- inputs

    def _expected_channels(self) -> int | None:
        import torch

        for module in self.model.modules():
            if isinstance(module, torch.nn.Conv2d):
                return module.in_channels
        return None

    def validate(self, images):
        import torch

        x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if x.dtype == torch.uint8:
            raise ValueError("images are uint8 (0–255): convert them the way the model was trained, "
                             "e.g. x.float() / 255")
        check_batch(x, 1, self._expected_channels(), "PyTorch")
        device, dtype = _model_device_dtype(self.model)
        return x.detach().to(device=device, dtype=dtype)

    @staticmethod
    def spatial_size(x) -> tuple[int, int]:
        return int(x.shape[2]), int(x.shape[3])

    @staticmethod
    def to_channels_last(x) -> np.ndarray:
        return x.detach().cpu().numpy().transpose(0, 2, 3, 1)

    def from_channels_last(self, x: np.ndarray):
        import torch

        device, dtype = _model_device_dtype(self.model)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(device=device, dtype=dtype)

    # -------------------------------------------------------------------- model inspection

    def _dry_run(self, x) -> None:
        """Run one image through the model and record every module call, in finishing order."""
        import torch

        record: dict[str, list] = {}
        order: list[str] = []
        outputs_by_id: dict[int, str] = {}
        alive: list = []  # keeps every output alive so that id() values are not reused mid-run
        names = {module: name for name, module in self.model.named_modules() if name}

        def make(name, module):
            def hook(mod, inputs, output):
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
                if name in record:
                    record[name][0] += 1
                    record[name][1] = shape
                    order.remove(name)
                else:
                    record[name] = [1, shape, False]
                if isinstance(output, torch.Tensor):
                    # a container whose output *is* its last child's pooling output is pooling too
                    producer = outputs_by_id.get(id(output))
                    from_pool = type(mod).__name__ in _POOLING or (
                        producer is not None and record[producer][2])
                    record[name][2] = from_pool
                    outputs_by_id[id(output)] = name
                    alive.append(output)
                order.append(name)
            return hook

        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            for module, name in names.items():
                handles.append(module.register_forward_hook(make(name, module)))
            self.model(x[:1])
        modules = dict(self.model.named_modules())
        self._calls = [LayerCall(name, type(modules[name]).__name__, record[name][1], record[name][2],
                                 record[name][0]) for name in order]
        self._modules = modules
        leaves = [c for c in self._calls if not list(modules[c.name].children())]
        last = modules[leaves[-1].name] if leaves else None
        self._final = last if last is not None and type(last).__name__ in _PROBABILITY else None

    def _resolve_path(self, path: str):
        """'layer4[-1]' / 'layer4.-1' / 'layer4.1' → the module; the error lists candidates."""
        parts = re.sub(r"\[(-?\d+)\]", r".\1", path).strip(".").split(".")
        module = self.model
        for part in parts:
            try:
                if re.fullmatch(r"-?\d+", part) and hasattr(module, "__getitem__"):
                    module = module[int(part)]
                else:
                    module = getattr(module, part)
            except (AttributeError, IndexError, TypeError, KeyError):
                raise ValueError(f"no module {path!r} in this model. Modules with a spatial output "
                                 f"(candidates): {describe_candidates(self._calls)}") from None
        import torch

        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"{path!r} is a {type(module).__name__}, not a module. Candidates: "
                             + describe_candidates(self._calls))
        return module

    def _ensure_ready(self, x) -> None:
        import torch

        if self._calls is not None:
            return
        self._dry_run(x)
        wanted = self._requested_layer
        if wanted is None:
            chosen = next((c for c in reversed(self._calls) if c.output_shape is not None
                           and len(c.output_shape) == 4 and not c.is_pooling and c.calls == 1), None)
            if chosen is None:
                raise ValueError("no module with a spatial (4-D) output was found: CAM methods need a "
                                 "convolutional feature map")
            module = self._modules[chosen.name]
        elif isinstance(wanted, torch.nn.Module):
            module = wanted
        elif isinstance(wanted, str):
            module = self._resolve_path(wanted)
        else:
            raise TypeError(f"layer must be a module, a dotted path or None; got {type(wanted).__name__}")
        name = next((n for n, m in self._modules.items() if m is module), None)
        if name is None or name == "":
            raise ValueError("the target layer is not a sub-module of this model. Candidates: "
                             + describe_candidates(self._calls))
        call = next((c for c in self._calls if c.name == name), None)
        if call is None:
            raise ValueError(f"module {name!r} is not used in the forward pass. Candidates: "
                             + describe_candidates(self._calls))
        if call.output_shape is None or len(call.output_shape) != 4:
            raise ValueError(f"module {name!r} has output shape {call.output_shape}, not a spatial "
                             "(N, C, h, w) feature map; pick a convolutional layer or block. "
                             f"Candidates: {describe_candidates(self._calls)}")
        if call.calls > 1:
            raise ValueError(f"module {name!r} runs {call.calls} times in one forward pass (e.g. a "
                             "shared ReLU); pick a module that runs once, such as the block that "
                             "contains it")
        self.layer, self.layer_name = module, name

    # -------------------------------------------------------------------- capture

    def _logits(self, outputs, store):
        import torch

        if self.score_fn is not None:
            logits = self.score_fn(outputs)
        elif self._final is not None:
            logits = store["final_input"]
        else:
            logits = outputs
        if not isinstance(logits, torch.Tensor):
            raise ValueError("the model's output is not a tensor: pass score_fn=lambda out: out[...] "
                             "that returns (N, classes) class scores")
        if logits.ndim != 2:
            raise ValueError(f"class scores must be (N, classes); the model gives {tuple(logits.shape)}. "
                             "Pass score_fn=... to turn the output into class scores")
        return logits

    def _final_hook(self, store):
        def pre_hook(module, inputs):
            store["final_input"] = inputs[0]
        return pre_hook

    def capture(self, x, target, gradients: bool) -> Capture:
        """One forward pass, and with ``gradients`` one backward pass from the score to the layer."""
        import torch

        self._ensure_ready(x)
        store: dict[str, Any] = {}

        def forward_hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"module {self.layer_name!r} returns {type(output).__name__}, not a "
                                 "tensor; pick a module with a single tensor output")
            leaf = output.detach().requires_grad_(gradients)
            store["activations"] = leaf
            if not gradients:
                return None
            # Autograd records from here on only: the layers below the target ran without it,
            # so they keep no tensors for a backward pass that will never reach them.
            torch.set_grad_enabled(True)
            # a copy goes on, so in-place ops downstream (ResNet's `out += identity`) leave the
            # captured activations untouched
            return leaf.clone()

        # grad mode is off until the target layer's hook turns it on; leaving this block restores
        # the caller's mode (also inside an outer torch.no_grad())
        with _hooks() as handles, _eval_mode(self.model), torch.set_grad_enabled(False):
            handles.append(self.layer.register_forward_hook(forward_hook))
            if self._final is not None and self.score_fn is None:
                handles.append(self._final.register_forward_pre_hook(self._final_hook(store)))
            outputs = self.model(x)
            logits = self._logits(outputs, store)
            targets = resolve_targets(target, logits.detach().float().cpu().numpy())
            grads = None
            if gradients:
                index = torch.as_tensor(targets, device=logits.device)
                score = logits.gather(1, index[:, None]).sum()
                if not score.requires_grad:
                    raise RuntimeError(f"the score does not depend on module {self.layer_name!r}; "
                                       "pick a module on the path from the input to the output")
                (grads,) = torch.autograd.grad(score, store["activations"])
        activations = store["activations"].detach()
        return Capture(
            activations.float().cpu().numpy().transpose(0, 2, 3, 1),
            None if grads is None else grads.float().cpu().numpy().transpose(0, 2, 3, 1),
            logits.detach().float().cpu().numpy(), targets)

    def logits(self, x) -> np.ndarray:
        """Class scores before softmax for a batch, without gradients (used by Score-CAM)."""
        import torch

        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            if self._final is not None and self.score_fn is None:
                handles.append(self._final.register_forward_pre_hook(self._final_hook(store)))
            return self._logits(self.model(x), store).float().cpu().numpy()

    def cam_class_weights(self) -> np.ndarray:
        """The Linear weight, transposed to (K, classes), after global average pooling.

        Raises ValueError, saying why and pointing to Grad-CAM, when the modules after the target
        are not  global average pooling → (Flatten) → one Linear.
        """
        import torch

        names = [c.name for c in self._calls]
        after = [self._modules[n] for n in names[names.index(self.layer_name) + 1:]
                 if not list(self._modules[n].children())]
        kinds = [type(m).__name__ for m in after]
        core = [m for m in after if type(m).__name__ not in ("Flatten", "Dropout", "Identity")]
        if core and type(core[-1]).__name__ in _PROBABILITY:
            core = core[:-1]
        pool_ok = len(core) == 2 and (
            (isinstance(core[0], torch.nn.AdaptiveAvgPool2d) and core[0].output_size in (1, (1, 1)))
            or type(core[0]).__name__ in ("GlobalAvgPool2d", "GlobalAveragePooling2d"))
        if pool_ok and isinstance(core[1], torch.nn.Linear):
            return core[1].weight.detach().float().cpu().numpy().T
        raise ValueError(
            "CAM needs the architecture  feature maps → global average pooling "
            "(nn.AdaptiveAvgPool2d(1)) → one nn.Linear, because its weights are that layer's weights. "
            f"After {self.layer_name!r} this model runs: {' → '.join(kinds) or 'nothing'}. Use "
            "method='gradcam' instead: it works on any architecture and equals CAM on GAP networks.")

    # -------------------------------------------------------------------- input gradients

    def input_gradients(self, x: np.ndarray, target, guided: bool = False):
        """d score / d input for pixel attributions (see :mod:`gradcam_helpers.attributions`).

        Parameters
        ----------
        x : (M, H, W, C) float array, channels last (converted to (M, C, H, W) here)
        target : None, an int or (M,) class indices
        guided : apply Guided Backprop's rule to every nn.ReLU / nn.ReLU6 during this call (forward
            hooks that are removed before returning, also on error)

        Returns
        -------
        (gradients (M, H, W, C) float32, logits (M, classes) float32, targets (M,) int64)
        """
        import torch

        device, dtype = _model_device_dtype(self.model)
        xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))
        xt = xt.to(device=device, dtype=dtype)
        self._ensure_ready(xt)
        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.enable_grad():
            if self._final is not None and self.score_fn is None:
                handles.append(self._final.register_forward_pre_hook(self._final_hook(store)))
            if guided:
                relus = [m for m in self.model.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6))]
                if not relus:
                    raise ValueError(guided_backprop_message("module"))
                rule = _guided_relu_function()
                for module in relus:
                    handles.append(module.register_forward_hook(lambda mod, inp, out: rule.apply(out)))
            xt = xt.detach().requires_grad_(True)
            logits = self._logits(self.model(xt), store)
            targets = resolve_targets(target, logits.detach().float().cpu().numpy())
            score = logits.gather(1, torch.as_tensor(targets, device=logits.device)[:, None]).sum()
            if not score.requires_grad:
                raise RuntimeError("the class score does not depend on the input")
            (grads,) = torch.autograd.grad(score, xt)
        return (grads.float().cpu().numpy().transpose(0, 2, 3, 1), logits.detach().float().cpu().numpy(),
                targets)


def _guided_relu_function():
    """An identity whose backward keeps only positive gradients: put after a ReLU, the gradient
    below it becomes 1[x > 0] * max(dL/dy, 0), Guided Backprop's rule."""
    import torch

    global _GUIDED
    if _GUIDED is None:
        class GuidedRelu(torch.autograd.Function):
            @staticmethod
            def forward(ctx, y):
                return y.clone()  # a new tensor: in-place ops later on leave the ReLU's output alone

            @staticmethod
            def backward(ctx, grad):
                return grad.clamp(min=0)

        _GUIDED = GuidedRelu
    return _GUIDED


_GUIDED = None
