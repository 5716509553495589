"""Answer checkers for lesson 13 (Vision Transformers).

Exercise 1 turns a token sequence into the patch grid by hand (drop the class token, reshape row by
row); exercise 2 is one step of attention rollout. Each checker compares the answer with the
engine's own functions on random inputs and, when it is wrong, raises ``AssertionError`` with a
hint in Japanese that names the likely mistake.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...engine.attention import rollout_matrix
from ...engine.tokens import tokens_to_grid


def check_tokens_to_grid(fn: Callable) -> None:
    """``fn(tokens, h, w)`` → (N, h, w, D): the patch tokens of ``tokens`` (N, 1 + h·w, D), whose
    first token is the class token, as a grid (patch (r, c) is token 1 + r·w + c)."""
    n, h, w, d = 2, 3, 4, 5
    tokens = np.random.default_rng(13).normal(size=(n, 1 + h * w, d)).astype(np.float32)
    kept = tokens.copy()
    got = fn(tokens, h, w)
    assert np.array_equal(tokens, kept), "tokens を書き換えないでください (呼び出し側の配列です)。"
    got = np.asarray(got)
    assert got.shape == (n, h, w, d), (
        f"形は (N, h, w, D) = {(n, h, w, d)} のはずが {got.shape} でした。クラストークン (先頭の 1 個) を"
        "落としてから reshape しましたか?")
    expected = tokens_to_grid(tokens, (h, w), (h, w))
    if np.allclose(got, tokens[:, :-1].reshape(n, h, w, d)):
        raise AssertionError("最後のトークンを落としていませんか? クラストークンは**先頭** (位置 0) です: "
                             "tokens[:, 1:] を使います。")
    if np.allclose(got, tokens[:, 1:].reshape(n, w, h, d).transpose(0, 2, 1, 3)):
        raise AssertionError("行と列が入れ替わっています。パッチは左上から**行ごとに** (横に) 並んでいるので、"
                             "reshape(N, h, w, D) がそのまま正しい並びです。")
    assert np.allclose(got, expected), (
        "パッチ (r, c) はトークン 1 + r·w + c のはずです。tokens[:, 1:].reshape(N, h, w, D) と比べてください。")
    print("正解です! クラストークンを落とし、パッチトークンを行ごとに格子へ並べ直せました。")


def check_rollout_step(fn: Callable) -> None:
    """``fn(attention, previous)`` → (T, T): one step of attention rollout for one image,
    ``rownorm((mean_heads attention + I) / 2) @ previous``, with ``attention`` (heads, T, T)."""
    heads, t = 3, 5
    rng = np.random.default_rng(31)
    logits = rng.normal(size=(2, heads, t, t))
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    first, second = weights[0], weights[1]
    previous = rollout_matrix([first[None]])[0]
    kept = (second.copy(), previous.copy())
    got = np.asarray(fn(second, previous), np.float64)
    assert np.array_equal(second, kept[0]) and np.array_equal(previous, kept[1]), (
        "引数の配列を書き換えないでください。")
    assert got.shape == (t, t), (
        f"形は (T, T) = {(t, t)} のはずが {got.shape} でした。ヘッドの軸 (軸 0) について平均しましたか?")
    expected = rollout_matrix([first[None], second[None]])[0]
    eye = np.eye(t)
    mixed = (second.mean(0) + eye) / 2
    if np.allclose(got, second.mean(0) @ previous, atol=1e-6):
        raise AssertionError("残差接続の分の単位行列を足していません: (A + I) / 2 を使います。")
    if np.allclose(got, previous @ (mixed / mixed.sum(-1, keepdims=True)), atol=1e-6):
        raise AssertionError("掛ける順が逆です。新しい層の行列を**左**から掛けます: Â @ previous。")
    if np.allclose(got, (second.max(0) + eye) / 2 @ previous, atol=1e-6):
        raise AssertionError("ヘッドについては最大値ではなく平均をとります。")
    assert np.allclose(got, expected, atol=1e-6), (
        "1 ステップは Â = (ヘッド平均の A + I) / 2 を行ごとに正規化し、Â @ previous を返します。")
    assert np.allclose(got.sum(-1), 1, atol=1e-6), "結果の各行の和は 1 になるはずです。"
    print("正解です! アテンションロールアウトの 1 ステップ (ヘッド平均 + 単位行列、正規化、左から掛ける) を計算できました。")
