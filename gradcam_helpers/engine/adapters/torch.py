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
every sub-module is restored. What both adapters share (choosing and checking the layer, the
softmax bypass, the CAM matcher) lives in :class:`~.base.Adapter`; Score-CAM's many forward passes
run on an equivalent, faster copy of the model (:mod:`.torch_inference`). torch is imported lazily.
"""
from __future__ import annotations

import contextlib
import re
from copy import deepcopy
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..maps import to_numpy
from ..targets import resolve_targets
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
    several_outputs_message,
    single_input_message,
)
from .torch_inference import build_inference_copy

_POOLING = ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "LPPool2d")
_PROBABILITY = ("Softmax", "LogSoftmax", "Sigmoid", "Softmax2d")
_IGNORABLE = ("Flatten", "Dropout", "Identity")


def is_torch_model(model: Any) -> bool:
    """True for a ``torch.nn.Module``, without importing torch when it is not loaded.

    A Keras layer under ``KERAS_BACKEND=torch`` is a module too: ask ``is_keras_model`` first.
    """
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


@contextlib.contextmanager
def _eval_mode(model) -> Iterator[None]:
    """Put every sub-module in eval mode; restore each one's own mode afterwards.

    Only the modules in training mode are touched, so a model already in eval mode costs one pass
    over its modules and nothing else.
    """
    training = [m for m in model.modules() if m.training]
    for module in training:
        module.training = False
    try:
        yield
    finally:
        for module in training:
            module.training = True


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
    """The device and floating dtype of the model's first floating parameter (or buffer)."""
    import itertools

    import torch

    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.is_floating_point():
            return tensor.device, tensor.dtype
    return torch.device("cpu"), torch.float32


class TorchAdapter(Adapter):
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
    unit = "module"
    cam_words = ("global average pooling (nn.AdaptiveAvgPool2d(1))", "nn.Linear")

    def __init__(self, model, layer=None, score_fn: Callable | None = None):
        super().__init__(model, layer, score_fn)
        self._modules: dict[str, Any] = {}
        self._inference: tuple | None = None  # (the weights' state, inference_copy()'s result)

    # -------------------------------------------------------------------- the framework

    @staticmethod
    def accepts(model: Any) -> bool:
        """See :meth:`Adapter.accepts`: a ``torch.nn.Module`` (:func:`is_torch_model`)."""
        return is_torch_model(model)

    @staticmethod
    def load_model(path: str | Path, build: Callable[[], Any] | None = None,
                   device: str | None = None) -> Any:
        """See :meth:`Adapter.load_model`: ``build()`` makes the network, then its ``state_dict`` is
        loaded from ``path`` (a ``state_dict``, or a dict holding one under ``"state_dict"`` or
        ``"model_state_dict"``, as ``torch.save`` wrote it); eval mode, on ``device``."""
        import torch

        if build is None:
            raise ValueError("a PyTorch checkpoint holds only the weights: pass the function that "
                             "builds the network")
        model = build()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"the build function returned {type(model).__name__}, not a "
                            "torch.nn.Module")
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(stored, dict):
            for key in ("state_dict", "model_state_dict"):
                if isinstance(stored.get(key), dict):
                    stored = stored[key]
                    break
        try:
            model.load_state_dict(stored)
        except RuntimeError as err:
            raise ValueError(f"the checkpoint {path} does not fit the network: {err}") from err
        return model.to(device or "cpu").eval()

    @staticmethod
    def thread_count() -> int:
        """See :meth:`Adapter.thread_count`: ``torch.get_num_threads()``."""
        import torch

        return int(torch.get_num_threads())

    @staticmethod
    def from_channels_last(x: np.ndarray) -> Any:
        """See :meth:`Adapter.from_channels_last`: an (N, C, H, W) float32 tensor."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2),
                                                     dtype=np.float32))

    def copy_model(self) -> Any:
        """See :meth:`Adapter.copy_model`: ``copy.deepcopy``."""
        return deepcopy(self.model)

    # -------------------------------------------------------------------- inputs

    def _expected_channels(self) -> int | None:
        import torch

        return next((m.in_channels for m in self.model.modules() if isinstance(m, torch.nn.Conv2d)),
                    None)

    def validate(self, images):
        """An (N, C, H, W) tensor on the model's device and dtype, checked; errors name the fix."""
        import torch

        if isinstance(images, (list, tuple, dict)) and len(images) > 1 and all(
                isinstance(a, torch.Tensor) for a in (images.values() if isinstance(images, dict)
                                                      else images)):
            raise ValueError(single_input_message(len(images)))
        x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
        if x.dtype == torch.uint8:
            raise ValueError("images are uint8 (0–255): convert them the way the model was trained, "
                             "e.g. x.float() / 255")
        check_batch(x, 1, self._expected_channels(), "PyTorch")
        device, dtype = _model_device_dtype(self.model)
        x = x.detach().to(device=device, dtype=dtype)
        check_finite(bool(torch.isfinite(x).all()), "PyTorch")
        return x

    @staticmethod
    def spatial_size(x) -> tuple[int, int]:
        return int(x.shape[2]), int(x.shape[3])

    @staticmethod
    def to_channels_last(x) -> np.ndarray:
        return to_numpy(x).transpose(0, 2, 3, 1)

    # -------------------------------------------------------------------- model inspection

    def _dry_run(self, x):
        """Run one image through the model and record every module call, in finishing order."""
        import torch

        recorder = CallRecorder()
        producers: dict[int, str] = {}
        alive: list = []  # keeps every output alive so that id() values are not reused mid-run
        names = {module: name for name, module in self.model.named_modules() if name}

        def make(name):
            def hook(mod, inputs, output):
                pooling = False
                if isinstance(output, torch.Tensor):
                    # a container whose output *is* its last child's pooling output is pooling too
                    producer = producers.get(id(output))
                    pooling = type(mod).__name__ in _POOLING or (
                        producer is not None and recorder.is_pooling(producer))
                    producers[id(output)] = name
                    alive.append(output)
                recorder(name, output if isinstance(output, torch.Tensor) else None, pooling)
            return hook

        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            for module, name in names.items():
                handles.append(module.register_forward_hook(make(name)))
            out = self.model(x[:1])
        if self.score_fn is not None:
            out = self.score_fn(out)
        self._modules = dict(self.model.named_modules())
        calls = recorder.calls(lambda name: (name, type(self._modules[name]).__name__))
        return calls, [self._modules[name] for name in recorder.keys], out

    def _structure(self) -> tuple:
        return tuple(self.model.modules())

    def _forget(self) -> None:
        self._inference = None  # the copy was traced through the old modules

    def _is_leaf(self, module) -> bool:
        return not list(module.children())

    def _lookup(self, wanted):
        import torch

        if isinstance(wanted, torch.nn.Module):
            module = wanted
        elif isinstance(wanted, str):
            module = self._resolve_path(wanted)
        else:
            raise TypeError(f"layer must be a module, a dotted path or None; got {type(wanted).__name__}")
        name = next((n for n, m in self._modules.items() if m is module), None)
        if not name:
            raise ValueError("the target layer is not a sub-module of this model. Candidates: "
                             + describe_candidates(self.calls))
        return name, module

    def _resolve_path(self, path: str):
        """'layer4[-1]' / 'layer4.-1' / 'layer4.1' → the module; the error lists candidates."""
        import torch

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
                                 f"(candidates): {describe_candidates(self.calls)}") from None
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"{path!r} is a {type(module).__name__}, not a module. Candidates: "
                             + describe_candidates(self.calls))
        return module

    def _role(self, module) -> str:
        import torch

        kind = type(module).__name__
        if kind in _IGNORABLE:
            return "ignore"
        if kind in _PROBABILITY:
            return "probability"
        if isinstance(module, torch.nn.Linear):
            return "dense"
        if ((isinstance(module, torch.nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)))
                or kind in ("GlobalAvgPool2d", "GlobalAveragePooling2d")):
            return "gap"
        return "other"

    @staticmethod
    def _dense_kernel(module) -> np.ndarray:
        return to_numpy(module.weight, np.float32).T

    # -------------------------------------------------------------------- capture

    def _logits(self, outputs, store, raw: bool = False):
        """The scores the methods see (see :meth:`Adapter._target_scores`); with ``raw`` the
        model's output itself (a final softmax bypassed), whatever its shape."""
        import torch

        if self.score_fn is not None:
            logits = self.score_fn(outputs)
        elif self._final is not None:
            logits = store["final_input"]
        else:
            logits = outputs
        if not isinstance(logits, torch.Tensor):
            count = len(logits) if isinstance(logits, (list, tuple, dict)) else "a non-tensor"
            raise ValueError(several_outputs_message(count))
        return logits if raw else self._target_scores(logits)

    def _final_hook(self, handles: list, store: dict) -> None:
        if self._final is not None and self.score_fn is None:
            def pre_hook(module, inputs):
                store["final_input"] = inputs[0]
            handles.append(self._final[0].register_forward_pre_hook(pre_hook))

    def capture(self, x, target, gradients: bool) -> Capture:
        """One forward pass, and with ``gradients`` one backward pass from the score to the layer."""
        import torch

        self.inspect(x)
        self.require_layer()
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
            self._final_hook(handles, store)
            outputs = self.model(x)
            logits = self._logits(outputs, store)
            targets = resolve_targets(target, to_numpy(logits, np.float32))
            grads = None
            if gradients:
                index = torch.as_tensor(targets, device=logits.device)
                score = logits.gather(1, index[:, None]).sum()
                if not score.requires_grad:
                    raise RuntimeError(f"the score does not depend on module {self.layer_name!r}; "
                                       "pick a module on the path from the input to the output")
                (grads,) = torch.autograd.grad(score, store["activations"])
        activations = store["activations"].detach()
        return self.as_grid(Capture(
            _channels_last(to_numpy(activations, np.float32)),
            None if grads is None else _channels_last(to_numpy(grads, np.float32)),
            to_numpy(logits, np.float32), targets), x)

    def attention_weights(self, x):
        """See :meth:`Adapter.attention_weights`: ``nn.MultiheadAttention`` modules are asked for
        their per-head weights (``need_weights=True, average_attn_weights=False``) through forward
        hooks with keyword arguments, and give the caller what it asked for; a module with an
        ``attention_weights`` attribute is read after its forward. Hooks are removed on return."""
        import torch

        self.inspect(x)
        modules = [m for m in self.model.modules()
                   if type(m).__name__ in ATTENTION_KINDS or hasattr(m, "attention_weights")]
        if not modules:
            raise ValueError(attention_message("module"))
        records: list = []
        asked: dict[int, bool] = {}

        def pre_hook(module, args, kwargs):
            if not isinstance(module, torch.nn.MultiheadAttention):
                return None
            args, kwargs = tuple(args), dict(kwargs)
            if len(args) > 4:  # need_weights given by position (query, key, value, mask, need...)
                asked[id(module)] = bool(args[4])
                args = args[:4] + (True,) + args[5:]
                if len(args) > 6:
                    args = args[:6] + (False,) + args[7:]
                else:
                    kwargs["average_attn_weights"] = False
            else:
                asked[id(module)] = bool(kwargs.get("need_weights", True))
                kwargs.update(need_weights=True, average_attn_weights=False)
            return args, kwargs

        def hook(module, args, kwargs, output):
            if isinstance(module, torch.nn.MultiheadAttention):
                records.append(output[1])
                if not asked.get(id(module), True):
                    return output[0], None
                return None
            records.append(exposed_attention_weights(module, type(module).__name__, "module"))
            return None

        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            self._final_hook(handles, store)
            for module in modules:
                handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
                handles.append(module.register_forward_hook(hook, with_kwargs=True))
            logits = to_numpy(self._logits(self.model(x), store), np.float32)
        if not records:
            raise ValueError(attention_message("module"))
        return [_per_head(to_numpy(w, np.float32)) for w in records], logits

    def logits(self, x) -> np.ndarray:
        """See :meth:`Adapter.logits`: (N, C, H, W) → (N, classes) float32, before softmax."""
        import torch

        self.inspect(x)
        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            self._final_hook(handles, store)
            return to_numpy(self._logits(self.model(x), store), np.float32)

    def model_outputs(self, x) -> np.ndarray:
        """See :meth:`Adapter.model_outputs`: the output as the model gives it ((N, C, h, w) for a
        segmentation model), a final softmax/sigmoid bypassed."""
        import torch

        self.inspect(x)
        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            self._final_hook(handles, store)
            return to_numpy(self._logits(self.model(x), store, raw=True), np.float32)

    def weighted_layers(self, x) -> list[tuple[str, list]]:
        """See :meth:`Adapter.weighted_layers`: (dotted name, the module's own parameters) of every
        module with parameters, in the order of their first call on ``x[:1]`` (buffers such as
        BatchNorm's running statistics are left out)."""
        import torch

        names = {module: name for name, module in self.model.named_modules()}
        owners = {module: list(module.parameters(recurse=False)) for module in names}
        order: list = []

        def hook(module, inputs, output):
            if module not in order:
                order.append(module)

        with _hooks() as handles, _eval_mode(self.model), torch.no_grad():
            for module, params in owners.items():
                if params:
                    handles.append(module.register_forward_hook(hook))
            self.model(x[:1])
        return [(names[m] or type(self.model).__name__, owners[m]) for m in order]

    @staticmethod
    def weight_value(weight) -> np.ndarray:
        """See :meth:`Adapter.weight_value`."""
        return to_numpy(weight, np.float64)

    @staticmethod
    def assign_weight(weight, value: np.ndarray) -> None:
        """See :meth:`Adapter.assign_weight`."""
        import torch

        with torch.no_grad():
            weight.copy_(torch.as_tensor(np.asarray(value), dtype=weight.dtype, device=weight.device))

    @contextlib.contextmanager
    def masked_scorer(self, image, fast: bool = True):
        """See :meth:`Adapter.masked_scorer`: eval mode, the softmax bypass and no autograd are set
        up once; each batch of masks goes to the model's device and multiplies the image there.

        With ``fast``, the passes run on :meth:`inference_copy` (BatchNorm folded into the
        convolutions, channels-last memory) when there is one; its scores are compared with the
        model's own on the first two masks, and on a mismatch the model itself is used.
        """
        import torch

        image = image[:1]
        twin = self.inference_copy() if fast else None
        checked = twin is None

        def run(model, masks, store):
            m = torch.from_numpy(masks).to(device=image.device, dtype=image.dtype)
            batch = image * m[:, None]
            if model is not self.model:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return to_numpy(self._logits(model(batch), store), np.float32)

        def score(masks: np.ndarray) -> np.ndarray:
            nonlocal twin, checked
            if twin is None:
                return run(self.model, masks, store)
            logits = run(twin[0], masks, twin_store)
            if not checked:
                reference = run(self.model, masks[:2], store)
                tolerance = 1e-4 * max(1.0, float(np.abs(reference).max()))
                if not np.allclose(logits[:2], reference, rtol=1e-4, atol=tolerance):
                    twin = None
                    if self._inference is not None:  # not again for this model state
                        self._inference = (self._inference[0], None)
                    return run(self.model, masks, store)
                checked = True
            return logits

        store: dict[str, Any] = {}
        twin_store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.inference_mode():
            self._final_hook(handles, store)
            if twin is not None and twin[1] is not None:
                handles.append(twin[1].register_forward_pre_hook(
                    lambda module, inputs: twin_store.__setitem__("final_input", inputs[0])))
            yield score

    def inference_copy(self):
        """An equivalent copy of the model for many passes without gradients, or None.

        The copy is traced with ``torch.fx``; every ``BatchNorm`` that only follows a convolution
        (or a linear layer) is folded into its weights, and its 4-D weights are stored
        channels-last. On a CPU that makes a ResNet's forward pass 1.3–1.5× faster, with scores
        equal to the model's up to float rounding (about 1e-6 relative). Built once and rebuilt when
        any parameter or buffer changed (a weight updated in place, a training step) or when
        :meth:`inspect` (run by every ``capture``) sees a new structure (a module swapped); None when
        ``torch.fx`` cannot trace the model (control flow that depends on the data, calls it cannot
        follow) or when a copy once gave other scores. See :mod:`.torch_inference`.

        Returns
        -------
        (copy, final) or None : the copy (eval mode, hooks of the model included) and its final
        softmax module, the one :meth:`masked_scorer` reads the logits from (None without one)
        """
        key = tuple((t.data_ptr(), t._version) for t in (*self.model.parameters(), *self.model.buffers()))
        if self._inference is not None and self._inference[0] == key:
            return self._inference[1]
        final = self._final[0] if self._final is not None and self.score_fn is None else None
        twin = build_inference_copy(self.model, final)
        self._inference = (key, twin)
        return twin

    # -------------------------------------------------------------------- input gradients

    def input_gradients(self, x: np.ndarray, target, guided: bool = False):
        """See :meth:`Adapter.input_gradients`. With ``guided`` the rule goes on every nn.ReLU /
        nn.ReLU6 (forward hooks that are removed before returning, also on error)."""
        import torch

        device, dtype = _model_device_dtype(self.model)
        xt = self.from_channels_last(x).to(device=device, dtype=dtype)
        self.inspect(xt)
        store: dict[str, Any] = {}
        with _hooks() as handles, _eval_mode(self.model), torch.enable_grad():
            self._final_hook(handles, store)
            if guided:
                relus = [m for m in self.model.modules()
                         if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6))]
                if not relus:
                    raise ValueError(guided_backprop_message("module"))
                for module in relus:
                    handles.append(module.register_forward_hook(lambda mod, inp, out: guided_relu(out)))
            xt = xt.detach().requires_grad_(True)
            logits = self._logits(self.model(xt), store)
            targets = resolve_targets(target, to_numpy(logits, np.float32))
            score = logits.gather(1, torch.as_tensor(targets, device=logits.device)[:, None]).sum()
            if not score.requires_grad:
                raise RuntimeError("the class score does not depend on the input")
            (grads,) = torch.autograd.grad(score, xt)
        return (to_numpy(grads, np.float32).transpose(0, 2, 3, 1), to_numpy(logits, np.float32),
                targets)


def _channels_last(a: np.ndarray) -> np.ndarray:
    """(N, C, h, w) → (N, h, w, C); a token sequence (N, T, D) is channels-last already."""
    return a if a.ndim == 3 else a.transpose(0, 2, 3, 1)


def _per_head(weights: np.ndarray) -> np.ndarray:
    """Attention weights as (N, heads, T, T): one head (N, T, T) gets its axis."""
    return weights[:, None] if weights.ndim == 3 else weights


_GUIDED: list = []


class _TorchOps:
    """:class:`~..targets.TargetOps` for torch tensors."""

    @staticmethod
    def reshape(t, shape):
        return t.reshape(shape)

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def constant(array, like):
        import torch

        return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)

    @staticmethod
    def tile_rows(t, r):
        return t.repeat(r, 1)

    @staticmethod
    def sigmoid(v):
        import torch

        return torch.sigmoid(v)

    @staticmethod
    def abs(v):
        import torch

        return torch.abs(v)


TorchAdapter.target_ops = _TorchOps()


def guided_relu(y: Any) -> Any:
    """The identity, with a backward pass that keeps only positive gradients: put after a ReLU, the
    gradient below it becomes 1[x > 0] * max(dL/dy, 0), Guided Backprop's rule. The output is a new
    tensor, so in-place operations later on leave the ReLU's own output alone. (Also the rule of
    Keras models on the torch backend.)"""
    if not _GUIDED:
        import torch

        class GuidedRelu(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, v: Any) -> Any:
                return v.clone()

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                return grad.clamp(min=0)

        _GUIDED.append(GuidedRelu)
    return _GUIDED[0].apply(y)
