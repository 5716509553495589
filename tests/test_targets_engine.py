"""Targets through the engine, in Keras 3 and PyTorch: known answers worked out by hand on models
small enough to read, the same maps in both frameworks on the same weights, every method with every
target (or the error that says why not), and the errors for a target that does not fit.

The models (twins: the same weights in both frameworks, images 8 × 8 × 1, values >= 0):

- ``segmenter``: feature ``x`` (a 1 × 1 convolution with weight 1, then ReLU: the target layer)
  → a 3 × 3 box filter of ones: the logit of pixel p is the sum of x over p's 3 × 3 neighbourhood.
  So for a region R, ``S = Σ_{p ∈ R} z(p)`` has the input gradient ``count_R(q)``: how many pixels
  of R have q in their neighbourhood (R convolved with a 3 × 3 of ones).
- ``detector``: the same feature, then two boxes with constant coordinates and one class logit
  each: ``z_b = Σ_{p ∈ R_b} x(p)``; output (N, 2, 4 + 1).
- ``classifier``: a 3 × 3 convolution with 2 channels + ReLU (the target layer), global average
  pooling, one dense layer with ``outputs`` units and a final sigmoid (bypassed by the engine).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from gradcam_helpers import BinaryLogit, BoxScore, ClassLogit, LabelLogit, SegmentationScore, explain  # noqa: E402

SIZE = 8
BOXES = np.array([[0, 0, 4, 4], [4, 2, 8, 8]], np.float32)       # the detector's two boxes
REGIONS = np.zeros((2, SIZE, SIZE), bool)
REGIONS[0, 0:3, 1:4] = True                                       # box 0's logit reads these pixels
REGIONS[1, 5:8, 4:6] = True                                       # box 1's


def images(n: int = 3, seed: int = 0) -> np.ndarray:
    """(n, 8, 8, 1) float32 >= 0 with a bright square, so the predicted masks are known."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, SIZE, SIZE, 1), np.float32)
    x[:, 2:5, 2:6, 0] = rng.uniform(0.5, 1.0, (n, 3, 4))
    x[:, 6, 6, 0] = rng.uniform(0.2, 0.4, n)
    return x


def nchw(x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def box_filter_count(region: np.ndarray) -> np.ndarray:
    """Σ_{p ∈ R} 1[q in the 3 × 3 neighbourhood of p], for every q (zero padding)."""
    region = region.astype(np.float64)
    padded = np.pad(region, [(0, 0)] * (region.ndim - 2) + [(1, 1), (1, 1)])
    return sum(padded[..., dy:dy + SIZE, dx:dx + SIZE] for dy in range(3) for dx in range(3))


# ------------------------------------------------------------------------------------------------
# the twin models


def keras_segmenter():
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="feat")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    out = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="head")(x)
    model = keras.Model(inp, out)
    model.get_layer("feat").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("head").set_weights([np.ones((3, 3, 1, 1), np.float32)])
    return model


def torch_segmenter():
    nn = torch.nn
    feat, head = nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        feat.weight.fill_(1.0)
        head.weight.fill_(1.0)
    return nn.Sequential(feat, nn.ReLU(), head).eval()


def _detector_dense() -> tuple[np.ndarray, np.ndarray]:
    kernel = np.zeros((SIZE * SIZE, 10), np.float32)
    bias = np.zeros(10, np.float32)
    for b in range(2):
        kernel[:, b * 5 + 4] = REGIONS[b].ravel()
        bias[b * 5:b * 5 + 4] = BOXES[b]
    return kernel, bias


def keras_detector():
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="feat")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(10, name="dense")(x)
    out = keras.layers.Reshape((2, 5))(x)
    model = keras.Model(inp, out)
    model.get_layer("feat").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("dense").set_weights(list(_detector_dense()))
    return model


def torch_detector():
    nn = torch.nn
    feat, dense = nn.Conv2d(1, 1, 1, bias=False), nn.Linear(SIZE * SIZE, 10)
    kernel, bias = _detector_dense()
    with torch.no_grad():
        feat.weight.fill_(1.0)
        dense.weight.copy_(torch.from_numpy(kernel.T))
        dense.bias.copy_(torch.from_numpy(bias))
    return nn.Sequential(feat, nn.ReLU(), nn.Flatten(), dense, nn.Unflatten(1, (2, 5))).eval()


def keras_classifier(outputs: int):
    keras.utils.set_random_seed(outputs)
    inp = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inp)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(outputs, activation="sigmoid", name="fc")(x)
    return keras.Model(inp, out)


def torch_classifier(km):
    nn = torch.nn
    kernel, bias = km.get_layer("conv").get_weights()
    conv = nn.Conv2d(1, 2, 3, padding=1)
    dense_kernel, dense_bias = km.get_layer("fc").get_weights()
    fc = nn.Linear(2, dense_kernel.shape[1])
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(bias))
        fc.weight.copy_(torch.from_numpy(dense_kernel.T))
        fc.bias.copy_(torch.from_numpy(dense_bias))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc, nn.Sigmoid()).eval()


@pytest.fixture(scope="module")
def twins():
    k1, k2 = keras_classifier(1), keras_classifier(3)
    return {"segmenter": (keras_segmenter(), torch_segmenter(), "relu", "1"),
            "detector": (keras_detector(), torch_detector(), "relu", "1"),
            "binary": (k1, torch_classifier(k1), "relu", "1"),
            "multilabel": (k2, torch_classifier(k2), "relu", "1")}


def both(twins, name, x, method="gradcam", target=None, **options):
    """The same explanation in Keras and in PyTorch: (keras result, torch result)."""
    km, tm, k_layer, t_layer = twins[name]
    k = explain(km, x, method, layer=k_layer, target=target, **options)
    t = explain(tm, nchw(x), method, layer=t_layer, target=target, **options)
    return k, t


# ------------------------------------------------------------------------------------------------
# segmentation: the region's score depends on a known input region


def test_segmentation_saliency_is_the_region_convolved_with_the_box_filter(twins):
    x = images()
    predicted = box_filter_count(x[..., 0] > 0) > 0            # z(p) > 0 where a bright pixel is near
    for res in both(twins, "segmenter", x, "saliency", SegmentationScore(0)):
        np.testing.assert_array_equal(res.extras["target"]["mask"], predicted)
        for i in range(len(x)):
            # dS/dx(q) = count(q) · ReLU'(x(q)): zero where the pixel is 0 (ReLU's gradient at 0)
            lit = x[i, ..., 0] > 0
            np.testing.assert_allclose(res.raw[i, ..., 0], box_filter_count(predicted[i]) * lit,
                                       atol=1e-5)
        # the explained scalar: the sum of the logits over the predicted mask
        # and the scalar: Σ_{p ∈ mask} z(p) = Σ_q x(q) · count(q)
        expected = [(x[i, ..., 0] * box_filter_count(predicted[i])).sum() for i in range(len(x))]
        np.testing.assert_allclose(res.scores, expected, rtol=1e-5)


def test_segmentation_region_known_answers_for_gradcam_and_hirescam(twins):
    x = images()
    region = np.zeros((SIZE, SIZE), bool)
    region[3, 3:5] = True
    count = box_filter_count(region)                           # dS/dx = dS/dA (A = ReLU(x) = x)
    target = SegmentationScore(0, mask=region)
    k_hires, t_hires = both(twins, "segmenter", x, "hirescam", target)
    k_grad, t_grad = both(twins, "segmenter", x, "gradcam", target)
    for i in range(len(x)):
        a = x[i, ..., 0]
        np.testing.assert_allclose(k_hires.raw[i], count * a, rtol=1e-5, atol=1e-6)
        # Grad-CAM: the channel weight is the spatial mean of the gradient, applied everywhere
        np.testing.assert_allclose(k_grad.raw[i], count.mean() * a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t_hires.raw, k_hires.raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t_grad.raw, k_grad.raw, rtol=1e-5, atol=1e-6)
    # HiResCAM stays where S depends on the input (R and its 3 × 3 neighbourhood); Grad-CAM spreads
    assert np.all(k_hires.raw[:, count == 0] == 0)
    assert np.any(k_grad.raw[:, count == 0] > 0)


def test_segmentation_mean_and_score_cam_known_answers(twins):
    x = images()
    region = np.zeros((SIZE, SIZE), bool)
    region[2:4, 2:4] = True
    count = box_filter_count(region)
    s_sum, _ = both(twins, "segmenter", x, "saliency", SegmentationScore(0, mask=region))
    s_mean, _ = both(twins, "segmenter", x, "saliency", SegmentationScore(0, mask=region, reduce="mean"))
    np.testing.assert_allclose(s_mean.raw, s_sum.raw / region.sum(), rtol=1e-5)
    np.testing.assert_allclose(s_mean.scores, s_sum.scores / region.sum(), rtol=1e-5)
    # Score-CAM: one channel, its mask m = (A − min A) / (max A − min A); the channel weight is the
    # target's value on x · m (the "paper" convention uses the target's own value for a target)
    k, t = both(twins, "segmenter", x, "scorecam", SegmentationScore(0, mask=region))
    for i in range(len(x)):
        a = x[i, ..., 0]
        m = (a - a.min()) / (a.max() - a.min())
        weight = (count * a * m).sum()
        np.testing.assert_allclose(k.raw[i], weight * a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t.raw, k.raw, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# detection: a box's score depends on a known input region


def test_box_saliency_is_the_boxs_region_and_iou_scales_it(twins):
    x = images()
    for res in both(twins, "detector", x, "saliency", BoxScore(box=1, index=0)):
        assert list(res.extras["target"]["box"]) == [1, 1, 1]
        # dz_1/dx = the box's region times ReLU'(x): zero where the pixel is 0
        np.testing.assert_array_equal(res.raw[..., 0], REGIONS[1] * (x[..., 0] > 0))
        np.testing.assert_allclose(res.scores, (x[..., 0] * REGIONS[1]).sum(axis=(1, 2)), rtol=1e-5)
    # a reference that overlaps box 0 only: box 0 is chosen; × IoU scales the gradient by the IoU
    reference = np.array([1, 0, 4, 4], np.float32)             # IoU with box 0: 12 / 16
    for res in both(twins, "detector", x, "saliency", BoxScore(reference=reference, iou=True)):
        assert list(res.extras["target"]["box"]) == [0, 0, 0]
        np.testing.assert_allclose(res.extras["target"]["iou"], 0.75)
        np.testing.assert_allclose(res.raw[..., 0], 0.75 * REGIONS[0] * (x[..., 0] > 0), rtol=1e-5)
        np.testing.assert_allclose(res.scores, 0.75 * (x[..., 0] * REGIONS[0]).sum(axis=(1, 2)),
                                   rtol=1e-5)


def test_box_gradcam_hirescam_and_integrated_gradients_known_answers(twins):
    x = images()
    region = REGIONS[0].astype(np.float64)
    k_hires, t_hires = both(twins, "detector", x, "hirescam", BoxScore(box=0))
    k_grad, t_grad = both(twins, "detector", x, "gradcam", BoxScore(box=0))
    np.testing.assert_allclose(k_hires.raw, region * x[..., 0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(k_grad.raw, region.mean() * x[..., 0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t_hires.raw, k_hires.raw, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t_grad.raw, k_grad.raw, rtol=1e-5, atol=1e-7)
    # the score is linear in x >= 0, so Integrated Gradients (black baseline) is exact: x · region
    for res in both(twins, "detector", x, "integrated_gradients", BoxScore(box=0)):
        np.testing.assert_allclose(res.raw[..., 0], region * x[..., 0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res.extras["delta"], 0, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# binary and multi-label classifiers


def test_binary_logit_gradcam_probability_and_cam_known_answers(twins):
    km = twins["binary"][0]
    x = images(seed=1)
    kernel = km.get_layer("fc").get_weights()[0][:, 0]                  # (2,)
    features = keras.Model(km.inputs, km.get_layer("relu").output).predict(x, verbose=0)
    signed = features @ kernel / (SIZE * SIZE)                          # Grad-CAM: α_k = w_k / (h w)
    pos, t_pos = both(twins, "binary", x, "gradcam", BinaryLogit())
    neg, t_neg = both(twins, "binary", x, "gradcam", BinaryLogit(positive=False))
    prob, _ = both(twins, "binary", x, "gradcam", BinaryLogit(probability=True))
    np.testing.assert_allclose(pos.raw, np.maximum(signed, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(neg.raw, np.maximum(-signed, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t_pos.raw, pos.raw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t_neg.raw, neg.raw, rtol=1e-4, atol=1e-6)
    z = pos.scores.astype(np.float64)
    np.testing.assert_allclose(neg.scores, -z, rtol=1e-5)
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(prob.scores, p, rtol=1e-5)
    np.testing.assert_allclose(prob.raw, (p * (1 - p))[:, None, None] * pos.raw, rtol=1e-3, atol=1e-7)
    assert list(pos.targets) == [1, 1, 1] and list(neg.targets) == [0, 0, 0]
    # CAM: the dense layer's column, times −1 for the other class (no 1 / (h w))
    cam_neg, t_cam_neg = both(twins, "binary", x, "cam", BinaryLogit(positive=False))
    np.testing.assert_allclose(cam_neg.raw, np.maximum(-features @ kernel, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t_cam_neg.raw, cam_neg.raw, rtol=1e-4, atol=1e-6)
    # the default path on a one-unit model explains z too
    default, _ = both(twins, "binary", x, "gradcam")
    np.testing.assert_allclose(default.raw, pos.raw, rtol=1e-5, atol=1e-7)


def test_label_logit_is_the_class_path_and_takes_the_probability(twins):
    x = images(seed=2)
    for label in range(3):
        k, t = both(twins, "multilabel", x, "gradcam", LabelLogit(label))
        k_int, t_int = both(twins, "multilabel", x, "gradcam", label)
        np.testing.assert_allclose(k.raw, k_int.raw, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(t.raw, t_int.raw, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(t.raw, k.raw, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(k.scores, k_int.logits[:, label], rtol=1e-5)
    top, _ = both(twins, "multilabel", x, "gradcam", LabelLogit())
    np.testing.assert_array_equal(top.targets, np.argmax(top.logits, axis=1))
    class_logit, _ = both(twins, "multilabel", x, "gradcam", ClassLogit([2, 0, 1]))
    np.testing.assert_array_equal(class_logit.targets, [2, 0, 1])
    # integrated gradients of the probability: completeness in probability space
    k, t = both(twins, "multilabel", x, "integrated_gradients", LabelLogit(1, probability=True))
    for res in (k, t):
        total = res.raw.astype(np.float64).sum(axis=(1, 2, 3))
        np.testing.assert_allclose(total, res.scores - res.extras["baseline_scores"], atol=2e-3)
        assert np.all((res.scores > 0) & (res.scores < 1))
    np.testing.assert_allclose(t.raw, k.raw, rtol=1e-3, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# every method with every target


def _method_names() -> list[str]:
    from gradcam_helpers.engine.registry import method_names

    return method_names()


CASES = {"segmenter": SegmentationScore(0), "detector": BoxScore(index=0),
         "binary": BinaryLogit(positive=False), "multilabel": LabelLogit(2)}


@pytest.mark.parametrize("method", _method_names())
@pytest.mark.parametrize("model", sorted(CASES))
def test_every_method_with_every_target_or_a_clear_error(twins, model, method):
    target = CASES[model]
    x = images(2, seed=3)
    km, tm, k_layer, t_layer = twins[model]
    refusal = {"eigencam": "does not depend on the target", "attention": "does not depend on the "
               "target", "rollout": "does not depend on the target"}
    if model in ("segmenter", "detector"):
        refusal["cam"] = r"CAM cannot explain .*method='gradcam'"
    if method in refusal:
        with pytest.raises(ValueError, match=refusal[method]):
            explain(km, x, method, layer=k_layer, target=target)
        with pytest.raises(ValueError, match=refusal[method]):
            explain(tm, nchw(x), method, layer=t_layer, target=target)
        return
    k, t = both(twins, model, x, method, target)
    assert np.all(np.isfinite(k.maps)) and np.all(np.isfinite(t.maps))
    np.testing.assert_allclose(t.maps, k.maps, atol=2e-4)
    np.testing.assert_allclose(t.scores, k.scores, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# targets that do not fit the model's output: the same advice in both frameworks


@pytest.mark.parametrize("model, target, advice", [
    ("segmenter", BinaryLogit(), "SegmentationScore"),
    ("segmenter", BoxScore(), "SegmentationScore"),
    ("detector", SegmentationScore(0), "BoxScore"),
    ("binary", SegmentationScore(0), "BinaryLogit"),
    ("multilabel", BinaryLogit(), "LabelLogit"),
    ("binary", LabelLogit(1), r"BinaryLogit\(positive=False\)"),
    ("segmenter", SegmentationScore(0, mask=np.ones((4, 4), bool)), r"mask\[::k, ::k\]"),
])
def test_a_target_that_does_not_fit_names_the_fix_in_both_frameworks(twins, model, target, advice):
    km, tm, k_layer, t_layer = twins[model]
    x = images(2)
    with pytest.raises(ValueError, match=advice):
        explain(km, x, layer=k_layer, target=target)
    with pytest.raises(ValueError, match=advice):
        explain(tm, nchw(x), layer=t_layer, target=target)


def test_the_target_is_fixed_from_the_original_images_and_batches_do_not_matter(twins):
    """A batch split into chunks gives the same maps and masks; the choices are per image."""
    km, tm, k_layer, t_layer = twins["segmenter"]
    x = images(5, seed=4)
    from gradcam_helpers import Explainer

    whole = Explainer(km, k_layer, batch_size=32)(x, "gradcam", SegmentationScore(0))
    split = Explainer(km, k_layer, batch_size=2)(x, "gradcam", SegmentationScore(0))
    np.testing.assert_allclose(split.raw, whole.raw, rtol=1e-6)
    np.testing.assert_array_equal(split.extras["target"]["mask"], whole.extras["target"]["mask"])
    t_split = Explainer(tm, t_layer, batch_size=2)(nchw(x), "gradcam", SegmentationScore(0))
    np.testing.assert_allclose(t_split.raw, whole.raw, rtol=1e-5, atol=1e-6)


def test_values_given_per_image_follow_the_batches(twins):
    """A region, a reference box or a class given one per image is split with the batch: five
    images in batches of two give what one batch gives, and each image gets its own value."""
    from gradcam_helpers import Explainer

    x = images(5, seed=5)
    regions = np.zeros((5, SIZE, SIZE), bool)
    for i in range(5):
        regions[i, i:i + 2, 1:7] = True                    # a different region in every image
    references = np.where(np.arange(5)[:, None] % 2 == 0, BOXES[0], BOXES[1])
    cases = [("segmenter", SegmentationScore(0, mask=regions)),
             ("detector", BoxScore(reference=references)),
             ("multilabel", LabelLogit([0, 1, 2, 1, 0]))]
    for name, target in cases:
        km, tm, k_layer, t_layer = twins[name]
        whole = Explainer(km, k_layer, batch_size=32)(x, "gradcam", target)
        split = Explainer(km, k_layer, batch_size=2)(x, "gradcam", target)
        np.testing.assert_allclose(split.raw, whole.raw, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(split.scores, whole.scores, rtol=1e-6, err_msg=name)
        t_split = Explainer(tm, t_layer, batch_size=2)(nchw(x), "gradcam", target)
        np.testing.assert_allclose(t_split.scores, whole.scores, rtol=1e-5, atol=1e-6, err_msg=name)
    # each image's own region: the summed logit over region i, worked out by hand
    km = twins["segmenter"][0]
    out = np.asarray(km.predict(x, verbose=0))[..., 0]
    split = Explainer(km, "relu", batch_size=2)(x, "gradcam", SegmentationScore(0, mask=regions))
    np.testing.assert_allclose(split.scores, (out * regions).sum(axis=(1, 2)), rtol=1e-5)
    # the reference chosen per image: box 0 for even images, box 1 for odd ones
    split = Explainer(twins["detector"][0], "relu", batch_size=2)(x, "gradcam",
                                                                  BoxScore(reference=references))
    np.testing.assert_array_equal(split.extras["target"]["box"], [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="4 entries, one per image, but there are 5 images"):
        Explainer(km, "relu", batch_size=2)(x, "gradcam", SegmentationScore(0, mask=regions[:4]))


# ------------------------------------------------------------------------------------------------
# Keras on every backend: a bound target runs eagerly (its choices are constants), on each backend

_BACKEND_CODE = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
import test_targets_engine as t
from gradcam_helpers import BinaryLogit, BoxScore, SegmentationScore, explain

x = t.images()
region = np.zeros((t.SIZE, t.SIZE), bool)
region[3, 3:5] = True
results["hires"] = explain(t.keras_segmenter(), x, "hirescam", layer="relu",
                           target=SegmentationScore(0, mask=region)).raw
detector = t.keras_detector()
for method in ("saliency", "integrated_gradients", "scorecam"):
    res = explain(detector, x, method, layer="relu",
                  target=BoxScore(reference=np.array([1, 0, 4, 4], np.float32), iou=True))
    results["box/" + method] = res.scores
classifier = t.keras_classifier(1)   # random weights differ between backends: the answer is computed here
results["cam_other"] = explain(classifier, x, "cam", layer="relu", target=BinaryLogit(positive=False)).raw
features = t.keras.Model(classifier.inputs, classifier.get_layer("relu").output).predict(x, verbose=0)
results["signed"] = features @ classifier.get_layer("fc").get_weights()[0][:, 0]
"""


@pytest.mark.slow
def test_targets_give_the_known_answers_on_every_keras_backend():
    import importlib.util
    from pathlib import Path

    from gradcam_helpers.course.backend_processes import BACKENDS, run_on_backends

    available = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    runs = run_on_backends(_BACKEND_CODE.format(tests=str(Path(__file__).parent)), available)
    x = images()
    region = np.zeros((SIZE, SIZE), bool)
    region[3, 3:5] = True
    box_score = 0.75 * (x[..., 0] * REGIONS[0]).sum(axis=(1, 2))
    for backend, got in runs.items():
        np.testing.assert_allclose(got["hires"], box_filter_count(region) * x[..., 0], rtol=1e-5,
                                   atol=1e-6, err_msg=backend)
        for method in ("saliency", "integrated_gradients", "scorecam"):
            np.testing.assert_allclose(got["box/" + method], box_score, rtol=1e-5, err_msg=backend)
        # CAM of the other class: ReLU(−Σ_k w_k A_k); the sum is not zero everywhere (where it is
        # negative the map is not empty, where positive it must be)
        assert np.any(got["signed"] != 0), backend
        np.testing.assert_allclose(got["cam_other"], np.maximum(-got["signed"], 0), rtol=1e-4,
                                   atol=1e-6, err_msg=backend)
