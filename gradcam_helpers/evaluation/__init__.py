"""Metrics for explanations, by family (as Quantus groups them).

- :mod:`~gradcam_helpers.evaluation.robustness` — does the map stay put when the input moves a
  little? (max-sensitivity)
- :mod:`~gradcam_helpers.evaluation.complexity` — how concentrated is the map? (sparseness as a
  Gini index, complexity as an entropy)

Every metric here is framework-neutral: it takes maps as NumPy arrays and, where the model must be
asked again, a callable ``images -> maps`` (for example ``lambda x: explain(model, x, ...).maps``),
so the same code scores Keras and PyTorch models.
"""
