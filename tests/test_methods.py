"""The framework-free core: each method on numbers worked out by hand, and its invariants."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradcam_helpers.engine import cam, registry
from gradcam_helpers.engine.maps import normalize_maps, resize_maps

#: every method that is a function of (activations, gradients), from the registry
GRADIENT = {name: registry.get_method(name).fn for name in registry.method_names(needs="gradients")}

# One image, a 2×2 feature map with 2 channels.  A[..., 0] and A[..., 1]:
A = np.array([[[[1.0, 0.0], [2.0, 1.0]],
               [[0.0, 3.0], [1.0, 1.0]]]])          # (1, 2, 2, 2)
# channel 0 = [[1, 2], [0, 1]],  channel 1 = [[0, 1], [3, 1]]
G = np.array([[[[0.5, -1.0], [0.5, 0.0]],
               [[0.5, 1.0], [0.5, 2.0]]]])          # (1, 2, 2, 2)
# gradient channel 0 = 0.5 everywhere, channel 1 = [[-1, 0], [1, 2]]


def test_gradcam_by_hand():
    # weights = spatial means: ch0 0.5, ch1 (−1 + 0 + 1 + 2) / 4 = 0.5
    # map = 0.5 * [[1, 2], [0, 1]] + 0.5 * [[0, 1], [3, 1]] = [[0.5, 1.5], [1.5, 1.0]]
    np.testing.assert_allclose(cam.gradcam(A, G)[0], [[0.5, 1.5], [1.5, 1.0]], atol=1e-6)


def test_hirescam_by_hand():
    # sum_k G*A: [[0.5*1 + (−1)*0, 0.5*2 + 0*1], [0.5*0 + 1*3, 0.5*1 + 2*1]] = [[0.5, 1], [3, 2.5]]
    np.testing.assert_allclose(cam.hirescam(A, G)[0], [[0.5, 1.0], [3.0, 2.5]], atol=1e-6)


def test_layercam_by_hand():
    # relu(G) drops the −1: [[0.5, 1], [3, 2.5]] as HiResCAM here (the −1 met a zero activation)
    np.testing.assert_allclose(cam.layercam(A, G)[0], [[0.5, 1.0], [3.0, 2.5]], atol=1e-6)
    # where a negative gradient meets a positive activation the two differ
    g = G.copy()
    g[0, 1, 1, 1] = -2.0
    assert cam.hirescam(A, g)[0, 1, 1] == pytest.approx(0.0)       # 0.5 − 2 < 0 → ReLU
    assert cam.layercam(A, g)[0, 1, 1] == pytest.approx(0.5)       # only the positive part


def test_xgradcam_by_hand():
    # ch0: sum(A*G) / sum(A) = (0.5 + 1 + 0 + 0.5) / 4 = 0.5
    # ch1: (0 + 0 + 3 + 2) / 5 = 1.0
    # map = 0.5 * ch0 + 1.0 * ch1 = [[0.5, 2.0], [3.0, 1.5]]
    np.testing.assert_allclose(cam.xgradcam(A, G)[0], [[0.5, 2.0], [3.0, 1.5]], atol=1e-6)


def test_gradcam_plus_plus_by_hand():
    # ch0: G = 0.5 everywhere, sum A = 4 → a = 0.25 / (0.5 + 4 * 0.125) = 0.25; weight = 4 * 0.25 * 0.5 = 0.5
    # ch1: sum A = 5; at G = 1: a = 1 / (2 + 5) = 1/7, contributes 1/7;
    #      at G = 2: a = 4 / (8 + 40) = 1/12, contributes 2/12; G = −1 gives relu 0; G = 0 gives 0
    w1 = 1 / 7 + 2 / 12
    expected = 0.5 * A[0, :, :, 0] + w1 * A[0, :, :, 1]
    np.testing.assert_allclose(cam.gradcam_plus_plus(A, G)[0], expected, atol=1e-6)


def test_cam_by_hand():
    weights = np.array([[2.0, -1.0]])  # W[:, c] for the one image
    # 2 * ch0 − ch1 = [[2, 3], [−3, 1]] → ReLU → [[2, 3], [0, 1]]
    np.testing.assert_allclose(cam.cam(A, weights)[0], [[2.0, 3.0], [0.0, 1.0]], atol=1e-6)


def test_eigencam_is_first_principal_component():
    # rank-one activations: every location is a multiple of the same channel vector
    pattern = np.array([[0.0, 1.0], [2.0, 3.0]])
    acts = pattern[None, :, :, None] * np.array([1.0, 2.0])[None, None, None, :]
    m = cam.eigencam(acts)[0]
    centred = pattern - pattern.mean()
    expected = np.maximum(centred, 0) * np.sqrt(5)  # projection on the unit vector (1, 2)/√5
    np.testing.assert_allclose(m, expected, atol=1e-5)
    # the sign is fixed to follow the activation: flipping channels' scale does not flip the map
    assert m[1, 1] > 0 and m[0, 0] == 0


def test_score_cam_weights_conventions():
    logits = np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    paper = cam.score_cam_weights(logits, target=0, convention="paper")
    np.testing.assert_allclose(paper, [np.exp(2) / (np.exp(2) + 1), 0.5, np.exp(-1) / (np.exp(-1) + np.e)])
    channel = cam.score_cam_weights(logits, target=0, convention="channel_softmax")
    np.testing.assert_allclose(channel, np.exp([2, 0, -1]) / np.exp([2, 0, -1]).sum())
    with pytest.raises(ValueError, match="paper"):
        cam.score_cam_weights(logits, 0, convention="nope")


def test_score_cam_masks_are_min_max_scaled_and_finite_for_flat_channels():
    acts = np.zeros((1, 2, 2, 2))
    acts[0, :, :, 0] = [[0, 1], [2, 4]]  # channel 1 stays flat (all zero)
    masks = cam.score_cam_masks(acts, (4, 4))
    assert masks.shape == (1, 2, 4, 4)
    assert masks[0, 0].min() == 0 and masks[0, 0].max() == pytest.approx(1)
    assert np.all(masks[0, 1] == 0) and np.isfinite(masks).all()


def test_normalize_keeps_zero_maps_zero_and_scales_by_max():
    maps = np.zeros((3, 4, 4))
    maps[1, 0, 0] = 2.0
    maps[2] = 5.0  # positive everywhere: stays 1 everywhere (attention spread over the image)
    out = normalize_maps(maps)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert np.all(out[0] == 0)
    assert out[1, 0, 0] == 1 and out[1].sum() == 1
    assert np.all(out[2] == 1)


def test_resize_matches_opencv_bilinear():
    import cv2

    rng = np.random.default_rng(0)
    small = rng.random((7, 5)).astype(np.float32)
    ours = resize_maps(small[None], (28, 20))[0]
    theirs = cv2.resize(small, (20, 28), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_get_method_lists_choices():
    assert registry.get_method("Grad-CAM++").name == "gradcam++"
    with pytest.raises(ValueError, match="gradcam, gradcam\\+\\+"):
        registry.get_method("no such method")


@pytest.mark.parametrize("spelling, name", [
    ("Grad-CAM", "gradcam"), ("grad_cam", "gradcam"), ("GRAD CAM", "gradcam"),
    ("grad-cam++", "gradcam++"), ("gradcampp", "gradcam++"), ("Score-CAM", "scorecam"),
    ("score_cam", "scorecam"), ("Eigen-CAM", "eigencam"), ("X-Grad-CAM", "xgradcam")])
def test_get_method_ignores_case_hyphens_underscores_and_spaces(spelling, name):
    assert registry.get_method(spelling).name == name


def test_every_registered_method_carries_its_function_and_known_needs():
    assert registry.method_names()[:2] == ["cam", "gradcam"]
    for method in registry.METHODS.values():
        assert callable(method.fn), method.name
        assert registry.get_method(method.name) is method
    assert set(GRADIENT) == {"gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"}
    assert registry.get_method("gradcam").fn is cam.gradcam


def test_register_adds_a_method_and_refuses_a_taken_name():
    extra = registry.Method("test-only", "cam", cam.eigencam, cam.with_activations, "none")
    try:
        registry.register(extra)
        assert registry.get_method("Test_Only") is extra
        assert "test-only" in registry.method_names(needs="activations")
        with pytest.raises(ValueError, match="already registered"):
            registry.register(registry.Method("TestOnly", "cam", cam.eigencam, cam.with_activations))
    finally:
        registry.unregister("test-only")
    assert "test-only" not in registry.METHODS
    with pytest.raises(ValueError, match="unknown method"):
        registry.get_method("TestOnly")
    with pytest.raises(ValueError, match="no function"):
        registry.register(registry.Method("nofn", "cam", None, cam.with_activations))
    with pytest.raises(ValueError, match="kinds are: cam, pixel"):
        registry.register(registry.Method("nokind", "token", cam.eigencam, cam.with_activations))


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_method_is_finite_nonnegative_and_normalises_into_unit_range(data):
    n = data.draw(st.integers(1, 3))
    h, w, k = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    acts = data.draw(arrays(np.float32, (n, h, w, k), elements=finite))
    if data.draw(st.booleans()):
        acts = np.maximum(acts, 0)  # post-ReLU activations, the usual case
    grads = data.draw(arrays(np.float32, (n, h, w, k), elements=finite))
    if data.draw(st.booleans()):
        grads[...] = 0  # a dead score: every map must be all zero, not NaN
    for name, fn in GRADIENT.items():
        raw = fn(acts, grads)
        assert raw.shape == (n, h, w), name
        assert np.isfinite(raw).all() and (raw >= 0).all(), name
        if not grads.any():
            assert not raw.any(), name
        maps = normalize_maps(resize_maps(raw, (8, 8)))
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, name
    eig = cam.eigencam(acts)
    assert np.isfinite(eig).all() and (eig >= 0).all()


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (2, 3, 3, 2), elements=finite))
def test_maps_are_per_image(acts):
    """Image 0's map must not depend on image 1's gradients (no pooling over the batch)."""
    rng = np.random.default_rng(0)
    grads = rng.normal(size=acts.shape).astype(np.float32)
    other = grads.copy()
    other[1] = rng.normal(size=grads[1].shape)
    for name, fn in GRADIENT.items():
        np.testing.assert_array_equal(fn(acts, grads)[0], fn(acts, other)[0], err_msg=name)


def test_tiny_but_real_maps_are_scaled_not_wiped():
    """A network with tiny activations (random weights) still has a map: scale-free handling."""
    rng = np.random.default_rng(1)
    acts = rng.random((1, 3, 3, 4)) * 1e-11
    grads = rng.normal(size=(1, 3, 3, 4)) * 1e-9
    for name, fn in GRADIENT.items():
        small = normalize_maps(fn(acts, grads))
        large = normalize_maps(fn(acts * 1e11, grads * 1e9))
        if name == "gradcam++":  # its weights are not scale-free (2 G² + ΣA·G³); it must not vanish
            assert small.max() == 1.0
        else:
            np.testing.assert_allclose(small, large, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(cam.score_cam_masks(acts, (6, 6)), cam.score_cam_masks(acts * 1e11, (6, 6)), atol=1e-5)
    np.testing.assert_allclose(normalize_maps(cam.eigencam(acts)),
                               normalize_maps(cam.eigencam(acts * 1e11)), atol=1e-5)
