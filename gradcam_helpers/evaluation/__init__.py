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
:mod:`.diagnose`            the four shortcut patterns of a set of maps
=========================== =======================================================================

The metrics take NumPy maps and images (tensors are converted) and reach a model only through a
``score`` callable or the engine's adapters, so each works for Keras and PyTorch alike. Every public
name is also importable from here: ``from gradcam_helpers import evaluation`` then
``evaluation.deletion(...)``.
"""
from __future__ import annotations

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

__all__ = ["DEFAULT_THRESHOLDS", "PATTERNS", "ConfidenceChange", "Curve", "Diagnosis", "RoadResult",
           "SanityCurve", "ScoreFn", "boxes_to_masks", "confidence_change", "corner_mask",
           "deletion", "diagnose_maps", "energy_inside", "insertion", "map_ssim", "model_scores",
           "noisy_linear_imputation", "pointing_game", "rank_correlation", "road", "sanity_check"]
