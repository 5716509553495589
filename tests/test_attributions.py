"""Pixel attributions: the framework-free math on functions with known gradients, PyTorch against
captum as the oracle, Keras against PyTorch on twin networks, the model left untouched, clear errors."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from gradcam_helpers.engine import attributions as attr
from gradcam_helpers.engine.maps import attribution_maps
from gradcam_helpers.engine.registry import get_method

PIXEL = ["saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "guided_gradcam"]


# ---------------------------------------------------------------- the math, without a framework

W = np.random.default_rng(1).normal(size=(2, 5, 5, 3)).astype(np.float32)  # 2 classes


def quadratic(x, targets):
    """S_c(x) = sum(W_c * x^2) / 2: gradient W_c * x, known in closed form."""
    logits = np.einsum("nhwc,khwc->nk", x ** 2, W) / 2
    return W[targets] * x, logits


def linear(x, targets):
    return np.broadcast_to(W[targets], x.shape).copy(), np.einsum("nhwc,khwc->nk", x, W)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(3, 5, 5, 3)).astype(np.float32)


def test_path_points_integrate_exactly():
    for rule, steps, degree in (("gausslegendre", 5, 9), ("riemann_trapezoid", 11, 1)):
        alphas, weights = attr.path_points(steps, rule)
        assert np.isclose(weights.sum(), 1) and alphas.min() >= 0 and alphas.max() <= 1
        assert np.isclose((weights * alphas ** degree).sum(), 1 / (degree + 1))
    with pytest.raises(ValueError, match="rule"):
        attr.path_points(10, "simpson")


def test_integrated_gradients_of_a_quadratic(x):
    t = np.array([0, 1, 0])
    raw, base_logits = attr.integrated_gradients(x, t, quadratic, steps=3)
    # the path gradient is alpha * W x, whose integral is W x / 2: IG = W x^2 / 2 exactly
    np.testing.assert_allclose(raw, W[t] * x ** 2 / 2, rtol=1e-5, atol=1e-6)
    scores = quadratic(x, t)[1][np.arange(3), t]
    np.testing.assert_allclose(raw.sum(axis=(1, 2, 3)), scores - base_logits[np.arange(3), t], rtol=1e-5)
    # a baseline equal to the input attributes nothing
    same, _ = attr.integrated_gradients(x, t, quadratic, baseline=x, steps=4)
    assert np.abs(same).max() == 0


def test_smoothgrad(x):
    t = np.array([1, 0, 1])
    np.testing.assert_array_equal(attr.smoothgrad(x, t, quadratic, noise=0.0, samples=3),
                                  attr.saliency(x, t, quadratic))
    # the gradient of a linear score is the same everywhere: noise cannot change it
    np.testing.assert_allclose(attr.smoothgrad(x, t, linear, samples=4), W[t], atol=1e-6)
    a = attr.smoothgrad(x, t, quadratic, samples=4, seed=1)
    np.testing.assert_array_equal(a, attr.smoothgrad(x, t, quadratic, samples=4, seed=1))
    assert not np.array_equal(a, attr.smoothgrad(x, t, quadratic, samples=4, seed=2))
    # the noisy gradient averages towards the gradient at x: closer with more samples
    exact = attr.saliency(x, t, quadratic)
    few = np.abs(attr.smoothgrad(x, t, quadratic, samples=2) - exact).mean()
    many = np.abs(attr.smoothgrad(x, t, quadratic, samples=200) - exact).mean()
    assert many < few / 3
    with pytest.raises(ValueError, match="samples"):
        attr.smoothgrad(x, t, quadratic, samples=0)


def test_guided_gradcam_and_maps(x):
    cam = np.random.default_rng(2).random((3, 5, 5)).astype(np.float32)
    out = attr.guided_gradcam(x, cam)
    np.testing.assert_allclose(out, x * cam[..., None])
    with pytest.raises(ValueError, match="do not match"):
        attr.guided_gradcam(x, cam[:, :4])
    maps = attribution_maps(np.concatenate([x, np.zeros_like(x[:1])]))
    assert maps.shape == (4, 5, 5) and maps.dtype == np.float32
    assert np.allclose(maps[:3].max(axis=(1, 2)), 1) and maps.min() >= 0 and not maps[3].any()
    np.testing.assert_allclose(maps[0], np.abs(x[0]).sum(-1) / np.abs(x[0]).sum(-1).max(), rtol=1e-6)


def test_registry_names():
    for name in PIXEL:
        spec = get_method(name)
        assert spec.name == name and spec.needs == "input_gradients"
    assert get_method("IntegratedGradients").name == "integrated_gradients"
    assert get_method("Guided-GradCAM".replace("-", "_")).name == "guided_gradcam"


# ---------------------------------------------------------------- the engine: PyTorch vs captum

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from gradcam_helpers import explain  # noqa: E402


@pytest.fixture(scope="module")
def twins(twin_cnns):
    """The twin CNNs of tests/conftest.py (those of the map-equality tests) and three images."""
    km, tm = twin_cnns
    xs = np.random.default_rng(5).random((3, 14, 14, 2)).astype("float32")
    return km, tm, xs


def logits_model(tm):
    """The torch twin without its final softmax, for captum (which differentiates the output)."""
    return torch.nn.Sequential(*list(tm)[:-1]).eval()


def nchw(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "guided_backprop"])
def test_torch_matches_captum(twins, method):
    from captum.attr import GuidedBackprop, IntegratedGradients, Saliency

    _, tm, xs = twins
    targets = [0, 2, 3]
    ours = explain(tm, nchw(xs), method, target=targets)
    net = logits_model(tm)
    inputs = nchw(xs).requires_grad_(True)
    if method == "saliency":
        ref = Saliency(net).attribute(inputs, target=targets, abs=False)
    elif method == "integrated_gradients":
        ref = IntegratedGradients(net).attribute(inputs, target=targets, n_steps=50)
    else:
        ref = GuidedBackprop(net).attribute(inputs, target=targets)
    ref = ref.detach().numpy().transpose(0, 2, 3, 1)
    assert ours.raw.shape == (3, 14, 14, 2) and np.abs(ref).max() > 0
    np.testing.assert_allclose(ours.raw, ref, atol=1e-6 * max(1.0, np.abs(ref).max()))
    assert ours.maps.shape == (3, 14, 14) and 0 <= ours.maps.min() and ours.maps.max() == 1
    np.testing.assert_array_equal(ours.targets, targets)


def test_guided_backprop_with_inplace_relus(twins):
    _, tm, xs = twins
    inplace = torch.nn.Sequential(*[torch.nn.ReLU(inplace=True) if isinstance(m, torch.nn.ReLU) else m
                                    for m in tm])
    g = explain(tm, nchw(xs), "guided_backprop", target=1)
    np.testing.assert_array_equal(explain(inplace, nchw(xs), "guided_backprop", target=1).raw, g.raw)
    assert not np.allclose(g.raw, explain(tm, nchw(xs), "saliency", target=1).raw)


@pytest.mark.parametrize("method", PIXEL)
def test_keras_equals_torch(twins, method):
    km, tm, xs = twins
    targets = [3, 1, 0]
    k = explain(km, xs, method, target=targets)
    t = explain(tm, nchw(xs), method, target=targets)
    assert k.raw.shape == t.raw.shape == xs.shape
    scale = np.abs(t.raw).max()
    assert scale > 0
    assert np.abs(k.raw - t.raw).max() <= 1e-4 * scale, method
    assert np.abs(k.maps - t.maps).max() <= 1e-3, method
    assert k.method == t.method == method


def test_integrated_gradients_completeness_and_options(twins):
    km, tm, xs = twins
    for model, x in ((km, xs), (tm, nchw(xs))):
        e = explain(model, x, "integrated_gradients", steps=64, baseline=0.1)
        rows = np.arange(len(xs))
        gap = e.raw.sum(axis=(1, 2, 3)) - (e.logits[rows, e.targets] - e.extras["baseline_scores"])
        np.testing.assert_allclose(e.extras["delta"], gap, atol=1e-5)
        assert np.all(np.abs(gap) <= 0.02 * np.abs(e.logits[rows, e.targets] - e.extras["baseline_scores"]))


def test_bad_baseline_same_message_in_both_frameworks(twins):
    km, tm, xs = twins
    import re

    messages = []
    for model, x in ((km, xs), (tm, nchw(xs))):
        with pytest.raises(ValueError, match="baseline has shape") as info:
            explain(model, x, "integrated_gradients", baseline=np.zeros((14, 14)))
        message = str(info.value)
        assert str(tuple(x.shape)) in message and str(tuple(x.shape[1:])) in message
        messages.append(re.sub(r"\([^()]*\)", "", message))  # the shapes differ by layout only
    assert messages[0] == messages[1] and "one image of shape" in messages[0]
    with pytest.raises(TypeError, match="steps"):
        explain(tm, nchw(xs), "saliency", steps=3)


def test_guided_backprop_leaves_the_models_alone(twins):
    km, tm, xs = twins
    before = tm(nchw(xs)).detach().numpy()
    hooks = lambda: sum(len(m._forward_hooks) + len(m._forward_pre_hooks)  # noqa: E731
                        for m in tm.modules())
    explain(tm, nchw(xs), "guided_backprop")
    with pytest.raises(ValueError, match="out of range"):
        explain(tm, nchw(xs), "guided_backprop", target=9)
    assert hooks() == 0
    np.testing.assert_array_equal(tm(nchw(xs)).detach().numpy(), before)
    explain(km, xs, "guided_backprop")
    with pytest.raises(ValueError, match="out of range"):
        explain(km, xs, "guided_backprop", target=9)
    assert not any("call" in layer.__dict__ for layer in km.layers)
    # after Guided Backprop, plain saliency is plain again
    s = explain(tm, nchw(xs), "saliency", target=1).raw
    g = explain(tm, nchw(xs), "guided_backprop", target=1).raw
    np.testing.assert_array_equal(explain(tm, nchw(xs), "saliency", target=1).raw, s)
    assert not np.array_equal(s, g)


def test_guided_backprop_needs_relus():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="ReLU"):
        explain(net, torch.zeros(1, 1, 6, 6), "guided_backprop")
