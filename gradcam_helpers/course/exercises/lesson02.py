"""Answer checkers for lesson 02 (a Functional-API CNN on MNIST).

Each checker calls the learner's function on cases with known answers and raises ``AssertionError``
with a hint in Japanese when an answer is wrong. Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)  # ceil(size / stride)
    return (size - kernel) // stride + 1


def check_conv_output_size(fn: Callable) -> None:
    """Exercise 1: ``fn(size, kernel, stride=1, padding="valid")`` -> output side length."""
    cases = [
        ((28, 3, 1, "valid"), 26), ((13, 3, 1, "valid"), 11), ((26, 2, 2, "valid"), 13),
        ((11, 2, 2, "valid"), 5), ((28, 3, 1, "same"), 28), ((28, 5, 2, "same"), 14),
        ((32, 5, 1, "valid"), 28), ((224, 7, 2, "valid"), 109), ((15, 3, 2, "same"), 8),
    ]
    for (size, kernel, stride, padding), expected in cases:
        got = fn(size, kernel, stride=stride, padding=padding)
        assert isinstance(got, (int, np.integer)), (
            f"整数を返してください (size={size} で {type(got).__name__} が返りました)。"
            "割り算は // を使います。")
        assert got == expected, (
            f"size={size}, kernel={kernel}, stride={stride}, padding={padding!r} の出力は "
            f"{expected} のはずが {got} でした。ヒント: padding='valid' は "
            "(size - kernel) // stride + 1、padding='same' は size をストライドで割って切り上げ。")
    print("正解です! 畳み込み・プーリングの出力サイズを計算できました。")


def check_conv_params(fn: Callable) -> None:
    """Exercise 2: ``fn(kernel, in_channels, filters, use_bias=True)`` -> number of parameters."""
    cases = [
        ((3, 1, 32, True), 320), ((3, 32, 64, True), 18_496), ((3, 1, 32, False), 288),
        ((1, 64, 128, False), 8_192), ((5, 3, 16, True), 1_216), ((3, 64, 64, False), 36_864),
    ]
    for (kernel, cin, filters, bias), expected in cases:
        got = fn(kernel, cin, filters, use_bias=bias)
        assert got == expected, (
            f"kernel={kernel}×{kernel}, 入力 {cin} チャンネル, フィルタ {filters} 枚, "
            f"use_bias={bias} のパラメータ数は {expected} のはずが {got} でした。ヒント: "
            "1 枚のフィルタは kernel×kernel×入力チャンネル の重みを持ち、バイアスはフィルタ 1 枚に 1 つ。")
    print("正解です! Conv2D のパラメータ数を計算できました。")


def check_confusion_matrix(fn: Callable) -> None:
    """Exercise 3: ``fn(y_true, y_pred, num_classes)`` -> (K, K) counts, rows = true class."""
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 4, 60))
    expected = np.zeros((4, 4), dtype=np.int64)
    np.add.at(expected, (y_true, y_pred), 1)
    got = np.asarray(fn(y_true, y_pred, 4))
    assert got.shape == (4, 4), f"形は (num_classes, num_classes) = (4, 4) のはずが {got.shape} でした。"
    if np.array_equal(got, expected.T) and not np.array_equal(got, expected):
        raise AssertionError("行と列が逆です。行 = 正解クラス、列 = 予測クラス にしてください "
                             "(scikit-learn の confusion_matrix と同じ向き)。")
    assert np.array_equal(got, expected), (
        "数が合いません。cm[正解, 予測] に 1 ずつ足していきます (例: np.add.at(cm, (y_true, y_pred), 1))。")
    assert got.sum() == len(y_true), "合計が画像の枚数と一致しません。"
    # a class that never occurs still gets its row and column
    got = np.asarray(fn(np.array([0, 0, 1]), np.array([0, 1, 1]), 3))
    assert got.shape == (3, 3) and got[2].sum() == 0, (
        "一度も現れないクラスにも行と列が必要です: 形は常に (num_classes, num_classes)。")
    print("正解です! 混同行列を自分で計算できました。")
