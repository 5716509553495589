"""The adapter contract: everything the rest of the package needs from a framework, declared once.

An adapter wraps one model of one framework. The pipeline, the drivers of the methods and the
evaluation call only what :class:`Adapter` declares; nothing outside ``engine/adapters`` branches on
the framework. The contract, by purpose:

================================ =================================================================
purpose                          members
================================ =================================================================
is this my kind of model?        :meth:`Adapter.accepts` (asked by :func:`~.adapter_for`, Keras
                                 first), ``framework``
images                           :meth:`~Adapter.validate`, :meth:`~Adapter.spatial_size`,
                                 ``channels_axis``, :meth:`~Adapter.to_channels_last`,
                                 :meth:`~Adapter.from_channels_last`
capture at the target layer      :meth:`~Adapter.capture` (activations, gradients, logits, classes),
                                 ``layer_name``, ``num_classes``, :meth:`~Adapter.cam_class_weights`
class scores (forward passes)    :meth:`~Adapter.logits`, :meth:`~Adapter.masked_scorer`
input gradients (pixel methods)  :meth:`~Adapter.input_gradients` (also with Guided Backprop's rule)
target objects                   :meth:`~Adapter.model_outputs`, :meth:`~Adapter.bind_target`,
                                 :meth:`~Adapter.scoring` (scores become the bound target's),
                                 ``target_ops``, :meth:`~Adapter.check_class_scores`
weights                          :meth:`~Adapter.weighted_layers`, :meth:`~Adapter.weight_value`,
                                 :meth:`~Adapter.assign_weight`, :meth:`~Adapter.copy_model`
files and threads                :meth:`~Adapter.load_model`, :meth:`~Adapter.thread_count`
================================ =================================================================

A new capability (captured attention weights for transformers, say) is declared here and
implemented by each adapter; a method's driver then asks for it.

What does not depend on the framework is written here once: the dry-run record
(:class:`CallRecorder`), choosing and checking the target layer, finding the final softmax to
bypass, the GAP → Dense matcher that CAM needs, and the input checks and messages
(:func:`check_batch`, :func:`check_finite`, :func:`single_input_message`, …), the same in both
frameworks. Which class is explained is decided in :mod:`..targets`.
"""
from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from ..tokens import infer_grid, is_token_shape, tokens_to_grid

#: class names of the attention layers whose weights the adapters capture (Keras, PyTorch)
ATTENTION_KINDS = ("MultiHeadAttention", "MultiheadAttention")


@dataclass
class Capture:
    """What an adapter hands to the framework-free core for one batch.

    Attributes
    ----------
    activations : (N, h, w, K) float32
        Channels-last, the target layer's output (a transformer's token sequence (N, T, D) is
        turned into its patch grid by :meth:`Adapter.as_grid`).
    gradients : (N, h, w, K) float32 or None
        d score_i / d activations (score = pre-softmax logit).
    logits : (N, classes) float32
        The class scores before softmax.
    targets : (N,) int64
        The class explained for each image.
    """

    activations: np.ndarray
    gradients: np.ndarray | None
    logits: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class LayerCall:
    """One layer/module call seen in a dry forward pass (in the order the calls finished)."""

    name: str
    kind: str  # class name, e.g. "Conv2D", "BasicBlock"
    output_shape: tuple | None  # None when the output is not a single tensor
    is_pooling: bool
    calls: int


def describe_candidates(calls: Sequence[LayerCall], limit: int = 12) -> str:
    """A short list of the non-pooling layers that have a spatial (4-D) output or a token sequence
    (N, T, D) output, deepest last."""
    spatial = [c for c in calls
               if c.output_shape is not None and not c.is_pooling
               and (len(c.output_shape) == 4 or is_token_shape(c.output_shape))]
    names = [f"{c.name} {tuple(c.output_shape or ())[1:]}" for c in spatial]
    if len(names) > limit:
        names = ["…"] + names[-limit:]
    return ", ".join(names) if names else "(none: this model has no layer with a 4-D output)"


def check_batch(images: Any, channels_axis: int, expected_channels: int | None, framework: str) -> None:
    """Rank, emptiness and channel checks with messages that say how to fix the input."""
    shape = tuple(images.shape)
    layout = "(N, H, W, C)" if channels_axis == -1 else "(N, C, H, W)"
    if len(shape) != 4:
        hint = ""
        if len(shape) == 3:
            hint = (" — for one image add the batch axis (x[None] / np.expand_dims(x, 0)); for a batch"
                    " of grayscale images add the channel axis")
        elif len(shape) == 2:
            hint = " — a single grayscale image needs both a batch and a channel axis"
        raise ValueError(f"{framework} images must be a 4-D batch {layout}; got shape {shape}{hint}")
    if shape[0] == 0:
        raise ValueError("the batch is empty (N = 0): pass at least one image")
    if expected_channels is not None and shape[channels_axis] != expected_channels:
        other = 1 if channels_axis == -1 else -1
        hint = ""
        if shape[other] == expected_channels:
            hint = (" — the channels look like they are on the wrong axis: "
                    + ("use x.permute(0, 3, 1, 2) (PyTorch wants channels first)" if framework == "PyTorch"
                       else "use np.transpose(x, (0, 2, 3, 1)) (Keras wants channels last)"))
        elif expected_channels == 3 and shape[channels_axis] == 1:
            hint = " — repeat the grayscale channel three times or build the model for 1 channel"
        raise ValueError(f"the model expects {expected_channels} channel(s) but the images have "
                         f"{shape[channels_axis]} on the channel axis of {layout}{hint}")


def check_finite(all_finite: bool, framework: str) -> None:
    """Raise before any work when the images hold NaN or inf (the maps would be silent garbage)."""
    if not all_finite:
        raise ValueError(f"the {framework} images contain NaN or inf values: fix the preprocessing "
                         "(e.g. a division by a zero standard deviation) or replace them, "
                         "e.g. np.nan_to_num(x)")


def several_outputs_message(count: int | str) -> str:
    """What to do when a model returns several outputs (the same advice in both frameworks)."""
    return (f"the model returns {count} outputs, so it is not clear which are the class scores: pass "
            "score_fn=lambda outputs: outputs[i] (a callable that returns the (N, classes) scores), "
            "or wrap the model so that it returns one (N, classes) tensor")


def single_input_message(count: int | str, names: Sequence[str] = ()) -> str:
    """What to do when a model takes several inputs (the same advice in both frameworks)."""
    listed = f" ({', '.join(names)})" if names else ""
    return (f"the model takes {count} inputs{listed}, but explain() differentiates with respect to "
            "one batch of images: wrap the model so that it takes the images alone and supplies the "
            "other inputs itself (e.g. a small model or module whose call fixes them), and explain "
            "the wrapper")


class CallRecorder:
    """Records the layer calls of one dry forward pass: how often each ran and its last output.

    Adapters call the recorder from their own hooks (PyTorch forward hooks, wrapped Keras ``call``
    methods); :meth:`calls` lists the layers in the order in which their *last* call finished, so
    the deepest layer comes last.
    """

    def __init__(self) -> None:
        self._record: dict[Any, list] = {}
        self._order: list = []

    def __call__(self, key: Any, output: Any, is_pooling: bool) -> None:
        shape = tuple(output.shape) if hasattr(output, "shape") else None
        entry = self._record.get(key)
        if entry is None:
            self._record[key] = [1, shape, is_pooling]
        else:
            entry[0] += 1
            entry[1], entry[2] = shape, is_pooling
            self._order.remove(key)
        self._order.append(key)

    @property
    def keys(self) -> list:
        """The recorded keys, in the order of :meth:`calls`."""
        return list(self._order)

    def is_pooling(self, key: Any) -> bool:
        entry = self._record.get(key)
        return entry is not None and entry[2]

    def calls(self, describe: Callable[[Any], tuple[str, str]]) -> list[LayerCall]:
        """One :class:`LayerCall` per recorded key; ``describe(key)`` gives (name, kind)."""
        out = []
        for key in self._order:
            calls, shape, pooling = self._record[key]
            name, kind = describe(key)
            out.append(LayerCall(name, kind, shape, pooling, calls))
        return out


class Adapter(abc.ABC):
    """The interface between the engine (pipeline, drivers, evaluation) and one framework.

    A subclass is thin: it says how to run the model once with its layer calls recorded
    (:meth:`_dry_run`), how to look a layer up (:meth:`_lookup`), what a layer is (:meth:`_role`,
    :meth:`_dense_kernel`), how to check and convert images, and how to :meth:`capture` activations
    and gradients. Choosing the target layer and checking it, finding the final softmax and
    matching the GAP → Dense head for CAM happen here, once, for both.

    Attributes
    ----------
    layer, layer_name
        The target layer object and its name / path (set by :meth:`inspect`, the first call;
        later calls reuse them, as they do the attributes below).
    num_classes : int
        The number of class scores the model returns.
    _calls : list of LayerCall
        The recorded layer calls, in finishing order; ``_call_layers`` the matching objects.
    _final : tuple or None
        ``(layer, how)``: a final probability layer to bypass — ``"input"`` reads its input,
        ``"dense"`` recomputes a Dense layer's pre-activation — or None.
    """

    framework: str = ""
    channels_axis: int = -1
    #: how a token sequence (N, T, D) becomes a patch grid: None (automatic), (h, w) or a function
    #: (:func:`~..tokens.tokens_to_grid`); the ``tokens_to_grid=`` setting of the Explainer
    tokens_layout: Any = None
    #: the words the error messages use for a layer ("layer" in Keras, "module" in PyTorch)
    unit: str = "layer"
    #: how the messages name global average pooling and a dense layer in this framework
    cam_words: tuple[str, str] = ("global average pooling", "dense layer")

    def __init__(self, model: Any, layer: Any = None, score_fn: Callable | None = None) -> None:
        self.model = model
        self.score_fn = score_fn
        self._requested_layer = layer
        self._calls: list[LayerCall] | None = None
        self._call_layers: list = []
        self.layer: Any = None
        self.layer_name = ""
        self._layer_error: ValueError | None = None
        self._final: tuple[Any, str] | None = None
        self.num_classes = 0
        self._structure_seen: tuple = ()
        self._output_shape: tuple = ()
        self._bound = None
        self._image_size: tuple[int, int] | None = None

    # ----------------------------------------------------------------- what a framework provides

    @staticmethod
    @abc.abstractmethod
    def accepts(model: Any) -> bool:
        """Whether ``model`` is this framework's model, without importing the framework when it is
        not loaded."""

    @staticmethod
    @abc.abstractmethod
    def load_model(path: str | Path, build: Callable[[], Any] | None = None,
                   device: str | None = None) -> Any:
        """A model saved to ``path``, ready to explain (inference mode).

        Parameters
        ----------
        path : the framework's model file (Keras ``.keras``; PyTorch a ``state_dict`` checkpoint)
        build : for frameworks whose files hold only weights (PyTorch): builds the network
        device : where the model runs (PyTorch: ``"cpu"``, ``"cuda"``); None: the CPU
        """

    @staticmethod
    @abc.abstractmethod
    def thread_count() -> int:
        """The number of CPU threads the framework computes with now (a trained model's cache key
        holds it: another count adds sums in another order)."""

    @staticmethod
    @abc.abstractmethod
    def from_channels_last(x: np.ndarray) -> Any:
        """An (N, H, W, C) float NumPy batch as the framework's models take it (Keras: the array;
        PyTorch: an (N, C, H, W) float32 tensor)."""

    @abc.abstractmethod
    def copy_model(self) -> Any:
        """A copy of the model with its own weights (the sanity check randomises it); the model
        itself is never changed."""

    @abc.abstractmethod
    def validate(self, images: Any) -> Any:
        """Check a batch (rank, channels, dtype, finiteness) and convert it for the model."""

    @abc.abstractmethod
    def spatial_size(self, x: Any) -> tuple[int, int]:
        """(H, W) of a validated batch."""

    @abc.abstractmethod
    def to_channels_last(self, x: Any) -> np.ndarray:
        """A validated batch as an (N, H, W, C) NumPy array."""

    @abc.abstractmethod
    def capture(self, x: Any, target: Any, gradients: bool) -> Capture:
        """One forward pass (and with ``gradients`` a backward pass down to the target layer)."""

    @abc.abstractmethod
    def logits(self, x: Any) -> np.ndarray:
        """The class scores before softmax of a validated batch, without gradients.

        Parameters
        ----------
        x : a batch from :meth:`validate` (Keras (N, H, W, C), PyTorch (N, C, H, W))

        Returns
        -------
        (N, classes) float32 ndarray
            What ``score_fn`` gives when one was passed; otherwise the model's output with a final
            softmax/sigmoid bypassed (its input, or the Dense layer's pre-activation). The model is
            not changed.
        """

    @abc.abstractmethod
    def input_gradients(self, x: np.ndarray, target: Any, guided: bool = False
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """d score / d input, for the pixel methods (:mod:`..attributions`).

        Parameters
        ----------
        x : (M, H, W, C) float array, channels last (converted to the model's layout here)
        target : None (each input's top class), an int or (M,) class indices
        guided : apply Guided Backprop's rule to every ReLU during this call (undone before
            returning, also on error); ``ValueError`` when the model has no ReLU the adapter sees

        Returns
        -------
        (gradients (M, H, W, C) float32, logits (M, classes) float32, targets (M,) int64)
        """

    @abc.abstractmethod
    def weighted_layers(self, x: Any) -> list[tuple[str, list]]:
        """The leaf layers (modules) that hold their own weights, in the order the model calls
        them on ``x[:1]`` (input first).

        Parameters
        ----------
        x : a batch from :meth:`validate`

        Returns
        -------
        list of (name, weights)
            ``name`` as the layer is named for ``layer=`` (Keras path, PyTorch dotted path; the
            model's class name for a PyTorch model's own parameters); ``weights`` the layer's float
            weight tensors as the framework holds them (read and write them with
            :meth:`weight_value` / :meth:`assign_weight`). Statistics that are not learnt
            (BatchNormalization's moving mean and variance, PyTorch buffers) are left out.
        """

    @staticmethod
    @abc.abstractmethod
    def weight_value(weight: Any) -> np.ndarray:
        """One weight tensor from :meth:`weighted_layers` as a float64 NumPy copy (its own shape)."""

    @staticmethod
    @abc.abstractmethod
    def assign_weight(weight: Any, value: np.ndarray) -> None:
        """Overwrite one weight tensor from :meth:`weighted_layers` in place with ``value`` (same
        shape; cast to the weight's dtype, on its device)."""

    @abc.abstractmethod
    def masked_scorer(self, image: Any, fast: bool = True
                      ) -> ContextManager[Callable[[np.ndarray], np.ndarray]]:
        """A context manager giving ``score(masks)``: the class scores before softmax of
        ``image * mask`` for each mask, without gradients (Score-CAM's forward passes).

        Parameters
        ----------
        image
            One validated image as the framework holds it (a batch of one).
        fast : bool
            Allow an equivalent, faster copy of the model for the passes where the framework
            has one (scores equal up to float rounding).

        The function it gives maps masks of shape (M, H, W), float32 in [0, 1], to the scores
        (M, classes), float32.

        Whatever is set up for the passes (modes, hooks, the image on the model's device) is set up
        once on entry and undone on exit, not once per batch of masks.
        """

    @abc.abstractmethod
    def _dry_run(self, x: Any) -> tuple[list[LayerCall], list, Any]:
        """Run one image through the model, recording layer calls: (calls, layer objects, scores)."""

    @abc.abstractmethod
    def _lookup(self, wanted: Any) -> tuple[str, Any]:
        """The (name, layer) the user asked for (a name, a path or the object), or ValueError."""

    @abc.abstractmethod
    def _role(self, layer: Any) -> str:
        """What a layer is to the CAM matcher and the softmax bypass: one of "gap", "dense",
        "probability" (a standalone softmax/sigmoid), "dense+probability" (a Dense layer with a
        softmax/sigmoid activation), "ignore" (Dropout, Flatten, Identity) or "other"."""

    @abc.abstractmethod
    def _dense_kernel(self, layer: Any) -> np.ndarray:
        """The (K, classes) weight of a dense layer."""

    # ----------------------------------------------------------------- shared: inspection

    @abc.abstractmethod
    def _structure(self) -> tuple:
        """Every layer object of the model, in a fixed order (cheap: no forward pass)."""

    def _forget(self) -> None:
        """Drop whatever was built for the previous structure (subclasses extend this)."""

    def inspect(self, x: Any) -> None:
        """Find and check the target layer and the final softmax.

        Done by the first call, and again only when the model's structure changed since (a layer
        swapped, added or removed: the layer objects are compared by identity, which costs
        microseconds, not a forward pass).
        """
        structure = self._structure()
        if self._calls is not None:
            seen = self._structure_seen
            if len(seen) == len(structure) and all(a is b for a, b in zip(seen, structure)):
                return
            self._calls = None
            self._forget()
        self._image_size = self.spatial_size(x)
        calls, layers, scores = self._dry_run(x)
        if isinstance(scores, (list, tuple, dict)):
            raise ValueError(several_outputs_message(len(scores)))
        # an output that is not (N, classes) is fine for a target object (segmentation, boxes);
        # without one, check_class_scores() raises
        self._output_shape = tuple(getattr(scores, "shape", ()))
        self._calls, self._call_layers = calls, layers
        self._structure_seen = structure
        if self._bound is None:
            self.num_classes = int(scores.shape[-1]) if len(self._output_shape) == 2 else 0
        try:
            self.layer_name, self.layer = self._choose_layer()
            self._layer_error = None
        except ValueError as error:
            if self._requested_layer is not None:
                raise
            # no layer with a spatial output: fine for methods that need none (pixel methods,
            # forward passes); require_layer() raises this when a method needs the layer
            self.layer_name, self.layer, self._layer_error = "", None, error
        self._final = self._find_final() if self.score_fn is None else None

    @property
    def calls(self) -> list[LayerCall]:
        """The recorded layer calls (after :meth:`inspect`; an empty list before it)."""
        return self._calls if self._calls is not None else []

    def require_layer(self) -> None:
        """Raise, for a method that needs the target layer (every CAM), why the automatic choice
        found none; called by :meth:`capture` and :meth:`cam_class_weights` after :meth:`inspect`."""
        if self._layer_error is not None:
            raise ValueError(str(self._layer_error))

    def _fits_grid(self, shape: tuple) -> bool:
        if self.tokens_layout is not None:
            return True
        try:
            infer_grid(int(shape[1]), self._image_size or (0, 0))
            return True
        except (ValueError, ZeroDivisionError):
            return False

    def _choose_token_layer(self) -> tuple[str, Any] | None:
        """The automatic target of a transformer: None when no token sequence (N, T, D) that fits
        the patch grid is produced after the last spatial (4-D) layer (a CNN: the usual choice).

        Otherwise the input of the last attention layer — the last block's first norm
        (``LayerNormalization`` / ``nn.LayerNorm``) or, without a norm, the last token sequence
        before it — as pytorch-grad-cam recommends; without an attention layer the engine sees,
        the last token sequence. Why not the last block's output: in a model that classifies from
        the class token, the gradient after the last attention reaches the class token only, so
        the patch tokens get zero weight and the map is empty (lesson 13 measures this).
        """
        calls, layers = self.calls, self._call_layers
        last_spatial = max((i for i, c in enumerate(calls)
                            if c.output_shape is not None and len(c.output_shape) == 4), default=-1)
        tokens = [i for i, c in enumerate(calls) if i > last_spatial and c.calls == 1
                  and is_token_shape(c.output_shape) and not c.is_pooling]
        if not tokens:
            return None
        fitting = [i for i in tokens if self._fits_grid(calls[i].output_shape or ())]
        if not fitting:
            raise ValueError(
                f"this model's {self.unit}s give token sequences, but their lengths fit no patch "
                f"grid of a {self._image_size} image: pass tokens_to_grid=(h, w) or a function "
                f"(N, T, D) → (N, h, w, D), or layer=... . Candidates: {describe_candidates(calls)}")
        attention = [i for i, c in enumerate(calls)
                     if c.kind in ATTENTION_KINDS or hasattr(layers[i], "attention_weights")]
        if attention:
            before = [i for i in fitting if i < attention[-1]]
            norms = [i for i in before if "Norm" in calls[i].kind]
            if norms or before:
                i = (norms or before)[-1]
                return calls[i].name, layers[i]
        i = fitting[-1]
        return calls[i].name, layers[i]

    def as_grid(self, capture: Capture, x: Any) -> Capture:
        """``capture`` with a token sequence (N, T, D) turned into its patch grid (N, h, w, D)
        (extra tokens dropped, :func:`~..tokens.tokens_to_grid` with ``tokens_layout``); a 4-D
        capture is returned as it is."""
        if capture.activations.ndim != 3:
            return capture
        size = self.spatial_size(x)
        grid = tokens_to_grid(capture.activations, size, self.tokens_layout)
        grads = (None if capture.gradients is None
                 else tokens_to_grid(capture.gradients, size, self.tokens_layout))
        return Capture(np.ascontiguousarray(grid), None if grads is None
                       else np.ascontiguousarray(grads), capture.logits, capture.targets)

    def attention_weights(self, x: Any) -> tuple[list[np.ndarray], np.ndarray]:
        """The attention weights of every attention layer for a validated batch, in call order.

        Captured from Keras ``MultiHeadAttention`` and ``torch.nn.MultiheadAttention`` layers and
        from any layer/module that sets an ``attention_weights`` attribute (N, heads, T, T) or
        (N, T, T) in its call. Nothing is left on the model.

        Returns
        -------
        (weights, logits) : a list of (N, heads, T, T) float32 arrays (rows: queries, summing to
            1), and the (N, classes) class scores before softmax of the same pass

        Raises
        ------
        ValueError
            When the model has no attention layer whose weights can be captured, saying why.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot capture attention weights")

    def _choose_layer(self) -> tuple[str, Any]:
        unit = self.unit
        if self._requested_layer is None:
            chosen = self._choose_token_layer()
            if chosen is not None:
                return chosen
            for call, layer in zip(reversed(self.calls), reversed(self._call_layers)):
                if (call.output_shape is not None and len(call.output_shape) == 4
                        and not call.is_pooling and call.calls == 1):
                    return call.name, layer
            raise ValueError(f"no {unit} with a spatial (4-D) output was found: CAM methods need a "
                             f"convolutional feature map. {unit.capitalize()}s seen: "
                             + (", ".join(c.name for c in self.calls) or "none"))
        name, layer = self._lookup(self._requested_layer)
        found = next((c for c in self.calls if c.name == name), None)
        if found is None:
            raise ValueError(f"{unit} {name!r} is not used when the model runs. Candidates: "
                             + describe_candidates(self.calls))
        if found.output_shape is None or not (len(found.output_shape) == 4
                                             or is_token_shape(found.output_shape)):
            raise ValueError(f"{unit} {name!r} has output shape {found.output_shape}, not a spatial "
                             "feature map (4-D: a batch of channels × height × width) nor a token "
                             f"sequence (N, T, D); pick a convolutional or transformer {unit}. "
                             f"Candidates: {describe_candidates(self.calls)}")
        if found.calls > 1:
            raise ValueError(f"{unit} {name!r} runs {found.calls} times in one forward pass (a shared "
                             f"{unit}, e.g. one ReLU used twice); pick a {unit} that runs once, such as "
                             "the block that contains it")
        return name, layer

    def _leaves_after(self, name: str | None = None) -> list:
        """The leaf layers that ran after ``name`` (all leaves when None), in order."""
        start = 0
        if name is not None:
            start = [c.name for c in self.calls].index(name) + 1
        return [layer for layer in self._call_layers[start:] if self._is_leaf(layer)]

    def _is_leaf(self, layer: Any) -> bool:
        return True

    def _find_final(self) -> tuple[Any, str] | None:
        leaves = self._leaves_after()
        if not leaves:
            return None
        last = leaves[-1]
        role = self._role(last)
        if role == "probability":
            return (last, "input")
        if role == "dense+probability":
            return (last, "dense")
        return None

    # ----------------------------------------------------------------- shared: target objects

    #: the tensor operations of this framework that a bound target's scalar needs
    #: (:class:`~..targets.TargetOps`)
    target_ops: Any = None

    @property
    def bound(self) -> Any:
        """The :class:`~..targets.Bound` target being scored, or None (class scores)."""
        return self._bound

    def bind_target(self, target: Any, x: Any) -> Any:
        """Fix what ``target`` (a :class:`~..targets.Target`) explains for each image of ``x``.

        Parameters
        ----------
        target : a target object
        x : a batch from :meth:`validate`

        Returns
        -------
        (bound, outputs) : the :class:`~..targets.Bound` target and the model's output for ``x``
            ((N, ...) float32, a final softmax/sigmoid bypassed)

        Raises
        ------
        ValueError
            When the output's shape does not fit the target (naming the target that fits).
        """
        outputs = self.model_outputs(x)
        return target.bind(outputs, self.channels_axis), outputs

    @contextlib.contextmanager
    def scoring(self, bound: Any):
        """While active, every score the adapter computes (:meth:`capture`, :meth:`logits`,
        :meth:`masked_scorer`, :meth:`input_gradients`) is ``bound.virtual_scores``: (R, N), column
        j being image j's target scalar, so "class" j is image j's target
        (:meth:`~..targets.Bound.virtual_scores`). Undone on exit, also on error."""
        saved = self.num_classes
        self._bound, self.num_classes = bound, len(bound)
        try:
            yield
        finally:
            self._bound, self.num_classes = None, saved

    def _target_scores(self, outputs: Any) -> Any:
        """``outputs`` (the model's, final softmax bypassed) → the scores the methods see: the
        virtual scores of the bound target, or the class scores, checked to be (N, classes)."""
        if self._bound is not None:
            return self._bound.virtual_scores(self.target_ops, outputs)
        self.check_class_scores(tuple(outputs.shape))
        return outputs

    def check_class_scores(self, shape: tuple | None = None) -> None:
        """Raise when the model's output is not (N, classes) and no target object is bound, saying
        which target fits it."""
        from ..targets import suggest_target

        shape = self._output_shape if shape is None else shape
        if self._bound is None and len(shape) != 2:
            raise ValueError(f"class scores must be (N, classes); the model gives {tuple(shape)}. "
                             f"{suggest_target(len(shape), shape[-1] if shape else 0)} Or pass "
                             "score_fn=... to turn the output into class scores")

    @abc.abstractmethod
    def model_outputs(self, x: Any) -> np.ndarray:
        """The model's output for a validated batch, a final softmax/sigmoid bypassed, any shape
        ((N, classes), (N, C, h, w), (N, boxes, 4 + classes), ...): what a target binds to.

        Returns
        -------
        (N, ...) float32 ndarray
        """

    # ----------------------------------------------------------------- shared: CAM

    def cam_class_weights(self) -> np.ndarray:
        """The (K, classes) weights of the one dense layer that follows global average pooling.

        Raises ValueError, saying why and pointing to Grad-CAM, when the layers after the target are
        not  global average pooling → (Flatten / Dropout) → one dense layer (→ softmax).
        """
        self.require_layer()
        after = self._leaves_after(self.layer_name)
        core = [layer for layer in after if self._role(layer) != "ignore"]
        if core and self._role(core[-1]) == "probability":
            core = core[:-1]
        if (len(core) == 2 and self._role(core[0]) == "gap"
                and self._role(core[1]) in ("dense", "dense+probability")):
            return self._dense_kernel(core[1])
        kinds = " → ".join(type(layer).__name__ for layer in after) or "nothing"
        gap, dense = self.cam_words
        raise ValueError(
            f"CAM needs the architecture  feature maps → {gap} → one {dense}, "
            "because its weights are that layer's weights. After "
            f"{self.layer_name!r} this model runs: {kinds}. Use method='gradcam' instead: Grad-CAM "
            "works on any architecture and gives the same map as CAM on GAP networks.")
def guided_backprop_message(unit: str) -> str:
    """Guided Backprop on a model without ReLU layers (the same advice in both frameworks)."""
    return (f"Guided Backprop changes the backward pass of ReLU {unit}s, and this model has none "
            f"(a ReLU called as a function inside another {unit} cannot be seen): use "
            "method='saliency' or 'integrated_gradients', or build the model with ReLU "
            f"{unit}s")


def attention_message(unit: str) -> str:
    """Why attention weights could not be captured, and what to do (both frameworks)."""
    kind = "keras.layers.MultiHeadAttention" if unit == "layer" else "torch.nn.MultiheadAttention"
    return (f"no attention weights could be captured: this model has no {kind} {unit} and no "
            f"{unit} that sets an attention_weights attribute ((N, heads, T, T) softmax weights) "
            "in its call. Attention computed inside a fused kernel (F.scaled_dot_product_attention, "
            "timm's fused_attn) never forms the weights: store them in the attention "
            f"{unit} as self.attention_weights, or use a gradient method such as method='gradcam'")


def exposed_attention_weights(layer: Any, name: str, unit: str) -> Any:
    """The ``attention_weights`` a layer/module set in its call, read right after that call.

    ``name`` names the layer in the error; ``unit`` is ``"layer"`` (Keras, read after ``call()``)
    or ``"module"`` (torch, read after ``forward()``). The same rule and message in both frameworks.

    Raises
    ------
    ValueError
        When the attribute exists but is still None after the call, saying what to set.
    """
    weights = getattr(layer, "attention_weights", None)
    if weights is None:
        method = "call" if unit == "layer" else "forward"
        raise ValueError(f"{unit} {name} has an attention_weights attribute but it is None after "
                         f"its {method}: set it to the (N, heads, T, T) softmax weights in "
                         f"{method}()")
    return weights
