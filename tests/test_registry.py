"""The method contract: options with defaults and validation, Explainer defaults, explain()'s
strictness, the generated docstring, and a method added with one function and one registration
(its own driver included) that runs through the unchanged pipeline."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradcam_helpers import Explainer, explain  # noqa: E402
from gradcam_helpers.engine import registry  # noqa: E402
from gradcam_helpers.engine.registry import Method, Option, Raw, driver, one_of, positive_int  # noqa: E402


def test_options_check_their_values_and_say_what_is_valid():
    steps = positive_int("steps", 50, "points")
    assert steps.check(3) == 3 and steps.check(np.int64(2)) == 2
    for bad in (0, -1, 1.5, True, "3", None):
        with pytest.raises(ValueError, match="steps must be an int >= 1"):
            steps.check(bad)
    assert positive_int("k", None, "", optional=True).check(None) is None
    rule = one_of("rule", ("a", "b"), "")
    assert rule.default == "a"
    with pytest.raises(ValueError, match="rule must be one of 'a', 'b'; got 'c'"):
        rule.check("c")


def test_bind_layers_defaults_explainer_defaults_and_the_call():
    method = Method("bind-test", "cam", np.sum, lambda *a: None, options=(
        positive_int("steps", 50, ""), Option("noise", 0.1, "", lambda v: v >= 0, "a number >= 0")))
    assert method.bind({}, {}) == {"steps": 50, "noise": 0.1}
    assert method.bind({"steps": 8, "unrelated": 1}, {}) == {"steps": 8, "noise": 0.1}
    assert method.bind({"steps": 8}, {"steps": 4}) == {"steps": 4, "noise": 0.1}
    with pytest.raises(TypeError, match="takes no option\\(s\\) stepz; its options are: steps, noise"):
        method.bind({}, {"stepz": 4})
    with pytest.raises(ValueError, match="noise must be a number >= 0"):
        method.bind({}, {"noise": -1})
    bare = Method("bare-test", "cam", np.sum, lambda *a: None)
    with pytest.raises(TypeError, match="it takes no options"):
        bare.bind({}, {"steps": 1})


def _cnn():
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3)).eval()


def test_explainer_defaults_are_checked_at_once_and_apply_to_the_methods_that_have_them():
    model = _cnn()
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(TypeError, match="unknown keyword 'stepz'.*score_cam_batch_size.*steps"):
        Explainer(model, stepz=3)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        Explainer(model, steps=0)
    ex = Explainer(model, steps=4)
    assert ex(x, "gradcam").maps.shape == (2, 8, 8)             # gradcam has no steps: not used
    np.testing.assert_allclose(ex(x, "integrated_gradients").raw,
                               explain(model, x, "integrated_gradients", steps=4).raw, atol=1e-6)
    assert not np.allclose(ex(x, "integrated_gradients").raw,
                           explain(model, x, "integrated_gradients").raw, atol=1e-6)


def test_explain_takes_only_the_settings_and_the_methods_own_options():
    model = _cnn()
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(TypeError, match="'gradcam' takes no option\\(s\\) score_cam_batch_size"):
        explain(model, x, "gradcam", score_cam_batch_size=4)
    assert explain(model, x, "scorecam", score_cam_batch_size=4, batch_size=1).maps.shape == (1, 8, 8)


def test_explain_docstring_lists_every_registered_method_and_option():
    doc = explain.__doc__
    for method in registry.METHODS.values():
        assert f'"{method.name}"' in doc and method.paper in doc
        for option in method.options:
            assert f"``{option.name}``" in doc


@driver(needs="scores")
def _with_occlusion(method, job, options):
    """Forward passes of the images with one pixel at a time set to 0 (through the adapter)."""
    adapter = job.adapter
    x = adapter.to_channels_last(job.images)
    logits = adapter.logits(job.images)
    targets = np.argmax(logits, axis=1) if job.target is None else np.broadcast_to(job.target, len(x))
    n, h, w, c = x.shape
    drops = np.zeros((n, h, w))
    for i in range(n):
        copies = np.repeat(x[i:i + 1], h * w, axis=0).reshape(h * w, h, w, c)
        copies[np.arange(h * w), np.arange(h * w) // w, np.arange(h * w) % w] = 0
        scores = adapter.logits(adapter.validate(adapter.from_channels_last(copies)))
        drops[i] = (logits[i, targets[i]] - scores[:, targets[i]]).reshape(h, w)
    return Raw(method.fn(drops), logits, np.asarray(targets, np.int64), "input")


def test_a_method_is_one_function_and_one_registration():
    """An occlusion-style method with its own driver runs through explain() and Explainer without
    any change to the pipeline — on a model without a convolution (no target layer needed)."""
    weights = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, 1.0, 1.0]])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(weights)
    x = torch.tensor([[[[1.0, 1.0], [2.0, 1.0]]]])            # (1, 1, 2, 2)
    registry.register(Method("test-occlusion", "cam", lambda drops: np.maximum(drops, 0),
                             _with_occlusion, "a test"))
    try:
        res = explain(model, x, "Test_Occlusion", target=0)
        # zeroing pixel p lowers class 0's score by W[0, p] * x[p]: [1, -4, 1, 3] → ReLU → / max 3
        np.testing.assert_allclose(res.raw[0], [[1.0, 0.0], [1.0, 3.0]], atol=1e-6)
        np.testing.assert_allclose(res.maps[0], [[1 / 3, 0.0], [1 / 3, 1.0]], atol=1e-6)
        assert res.method == "test-occlusion" and res.layer == "input" and res.targets.tolist() == [0]
        assert "test-occlusion" in registry.method_names(needs="scores", kind="cam")
        with pytest.raises(ValueError, match="no module with a spatial"):
            explain(model, x, "gradcam")                     # a CAM still needs a feature map
    finally:
        registry.unregister("test-occlusion")
    with pytest.raises(ValueError, match="unknown method"):
        explain(model, x, "test-occlusion")
