"""The container every chest X-ray source returns: :class:`XrayData`, and the class names.

Images are ``(N, 1, H, W)`` float32 in [0, 1] (channels first); labels int64, 0 = NORMAL,
1 = PNEUMONIA; masks ``(N, H, W)`` bool or None (real data has none).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

CLASS_NAMES: tuple[str, str] = ("NORMAL", "PNEUMONIA")


@dataclass
class XrayData:
    """A set of chest X-rays with labels and, for synthetic data, ground truth.

    Attributes
    ----------
    images : (N, 1, H, W) float32 in [0, 1]
    labels : (N,) int64, 0 = NORMAL, 1 = PNEUMONIA
    lung_masks : (N, H, W) bool or None
        Both lung fields (the heart shadow and everything below the diaphragm excluded).
    lesion_masks : (N, H, W) bool or None
        The opacities (all False for NORMAL images).
    has_tag : (N,) bool or None
        Whether the shortcut tag was burned into the image.
    tag_masks : (N, H, W) bool or None
        Where the tag is (all False where there is none).
    class_names : ("NORMAL", "PNEUMONIA")
    source : str
        "synthetic", "kaggle", "medmnist" or "dicom".
    info : dict
        How the set was made (generator settings, paths), for the record.
    """

    images: np.ndarray
    labels: np.ndarray
    lung_masks: np.ndarray | None = None
    lesion_masks: np.ndarray | None = None
    has_tag: np.ndarray | None = None
    tag_masks: np.ndarray | None = None
    class_names: tuple[str, ...] = CLASS_NAMES
    source: str = "synthetic"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1] != 1:
            raise ValueError(f"images must be (N, 1, H, W); got {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return tuple(self.images.shape[2:])

    @property
    def images_hw(self) -> np.ndarray:
        """(N, H, W) view of the images (for plotting and metrics)."""
        return self.images[:, 0]

    @property
    def images_nhwc(self) -> np.ndarray:
        """(N, H, W, 1) view of the images (the Keras layout)."""
        return self.images.transpose(0, 2, 3, 1)

    def subset(self, index: Sequence[int] | np.ndarray) -> "XrayData":
        """The images at ``index`` (integers or a boolean mask), with their masks and labels."""
        index = np.asarray(index)

        def pick(a):
            return None if a is None else a[index]

        return replace(self, images=self.images[index], labels=self.labels[index],
                       lung_masks=pick(self.lung_masks), lesion_masks=pick(self.lesion_masks),
                       has_tag=pick(self.has_tag), tag_masks=pick(self.tag_masks))

    def fingerprint(self) -> str:
        """A short hash of images and labels: part of a cached model's key, so a model is retrained
        whenever its training data changes."""
        digest = hashlib.sha256()
        digest.update(str(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images, dtype=np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        parts = ", ".join(f"{name}={c}" for name, c in zip(self.class_names, counts))
        tag = "" if self.has_tag is None else f", tagged={int(self.has_tag.sum())}"
        return (f"XrayData(source={self.source!r}, n={len(self)}, size={self.size}, {parts}{tag})")
