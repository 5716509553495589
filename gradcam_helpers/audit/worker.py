"""The work on one batch of images, the same in this process and on a Ray worker.

:class:`AuditWorker` follows Ray Data's pattern for batch inference: the model is loaded once in
``__init__`` and every ``__call__`` turns a batch of rows (``path``, ``label``, ``folder``) into a
batch of result rows (:data:`SCHEMA`). The in-process engine calls it in a plain loop; the Ray
engine hands the class to ``Dataset.map_batches``, which builds one per worker.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow

from ..course.xray import CLASS_NAMES
from ..engine.pipeline import Explainer
from ..engine.registry import get_method
from ..evaluation.diagnose import DEFAULT_THRESHOLDS, PATTERNS, diagnose_maps
from ..evaluation.localisation import energy_inside, pointing_game
from .dataset import find_mask, read_image, read_mask
from .model import ModelSpec

#: Side of the stored thumbnail of each map (``thumb`` holds THUMB_SIZE² uint8 values).
THUMB_SIZE = 16

_MEASURES = ("corner_energy", "flatness", "outside_roi", "side_balance")


def _schema():
    import pyarrow as pa

    fields = [("path", pa.string()), ("folder", pa.string()), ("label", pa.int64()),
              ("pred", pa.int64()), ("score", pa.float32()), ("target", pa.int64()),
              ("target_logit", pa.float32())]
    fields += [(m, pa.float64()) for m in _MEASURES]
    fields += [("peak_in_corner", pa.bool_()), ("empty", pa.bool_())]
    fields += [(f"flag_{p}", pa.bool_()) for p in PATTERNS]
    fields += [("energy_in_mask", pa.float64()), ("pointing_hit", pa.bool_()),
               ("thumb", pa.list_(pa.uint8(), THUMB_SIZE * THUMB_SIZE)), ("error", pa.string())]
    return pa.schema(fields)


def schema():
    """The result table's schema (pyarrow). One row per image:

    ``path`` (relative to the image folder), ``folder`` (without the class folder), ``label``
    (null without a class folder), ``pred`` (top class), ``score`` (its softmax probability),
    ``target`` (the class explained), ``target_logit`` (its score before softmax), the measures of
    :func:`~gradcam_helpers.evaluation.diagnose.diagnose_maps` (``corner_energy``, ``flatness``,
    ``outside_roi`` — null without a mask —, ``side_balance``, ``peak_in_corner``, ``empty``), the
    flags ``flag_corner``, ``flag_uniform``, ``flag_outside_roi``, ``flag_one_side``,
    ``energy_in_mask`` and ``pointing_hit`` against the mask (null without one), ``thumb`` (the map
    at 16 × 16 as uint8 0–255, row-major) and ``error`` (null when the image was audited; else why
    not, and every other result column is null).
    """
    return _schema()


@dataclass(frozen=True)
class AuditSettings:
    """Everything a worker needs; small and picklable (it travels to Ray workers).

    Attributes
    ----------
    model : ModelSpec
    root : image folder (absolute)
    size : images are resized to ``size × size``
    method, layer, target : as in :func:`~gradcam_helpers.explain` (layer as a name/path;
        target None = each image's top class)
    channels : 1 (grayscale) or 3 (the gray image repeated as RGB)
    mean, std : the input is ``(image - mean) / std`` (image in [0, 1])
    masks : folder of masks mirroring the image folder, or None
    thresholds : overrides of :data:`~gradcam_helpers.evaluation.diagnose.DEFAULT_THRESHOLDS`
    batch_size : images per forward pass inside a worker
    device : torch device of the workers ("cpu", "cuda")
    class_names : class folder names (index = label)
    """

    model: ModelSpec
    root: str
    size: int
    method: str = "gradcam"
    layer: str | None = None
    target: int | None = None
    channels: int = 1
    mean: float = 0.0
    std: float = 1.0
    masks: str | None = None
    thresholds: dict = field(default_factory=dict)
    batch_size: int = 32
    device: str = "cpu"
    class_names: tuple = CLASS_NAMES

    def __post_init__(self) -> None:
        get_method(self.method)  # unknown method: the engine's own clear error, before any work
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels; got {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {self.channels}")
        if not self.std > 0:
            raise ValueError(f"std must be positive; got {self.std}")
        if self.layer is not None and not isinstance(self.layer, str):
            raise TypeError("layer must be a name or dotted path (a string) so that every worker "
                            "can find it in its own copy of the model")
        unknown = sorted(set(self.thresholds) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise KeyError(f"unknown thresholds {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}")

    def describe(self) -> dict:
        """JSON-friendly settings (written into the table's metadata; a resumed run must match)."""
        d = asdict(self)
        d["model"] = self.model.describe()
        d["class_names"] = list(self.class_names)
        d.pop("batch_size")   # none of these changes a result
        d.pop("device")
        return d


def thumbnails(maps: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """Shrink maps ``(N, H, W)`` in [0, 1] to ``(N, size, size)`` uint8 0–255 (area average)."""
    from PIL import Image

    out = np.zeros((len(maps), size, size), dtype=np.uint8)
    for k, m in enumerate(maps):
        small = Image.fromarray(np.asarray(m, dtype=np.float32), mode="F").resize(
            (size, size), Image.Resampling.BOX)
        out[k] = np.clip(np.round(np.asarray(small) * 255), 0, 255).astype(np.uint8)
    return out


class AuditWorker:
    """Explain and measure one batch of images; the model is loaded once, in ``__init__``.

    Parameters
    ----------
    settings : AuditSettings
        The model, the image folder and every other setting of the audit.

    Notes
    -----
    Calling it with a batch — a dict (or pyarrow table) with ``path``, ``label``, ``folder`` —
    returns a ``pyarrow.Table`` with :func:`schema`, one row per input row in the same order. An
    image that cannot be read gives a row whose ``error`` says why; an error of the model itself
    (a wrong layer name, a wrong number of channels) is raised, since it would fail every image.
    """

    def __init__(self, settings: AuditSettings):
        self.settings = settings
        self.model = settings.model.load(settings.device)
        self.explainer = Explainer(self.model, settings.layer, batch_size=settings.batch_size)
        self.schema = schema()

    @property
    def layer(self) -> str:
        """The target layer's name (known after the first batch)."""
        return self.explainer.layer

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        s = self.settings
        x = np.repeat(((images - s.mean) / s.std)[..., None], s.channels, axis=-1)  # (N, H, W, C)
        return np.ascontiguousarray(np.moveaxis(x, -1, self.explainer.adapter.channels_axis),
                                    dtype=np.float32)

    def _explain(self, x: np.ndarray):
        return self.explainer(x, method=self.settings.method, target=self.settings.target)

    def __call__(self, batch: Any) -> "pyarrow.Table":
        import pyarrow as pa

        s = self.settings
        if isinstance(batch, pa.Table):
            batch = batch.to_pydict()
        paths = [str(p) for p in batch["path"]]
        labels = [None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v)
                  for v in batch["label"]]
        folders = [str(f) for f in batch["folder"]]
        n = len(paths)
        errors: list[str | None] = [None] * n
        images, masks, has_mask = [], [], []
        root = Path(s.root)
        for i, rel in enumerate(paths):
            try:
                images.append(read_image(root / rel, s.size))
            except Exception as err:  # an unreadable file is a row, not a crash
                errors[i] = f"{type(err).__name__}: {err}"
                continue
            mask_path = find_mask(Path(s.masks), rel) if s.masks else None
            if mask_path is not None:
                try:
                    masks.append(read_mask(mask_path, s.size))
                    has_mask.append(True)
                    continue
                except ValueError:
                    pass
            masks.append(np.ones((s.size, s.size), dtype=bool))
            has_mask.append(False)
        ok = [i for i in range(n) if errors[i] is None]
        cols: dict[str, Any] = {"path": paths, "folder": folders, "label": labels}
        result = {name: [None] * n for name in self.schema.names if name not in cols}
        result["error"] = errors
        if ok:
            x = self._inputs(np.stack(images))
            res = self._explain(x)
            has_mask = np.asarray(has_mask)
            diag = diagnose_maps(res.maps, roi=np.stack(masks), **s.thresholds)
            probs = res.probabilities
            pred = probs.argmax(axis=1)
            energy = energy_inside(res.maps, np.stack(masks))
            hits = pointing_game(res.maps, np.stack(masks))
            thumbs = thumbnails(res.maps)
            for k, i in enumerate(ok):
                m = bool(has_mask[k])
                result["pred"][i] = int(pred[k])
                result["score"][i] = float(probs[k, pred[k]])
                result["target"][i] = int(res.targets[k])
                result["target_logit"][i] = float(res.scores[k])
                result["corner_energy"][i] = float(diag.corner_energy[k])
                result["flatness"][i] = float(diag.flatness[k])
                result["outside_roi"][i] = float(diag.outside_roi[k]) if m else None
                result["side_balance"][i] = float(diag.side_balance[k])
                result["peak_in_corner"][i] = bool(diag.peak_in_corner[k])
                result["empty"][i] = bool(diag.empty[k])
                for p in PATTERNS:
                    flag = bool(diag.flags[p][k])
                    result[f"flag_{p}"][i] = (flag if m else False) if p == "outside_roi" else flag
                result["energy_in_mask"][i] = float(energy[k]) if m else None
                result["pointing_hit"][i] = bool(hits[k]) if m else None
                result["thumb"][i] = thumbs[k].ravel().tolist()
        cols.update(result)
        return pa.table({name: cols[name] for name in self.schema.names}, schema=self.schema)


def configured_worker(settings: AuditSettings) -> type:
    """A subclass of :class:`AuditWorker` whose constructor takes no argument: ``settings`` travel
    inside the class itself (pickled by value). Ray keeps constructor arguments in its object
    store, and a worker restarted after that copy was lost could not be rebuilt; a class that
    carries its settings can always be."""

    def __init__(self) -> None:
        AuditWorker.__init__(self, settings)

    return type("ConfiguredAuditWorker", (AuditWorker,), {"__init__": __init__})
