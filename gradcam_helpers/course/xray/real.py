"""Loaders for real chest X-rays: image files, the Kaggle folder layout, MedMNIST ``.npz`` and
DICOM (with the one real radiograph that ``pydicom-data`` ships, for offline use)."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...engine.progress import progress
from .dataset import CLASS_NAMES, XrayData

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff")

def read_grayscale(path: str | Path, size: int | None = None) -> np.ndarray:
    """Read one image file as ``(H, W)`` float32 in [0, 1] (``(size, size)`` if ``size``).

    Handles 8-bit and 16-bit grayscale (16-bit is scaled by 65535, not clipped to 255 as
    ``PIL.Image.convert("L")`` would), palette images, RGB (luminance) and images with an alpha
    channel (composited over black, so transparent parts are not mistaken for bright tissue).

    Raises
    ------
    ValueError
        If the file is not an image PIL can read, naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path).expanduser()
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im, dtype=np.float64) / 65535.0
            elif mode == "I":
                raw = np.asarray(im, dtype=np.float64)
                top = 65535.0 if raw.max() <= 65535 else float(raw.max())
                arr = np.clip(raw, 0, None) / top
            elif mode == "F":
                raw = np.asarray(im, dtype=np.float64)
                lo, hi = float(raw.min()), float(raw.max())
                arr = (raw - lo) / (hi - lo) if hi > lo else np.zeros_like(raw)
            else:
                if mode == "P":
                    im = im.convert("RGBA")
                    mode = "RGBA"
                if mode in ("RGBA", "LA", "PA"):
                    im = im.convert("RGBA")
                    black = Image.new("RGBA", im.size, (0, 0, 0, 255))
                    im = Image.alpha_composite(black, im)
                arr = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path} is not an image file that PIL can read ({err})") from err
    if size is not None:
        arr = _resize(arr, size)
    return np.clip(arr, 0, 1).astype(np.float32)


def _resize(arr: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of one (H, W) float image to (size, size), antialiased when shrinking."""
    from PIL import Image

    if arr.shape == (size, size):
        return arr.astype(np.float32)
    im = Image.fromarray(np.asarray(arr, dtype=np.float32), mode="F")
    return np.asarray(im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None),
                      dtype=np.float32)


def _find_split_dir(root: Path, split: str) -> Path:
    """root/split, also accepting the extra ``chest_xray/`` level the Kaggle zip contains."""
    for candidate in (root / split, root / "chest_xray" / split):
        if candidate.is_dir():
            return candidate
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise FileNotFoundError(
        f"no '{split}' folder in {root} (sub-folders found: {present or 'none'}). Expected the "
        f"Kaggle layout root/{{train,val,test}}/{{NORMAL,PNEUMONIA}}/*.jpeg; pass the folder that "
        "contains train/, val/ and test/")


def load_kaggle_folder(root: str | Path, split: str = "train", size: int = 128, *,
                       max_per_class: int | None = None, seed: int = 0) -> XrayData:
    """Load the Kaggle "Chest X-Ray Images (Pneumonia)" layout.

    ``root/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`` (also .jpg/.png/...; folder names are
    matched case-insensitively; hidden files are skipped). The label comes from the folder name
    only.

    Parameters
    ----------
    root : folder holding ``train/``, ``val/``, ``test/`` (or ``chest_xray/`` holding them)
    split : "train", "val" or "test"
    size : output height and width (images are resized without cropping)
    max_per_class : int or None
        Keep at most this many images per class, chosen at random with ``seed`` (the full
        training split has 5,216 images; a few hundred per class keeps a lesson fast).

    Returns
    -------
    XrayData with ``images`` (N, 1, size, size) and no masks.

    Raises
    ------
    FileNotFoundError
        If the split folder or a class folder is missing, or a class folder holds no images.
    ValueError
        If a file cannot be read as an image.
    """
    root = Path(root).expanduser()
    split_dir = _find_split_dir(root, split)
    sub = {p.name.upper(): p for p in split_dir.iterdir() if p.is_dir()}
    missing = [name for name in CLASS_NAMES if name not in sub]
    if missing:
        raise FileNotFoundError(
            f"{split_dir} has no class folder(s) {missing}; found {sorted(sub) or 'none'}. "
            f"Each split needs NORMAL/ and PNEUMONIA/ sub-folders: the label is the folder name")
    extra = sorted(set(sub) - set(CLASS_NAMES))
    if extra:
        warnings.warn(f"ignoring folders {extra} in {split_dir}: only {CLASS_NAMES} are loaded",
                      stacklevel=2)
    rng = np.random.default_rng(seed)
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(CLASS_NAMES):
        files = sorted(p for p in sub[name].iterdir()
                       if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {sub[name]}")
        if max_per_class is not None and len(files) > max_per_class:
            keep = np.sort(rng.choice(len(files), size=max_per_class, replace=False))
            files = [files[k] for k in keep]
        paths += files
        labels += [label] * len(files)
    images = np.stack([read_grayscale(p, size) for p in progress(
        paths, desc=f"{split} images", unit="image", disable=len(paths) < 200)])
    return XrayData(images=images[:, None], labels=np.asarray(labels, dtype=np.int64),
                    source="kaggle",
                    info=dict(root=str(root), split=split, size=size, files=[str(p) for p in paths]))


def load_medmnist_npz(path: str | Path, split: str = "train", size: int | None = None) -> XrayData:
    """Load MedMNIST's ``pneumoniamnist.npz`` (keys ``train_images``, ``train_labels``, ``val_*``,
    ``test_*``; images (N, 28, 28) uint8, or 64/128/224 px for MedMNIST+; labels (N, 1) with
    0 = normal, 1 = pneumonia).

    Parameters
    ----------
    size : int or None
        Resize to ``size × size``; None keeps the stored size.

    Raises
    ------
    KeyError
        If the split's keys are missing (the message lists the keys the file has).
    ValueError
        If shapes or label values do not fit a two-class grayscale set.
    """
    path = Path(path).expanduser()
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test'; got {split!r}")
    with np.load(path, allow_pickle=False) as npz:
        keys = sorted(npz.files)
        wanted = (f"{split}_images", f"{split}_labels")
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise KeyError(f"{path} has no {missing}; it holds {keys}. A MedMNIST file has "
                           "train_images, train_labels, val_images, val_labels, test_images, "
                           "test_labels")
        images, labels = npz[wanted[0]], npz[wanted[1]]
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 4 and images.shape[-1] == 3:
        raise ValueError(f"{wanted[0]} is RGB {images.shape}; PneumoniaMNIST is grayscale — is "
                         "this another MedMNIST set?")
    if images.ndim != 3:
        raise ValueError(f"{wanted[0]} must be (N, H, W); got {images.shape}")
    labels = np.asarray(labels).reshape(len(labels), -1)
    if labels.shape[1] != 1 or len(labels) != len(images):
        raise ValueError(f"{wanted[1]} must hold one label per image; got {labels.shape} for "
                         f"{len(images)} images")
    labels = labels[:, 0]
    bad = np.setdiff1d(np.unique(labels), [0, 1])
    if bad.size:
        raise ValueError(f"{wanted[1]} holds labels {bad.tolist()}; PneumoniaMNIST has only 0 "
                         "(normal) and 1 (pneumonia)")
    if np.issubdtype(images.dtype, np.integer):
        top = 255.0 if images.max(initial=0) <= 255 else 65535.0
        images = images.astype(np.float32) / top
    else:
        images = np.clip(images.astype(np.float32), 0, 1)
    if size is not None:
        images = np.stack([_resize(im, size) for im in images]) if len(images) else \
            np.zeros((0, size, size), np.float32)
    return XrayData(images=np.clip(images, 0, 1)[:, None].astype(np.float32),
                    labels=labels.astype(np.int64), source="medmnist",
                    info=dict(path=str(path), split=split, size=size))


def load_dicom(path: str | Path, window: tuple[float, float] | None = None,
               size: int | None = None) -> np.ndarray:
    """Read a grayscale DICOM image as ``(H, W)`` float32 in [0, 1], displayed as a radiologist
    sees it: bright = dense.

    Steps: stored values → modality LUT (Rescale Slope/Intercept) → VOI: ``window`` if given,
    else the file's VOI LUT Sequence or Window Center/Width, else the image's own min–max → scale
    to [0, 1] → invert when Photometric Interpretation is MONOCHROME1 (in MONOCHROME1 the
    smallest value is displayed white, so without the inversion bones come out black).

    Parameters
    ----------
    window : (center, width) or None
        Override the window stored in the file (DICOM "LINEAR" windowing).
    size : int or None
        Resize to ``size × size``.

    Raises
    ------
    ValueError
        If the file is not DICOM, has no pixel data, or is not grayscale.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    path = Path(path).expanduser()
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a DICOM file ({err}); use read_grayscale for "
                         "PNG/JPEG files") from err
    if "PixelData" not in ds:
        raise ValueError(f"{path} is DICOM but holds no image (no Pixel Data element)")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"{path} is {photometric}; only grayscale (MONOCHROME1/2) radiographs "
                         "are supported")
    try:
        stored = ds.pixel_array
    except Exception as err:  # compressed data without a decoder, broken files
        raise ValueError(f"cannot decode the pixels of {path} ({err}); compressed DICOM needs a "
                         "decoder such as pylibjpeg") from err
    if stored.ndim != 2:
        raise ValueError(f"{path} holds pixel data of shape {stored.shape}; expected one 2-D "
                         "image (multi-frame files: pick a frame yourself)")
    values = apply_modality_lut(stored, ds).astype(np.float64)
    if window is not None:
        values = _linear_window(values, *window)
    elif "VOILUTSequence" in ds:
        lut_bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        values = apply_voi_lut(values, ds, prefer_lut=True).astype(np.float64) / (2 ** lut_bits - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        center = ds.WindowCenter[0] if ds["WindowCenter"].VM > 1 else ds.WindowCenter
        width = ds.WindowWidth[0] if ds["WindowWidth"].VM > 1 else ds.WindowWidth
        values = _linear_window(values, float(center), float(width))
    else:
        lo, hi = values.min(), values.max()
        values = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    values = np.clip(values, 0, 1)
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    if size is not None:
        values = _resize(values, size)
    return values.astype(np.float32)


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM 'LINEAR' VOI windowing (PS3.3 C.11.2.1.2.1) onto [0, 1]."""
    if width < 1:
        raise ValueError(f"window width must be >= 1; got {width}")
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1)


def example_radiograph_path() -> Path:
    """Path of the real adult chest radiograph ``RG1_UNCR.dcm`` shipped by ``pydicom-data``
    (found offline; raises FileNotFoundError naming the package to install otherwise)."""
    try:
        from pydicom.data import get_testdata_file

        found = get_testdata_file("RG1_UNCR.dcm", download=False)
    except Exception as err:  # pragma: no cover - depends on the installation
        raise FileNotFoundError(f"cannot look up RG1_UNCR.dcm ({err}); "
                                "pip install pydicom-data") from err
    if not found:
        raise FileNotFoundError("RG1_UNCR.dcm is not installed; `pip install pydicom-data` "
                                "ships it (no download at run time)")
    return Path(found)


def load_example_radiograph(size: int | None = None, window: tuple[float, float] | None = None
                            ) -> np.ndarray:
    """The real chest radiograph from ``pydicom-data`` (computed radiography, MONOCHROME1,
    1955 × 1841, no diagnosis label) as ``(H, W)`` float32 in [0, 1] via :func:`load_dicom`."""
    return load_dicom(example_radiograph_path(), window=window, size=size)
