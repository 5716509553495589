"""The tiny models several test files share, and the ``framework`` fixture of the twin tests.

Keras and torch are imported inside the fixtures (a test file that needs neither imports neither);
a fixture skips its test when its framework is not installed. Every model is built from a fixed
seed in the process that uses it, so the fixtures are safe in pytest-xdist workers
(``--dist loadfile``): module-scoped ones are built once per test file, as the files did before.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(params=["keras", "torch"])
def framework(request) -> str:
    """``"keras"`` or ``"torch"``: a twin test runs once per framework (skipped where missing)."""
    pytest.importorskip(request.param)
    return request.param


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test, restored after: tiny models run fastest so, and on a busy
    shared CPU two threads wait on each other at every tiny op."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------- a GAP CNN on 20 × 20 grey images


def build_keras_gap_cnn(seed: int = 0, classes: int = 10):
    """conv1 (6 filters, 3 × 3, ReLU) → conv2 (8, 3 × 3, ReLU) → gap → dense (softmax)."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(seed)
    inp = keras.Input((20, 20, 1))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(classes, activation="softmax", name="dense")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def keras_gap_cnn():
    """The Keras GAP CNN (seed 0, ten classes, a softmax output), built once per test file."""
    return build_keras_gap_cnn()


# ---------------------------------------- a Keras CNN on 14 × 14 × 2 images and its torch twin


def build_keras_twin_cnn():
    """conv1 (5) → max-pool → conv2 (6) → gap → fc (4, softmax), seed 3."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(3)
    inp = keras.Input((14, 14, 2))
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="fc")(x)
    return keras.Model(inp, out)


def port_to_torch(km):
    """The Keras twin CNN's twin in PyTorch, weights ported (HWIO → OIHW, (in, out) → (out, in)):
    ``Sequential(conv1, ReLU, MaxPool2d, conv2, ReLU, AdaptiveAvgPool2d, Flatten, fc, Softmax)``."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    conv1, conv2 = nn.Conv2d(2, 5, 3), nn.Conv2d(5, 6, 3)
    fc = nn.Linear(6, 4)
    with torch.no_grad():
        for tconv, name in ((conv1, "conv1"), (conv2, "conv2")):
            kernel, bias = km.get_layer(name).get_weights()
            tconv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
            tconv.bias.copy_(torch.from_numpy(bias))
        kernel, bias = km.get_layer("fc").get_weights()
        fc.weight.copy_(torch.from_numpy(kernel.T))
        fc.bias.copy_(torch.from_numpy(bias))
    return nn.Sequential(conv1, nn.ReLU(), nn.MaxPool2d(2), conv2, nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc, nn.Softmax(dim=1))


@pytest.fixture(scope="module")
def twin_cnns():
    """(Keras model, its torch twin with the same weights), built once per test file; the Keras
    layers are conv1, pool, conv2, gap, fc; the torch modules "0" … "8" ("4": the ReLU after conv2)."""
    km = build_keras_twin_cnn()
    return km, port_to_torch(km)


@pytest.fixture(scope="session")
def torch_twin():
    """The function that ports the twin CNN's Keras weights into a fresh torch twin."""
    return port_to_torch


@pytest.fixture(scope="module")
def twin_images():
    """Six random (14, 14, 2) float32 images in [0, 1) for the twin CNNs (seed 0)."""
    return np.random.default_rng(0).random((6, 14, 14, 2)).astype("float32")
