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


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A fake checkout: the default cache folder and a seed folder inside tmp_path."""
    monkeypatch.delenv("GRADCAM_CACHE", raising=False)
    monkeypatch.setattr(cache, "_REPOSITORY", tmp_path)
    monkeypatch.setattr(cache, "SEED_DIR", tmp_path / "data" / "models")
    cache.SEED_DIR.mkdir(parents=True)
    return tmp_path


def _counting_trainer():
    trained = []

    def train():
        trained.append(1)
        return np.arange(3.0)
    return trained, train


def _save(result, path):
    cache.atomic_write(path, lambda p: np.save(p, result))


def test_a_committed_seed_is_copied_with_its_companions_instead_of_training(checkout):
    np.save(cache.SEED_DIR / "m-abc.npy", np.full(3, 7.0))
    (cache.SEED_DIR / "m-abc.json").write_text("{}")
    (cache.SEED_DIR / "m-abd.npy").write_bytes(b"another key: never copied")
    trained, train = _counting_trainer()
    result, from_cache = cache.load_or_train(cache.cache_dir() / "m-abc.npy", np.load, train, _save)
    assert from_cache and not trained and result.tolist() == [7.0] * 3
    assert sorted(p.name for p in cache.cache_dir().iterdir()) == ["m-abc.json", "m-abc.npy"]
    # no seed for this key: trained as before
    result, from_cache = cache.load_or_train(cache.cache_dir() / "m-xyz.npy", np.load, train, _save)
    assert not from_cache and trained == [1]


def test_seeds_are_not_used_for_a_cache_folder_of_ones_own(checkout, tmp_path, monkeypatch):
    np.save(cache.SEED_DIR / "m-abc.npy", np.full(3, 7.0))
    own = tmp_path / "own"
    monkeypatch.setenv("GRADCAM_CACHE", str(own))
    trained, train = _counting_trainer()
    result, from_cache = cache.load_or_train(cache.cache_dir() / "m-abc.npy", np.load, train, _save)
    assert not from_cache and trained == [1] and cache.cache_dir() == own
    # retrain=True ignores a seed as it ignores the cache
    monkeypatch.delenv("GRADCAM_CACHE")
    result, from_cache = cache.load_or_train(cache.cache_dir() / "m-abc.npy", np.load, train, _save,
                                             retrain=True)
    assert not from_cache and trained == [1, 1]


def test_each_committed_keras_seed_is_named_by_the_key_of_its_recorded_config():
    import json

    seeds = sorted(cache.SEED_DIR.glob("*.keras"))
    assert seeds, f"no seeds in {cache.SEED_DIR}"
    for model in seeds:
        recorded = json.loads(model.with_suffix(".json").read_text())["config"]
        assert model.stem.rsplit("-", 1)[1] == cache.config_key(recorded), model.name
