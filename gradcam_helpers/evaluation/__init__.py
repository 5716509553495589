"""Metrics of saliency maps, by family, and the shortcut-learning diagnosis.

=========================== =======================================================================
module                      what is in it
=========================== =======================================================================
:mod:`.localisation`        against ground truth: pointing game, energy inside a region, boxes to
                            masks
:mod:`.faithfulness`        against the model: deletion / insertion (RISE), Average Drop / Increase
                            in Confidence, and ``model_scores`` (a model as a score callable)
:mod:`.road`                ROAD: removal with noisy linear imputation (MoRF / LeRF)
:mod:`.randomisation`       the cascading-randomisation sanity check, rank correlation, SSIM
:mod:`.robustness`          does the map stay put when the input moves a little? (max-sensitivity,
                            Yeh et al. 2019, as Quantus estimates it)
:mod:`.complexity`          how concentrated is the map? (sparseness as a Gini index, complexity as
                            an entropy)
:mod:`.diagnose`            the four shortcut patterns of a set of maps
:mod:`.aggregate`           local maps to a global picture: the mean map of each class
=========================== =======================================================================

The metrics take NumPy maps and images (tensors are converted) and reach a model only through a
``score`` callable, the engine's adapters or (robustness) an ``images -> maps`` callable, so each works for Keras and PyTorch alike. Every public
name is also importable from here: ``from gradcam_helpers import evaluation`` then
``evaluation.deletion(...)``.
"""
from __future__ import annotations

from .aggregate import ClassMeanMaps, class_mean_maps
from .complexity import complexity, sparseness
from .diagnose import DEFAULT_THRESHOLDS, PATTERNS, Diagnosis, corner_mask, diagnose_maps
from .faithfulness import (
                           ConfidenceChange,
                           Curve,
                           ScoreFn,
                           confidence_change,
                           deletion,
                           insertion,
                           model_scores,
)
from .localisation import boxes_to_masks, energy_inside, pointing_game
from .randomisation import SanityCurve, map_ssim, rank_correlation, sanity_check
from .road import RoadResult, noisy_linear_imputation, road
from .robustness import Sensitivity, max_sensitivity

__all__ = ["DEFAULT_THRESHOLDS", "PATTERNS", "ClassMeanMaps", "ConfidenceChange", "Curve", "Diagnosis", "RoadResult",
           "SanityCurve", "ScoreFn", "Sensitivity", "boxes_to_masks", "class_mean_maps", "complexity", "confidence_change",
           "corner_mask", "deletion", "diagnose_maps", "energy_inside", "insertion", "map_ssim",
           "max_sensitivity", "model_scores", "noisy_linear_imputation", "pointing_game",
           "rank_correlation", "road", "sanity_check", "sparseness"]
