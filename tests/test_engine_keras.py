"""The Keras adapter through the public API: model kinds, layer finding, correctness, errors."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from gradcam_helpers import Explainer, explain  # noqa: E402
from gradcam_helpers.engine.registry import method_names  # noqa: E402

GRADIENT_METHODS = method_names(needs="gradients", kind="cam")
#: every CAM-family method but Score-CAM (slow: one forward pass per channel)
FAST_METHODS = [m for m in method_names(kind="cam") if m not in method_names(needs="scores")]


def flatten_cnn_layers():
    return [keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(5, activation="softmax", name="out")]


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((8, 20, 20, 1)).astype("float32")


@pytest.fixture(scope="module")
def model(keras_gap_cnn):
    """The GAP CNN of tests/conftest.py: conv1 → conv2 → gap → dense (softmax)."""
    return keras_gap_cnn


def test_cam_equals_gradcam_on_gap_network(model, images):
    cam = explain(model, images, "cam")
    grad = explain(model, images, "gradcam")
    assert cam.layer == grad.layer == "conv2"
    assert np.abs(cam.maps - grad.maps).max() < 1e-5
    # and the raw maps differ by exactly the pooling factor 1 / (h w)
    np.testing.assert_allclose(grad.raw * 16 * 16, cam.raw, rtol=1e-4, atol=1e-6)


def test_gradients_are_of_the_logit_not_the_softmax(model, images):
    res = explain(model, images[:2], "gradcam")
    feature = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    acts = feature(images[:2]).numpy()
    kernel = model.get_layer("dense").kernel.numpy()
    # logit_c = mean_ij(A) @ W[:, c] + b  →  dlogit/dA_ijk = W[k, c] / (h w)
    expected_weights = kernel[:, res.targets].T / (16 * 16)
    expected = np.maximum(np.einsum("nhwk,nk->nhw", acts, expected_weights), 0)
    np.testing.assert_allclose(res.raw, expected, rtol=1e-4, atol=1e-7)
    probs = model(images[:2]).numpy()
    np.testing.assert_allclose(res.probabilities, probs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(res.logits, probs)


def test_model_is_not_mutated(model, images):
    before = model(images).numpy()
    explain(model, images, "gradcam")
    explain(model, images, "scorecam")
    assert model.get_layer("dense").activation.__name__ == "softmax"
    assert all("call" not in layer.__dict__ for layer in model.layers)
    np.testing.assert_array_equal(model(images).numpy(), before)


def test_image_alone_equals_image_in_a_batch_with_other_targets(model, images):
    ex = Explainer(model)
    targets = [3, 1, 4, 1, 5, 9, 2, 6]
    for method in FAST_METHODS:
        batch = ex(images, method=method, target=targets)
        alone = ex(images[2:3], method=method, target=targets[2])
        np.testing.assert_allclose(alone.maps[0], batch.maps[2], atol=1e-5, err_msg=method)


def test_batching_inside_the_explainer_changes_nothing(model, images):
    whole = Explainer(model, batch_size=32)(images, "gradcam++", target=2)
    chunks = Explainer(model, batch_size=3)(images, "gradcam++", target=2)
    np.testing.assert_allclose(whole.maps, chunks.maps, atol=1e-6)


def test_every_method_returns_unit_range_maps_at_input_size(model, images):
    for method in method_names(kind="cam"):
        res = explain(model, images[:2], method)
        assert res.maps.shape == (2, 20, 20) and res.maps.dtype == np.float32, method
        assert res.raw.shape == (2, 16, 16), method
        assert np.isfinite(res.maps).all() and res.maps.min() >= 0 and res.maps.max() <= 1, method


def test_all_zero_map_stays_zero_without_nan():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv",
                            kernel_initializer="zeros", bias_initializer="zeros")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3)(x)
    dead = keras.Model(inp, out)
    for method in method_names(kind="cam"):
        res = explain(dead, np.ones((2, 8, 8, 1), "float32"), method)
        assert np.isfinite(res.maps).all() and not res.maps.any(), method


def test_sequential_with_and_without_input_layer(images):
    with_input = keras.Sequential([keras.Input((20, 20, 1))] + flatten_cnn_layers())
    without_input = keras.Sequential(flatten_cnn_layers())
    without_input(images[:1])  # built by an eager call: .output is still undefined
    with pytest.raises(AttributeError):
        _ = without_input.output
    without_input.set_weights(with_input.get_weights())
    a = explain(with_input, images, "gradcam")
    b = explain(without_input, images, "gradcam")
    assert a.layer == b.layer == "c1"
    np.testing.assert_allclose(a.maps, b.maps, atol=1e-6)


def test_unbuilt_sequential_is_built_by_the_first_call(images):
    seq = keras.Sequential(flatten_cnn_layers())
    res = explain(seq, images[:2])
    assert res.layer == "c1" and res.maps.shape == (2, 20, 20)


def test_cam_on_flatten_model_says_why_and_points_to_gradcam(images):
    seq = keras.Sequential([keras.Input((20, 20, 1))] + flatten_cnn_layers())
    with pytest.raises(ValueError, match="GlobalAveragePooling2D.*gradcam"):
        explain(seq, images, "cam")


def test_nested_base_matches_flat_model():
    keras.utils.set_random_seed(1)
    base_in = keras.Input((24, 24, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="b_conv1")(base_in)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="b_conv2")(h)
    base = keras.Model(base_in, h, name="base")
    head = keras.layers.Dense(3, activation="softmax", name="head")
    gap = keras.layers.GlobalAveragePooling2D()
    outer_in = keras.Input((24, 24, 3))
    nested = keras.Model(outer_in, head(gap(base(outer_in))))
    nested_seq = keras.Sequential([base, gap, head])
    nested_seq(np.zeros((1, 24, 24, 3), "float32"))
    # the same layer objects applied to a fresh input give an equivalent flat graph
    flat_in = keras.Input((24, 24, 3))
    x = base.get_layer("b_conv2")(base.get_layer("b_conv1")(flat_in))
    flat = keras.Model(flat_in, head(gap(x)))
    x = np.random.default_rng(2).random((3, 24, 24, 3)).astype("float32")
    ref = explain(flat, x, "gradcam")
    for m in (nested, nested_seq):
        res = explain(m, x, "gradcam")
        assert res.layer == "base/b_conv2"
        np.testing.assert_allclose(res.maps, ref.maps, atol=1e-5)
    assert explain(nested, x, "gradcam", layer="b_conv1").layer == "base/b_conv1"


class SubclassedCNN(keras.Model):
    def __init__(self):
        super().__init__()
        self.conv = keras.layers.Conv2D(6, 3, activation="relu", name="conv")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.dense = keras.layers.Dense(4, activation="softmax")

    def call(self, x):
        return self.dense(self.pool(self.conv(x)))


def test_subclassed_model_matches_functional_twin(images):
    sub = SubclassedCNN()
    sub(images[:1])
    inp = keras.Input((20, 20, 1))
    twin = keras.Model(inp, sub.dense(sub.pool(sub.conv(inp))))
    for method in ("gradcam", "cam", "layercam"):
        a = explain(sub, images, method)
        b = explain(twin, images, method)
        assert a.layer == "conv"
        np.testing.assert_allclose(a.maps, b.maps, atol=1e-6)


@pytest.mark.parametrize("builder, expected", [
    (lambda: keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5), "conv5_block3_out"),
    (lambda: keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=5), "block5_conv3"),
])
def test_automatic_layer_matches_the_authors_choice(builder, expected):
    m = builder()
    x = np.random.default_rng(0).random((1,) + tuple(m.inputs[0].shape[1:])).astype("float32")
    assert explain(m, x, "gradcam").layer == expected


def test_automatic_layer_on_the_seed_mnist_cnn():
    from gradcam_helpers.course.models.keras_mnist import build_mnist_cnn

    m = build_mnist_cnn()
    assert explain(m, np.zeros((1, 28, 28, 1), "float32")).layer == "conv2"


def test_layer_object_and_name_are_accepted(model, images):
    by_obj = explain(model, images[:2], layer=model.get_layer("conv1"))
    by_name = explain(model, images[:2], layer="conv1")
    assert by_obj.layer == by_name.layer == "conv1"
    np.testing.assert_array_equal(by_obj.maps, by_name.maps)


def test_clear_errors(model, images):
    with pytest.raises(ValueError, match=r"no layer named 'conv3'.*conv1.*conv2"):
        explain(model, images, layer="conv3")
    with pytest.raises(ValueError, match="not a spatial"):
        explain(model, images, layer="dense")
    with pytest.raises(ValueError, match="out of range.*10 classes"):
        explain(model, images, target=10)
    with pytest.raises(ValueError, match="got 3 targets for 8 images"):
        explain(model, images, target=[1, 2, 3])
    with pytest.raises(ValueError, match="batch axis"):
        explain(model, images[0])
    with pytest.raises(ValueError, match="empty"):
        explain(model, images[:0])
    with pytest.raises(ValueError, match="expects 1 channel"):
        explain(model, np.repeat(images, 3, axis=-1))
    with pytest.raises(ValueError, match="uint8"):
        explain(model, (images * 255).astype("uint8"))
    with pytest.raises(ValueError, match="unknown method"):
        explain(model, images, method="deconvnet")


class EagerOnlyCNN(SubclassedCNN):
    """Python control flow on a tensor's value: cannot be traced into a tf.function."""

    def call(self, x):
        if float(tf.reduce_mean(x)) > -1.0:
            x = x * 1.0
        return super().call(x)


def test_untraceable_model_falls_back_to_eager(images):
    sub = EagerOnlyCNN()
    sub(images[:1])
    ex = Explainer(sub)
    with pytest.warns(UserWarning, match="eagerly"):
        res = ex(images, "gradcam")
    assert not ex.adapter._compile  # the compiled attempt failed and was dropped, with a warning
    twin = SubclassedCNN()
    twin(images[:1])
    twin.set_weights(sub.get_weights())
    np.testing.assert_allclose(res.maps, explain(twin, images, "gradcam").maps, atol=1e-6)


def test_explain_reuses_its_explainer_until_the_model_changes(images):
    from gradcam_helpers.engine import pipeline

    seq = keras.Sequential([keras.Input((20, 20, 1))] + flatten_cnn_layers()[:1])
    seq.add(keras.layers.GlobalAveragePooling2D())
    seq.add(keras.layers.Dense(3))
    explain(seq, images)
    first = [e for e in pipeline._EXPLAINERS.values() if e.adapter.model is seq]
    explain(seq, images, "gradcam++")
    assert [e for e in pipeline._EXPLAINERS.values() if e.adapter.model is seq] == first
    seq.pop()
    seq.add(keras.layers.Dense(4))
    res = explain(seq, images)
    assert res.logits.shape == (8, 4)
