"""Metrics with known answers: pointing game, deletion / insertion, ROAD, Average Drop / Increase in
Confidence, and the cascading-randomisation sanity check in both frameworks."""
import numpy as np
import pytest

from gradcam_helpers import evaluation as metrics
from gradcam_helpers.evaluation import (
    confidence_change,
    deletion,
    insertion,
    map_ssim,
    noisy_linear_imputation,
    pointing_game,
    rank_correlation,
    road,
    sanity_check,
)

H = W = 16
BOX = (4, 6, 12, 10)  # x0, y0, x1, y1: 8 × 4 = 32 pixels of 256
MASK = np.zeros((H, W), dtype=bool)
MASK[BOX[1]:BOX[3], BOX[0]:BOX[2]] = True
AREA = MASK.mean()  # 0.125


def object_score(images):
    """A 'model' whose class-0 score is the mean brightness on the object; class 1 scores 0."""
    x = np.asarray(images, dtype=np.float64)
    on_object = x[:, MASK, :].mean(axis=(1, 2))
    return np.stack([on_object, np.zeros(len(x))], axis=1)


def total_score(images):
    """Class 0 = mean brightness over the whole image: every pixel counts the same."""
    x = np.asarray(images, dtype=np.float64)
    return np.stack([x.mean(axis=(1, 2, 3)), np.zeros(len(x))], axis=1)


def candidate_maps(seed=0):
    rng = np.random.default_rng(seed)
    return {"mask": MASK.astype(float), "constant": np.full((H, W), 0.5),
            "random": rng.random((H, W)), "inverted": (~MASK).astype(float)}


ONES = np.ones((1, H, W, 3))


# --------------------------------------------------------------------------- pointing game


def test_mask_map_scores_pointing_game_one():
    assert pointing_game(MASK.astype(float)[None], MASK[None]).tolist() == [True]
    assert pointing_game(MASK.astype(float)[None], np.array([BOX])).tolist() == [True]
    assert pointing_game((~MASK).astype(float)[None], MASK[None]).tolist() == [False]


# --------------------------------------------------------------------------- deletion / insertion


def test_deletion_of_the_object_mask_has_the_exact_area():
    # 8 pixels per step; the 32 object pixels go in the first 4 steps: the curve falls linearly
    # from 1 to 0 over the first 12.5 % of the pixels, so the area is 0.125 / 2
    curve = deletion(MASK[None].astype(float), ONES, object_score, targets=0, steps=32, softmax=False)
    assert curve.scores.shape == (1, 33) and curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert curve.scores[0, 0] == pytest.approx(1.0) and curve.scores[0, 4] == pytest.approx(0.0)
    assert curve.auc[0] == pytest.approx(AREA / 2)


def test_constant_map_on_a_uniform_score_gives_the_diagonal():
    for fn, expected_first in ((deletion, 1.0), (insertion, 0.0)):
        curve = fn(np.full((1, H, W), 0.3), ONES, total_score, targets=0, steps=16, softmax=False,
                   baseline="black")
        assert np.allclose(curve.scores[0], np.abs(expected_first - curve.fractions))
        assert curve.auc[0] == pytest.approx(0.5)


def test_the_mask_map_is_the_best_of_a_set():
    maps = candidate_maps()
    images = np.repeat(ONES, len(maps), axis=0)
    stack = np.stack(list(maps.values()))
    dele = deletion(stack, images, object_score, targets=0, softmax=False).auc
    ins = insertion(stack, images, object_score, targets=0, softmax=False, baseline="black").auc
    names = list(maps)
    assert names[int(np.argmin(dele))] == "mask" and names[int(np.argmax(ins))] == "mask"
    assert names[int(np.argmax(dele))] == "inverted" and names[int(np.argmin(ins))] == "inverted"
    # a random order is in between: on average the object goes at the pace of the image
    assert dele[0] < dele[2] < dele[3]


def test_ties_are_broken_by_the_seed_not_by_raster_order():
    a = deletion(np.zeros((1, H, W)), ONES, object_score, targets=0, softmax=False, seed=1)
    b = deletion(np.zeros((1, H, W)), ONES, object_score, targets=0, softmax=False, seed=1)
    c = deletion(np.zeros((1, H, W)), ONES, object_score, targets=0, softmax=False, seed=2)
    assert np.array_equal(a.scores, b.scores) and not np.array_equal(a.scores, c.scores)
    # raster order would keep the object (rows 6-9) untouched for the first 37 % of the steps
    assert a.scores[0, 8] < 0.9


def test_softmax_turns_scores_into_probabilities():
    curve = deletion(MASK[None].astype(float), ONES, object_score, targets=0, steps=8)
    e = np.exp(1.0)
    assert curve.scores[0, 0] == pytest.approx(e / (e + 1))
    assert curve.scores[0, -1] == pytest.approx(0.5)


def test_channels_first_images_and_blur_baseline():
    rng = np.random.default_rng(0)
    nhwc = rng.random((2, H, W, 3))
    maps = rng.random((2, H, W))
    last = insertion(maps, nhwc, object_score, targets=0, softmax=False)
    first = insertion(maps, nhwc.transpose(0, 3, 1, 2),
                      lambda x: object_score(np.asarray(x).transpose(0, 2, 3, 1)), targets=0, softmax=False)
    assert np.allclose(last.scores, first.scores)
    # the blurred start is not the image, the end is
    assert not np.isclose(last.scores[0, 0], object_score(nhwc[:1])[0, 0])
    assert np.isclose(last.scores[0, -1], object_score(nhwc[:1])[0, 0])


def test_top_class_is_the_default_target():
    def score(images):
        s = object_score(images)
        return np.stack([s[:, 1], s[:, 0]], axis=1)  # class 1 is the object now

    curve = deletion(MASK[None].astype(float), ONES, score, softmax=False)
    assert curve.targets.tolist() == [1] and curve.scores[0, 0] == pytest.approx(1.0)


# --------------------------------------------------------------------------- ROAD


def test_linear_imputation_continues_a_linear_ramp_exactly():
    yy, xx = np.mgrid[0:H, 0:W]
    image = np.stack([0.02 * xx + 0.05 * yy, 1 - 0.03 * xx, 0.01 * yy], axis=-1)
    filled = noisy_linear_imputation(image, MASK, noise=0)
    assert np.allclose(filled, image, atol=1e-10)
    noisy = noisy_linear_imputation(image, MASK, noise=0.1, rng=np.random.default_rng(0))
    assert np.array_equal(noisy[~MASK], image[~MASK]) and not np.allclose(noisy[MASK], image[MASK])


def test_imputation_hides_the_shape_of_the_hole():
    # a bright object on black: removing exactly the object leaves black, not an object-shaped patch
    image = np.where(MASK[..., None], 1.0, 0.0) * np.ones((1, 1, 3))
    filled = noisy_linear_imputation(image, MASK, noise=0)
    assert np.abs(filled).max() < 1e-12


def test_road_of_the_mask_map_and_of_a_constant_map():
    image = np.where(MASK[..., None], 1.0, 0.0) * np.ones((1, 1, 3))
    images = np.stack([image, image])
    maps = np.stack([MASK.astype(float), np.full((H, W), 0.5)])
    res = road(maps, images, object_score, targets=0, fractions=(0.25, 0.5, 0.75), noise=0,
               softmax=False)
    assert res.morf.shape == (2, 3)
    assert np.allclose(res.morf[0], 0) and np.allclose(res.lerf[0], 1) and res.gap[0] == pytest.approx(1)
    # a flat map is a random order: the object is partly removed on both sides, no clear gap
    assert abs(res.gap[1]) < 0.3 and res.gap[0] > res.gap[1] + 0.6


def test_road_needs_fractions_inside_zero_one():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        road(MASK[None].astype(float), ONES, object_score, fractions=(0.5, 1.0))
    with pytest.raises(ValueError, match="every pixel is removed"):
        noisy_linear_imputation(ONES[0], np.ones((H, W), dtype=bool))


# --------------------------------------------------------------------------- Average Drop / Increase


def test_confidence_change_known_values():
    ones = confidence_change(np.ones((1, H, W)), ONES, object_score, targets=0, softmax=False)
    assert ones.average_drop == 0 and ones.increase_in_confidence == 0
    half = confidence_change(np.full((1, H, W), 0.5), ONES, object_score, targets=0, softmax=False)
    assert half.average_drop == pytest.approx(50.0) and half.increase_in_confidence == 0
    mask = confidence_change(MASK[None].astype(float), ONES, object_score, targets=0, softmax=False)
    outside = confidence_change((~MASK)[None].astype(float), ONES, object_score, targets=0, softmax=False)
    assert mask.average_drop == 0 and outside.average_drop == pytest.approx(100.0)
    # with softmax the masked-out image's probability falls from e/(e+1) to 1/2
    soft = confidence_change((~MASK)[None].astype(float), ONES, object_score, targets=0)
    assert soft.average_drop == pytest.approx(100 * (1 - 0.5 / (np.e / (np.e + 1))))
    def darkness(images):  # a class that likes dark images: masking raises its score
        return 1 - total_score(images)

    brighter = confidence_change(np.full((1, H, W), 0.5), 0.8 * ONES, darkness, targets=0, softmax=False)
    assert brighter.increase_in_confidence == 100.0


def test_confidence_change_needs_maps_in_unit_range():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confidence_change(np.full((1, H, W), 2.0), ONES, object_score)


# --------------------------------------------------------------------------- input errors


@pytest.mark.parametrize("fn", [deletion, insertion, road, confidence_change])
def test_maps_and_images_of_different_sizes(fn):
    with pytest.raises(ValueError, match="differ in size"):
        fn(np.ones((1, 8, 8)), ONES, object_score)
    with pytest.raises(ValueError, match="2 maps for 1 images"):
        fn(np.ones((2, H, W)) * 0.5, ONES, object_score)


def test_bad_scores_and_baselines_are_named():
    with pytest.raises(ValueError, match=r"\(N, classes\)"):
        deletion(MASK[None].astype(float), ONES, lambda x: np.ones(len(x)))
    with pytest.raises(ValueError, match="unknown baseline"):
        deletion(MASK[None].astype(float), ONES, object_score, baseline="grey")
    with pytest.raises(ValueError, match="NaN"):
        deletion(np.full((1, H, W), np.nan), ONES, object_score)
    with pytest.raises(ValueError, match="uint8"):
        deletion(MASK[None].astype(float), ONES.astype(np.uint8), object_score)


# --------------------------------------------------------------------------- comparisons


def test_rank_correlation_and_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((2, 12, 12))
    assert np.allclose(rank_correlation(a, a ** 3), 1)          # same order, other values
    assert np.allclose(rank_correlation(a, 1 - a), -1)
    flat = np.zeros((2, 12, 12))
    assert rank_correlation(a, flat).tolist() == [0, 0] and rank_correlation(flat, flat).tolist() == [1, 1]
    assert np.allclose(map_ssim(a, a), 1) and (map_ssim(a, rng.random((2, 12, 12))) < 0.5).all()
    with pytest.raises(ValueError, match="7×7"):
        map_ssim(np.ones((1, 4, 4)), np.ones((1, 4, 4)))


# --------------------------------------------------------------------------- sanity check


def _torch_cnn():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))


def test_sanity_check_torch_curve_copy_and_seed():
    torch = pytest.importorskip("torch")
    model = _torch_cnn()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    curve = sanity_check(model, x, method="gradcam", layer="4", seed=0)
    # one step per layer with weights, from the top: Linear, Conv, BatchNorm, Conv
    assert curve.layers == ["original", "7", "3", "1", "0"]
    assert curve.spearman.shape == (5, 3) and curve.ssim.shape == (5, 3)
    assert curve.maps.shape == (5, 3, 16, 16)
    assert np.allclose(curve.spearman[0], 1) and np.allclose(curve.ssim[0], 1)
    assert np.isfinite(curve.spearman).all() and np.isfinite(curve.ssim).all()
    # the maps of a fully random network are not those of the original one
    assert curve.spearman[-1].mean() < 0.8
    # the user's model is untouched (weights, BatchNorm statistics, mode)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    again = sanity_check(model, x, method="gradcam", layer="4", seed=0)
    other = sanity_check(model, x, method="gradcam", layer="4", seed=1)
    assert np.array_equal(curve.spearman, again.spearman)
    assert not np.array_equal(curve.spearman[1:], other.spearman[1:])
    grouped = sanity_check(model, x, method="gradcam", layer="4", steps=2)
    assert grouped.groups == [["7"], ["3", "1", "0"]] and grouped.layers == ["original", "7", "0"]
    assert grouped.spearman.shape == (3, 3)


def test_sanity_check_keras_leaves_the_model_alone():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(name="relu1")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(h)
    model = keras.Model(inputs, outputs)
    weights = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype("float32")
    curve = sanity_check(model, x, method="gradcam", layer="conv2", seed=0)
    assert curve.layers == ["original", "predictions", "conv2", "bn1", "conv1"]
    assert np.allclose(curve.spearman[0], 1) and curve.spearman.shape == (5, 2)
    assert curve.spearman[-1].mean() < 0.8
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    again = sanity_check(model, x, method="gradcam", layer="conv2", seed=0)
    assert np.array_equal(curve.spearman, again.spearman)


def test_sanity_check_on_a_model_without_weights():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    empty = nn.Sequential(nn.ReLU(), nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(ValueError, match="no weights to randomise"):
        sanity_check(empty, torch.rand(1, 3, 8, 8), layer="1")
    with pytest.raises(TypeError, match="name or dotted path"):
        sanity_check(_torch_cnn(), torch.rand(1, 3, 8, 8), layer=nn.Identity())
    with pytest.raises(TypeError, match="keras.Model or a torch.nn.Module"):
        sanity_check(object(), np.zeros((1, 8, 8, 3)))


def test_model_scores_reads_logits_for_both_frameworks():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(_torch_cnn(), torch.nn.Softmax(dim=1))
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    score = metrics.model_scores(model, batch_size=2)       # batches of 2, 2 and 1
    with torch.no_grad():
        expected = model[0].eval()(x).numpy()
    got = score(x.numpy())
    assert got.shape == (5, 4) and got.dtype == np.float32
    assert np.allclose(got, expected, atol=1e-5)


def test_model_scores_keras_bypasses_a_final_softmax():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    dense = keras.layers.Dense(3, activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(h))
    x = np.random.default_rng(1).random((3, 8, 8, 3)).astype("float32")
    features = keras.Model(inputs, h).predict(x, verbose=0)
    kernel, bias = dense.get_weights()
    expected = features @ kernel + bias
    got = metrics.model_scores(model, batch_size=2)(x)
    assert got.shape == (3, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - model.predict(x, verbose=0)).max() > 0.05     # not the probabilities
