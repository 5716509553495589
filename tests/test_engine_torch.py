"""The PyTorch adapter through the public API: hooks, modes, gradients, layer paths, errors."""
import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from gradcam_helpers import Explainer, explain  # noqa: E402
from gradcam_helpers.engine.registry import method_names  # noqa: E402

GRADIENT_METHODS = method_names(needs="gradients", kind="cam")
#: every CAM-family method but Score-CAM (slow: one forward pass per channel)
FAST_METHODS = [m for m in method_names(kind="cam") if m not in method_names(needs="scores")]


class Block(nn.Module):
    """A torchvision-style BasicBlock: in-place ReLU and `out += identity`."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def count_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


@pytest.fixture()
def model():
    torch.manual_seed(0)
    m = TinyResNet()
    # non-trivial BatchNorm statistics, so eval vs train mode matters
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.rand(8, 3, 16, 16) * 2)
    return m


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.rand(8, 3, 16, 16)


def test_cam_equals_gradcam_on_gap_network(model, images):
    cam = explain(model, images, "cam")
    grad = explain(model, images, "gradcam")
    assert cam.layer == grad.layer == "layer1"
    assert np.abs(cam.maps - grad.maps).max() < 1e-5


def test_layer_paths_and_objects_agree(model, images):
    by_path = explain(model, images, layer="layer1.1")
    by_index = explain(model, images, layer="layer1[-1]")
    by_module = explain(model, images, layer=model.layer1[-1])
    assert by_path.layer == by_index.layer == by_module.layer == "layer1.1"
    np.testing.assert_array_equal(by_path.maps, by_index.maps)
    np.testing.assert_array_equal(by_path.maps, by_module.maps)
    # the block's output is the container's output: same map as the automatic choice
    np.testing.assert_allclose(by_path.maps, explain(model, images).maps, atol=1e-6)


def test_layer_before_an_inplace_add_gives_the_pre_add_activation(model, images):
    """bn2's output is modified in place by `out += identity`: we must see the value before."""
    captured = {}
    handle = model.layer1[1].bn2.register_forward_hook(lambda m, i, o: captured.setdefault("a", o.clone()))
    model.eval()
    with torch.no_grad():
        model(images)
    handle.remove()
    model.train()
    res = explain(model, images, "eigencam", layer="layer1.1.bn2")
    from gradcam_helpers.engine.cam import eigencam

    expected = eigencam(captured["a"].numpy().transpose(0, 2, 3, 1))
    np.testing.assert_allclose(res.raw, expected, atol=1e-5)


def test_gradients_match_autograd_of_the_logit(model, images):
    res = explain(model, images, "hirescam", layer="layer1", target=2)
    store = {}

    def keep(m, i, o):
        o.retain_grad()
        store["a"] = o

    model.eval()
    handle = model.layer1.register_forward_hook(keep)
    out = model(images)
    out[:, 2].sum().backward()
    handle.remove()
    a, g = store["a"].detach(), store["a"].grad
    expected = torch.relu((a * g).sum(1)).numpy()
    np.testing.assert_allclose(res.raw, expected, rtol=1e-4, atol=1e-6)


def test_mode_and_batchnorm_statistics_are_restored(model, images):
    model.train()
    model.layer1[0].bn1.eval()  # a mixed state must come back exactly as it was
    stats = model.layer1[0].bn2.running_mean.clone()
    explain(model, images, "gradcam")
    assert model.training and not model.layer1[0].bn1.training and model.layer1[0].bn2.training
    assert torch.equal(model.layer1[0].bn2.running_mean, stats)


def test_no_parameter_gradients_frozen_parameters_and_outer_no_grad(model, images):
    ref = explain(model, images, "gradcam++").maps
    assert all(p.grad is None for p in model.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        res = explain(model, images, "gradcam++")
    np.testing.assert_allclose(res.maps, ref, atol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_image_alone_equals_image_in_a_batch_with_other_targets(model, images):
    ex = Explainer(model)
    targets = [0, 1, 2, 3, 4, 0, 1, 2]
    for method in FAST_METHODS:
        batch = ex(images, method=method, target=targets)
        alone = ex(images[5:6], method=method, target=targets[5])
        np.testing.assert_allclose(alone.maps[0], batch.maps[5], atol=1e-5, err_msg=method)


def test_softmax_at_the_end_is_bypassed_without_changing_the_model(images):
    torch.manual_seed(0)
    core = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with_softmax = nn.Sequential(core, nn.Softmax(dim=1))
    a = explain(core, images, "gradcam")
    b = explain(with_softmax, images, "gradcam")
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-6)
    np.testing.assert_allclose(a.maps, b.maps, atol=1e-6)
    assert isinstance(with_softmax[1], nn.Softmax) and count_hooks(with_softmax) == 0


def test_thousand_calls_leave_no_hooks_and_flat_memory(model):
    import psutil

    x = torch.rand(1, 3, 8, 8)
    ex = Explainer(model)
    process = psutil.Process()
    for _ in range(100):
        ex(x, "gradcam")
    gc.collect()
    before = process.memory_info().rss
    for _ in range(900):
        ex(x, "gradcam")
    gc.collect()
    growth = process.memory_info().rss - before
    assert count_hooks(model) == 0
    assert growth < 20 * 2**20, f"memory grew by {growth / 2**20:.1f} MiB over 900 calls"


def test_a_call_that_raises_leaves_no_hooks(model, images):
    with pytest.raises(ValueError, match="out of range"):
        explain(model, images, target=99)  # raises after the forward pass, hooks in place
    assert count_hooks(model) == 0

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls > 1:  # the dry run passes, the real call fails mid-forward
                raise RuntimeError("boom")
            return self.conv(x).mean((2, 3))

    broken = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        explain(broken, images)
    assert count_hooks(broken) == 0 and broken.training


def test_clear_errors(model, images):
    with pytest.raises(ValueError, match=r"no module 'layer9'.*layer1\.1"):
        explain(model, images, layer="layer9")
    with pytest.raises(ValueError, match="not a spatial"):
        explain(model, images, layer="fc")
    with pytest.raises(ValueError, match="runs 2 times"):
        explain(model, images, layer="layer1.0.relu")
    with pytest.raises(ValueError, match="permute"):
        explain(model, images.permute(0, 2, 3, 1))
    with pytest.raises(ValueError, match="batch axis"):
        explain(model, images[0])
    with pytest.raises(ValueError, match="empty"):
        explain(model, images[:0])
    with pytest.raises(ValueError, match="GlobalAveragePooling|global average pooling"):
        flat = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 14 * 14, 3))
        explain(flat, images, "cam")
    with pytest.raises(TypeError, match="keras.Model or a torch.nn.Module"):
        explain(object(), images)


def test_numpy_input_and_every_method(model, images):
    for method in method_names(kind="cam"):
        res = explain(model, images[:2].numpy(), method)
        assert res.maps.shape == (2, 16, 16) and res.raw.shape == (2, 16, 16), method
        assert np.isfinite(res.maps).all() and res.maps.max() <= 1, method
