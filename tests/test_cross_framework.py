"""The same network in Keras and in PyTorch, with the same weights, gives the same maps; and a
network small enough to work out by hand gives exactly the hand-computed maps in both."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from gradcam_helpers import explain  # noqa: E402
from gradcam_helpers.engine.registry import method_names  # noqa: E402

# attention maps need a transformer: tests/test_vit_engine.py compares them across frameworks
ALL_METHODS = [m for m in method_names() if m not in method_names(kind="attention")]


@pytest.fixture(scope="module")
def pair(twin_cnns, twin_images):
    """The twin CNNs of tests/conftest.py and six images."""
    return (*twin_cnns, twin_images)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_same_weights_same_maps(pair, method):
    km, tm, x = pair
    targets = [0, 1, 2, 3, 0, 1]
    k = explain(km, x, method, layer="conv2", target=targets)
    t = explain(tm, torch.from_numpy(x.transpose(0, 3, 1, 2)), method, layer="4", target=targets)
    np.testing.assert_allclose(k.logits, t.logits, atol=1e-5)
    assert np.abs(k.maps - t.maps).max() < 1e-4, method
    assert k.maps.max() > 0  # a real comparison, not two empty maps


def test_automatic_layer_is_the_same_place(pair):
    km, tm, x = pair
    assert explain(km, x).layer == "conv2"
    assert explain(tm, torch.from_numpy(x.transpose(0, 3, 1, 2))).layer == "4"  # the ReLU after conv2


def test_adapter_logits_are_the_scores_before_softmax_in_both_frameworks(pair):
    """The public ``Adapter.logits`` of a fresh adapter: the model's output with its final softmax
    bypassed, equal in both frameworks and to the pre-softmax values computed by hand."""
    from gradcam_helpers import Explainer

    km, tm, x = pair
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))
    k_adapter, t_adapter = Explainer(km).adapter, Explainer(tm).adapter   # not inspected yet
    k_logits = k_adapter.logits(k_adapter.validate(x))
    t_logits = t_adapter.logits(t_adapter.validate(xt))
    assert k_logits.dtype == t_logits.dtype == np.float32 and k_logits.shape == (6, 4)
    with torch.no_grad():
        by_hand = tm[:-1].eval()(xt).numpy()          # everything but the nn.Softmax
        probabilities = tm(xt).numpy()
    np.testing.assert_allclose(t_logits, by_hand, atol=1e-6)
    np.testing.assert_allclose(k_logits, by_hand, atol=1e-5)
    # not the probabilities the models return, though they are these logits' softmax
    assert np.abs(k_logits - probabilities).max() > 0.1
    e = np.exp(k_logits - k_logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(axis=1, keepdims=True), km.predict(x, verbose=0), atol=1e-5)


def test_adapter_weighted_layers_walk_the_same_layers_in_both_frameworks(pair, torch_twin):
    """``Adapter.weighted_layers``: the layers with weights, input first, the same three in both
    frameworks; writing a weight through the adapter changes the model (and only that weight)."""
    from gradcam_helpers import Explainer

    km, tm, x = pair
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))
    k_adapter, t_adapter = Explainer(km).adapter, Explainer(tm).adapter
    k_layers = k_adapter.weighted_layers(k_adapter.validate(x))
    t_layers = t_adapter.weighted_layers(t_adapter.validate(xt))
    assert [name for name, _ in k_layers] == ["conv1", "conv2", "fc"]
    assert [name for name, _ in t_layers] == ["0", "3", "7"]
    for (_, kw), (_, tw) in zip(k_layers, t_layers):
        k_values = [k_adapter.weight_value(w) for w in kw]
        t_values = [t_adapter.weight_value(w) for w in tw]
        assert [v.dtype for v in k_values + t_values] == [np.float64] * 4
        assert sorted(v.size for v in k_values) == sorted(v.size for v in t_values)
        assert np.isclose(sum(np.abs(v).sum() for v in k_values), sum(np.abs(v).sum() for v in t_values))
    twin = torch_twin(km)
    adapter = Explainer(twin).adapter
    (name, (weight, bias)), *_ = adapter.weighted_layers(adapter.validate(xt))
    adapter.assign_weight(bias, np.arange(5.0))
    assert torch.equal(twin[0].bias, torch.arange(5.0)) and torch.equal(twin[3].bias, tm[3].bias)


# A network you can follow with a pencil: a 2×2 one-channel image, a 1×1 convolution with two
# filters (+1 and −1, no bias), ReLU, global average pooling, and a Dense layer W = [[1, 0], [0, 1]]
# with no bias, so logit_c = mean of channel c.
IMAGE = np.array([[1.0, -2.0], [3.0, 0.0]], dtype="float32")
# channel 0 = relu(x)  = [[1, 0], [3, 0]]  → logit_0 = 1.0
# channel 1 = relu(−x) = [[0, 2], [0, 0]]  → logit_1 = 0.5
# Grad-CAM for class 0: weights = (1/4, 0) → map = [[1, 0], [3, 0]] / 4 → normalised [[1/3, 0], [1, 0]]
# Grad-CAM for class 1: weights = (0, 1/4) → map = [[0, 2], [0, 0]] / 4 → normalised [[0, 1], [0, 0]]
EXPECTED_RAW = {0: np.array([[0.25, 0.0], [0.75, 0.0]]), 1: np.array([[0.0, 0.5], [0.0, 0.0]])}
EXPECTED_LOGITS = np.array([1.0, 0.5])


def hand_keras():
    inp = keras.Input((2, 2, 1))
    x = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(2, use_bias=False, activation="softmax")(x)
    m = keras.Model(inp, out)
    m.get_layer("conv").set_weights([np.array([1.0, -1.0], "float32").reshape(1, 1, 1, 2)])
    m.layers[-1].set_weights([np.eye(2, dtype="float32")])
    return m


def hand_torch():
    nn = torch.nn
    conv = nn.Conv2d(1, 2, 1, bias=False)
    fc = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        fc.weight.copy_(torch.eye(2))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


@pytest.mark.parametrize("target", [0, 1])
def test_hand_computed_maps(framework, target):
    if framework == "keras":
        res = explain(hand_keras(), IMAGE[None, :, :, None], "gradcam", layer="conv", target=target)
    else:
        res = explain(hand_torch(), torch.from_numpy(IMAGE[None, None]), "gradcam", layer="1", target=target)
    np.testing.assert_allclose(res.logits[0], EXPECTED_LOGITS, atol=1e-6)
    np.testing.assert_allclose(res.raw[0], EXPECTED_RAW[target], atol=1e-6)
    np.testing.assert_allclose(res.maps[0], EXPECTED_RAW[target] / EXPECTED_RAW[target].max(), atol=1e-6)
    cam = (hand_keras() if framework == "keras" else hand_torch())
    x = IMAGE[None, :, :, None] if framework == "keras" else torch.from_numpy(IMAGE[None, None])
    cam_res = explain(cam, x, "cam", layer="conv" if framework == "keras" else "1", target=target)
    np.testing.assert_allclose(cam_res.raw[0], 4 * EXPECTED_RAW[target], atol=1e-6)  # W[:, c] · A
