"""One call at the top of every lesson: seeds, threads, quiet logs, Japanese glyphs in figures."""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import os
import random
import sys
import warnings
from typing import Iterable

import numpy as np


@contextlib.contextmanager
def _silence_stderr_fd():
    """Silence file descriptor 2 for a moment: TensorFlow's C++ start-up banner (oneDNN, CPU
    features) is printed before its log level applies and would clutter every lesson's output."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


#: the frameworks a lesson may use, and the module whose import sets each one up
FRAMEWORKS = ("tensorflow", "keras", "torch")


def _setup_tensorflow(tf, seed: int, threads: int) -> None:
    tf.get_logger().setLevel("ERROR")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised in this kernel; the first call's setting stands
    tf.random.set_seed(seed)


@contextlib.contextmanager
def _keep_random_state():
    """Restore Python's and NumPy's global generators on exit."""
    state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(state)
        np.random.set_state(np_state)


def _setup_keras(keras, seed: int, threads: int) -> None:
    # keras.utils.set_random_seed also re-seeds Python and NumPy: keep their streams where the
    # lesson has taken them, so that importing Keras late does not change them
    with _keep_random_state(), _silence_stderr_fd():  # it may import TensorFlow (its C++ banner)
        keras.utils.set_random_seed(seed)


def _setup_torch(torch, seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


_SETUP = {"tensorflow": _setup_tensorflow, "keras": _setup_keras, "torch": _setup_torch}


class _SetUpOnImport(importlib.abc.MetaPathFinder):
    """Sets a framework up (seed, threads, quiet logs) right after the lesson first imports it.

    A one-shot import hook on ``sys.meta_path``: for each name it still waits for, it lets the other
    finders find the module and wraps its loader's ``exec_module`` for that one import;
    TensorFlow's C++ banner is silenced while it loads. It removes itself once every framework it
    waited for has been imported.
    """

    def __init__(self, names, seed: int, threads: int) -> None:
        self.waiting = set(names)
        self.seed, self.threads = seed, threads

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.waiting:
            return None
        self.waiting.discard(fullname)
        if not self.waiting and self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)  # the other finders (this one no longer waits)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, setup = spec.loader, _SETUP[fullname]
        original = loader.exec_module

        def exec_module(module):
            # importing TensorFlow draws from Python's and NumPy's global generators: keep their
            # streams where the lesson has taken them, wherever in the lesson the import comes
            with _keep_random_state():
                try:
                    if fullname == "tensorflow":
                        with _silence_stderr_fd():
                            original(module)
                    else:
                        original(module)
                finally:
                    loader.__dict__.pop("exec_module", None)  # this loader is the module's own
                setup(module, self.seed, self.threads)

        loader.exec_module = exec_module
        return spec


def _installed(name: str) -> bool:
    return name in sys.modules or importlib.util.find_spec(name) is not None


def _version(name: str) -> str | None:
    """The installed version of an importable package, from its metadata (nothing is imported)."""
    module = sys.modules.get(name)
    if module is not None and hasattr(module, "__version__"):
        return str(module.__version__)
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
    for dist in importlib.metadata.packages_distributions().get(name, []):  # e.g. tensorflow-cpu
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def setup_notebook(seed: int = 0, threads: int = 2, *, frameworks: Iterable[str] = (),
                   japanese_fonts: bool = True) -> dict:
    """Make a lesson deterministic and quiet, and let matplotlib draw Japanese text.

    Frameworks are imported where the lesson uses them, not here: a torch lesson never loads
    TensorFlow. Each framework (TensorFlow, Keras, torch) is set up — seeded, limited to
    ``threads`` threads, TensorFlow's start-up banner and logs silenced — at once if it is already
    imported or named in ``frameworks``, and otherwise right after the lesson first imports it.

    Parameters
    ----------
    seed : int
        Seed for Python's ``random``, NumPy, Keras/TensorFlow and torch.
    threads : int
        CPU threads for TensorFlow and torch (the course targets a 2-core laptop).
    frameworks : iterable of "tensorflow", "keras", "torch"
        Import these now (e.g. to print their versions before they are used). The others are set
        up when imported.
    japanese_fonts : bool
        Import ``matplotlib_fontja`` so that titles and labels in Japanese render.

    Returns
    -------
    dict
        The versions of the libraries installed, to print at the top of a lesson (read from the
        package metadata: nothing is imported for it).

    Raises
    ------
    ValueError
        For a framework name not in :data:`FRAMEWORKS`.
    """
    frameworks = tuple(frameworks)
    unknown = [name for name in frameworks if name not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"unknown framework(s) {unknown}: setup_notebook(frameworks=...) takes "
                         f"{', '.join(FRAMEWORKS)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*oneDNN.*")
    random.seed(seed)
    np.random.seed(seed)
    info = {"python": sys.version.split()[0], "numpy": np.__version__}

    # a kernel whose first cell runs again: the previous call's hook gives way to this one's
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_SetUpOnImport"]
    later = [name for name in FRAMEWORKS
             if name not in sys.modules and name not in frameworks and _installed(name)]
    if later:
        sys.meta_path.insert(0, _SetUpOnImport(later, seed, threads))
    for name in FRAMEWORKS:
        if name in sys.modules:
            _SETUP[name](sys.modules[name], seed, threads)
        elif name in frameworks:
            with _silence_stderr_fd():
                module = importlib.import_module(name)  # the frameworks it imports set up on import
            _SETUP[name](module, seed, threads)
    random.seed(seed)  # whatever was set up above, the lesson starts from these streams
    np.random.seed(seed)

    for name in FRAMEWORKS:
        version = _version(name)
        if version is not None:
            info[name] = version

    import matplotlib

    if japanese_fonts:
        import matplotlib_fontja  # noqa: F401  (registers IPAexGothic and makes it the default)
    matplotlib.rcParams["figure.dpi"] = 80
    info["matplotlib"] = matplotlib.__version__
    return info
