"""A small on-disk cache for trained models, safe when two kernels write at once."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

from ..engine.adapters import adapter_class

_REPOSITORY = Path(__file__).resolve().parents[2]  # gradcam_helpers/course/cache.py → the checkout

#: Models the course trains, as the training code wrote them into ``.cache/`` (weights and their
#: ``.json`` history), committed so that a fresh clone does not spend ~15 CPU-minutes retraining
#: them (see ``data/README.md``). Used only for the default cache folder; a seed whose key no longer
#: matches (other settings, data, version or thread count) is never picked: that model is trained.
SEED_DIR = _REPOSITORY / "data" / "models"


def cache_dir() -> Path:
    """Folder for cached models: ``$GRADCAM_CACHE`` if set, else ``.cache/`` at the repository root.

    The default lives inside the checkout (git ignores it). A model missing there is first looked
    for in :data:`SEED_DIR` (the committed copies of the course's trained models, same file name,
    so the same training key) and copied in; otherwise it is trained. Training itself is tested on
    small settings in ``tests/``; ``GRADCAM_CACHE`` set to an empty folder retrains everything.
    """
    path = Path(os.environ.get("GRADCAM_CACHE", _REPOSITORY / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable training configuration."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one atomic step.

    ``write`` receives a temporary path in the same folder with the same suffix (Keras insists on
    ``.keras``). Readers never see a half-written file; if two processes write the same path, the
    last complete file wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".tmp-", suffix=path.suffix)
    os.close(fd)
    os.unlink(tmp)  # some writers refuse to overwrite; they get a fresh name in the right folder
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def fingerprint(*arrays) -> str:
    """A short hash of arrays' shapes, dtypes and bytes: training data goes into a cache key."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def cache_path(stem: str, config: dict[str, Any], suffix: str, *, framework: str) -> Path:
    """The cache file of one training: ``<stem>-<config_key(config)><suffix>``.

    ``config`` holds every setting that went into the training (a data fingerprint included).
    The thread count of ``framework`` ("keras" or "torch", asked of its adapter) is added to it
    here (``config["threads"]``, in place, so the config saved with the model records it and
    ``config_key(config)`` is the key in the name): no caller can forget it. It belongs in the key:
    with another thread count, sums are added in another order and the trained weights differ in
    the last bits, which deterministic training must not hide.
    """
    config.setdefault("threads", adapter_class(framework).thread_count())
    return cache_dir() / f"{stem}-{config_key(config)}{suffix}"


def load_or_train(path: Path, load: Callable[[Path], Any], train: Callable[[], Any],
                  save: Callable[[Any, Path], None], *, retrain: bool = False) -> tuple[Any, bool]:
    """The cached result at ``path``, or a fresh one from ``train()`` saved with ``save``.

    A file that cannot be read (truncated, corrupt, a missing companion file: whatever ``load``
    raises) means train again and replace it, with a warning. ``save`` must write atomically
    (:func:`atomic_write`), so two kernels that train at once leave one complete file.

    Returns
    -------
    (result, from_cache)
    """
    path = Path(path)
    if not retrain and not path.exists():
        _copy_seed(path)
    if not retrain and path.exists():
        try:
            return load(path), True
        except Exception as err:  # noqa: BLE001 — any unreadable file means: train again
            warnings.warn(f"the cached model {path.name} cannot be read ({type(err).__name__}: "
                          f"{err}); training it again and replacing the file", stacklevel=3)
    result = train()
    save(result, path)
    return result, False


def _copy_seed(path: Path) -> bool:
    """Copy the committed seed of ``path`` (and its companion files, e.g. the ``.json`` history)
    into the default cache folder; False when there is none or the cache folder is another one."""
    import shutil

    if "GRADCAM_CACHE" in os.environ or path.parent.resolve() != (_REPOSITORY / ".cache").resolve():
        return False
    seed = SEED_DIR / path.name
    if not seed.is_file():
        return False
    companions = [f for f in SEED_DIR.glob(path.stem + ".*") if f.name != seed.name]
    for source in companions + [seed]:  # companions first: the model file last, as save_* write
        atomic_write(path.parent / source.name, lambda tmp, s=source: shutil.copyfile(s, tmp))
    return True


# Keras models are cached as a .keras file with a .json history beside it


def save_keras(model, history: dict, config: dict, path: Path) -> None:
    """History first, model last: a model file on disk means its history is there too."""
    atomic_write(Path(path).with_suffix(".json"), lambda p: p.write_text(
        json.dumps({"config": config, "history": history}, indent=1)))
    atomic_write(path, lambda p: model.save(p))


def load_keras(path: Path):
    """(model, history) from :func:`save_keras`'s files; raises when either is unreadable."""
    import keras

    saved = json.loads(Path(path).with_suffix(".json").read_text())
    history = {k: [float(v) for v in vals] for k, vals in saved["history"].items()}
    return keras.models.load_model(path, compile=False), history
