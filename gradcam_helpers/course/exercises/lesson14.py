"""Answer checkers for lesson 14 (global explanations).

Each checker calls the learner's function on a small problem whose answer is known (a model that
reads two duplicated columns; a model with an interaction) and raises ``AssertionError`` with a
hint in Japanese when an answer is wrong.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Cross-entropy of the probabilities of class 1 (column 1), as ``sklearn.metrics.log_loss``."""
    p = np.clip(np.asarray(proba, np.float64)[:, 1], 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _duplicated_problem(seed: int = 14):
    """Columns 0 and 1 are the same signal (a feature and its copy); the model reads their mean,
    column 2 is noise it ignores, column 3 enters weakly."""
    rng = np.random.default_rng(seed)
    n = 60
    signal = rng.normal(size=n)
    X = np.column_stack([signal, signal, rng.normal(size=n), rng.normal(size=n)])
    y = (signal + 0.3 * rng.normal(size=n) > 0).astype(int)

    def predict_proba(A):
        z = 2.0 * (A[:, 0] + A[:, 1]) / 2 + 0.5 * A[:, 3]
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    return X, y, predict_proba


def _reference_grouped(predict_proba, X, y, columns, n_repeats, seed, *, together=True):
    from sklearn.metrics import log_loss

    baseline = log_loss(y, predict_proba(X))
    rng = np.random.default_rng(seed)
    out = np.zeros(n_repeats)
    for r in range(n_repeats):
        shuffled = X.copy()
        if together:
            order = rng.permutation(len(X))
            shuffled[:, columns] = X[order][:, columns]
        else:
            for c in columns:
                shuffled[:, c] = X[rng.permutation(len(X)), c]
        out[r] = log_loss(y, predict_proba(shuffled)) - baseline
    return out


def check_grouped_permutation_importance(fn: Callable) -> None:
    """Exercise 1: ``fn(predict_proba, X, y, columns, n_repeats=5, seed=0)`` -> (n_repeats,) the
    increase of the cross-entropy when ``columns`` are shuffled together (one row permutation per
    repeat from ``np.random.default_rng(seed).permutation``)."""
    X, y, predict_proba = _duplicated_problem()
    kept = X.copy()
    got = fn(predict_proba, X, y, [0, 1], n_repeats=5, seed=0)
    assert np.array_equal(X, kept), (
        "X を書き換えないでください。並べ替えは X.copy() に作ります (呼び出し側のデータが壊れます)。")
    got = np.asarray(got, dtype=float)
    assert got.shape == (5,), (
        f"くり返しごとに 1 つの値なので形は (5,) のはずが {got.shape} でした。平均せずに配列で返してください。")
    expected = _reference_grouped(predict_proba, X, y, [0, 1], 5, 0)
    if np.allclose(got, -expected, atol=1e-9):
        raise AssertionError("符号が逆です。重要度は (並べ替えたあとの損失) − (元の損失) で、"
                             "頼っている特徴量ほど正になります。")
    if np.allclose(got, _reference_grouped(predict_proba, X, y, [0, 1], 5, 0, together=False), atol=1e-9):
        raise AssertionError("列ごとに別々に並べ替えていませんか? グループ化した重要度では、columns の列を "
                             "**同じ行の並べ替え** (order を 1 つ) で一緒に並べ替えます。")
    assert np.allclose(got, expected, atol=1e-9), (
        "値が違います。rng = np.random.default_rng(seed) を**ループの外で 1 回**作り、くり返しのたびに "
        "order = rng.permutation(len(X)) を引いていますか? 損失は log_loss(y, predict_proba(...)) です。")
    noise = fn(predict_proba, X, y, [2], n_repeats=3, seed=1)
    assert np.allclose(noise, 0, atol=1e-12), (
        "モデルが使わない列 (2 列目) を並べ替えても損失は変わらず、重要度は 0 のはずです。")
    one = fn(predict_proba, X, y, [0], n_repeats=5, seed=0)
    assert np.mean(one) < np.mean(got), "1 列だけのときの重要度が、2 列まとめたときより小さくなるはずです。"
    print("正解です! 相関した 2 列をまとめて並べ替えると、1 列ずつのときより大きな重要度になりました "
          f"(1 列: {np.mean(one):.3f}、2 列まとめて: {np.mean(got):.3f})。")


def _interaction_problem(seed: int = 41):
    """A model where feature 0 matters only when feature 1 is positive: its ICE curves differ by
    row, and the PD is not the prediction at the mean."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(25, 3))

    def predict(A):
        return np.tanh(2 * A[:, 0]) * (A[:, 1] > 0) + 0.1 * A[:, 2]

    return X, predict, np.linspace(-2, 2, 7)


def check_ice_and_pd(fn: Callable) -> None:
    """Exercise 2: ``fn(predict, X, feature, grid)`` -> (ice (N, G), pd (G,))."""
    X, predict, grid = _interaction_problem()
    kept = X.copy()
    result = fn(predict, X, 0, grid)
    assert np.array_equal(X, kept), "X を書き換えないでください。列を置き換えるのは X.copy() です。"
    assert isinstance(result, tuple) and len(result) == 2, "(ice, pd) の 2 つを tuple で返してください。"
    ice, pd = (np.asarray(a, dtype=float) for a in result)
    n, g = len(X), len(grid)
    if ice.shape == (g, n):
        raise AssertionError(f"ice の形が (G, N) = {ice.shape} です。行がデータの行、列が格子の点の "
                             f"(N, G) = ({n}, {g}) にしてください。")
    assert ice.shape == (n, g), f"ice の形は (N, G) = ({n}, {g}) のはずが {ice.shape} でした。"
    assert pd.shape == (g,), f"pd の形は (G,) = ({g},) のはずが {pd.shape} でした。"
    expected = np.empty((n, g))
    for k, v in enumerate(grid):
        changed = X.copy()
        changed[:, 0] = v
        expected[:, k] = predict(changed)
    at_mean = np.array([predict(np.r_[v, X.mean(axis=0)[1:]][None])[0] for v in grid])
    if np.allclose(pd, at_mean, atol=1e-9):
        raise AssertionError("pd を「ほかの特徴量を平均にした 1 点での予測」で計算していませんか? 部分依存は、"
                             "全部の行で予測してから平均します (ICE の平均)。交互作用があると両者は違います。")
    assert np.allclose(ice, expected, atol=1e-9), (
        "ice が違います。ice[i, k] は、i 行目の feature 列だけを grid[k] に置き換えたときの予測です。")
    assert np.allclose(pd, expected.mean(axis=0), atol=1e-9), "pd は ice の行についての平均 (axis=0) です。"
    spread = float((expected[:, -1] - expected[:, 0]).std())
    print(f"正解です! PD は ICE の平均です。この問題では ICE の変化の標準偏差が {spread:.2f} あり、"
          "PD 1 本では個人差が見えません。")
