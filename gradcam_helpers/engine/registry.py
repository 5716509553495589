"""The method contract: what a method is, how the pipeline runs it, and the registry of methods.

A :class:`Method` carries everything the pipeline needs to run it, so the pipeline never asks a
method's name:

- ``name`` (and ``aliases``) — how users ask for it; case, hyphens, underscores and spaces ignored;
- ``kind`` — what its raw result is, which fixes how ``Explanation.maps`` are made from it
  (:data:`KINDS`): ``"cam"``, a non-negative map on a grid (a layer's feature map, a transformer's
  patch grid, an occlusion grid), upsampled to the image and divided by its maximum; ``"pixel"``, a
  signed attribution per input element ``(N, H, W, C)``, reduced by :func:`~.maps.attribution_maps`;
- ``fn`` — the method's math, a plain function of NumPy arrays (documented and tested on its own);
- ``run`` — its *driver*: ``run(method, job, options) -> Raw``. The driver asks the model's adapter
  (``job.adapter``, the contract in :mod:`.adapters.base`) for what the method needs, calls ``fn``
  and returns the raw result with the logits and the classes explained. One driver serves every
  method that needs the same thing: all gradient CAMs share :func:`~.cam.with_gradients`. The
  driver's ``needs`` attribute (set by :func:`driver`) names that thing: ``"gradients"``,
  ``"activations"``, ``"cam_weights"``, ``"scores"`` (forward passes of masked inputs),
  ``"input_gradients"``;
- ``options`` — the keyword arguments of one call, each an :class:`Option` with its default and its
  validation (a bad value or an unknown name raises, naming the valid ones);
- ``paper`` — the reference, for the generated list of methods in ``explain()``'s docstring.

Adding a method is one function and one :func:`register` call in one source file, plus its tests:

- a method of an existing family (a new gradient CAM): its function of ``(A, G)`` in :mod:`.cam`
  and ``register(Method(name, "cam", fn, with_gradients, paper))`` beside it;
- a method that needs something new from the model — forward passes of perturbed inputs
  (occlusion), attention weights (raw attention, rollout) — brings its own driver, written in the
  same file with ``@driver(needs=...)``; it uses what the adapter contract offers (``logits`` for
  forward passes; a new capability such as captured attention goes on the adapter contract, not in
  the pipeline). A new file of methods is imported once in ``engine/__init__.py``, which is what
  registers its methods.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .maps import attribution_maps, upsampled_maps

if TYPE_CHECKING:  # pragma: no cover
    from .adapters.base import Adapter


# ------------------------------------------------------------------------------------- options


def _anything(value: Any) -> bool:
    return True


@dataclass(frozen=True)
class Option:
    """One keyword argument of a method's call.

    Attributes
    ----------
    name : the keyword
    default : its value when the caller does not give one
    doc : what it means (one line, for the generated docstring of ``explain()``)
    valid : ``valid(value) -> bool``; a False raises ``ValueError`` quoting ``expected``
    expected : what a valid value is, e.g. ``"an int >= 1"``
    """

    name: str
    default: Any
    doc: str = ""
    valid: Callable[[Any], bool] = field(default=_anything, compare=False, repr=False)
    expected: str = ""

    def check(self, value: Any) -> Any:
        """``value`` if it is valid, else ``ValueError`` naming the option and what it must be."""
        try:
            ok = bool(self.valid(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{self.name} must be {self.expected}; got {value!r}")
        return value


def positive_int(name: str, default: Any, doc: str, *, optional: bool = False) -> Option:
    """An option that is an int >= 1 (or None, when ``optional``)."""
    def valid(v: Any) -> bool:
        return bool((optional and v is None) or (isinstance(v, (int, np.integer))
                                                  and not isinstance(v, bool) and v >= 1))
    return Option(name, default, doc, valid, ("None or " if optional else "") + "an int >= 1")


def one_of(name: str, choices: tuple, doc: str) -> Option:
    """An option that is one of ``choices`` (the first is the default)."""
    return Option(name, choices[0], doc, lambda v: v in choices,
                  "one of " + ", ".join(repr(c) for c in choices))


# ------------------------------------------------------------------------------------- drivers


@dataclass
class Job:
    """One call of a method on a batch of images: what a driver may use.

    Attributes
    ----------
    adapter : the model's adapter (:class:`~.adapters.base.Adapter`): every access to the model
    images : the validated batch, in the model's own layout (Keras (N, H, W, C) array, PyTorch
        (N, C, H, W) tensor)
    target : the user's target for these images: None, an int, or (N,) class indices (count checked)
    batch_size : images (or perturbed copies) per forward pass
    progress : show a progress bar for slow work (None: only when it is slow)
    explain : ``explain(method, target=..., **options) -> Explanation`` — another method on the same
        images (Guided Grad-CAM needs Grad-CAM's maps)
    """

    adapter: "Adapter"
    images: Any
    target: Any
    batch_size: int
    progress: bool | None
    explain: Callable[..., Any]


@dataclass
class Raw:
    """What a driver returns for a batch.

    Attributes
    ----------
    raw : kind "cam": (N, h, w) float >= 0 on the method's grid; kind "pixel": (N, H, W, C) signed
    logits : (N, classes) float32 class scores before softmax
    targets : (N,) int64 classes explained
    layer : where the map comes from (a layer's name, "input")
    extras : further results (arrays with one row per image are concatenated across batches)
    """

    raw: np.ndarray
    logits: np.ndarray
    targets: np.ndarray
    layer: str
    extras: dict = field(default_factory=dict)


Driver = Callable[["Method", Job, dict], Raw]


def driver(needs: str) -> Callable[[Driver], Driver]:
    """Mark a function as a driver that needs ``needs`` from the adapter (see the module docstring)."""
    def mark(fn: Driver) -> Driver:
        fn.needs = needs  # type: ignore[attr-defined]
        return fn
    return mark


@dataclass(frozen=True)
class Kind:
    """What a method's raw result is, and how ``Explanation.maps`` are made from it.

    Attributes
    ----------
    name : "cam" or "pixel"
    to_maps : ``to_maps(raw, (H, W)) -> (N, H, W) float32 in [0, 1]``
    batched : the pipeline runs the driver on chunks of ``batch_size`` images (False: on all images
        at once; the driver batches its own passes, e.g. SmoothGrad's noisy copies)
    """

    name: str
    to_maps: Callable[[np.ndarray, tuple[int, int]], np.ndarray]
    batched: bool


KINDS: dict[str, Kind] = {
    "cam": Kind("cam", upsampled_maps, batched=True),
    "pixel": Kind("pixel", lambda raw, size: attribution_maps(raw), batched=False),
}


# ------------------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """A method as the pipeline sees it (see the module docstring).

    Attributes
    ----------
    name : str
    kind : "cam" or "pixel" (a key of :data:`KINDS`)
    fn : the math, a function of NumPy arrays
    run : the driver, ``run(method, job, options) -> Raw``; ``run.needs`` says what it needs
    paper : the reference
    options : the call's options (:class:`Option`)
    aliases : other accepted spellings
    """

    name: str
    kind: str
    fn: Callable[..., Any] = field(compare=False, repr=False)
    run: Driver = field(compare=False, repr=False)
    paper: str = ""
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def needs(self) -> str:
        """What the method needs from the model (its driver's ``needs``)."""
        return str(getattr(self.run, "needs", ""))

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def bind(self, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        """The options of one call: each option's default, overridden by ``defaults`` (an
        Explainer's, for the options this method has) and then by ``given`` (the call's).

        Raises
        ------
        TypeError
            For a name in ``given`` that is not an option of this method (the message lists them).
        ValueError
            For an invalid value.
        """
        unknown = sorted(set(given) - set(self.option_names))
        if unknown:
            listed = (f"; its options are: {', '.join(self.option_names)}" if self.options
                      else "; it takes no options")
            raise TypeError(f"method {self.name!r} takes no option(s) {', '.join(unknown)}{listed}")
        bound = {}
        for option in self.options:
            value = given.get(option.name, defaults.get(option.name, option.default))
            bound[option.name] = option.check(value)
        return bound


METHODS: dict[str, Method] = {}
_INDEX: dict[str, str] = {}


def _normalise(name: str) -> str:
    """The form :func:`get_method` compares: lower case, without hyphens, underscores or spaces."""
    return "".join(ch for ch in str(name).lower() if ch not in "-_ ")


def register(method: Method) -> Method:
    """Add a method to the registry; returns it.

    Everything that lists or runs methods — :func:`get_method`, the pipeline, ``explain()``'s
    docstring, the widgets, the audit, the tests and the benchmarks — reads :data:`METHODS`.

    Raises
    ------
    ValueError
        When its name or an alias is taken, or it lacks a function, a driver or a known kind.
    """
    keys = {_normalise(n) for n in (method.name, *method.aliases)}
    taken = [k for k in keys if k in _INDEX and _INDEX[k] != method.name]
    if taken:
        raise ValueError(f"method name(s) {taken} already registered")
    if method.fn is None or method.run is None:
        raise ValueError(f"method {method.name!r} has no function or no driver")
    if method.kind not in KINDS:
        raise ValueError(f"method {method.name!r} has kind {method.kind!r}; kinds are: {', '.join(KINDS)}")
    METHODS[method.name] = method
    for key in keys:
        _INDEX[key] = method.name
    return method


def unregister(name: str) -> None:
    """Remove a registered method (and its aliases); unknown names are ignored."""
    method = METHODS.pop(name, None)
    if method is not None:
        for key in {_normalise(n) for n in (method.name, *method.aliases)}:
            _INDEX.pop(key, None)


def method_names(*, needs: str | None = None, kind: str | None = None) -> list[str]:
    """The registered method names, in registration order, optionally only one ``needs``/``kind``."""
    return [m.name for m in METHODS.values()
            if (needs is None or m.needs == needs) and (kind is None or m.kind == kind)]


def get_method(name: str) -> Method:
    """Look a method up by name; case, hyphens, underscores and spaces are ignored, so "Grad-CAM++",
    "gradcam++" and "grad_cam++" are the same. The error lists the valid names."""
    key = _INDEX.get(_normalise(name))
    if key is None:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[key]


def options_named(name: str) -> list[Option]:
    """Every registered method's option called ``name`` (an Explainer's default applies to each)."""
    return [o for m in METHODS.values() for o in m.options if o.name == name]


def all_option_names() -> list[str]:
    """The names of every registered method's options, sorted."""
    return sorted({o.name for m in METHODS.values() for o in m.options})


def describe_methods(methods: Iterable[Method] | None = None, indent: str = "        ") -> str:
    """The methods and their options as docstring lines (``explain()``'s list is made by this)."""
    lines = []
    for m in (METHODS.values() if methods is None else methods):
        lines.append(f'{indent}- "{m.name}" ({m.kind}; needs {m.needs}) — {m.paper}')
        if m.options:  # a nested list: reStructuredText wants it set off by blank lines
            lines.append("")
            for o in m.options:
                lines += textwrap.wrap(f"``{o.name}`` (default {o.default!r}): {o.doc}", width=100,
                                       initial_indent=indent + "  - ", subsequent_indent=indent + "    ")
            lines.append("")
    return "\n".join(lines).rstrip("\n")
