"""Bad input gets the same rules and the same advice in both frameworks, before any work is done."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
nn = torch.nn

from gradcam_helpers import explain  # noqa: E402


def keras_cnn():
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="fc")(x))


class CountingCNN(nn.Module):
    def __init__(self, outputs=1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)
        self.outputs = outputs
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        logits = self.fc(self.conv(x).relu().mean((2, 3)))
        return logits if self.outputs == 1 else (logits, logits * 2)


def images(layout):
    x = np.random.default_rng(0).random((2, 12, 12, 3)).astype("float32")
    return x if layout == "nhwc" else torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["gradcam", "scorecam", "occlusion"])
def test_nan_or_inf_images_raise_before_any_work_in_both_frameworks(bad, method):
    x = images("nhwc")
    x[1, 3, 4, 0] = bad
    model = keras_cnn()
    called = []
    original = model.call
    model.call = lambda *a, **k: called.append(1) or original(*a, **k)
    with pytest.raises(ValueError, match="NaN or inf.*nan_to_num"):
        explain(model, x, method)
    assert not called  # rejected before the model ran

    tmodel = CountingCNN()
    tx = images("nchw")
    tx[1, 0, 3, 4] = bad
    with pytest.raises(ValueError, match="NaN or inf.*nan_to_num"):
        explain(tmodel, tx, method)
    assert tmodel.calls == 0


def test_keras_model_with_two_inputs_gets_the_message():
    a, b = keras.Input((12, 12, 3), name="image"), keras.Input((4,), name="meta")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(a))
    model = keras.Model([a, b], keras.layers.Dense(3)(keras.layers.Concatenate()([h, b])))
    x = images("nhwc")
    for given in (x, [x, np.zeros((2, 4), "float32")], {"image": x, "meta": np.zeros((2, 4), "float32")}):
        with pytest.raises(ValueError, match=r"takes 2 inputs \(image, meta\).*wrap the model"):
            explain(model, given)


def test_torch_model_given_several_inputs_gets_the_same_message():
    with pytest.raises(ValueError, match="takes 2 inputs.*wrap the model"):
        explain(CountingCNN(), [images("nchw"), torch.zeros(2, 4)])


def test_keras_model_with_two_outputs_gets_the_message_and_score_fn_works():
    inp = keras.Input((12, 12, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="conv")(inp))
    model = keras.Model(inp, [keras.layers.Dense(3, name="a")(h), keras.layers.Dense(2, name="b")(h)])
    with pytest.raises(ValueError, match="returns 2 outputs.*score_fn=lambda outputs: outputs\\[i\\]"
                                         ".*wrap the model"):
        explain(model, images("nhwc"))
    res = explain(model, images("nhwc"), score_fn=lambda outputs: outputs[1])
    assert res.logits.shape == (2, 2) and res.layer == "conv"
    np.testing.assert_allclose(res.logits, model(images("nhwc"))[1].numpy(), rtol=1e-5, atol=1e-6)


def test_torch_model_with_two_outputs_gets_the_same_message_and_score_fn_works():
    model = CountingCNN(outputs=2)
    with pytest.raises(ValueError, match="returns 2 outputs.*score_fn=lambda outputs: outputs\\[i\\]"
                                         ".*wrap the model"):
        explain(model, images("nchw"))
    res = explain(model, images("nchw"), score_fn=lambda outputs: outputs[1])
    with torch.no_grad():
        expected = model(images("nchw"))[1].numpy()
    np.testing.assert_allclose(res.logits, expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# explain() reuses its inspection, and inspects again after a structural change


def test_torch_explain_inspects_once_and_again_after_a_module_is_replaced():
    from gradcam_helpers.engine import pipeline

    pipeline.clear_cache()
    model = CountingCNN()
    x = images("nchw")
    explain(model, x)
    assert model.calls == 2  # the dry run and the call
    explain(model, x, "gradcam++")
    explain(model, x, target=1)
    assert model.calls == 4  # one forward pass per call: the inspection was reused
    model.fc = nn.Linear(4, 5)  # a module replaced: 5 classes now
    res = explain(model, x)
    assert res.logits.shape == (2, 5) and model.calls == 6  # inspected afresh
    model.conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1))
    res = explain(model, x)
    assert res.layer == "conv" and res.raw.shape == (2, 10, 10)
    pipeline.clear_cache()


def test_keras_explain_inspects_again_after_a_layer_is_swapped():
    from gradcam_helpers import Explainer

    seq = keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Conv2D(4, 3, name="c1"),
                            keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    ex = Explainer(seq)
    x = images("nhwc")
    assert ex(x).logits.shape == (2, 3)
    seq.pop()
    seq.pop()
    seq.add(keras.layers.Conv2D(6, 3, name="c2"))
    seq.add(keras.layers.GlobalAveragePooling2D())
    seq.add(keras.layers.Dense(4))
    res = ex(x)  # the same Explainer, reused by hand: it notices the new layers
    assert res.logits.shape == (2, 4) and res.layer == "c2" and res.raw.shape == (2, 8, 8)
    np.testing.assert_allclose(res.logits, seq(x).numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- transformers


class OddTokens(nn.Module):
    """9 patch tokens plus 89 extra tokens in front: 98 − e is no square for e ≤ 16, so the
    automatic layout finds no grid."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(3, 4, 4, stride=4)
        self.extra = nn.Parameter(torch.zeros(1, 89, 4))
        self.norm = nn.LayerNorm(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        t = self.norm(torch.cat([self.extra.expand(len(t), -1, -1), t], 1))
        return self.fc(t.mean(1))


def keras_odd_tokens():
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 3))
    x = keras.layers.Reshape((49, 4))(keras.layers.Conv2D(4, 4, strides=4)(inp))
    x = keras.layers.Concatenate(axis=1)([x, x])  # 98 tokens: 49 patches twice
    x = keras.layers.LayerNormalization(name="norm")(x)
    return keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(x)))


def test_tokens_that_fit_no_grid_name_the_option_in_both_frameworks():
    with pytest.raises(ValueError, match=r"token sequences.*tokens_to_grid=\(h, w\)"):
        explain(OddTokens(), images("nchw"))
    with pytest.raises(ValueError, match=r"tokens_to_grid=\(h, w\)"):
        explain(OddTokens(), images("nchw"), layer="norm")
    with pytest.raises(ValueError, match=r"98 tokens do not fit.*tokens_to_grid=\(h, w\)"):
        explain(keras_odd_tokens(), np.zeros((1, 28, 28, 3), np.float32), layer="norm")
    # the user's layout fixes it: the leading 89 tokens dropped, 3 × 3 patches
    assert explain(OddTokens(), images("nchw"), layer="norm", tokens_to_grid=(3, 3)).raw.shape == (2, 3, 3)


@pytest.mark.parametrize("bad", ["3x3", (3,), (0, 3), (3.0, 3)])
def test_a_bad_tokens_to_grid_value_is_refused_in_both_frameworks(bad):
    for model, x in ((OddTokens(), images("nchw")),
                     (keras_odd_tokens(), np.zeros((1, 28, 28, 3), np.float32))):
        with pytest.raises(ValueError, match="tokens_to_grid must be"):
            explain(model, x, tokens_to_grid=bad)


@pytest.mark.parametrize("method", ["attention", "rollout"])
def test_attention_maps_of_a_cnn_say_why_in_both_frameworks(method):
    with pytest.raises(ValueError, match="no attention weights could be captured.*MultiHeadAttention"):
        explain(keras_cnn(), images("nhwc"), method)
    with pytest.raises(ValueError, match="no attention weights could be captured.*MultiheadAttention"):
        explain(CountingCNN(), images("nchw"), method)
