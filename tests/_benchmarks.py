"""Load a benchmark script from benchmarks/ as a module, for the tests that run or reuse it."""
from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def loaded(filename: str, module_name: str) -> Iterator[ModuleType]:
    """``benchmarks/<filename>`` imported as ``module_name``; removed from sys.modules on exit."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
