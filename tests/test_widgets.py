"""The interactive explorer: set the widgets from Python and check what the widget shows."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from gradcam_helpers import explain  # noqa: E402
from gradcam_helpers.course.overlay import overlay  # noqa: E402
from gradcam_helpers.widgets import Explorer, _upscale, decode_png, explore  # noqa: E402

NAMES = [f"class-{c}" for c in range(10)]


# ------------------------------------------------------------------ a small Keras model


@pytest.fixture(scope="module")
def keras_model(keras_gap_cnn):
    """The GAP CNN of tests/conftest.py: conv1 → conv2 → gap → dense (softmax, ten classes)."""
    return keras_gap_cnn


@pytest.fixture(scope="module")
def keras_images():
    return np.random.default_rng(0).random((5, 20, 20, 1)).astype("float32")


@pytest.fixture()
def ex(keras_model, keras_images):
    return Explorer(keras_model, keras_images, class_names=NAMES, labels=[0, 1, 2, 3, 4],
                    layers=["conv2", "conv1"], methods=["gradcam", "gradcam++", "cam"], top_k=3,
                    display_size=40)


def _scaled_input(images, i, size=40):
    rgb = np.repeat(np.asarray(images[i], np.float32), 3, axis=-1)
    return _upscale(rgb, size)


def test_starts_at_the_top_class_and_shows_its_map(ex, keras_model, keras_images):
    ref = explain(keras_model, keras_images[:1], layer="conv2")
    assert ex.image == 0 and ex.layer == "conv2" and ex.method == "gradcam"
    assert ex.target == int(ref.targets[0]) == int(ref.logits[0].argmax())
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    shown = ex.displayed
    assert shown.shape == (40, 40, 3) and shown.dtype == np.uint8
    expected = overlay(_scaled_input(keras_images, 0), ref.maps[0], alpha=0.5)
    assert np.abs(shown.astype(int) - expected).max() <= 1
    assert ex.error is None and "class-" in ex.info.value and "conv2" in ex.info.value


def test_class_dropdown_lists_the_top_k_by_score_with_names(ex):
    logits = ex.explanation.logits[0]
    options = ex.controls["target"].options
    assert [v for _, v in options] == list(np.argsort(-logits)[:3])
    assert all(label.startswith(f"{v}: class-{v}") and "p=" in label for label, v in options)


def test_a_different_class_gives_a_different_map(ex, keras_model, keras_images):
    first_map, first_view = ex.current_map.copy(), ex.displayed
    second = ex.controls["target"].options[1][1]
    ex.target = second
    assert ex.target == second
    ref = explain(keras_model, keras_images[:1], layer="conv2", target=second)
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    assert np.abs(ex.current_map - first_map).max() > 0.05
    assert np.abs(ex.displayed.astype(int) - first_view).max() > 10
    assert f"class-{second}" in ex.info.value


def test_alpha_zero_shows_the_plain_image_and_one_only_the_heatmap(ex, keras_images):
    ex.alpha = 0.0
    plain = np.round(_scaled_input(keras_images, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(ex.displayed, plain)
    np.testing.assert_array_equal(ex.displayed_plain, plain)
    ex.alpha = 1.0
    heat = overlay(plain, ex.current_map, alpha=1.0)
    np.testing.assert_array_equal(ex.displayed, heat)
    assert not np.array_equal(ex.displayed, plain)


def test_a_new_image_starts_at_its_own_top_class(ex, keras_model, keras_images):
    ex.target = ex.controls["target"].options[2][1]
    ex.image = 3
    ref = explain(keras_model, keras_images[3:4], layer="conv2")
    assert ex.target == int(ref.targets[0])
    assert [v for _, v in ex.controls["target"].options][0] == ex.target
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    np.testing.assert_array_equal(ex.displayed_plain,
                                  np.round(_scaled_input(keras_images, 3) * 255).astype(np.uint8))
    assert "正解 3: class-3" in ex.info.value


def test_layer_and_method_switch_the_map(ex, keras_model, keras_images):
    ex.set(layer="conv1", method="gradcam++")
    ref = explain(keras_model, keras_images[:1], method="gradcam++", layer="conv1", target=ex.target)
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    assert ex.explanation.layer == "conv1" and "conv1" in ex.info.value
    # CAM on this GAP network is Grad-CAM up to scale, on the same layer
    ex.set(layer="conv2", method="cam")
    cam_map = ex.current_map.copy()
    ex.method = "gradcam"
    assert np.abs(cam_map - ex.current_map).max() < 1e-5


def test_a_method_that_cannot_run_is_reported_in_the_widget(keras_images):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(1)
    flat = keras.Sequential([keras.Input((20, 20, 1)), keras.layers.Conv2D(4, 3, name="c1"),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    ex = Explorer(flat, keras_images, methods=["gradcam", "cam"], display_size=40)
    assert ex.error is None
    ex.method = "cam"
    assert ex.error is not None and "GlobalAveragePooling2D" in ex.error
    assert "エラー" in ex.info.value
    np.testing.assert_array_equal(ex.displayed, ex.displayed_plain)  # no stale map left up
    ex.method = "gradcam"
    assert ex.error is None


def test_misuse_gets_clear_errors(ex, keras_model, keras_images):
    offered = [v for _, v in ex.controls["target"].options]
    with pytest.raises(ValueError, match="top-3"):
        ex.target = [c for c in range(10) if c not in offered][0]
    with pytest.raises(ValueError, match="out of range"):
        ex.image = 5
    with pytest.raises(ValueError, match="alpha"):
        ex.alpha = 1.5
    with pytest.raises(ValueError, match="not one of"):
        ex.method = "scorecam"
    with pytest.raises(ValueError, match="not one of"):
        ex.layer = "gap_missing"
    with pytest.raises(ValueError, match="unknown setting"):
        ex.set(colour="red")
    with pytest.raises(ValueError, match="one name per class"):
        Explorer(keras_model, keras_images, class_names=["a", "b"])
    with pytest.raises(ValueError, match="one true class per image"):
        Explorer(keras_model, keras_images, labels=[1, 2])
    with pytest.raises(ValueError, match="at least one image"):
        Explorer(keras_model, keras_images[:0])
    with pytest.raises(ValueError, match="unknown method"):
        Explorer(keras_model, keras_images, methods=["gradcam", "nonsense"])


def test_explore_shows_the_widget_and_a_static_figure(keras_model, keras_images, monkeypatch):
    import IPython.display
    import matplotlib.figure

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    ex = explore(keras_model, keras_images, methods=["gradcam", "layercam"], static_images=2,
                 display_size=40)
    assert len(shown) == 2 and shown[0].widget is ex.widget
    bundle = shown[0]._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    assert "JupyterLab" in bundle["text/plain"]          # what a code host shows instead of HBox(...)
    fig = shown[1]
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2 * 3  # 2 images × (input + 2 methods)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["入力", "gradcam", "layercam"]


# ------------------------------------------------------------------ the same with PyTorch


def test_pytorch_model_with_channels_first_images():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    images = torch.rand(3, 3, 12, 16)
    ex = Explorer(model, images, class_names=["a", "b", "c", "d"], top_k=4, display_size=32)
    assert ex.framework == "torch" and ex.explanation.layer == "3"  # the last ReLU
    plain = _upscale(images[1].permute(1, 2, 0).numpy(), 32)
    ex.image = 1
    np.testing.assert_array_equal(ex.displayed_plain, np.round(plain * 255).astype(np.uint8))
    assert ex.displayed.shape == (24, 32, 3)
    before = ex.current_map.copy()
    ex.target = ex.controls["target"].options[-1][1]
    ref = explain(model, images[1:2], target=ex.target)
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    assert np.abs(ex.current_map - before).max() > 0.05
    ex.alpha = 0
    np.testing.assert_array_equal(ex.displayed, ex.displayed_plain)


def test_display_images_replace_normalised_inputs(keras_model, keras_images):
    photos = (np.random.default_rng(3).random((5, 20, 20, 3)) * 255).astype(np.uint8)
    ex = Explorer(keras_model, keras_images, display_images=photos, display_size=20, alpha=0.0)
    np.testing.assert_array_equal(ex.displayed, photos[0])
    with pytest.raises(ValueError, match="display_images has 2"):
        Explorer(keras_model, keras_images, display_images=photos[:2])


def test_decode_png_round_trip():
    from gradcam_helpers.widgets import _png

    rgb = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    np.testing.assert_array_equal(decode_png(_png(rgb)), rgb)


def test_pixel_attribution_methods_work_through_explain(keras_model, keras_images):
    ex = Explorer(keras_model, keras_images, methods=["gradcam", "integrated_gradients"],
                  display_size=40)
    cam_map = ex.current_map.copy()
    ex.method = "integrated_gradients"
    assert ex.error is None
    ref = explain(keras_model, keras_images[:1], method="integrated_gradients", target=ex.target)
    np.testing.assert_allclose(ex.current_map, ref.maps[0], atol=1e-6)
    assert ex.current_map.shape == cam_map.shape and np.abs(ex.current_map - cam_map).max() > 0.05
