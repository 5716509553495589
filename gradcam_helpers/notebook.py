"""One call at the top of every lesson: seeds, threads, quiet logs, Japanese glyphs in figures."""
from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings

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


def setup_notebook(seed: int = 0, threads: int = 2, *, japanese_fonts: bool = True) -> dict:
    """Make a lesson deterministic and quiet, and let matplotlib draw Japanese text.

    Parameters
    ----------
    seed : int
        Seed for Python's ``random``, NumPy, and — when they are installed — Keras/TensorFlow and
        torch. TensorFlow and torch are seeded only if already imported or importable; this call
        imports them so that the seed holds for the rest of the notebook.
    threads : int
        CPU threads for TensorFlow and torch (the course targets a 2-core laptop).
    japanese_fonts : bool
        Import ``matplotlib_fontja`` so that titles and labels in Japanese render.

    Returns
    -------
    dict
        The versions of the libraries in use, to print at the top of a lesson.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*oneDNN.*")
    random.seed(seed)
    np.random.seed(seed)
    info = {"python": sys.version.split()[0], "numpy": np.__version__}

    try:
        with _silence_stderr_fd():
            import tensorflow as tf
            import keras

        tf.get_logger().setLevel("ERROR")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # already initialised in this kernel; the first call's setting stands

        keras.utils.set_random_seed(seed)
        info.update(tensorflow=tf.__version__, keras=keras.__version__)
    except ImportError:
        pass

    try:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        info["torch"] = torch.__version__
    except ImportError:
        pass

    import matplotlib

    if japanese_fonts:
        import matplotlib_fontja  # noqa: F401  (registers IPAexGothic and makes it the default)
    matplotlib.rcParams["figure.dpi"] = 80
    info["matplotlib"] = matplotlib.__version__
    return info
