"""The plain-PyTorch ResNet: torchvision's names and shapes, the knobs for small images, and the
cached deterministic trainer."""
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradcam_helpers.course.models import torch_resnet as tr  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """These models are tiny: one thread is fastest and immune to a busy machine (tests/conftest.py)."""


BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# torchvision's resnet18 (3 input channels, 1000 classes), module by module: name and weight
# shape. Each BatchNorm line stands for its five state_dict entries (BN above).
RESNET18_TORCHVISION = """
conv1 conv 64 3 7 7
bn1 bn 64
layer1.0.conv1 conv 64 64 3 3
layer1.0.bn1 bn 64
layer1.0.conv2 conv 64 64 3 3
layer1.0.bn2 bn 64
layer1.1.conv1 conv 64 64 3 3
layer1.1.bn1 bn 64
layer1.1.conv2 conv 64 64 3 3
layer1.1.bn2 bn 64
layer2.0.conv1 conv 128 64 3 3
layer2.0.bn1 bn 128
layer2.0.conv2 conv 128 128 3 3
layer2.0.bn2 bn 128
layer2.0.downsample.0 conv 128 64 1 1
layer2.0.downsample.1 bn 128
layer2.1.conv1 conv 128 128 3 3
layer2.1.bn1 bn 128
layer2.1.conv2 conv 128 128 3 3
layer2.1.bn2 bn 128
layer3.0.conv1 conv 256 128 3 3
layer3.0.bn1 bn 256
layer3.0.conv2 conv 256 256 3 3
layer3.0.bn2 bn 256
layer3.0.downsample.0 conv 256 128 1 1
layer3.0.downsample.1 bn 256
layer3.1.conv1 conv 256 256 3 3
layer3.1.bn1 bn 256
layer3.1.conv2 conv 256 256 3 3
layer3.1.bn2 bn 256
layer4.0.conv1 conv 512 256 3 3
layer4.0.bn1 bn 512
layer4.0.conv2 conv 512 512 3 3
layer4.0.bn2 bn 512
layer4.0.downsample.0 conv 512 256 1 1
layer4.0.downsample.1 bn 512
layer4.1.conv1 conv 512 512 3 3
layer4.1.bn1 bn 512
layer4.1.conv2 conv 512 512 3 3
layer4.1.bn2 bn 512
fc linear 1000 512
"""


def torchvision_style_state_dict(table: str, seed: int = 0) -> dict:
    """A random state dict with the keys and shapes of the table (what torchvision would save)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for line in table.strip().splitlines():
        name, kind, *dims = line.split()
        dims = [int(d) for d in dims]
        if kind == "conv":
            sd[f"{name}.weight"] = torch.randn(*dims, generator=g) * 0.01
        elif kind == "bn":
            (c,) = dims
            sd[f"{name}.weight"] = torch.rand(c, generator=g) + 0.5
            sd[f"{name}.bias"] = torch.randn(c, generator=g) * 0.1
            sd[f"{name}.running_mean"] = torch.randn(c, generator=g) * 0.1
            sd[f"{name}.running_var"] = torch.rand(c, generator=g) + 0.5
            sd[f"{name}.num_batches_tracked"] = torch.tensor(100)
        elif kind == "linear":
            sd[f"{name}.weight"] = torch.randn(*dims, generator=g) * 0.01
            sd[f"{name}.bias"] = torch.zeros(dims[0])
    return sd


def test_resnet18_has_torchvision_keys_and_loads_strictly():
    sd = torchvision_style_state_dict(RESNET18_TORCHVISION)
    assert len(sd) == 122  # torchvision's resnet18 state_dict has 122 entries
    model = tr.resnet18()
    assert list(model.state_dict()) == list(sd)  # same names, same order
    for key, value in model.state_dict().items():
        assert value.shape == sd[key].shape, key
    model.load_state_dict(sd, strict=True)
    assert torch.equal(model.layer4[1].conv2.weight, sd["layer4.1.conv2.weight"])
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_strict_loading_really_checks_names():
    sd = torchvision_style_state_dict(RESNET18_TORCHVISION)
    sd["classifier.weight"] = sd.pop("fc.weight")
    with pytest.raises(RuntimeError, match="fc.weight"):
        tr.resnet18().load_state_dict(sd, strict=True)


def test_resnet34_and_50_match_torchvision_counts_and_shapes():
    sd34 = tr.resnet34().state_dict()
    assert len(sd34) == 218
    assert sd34["layer3.5.conv2.weight"].shape == (256, 256, 3, 3)
    sd50 = tr.resnet50().state_dict()
    assert len(sd50) == 320
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer2.0.conv2.weight": (128, 128, 3, 3),
        "layer3.5.bn3.running_var": (1024,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
    }
    for key, shape in expected.items():
        assert tuple(sd50[key].shape) == shape, key
    # stride sits in the 3×3 conv of a Bottleneck (torchvision's "v1.5")
    assert tr.resnet50().layer2[0].conv2.stride == (2, 2)
    assert tr.resnet50().layer2[0].conv1.stride == (1, 1)


def test_module_names_and_inplace_relu():
    model = tr.resnet18(num_classes=2, in_channels=1, width=8)
    names = [n for n, _ in model.named_children()]
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                     "avgpool", "fc"]
    block = model.layer4[-1]
    assert isinstance(block, tr.BasicBlock)
    assert [n for n, _ in block.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2"]
    assert block.relu.inplace and model.relu.inplace
    assert model.conv1.in_channels == 1 and model.fc.out_features == 2
    assert model.layer4[0].conv1.out_channels == 64  # 8 × width


@pytest.mark.parametrize("kwargs, size, grid", [
    ({}, 64, 2),
    ({"stem_stride": 1, "stem_pool": False}, 64, 8),
    ({"stem_stride": 2, "stem_pool": False, "replace_stride_with_dilation": (False, True, True)},
     64, 16),
    ({"stem_stride": 2, "stem_pool": False}, 96, 6),
    ({"stem_stride": 2, "stem_pool": False, "stage_strides": (1, 2, 1, 1)}, 64, 16),
    ({"stem_stride": 2, "stem_pool": False, "stage_strides": (1, 1, 1, 1)}, 64, 32),
])
def test_stem_and_dilation_set_the_layer4_grid(kwargs, size, grid):
    model = tr.resnet18(num_classes=2, in_channels=1, width=4, **kwargs).eval()
    with torch.no_grad():
        feats = model.features(torch.randn(1, 1, size, size))
    assert feats.shape[2:] == (grid, grid)


def test_knobs_keep_weight_shapes():
    """stem_stride / stem_pool / dilation change no weight shape: state dicts stay compatible."""
    plain = tr.resnet18(num_classes=2, in_channels=1, width=8)
    for kwargs in ({"replace_stride_with_dilation": (False, True, True)},
                   {"stage_strides": (1, 2, 1, 1)}):
        variant = tr.resnet18(num_classes=2, in_channels=1, width=8, stem_stride=1,
                              stem_pool=False, **kwargs)
        variant.load_state_dict(plain.state_dict(), strict=True)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="arch"):
        tr.build_resnet("resnet101")
    with pytest.raises(ValueError, match="stem_stride"):
        tr.resnet18(stem_stride=3)
    with pytest.raises(ValueError, match="three flags"):
        tr.resnet18(replace_stride_with_dilation=(True,))
    with pytest.raises(ValueError, match="stage_strides"):
        tr.resnet18(stage_strides=(1, 2, 3, 2))


def test_importing_models_package_imports_no_framework():
    code = ("import sys, gradcam_helpers.course.models, gradcam_helpers.course.xray, gradcam_helpers.evaluation.diagnose; "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------
# trainer

def toy_data(n=64, size=32, seed=0):
    """Label 1 = a bright square somewhere; learnable in one or two epochs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.05, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, size - 8, 2)
        x[i, 0, r:r + 6, c:c + 6] += 0.6
    return x, y.astype(np.int64)


SMALL = dict(width=4, epochs=2, batch_size=16, lr=5e-3)


def test_trainer_is_deterministic_and_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    data = toy_data()
    a = tr.train_xray_resnet(data, SMALL, cache=False, progress=False)
    b = tr.train_xray_resnet(data, SMALL, cache=False, progress=False)
    c = tr.train_xray_resnet(data, {**SMALL, "seed": 1}, cache=False, progress=False)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.fc.weight, c.fc.weight)
    assert not a.training and a.from_cache is False and a.cache_path is None
    assert list(tmp_path.iterdir()) == []  # cache=False writes nothing


def test_trainer_caches_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    data = toy_data()
    first = tr.train_xray_resnet(data, SMALL, progress=False)
    assert first.cache_path.exists() and first.cache_path.parent == tmp_path
    assert not first.from_cache
    again = tr.train_xray_resnet(data, SMALL, progress=False)
    assert again.from_cache and again.cache_path == first.cache_path
    assert again.history == first.history
    x = torch.from_numpy(data[0][:8])
    with torch.no_grad():
        torch.testing.assert_close(again(x), first(x))
    # different data or settings -> a different file, never the old model
    other = tr.train_xray_resnet(toy_data(seed=1), SMALL, progress=False)
    longer = tr.train_xray_resnet(data, {**SMALL, "epochs": 3}, progress=False)
    assert len({first.cache_path, other.cache_path, longer.cache_path}) == 3
    assert not other.from_cache and not longer.from_cache
    assert not list(tmp_path.glob("*.tmp-*"))  # no temporary files left behind


@pytest.mark.slow
def test_corrupt_cache_file_is_retrained_and_threads_are_in_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    data = toy_data()
    first = tr.train_xray_resnet(data, SMALL, progress=False)
    first.cache_path.write_bytes(first.cache_path.read_bytes()[:100])  # a truncated file
    with pytest.warns(UserWarning, match="cannot be read.*training it again"):
        again = tr.train_xray_resnet(data, SMALL, progress=False)
    assert not again.from_cache and again.cache_path == first.cache_path
    assert tr.train_xray_resnet(data, SMALL, progress=False).from_cache  # replaced by a good file
    before = torch.get_num_threads()
    torch.set_num_threads(1 if before != 1 else 2)
    try:
        other = tr.train_xray_resnet(data, SMALL, progress=False)
    finally:
        torch.set_num_threads(before)
    assert other.cache_path != first.cache_path and not other.from_cache


def test_trainer_learns_and_records_history(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    x, y = toy_data(n=128)
    model = tr.train_xray_resnet((x, y), {**SMALL, "epochs": 4}, cache=False, progress=False)
    assert len(model.history["loss"]) == 4
    assert model.history["loss"][-1] < model.history["loss"][0]
    proba = tr.predict_proba(model, x)
    assert proba.shape == (128, 2)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    assert ((proba[:, 1] > 0.5) == y).mean() > 0.8


def test_augment_shift_changes_training(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    data = toy_data()
    plain = tr.train_xray_resnet(data, SMALL, cache=False, progress=False)
    shifted = tr.train_xray_resnet(data, {**SMALL, "augment_shift": 3}, cache=False, progress=False)
    assert not torch.equal(plain.fc.weight, shifted.fc.weight)
    x = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5)
    moved = tr._random_shift(x, 2, torch.Generator().manual_seed(0))
    assert moved.shape == x.shape
    # every output row is a run of consecutive input values (a translation with replicated edges)
    assert set(moved[0, 0].flatten().tolist()) <= set(x[0, 0].flatten().tolist())


def test_trainer_rejects_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    x, y = toy_data()
    with pytest.raises(KeyError, match="epoch"):
        tr.train_xray_resnet((x, y), {"epoch": 3}, progress=False)
    with pytest.raises(ValueError, match="channel"):
        tr.train_xray_resnet((x[:, 0], y), SMALL, progress=False)
    with pytest.raises(ValueError, match="labels"):
        tr.train_xray_resnet((x, y + 5), SMALL, progress=False)
    with pytest.raises(ValueError, match="as many labels"):
        tr.train_xray_resnet((x, y[:3]), SMALL, progress=False)


def test_predict_proba_restores_mode():
    model = tr.resnet18(num_classes=2, in_channels=1, width=4)
    model.train()
    tr.predict_proba(model, np.zeros((3, 1, 32, 32), np.float32))
    assert model.training
