"""gradcam_helpers — the shared helper package of the Grad-CAM course.

Importing the package is cheap: neither TensorFlow nor torch is imported until a function that
needs one of them is called (the adapters import them lazily).

The names most lessons use are importable from the top level::

    from gradcam_helpers import setup_notebook, explain, Explainer
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562) to keep import time low.
_LAZY = {
    "setup_notebook": "gradcam_helpers.notebook",
    "explain": "gradcam_helpers.api",
    "Explainer": "gradcam_helpers.api",
    "Explanation": "gradcam_helpers.api",
    "METHODS": "gradcam_helpers.methods",
    "overlay": "gradcam_helpers.overlay",
    "colorize": "gradcam_helpers.overlay",
    "show_explanations": "gradcam_helpers.overlay",
    "load_mnist": "gradcam_helpers.mnist",
    "make_localization_set": "gradcam_helpers.mnist",
    "make_two_digit_set": "gradcam_helpers.mnist",
    "explore": "gradcam_helpers.widgets",
    "pointing_game": "gradcam_helpers.metrics",
    "energy_inside": "gradcam_helpers.metrics",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcam_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
