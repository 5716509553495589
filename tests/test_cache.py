"""The one cache helper every trained model uses: keys, thread count, corrupt files."""
import numpy as np
import pytest

from gradcam_helpers.course import cache


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    return tmp_path


def test_cache_path_holds_the_thread_count(folder):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = {"lr": 0.1}
        path_one = cache.cache_path("m", one, ".pt", framework="torch")
        torch.set_num_threads(2)
        two = {"lr": 0.1}
        path_two = cache.cache_path("m", two, ".pt", framework="torch")
    finally:
        torch.set_num_threads(before)
    assert one["threads"] == 1 and two["threads"] == 2
    assert path_one != path_two and path_one.parent == folder
    assert path_one.name == f"m-{cache.config_key(one)}.pt"  # the recorded config gives the name
    with pytest.raises(ValueError, match="unknown framework 'jax'"):
        cache.cache_path("m", {}, ".pt", framework="jax")


def test_load_or_train_trains_once_and_retrains_a_corrupt_file(folder):
    path = folder / "model.npy"
    trained = []

    def train():
        trained.append(1)
        return np.arange(4.0)

    def save(value, file):
        cache.atomic_write(file, lambda tmp: np.save(tmp, value))

    value, from_cache = cache.load_or_train(path, np.load, train, save)
    assert not from_cache and len(trained) == 1
    value, from_cache = cache.load_or_train(path, np.load, train, save)
    assert from_cache and len(trained) == 1 and value.tolist() == [0, 1, 2, 3]
    path.write_bytes(b"not a numpy file")
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        value, from_cache = cache.load_or_train(path, np.load, train, save)
    assert not from_cache and len(trained) == 2
    assert cache.load_or_train(path, np.load, train, save)[1]  # the good file replaced the bad one
    assert not cache.load_or_train(path, np.load, train, save, retrain=True)[1]


def test_fingerprint_sees_values_shapes_and_dtypes():
    a = np.zeros((2, 3), np.float32)
    assert cache.fingerprint(a) == cache.fingerprint(a.copy())
    assert len({cache.fingerprint(a), cache.fingerprint(a.reshape(3, 2)),
                cache.fingerprint(a.astype(np.float64)), cache.fingerprint(a + 1)}) == 4
