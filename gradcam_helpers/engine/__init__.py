"""The explanation engine: methods, adapters and the pipeline that joins them.

====================== ===============================================================================
module                 what is in it
====================== ===============================================================================
:mod:`.registry`       the method contract (:class:`~.registry.Method`, options, drivers, kinds) and
                       the registry (``register``, ``get_method``, ``method_names``, ``METHODS``)
:mod:`.cam`            the CAM family's math on (activations, gradients) arrays, its drivers and
                       registrations (CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM,
                       Eigen-CAM, Score-CAM)
:mod:`.attributions`   the pixel methods' math on input gradients, drivers and registrations
                       (saliency, SmoothGrad, Integrated Gradients, Guided Backprop, Guided Grad-CAM)
:mod:`.occlusion`      occlusion sensitivity: forward passes of the image with one square hidden
                       (its math, driver and registration)
:mod:`.attention`      attention maps of transformers (raw last-layer attention, rollout): math,
                       driver, registrations
:mod:`.tokens`         a transformer's token sequence (N, T, D) as its patch grid (N, h, w, D)
:mod:`.maps`           resize, normalise, the one softmax, the one tensor → NumPy, the maps check
:mod:`.targets`        which scalar is explained for each image
:mod:`.progress`       progress bars that read well live and in a saved notebook
:mod:`.adapters`       one adapter per framework behind one contract (:mod:`.adapters.base`)
:mod:`.pipeline`       ``explain()``, :class:`~.pipeline.Explainer`, :class:`~.pipeline.Explanation`
====================== ===============================================================================

Importing the engine registers its methods: the modules of methods are imported here, once.
NumPy only; frameworks are imported by the adapters, lazily.
"""
# registration order is the order of METHODS (the CAM family first, then the pixel methods)
from . import cam  # noqa: F401

# isort: split
from . import attributions  # noqa: F401

# isort: split
from . import (
    attention,  # noqa: F401
    occlusion,  # noqa: F401
)
