"""Run an audit: list the images, skip those already done, explain the rest batch by batch — in
this process or on Ray Data — and write the table.

Both engines push the very same batches through the very same :class:`AuditWorker`, so they write
the same table; only where the batches run differs.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..course.xray import CLASS_NAMES
from ..engine.progress import progress as progress_bar
from .dataset import find_images
from .model import ModelSpec
from .store import ResultStore
from .worker import AuditSettings, AuditWorker, configured_worker, schema

ENGINES = ("local", "ray")


@dataclass
class AuditRun:
    """What one call of :func:`audit` did.

    Attributes
    ----------
    path : the Parquet table (every image of the folder, from this run and earlier ones)
    images : images in the folder
    audited : images processed by this run
    skipped : images already in the table or its parts (a resumed run)
    errors : rows of this run whose image could not be read
    seconds : wall-clock time of this run, start-up included
    engine : "local" or "ray"
    first_batch_seconds : time until the first batch of results came back (listing the images,
        loading the model, starting Ray and its workers); 0 when nothing was audited
    first_batch_images : images in that first batch
    """

    path: Path
    images: int
    audited: int
    skipped: int
    errors: int
    seconds: float
    engine: str
    first_batch_seconds: float = 0.0
    first_batch_images: int = 0

    @property
    def images_per_second(self) -> float:
        """Images processed per second of this run, start-up included (0 when none was)."""
        return self.audited / self.seconds if self.audited and self.seconds > 0 else 0.0

    @property
    def steady_images_per_second(self) -> float:
        """Images per second once the first batch was back: the rate a longer run approaches
        (NaN when the run had a single batch)."""
        rest = self.audited - self.first_batch_images
        time_left = self.seconds - self.first_batch_seconds
        return rest / time_left if rest > 0 and time_left > 0 else float("nan")

    def table(self):
        """The whole table as a ``pyarrow.Table``."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path)

    def to_pandas(self):
        """The whole table as a pandas DataFrame."""
        return self.table().to_pandas()


def audit(images: str | Path, model: ModelSpec | str | Path, out: str | Path, *, size: int,
          method: str = "gradcam", layer: str | None = None, target: int | None = None,
          masks: str | Path | None = None, channels: int = 1, mean: float = 0.0,
          std: float = 1.0, thresholds: dict | None = None, class_names=CLASS_NAMES,
          engine: str = "local", batch_size: int = 32, num_workers: int = 2,
          address: str | None = None, num_gpus: float = 0.0, part_rows: int = 1000,
          part_seconds: float = 60.0, overwrite: bool = False, progress: bool = True
          ) -> AuditRun:
    """Audit every image of a folder for shortcut learning; write one Parquet row per image.

    Parameters
    ----------
    images : folder of images: the Kaggle layout (labels from ``NORMAL/`` / ``PNEUMONIA/``
        folders, at any depth, e.g. one folder per hospital) or a flat folder (no labels); see
        :func:`~gradcam_helpers.audit.find_images`
    model : :class:`ModelSpec` (``ModelSpec.torch(checkpoint, factory, **kwargs)``) or the path
        of a ``.keras`` file
    out : the ``.parquet`` file to write. If it (or the parts of a stopped run) exists with the
        same settings, the images it holds are skipped and the new rows are added
    size : images are read as grayscale and resized to ``size × size``
    method, layer, target : as in :func:`~gradcam_helpers.explain` (``layer`` by name or dotted
        path, e.g. ``"layer4[-1]"``; ``target=None`` explains each image's predicted class)
    masks : folder of masks mirroring ``images`` (``hospital_b/NORMAL/0001.png`` → the same path
        under ``masks``; bright = inside, e.g. the lungs): gives ``outside_roi``,
        ``energy_in_mask`` and ``pointing_hit``
    channels, mean, std : the model's input is ``(gray - mean) / std``, repeated to ``channels``
    thresholds : overrides of :data:`~gradcam_helpers.evaluation.diagnose.DEFAULT_THRESHOLDS`
    class_names : class folder names; the label is the index
    engine : ``"local"`` (this process, batch after batch) or ``"ray"`` (Ray Data ``map_batches``
        with one model per worker)
    batch_size : images per batch (memory per worker grows with it, not with the folder)
    num_workers : Ray workers (actors); a local Ray gets this many CPUs
    address : Ray cluster address (``"auto"``, ``"ray://head:10001"``); None starts Ray on this
        machine and stops it at the end
    num_gpus : GPUs per Ray worker (0.5: two workers share one); the workers use CUDA when > 0
    part_rows, part_seconds : finished rows are saved (as a part file) every this many rows or
        seconds; a stopped run loses at most that much work
    overwrite : start afresh, ignoring an earlier table and its parts (the old table stays until
        the new one is complete)
    progress : show a progress bar

    Returns
    -------
    AuditRun
        Where the table is and what this run did. Rows keep the order the images were listed in
        (sorted paths) within a run; a resumed run appends.

    Raises
    ------
    ValueError
        Unknown engine, an output made with other settings (pass ``overwrite=True``), a model
        that cannot be loaded. A broken image file is not an error: its row says why.
    """
    start = time.perf_counter()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    if batch_size < 1 or num_workers < 1:
        raise ValueError(f"batch_size and num_workers must be at least 1; got {batch_size}, "
                         f"{num_workers}")
    if num_gpus < 0:
        raise ValueError(f"num_gpus must be >= 0; got {num_gpus}")
    if not isinstance(model, ModelSpec):
        model = ModelSpec.keras(model)
    root = Path(images).expanduser().resolve()
    masks_root = None
    if masks is not None:
        masks_root = Path(masks).expanduser().resolve()
        if not masks_root.is_dir():
            raise FileNotFoundError(f"masks={masks} is not a folder")
    settings = AuditSettings(model=model, root=str(root), size=int(size), method=method,
                             layer=layer, target=target, channels=channels, mean=float(mean),
                             std=float(std), masks=None if masks_root is None else str(masks_root),
                             thresholds=dict(thresholds or {}), batch_size=batch_size,
                             device="cuda" if num_gpus > 0 else "cpu",
                             class_names=tuple(class_names))
    listing = find_images(root, class_names)
    store = ResultStore(out, schema(), settings.describe(), part_rows=part_rows,
                        part_seconds=part_seconds)
    if overwrite:
        store.discard()
        done: set[str] = set()
    else:
        done = store.done_paths()
    todo = listing
    if done:
        import pyarrow as pa

        todo = listing.filter(pa.array([p not in done for p in listing.column("path").to_pylist()]))
    counts = {"rows": 0, "errors": 0, "first_seconds": 0.0, "first_rows": 0}

    def collect(table) -> None:
        if not counts["first_rows"]:
            counts["first_seconds"] = time.perf_counter() - start
            counts["first_rows"] = table.num_rows
        store.add(table)
        counts["rows"] += table.num_rows
        counts["errors"] += table.num_rows - table.column("error").null_count

    try:
        with progress_bar(total=todo.num_rows, desc=f"audit ({engine})", unit="image",
                          disable=not progress) as bar:
            if todo.num_rows:
                runner = _run_local if engine == "local" else _run_ray
                runner(settings, todo, batch_size, lambda t: (collect(t), bar.update(t.num_rows)),
                       num_workers=num_workers, address=address, num_gpus=num_gpus)
    finally:
        store.flush()   # rows finished before a stop are kept for the next run
    path = store.finish()
    return AuditRun(path=path, images=listing.num_rows, audited=counts["rows"],
                    skipped=listing.num_rows - todo.num_rows, errors=counts["errors"],
                    seconds=time.perf_counter() - start, engine=engine,
                    first_batch_seconds=counts["first_seconds"],
                    first_batch_images=counts["first_rows"])


def _run_local(settings: AuditSettings, todo, batch_size: int, collect, **_: Any) -> None:
    """One worker in this process, one batch at a time: memory holds one batch."""
    worker = AuditWorker(settings)
    for offset in range(0, todo.num_rows, batch_size):
        collect(worker(todo.slice(offset, batch_size)))


def start_local_ray(num_cpus: int, attempts: int = 3, **init_options: Any) -> None:
    """``ray.init`` on this machine with ``num_cpus`` CPUs, no dashboard and quiet logs.

    Ray gives its node 30 s to come up; on an overloaded machine (a shared CI runner) that can
    pass, so a start that times out is tried up to ``attempts`` times before the error is raised.

    Ray's own choice of token authentication for the new local cluster (on, its default) is not
    announced: that warning is meant for clusters others can reach, and this one is private to
    the run.
    """
    import logging

    import ray

    options = dict(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                   logging_level=logging.WARNING, **init_options)
    token_logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = token_logger.level
    token_logger.setLevel(logging.ERROR)
    try:
        for attempt in range(attempts):
            try:
                ray.init(**options)
                return
            except Exception as err:  # Ray raises a bare Exception when its node starts too slowly
                ray.shutdown()
                if "timed out during startup" not in str(err) or attempt == attempts - 1:
                    raise
    finally:
        token_logger.setLevel(level)


#: Ray's C++ core logs this at ERROR for every Ray Data actor pool: Ray Data itself puts the
#: actors' constructor arguments in the object store and keeps them alive for the whole run
#: (ray-project/ray#53727), so it says nothing about this run; no Python logger controls it
_RAY_DATA_ACTOR_NOTICE = b"has constructor arguments in the object store and max_restarts > 0"


@contextlib.contextmanager
def _without_stderr_lines(*fragments: bytes):
    """Drop the lines written to file descriptor 2 that contain one of ``fragments`` while the
    block runs; every other line goes through unchanged (line by line).

    Only where fd 2 is not a terminal (a Jupyter kernel, whose saved outputs it keeps; a log
    file): in a terminal, where progress bars redraw a line in place, nothing is touched.
    """
    import threading

    try:
        if os.isatty(2):
            yield
            return
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters)
        yield
        return
    read_end, write_end = os.pipe()
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward(line: bytes) -> None:
        if line and not any(f in line for f in fragments):
            os.write(saved, line)

    def pump() -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    forward(line + b"\n")
        forward(pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)        # the pipe's last write end closes: the pump reads to its end
        thread.join(timeout=5)
        os.close(saved)


def _run_ray(settings: AuditSettings, todo, batch_size: int, collect, *, num_workers: int,
             address: str | None, num_gpus: float) -> None:
    """Ray Data: ``map_batches`` with :class:`AuditWorker` on an actor pool, results streamed
    back to this process in order. Starts (and stops) a local Ray unless one is running or
    ``address`` names a cluster."""
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        if address is None:
            start_local_ray(num_workers)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        started = True
    import ray.data  # configures Ray Data's loggers on first import: set their levels after it

    # Ray Data logs INFO lines per dataset (plan, start, finish) and a warning that its progress
    # bars are off: this run has its own bar, so only Ray Data's warnings and errors get through
    quiet = {"ray.data": logging.WARNING, "ray.data._internal.progress": logging.ERROR}
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.execution_options.preserve_order = True    # rows come back in the listed order
        # blocks of up to four batches, at least two blocks per worker when there is enough work
        batches = -(-todo.num_rows // batch_size)
        block = batch_size * min(4, max(1, batches // (2 * num_workers)))
        blocks = [todo.slice(k, block) for k in range(0, todo.num_rows, block)]
        # A worker process that dies (killed, out of memory, a lost node) is restarted and its
        # batch retried: Ray Data's default for actors (max_restarts=-1, max_task_retries=-1).
        # An exception inside a batch is not retried; AuditWorker turns unreadable images into
        # rows, so what is left would fail every retry the same way.
        ds = ray.data.from_arrow(blocks).map_batches(
            configured_worker(settings), batch_size=batch_size,
            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=1, num_gpus=num_gpus or None)
        with _without_stderr_lines(_RAY_DATA_ACTOR_NOTICE):
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                collect(table)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if started:
            ray.shutdown()
