"""Model factories for tests/test_audit.py: a small ResNet, and one whose process dies once.

Kept in their own module so that subprocesses and Ray workers can import them by name
(``audit_factories:crash_once_resnet``) with ``tests/`` on ``PYTHONPATH``.
"""
from __future__ import annotations

import os

from gradcam_helpers.course.models.torch_resnet import build_resnet

#: A ResNet-18 small enough for tests (48 px inputs, 12 × 12 layer4).
TINY = dict(arch="resnet18", num_classes=2, in_channels=1, width=4, stem_stride=2,
            stem_pool=False, stage_strides=[1, 2, 1, 1])


def crash_once_resnet(marker: str, after: int = 0, **kwargs):
    """The ResNet of ``build_resnet(**kwargs)``, whose process exits abruptly (``os._exit``,
    like a SIGKILL: no cleanup, no ``finally``) at its forward call number ``after + 1`` — once
    per ``marker`` file: the process that creates the marker dies, later ones run normally."""
    model = build_resnet(**kwargs)
    calls = {"n": 0}

    def hook(module, inputs):
        calls["n"] += 1
        if calls["n"] > after and not os.path.exists(marker):
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return None
            os.close(fd)
            os._exit(1)
        return None

    model.register_forward_pre_hook(hook)
    return model
