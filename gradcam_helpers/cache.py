"""A small on-disk cache for trained models, safe when two kernels write at once."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Folder for cached models: ``$GRADCAM_CACHE`` if set, else ``.cache/`` at the repository root.

    The default lives inside the checkout (git ignores it) so a fresh clone trains its own models
    and CI really exercises training.
    """
    path = Path(os.environ.get("GRADCAM_CACHE", _PACKAGE_ROOT / ".cache"))
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
