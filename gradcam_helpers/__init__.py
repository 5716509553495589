"""gradcam_helpers — the shared helper package of the Grad-CAM course.

Four layers, each importing only those below it (``tests/test_layers.py`` checks it):

- :mod:`.engine` — the explanation engine: methods, adapters for Keras 3 and PyTorch, the pipeline;
- :mod:`.evaluation` — metrics of maps (localisation, faithfulness, ROAD, randomisation) and the
  shortcut diagnosis;
- :mod:`.course` — what the lessons need: data, models, exercises, notebook setup, figures;
- :mod:`.widgets` and :mod:`.audit` — the applications: the live explorer, the dataset audit.

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
    "explain": "gradcam_helpers.engine.pipeline",
    "Explainer": "gradcam_helpers.engine.pipeline",
    "Explanation": "gradcam_helpers.engine.pipeline",
    "METHODS": "gradcam_helpers.engine.registry",
    "ClassLogit": "gradcam_helpers.engine.targets",
    "BinaryLogit": "gradcam_helpers.engine.targets",
    "LabelLogit": "gradcam_helpers.engine.targets",
    "SegmentationScore": "gradcam_helpers.engine.targets",
    "BoxScore": "gradcam_helpers.engine.targets",
    "pointing_game": "gradcam_helpers.evaluation.localisation",
    "energy_inside": "gradcam_helpers.evaluation.localisation",
    "setup_notebook": "gradcam_helpers.course.notebook",
    "overlay": "gradcam_helpers.course.overlay",
    "colorize": "gradcam_helpers.course.overlay",
    "show_explanations": "gradcam_helpers.course.overlay",
    "load_mnist": "gradcam_helpers.course.mnist",
    "make_localization_set": "gradcam_helpers.course.mnist",
    "make_two_digit_set": "gradcam_helpers.course.mnist",
    "explore": "gradcam_helpers.widgets",
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
