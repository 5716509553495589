"""Answer checkers for lesson 09 (comparing the methods): deletion images, Average Drop, rank
correlation and the Gini index of a map.

Each checker calls the learner's function on small cases whose answers are computed here
independently, and raises ``AssertionError`` with a hint in Japanese when an answer is wrong.
Only NumPy (and SciPy's ``rankdata`` for the reference ranks) is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _ok(name: str) -> None:
    print(f"{name}: 正解です！ (all checks passed)")


# ------------------------------------------------------------------------------ deletion images


def _deletion_reference(image: np.ndarray, saliency: np.ndarray, steps: int) -> np.ndarray:
    h, w = saliency.shape
    order = np.argsort(-saliency.ravel(), kind="stable")
    out = []
    for s in range(steps + 1):
        count = int(np.ceil(s * h * w / steps))
        keep = np.ones(h * w, dtype=bool)
        keep[order[:count]] = False
        out.append(image * keep.reshape(h, w, 1))
    return np.stack(out)


def check_deletion_images(deletion_images: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> None:
    """Check ``deletion_images(image, saliency, steps) -> (steps + 1, H, W, C)``: at step s the
    ``ceil(s H W / steps)`` most salient pixels are set to 0 (all channels); step 0 is the image."""
    rng = np.random.default_rng(9)
    cases = [(rng.uniform(0.1, 1, size=(4, 5, 3)), rng.permutation(20).reshape(4, 5) / 20.0, 4),
             (rng.uniform(0.1, 1, size=(6, 6, 1)), rng.random((6, 6)), 5),
             (rng.uniform(0.1, 1, size=(3, 7, 2)), rng.random((3, 7)), 21)]
    for image, saliency, steps in cases:
        image_in, sal_in = image.copy(), saliency.copy()
        out = np.asarray(deletion_images(image_in, sal_in, steps), dtype=np.float64)
        assert np.array_equal(image_in, image) and np.array_equal(sal_in, saliency), (
            "入力配列を書き換えないでください (do not modify the inputs)。画像はコピーしてから消します。")
        h, w, c = image.shape
        assert out.shape == (steps + 1, h, w, c), (
            f"形が {out.shape} です。期待値は {(steps + 1, h, w, c)}: 0 段目 (元の画像) から "
            f"{steps} 段目 (全部消した画像) まで {steps + 1} 枚です。")
        expected = _deletion_reference(image, saliency, steps)
        if np.allclose(out, expected):
            continue
        assert np.allclose(out[0], image), "0 段目は何も消していない元の画像です。"
        assert np.allclose(out[-1], 0), "最後の段ではすべての画素が 0 になります。"
        backwards = _deletion_reference(image, -saliency, steps)
        if np.allclose(out, backwards):
            raise AssertionError("重要度の低い画素から消しています。削除 (deletion) は重要度の**高い**"
                                 "画素から消します: np.argsort(-saliency.ravel()) の順です。")
        removed = (out == 0).all(axis=-1).reshape(steps + 1, -1).sum(axis=1)
        wanted = np.ceil(np.arange(steps + 1) * h * w / steps).astype(int)
        if not np.array_equal(removed, wanted):
            raise AssertionError(f"各段で消した画素の数が {removed.tolist()} です。期待値は "
                                 f"{wanted.tolist()} (= ceil(s × H × W / steps))。")
        raise AssertionError("消した画素の数は合っていますが、場所が違います。saliency の大きい順に消してください"
                             " (全チャンネルを 0 に)。")
    return _ok("check_deletion_images")


# ------------------------------------------------------------------------------ Average Drop


def check_average_drop(average_drop: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """Check ``average_drop(original, explained) -> float``: 100 · mean(max(0, Y − O) / Y)."""
    cases = [
        (np.array([0.8, 0.5, 0.9, 0.4]), np.array([0.4, 0.6, 0.9, 0.1])),  # one increase, one equal
        (np.array([0.2]), np.array([0.05])),
        (np.array([0.5, 0.5]), np.array([0.9, 0.7])),                       # only increases: 0
    ]
    for original, explained in cases:
        got = float(average_drop(original.copy(), explained.copy()))
        expected = 100 * np.mean(np.maximum(original - explained, 0) / original)
        if np.isclose(got, expected):
            continue
        if np.isclose(got, expected / 100):
            raise AssertionError("割合 (0〜1) になっています。Average Drop はパーセントで表します (100 倍)。")
        if np.isclose(got, 100 * np.mean((original - explained) / original)):
            raise AssertionError("スコアが上がった画像で負の値を足しています。上がった画像の落ち幅は 0 とします"
                                 " (np.maximum(Y − O, 0))。")
        if np.isclose(got, 100 * np.mean(np.maximum(original - explained, 0))):
            raise AssertionError("落ち幅を元のスコア Y で割っていません。Average Drop は相対的な落ち幅の平均です。")
        raise AssertionError(f"Y = {original.tolist()}, O = {explained.tolist()} で {got:.4g} が返りました。"
                             f"期待値は {expected:.4g} です。")
    return _ok("check_average_drop")


# ------------------------------------------------------------------------------ rank correlation


def check_rank_corr(rank_corr: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """Check ``rank_corr(a, b) -> float``: Spearman's rank correlation of two maps (ties get the
    average rank); 0 when a map is constant."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(11)
    a = rng.random((6, 6))
    ties = np.round(rng.random((6, 6)) * 3) / 3        # many equal values, as after a ReLU
    cases = [(a, a ** 4), (a, 1 - a), (a, rng.random((6, 6))), (ties, a + 0.3 * ties), (ties, ties[::-1])]
    for p, q in cases:
        got = float(rank_corr(p.copy(), q.copy()))
        expected = np.corrcoef(rankdata(p.ravel()), rankdata(q.ravel()))[0, 1]
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, np.corrcoef(p.ravel(), q.ravel())[0, 1], atol=1e-9):
            raise AssertionError("値そのものの相関 (Pearson) になっています。順位 (rankdata) に置き換えてから"
                                 "相関を取ります: a ** 4 と a の順位相関は 1 です。")
        ordinal = np.corrcoef(np.argsort(np.argsort(p.ravel())), np.argsort(np.argsort(q.ravel())))[0, 1]
        if np.isclose(got, ordinal, atol=1e-9):
            raise AssertionError("同じ値 (同順位) に別々の順位を付けています。同順位には順位の平均を付けます "
                                 "(scipy.stats.rankdata の既定)。")
        raise AssertionError(f"順位相関が {got:.4f} です。期待値は {expected:.4f}。")
    flat = np.zeros((6, 6))
    got = rank_corr(flat, a)
    assert np.isfinite(got) and got == 0, (
        f"一定のマップとの順位相関が {got} です。順位がつけられないので 0 を返してください (NaN にしない)。")
    return _ok("check_rank_corr")


# ------------------------------------------------------------------------------ Gini index


def _gini_reference(values: np.ndarray) -> float:
    """Gini index as the mean absolute difference of all pairs over twice the mean (0 if no mass)."""
    a = np.abs(np.ravel(values)).astype(np.float64)
    total = a.sum()
    if total == 0:
        return 0.0
    return float(np.abs(a[:, None] - a[None, :]).sum() / (2 * a.size * total))


def check_gini(gini: Callable[[np.ndarray], float]) -> None:
    """Check ``gini(saliency) -> float``: the Gini index of one map's absolute values,
    sum_i (2 i − n − 1) a_(i) / (n sum_i a_(i)) with the values sorted ascending; 0 for a map
    that is 0 everywhere."""
    rng = np.random.default_rng(17)
    one_hot = np.zeros((4, 5))
    one_hot[1, 2] = 0.6
    cases = [one_hot, np.full((3, 3), 0.25), np.array([[1.0, 2.0], [3.0, 4.0]]),
             rng.random((6, 7)) ** 3, rng.normal(size=(5, 5))]       # the last one has negative values
    for m in cases:
        given = m.copy()
        got = float(gini(given))
        assert np.array_equal(given, m), (
            "入力のマップを書き換えないでください (do not modify the input)。並べ替えはコピーに対して行います。")
        expected = _gini_reference(m)
        if np.isclose(got, expected, atol=1e-9):
            continue
        a = np.abs(m.ravel())
        n = a.size
        weights = 2 * np.arange(1, n + 1) - n - 1
        if np.isclose(got, -expected, atol=1e-9):
            raise AssertionError("符号が逆です。値を**昇順** (小さい順) に並べてから (2i − n − 1) を掛けます。")
        if np.isclose(got, float(weights @ a / (n * a.sum())), atol=1e-9):
            raise AssertionError("値を並べ替えていません。np.sort で小さい順に並べてから重み (2i − n − 1) を掛けます。")
        if np.isclose(got, float(weights @ np.sort(a) / a.sum()), atol=1e-9):
            raise AssertionError("n で割っていません。Gini 係数は sum_i (2i − n − 1) a_(i) / (n × sum a) です。")
        signed = np.sort(m.ravel())
        if (m < 0).any() and signed.sum() != 0 and np.isclose(
                got, float(weights @ signed / (n * signed.sum())), atol=1e-9):
            raise AssertionError("負の値をそのまま使っています。マップの絶対値 (重さ) で計算します: np.abs。")
        raise AssertionError(f"Gini 係数が {got:.4f} です。期待値は {expected:.4f}。1 画素だけ 0 でないマップは "
                             f"1 − 1/n、一様なマップは 0 になります。")
    got = gini(np.zeros((3, 4)))
    assert got is not None and np.isfinite(got) and got == 0, (
        f"全部 0 のマップで {got} が返りました。どこも目立たないので 0 を返してください (0 / 0 の NaN にしない)。")
    return _ok("check_gini")
