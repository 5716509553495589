"""Audit a whole image folder for shortcut learning, in this process or on a Ray cluster.

One call (or ``python -m gradcam_helpers.audit``) explains every image of a folder with a CAM
method, measures the four shortcut patterns of :mod:`gradcam_helpers.evaluation.diagnose` on each map, and
writes one Parquet row per image; :func:`write_report` summarises the table. Runs stream (memory
does not grow with the folder), survive broken images (an error row) and resume where a stopped
run left off. Ray is imported only for ``engine="ray"``.

::

    from gradcam_helpers.audit import ModelSpec, audit, write_report
    spec = ModelSpec.torch("model.pt", "gradcam_helpers.course.models.torch_resnet:build_resnet",
                           arch="resnet18", num_classes=2, in_channels=1)
    run = audit("xrays/", spec, "audit.parquet", size=96, layer="layer4[-1]")
    write_report(run.path, "audit_report")
"""
from __future__ import annotations

from .dataset import find_images
from .model import ModelSpec
from .report import summarize, write_report
from .run import AuditRun, audit
from .store import read_settings
from .worker import THUMB_SIZE, AuditSettings, AuditWorker, schema

__all__ = ["AuditRun", "AuditSettings", "AuditWorker", "ModelSpec", "THUMB_SIZE", "audit",
           "find_images", "read_settings", "schema", "summarize", "write_report"]
