"""Re-execute lessons in place so that they are committed with fresh outputs.

Usage: python tools/execute_notebooks.py notebooks/01_*.ipynb [more.ipynb ...]
Each notebook runs in a fresh kernel with the notebooks folder as working directory, exactly as CI
runs it. Cells tagged ``raises-exception`` may raise; any other error stops with a non-zero exit.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 900) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    nbformat.write(nb, path)
    return elapsed


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    for name in paths:
        path = Path(name)
        print(f"executing {path} ...", flush=True)
        seconds = execute(path)
        print(f"  done in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
