"""Shortcut diagnosis on constructed maps: each pattern fires on maps that show it and stays
quiet on maps that do not."""
import numpy as np
import pytest

from gradcam_helpers.evaluation.diagnose import PATTERNS, corner_mask, diagnose_maps

H = W = 64


def blob(cy, cx, sigma=4.0, shape=(H, W)):
    yy, xx = np.mgrid[:shape[0], :shape[1]] + 0.5
    m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return m / m.max()


def lungs():
    """Two rectangular 'lungs' as the ROI."""
    roi = np.zeros((H, W), bool)
    roi[12:52, 8:28] = True
    roi[12:52, 36:56] = True
    return roi


def test_corner_mask_covers_four_squares():
    m = corner_mask((H, W), 0.25)
    assert m.sum() == 4 * 16 * 16
    assert m[0, 0] and m[0, -1] and m[-1, 0] and m[-1, -1] and not m[H // 2, W // 2]
    with pytest.raises(ValueError):
        corner_mask((H, W), 0.7)


def test_corner_flag():
    corner = blob(5, 5, 3)          # a tag in the top-left corner
    centre = blob(32, 32, 6)
    d = diagnose_maps(np.stack([corner, centre]))
    assert d.corner_energy[0] > 0.8 and d.corner_energy[1] < 0.05
    assert d.flags["corner"].tolist() == [True, False]


def test_corner_flag_from_the_peak_of_a_blurred_map():
    # a wide blob centred on a tag near the corner: most of its mass lies outside the corner
    # square, but its maximum is inside it
    blurred = blob(10, 10, 12)
    d = diagnose_maps(blurred[None])
    assert d.corner_energy[0] < 0.3 and d.peak_in_corner[0]
    assert d.flags["corner"][0]
    # the same blob in the middle of the image is not flagged
    d = diagnose_maps(blob(32, 32, 12)[None])
    assert not d.peak_in_corner[0] and not d.flags["corner"][0]
    # an empty map has no peak
    assert not diagnose_maps(np.zeros((1, H, W))).peak_in_corner[0]


def test_the_peak_of_a_near_flat_map_does_not_flag_a_corner():
    # a flat map whose maximum happens to sit in a corner: the peak is barely above the rest
    nearly_flat = np.full((H, W), 0.8)
    nearly_flat[2, 2] = 1.0
    d = diagnose_maps(nearly_flat[None])
    assert d.peak_in_corner[0] and d.flags["uniform"][0]
    assert d.corner_energy[0] < 0.3 and not d.flags["corner"][0]
    # with the uniform threshold above its flatness the same map counts as a corner peak
    d = diagnose_maps(nearly_flat[None], uniform_threshold=0.9)
    assert d.flatness[0] < 0.9 and d.flags["corner"][0]
    # a flat map with real corner energy is still flagged
    heavy = np.full((H, W), 0.43)
    heavy[corner_mask((H, W), 0.2)] = 1.0
    d = diagnose_maps(heavy[None])
    assert d.flags["uniform"][0] and d.corner_energy[0] >= 0.3 and d.flags["corner"][0]


def test_uniform_flag_and_empty_map():
    flat = np.full((H, W), 0.7)
    noisy_flat = 0.8 + 0.2 * np.random.default_rng(0).random((H, W))
    focused = blob(32, 20, 5)
    empty = np.zeros((H, W))
    d = diagnose_maps(np.stack([flat, noisy_flat, focused, empty]))
    assert d.flatness[0] == pytest.approx(1.0)
    assert not d.peak_in_corner[0]   # a flat map has no peak anywhere in particular
    assert d.flatness[1] > 0.85 and d.flatness[2] < 0.1
    assert d.flags["uniform"].tolist() == [True, True, False, True]
    assert d.empty.tolist() == [False, False, False, True]
    # an empty map is never counted as corner / outside / one-sided, and has no NaN
    assert not d.flags["corner"][3] and not d.flags["one_side"][3]
    assert np.isfinite(d.corner_energy).all() and np.isfinite(d.side_balance).all()


def test_outside_roi_flag():
    roi = lungs()
    inside = blob(30, 18, 4)      # in the left lung
    between = blob(30, 32, 3)     # on the mediastinum
    below = blob(60, 32, 4)       # under the lungs
    d = diagnose_maps(np.stack([inside, between, below]), roi=roi)
    assert d.outside_roi[0] < 0.2 and d.outside_roi[1] > 0.6 and d.outside_roi[2] > 0.9
    assert d.flags["outside_roi"].tolist() == [False, True, True]
    # without an ROI the measure is NaN and never flagged
    d = diagnose_maps(np.stack([inside, between]))
    assert np.isnan(d.outside_roi).all() and not d.flags["outside_roi"].any()
    # per-image ROI masks work as well as one shared mask
    d2 = diagnose_maps(np.stack([inside, below]), roi=np.stack([roi, roi]))
    assert d2.flags["outside_roi"].tolist() == [False, True]


def test_one_side_flag_and_sign():
    left = blob(32, 14, 4)
    right = blob(32, 50, 4)
    both = left + right
    d = diagnose_maps(np.stack([left, right, both]))
    assert d.side_balance[0] < -0.95 and d.side_balance[1] > 0.95
    assert abs(d.side_balance[2]) < 1e-6
    assert d.flags["one_side"].tolist() == [True, True, False]
    # a custom midline moves the split
    d = diagnose_maps(left[None], midline=8)
    assert d.side_balance[0] > 0.5


def test_summary_flags_a_shortcut_set_but_not_a_clean_set():
    rng = np.random.default_rng(1)
    roi = lungs()
    # clean: one blob per map, in a random lung, at a random height — one-sided per map, but
    # not the same side on average
    clean = np.stack([blob(rng.uniform(18, 46), rng.choice([18, 46]) + rng.uniform(-4, 4), 4)
                      for _ in range(40)])
    s = diagnose_maps(clean, roi=roi).summary()
    assert s["fraction_flagged"]["one_side"] > 0.9           # each map is one-sided...
    assert abs(s["side_bias"]) < 0.3                          # ...but not on the same side
    assert not s["suspicious"] and s["patterns"] == []
    assert "見つかりません" in s["verdict"]

    # shortcut: most maps sit on a tag in the top-left corner, some on a lesion
    shortcut = np.stack([blob(4 + rng.uniform(0, 2), 6 + rng.uniform(0, 2), 3) for _ in range(32)]
                        + list(clean[:8]))
    s = diagnose_maps(shortcut, roi=roi).summary()
    assert s["found"]["corner"] and s["found"]["outside_roi"] and s["found"]["one_side"]
    assert s["side_bias"] < -0.5
    assert s["suspicious"] and s["patterns"][0] == "corner"
    assert "隅" in s["verdict"]
    assert set(s["fraction_flagged"]) == set(PATTERNS)


def test_summary_finds_uniform_maps():
    maps = np.stack([np.full((H, W), 0.5)] * 5 + [blob(30, 18, 4)] * 5)
    s = diagnose_maps(maps).summary()
    assert s["fraction_flagged"]["uniform"] == pytest.approx(0.5)
    assert s["patterns"] == ["uniform"]


def test_thresholds_are_parameters():
    m = blob(16, 16, 8)   # peak outside the corner squares, some mass inside them
    loose = diagnose_maps(m, corner_threshold=0.05)
    strict = diagnose_maps(m, corner_threshold=0.95)
    assert loose.flags["corner"][0] and not strict.flags["corner"][0]
    assert loose.thresholds["corner_threshold"] == 0.05


def test_scale_does_not_matter():
    maps = np.stack([blob(5, 5, 3), blob(32, 50, 4)])
    a, b = diagnose_maps(maps), diagnose_maps(maps * 37.0)
    for name in ("corner_energy", "flatness", "side_balance"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("bad, match", [
    (-np.ones((2, H, W)), "non-negative"),
    (np.full((2, H, W), np.nan), "NaN"),
    (np.ones((2, 3, H, W)), r"\(N, H, W\)"),
])
def test_bad_maps_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        diagnose_maps(bad)


def test_bad_roi_and_thresholds_raise():
    with pytest.raises(ValueError, match="differ in shape"):
        diagnose_maps(np.ones((2, H, W)), roi=np.ones((2, 32, 32), bool))
    with pytest.raises(ValueError, match="boolean"):
        diagnose_maps(np.ones((1, H, W)), roi=np.full((H, W), 0.5))
    with pytest.raises(ValueError, match="corner_threshold"):
        diagnose_maps(np.ones((1, H, W)), corner_threshold=2)
