"""Complexity metrics with answers worked out by hand: the Gini index (sparseness) and the entropy
(complexity) of small maps."""
import math

import numpy as np
import pytest

from gradcam_helpers.evaluation.complexity import complexity, sparseness


def one_hot(h=4, w=5, at=(2, 3)):
    m = np.zeros((h, w))
    m[at] = 0.7
    return m


def test_gini_of_a_one_hot_map_is_one_minus_one_over_n():
    # sorted: 19 zeros then 0.7; only i = n contributes: (2n − n − 1) 0.7 / (n 0.7) = (n − 1) / n
    assert sparseness(one_hot())[0] == pytest.approx(1 - 1 / 20)
    assert sparseness(one_hot(1, 2, (0, 1)))[0] == pytest.approx(0.5)


def test_gini_of_a_flat_map_is_zero_whatever_its_level():
    assert sparseness(np.full((2, 3, 3), 0.4)).tolist() == pytest.approx([0.0, 0.0])
    assert sparseness(np.zeros((3, 3)))[0] == 0.0  # no mass: scored as flat, not NaN


def test_gini_of_a_hand_computed_map():
    # values 1, 2, 3, 4: sum_i (2i − 5) a_i = −3 − 2 + 3 + 12 = 10, n sum a = 40  →  0.25
    assert sparseness(np.array([[1.0, 2.0], [3.0, 4.0]]))[0] == pytest.approx(0.25)
    # 0, 0, 1, 3: (−3)0 + (−1)0 + (1)1 + (3)3 = 10, n sum a = 16  →  0.625
    assert sparseness(np.array([[0.0, 3.0], [1.0, 0.0]]))[0] == pytest.approx(0.625)


def test_gini_equals_the_mean_absolute_difference_over_twice_the_mean():
    rng = np.random.default_rng(0)
    maps = rng.random((4, 6, 7)) ** 3
    for m, g in zip(maps, sparseness(maps)):
        a = m.ravel()
        expected = np.abs(a[:, None] - a[None, :]).sum() / (2 * a.size * a.sum())
        assert g == pytest.approx(expected)


def test_gini_uses_the_absolute_values_and_ignores_scale():
    m = np.array([[1.0, -2.0], [3.0, -4.0]])
    assert sparseness(m)[0] == pytest.approx(0.25)
    assert sparseness(10 * m)[0] == pytest.approx(0.25)


def test_sparser_maps_score_higher():
    flat, blob, spike = np.ones((8, 8)), np.zeros((8, 8)), one_hot(8, 8, (4, 4))
    blob[2:6, 2:6] = 1.0                       # 16 of 64 pixels: G = 1 − 16/64 = 0.75
    g = sparseness(np.stack([flat, blob, spike]))
    assert g[1] == pytest.approx(0.75)
    assert g[0] < g[1] < g[2]


def test_entropy_of_one_hot_flat_and_hand_computed_maps():
    assert complexity(one_hot())[0] == pytest.approx(0.0)
    assert complexity(np.full((4, 5), 0.3))[0] == pytest.approx(math.log(20))
    assert complexity(np.zeros((4, 5)))[0] == pytest.approx(math.log(20))  # no mass: flat, no NaN
    # shares 1/4, 1/4, 1/2 (and a zero): H = 2 · (1/4) ln 4 + (1/2) ln 2 = 1.5 ln 2
    assert complexity(np.array([[1.0, 1.0], [2.0, 0.0]]))[0] == pytest.approx(1.5 * math.log(2))
    # a blob of k equal pixels: ln k
    blob = np.zeros((8, 8))
    blob[2:6, 2:6] = 5.0
    assert complexity(blob)[0] == pytest.approx(math.log(16))


def test_a_batch_is_scored_map_by_map():
    maps = np.stack([one_hot(), np.full((4, 5), 2.0)])
    assert sparseness(maps).shape == complexity(maps).shape == (2,)
    assert sparseness(maps) == pytest.approx([0.95, 0.0])
    assert complexity(maps) == pytest.approx([0.0, math.log(20)])


@pytest.mark.parametrize("fn", [sparseness, complexity])
def test_bad_maps_are_named(fn):
    with pytest.raises(ValueError, match="NaN"):
        fn(np.array([[0.1, np.nan], [0.2, 0.3]]))
    with pytest.raises(ValueError, match=r"\(N, H, W\).*channels"):
        fn(np.ones((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="at least one"):
        fn(np.ones((0, 4, 4)))
