"""Occlusion sensitivity as an explain() method: a known answer on a model whose decision depends on
one region, the same maps from a Keras model and its PyTorch twin, captum's Occlusion as the
oracle, and clear errors for bad options; and the per-class mean map that turns local maps global."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from gradcam_helpers import explain  # noqa: E402
from gradcam_helpers.engine.occlusion import window_positions  # noqa: E402
from gradcam_helpers.evaluation import class_mean_maps  # noqa: E402

# the region the model reads: rows 2..3, columns 4..5 of an 8 × 8 image
REGION = (slice(2, 4), slice(4, 6))


def region_kernel():
    """(8, 8, 1, 2) kernel: class 0's score is the sum of the pixels in REGION, class 1's is a
    constant 0.5 (its bias), so only REGION matters for class 0 and nothing for class 1."""
    kernel = np.zeros((8, 8, 1, 2), np.float32)
    kernel[REGION[0], REGION[1], 0, 0] = 1.0
    return kernel, np.array([0.0, 0.5], np.float32)


def keras_region_model():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 8, name="conv")(inp)       # one 8 × 8 window: a dense layer
    out = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Activation("softmax")(out))
    model.get_layer("conv").set_weights(list(region_kernel()))
    return model


def torch_region_twin():
    conv = torch.nn.Conv2d(1, 2, 8)
    kernel, bias = region_kernel()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(bias))
    return torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.Softmax(dim=1))


def images(n=3, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 1.0, (n, 8, 8, 1)).astype(np.float32)


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def by_hand(x, window, stride, fill=0.0):
    """The expected attribution of class 0, worked out from the model's definition: hiding a square
    removes (x − fill) on its overlap with REGION from the score; each pixel gets the mean over the
    squares that cover it."""
    n, h, w, _ = x.shape
    starts = sorted(set(range(0, h - window + 1, stride)) | {h - window})
    total = np.zeros((n, h, w))
    count = np.zeros((h, w))
    inside = np.zeros((h, w), bool)
    inside[REGION] = True
    for r in starts:
        for c in starts:
            square = np.zeros((h, w), bool)
            square[r:r + window, c:c + window] = True
            drop = ((x[..., 0] - fill) * (square & inside)).sum(axis=(1, 2))
            total[:, square] += drop[:, None]
            count[square] += 1
    return total / count


@pytest.mark.parametrize("window,stride", [(2, 2), (3, 1), (4, 3)])
def test_known_answer_on_a_model_that_reads_one_region(window, stride):
    x = images()
    res = explain(keras_region_model(), x, "occlusion", target=0, window=window, stride=stride)
    expected = by_hand(x, window, stride)
    np.testing.assert_allclose(res.raw[..., 0], expected, atol=1e-5)
    assert res.raw.shape == (3, 8, 8, 1) and res.layer == "input" and res.method == "occlusion"
    # the map's peak lies on the region and nothing far from it lights up
    peak = np.unravel_index(res.maps[0].argmax(), (8, 8))
    assert 2 - window < peak[0] < 4 + window - 1 and 4 - window < peak[1] < 6 + window - 1
    assert np.all(res.maps[:, 6:, :2] == 0)
    # the pre-softmax score is explained: hiding the whole region drops class 0 by its pixel sum
    if window == 2 and stride == 2:
        grid = res.extras["drops"]
        assert grid.shape == (3, 4, 4)
        np.testing.assert_allclose(grid[:, 1, 2], x[:, 2:4, 4:6, 0].sum(axis=(1, 2)), rtol=1e-5)
        assert np.count_nonzero(grid) == 3


def test_a_class_that_reads_nothing_gets_an_all_zero_map_without_nan():
    res = explain(keras_region_model(), images(), "occlusion", target=1, window=2, stride=2)
    assert np.all(res.raw == 0) and np.all(res.maps == 0) and np.isfinite(res.maps).all()


def test_fill_value_enters_the_answer():
    x = images()
    res = explain(keras_region_model(), x, "occlusion", target=0, window=2, stride=1, fill=0.5)
    np.testing.assert_allclose(res.raw[..., 0], by_hand(x, 2, 1, fill=0.5), atol=1e-5)


def test_keras_model_and_its_pytorch_twin_give_the_same_occlusion_maps():
    x = images(4, seed=1)
    k = explain(keras_region_model(), x, "occlusion", target=[0, 0, 1, 0], window=3, stride=2)
    t = explain(torch_region_twin(), nchw(x), "occlusion", target=[0, 0, 1, 0], window=3, stride=2)
    np.testing.assert_allclose(k.logits, t.logits, atol=1e-5)
    np.testing.assert_allclose(k.raw, t.raw, atol=1e-5)
    np.testing.assert_allclose(k.maps, t.maps, atol=1e-5)
    assert k.maps.max() == 1


def test_equals_captum_occlusion_on_a_random_cnn():
    captum_attr = pytest.importorskip("captum.attr")
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.rand(2, 3, 12, 12)
    ours = explain(model, x, "occlusion", target=[0, 2], window=4, stride=2, batch_size=5)
    theirs = captum_attr.Occlusion(model).attribute(x, sliding_window_shapes=(3, 4, 4),
                                                    strides=(3, 2, 2), baselines=0, target=[0, 2])
    np.testing.assert_allclose(ours.raw, theirs.numpy().transpose(0, 2, 3, 1), atol=1e-6)
    assert np.abs(ours.raw).max() > 1e-3


def test_default_target_is_the_top_class_and_batch_size_changes_nothing():
    x = images(4, seed=2)
    model = keras_region_model()
    a = explain(model, x, "occlusion", window=3, stride=2, batch_size=32)
    b = explain(model, x, "occlusion", window=3, stride=2, batch_size=2)
    np.testing.assert_array_equal(a.targets, a.logits.argmax(axis=1))
    np.testing.assert_allclose(a.raw, b.raw, atol=1e-6)


def test_window_positions_cover_every_pixel():
    assert window_positions(8, 3, 2).tolist() == [0, 2, 4, 5]
    assert window_positions(8, 8, 3).tolist() == [0]
    assert window_positions(9, 2, 100).tolist() == [0, 7]


@pytest.mark.parametrize("options,error,match", [
    ({"window": 9}, ValueError, r"occlusion window \(9 pixels\) is larger than the image \(8 pixels\)"),
    ({"window": 0}, ValueError, "window must be an int >= 1"),
    ({"stride": 1.5}, ValueError, "stride must be an int >= 1"),
    ({"fill": float("nan")}, ValueError, "fill must be a finite number"),
    ({"steps": 3}, TypeError, "its options are: window, stride, fill"),
])
def test_bad_options_get_the_same_clear_error_in_both_frameworks(options, error, match):
    x = images(1)
    with pytest.raises(error, match=match):
        explain(keras_region_model(), x, "occlusion", **options)
    with pytest.raises(error, match=match):
        explain(torch_region_twin(), nchw(x), "occlusion", **options)


# ------------------------------------------------------------------------------------------------
# class_mean_maps


def test_class_mean_maps_by_hand():
    maps = np.zeros((5, 2, 2), np.float32)
    maps[0, 0, 0], maps[1, 0, 0], maps[2, 1, 1] = 1.0, 0.5, 0.8
    maps[3] = 0.25
    labels = np.array([3, 3, 7, 7, 3])
    out = class_mean_maps(maps, labels)
    assert out.classes.tolist() == [3, 7] and out.counts.tolist() == [3, 2]
    np.testing.assert_allclose(out.mean[0], [[0.5, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(out.mean[1], [[0.125, 0.125], [0.125, 0.525]])
    np.testing.assert_allclose(out.std[0, 0, 0], np.std([1.0, 0.5, 0.0]), rtol=1e-6)
    # a requested class without images: zero mean, count 0, no NaN
    empty = class_mean_maps(maps, labels, classes=[7, 5])
    assert empty.counts.tolist() == [2, 0] and not empty.mean[1].any()
    assert np.isfinite(empty.std).all()


def test_class_mean_maps_rejects_bad_input_with_the_fix():
    with pytest.raises(ValueError, match="2 labels: pass one label per map"):
        class_mean_maps(np.zeros((3, 2, 2)), [0, 1])
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\).*Explanation.maps"):
        class_mean_maps(np.zeros((3, 2, 2, 1)), [0, 1, 2])
    with pytest.raises(ValueError, match="NaN or inf.*nan_to_num"):
        class_mean_maps(np.full((1, 2, 2), np.nan), [0])
    with pytest.raises(ValueError, match="class indices"):
        class_mean_maps(np.zeros((1, 2, 2)), [0.5])
