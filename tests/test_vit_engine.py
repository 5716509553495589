"""Vision Transformers in the engine: token sequences as patch grids, Grad-CAM on tokens by hand,
Keras = PyTorch on the same weights, attention maps and rollout against hand computations, hooks
and wrappers removed."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from gradcam_helpers.engine.attention import attention_rollout, last_layer_attention, rollout_matrix
from gradcam_helpers.engine.tokens import infer_grid, tokens_to_grid

# ------------------------------------------------------------------------------- token → grid


def _sequence(n, extra, h, w, d, seed=0):
    rng = np.random.default_rng(seed)
    grid = rng.normal(size=(n, h, w, d)).astype(np.float32)
    head = rng.normal(size=(n, extra, d)).astype(np.float32)
    return np.concatenate([head, grid.reshape(n, h * w, d)], axis=1), grid


@pytest.mark.parametrize("extra", [0, 1, 2, 5])  # no class token, CLS, CLS + distillation, + registers
def test_tokens_to_grid_drops_the_leading_tokens_and_keeps_the_patches_row_by_row(extra):
    tokens, grid = _sequence(2, extra, 14, 14, 3)
    assert infer_grid(tokens.shape[1], (224, 224)) == (extra, 14, 14)
    out = tokens_to_grid(tokens, (224, 224))
    np.testing.assert_array_equal(out, grid)
    # patch (r, c) is token extra + r * w + c
    np.testing.assert_array_equal(out[:, 3, 5], tokens[:, extra + 3 * 14 + 5])


def test_tokens_to_grid_on_a_non_square_image():
    tokens, grid = _sequence(1, 1, 4, 8, 2)  # a 64 × 128 image cut into 16 px patches
    assert infer_grid(33, (64, 128)) == (1, 4, 8)
    np.testing.assert_array_equal(tokens_to_grid(tokens, (64, 128)), grid)
    # the same 33 tokens of a square image fit no square grid after ≤ 16 extra tokens except 5 × 5
    assert infer_grid(33, (64, 64)) == (8, 5, 5)


def test_a_token_count_that_fits_no_grid_names_the_option():
    tokens = np.zeros((1, 98, 4), np.float32)  # 98 − e is no square for e ≤ 16
    with pytest.raises(ValueError, match=r"tokens_to_grid=\(h, w\)"):
        tokens_to_grid(tokens, (32, 32))
    # the user's layout: (h, w) or a function
    np.testing.assert_array_equal(tokens_to_grid(tokens, (32, 32), (7, 11)), tokens[:, 21:].reshape(1, 7, 11, 4))
    out = tokens_to_grid(tokens, (32, 32), lambda t: t[:, :77].reshape(1, 7, 11, 4))
    assert out.shape == (1, 7, 11, 4)
    with pytest.raises(ValueError, match="needs at least"):
        tokens_to_grid(tokens, (32, 32), (10, 10))


# ------------------------------------------------------------------------------- attention math


def _attention(n, heads, t, seed):
    logits = np.random.default_rng(seed).normal(size=(n, heads, t, t))
    e = np.exp(logits)
    return e / e.sum(-1, keepdims=True)


def test_rollout_equals_the_hand_computation_on_two_layers():
    a1, a2 = _attention(2, 3, 5, 1), _attention(2, 3, 5, 2)  # CLS + 2 × 2 patches
    eye = np.eye(5)
    for i in range(2):
        m1 = (a1[i].mean(0) + eye) / 2
        m1 = m1 / m1.sum(1, keepdims=True)
        m2 = (a2[i].mean(0) + eye) / 2
        m2 = m2 / m2.sum(1, keepdims=True)
        expected = (m2 @ m1)[0, 1:].reshape(2, 2)
        np.testing.assert_allclose(attention_rollout([a1, a2], (1, 2, 2))[i], expected, rtol=1e-6)
        np.testing.assert_allclose(last_layer_attention([a1, a2], (1, 2, 2))[i],
                                   a2[i].mean(0)[0, 1:].reshape(2, 2), rtol=1e-6)
    r = rollout_matrix([a1, a2])
    np.testing.assert_allclose(r.sum(-1), 1.0, rtol=1e-12)  # rows stay distributions
    # without a class token: the attention each patch receives, averaged over the queries
    np.testing.assert_allclose(last_layer_attention([a1[:, :, 1:, 1:]], (0, 2, 2))[0],
                               a1[0, :, 1:, 1:].mean(0).mean(0).reshape(2, 2), rtol=1e-6)


# ------------------------------------------------------------------------------- the models

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from gradcam_helpers import Explainer, explain  # noqa: E402
from gradcam_helpers.course.models.keras_vit import build_tiny_vit  # noqa: E402
from gradcam_helpers.course.models.torch_vit import torch_twin  # noqa: E402

ARCH = dict(image_size=24, patch=6, dim=12, depth=2, heads=3)


@pytest.fixture(scope="module")
def twins():
    keras.utils.set_random_seed(0)
    km = build_tiny_vit(**ARCH)
    return km, torch_twin(km)


@pytest.fixture(scope="module")
def batch():
    x = np.random.default_rng(3).random((3, 24, 24, 1)).astype(np.float32)
    return x, torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


def test_the_twin_gives_the_keras_logits(twins, batch):
    km, tm = twins
    with torch.no_grad():
        np.testing.assert_allclose(tm(batch[1]).numpy(), km(batch[0]).numpy(), atol=1e-5)


def test_automatic_layer_is_the_last_blocks_first_norm(twins, batch):
    km, tm = twins
    assert explain(km, batch[0]).layer == "block1_norm1"
    assert explain(tm, batch[1]).layer == "blocks.1.norm1"


def test_gradcam_on_tokens_by_hand_equals_the_helper(twins, batch):
    tm = twins[1]
    x = batch[1]
    store = {}
    handle = tm.blocks[1].norm1.register_forward_hook(
        lambda m, i, o: store.__setitem__("a", o))
    logits = tm(x)
    handle.remove()
    target = logits.argmax(1)
    (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), store["a"])
    a, g = store["a"].detach().numpy(), grad.numpy()
    a, g = a[:, 1:].reshape(3, 4, 4, -1), g[:, 1:].reshape(3, 4, 4, -1)  # drop CLS, 16 → 4 × 4
    weights = g.mean(axis=(1, 2))  # (N, D): the pooled gradients, per image
    expected = np.maximum(np.einsum("nhwd,nd->nhw", a, weights), 0)
    out = explain(tm, x, "gradcam", layer="blocks.1.norm1")
    np.testing.assert_allclose(out.raw, expected, rtol=1e-4, atol=1e-7)
    assert expected.max() > 0
    np.testing.assert_array_equal(out.targets, target.numpy())


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
                                    "eigencam", "scorecam", "saliency", "smoothgrad",
                                    "integrated_gradients", "attention", "rollout"])
def test_keras_and_pytorch_agree_on_the_same_weights(twins, batch, method):
    km, tm = twins
    ek, et = explain(km, batch[0], method), explain(tm, batch[1], method)
    assert ek.raw.shape == et.raw.shape
    scale = max(float(np.abs(ek.raw).max()), 1e-12)
    assert np.abs(ek.raw - et.raw).max() <= 1e-4 * scale
    np.testing.assert_allclose(ek.maps, et.maps, atol=1e-4)
    assert np.isfinite(ek.maps).all() and ek.maps.max() == pytest.approx(1.0)


def test_block_output_of_a_class_token_model_gets_an_empty_map(twins, batch):
    """After the last attention, only the class token reaches the head: the patch tokens of the
    last block's output get zero gradient, which is why the automatic choice is the first norm."""
    km, tm = twins
    assert explain(tm, batch[1], layer="blocks.1").raw.max() == 0
    assert explain(km, batch[0], layer="block1_add2").raw.max() == 0
    assert explain(tm, batch[1], layer="blocks.1.norm1").raw.max() > 0


def test_attention_maps_equal_the_hand_computation_from_the_captured_weights(twins, batch):
    km, tm = twins
    x = batch[1]
    with torch.no_grad():
        y = tm.patch_embed(x).flatten(2).transpose(1, 2)
        y = torch.cat([tm.cls.expand(len(y), -1, -1), y], 1) + tm.pos
        weights = []
        for block in tm.blocks:
            z = block.norm1(y)
            out, w = block.attn(z, z, z, need_weights=True, average_attn_weights=False)
            weights.append(w.numpy())
            y = y + out
            y = y + block.mlp2(block.act(block.mlp1(block.norm2(y))))
    np.testing.assert_allclose(explain(tm, x, "rollout").raw, attention_rollout(weights, (1, 4, 4)),
                               rtol=1e-5)
    np.testing.assert_allclose(explain(tm, x, "attention").raw,
                               last_layer_attention(weights, (1, 4, 4)), rtol=1e-5)


def test_no_hooks_or_wrappers_are_left_and_no_grad_is_respected(twins, batch):
    km, tm = twins
    for method in ("gradcam", "attention", "rollout"):
        with torch.no_grad():
            explain(tm, batch[1], method)
        assert torch.is_grad_enabled()
        for module in tm.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks
        explain(km, batch[0], method)
        assert all("call" not in layer.__dict__ for layer in km.layers)
    assert all(p.grad is None for p in tm.parameters())
    # the model's own call still returns what it asked for (need_weights=False → None)
    z = torch.zeros(1, 17, 12)
    assert tm.blocks[0].attn(z, z, z, need_weights=False)[1] is None


def test_batch_independence(twins, batch):
    km, tm = twins
    for method in ("gradcam", "rollout"):
        whole = explain(tm, batch[1], method).raw
        one = explain(tm, batch[1][1:2], method).raw
        np.testing.assert_allclose(whole[1:2], one, rtol=1e-4, atol=1e-7)


class ExposingAttention(torch.nn.Module):
    """A hand-written single-head attention that keeps its weights in ``attention_weights``."""

    def __init__(self, dim):
        super().__init__()
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.attention_weights = None

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        w = torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1)
        self.attention_weights = w
        return w @ v


class HandViT(torch.nn.Module):
    def __init__(self, expose=True):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.norm = torch.nn.LayerNorm(8)
        self.attn = ExposingAttention(8) if expose else torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # no class token: (N, 8 × 4, 8)
        t = t + self.attn(self.norm(t))
        return self.head(t.mean(1))


def test_a_hand_written_attention_module_that_exposes_its_weights():
    model = HandViT()
    x = torch.rand(2, 3, 32, 16)  # non-square: 8 × 4 patches, no class token
    out = explain(model, x, "attention")
    assert out.raw.shape == (2, 8, 4)
    w = model.attention_weights if hasattr(model, "attention_weights") else model.attn.attention_weights
    np.testing.assert_allclose(out.raw, w.detach().numpy().mean(1).reshape(2, 8, 4), rtol=1e-5)
    cam = explain(model, x, "gradcam")
    assert cam.layer == "norm" and cam.raw.shape == (2, 8, 4) and cam.maps.shape == (2, 32, 16)


def test_a_model_without_capturable_attention_says_why():
    with pytest.raises(ValueError, match="no attention weights could be captured.*gradcam"):
        explain(HandViT(expose=False), torch.rand(1, 3, 16, 16), "rollout")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Reshape((16, 12))(keras.layers.Conv2D(12, 2, strides=2)(inp))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    with pytest.raises(ValueError, match="no attention weights could be captured.*MultiHeadAttention"):
        explain(model, np.zeros((1, 8, 8, 3), np.float32), "attention")


class SilentAttention(ExposingAttention):
    """Declares ``attention_weights`` but never sets it."""

    def forward(self, x):
        return self.qkv(x)[..., :x.shape[-1]]


class SilentKerasAttention(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention_weights = None

    def call(self, x):
        return x


def test_an_attention_weights_attribute_left_none_says_what_to_set_in_both_frameworks():
    model = HandViT()
    model.attn = SilentAttention(8)
    with pytest.raises(ValueError, match=r"module SilentAttention has an attention_weights attribute "
                       r"but it is None after its forward: .*\(N, heads, T, T\).* in forward\(\)"):
        explain(model, torch.rand(1, 3, 16, 16), "attention")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Reshape((16, 12))(keras.layers.Conv2D(12, 2, strides=2)(inp))
    x = SilentKerasAttention(name="silent")(keras.layers.LayerNormalization()(x))
    kmodel = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    with pytest.raises(ValueError, match=r"layer 'silent' has an attention_weights attribute "
                       r"but it is None after its call: .*\(N, heads, T, T\).* in call\(\)"):
        explain(kmodel, np.zeros((1, 8, 8, 3), np.float32), "attention")


def test_tokens_to_grid_setting_and_its_error(twins, batch):
    km, tm = twins
    same = explain(tm, batch[1], tokens_to_grid=(4, 4)).raw
    np.testing.assert_allclose(same, explain(tm, batch[1]).raw, rtol=1e-6)
    with pytest.raises(ValueError, match="tokens_to_grid must be"):
        Explainer(tm, tokens_to_grid="4x4")
    with pytest.raises(ValueError, match="needs at least"):
        explain(tm, batch[1], tokens_to_grid=(5, 5))


def _timm_forward(state, image, depth, heads):
    """timm's VisionTransformer forward, written out (fused qkv, scaled dot-product attention)."""
    F = torch.nn.functional
    patch = state["patch_embed.proj.weight"].shape[-1]
    x = F.conv2d(image, state["patch_embed.proj.weight"], state["patch_embed.proj.bias"], stride=patch)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([state["cls_token"].expand(len(x), -1, -1), x], 1) + state["pos_embed"]
    n, t, d = x.shape
    for b in range(depth):
        p = f"blocks.{b}."
        y = F.layer_norm(x, (d,), state[p + "norm1.weight"], state[p + "norm1.bias"], 1e-6)
        qkv = (y @ state[p + "attn.qkv.weight"].T + state[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(n, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(q @ k.transpose(-2, -1) * (d // heads) ** -0.5, -1)
        o = (attn @ v).transpose(1, 2).reshape(n, t, d)
        x = x + o @ state[p + "attn.proj.weight"].T + state[p + "attn.proj.bias"]
        y = F.layer_norm(x, (d,), state[p + "norm2.weight"], state[p + "norm2.bias"], 1e-6)
        y = F.gelu(y @ state[p + "mlp.fc1.weight"].T + state[p + "mlp.fc1.bias"])
        x = x + y @ state[p + "mlp.fc2.weight"].T + state[p + "mlp.fc2.bias"]
    x = F.layer_norm(x, (d,), state["norm.weight"], state["norm.bias"], 1e-6)
    return x[:, 0] @ state["head.weight"].T + state["head.bias"]


def test_a_timm_checkpoint_written_here_loads_and_explains(tmp_path):
    from gradcam_helpers.course.models.torch_vit import build_torch_vit, load_timm_vit

    depth, heads, dim, classes = 2, 3, 24, 5
    g = torch.Generator().manual_seed(0)
    shapes = {"cls_token": (1, 1, dim), "pos_embed": (1, 5, dim), "patch_embed.proj.weight": (dim, 3, 8, 8),
              "patch_embed.proj.bias": (dim,), "norm.weight": (dim,), "norm.bias": (dim,),
              "head.weight": (classes, dim), "head.bias": (classes,)}
    for b in range(depth):
        p = f"blocks.{b}."
        shapes.update({p + "norm1.weight": (dim,), p + "norm1.bias": (dim,), p + "norm2.weight": (dim,),
                       p + "norm2.bias": (dim,), p + "attn.qkv.weight": (3 * dim, dim),
                       p + "attn.qkv.bias": (3 * dim,), p + "attn.proj.weight": (dim, dim),
                       p + "attn.proj.bias": (dim,), p + "mlp.fc1.weight": (4 * dim, dim),
                       p + "mlp.fc1.bias": (4 * dim,), p + "mlp.fc2.weight": (dim, 4 * dim),
                       p + "mlp.fc2.bias": (dim,)})
    state = {k: torch.randn(s, generator=g) * 0.3 for k, s in shapes.items()}
    path = tmp_path / "pytorch_model.bin"
    torch.save(state, path)

    def build():
        return build_torch_vit(image_size=16, patch=8, dim=dim, depth=depth, heads=heads, channels=3,
                               num_classes=classes, mlp_ratio=4)

    model = load_timm_vit(path, depth=depth, build=build)
    x = torch.rand(2, 3, 16, 16, generator=g)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), _timm_forward(state, x, depth, heads).numpy(),
                                   rtol=1e-4, atol=1e-5)
    out = explain(model, x)
    assert out.layer == "blocks.1.norm1" and out.raw.shape == (2, 2, 2)
    assert explain(model, x, "rollout").raw.shape == (2, 2, 2)
    torch.save(dict(state, **{"blocks.0.ls1.gamma": torch.ones(dim)}), path)
    with pytest.raises(ValueError, match="blocks.0.ls1.gamma"):
        load_timm_vit(path, depth=depth, build=build)
