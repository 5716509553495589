"""Where results go while a run is going, and how a run resumes.

A run writing ``out.parquet`` keeps its finished rows in ``out.parquet.parts/``: every few hundred
rows (or every minute) one part file, each written whole and renamed into place, so a run stopped
at any moment (Ctrl-C, a killed process, a lost machine) leaves only complete parts. The next run
with the same settings reads which images the table and the parts already hold and skips them. At
the end the table and the parts are streamed into a new file that replaces ``out.parquet`` in one
atomic rename: a good table is never overwritten by a half-finished one.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from ..course.cache import atomic_write

_META_KEY = b"gradcam_audit"


class ResultStore:
    """The output table of one audit and its folder of parts.

    Parameters
    ----------
    out : the ``.parquet`` file to write
    schema : pyarrow schema of the rows
    settings : JSON-friendly description of the run; a resumed run must have the same
    part_rows, part_seconds : write a part when this many rows are buffered, or when the oldest
        buffered row is this old (a stopped run loses at most that much work)
    """

    def __init__(self, out: str | Path, schema, settings: dict, *, part_rows: int = 1000,
                 part_seconds: float = 60.0):
        self.out = Path(out).expanduser()
        if self.out.suffix != ".parquet":
            raise ValueError(f"the output must be a .parquet file; got {self.out}")
        self.parts_dir = self.out.with_name(self.out.name + ".parts")
        self.settings = json.loads(json.dumps(settings, default=str))
        self.schema = schema.with_metadata({_META_KEY: json.dumps(self.settings).encode()})
        self.part_rows = max(1, int(part_rows))
        self.part_seconds = float(part_seconds)
        self._buffer: list = []
        self._buffered = 0
        self._since = None
        self._previous_table_is_stale = False

    # -- what is there already --------------------------------------------------------------
    def _files(self) -> list[Path]:
        parts = sorted(self.parts_dir.glob("part-*.parquet")) if self.parts_dir.is_dir() else []
        return ([self.out] if self.out.is_file() else []) + parts

    def _check_settings(self, file: Path) -> None:
        import pyarrow.parquet as pq

        meta = pq.read_schema(file).metadata or {}
        if _META_KEY not in meta:
            raise ValueError(f"{file} was not written by an audit; choose another output file")
        theirs = json.loads(meta[_META_KEY])
        if theirs != self.settings:
            diff = sorted(k for k in set(theirs) | set(self.settings)
                          if theirs.get(k) != self.settings.get(k))
            raise ValueError(f"{file} holds an audit made with other settings ({', '.join(diff)} "
                             "differ); write to another file, or pass overwrite=True / "
                             "--overwrite to start this one afresh")

    def done_paths(self) -> set[str]:
        """Paths of the images the table and the parts already hold (checked to come from a run
        with the same settings)."""
        import pyarrow.parquet as pq

        done: set[str] = set()
        for file in self._files():
            self._check_settings(file)
            done.update(pq.read_table(file, columns=["path"]).column("path").to_pylist())
        return done

    def discard(self) -> None:
        """Forget earlier results: remove the parts (the table is replaced at :meth:`finish`)."""
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        self._previous_table_is_stale = True

    # -- adding rows ------------------------------------------------------------------------
    def add(self, table) -> None:
        """Buffer finished rows; write a part when enough have gathered."""
        if table.num_rows == 0:
            return
        if self._since is None:
            self._since = time.monotonic()
        self._buffer.append(table)
        self._buffered += table.num_rows
        if self._buffered >= self.part_rows or time.monotonic() - self._since >= self.part_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part (whole, then renamed into place)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer).cast(self.schema)
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        number = 1 + max((int(p.stem.split("-")[1]) for p in self.parts_dir.glob("part-*.parquet")),
                         default=-1)
        atomic_write(self.parts_dir / f"part-{number:06d}.parquet",
                     lambda tmp: pq.write_table(table, tmp))
        self._buffer, self._buffered, self._since = [], 0, None

    # -- the end ----------------------------------------------------------------------------
    def finish(self) -> Path:
        """Stream the old table (unless discarded) and every part into a new file, each image
        once, replace ``out`` with it atomically and remove the parts. Returns ``out``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.flush()
        files = self._files()
        if self._previous_table_is_stale and self.out in files:
            files.remove(self.out)
        seen: set[str] = set()

        def write(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, self.schema) as writer:
                for file in files:
                    for batch in pq.ParquetFile(file).iter_batches(batch_size=4096):
                        paths = batch.column("path").to_pylist()
                        keep = []
                        for p in paths:   # each image once, also if two parts hold it
                            keep.append(p not in seen)
                            seen.add(p)
                        if not all(keep):
                            batch = batch.filter(pa.array(keep))
                        if batch.num_rows:
                            writer.write_batch(batch.cast(self.schema))

        atomic_write(self.out, write)
        shutil.rmtree(self.parts_dir, ignore_errors=True)
        return self.out


def read_settings(path: str | Path) -> dict:
    """The settings an audit table was made with (model, method, layer, size, thresholds...)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if _META_KEY not in meta:
        raise ValueError(f"{path} was not written by an audit")
    return json.loads(meta[_META_KEY])
