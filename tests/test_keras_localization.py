"""The canvas CNN of lesson 04: architecture, cache round trip, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from gradcam_helpers.course.models import keras_localization as kl  # noqa: E402

TINY = dict(epochs=1, one_digit=48, two_digit=16, canvas=32, batch_size=16, verbose=False)


class _Data:
    """A stand-in for MnistData: 40 fake digits (a bright bar at a class-dependent place)."""

    source = "test"

    def __init__(self, n: int = 40):
        x = np.zeros((n, 28, 28, 1), np.float32)
        y = np.arange(n) % 10
        for i, c in enumerate(y):
            x[i, 4 + 2 * c:8 + 2 * c, 6:20, 0] = 1.0
        self.x_train, self.y_train = x, y.astype(np.int64)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    return tmp_path


def test_builder_takes_any_input_size():
    model = kl.build_localization_cnn()
    names = [layer.name for layer in model.layers]
    assert kl.TARGET_LAYER in names and names[-1] == "predictions"
    for size in (28, 48, 64):
        out = model(np.zeros((2, size, size, 1), np.float32))
        assert tuple(out.shape) == (2, 10)
        np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)   # softmax
    feature = model.get_layer(kl.TARGET_LAYER).output
    assert len(feature.shape) == 4   # a spatial map for Grad-CAM


def test_canvases_targets_are_soft_for_two_digits():
    data = _Data()
    images, targets, single = kl.make_canvases(data.x_train, data.y_train, 6, 4, 36, seed=3)
    assert images.shape == (10, 36, 36, 1) and targets.shape == (10, 10)
    assert single.tolist() == [True] * 6 + [False] * 4
    np.testing.assert_allclose(targets.sum(axis=1), 1.0)
    assert np.all(targets[single].max(axis=1) == 1.0)
    assert np.all(np.sort(targets[~single], axis=1)[:, -2:] == 0.5)   # two classes, half each


@pytest.mark.slow
def test_trains_once_then_loads_from_cache(cache):
    data = _Data()
    first = kl.get_localization_cnn(data, **TINY)
    assert not first.from_cache and first.path.exists() and first.path.parent == cache
    assert len(first.history["loss"]) == TINY["epochs"]
    second = kl.get_localization_cnn(data, **TINY)
    assert second.from_cache and second.path == first.path
    x = np.random.default_rng(0).uniform(0, 1, (3, 40, 40, 1)).astype(np.float32)
    np.testing.assert_allclose(second.model.predict(x, verbose=0), first.model.predict(x, verbose=0),
                               atol=1e-6)
    # a different setting is a different file; other data is a different file
    assert kl.get_localization_cnn(data, **{**TINY, "seed": 1}).path != first.path
    other = _Data(30)
    assert kl.get_localization_cnn(other, **TINY).path != first.path


def test_corrupt_cache_file_is_retrained(cache):
    data = _Data()
    first = kl.get_localization_cnn(data, **TINY)
    first.path.write_bytes(b"not a keras file")
    with pytest.warns(UserWarning, match="cannot be read"):
        again = kl.get_localization_cnn(data, **TINY)
    assert not again.from_cache and kl.get_localization_cnn(data, **TINY).from_cache


@pytest.mark.parametrize("bad, match", [
    (dict(epochs=0), "epochs"),
    (dict(one_digit=0, two_digit=0), "at least one"),
    (dict(one_digit=-1), "one_digit"),
    (dict(canvas=20), "canvas"),
])
def test_bad_settings_say_what_to_fix(cache, bad, match):
    with pytest.raises(ValueError, match=match):
        kl.get_localization_cnn(_Data(), **{**TINY, **bad})


def test_wrong_data_says_what_to_pass(cache):
    class Flat:
        x_train = np.zeros((10, 784), np.float32)
        y_train = np.zeros(10, np.int64)

    with pytest.raises(ValueError, match="load_mnist"):
        kl.get_localization_cnn(Flat(), **TINY)
