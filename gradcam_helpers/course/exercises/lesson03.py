"""Answer checkers for lesson 03 (CAM with the weights after global average pooling).

Each checker calls the learner's function on cases with known answers and raises ``AssertionError``
with a hint in Japanese when an answer is wrong. Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def check_cam_by_hand(fn: Callable) -> None:
    """Exercise 1: ``fn(features, weights, cls)`` -> ReLU(sum_k weights[k, cls] * features[:, :, k]).

    features (h, w, K), weights (K, classes) — the Dense kernel after GAP; result (h, w).
    """
    rng = np.random.default_rng(3)
    features = np.maximum(rng.normal(size=(5, 6, 8)), 0)   # ReLU'd feature maps, h != w
    weights = rng.normal(size=(8, 4))
    for cls in range(4):
        expected = np.maximum(np.tensordot(features, weights[:, cls], axes=([2], [0])), 0)
        got = np.asarray(fn(features, weights, cls), dtype=float)
        assert got.shape == (5, 6), (
            f"形は特徴マップと同じ (h, w) = (5, 6) のはずが {got.shape} でした。"
            "チャンネル軸 (最後の軸) について重み付き和をとります。")
        if got.min() < 0:
            raise AssertionError("負の値が残っています。最後に ReLU (np.maximum(m, 0)) をかけてください。")
        assert np.allclose(got, expected, atol=1e-6), (
            f"クラス {cls} の CAM が違います。クラス cls の重みは Dense の kernel の列 weights[:, cls] "
            "です (形 (K,))。各チャンネルの特徴マップ features[:, :, k] に weights[k, cls] を掛けて足し、"
            "最後に ReLU をかけます。")
    print("正解です! CAM = ReLU(Σ_k w_k^c A_k) を自分で計算できました。")


def check_normalize_map(fn: Callable) -> None:
    """Exercise 2: ``fn(m)`` -> m / m.max(), and an all-zero map stays all zero (no NaN)."""
    m = np.array([[0.0, 1.0], [2.0, 4.0]])
    got = np.asarray(fn(m.copy()), dtype=float)
    assert got.shape == m.shape, f"形を変えないでください ({m.shape} → {got.shape})。"
    assert np.allclose(got, m / 4.0), "最大値で割って、最大が 1 になるようにします。"
    small = np.array([[0.0, 1e-3], [2e-3, 5e-4]])
    assert np.allclose(np.asarray(fn(small.copy()), dtype=float), small / 2e-3), (
        "小さな値の地図も最大値 1 になるように割ります (最小値を引く必要はありません)。")
    with np.errstate(all="ignore"):
        zero = np.asarray(fn(np.zeros((3, 3))), dtype=float)
    assert zero.shape == (3, 3), "全部 0 の地図でも形は (3, 3) のままです。"
    assert np.all(np.isfinite(zero)), (
        "全部 0 の地図で NaN / inf が出ました (0 / 0)。最大値が 0 のときは割らずに 0 のまま返してください。")
    assert np.all(zero == 0), "全部 0 の地図は全部 0 のまま返します (根拠がどこにもない、という意味)。"
    print("正解です! 0 除算を起こさない正規化ができました。")


def check_bgr_to_rgb(fn: Callable) -> None:
    """Exercise 3: ``fn(image)`` -> the same (H, W, 3) image with channels reversed (BGR -> RGB)."""
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    got = np.asarray(fn(img.copy()))
    assert got.shape == img.shape, f"形 (H, W, 3) を変えないでください ({img.shape} → {got.shape})。"
    if np.array_equal(got, img):
        raise AssertionError("何も変わっていません。チャンネルの順番 (最後の軸) を逆にします: img[..., ::-1]")
    if np.array_equal(got, img[::-1]) or np.array_equal(got, img[:, ::-1]):
        raise AssertionError("画像の上下や左右を反転しています。逆にするのは最後の軸 (チャンネル) だけです。")
    assert np.array_equal(got, img[..., ::-1]), "チャンネルを B, G, R → R, G, B の順に並べ替えてください。"
    assert got.dtype == img.dtype, f"dtype を変えないでください ({img.dtype} → {got.dtype})。"
    pure_blue_in_bgr = np.zeros((1, 1, 3), np.uint8)
    pure_blue_in_bgr[..., 0] = 255
    assert np.asarray(fn(pure_blue_in_bgr))[0, 0].tolist() == [0, 0, 255], (
        "BGR の (255, 0, 0) は青です。RGB にすると (0, 0, 255) になるはずです。")
    print("正解です! OpenCV の BGR 画像を matplotlib 用の RGB にできました。")
