"""The offline pretrained network: EfficientNet-Lite0 with its exact preprocessing, labels, photos,
and the loaders for users with a network (tested on small files the tests write)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from gradcam_helpers import explain  # noqa: E402
from gradcam_helpers.course.models import pretrained as pt  # noqa: E402
from gradcam_helpers.course.models.torch_efficientnet import weights_path  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(2)
    return pt.efficientnet_lite0("torch")


@pytest.fixture(scope="module")
def batch():
    return pt.photos()


@pytest.fixture(scope="module")
def logits(model, batch):
    with torch.no_grad():
        return model(pt.preprocess(batch)).numpy()


def test_photos_are_rgb_224(batch):
    assert batch.shape == (len(pt.PHOTOS), 224, 224, 3) and batch.dtype == np.uint8
    # RGB, not BGR: the coffee photo's crema is more red than blue
    coffee = batch[pt.PHOTOS.index("coffee")].reshape(-1, 3).astype(float)
    assert coffee[:, 0].mean() > coffee[:, 2].mean()
    with pytest.raises(ValueError, match="choose one of"):
        pt.load_photo("dog")


def test_every_listed_photo_loads_offline_as_rgb_with_a_license():
    assert set(pt.PHOTOS) <= set(pt.PHOTO_SOURCES)
    assert len(pt.COMPARISON_PHOTOS) >= 12 and "hubble_deep_field" not in pt.COMPARISON_PHOTOS
    assert {pt.PHOTO_SOURCES[n][0] for n in pt.COMPARISON_PHOTOS} == {"scikit-image", "scikit-learn", "matplotlib"}
    for name, (package, what, license_) in pt.PHOTO_SOURCES.items():
        assert package and what and license_, name
        image = pt.load_photo(name)
        assert image.shape == (224, 224, 3) and image.dtype == np.uint8, name
        assert image.std() > 10, name                       # a picture, not a flat field
        grey = np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
        assert grey == (name in ("camera", "clock", "coins")), name
    # stored sizes: the packages' own files, uncropped
    assert pt.load_photo("china", size=None).shape == (427, 640, 3)
    assert pt.load_photo("grace_hopper", size=None).shape == (600, 512, 3)
    assert pt.load_photo("clock", size=None).shape == (300, 400, 3)


def test_chelsea_is_a_cat_and_coffee_espresso(logits):
    top = pt.decode_predictions(logits, top=5)
    chelsea = top[pt.PHOTOS.index("chelsea")]
    assert chelsea[0][0] in pt.CAT_CLASSES
    assert "cat" in chelsea[0][1] or chelsea[0][1] == "tabby"
    coffee = top[pt.PHOTOS.index("coffee")]
    # the reference (x - 127) / 128 preprocessing makes it confident; the torchvision mean/std
    # from the package README gives 0.78
    assert coffee[0][:2] == (967, "espresso") and coffee[0][2] > 0.9


def test_decode_predictions_sorted_probabilities(logits):
    top = pt.decode_predictions(torch.from_numpy(logits), top=3)
    assert len(top) == len(logits) and all(len(row) == 3 for row in top)
    for row, z in zip(top, logits):
        p = [r[2] for r in row]
        assert p == sorted(p, reverse=True) and 0 < sum(p) <= 1 + 1e-9
        assert row[0][0] == int(np.argmax(z))
    assert len(pt.imagenet_labels()) == 1000 and pt.imagenet_labels()[285] == "Egyptian cat"
    with pytest.raises(ValueError, match="1000"):
        pt.decode_predictions(np.zeros((2, 10)))


def test_preprocess_uint8_and_float_agree():
    img = pt.load_photo("chelsea")
    a = pt.preprocess(img, "keras")
    b = pt.preprocess(img.astype(np.float32) / 255, "keras")
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (1, 224, 224, 3) and -1 <= a.min() and a.max() <= 1
    t = pt.preprocess(img[None])
    assert tuple(t.shape) == (1, 3, 224, 224)
    np.testing.assert_array_equal(pt.deprocess(t)[0], img)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pt.preprocess(img.astype(np.float32))
    with pytest.raises(ValueError, match="channels last"):
        pt.preprocess(np.zeros((1, 3, 8, 8), np.uint8))


def test_same_outputs_as_the_package_network(model, batch, logits):
    from efficientnet_lite_pytorch import EfficientNet

    original = EfficientNet.from_name("efficientnet-lite0")
    original.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
    with torch.no_grad():
        ref = original.eval()(pt.preprocess(batch[:2])).numpy()
    np.testing.assert_allclose(logits[:2], ref, atol=1e-5)


def test_cam_layer_is_the_head_activation(model, batch):
    x = pt.preprocess(batch[:2])
    cam = explain(model, x, "cam")
    grad = explain(model, x, "gradcam")
    assert cam.layer == "_head_act" and cam.raw.shape == (2, 7, 7)
    np.testing.assert_allclose(cam.maps, grad.maps, atol=1e-4)
    assert model.training is False


def test_keras_application_loads_a_weights_file(tmp_path):
    keras = pytest.importorskip("keras")
    kwargs = dict(alpha=0.35, input_shape=(96, 96, 3))
    keras.utils.set_random_seed(0)
    source = keras.applications.MobileNetV2(weights=None, **kwargs)
    path = tmp_path / "small.weights.h5"
    source.save_weights(path)
    model, prep = pt.keras_application("MobileNetV2", weights=path, **kwargs)
    images = pt.photos(("chelsea", "coffee"), size=96)
    x = prep(images)
    assert x.shape == (2, 96, 96, 3) and -1 <= x.min() and x.max() <= 1  # MobileNetV2: [-1, 1]
    np.testing.assert_allclose(model.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        pt.keras_application("MobileNetV2", weights=tmp_path / "missing.weights.h5", **kwargs)
    with pytest.raises(ValueError, match="no network"):
        pt.keras_application("NotANetwork")


def test_torchvision_weights_file_loads(tmp_path):
    from gradcam_helpers.course.models.torch_resnet import resnet18

    torch.manual_seed(0)
    source = resnet18(width=8).eval()
    path = tmp_path / "resnet18-small.pth"
    torch.save(source.state_dict(), path)
    model, prep = pt.torch_resnet_imagenet(path, arch="resnet18", width=8)
    x = prep(pt.photos(("chelsea",), size=64))
    assert tuple(x.shape) == (1, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), source(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="does not fit"):
        pt.torch_resnet_imagenet(path, arch="resnet34", width=8)
    with pytest.raises(FileNotFoundError, match="download"):
        pt.torch_resnet_imagenet(tmp_path / "nope.pth")


@pytest.mark.slow
def test_integrated_gradients_completeness_on_the_real_network(model, batch):
    """Attributions add up to score(x) - score(black) within 2 % with the default 50 steps.

    On the coffee photo; on chelsea the gap is about 2.3 %: the cat's score rises almost entirely in
    the first 3 % of the path from black (saturation, lesson 08), which 50 points resolve less well.
    """
    black = pt.preprocess(np.zeros((224, 224, 3), np.uint8))
    x = pt.preprocess(batch[pt.PHOTOS.index("coffee")])
    e = explain(model, x, "integrated_gradients", baseline=black)
    assert e.raw.shape == (1, 224, 224, 3) and e.targets[0] == 967
    change = e.scores[0] - e.extras["baseline_scores"][0]
    assert change > 5
    np.testing.assert_allclose(e.extras["delta"][0], e.raw.astype(np.float64).sum() - change, atol=1e-3)
    assert abs(e.extras["delta"][0]) <= 0.02 * abs(change)
