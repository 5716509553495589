"""Targets, the framework-free half: what each target explains, worked out by hand on small
outputs, and the errors for a target that does not fit the model's output."""
from __future__ import annotations

import numpy as np
import pytest

from gradcam_helpers.engine.targets import (
    NUMPY_OPS,
    BinaryLogit,
    BoxScore,
    ClassLogit,
    LabelLogit,
    SegmentationScore,
    _box_times_iou,
    _iou_columns,
    as_target,
    box_iou,
    check_method,
)

# ----------------------------------------------------------------------------------- box IoU


def test_box_iou_known_values():
    # (0,0)-(2,2) and (1,1)-(3,3): intersection 1, union 4 + 4 - 1 = 7
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert box_iou([0, 0, 2, 2], [2, 0, 4, 2]) == 0.0          # touching edges: no overlap
    assert box_iou([0, 0, 4, 2], [1, 0, 2, 2]) == pytest.approx(2 / 8)   # one inside the other
    assert box_iou([1, 1, 1, 1], [2, 2, 2, 2]) == 0.0          # two empty boxes: 0, not NaN


def test_box_iou_broadcasts():
    boxes = np.array([[[0, 0, 2, 2], [1, 1, 3, 3]], [[0, 0, 1, 1], [0, 0, 2, 2]]], float)
    ref = np.array([[0, 0, 2, 2], [0, 0, 2, 2]], float)
    iou = box_iou(boxes, ref[:, None, :])
    assert iou.shape == (2, 2)
    np.testing.assert_allclose(iou, [[1, 1 / 7], [1 / 4, 1]])


def test_iou_written_with_the_three_ops_equals_box_iou_also_at_ties():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 10, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)
    b = np.sort(rng.uniform(0, 10, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)
    a = a[:, [0, 2, 1, 3]]
    b = b[:, [0, 2, 1, 3]]
    b[:5] = a[:5]                      # ties: max(a, b) with a == b
    b[5:10, 0] = a[5:10, 0]
    ours = _iou_columns(NUMPY_OPS, list(a.T), list(b.T))
    np.testing.assert_allclose(ours, box_iou(a, b), atol=1e-12)


# ----------------------------------------------------------------------------------- classifiers


def test_binary_logit_is_the_logit_and_the_other_class_its_negative():
    z = np.array([[2.0], [-1.0], [0.5]])
    pos = BinaryLogit().bind(z)
    neg = BinaryLogit(positive=False).bind(z)
    np.testing.assert_allclose(pos.evaluate(z), [2.0, -1.0, 0.5])
    np.testing.assert_allclose(neg.evaluate(z), [-2.0, 1.0, -0.5])
    np.testing.assert_array_equal(pos.classes, [1, 1, 1])
    np.testing.assert_array_equal(neg.classes, [0, 0, 0])
    # σ(−z) = 1 − σ(z): the other class's probability
    p = BinaryLogit(probability=True).bind(z).evaluate(z)
    q = BinaryLogit(positive=False, probability=True).bind(z).evaluate(z)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z[:, 0])))
    np.testing.assert_allclose(p + q, 1.0)


def test_binary_logit_takes_a_flat_output_too():
    z = np.array([3.0, -2.0])
    np.testing.assert_allclose(BinaryLogit(positive=False).bind(z).evaluate(z), [-3.0, 2.0])


def test_binary_logit_on_several_outputs_names_the_targets_that_fit():
    with pytest.raises(ValueError, match=r"one output unit.*\(N, 3\).*LabelLogit"):
        BinaryLogit().bind(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="SegmentationScore"):
        BinaryLogit().bind(np.zeros((2, 1, 4, 4)))


def test_label_logit_picks_one_label_per_image():
    z = np.array([[0.5, 3.0, -1.0], [2.0, -4.0, 1.0]])
    top = LabelLogit().bind(z)
    np.testing.assert_array_equal(top.classes, [1, 0])
    np.testing.assert_allclose(top.evaluate(z), [3.0, 2.0])
    np.testing.assert_allclose(LabelLogit(2).bind(z).evaluate(z), [-1.0, 1.0])
    np.testing.assert_allclose(LabelLogit([2, 1]).bind(z).evaluate(z), [-1.0, -4.0])
    np.testing.assert_allclose(LabelLogit(1, probability=True).bind(z).evaluate(z),
                               1 / (1 + np.exp([-3.0, 4.0])))


def test_label_out_of_range_and_wrong_rank():
    with pytest.raises(ValueError, match=r"label 3 is out of range.*3 labels.*0 … 2"):
        LabelLogit(3).bind(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"got 3 values of label for 2 images"):
        LabelLogit([0, 1, 2]).bind(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"multi-label.*\(N, 5, 2\).*BoxScore"):
        LabelLogit(0).bind(np.zeros((1, 5, 2)))


def test_class_logit_on_a_one_unit_model_points_to_binary_logit():
    with pytest.raises(ValueError, match=r"BinaryLogit\(positive=False\)"):
        ClassLogit(1).bind(np.zeros((2, 1)))
    z = np.array([[1.0, 5.0], [4.0, 0.0]])
    np.testing.assert_allclose(ClassLogit().bind(z).evaluate(z), [5.0, 4.0])


# ----------------------------------------------------------------------------------- segmentation


def _segmentation_output() -> np.ndarray:
    """(1, 2, 3, 3) torch layout: class 1 wins in the top-left 2×2 block."""
    out = np.zeros((1, 2, 3, 3))
    out[0, 0] = [[0, 0, 5], [0, 0, 5], [5, 5, 5]]
    out[0, 1] = [[1, 2, 0], [3, 4, 0], [0, 0, 0]]
    return out


def test_segmentation_sums_the_class_logit_over_the_predicted_mask():
    out = _segmentation_output()
    bound = SegmentationScore(1).bind(out, channels_axis=1)
    np.testing.assert_array_equal(bound.info["mask"][0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    assert bound.evaluate(out)[0] == pytest.approx(1 + 2 + 3 + 4)
    mean = SegmentationScore(1, reduce="mean").bind(out, channels_axis=1)
    assert mean.evaluate(out)[0] == pytest.approx(10 / 4)
    # the same output in the Keras layout gives the same scalar and mask
    keras_out = out.transpose(0, 2, 3, 1)
    k = SegmentationScore(1).bind(keras_out, channels_axis=-1)
    assert k.evaluate(keras_out)[0] == pytest.approx(10)
    np.testing.assert_array_equal(k.info["mask"], bound.info["mask"])


def test_segmentation_with_a_region_and_with_one_channel():
    out = _segmentation_output()
    region = np.zeros((3, 3), bool)
    region[1, :] = True                        # the middle row: 3 + 4 + 0
    assert SegmentationScore(1, mask=region).bind(out, 1).evaluate(out)[0] == pytest.approx(7)
    one = out[:, 1:]                           # one channel: the mask is logit > 0
    bound = SegmentationScore(0).bind(one, 1)
    assert bound.info["mask"].sum() == 4 and bound.evaluate(one)[0] == pytest.approx(10)


def test_segmentation_fixes_the_mask_from_the_original_output():
    out = _segmentation_output()
    bound = SegmentationScore(1).bind(out, 1)
    changed = out.copy()
    changed[0, 1] = 10.0                       # now every pixel would be predicted class 1
    assert bound.evaluate(changed)[0] == pytest.approx(40)   # still the 4 original pixels


def test_segmentation_errors_name_the_fix():
    out = _segmentation_output()
    with pytest.raises(ValueError, match=r"shape \(6, 6\).*3 × 3.*mask\[::k, ::k\]"):
        SegmentationScore(1, mask=np.ones((6, 6), bool)).bind(out, 1)
    with pytest.raises(ValueError, match=r"no pixel in image 0.*mask="):
        SegmentationScore(1, mask=np.zeros((3, 3), bool)).bind(out, 1)
    with pytest.raises(ValueError, match=r"predicted mask of class 0 has no pixel"):
        SegmentationScore(0).bind(-np.ones((1, 1, 3, 3)), 1)
    with pytest.raises(ValueError, match=r"class 2 is out of range"):
        SegmentationScore(2).bind(out, 1)
    with pytest.raises(ValueError, match=r"per-pixel output.*\(N, 10\).*target=class index"):
        SegmentationScore(0).bind(np.zeros((2, 10)), 1)
    with pytest.raises(ValueError, match="reduce"):
        SegmentationScore(0, reduce="max")


# ----------------------------------------------------------------------------------- detection


def _detector_output() -> np.ndarray:
    """(1, 3, 4 + 2): three boxes, two classes."""
    return np.array([[[0, 0, 10, 10, 1.0, -2.0],
                      [20, 20, 30, 30, -1.0, 4.0],
                      [2, 2, 12, 12, 0.5, 0.0]]])


def test_box_score_chooses_the_best_box_or_the_one_asked_for():
    out = _detector_output()
    best = BoxScore().bind(out)
    assert best.info["box"][0] == 1 and best.classes[0] == 1 and best.evaluate(out)[0] == 4.0
    cls0 = BoxScore(index=0).bind(out)
    assert cls0.info["box"][0] == 0 and cls0.evaluate(out)[0] == 1.0
    chosen = BoxScore(box=2).bind(out)
    assert chosen.classes[0] == 0 and chosen.evaluate(out)[0] == 0.5


def test_box_score_with_a_reference_takes_the_best_box_that_claims_it():
    out = _detector_output()
    # boxes 0 and 2 overlap the reference (2, 2, 12, 11) by IoU 64 / (100 + 90 - 64) and 90 / 100:
    # both claim it, and box 0 has the higher logit (1.0 against 0.5)
    bound = BoxScore(reference=[2, 2, 12, 11]).bind(out)
    assert bound.info["box"][0] == 0
    assert bound.info["iou"][0] == pytest.approx(64 / 126)
    # with min_iou = 0.7 only box 2 claims it
    bound = BoxScore(reference=[2, 2, 12, 11], min_iou=0.7).bind(out)
    assert bound.info["box"][0] == 2
    assert bound.info["iou"][0] == pytest.approx(90 / 100)
    # no box reaches min_iou: the one that overlaps most (box 2: 9 / (144 + 100 - 9); boxes 0 and 1
    # share one pixel with it)
    bound = BoxScore(reference=[9, 9, 21, 21]).bind(out)
    assert bound.info["box"][0] == 2 and bound.info["iou"][0] == pytest.approx(9 / 235)
    times = BoxScore(reference=[2, 2, 12, 11], iou=True, index=1).bind(out)
    assert times.evaluate(out)[0] == pytest.approx(0.0 * 0.9)
    times = BoxScore(reference=[0, 0, 10, 5], iou=True).bind(out)   # box 0, class 0: 1.0 × 0.5
    assert times.info["box"][0] == 0
    assert times.evaluate(out)[0] == pytest.approx(1.0 * 0.5)
    # the product is what _box_times_iou computes from the weighted sums
    v = times.weights.reshape(1, 5, -1) @ out.reshape(1, -1, 1)
    assert _box_times_iou(NUMPY_OPS, v[..., 0], times.extra[0])[0] == pytest.approx(0.5)


def test_box_score_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"reference=\(x0, y0, x1, y1\)"):
        BoxScore(iou=True)
    with pytest.raises(ValueError, match=r"fixed set of boxes.*\(N, 10\)"):
        BoxScore().bind(np.zeros((2, 10)))
    with pytest.raises(ValueError, match=r"box 3 is out of range.*3 boxes"):
        BoxScore(box=3).bind(_detector_output())
    with pytest.raises(ValueError, match=r"class 2 is out of range.*2 classes"):
        BoxScore(index=2).bind(_detector_output())
    with pytest.raises(ValueError, match=r"x1 > x0"):
        BoxScore(reference=[5, 5, 5, 9]).bind(_detector_output())
    with pytest.raises(ValueError, match=r"one box \(4,\) or one per image"):
        BoxScore(reference=np.zeros((3, 4))).bind(_detector_output())


# ----------------------------------------------------------------------------------- plumbing


def test_virtual_scores_apply_each_images_choices_to_every_row():
    """Column j of the virtual scores is image j's target on each row (its box, class and
    reference); the diagonal on the images themselves is each image's scalar."""
    out = np.array([[[0, 0, 2, 2, 1.0]], [[0, 0, 2, 2, 3.0]]])
    bound = BoxScore(reference=[[0, 0, 2, 2], [0, 0, 1, 2]], iou=True).bind(out)
    rows = out[[1, 1, 0]]
    # image 0's reference overlaps the box fully (IoU 1), image 1's half of it (IoU 2 / 4)
    np.testing.assert_allclose(bound.virtual_scores(NUMPY_OPS, rows),
                               [[3.0, 1.5], [3.0, 1.5], [1.0, 0.5]])
    np.testing.assert_allclose(np.diag(bound.virtual_scores(NUMPY_OPS, out)), bound.evaluate(out))
    np.testing.assert_allclose(bound.evaluate(out), [1.0, 1.5])


def test_as_target_and_method_checks():
    assert as_target(None) is None and as_target(3) is None and as_target([1, 2]) is None
    assert as_target(ClassLogit(2)) is None
    seg = SegmentationScore(0)
    assert as_target(seg) is seg
    with pytest.raises(TypeError, match="BoxScore"):
        as_target("cat")
    with pytest.raises(ValueError, match="does not depend on the target"):
        check_method(seg, "eigencam", "activations")
    with pytest.raises(ValueError, match="CAM cannot explain SegmentationScore.*gradcam"):
        check_method(seg, "cam", "cam_weights")
    with pytest.raises(ValueError, match="Drop probability=True"):
        check_method(BinaryLogit(probability=True), "cam", "cam_weights")
    check_method(BinaryLogit(), "cam", "cam_weights")
    check_method(BoxScore(), "scorecam", "scores")
