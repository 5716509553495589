"""Score-CAM: exact (the same maps as the engine's previous implementation, to 1e-5) with less work.

The previous implementation lives once, in benchmarks/bench_scorecam.py (``scorecam_previous``), where
the benchmark times it too; this test loads it from there.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from _benchmarks import loaded

torch = pytest.importorskip("torch")
nn = torch.nn

from gradcam_helpers import Explainer  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    with loaded("bench_scorecam.py", "bench_scorecam_sc") as module:
        yield module


class HalfDead(nn.Module):
    """A CNN whose target layer has channels that are zero everywhere (a large negative bias)."""

    def __init__(self, channels=12, dead=5):
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, channels, 3, stride=2, padding=1)
        with torch.no_grad():
            self.conv2.bias[:dead] = -1e3
        self.relu = nn.ReLU()
        self.features = nn.ReLU()  # the target: its output is zero everywhere on the dead channels
        self.fc = nn.Linear(channels, 4)
        self.batch_sizes = []

    def forward(self, x):
        self.batch_sizes.append(len(x))
        h = self.features(self.conv2(self.relu(self.conv1(x))))
        return self.fc(h.mean((2, 3)))


def trained_tiny_resnet():
    from gradcam_helpers.course.models import torch_resnet as tr

    rng = np.random.default_rng(0)
    x = rng.normal(0.3, 0.05, (48, 1, 32, 32)).astype(np.float32)
    y = np.arange(48) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(2, 24, 2)
        x[i, 0, r:r + 6, c:c + 6] += 0.6
    model = tr.train_xray_resnet((x, y), dict(width=4, epochs=2, batch_size=16, lr=5e-3),
                                 cache=False, progress=False)
    return model, torch.from_numpy(x[:3])


@pytest.mark.parametrize("convention", ["paper", "channel_softmax"])
def test_exact_scorecam_equals_the_previous_implementation_on_a_random_model(bench, convention):
    model = HalfDead()
    x = torch.rand(3, 3, 16, 16)
    ex = Explainer(model, layer="features", score_cam_convention=convention)
    new = ex(x, "scorecam")
    old = bench.scorecam_previous(ex, x, convention=convention)
    assert new.maps.max() > 0
    np.testing.assert_allclose(new.maps, old, atol=1e-5)


def test_exact_scorecam_equals_the_previous_implementation_on_a_trained_model(bench):
    model, x = trained_tiny_resnet()
    ex = Explainer(model, layer="layer4")
    new = ex(x, "scorecam")
    old = bench.scorecam_previous(ex, x)
    np.testing.assert_allclose(new.maps, old, atol=1e-5)
    for convention in ("channel_softmax",):
        ex2 = Explainer(model, layer="layer4", score_cam_convention=convention)
        np.testing.assert_allclose(ex2(x, "scorecam").maps,
                                   bench.scorecam_previous(ex2, x, convention=convention), atol=1e-5)


def test_keras_exact_scorecam_equals_the_previous_implementation(bench):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(6, 3, activation="relu")(inp)
    h = keras.layers.Conv2D(10, 3, activation="relu", name="last")(h)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(h)))
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    model.compile(loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 2]), epochs=3, verbose=0)  # trained a little
    ex = Explainer(model, layer="last")
    np.testing.assert_allclose(ex(x, "scorecam").maps, bench.scorecam_previous(ex, x), atol=1e-5)


def test_channels_that_are_zero_everywhere_get_no_forward_pass():
    model = HalfDead(channels=12, dead=5)
    x = torch.rand(2, 3, 16, 16)
    ex = Explainer(model, layer="features", score_cam_batch_size=4)
    ex(x, "scorecam")  # inspects the model (dry run) first
    model.batch_sizes.clear()
    ex(x, "scorecam")
    assert model.batch_sizes[0] == 2  # the capture pass
    assert sum(model.batch_sizes[1:]) == 2 * 7 and max(model.batch_sizes[1:]) <= 4
    # channel_softmax needs the dead channels' shared logits: one pass of the zero image each
    ex = Explainer(model, layer="features", score_cam_convention="channel_softmax")
    ex(x, "scorecam")
    model.batch_sizes.clear()
    ex(x, "scorecam")
    assert sum(model.batch_sizes[1:]) == 2 * (7 + 1)


def test_top_k_channels_is_faster_and_all_channels_is_exact():
    model = HalfDead(channels=12, dead=0)
    x = torch.rand(2, 3, 16, 16)
    exact = Explainer(model, layer="features")(x, "scorecam")
    all_k = Explainer(model, layer="features", score_cam_channels=12)(x, "scorecam")
    np.testing.assert_allclose(all_k.maps, exact.maps, atol=1e-6)
    ex = Explainer(model, layer="features", score_cam_channels=3)
    ex(x, "scorecam")
    model.batch_sizes.clear()
    approx = ex(x, "scorecam")
    assert sum(model.batch_sizes[1:]) == 2 * 3
    assert approx.maps.shape == exact.maps.shape and np.isfinite(approx.maps).all()
    with pytest.raises(ValueError, match="score_cam_channels"):
        Explainer(model, score_cam_channels=0)
    with pytest.raises(ValueError, match="convention"):
        Explainer(model, score_cam_convention="softmax")


def test_pgc_style_recipe_gives_nearly_the_same_maps(bench):
    """The benchmark's pytorch-grad-cam-style recipe does the same job (so the race is fair)."""
    model, x = trained_tiny_resnet()
    ours = Explainer(model, layer="layer4", score_cam_convention="channel_softmax")(x, "scorecam")
    theirs = bench.pgc_style_scorecam(model, model.layer4, x)
    corr = np.corrcoef(ours.maps.ravel(), theirs.ravel())[0, 1]
    assert corr > 0.99, corr


# ------------------------------------------------------------------ the inference copy (fast=True)


@pytest.mark.slow
def test_inference_copy_gives_the_eager_maps_and_leaves_the_model_untouched():
    """BatchNorm folded and channels-last: the same maps as the model itself (1e-5), on a random
    and a trained ResNet; the user's model keeps its memory format, modes and (no) hooks."""
    from gradcam_helpers.course.models.torch_resnet import build_resnet

    torch.manual_seed(0)
    random_model = build_resnet("resnet18", num_classes=5, width=8).train()
    trained, x_trained = trained_tiny_resnet()
    for model, x in ((random_model, torch.rand(2, 3, 48, 48)), (trained, x_trained)):
        storage = [(p.data_ptr(), p.stride()) for p in model.parameters()]
        fast = Explainer(model, layer="layer4")
        slow = Explainer(model, layer="layer4", score_cam_fast=False)
        a, b = fast(x, "scorecam").maps, slow(x, "scorecam").maps
        assert fast.adapter.inference_copy() is not None  # the fast path really ran
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert a.max() > 0.99 and np.ptp(a) > 0.1  # real maps, not empty ones
        assert [(p.data_ptr(), p.stride()) for p in model.parameters()] == storage
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert random_model.training and all(m.training for m in random_model.modules())


@pytest.mark.slow
def test_inference_copy_is_rebuilt_when_the_model_changes():
    from gradcam_helpers.course.models.torch_resnet import build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", num_classes=3, width=8).eval()
    x = torch.rand(1, 3, 96, 96)
    ex = Explainer(model, layer="layer4")
    before = ex(x, "scorecam", target=0).maps
    first = ex.adapter.inference_copy()
    assert ex.adapter.inference_copy() is first  # reused while nothing changed
    with torch.no_grad():  # a weight updated in place, as an optimiser step does
        model.fc.weight.mul_(-1.0)
        model.layer4[1].bn2.running_var.mul_(4.0)
    after = ex(x, "scorecam", target=0).maps
    rebuilt = ex.adapter.inference_copy()
    assert rebuilt is not None and rebuilt is not first  # a new copy, not one dropped for a mismatch
    reference = Explainer(model, layer="layer4", score_cam_fast=False)(x, "scorecam", target=0).maps
    np.testing.assert_allclose(after, reference, atol=1e-5)
    assert np.abs(after - before).max() > 1e-3  # so a stale copy would fail the check above


def test_inference_copy_is_rebuilt_when_a_module_is_swapped():
    """A module without parameters swapped between two calls: the weights are the same, the model
    is not (inspect() sees the new structure and drops the copy)."""
    from gradcam_helpers.course.models.torch_resnet import build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", num_classes=3, width=8).eval()
    x = torch.rand(1, 3, 96, 96)
    ex = Explainer(model, layer="layer4")
    before = ex(x, "scorecam", target=0).maps
    first = ex.adapter.inference_copy()
    model.layer4[1].relu = nn.Tanh()
    after = ex(x, "scorecam", target=0).maps
    rebuilt = ex.adapter.inference_copy()
    assert rebuilt is not None and rebuilt is not first  # a new copy, not one dropped for a mismatch
    reference = Explainer(model, layer="layer4", score_cam_fast=False)(x, "scorecam", target=0).maps
    np.testing.assert_allclose(after, reference, atol=1e-5)
    assert np.abs(after - before).max() > 1e-3  # so a stale copy would fail the check above


class DataDependent(nn.Module):
    """Control flow on the data: torch.fx cannot trace it, so the model itself runs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        h = self.features(x)
        if h.mean() > 1e9:  # never true, but fx cannot know
            h = h * 0
        return self.fc(h.mean((2, 3)))


def test_a_model_fx_cannot_trace_runs_as_it_is():
    model = DataDependent().eval()
    x = torch.rand(2, 3, 12, 12)
    ex = Explainer(model, layer="features")
    maps = ex(x, "scorecam").maps
    assert ex.adapter.inference_copy() is None
    np.testing.assert_allclose(maps, Explainer(model, layer="features", score_cam_fast=False)(
        x, "scorecam").maps, atol=1e-6)


def test_a_copy_that_scores_differently_is_dropped(monkeypatch):
    """The copy is checked against the model on the first masks; a mismatch means the model runs."""
    from gradcam_helpers.course.models.torch_resnet import build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", num_classes=3, width=8).eval()
    x = torch.rand(1, 3, 32, 32)
    ex = Explainer(model, layer="layer4")
    fused, final = ex.adapter.inference_copy()
    with torch.no_grad():
        fused.fc.bias.add_(5.0)  # the copy now gives other scores
    maps = ex(x, "scorecam").maps
    assert ex.adapter.inference_copy() is None  # dropped for this state of the model
    np.testing.assert_allclose(maps, Explainer(model, layer="layer4", score_cam_fast=False)(
        x, "scorecam").maps, atol=1e-6)
