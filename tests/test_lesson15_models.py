"""Lesson 15's models: the small X-ray classifier and U-Net (PyTorch) and the digit detector
(Keras), their training targets worked out by hand, and the cache round trip on tiny data."""
from __future__ import annotations

import numpy as np
import pytest

from gradcam_helpers.course.models.keras_detector import STRIDE, detector_targets, top_detections

# ----------------------------------------------------------------------------------- X-ray models


def test_side_labels_split_at_the_middle():
    from gradcam_helpers.course.models.torch_xray_small import side_labels

    masks = np.zeros((4, 4, 6), bool)
    masks[1, 2, 1] = True          # left half only
    masks[2, 0, 4] = True          # right half only
    masks[3, 1, 2] = masks[3, 1, 3] = True   # both: columns 2 (left) and 3 (right) of 6
    np.testing.assert_array_equal(side_labels(masks), [[0, 0], [1, 0], [0, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        side_labels(np.zeros((4, 4)))


def test_xray_models_shapes():
    torch = pytest.importorskip("torch")
    from gradcam_helpers.course.models.torch_xray_small import LungUNet, XrayCNN

    x = torch.zeros(2, 1, 32, 32)
    assert XrayCNN(outputs=2, width=4)(x).shape == (2, 2)
    assert LungUNet(width=4)(x).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="divisible by 4"):
        LungUNet(width=4)(torch.zeros(1, 1, 30, 32))


def test_sigmoid_training_is_cached_and_deterministic(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from gradcam_helpers.course.models.torch_xray_small import predict_logits, train_sigmoid_model

    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 1, 16, 16)).astype(np.float32)
    masks = (x > 0.5).astype(np.float32)
    cfg = {"width": 4, "epochs": 2, "batch_size": 4}
    first = train_sigmoid_model("unet", x, masks, cfg, progress=False)
    again = train_sigmoid_model("unet", x, masks, cfg, progress=False)
    assert not first.from_cache and again.from_cache
    assert first.cache_path == again.cache_path and first.cache_path.parent == tmp_path
    np.testing.assert_array_equal(predict_logits(first, x), predict_logits(again, x))
    fresh = train_sigmoid_model("unet", x, masks, cfg, cache=False, progress=False)
    np.testing.assert_array_equal(predict_logits(first, x), predict_logits(fresh, x))
    # other data: another file
    other = train_sigmoid_model("unet", x[::-1].copy(), masks[::-1].copy(), cfg, progress=False)
    assert other.cache_path != first.cache_path


def test_sigmoid_training_checks_its_inputs():
    pytest.importorskip("torch")
    from gradcam_helpers.course.models.torch_xray_small import train_sigmoid_model

    x = np.zeros((4, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"labels\[:, None\]"):
        train_sigmoid_model("classifier", x, np.zeros(4), cache=False)
    with pytest.raises(ValueError, match=r"masks\[:, None\]"):
        train_sigmoid_model("unet", x, np.zeros((4, 8, 8)), cache=False)
    with pytest.raises(ValueError, match="0 or 1"):
        train_sigmoid_model("classifier", x, np.full((4, 1), 0.5), cache=False)
    with pytest.raises(KeyError, match="unknown training settings"):
        train_sigmoid_model("classifier", x, np.zeros((4, 1)), {"epoch": 3}, cache=False)
    with pytest.raises(ValueError, match="kind"):
        train_sigmoid_model("detector", x, np.zeros((4, 1)), cache=False)


# ----------------------------------------------------------------------------------- detector


def test_detector_targets_mark_the_cells_around_each_centre_inside_the_box():
    boxes = np.array([[[0, 0, 8, 8], [13, 21, 19, 27]]])   # centres (4, 4) and (16, 24)
    labels = np.array([[3, 7]])
    t = detector_targets(boxes, labels, (32, 32))
    assert t.shape == (1, 8 * 8, 4 + 10 + 1)
    # cell centres are at 2, 6, 10, … px. First box: centre cell (1, 1); of its 3 × 3 neighbours
    # those with centres 2 or 6 (inside [0, 8)) in both directions: rows 0–1, columns 0–1.
    first = {r * 8 + c for r in (0, 1) for c in (0, 1)}
    # second box: centre cell (row 6, column 4); centres inside x ∈ [13, 19): 14, 18 (columns 3,
    # 4); inside y ∈ [21, 27): 22, 26 (rows 5, 6)
    second = {r * 8 + c for r in (5, 6) for c in (3, 4)}
    assert set(np.flatnonzero(t[0, :, -1])) == first | second
    for cell in first:
        np.testing.assert_array_equal(t[0, cell, :4], [0, 0, 8, 8])
        assert t[0, cell, 4 + 3] == 1 and t[0, cell, 4:14].sum() == 1
    for cell in second:
        assert t[0, cell, 4 + 7] == 1
    assert t[0, :, 4:14].sum() == 8          # every other cell: all classes 0
    # radius 0: the centre cells only
    t0 = detector_targets(boxes, labels, (32, 32), radius=0)
    assert set(np.flatnonzero(t0[0, :, -1])) == {1 * 8 + 1, 6 * 8 + 4}


def test_top_detections_suppress_overlapping_boxes():
    out = np.full((1, 4, 4 + 2), -5.0)
    out[0, 0] = [0, 0, 10, 10, 3.0, -5]     # best, class 0
    out[0, 1] = [1, 1, 11, 11, 2.0, -5]     # overlaps box 0 (IoU 81/119 > 0.3): suppressed
    out[0, 2] = [20, 20, 30, 30, -5, 1.0]   # class 1, elsewhere: kept
    out[0, 3, :4] = [40, 40, 50, 50]        # every logit -5: below the threshold
    found = top_detections(out, score_threshold=0.5, iou_threshold=0.3)[0]
    assert [(d[1], d[3]) for d in found] == [(0, 0), (1, 2)]
    assert found[0][2] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_box_decoder_places_boxes_around_the_cell_centres():
    keras = pytest.importorskip("keras")
    from gradcam_helpers.course.models.keras_detector import _serializables

    decoder = _serializables()["BoxDecoder"](STRIDE)
    head = np.zeros((1, 2, 3, 4 + 1), np.float32)
    head[0, 1, 2, :4] = [0, 0, 0, np.log(np.e - 1)]   # softplus → log 2 … and 1 for the last
    head[0, 1, 2, 4] = 7.0
    out = keras.ops.convert_to_numpy(decoder(head))
    assert out.shape == (1, 6, 5)
    d = np.log(2.0) * 2 * STRIDE                       # softplus(0) · 2 · stride
    # cell (0, 0): centre (2, 2)
    np.testing.assert_allclose(out[0, 0, :4], [2 - d, 2 - d, 2 + d, 2 + d], rtol=1e-5)
    # cell (1, 2) is box 1 · 3 + 2 = 5: centre (10, 6); its bottom distance is softplus(log(e−1)) = 1
    np.testing.assert_allclose(out[0, 5], [10 - d, 6 - d, 10 + d, 6 + 2 * STRIDE, 7.0], rtol=1e-5)


def test_detector_training_is_cached(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    from gradcam_helpers.course.mnist import load_mnist
    from gradcam_helpers.course.models.keras_detector import get_digit_detector, predict_boxes

    monkeypatch.setenv("GRADCAM_CACHE", str(tmp_path))
    data = load_mnist()
    small = dict(epochs=1, one_digit=64, two_digit=32, canvas=32, batch_size=32, verbose=False)
    first = get_digit_detector(data, **small)
    again = get_digit_detector(data, **small)
    assert not first.from_cache and again.from_cache
    x = np.zeros((2, 64, 64, 1), np.float32)
    x[0, 10:30, 20:30] = 1.0
    a, b = predict_boxes(first.model, x), predict_boxes(again.model, x)
    assert a.shape == (2, 16 * 16, 14)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 4"):
        get_digit_detector(data, canvas=30, verbose=False)


def test_recompute_batchnorm_stores_the_statistics_of_the_images():
    keras = pytest.importorskip("keras")
    from gradcam_helpers.course.models.keras_detector import recompute_batchnorm

    inputs = keras.Input((6, 6, 1))
    conv = keras.layers.Conv2D(3, 3, padding="same", use_bias=False)
    norm = keras.layers.BatchNormalization(momentum=0.99)
    model = keras.Model(inputs, norm(conv(inputs)))
    images = np.random.default_rng(0).uniform(0, 1, (20, 6, 6, 1)).astype(np.float32)
    features = keras.ops.convert_to_numpy(conv(images))
    recompute_batchnorm(model, images)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm.moving_mean),
                               features.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(norm.moving_variance),
                               features.var(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    assert norm.momentum == 0.99
