"""Max-sensitivity with answers worked out by hand (a constant and a linear explainer), its noise,
its errors, and the same value through explain() for a Keras model and its PyTorch twin."""
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from gradcam_helpers.evaluation.robustness import max_sensitivity

H = W = 64
D = H * W


def test_a_constant_explainer_has_sensitivity_zero():
    fixed = np.random.default_rng(0).random((3, 8, 8))
    x = np.random.default_rng(1).random((3, 8, 8, 2))
    result = max_sensitivity(lambda images: fixed, x, radius=0.1, samples=5)
    assert result.values.tolist() == [0.0, 0.0, 0.0] and result.samples.shape == (3, 5)


def test_a_linear_explainer_moves_by_c_times_the_noise_norm():
    # Φ(x) = c x on one-channel images: Φ(x + δ) − Φ(x) = c δ. With δ ~ U(−r, r) on each of the
    # D pixels, E ||δ||² = D r² / 3 and ||δ|| concentrates (relative spread ~0.9 / sqrt(D) ≈ 1.4 % of
    # ||δ||² at D = 4096), so each sample — and their maximum — is c r sqrt(D / 3) within 3 %;
    # it can never exceed the corner of the box, c r sqrt(D).
    c, r = 3.0, 0.05
    x = np.ones((2, H, W))
    absolute = max_sensitivity(lambda images: c * images, x, radius=r, samples=8, relative=False)
    expected = c * r * math.sqrt(D / 3)
    assert absolute.values == pytest.approx([expected] * 2, rel=0.03)
    assert np.all(absolute.samples <= c * r * math.sqrt(D)) and not absolute.relative
    # relative: divided by ||x||_F = sqrt(D) for an image of ones  →  c r / sqrt(3)
    relative = max_sensitivity(lambda images: c * images, x, radius=r, samples=8)
    assert relative.values == pytest.approx([c * r / math.sqrt(3)] * 2, rel=0.03)
    np.testing.assert_allclose(relative.samples, absolute.samples / math.sqrt(D))
    # twice the radius, twice the change (the same draws, scaled)
    double = max_sensitivity(lambda images: c * images, x, radius=2 * r, samples=8, relative=False)
    np.testing.assert_allclose(double.samples, 2 * absolute.samples, rtol=1e-5)


def test_the_noise_is_uniform_in_the_box_and_new_at_each_sample():
    seen = []

    def record(images):
        seen.append(images.copy())
        return images[..., 0]

    x = np.full((1, H, W, 1), 0.5)
    result = max_sensitivity(record, x, radius=0.1, samples=4, relative=False)
    assert len(seen) == 5 and np.array_equal(seen[0], x.astype(np.float32))  # Φ(x), then 4 draws
    deltas = np.stack(seen[1:]).astype(np.float64) - 0.5
    assert np.abs(deltas).max() <= 0.1 + 1e-6 and np.abs(deltas).max() > 0.099
    assert abs(deltas.mean()) < 0.003 and deltas.std() == pytest.approx(0.1 / math.sqrt(3), rel=0.02)
    assert not np.allclose(deltas[0], deltas[1])
    np.testing.assert_allclose(result.samples[0], np.sqrt((deltas ** 2).sum(axis=(1, 2, 3, 4))), rtol=1e-5)


def test_a_map_that_does_not_cross_its_threshold_does_not_move():
    # Φ(x) = 1[x > 0.5]: pixels 0.2 away from the threshold never cross it under noise of radius 0.1
    x = np.where(np.random.default_rng(0).random((2, 16, 16)) > 0.5, 0.7, 0.3)
    step = lambda images: (images > 0.5).astype(float)  # noqa: E731
    assert max_sensitivity(step, x, radius=0.1, samples=6).values.tolist() == [0.0, 0.0]
    # radius 0.3: every pixel may cross, and some do
    assert np.all(max_sensitivity(step, x, radius=0.3, samples=6, relative=False).values > 1)


def test_seeded_and_the_same_for_channels_first_and_channels_last():
    rng = np.random.default_rng(2)
    nhwc = rng.random((3, 10, 12, 3))
    squares = lambda images, axis: (images ** 2).sum(axis=axis)  # noqa: E731
    a = max_sensitivity(lambda im: squares(im, -1), nhwc, radius=0.05, samples=5, seed=7)
    b = max_sensitivity(lambda im: squares(im, 1), nhwc.transpose(0, 3, 1, 2), radius=0.05, samples=5,
                        seed=7)
    c = max_sensitivity(lambda im: squares(im, -1), nhwc, radius=0.05, samples=5, seed=8)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-5)
    assert not np.allclose(a.samples, c.samples)


def test_precomputed_maps_save_a_call():
    calls = []

    def explain(images):
        calls.append(1)
        return images[..., 0] * 2

    x = np.random.default_rng(0).random((2, 8, 8, 1))
    with_maps = max_sensitivity(explain, x, radius=0.01, samples=3, maps=2 * x[..., 0].astype(np.float32))
    assert len(calls) == 3
    without = max_sensitivity(explain, x, radius=0.01, samples=3)
    np.testing.assert_allclose(with_maps.values, without.values, rtol=1e-5)


def test_bad_input_gets_a_clear_error():
    x = np.random.default_rng(0).random((2, 8, 8, 3))
    ok = lambda images: images.sum(axis=-1)  # noqa: E731
    for radius in (0, -0.1, float("nan"), "0.1"):
        with pytest.raises(ValueError, match="radius must be a positive number"):
            max_sensitivity(ok, x, radius=radius)
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        max_sensitivity(ok, x, radius=0.1, samples=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        max_sensitivity(ok, np.where(x > 0.9, np.nan, x), radius=0.1)
    with pytest.raises(ValueError, match="uint8"):
        max_sensitivity(ok, (x * 255).astype(np.uint8), radius=0.1)
    with pytest.raises(ValueError, match="relative=False"):
        max_sensitivity(ok, np.zeros((1, 8, 8, 3)), radius=0.1)
    with pytest.raises(ValueError, match=r"maps \(N, H, W\), one per image"):
        max_sensitivity(lambda images: images, x, radius=0.1)        # (N, H, W, C) is not a map
    with pytest.raises(ValueError, match="keep their size"):
        max_sensitivity(ok, x, radius=0.1, maps=np.zeros((2, 4, 4)), channels_last=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        max_sensitivity(lambda images: np.full(images.shape[:3], np.nan), x, radius=0.1)
    with pytest.raises(ValueError, match="channels_last"):
        max_sensitivity(lambda images: np.zeros((2, 5, 5)), x, radius=0.1)
    with pytest.raises(TypeError, match="callable"):
        max_sensitivity(None, x, radius=0.1)


# --------------------------------------------------------------------------- Keras and PyTorch


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_the_same_value_for_a_keras_model_and_its_pytorch_twin(method, twin_cnns, twin_images):
    torch = pytest.importorskip("torch")

    from gradcam_helpers import explain

    km, tm = twin_cnns  # the twins of the map-equality tests (tests/conftest.py)
    x = twin_images
    targets = explain(km, x, method).targets             # each image's top class, kept fixed
    k = max_sensitivity(lambda im: explain(km, im, method, target=targets).maps, x, radius=0.05,
                        samples=4, seed=1)
    t = max_sensitivity(lambda im: explain(tm, im, method, target=targets).maps,
                        torch.from_numpy(x.transpose(0, 3, 1, 2)), radius=0.05, samples=4, seed=1)
    assert (k.values > 1e-2).sum() >= 4                   # the maps do move: a real comparison
    np.testing.assert_allclose(k.samples, t.samples, rtol=1e-3, atol=1e-5)
