"""Answer checkers for lesson 06 (chest X-ray ResNet and Grad-CAM in PyTorch).

Each checker calls the learner's function on cases with known answers and raises ``AssertionError``
with a hint in Japanese when an answer is wrong. Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _reference_gradcam(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    weights = gradients.mean(axis=(1, 2))
    return np.maximum(np.tensordot(weights, activations, axes=(0, 0)), 0)


def check_gradcam_from_arrays(fn: Callable) -> None:
    """Exercise 1: ``fn(activations, gradients)`` for ONE image, both (C, h, w) as PyTorch stores
    them -> (h, w) Grad-CAM map before upsampling: ReLU(sum_k mean(dY/dA_k) * A_k)."""
    rng = np.random.default_rng(6)
    a = np.maximum(rng.normal(size=(7, 4, 5)), 0)
    g = rng.normal(size=(7, 4, 5))
    got = np.asarray(fn(a.copy(), g.copy()), dtype=float)
    assert got.shape == (4, 5), (
        f"形は特徴マップ 1 枚分の (h, w) = (4, 5) のはずが {got.shape} でした。PyTorch の配列は "
        "(C, h, w) なので、チャンネルは最初の軸 (axis=0) です。")
    if got.min() < 0:
        raise AssertionError("負の値が残っています。最後に ReLU (np.maximum(m, 0)) をかけてください。")
    expected = _reference_gradcam(a, g)
    if np.allclose(got, np.maximum((a * g).sum(axis=0), 0), atol=1e-6) and \
            not np.allclose(got, expected, atol=1e-6):
        raise AssertionError(
            "勾配をそのまま画素ごとに掛けています。Grad-CAM の重みは、各チャンネルの勾配を"
            "空間方向 (h, w) に平均した 1 つの数 α_k = mean(dY/dA_k) です。")
    if np.allclose(got, np.maximum(np.tensordot(g.sum(axis=(1, 2)), a, axes=(0, 0)), 0), atol=1e-6):
        raise AssertionError("勾配を合計しています。平均 (合計 / (h·w)) にしてください。")
    assert np.allclose(got, expected, atol=1e-6), (
        "Grad-CAM の値が違います。α_k = gradients[k].mean() を計算し、Σ_k α_k · activations[k] に "
        "ReLU をかけます。")
    # all evidence negative -> an all-zero map, without NaN
    zero = np.asarray(fn(a.copy(), -np.abs(g) - 0.1), dtype=float)
    assert np.all(np.isfinite(zero)) and np.all(zero == 0), (
        "すべての重みが負のときは、ReLU の後で全部 0 の地図になるはずです (NaN もなし)。")
    print("正解です! Grad-CAM = ReLU(Σ_k α_k A_k), α_k = 勾配の空間平均、を自分で計算できました。")


def _reference_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def check_roc_auc(fn: Callable) -> None:
    """Exercise 2: ``fn(labels, scores)`` -> ROC AUC = the chance that a random positive scores
    higher than a random negative (ties count one half)."""
    perfect = float(fn(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])))
    if np.isclose(perfect, 0.0):
        raise AssertionError("正例のスコアがすべて負例より高いのに 0 になりました。正例 (label 1) と"
                             "負例 (label 0) を取り違えていませんか?")
    assert np.isclose(perfect, 1.0), (
        f"正例のスコアがすべて負例より高いときの AUC は 1.0 のはずが {perfect:.3f} でした。")
    reversed_ = float(fn(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])))
    assert np.isclose(reversed_, 0.0), (
        f"正例がすべて負例より低いときの AUC は 0.0 のはずが {reversed_:.3f} でした。"
        "正例 (label 1) と負例 (label 0) を取り違えていませんか?")
    tied = float(fn(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])))
    assert np.isclose(tied, 0.5), (
        f"スコアが全部同じ (同点) なら AUC は 0.5 のはずが {tied:.3f} でした。同点は 1/2 として数えます。")
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60) + 0.4 * labels, 1)  # rounding makes ties
    got = float(fn(labels.copy(), scores.copy()))
    expected = _reference_auc(labels, scores)
    accuracy = float(((scores > 0.5) == labels).mean())
    if np.isclose(got, accuracy) and not np.isclose(got, expected):
        raise AssertionError("正解率 (accuracy) を返しているようです。AUC はしきい値を決めずに、"
                             "正例と負例のすべての組で「正例のスコア > 負例のスコア」の割合を数えます。")
    assert np.isclose(got, expected, atol=1e-9), (
        f"AUC が違います (期待 {expected:.4f}, 得られた値 {got:.4f})。正例 × 負例のすべての組を比べ、"
        "正例が高ければ 1、同点なら 0.5 を足して、組の数で割ります。")
    print("正解です! ROC AUC は「ランダムに選んだ正例が負例より高いスコアを持つ確率」です。")


def check_pointing_hit(fn: Callable) -> None:
    """Exercise 3: ``fn(cam, mask)`` -> True when the map's maximum lies inside the mask; an
    all-zero map has no maximum and is a miss."""
    cam = np.zeros((6, 8))
    cam[2, 5] = 1.0
    cam[4, 1] = 0.5
    mask = np.zeros((6, 8), bool)
    mask[1:4, 4:7] = True
    assert bool(fn(cam.copy(), mask.copy())) is True, (
        "最大値 (行 2, 列 5) はマスクの中なので True のはずです。")
    moved = np.zeros_like(mask)
    moved[3:6, 0:3] = True
    assert bool(fn(cam.copy(), moved)) is False, (
        "最大値はこのマスクの外なので False のはずです (2 番目に大きい値がマスクの中でも外れです)。")
    transposed = np.zeros((6, 8), bool)
    transposed[5, 2] = True   # (x, y) swapped: row 5, column 2
    assert bool(fn(cam.copy(), transposed)) is False, (
        "行と列を取り違えていませんか? np.unravel_index(np.argmax(cam), cam.shape) は (行, 列) を返します。")
    corner = mask.copy()
    corner[0, 0] = True   # np.argmax of an all-zero map is index 0: this must not count as a hit
    assert bool(fn(np.zeros((6, 8)), corner)) is False, (
        "全部 0 の地図には最大の場所がありません。どこも指していないので外れ (False) にします。")
    print("正解です! pointing game の 1 枚分の判定ができました。")
