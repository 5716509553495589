"""How an audit worker gets its model: a small picklable recipe, loaded once per worker.

A worker (this process, or a Ray actor on another machine) receives a :class:`ModelSpec`, not the
model: a recipe of a few strings travels to a cluster cheaply and each worker loads the weights
itself, once, from a path every worker can read.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..engine.adapters import adapter_class


def _resolve(factory: str | Callable) -> Callable:
    if callable(factory):
        return factory
    module, sep, name = str(factory).partition(":")
    if not sep or not module or not name:
        raise ValueError(f"factory must be 'package.module:function'; got {factory!r}")
    try:
        obj = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"cannot import {module!r} for the model factory {factory!r} ({err}); "
                         "is it on PYTHONPATH of every worker?") from err
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module!r} has no {name!r} (factory {factory!r})")
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class ModelSpec:
    """A model to audit, as a recipe a worker can load.

    Use :meth:`torch` (a checkpoint and the function that builds the network) or :meth:`keras`
    (a ``.keras`` file).

    Attributes
    ----------
    framework : "torch" or "keras"
    path : the checkpoint or ``.keras`` file
    factory : ``"module:function"`` or a callable building the ``torch.nn.Module`` (torch only)
    factory_kwargs : keyword arguments of the factory
    """

    framework: str
    path: str
    factory: str | Callable | None = None
    factory_kwargs: dict = field(default_factory=dict)

    @classmethod
    def torch(cls, checkpoint: str | Path, factory: str | Callable,
              **factory_kwargs: Any) -> "ModelSpec":
        """A PyTorch model: ``factory(**factory_kwargs)`` then ``load_state_dict`` from
        ``checkpoint`` (a ``state_dict``, or a dict holding one under ``"state_dict"`` or
        ``"model_state_dict"``, as ``torch.save`` wrote it)."""
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        _resolve(factory)  # fail now, not on a worker
        return cls("torch", str(path.resolve()), factory, dict(factory_kwargs))

    @classmethod
    def keras(cls, path: str | Path) -> "ModelSpec":
        """A Keras 3 model saved with ``model.save("model.keras")``."""
        path = Path(path).expanduser()
        if path.suffix != ".keras":
            raise ValueError(f"{path} is not a .keras file; save the model with "
                             "model.save('name.keras')")
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        return cls("keras", str(path.resolve()))

    @classmethod
    def for_xray_resnet(cls, model) -> "ModelSpec":
        """The spec of a model from :func:`~gradcam_helpers.course.models.torch_resnet.train_xray_resnet`
        (its cached checkpoint and its training config)."""
        path = getattr(model, "cache_path", None)
        cfg = getattr(model, "train_config", None)
        if path is None or cfg is None:
            raise ValueError("the model has no cache_path/train_config: train it with "
                             "train_xray_resnet(..., cache=True), or save a state_dict yourself "
                             "and use ModelSpec.torch(checkpoint, factory)")
        kwargs = dict(arch=cfg["arch"], num_classes=model.fc.out_features,
                      in_channels=model.conv1.in_channels, width=cfg["width"],
                      stem_stride=cfg["stem_stride"], stem_pool=cfg["stem_pool"],
                      stage_strides=list(cfg["stage_strides"]),
                      replace_stride_with_dilation=list(cfg["replace_stride_with_dilation"]),
                      zero_init_residual=cfg["zero_init_residual"])
        return cls.torch(path, "gradcam_helpers.course.models.torch_resnet:build_resnet", **kwargs)

    def describe(self) -> dict:
        """The spec as JSON-friendly values (written into the table's metadata)."""
        factory = self.factory
        if callable(factory):
            factory = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
        return {"framework": self.framework, "path": self.path, "factory": factory,
                "factory_kwargs": json.loads(json.dumps(self.factory_kwargs, default=str))}

    def load(self, device: str | None = None) -> Any:
        """Build the model, ready to explain, through its framework's adapter
        (:meth:`~gradcam_helpers.engine.adapters.base.Adapter.load_model`). ``device``: where a
        PyTorch model runs, default the CPU."""
        build = None
        if self.factory is not None:
            factory, kwargs = _resolve(self.factory), self.factory_kwargs

            def build() -> Any:
                return factory(**kwargs)
        try:
            return adapter_class(self.framework).load_model(self.path, build=build, device=device)
        except ValueError as err:
            raise ValueError(f"{err} (factory {self.factory!r} with {self.factory_kwargs})") from err
