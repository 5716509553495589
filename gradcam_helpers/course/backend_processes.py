"""Run the same Keras code on several Keras 3 backends, each in its own Python process.

Keras picks its backend once, when ``keras`` is first imported (``KERAS_BACKEND``, default
``tensorflow``); one process cannot switch. To compare backends — in a test, a lesson or a benchmark
— the code runs once per backend in a fresh interpreter, and the arrays it leaves in a dict named
``results`` come back as NumPy arrays::

    from gradcam_helpers.course.backend_processes import run_on_backends

    out = run_on_backends('''
    import keras
    results["backend"] = keras.config.backend()
    ''')
    out["jax"]["backend"]  # array('jax', dtype='<U3')
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

BACKENDS = ("tensorflow", "torch", "jax")

_BOOT = """\
import sys, runpy
import numpy as np
code_path, out_path = sys.argv[1], sys.argv[2]
sys.path.pop(0) if sys.path and sys.path[0] == "" else None
namespace = runpy.run_path(code_path, init_globals={"results": {}}, run_name="__main__")
np.savez(out_path, **{k: np.asarray(v) for k, v in namespace["results"].items()})
"""


def _thread_env(threads: int) -> dict:
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n,
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={n}"}


def run_on_backends(code: str, backends: Sequence[str] = BACKENDS, *, threads: int = 1,
                    parallel: bool = True, timeout: float = 900,
                    env: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run ``code`` once per Keras backend, each in a fresh Python process.

    Parameters
    ----------
    code : str
        Python source. It finds an empty dict ``results`` in its globals and puts into it what it
        wants back: arrays, numbers or strings (anything ``np.asarray`` turns into an array that
        ``np.savez`` can store without pickling). The code may import ``gradcam_helpers``: the
        child processes see the same ``sys.path`` as this one.
    backends : sequence of "tensorflow", "torch", "jax"
    threads : int
        CPU threads for each child's framework (and BLAS).
    parallel : bool
        Start all processes at once (default) or one after the other.
    timeout : float
        Seconds each process may take.
    env : dict or None
        Extra environment variables for the children.

    Returns
    -------
    dict
        ``{backend: {name: np.ndarray}}``, in the order of ``backends``.

    Raises
    ------
    ValueError
        For an unknown backend name.
    RuntimeError
        When a child fails: the message names the backend and ends with its error output.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown Keras backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    with tempfile.TemporaryDirectory(prefix="gradcam-backends-") as tmp:
        folder = Path(tmp)
        code_path = folder / "gradcam_backend_snippet.py"
        code_path.write_text(textwrap.dedent(code), encoding="utf-8")
        base = dict(os.environ)
        base["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        base.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        base.update(_thread_env(threads))
        base.update(env or {})

        def start(backend):
            child_env = dict(base, KERAS_BACKEND=backend)
            log = open(folder / f"{backend}.log", "w+b")
            proc = subprocess.Popen([sys.executable, "-c", _BOOT, str(code_path),
                                     str(folder / f"{backend}.npz")],
                                    env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=os.getcwd())
            return proc, log

        def finish(backend, proc, log):
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
            log.close()
            if proc.returncode != 0:
                tail = "\n".join(output.strip().splitlines()[-25:])
                raise RuntimeError(f"the code failed on the {backend!r} backend "
                                   f"(exit status {proc.returncode}):\n{tail}")
            with np.load(folder / f"{backend}.npz", allow_pickle=False) as data:
                return {name: data[name] for name in data.files}

        results: dict[str, dict[str, np.ndarray]] = {}
        if parallel:
            running = {b: start(b) for b in backends}
            try:
                for backend, (proc, log) in running.items():
                    results[backend] = finish(backend, proc, log)
            finally:
                for proc, log in running.values():
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                    if not log.closed:
                        log.close()
        else:
            for backend in backends:
                results[backend] = finish(backend, *start(backend))
        return results
