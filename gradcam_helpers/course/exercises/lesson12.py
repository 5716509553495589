"""Answer checker for lesson 12 (Keras 3 backends).

The exercise takes Grad-CAM's channel weights the JAX way: by differentiating a *function* of the
activations with ``jax.grad``. The checker raises ``AssertionError`` with a hint in Japanese when
an answer is wrong. It needs JAX (a pinned dependency of the course); the learner's notebook may
run on any Keras backend, since JAX is used directly, not through Keras.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _heads(k: int, classes: int, seed: int):
    """A linear head (GAP → Dense: a known answer) and a non-linear one (ReLU of a 1×1 mix)."""
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    w = rng.normal(size=(k, classes)).astype(np.float32)
    mix = rng.normal(size=(k, k)).astype(np.float32)

    def linear(a):
        return a.mean(axis=(0, 1)) @ w

    def nonlinear(a):
        return jnp.maximum(a @ mix, 0.0).mean(axis=(0, 1)) @ w

    return w, linear, nonlinear


def check_gradcam_weights(fn: Callable) -> None:
    """``fn(head, activations, target)`` -> (K,) float NumPy array: Grad-CAM's channel weights
    ``alpha_k = mean_ij d head(A)[target] / d A_ijk`` for one image's activations ``A`` (h, w, K),
    where ``head`` is a pure JAX function from activations to class scores (before softmax)."""
    import jax

    h, w, k, classes = 3, 4, 5, 3
    rng = np.random.default_rng(12)
    a = rng.random((h, w, k)).astype(np.float32)
    weights, linear, nonlinear = _heads(k, classes, seed=12)

    kept = a.copy()
    got = fn(linear, a, 1)
    assert np.array_equal(a, kept), "activations を書き換えないでください (呼び出し側の配列です)。"
    assert isinstance(got, np.ndarray), (
        f"NumPy の配列を返してください (np.asarray(...) で変換できます)。得られた型: {type(got).__name__}")
    assert got.shape == (k,), (
        f"チャネルごとに 1 つの重みなので形は ({k},) のはずが {got.shape} でした。"
        "勾配 (h, w, K) を位置 (軸 0 と 1) について平均しましたか?")
    expected = weights[:, 1] / (h * w)
    if np.allclose(got, weights[:, 1], atol=1e-5):
        raise AssertionError("位置について合計していませんか? Grad-CAM の重みは勾配の**平均**です "
                             f"(合計は h·w = {h * w} 倍になります)。")
    if np.allclose(got, weights.sum(axis=1) / (h * w), atol=1e-5):
        raise AssertionError("すべてのクラスのスコアの和を微分していませんか? 微分するのは target の "
                             "クラスのスコア head(a)[target] だけです。")
    assert np.allclose(got, expected, atol=1e-5), (
        "GAP → 全結合の頭なら重みは W[:, target] / (h·w) になるはずです。softmax をかけていませんか? "
        "Grad-CAM は softmax の**前**のスコアを微分します。")
    for target in range(classes):
        reference = np.asarray(jax.grad(lambda x: nonlinear(x)[target])(a)).mean(axis=(0, 1))
        got = np.asarray(fn(nonlinear, a.copy(), target))
        assert np.allclose(got, reference, atol=1e-5), (
            f"非線形の頭 (ReLU を含む) で target={target} の値が違います。式を手で書かず、"
            "jax.grad で head(a)[target] を a について微分してください。")
    print("正解です! JAX のやり方 (関数を jax.grad で微分する) で Grad-CAM の重みを計算できました。")
