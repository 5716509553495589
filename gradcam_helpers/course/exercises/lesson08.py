"""Answer checkers for lesson 08 (a pretrained ImageNet network on real photos).

Each checker calls the learner's function on cases with known answers and raises ``AssertionError``
with a hint in Japanese when an answer is wrong. Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...engine.maps import softmax


def check_top_k(fn: Callable) -> None:
    """Exercise 1: ``fn(logits, k)`` -> (indices, probabilities) of the k most probable classes.

    logits (classes,) before softmax; indices (k,) int, most probable first; probabilities (k,)
    softmax probabilities of those classes.
    """
    logits = np.array([1.0, 3.0, -2.0, 2.5, 0.0])
    p = softmax(logits)
    idx, prob = fn(logits.copy(), 3)
    idx, prob = np.asarray(idx), np.asarray(prob, dtype=float)
    assert idx.shape == (3,) and prob.shape == (3,), (
        f"k = 3 個ずつ返します (形 (3,) と (3,))。返ってきた形: {idx.shape}, {prob.shape}")
    if idx.tolist() == [2, 4, 0]:
        raise AssertionError("小さい順になっています。確率の大きい順 (降順) に並べてください。")
    assert idx.tolist() == [1, 3, 0], (
        f"上位 3 クラスは [1, 3, 0] のはずが {idx.tolist()} でした。np.argsort(-logits)[:k] で降順にします。")
    if np.allclose(prob, logits[[1, 3, 0]]):
        raise AssertionError("ロジットのままです。softmax で確率に直してください: exp(z) / Σ exp(z)。")
    assert np.allclose(prob, p[[1, 3, 0]], atol=1e-6), (
        "確率が違います。softmax は全クラスで計算してから、上位 k 個を取り出します。")
    big = np.array([1000.0, 999.0, 0.0])
    with np.errstate(all="ignore"):
        _, prob_big = fn(big.copy(), 2)
    assert np.all(np.isfinite(prob_big)), (
        "大きなロジット (1000) で inf / NaN になりました。exp の前に最大値を引きます: exp(z - z.max())。")
    print("正解です! decode_predictions と同じ上位 k 個を自分で計算できました。")


def check_integrated_gradients(fn: Callable) -> None:
    """Exercise 2: ``fn(grad_fn, x, baseline, steps)`` -> IG with the trapezoid rule.

    ``grad_fn(points)`` maps (steps, *x.shape) points to their gradients. The checker uses
    F(x) = sum(a * x ** 3), whose IG from baseline 0 is a * x ** 3 (completeness holds exactly in
    the limit).
    """
    rng = np.random.default_rng(8)
    a = rng.normal(size=(4, 3))
    x = rng.normal(size=(4, 3))

    def grad_fn(points):
        return 3 * a * np.asarray(points) ** 2

    got = np.asarray(fn(grad_fn, x.copy(), np.zeros_like(x), 200), dtype=float)
    assert got.shape == x.shape, f"形は x と同じ {x.shape} のはずが {got.shape} でした。"
    if np.allclose(got, 3 * a * x ** 2, rtol=1e-2):
        raise AssertionError("x での勾配そのものです。基準点から x までの経路上で勾配を平均してください。")
    if np.allclose(got, a * x ** 2, rtol=2e-2):
        raise AssertionError("勾配の平均までは合っています。最後に (x - baseline) を掛けます。")
    assert np.allclose(got, a * x ** 3, rtol=1e-3, atol=1e-4), (
        "IG = (x - x') × (経路上の勾配の平均) です。alpha = np.linspace(0, 1, steps) の点 "
        "x' + alpha (x - x') で勾配を求め、台形則 (両端の重みを半分) で平均します。")
    base = np.full_like(x, 0.5)
    shifted = np.asarray(fn(grad_fn, x.copy(), base, 200), dtype=float)
    assert np.isclose(shifted.sum(), (a * x ** 3).sum() - (a * base ** 3).sum(), rtol=1e-3), (
        "基準点が 0 でないときの結果が違います。経路は baseline から x までです。")
    print("正解です! 完全性 (合計 = F(x) − F(x')) を満たす Integrated Gradients を書けました。")


def check_left_share(fn: Callable) -> None:
    """Exercise 3: ``fn(m)`` -> the share of the map's total in the left half of its columns."""
    m = np.arange(24, dtype=float).reshape(4, 6)
    expected = m[:, :3].sum() / m.sum()
    got = float(fn(m.copy()))
    if np.isclose(got, m[:2].sum() / m.sum()):
        raise AssertionError("上半分になっています。左右は列 (最後の軸) で分けます: m[:, :w // 2]。")
    assert np.isclose(got, expected), (
        f"左側の割合は {expected:.4f} のはずが {got:.4f} でした。左半分の合計 / 全体の合計 です。")
    m = np.zeros((4, 6))
    m[:, :3] = 1.0
    assert np.isclose(float(fn(m.copy())), 1.0), "左半分だけが光る地図の左側の割合は 1 です。"
    with np.errstate(all="ignore"):
        zero = float(fn(np.zeros((2, 4))))
    assert np.isfinite(zero) and zero == 0.0, (
        "全部 0 の地図では 0 を返してください (0 / 0 の NaN にしない)。")
    print("正解です! 地図の重みが画像のどちら側にあるかを数えられました。")
