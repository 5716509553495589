"""Answer checkers for lesson 04 (Grad-CAM).

Each checker calls the learner's function on small cases whose answers are computed here
independently, and raises ``AssertionError`` with a hint in Japanese when an answer is wrong.
Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _ok(name: str) -> None:
    print(f"{name}: 正解です！ (all checks passed)")


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _gradcam_reference(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    weights = g.mean(axis=(1, 2))                      # (N, K): one set of weights per image
    return _relu(np.einsum("nhwk,nk->nhw", a, weights))


def _gradcam_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(4)
    cases = []
    # a batch whose images have gradients of opposite sign: pooling over the batch mixes them up
    a = rng.uniform(0, 1, size=(3, 4, 5, 6))
    g = rng.normal(size=(3, 4, 5, 6))
    g[1] = -g[0] + 0.1 * rng.normal(size=(4, 5, 6))
    cases.append((a, g))
    # not square, one image, more channels
    cases.append((rng.uniform(0, 2, size=(1, 3, 7, 9)), rng.normal(size=(1, 3, 7, 9))))
    # every weight negative for image 0: its map must be all zero (ReLU)
    a = rng.uniform(0.1, 1, size=(2, 4, 4, 3))
    g = rng.normal(size=(2, 4, 4, 3))
    g[0] = -np.abs(g[0]) - 0.1
    cases.append((a, g))
    return cases


def check_gradcam_maps(gradcam_maps: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Check ``gradcam_maps(activations, gradients) -> (N, h, w)`` raw Grad-CAM maps.

    ``activations`` and ``gradients`` are (N, h, w, K); the answer is
    ``ReLU(sum_k mean_ij(gradients[n, :, :, k]) * activations[n, :, :, k])`` for each image n.
    """
    for a, g in _gradcam_cases():
        a_in, g_in = a.copy(), g.copy()
        out = np.asarray(gradcam_maps(a_in, g_in), dtype=np.float64)
        assert np.array_equal(a_in, a) and np.array_equal(g_in, g), (
            "入力配列を書き換えないでください (do not modify the inputs)。")
        n, h, w, k = a.shape
        assert out.shape == (n, h, w), (
            f"形が {out.shape} です。期待値は {(n, h, w)}: 画像ごとに (h, w) のマップを 1 枚返します。"
            "チャンネル軸 (最後の軸 K) について和を取りましたか？")
        expected = _gradcam_reference(a, g)
        if np.allclose(out, expected, rtol=1e-6, atol=1e-9):
            continue
        batch_pooled = _relu(np.einsum("nhwk,k->nhw", a, g.mean(axis=(0, 1, 2))))
        if n > 1 and np.allclose(out, batch_pooled, rtol=1e-6, atol=1e-9):
            raise AssertionError(
                "勾配をバッチ軸 (axis=0) まで平均しています。重みは画像ごとに "
                "gradients.mean(axis=(1, 2)) で求めます (形 (N, K))。")
        if (out < 0).any():
            raise AssertionError("負の値があります。最後に ReLU (np.maximum(x, 0)) をかけてください。")
        no_relu = np.einsum("nhwk,nk->nhw", a, g.mean(axis=(1, 2)))
        if np.allclose(out, no_relu, rtol=1e-6, atol=1e-9):
            raise AssertionError("負の値があります。最後に ReLU (np.maximum(x, 0)) をかけてください。")
        summed = _relu(np.einsum("nhwk,nk->nhw", a, g.sum(axis=(1, 2))))
        if np.allclose(out, summed, rtol=1e-6, atol=1e-9):
            raise AssertionError(
                f"マップが {h * w} 倍 (= h × w) 大きいです。勾配は空間方向に和ではなく平均 (mean) を取ります。")
        if expected.max() > 0 and out.max() > 0 and np.allclose(
                out / out.max(), expected / expected.max(), rtol=1e-5, atol=1e-7):
            raise AssertionError("マップの形は合っていますが大きさが違います。ここでは正規化せず、"
                                 "ReLU 後の生のマップ (raw) を返してください。")
        raise AssertionError(
            f"形 {a.shape} の入力で答えが合いません (最大の差 {np.abs(out - expected).max():.3g})。"
            "重み alpha[n, k] = gradients[n].mean(axis=(0, 1))[k] を activations[n] の各チャンネルに"
            "かけて足し、ReLU をかけます。")
    return _ok("check_gradcam_maps")


def check_normalize_per_image(normalize_per_image: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check ``normalize_per_image(maps) -> (N, H, W)``: each map divided by its own maximum,
    an all-zero map stays all zero (no NaN)."""
    rng = np.random.default_rng(5)
    maps = rng.uniform(0, 1, size=(4, 6, 5))
    maps[0] *= 10.0                     # a much larger map: a batch-wide maximum would squash the others
    maps[1] += 0.5                      # positive everywhere: (m - min) / (max - min) differs from m / max
    maps[2] = 0.0                       # all zero: must stay all zero
    before = maps.copy()
    with np.errstate(all="ignore"):
        out = np.asarray(normalize_per_image(maps), dtype=np.float64)
    assert np.array_equal(maps, before), "入力配列を書き換えないでください (do not modify the input)。"
    assert out.shape == maps.shape, f"形が {out.shape} です。入力と同じ {maps.shape} を返してください。"
    assert np.all(np.isfinite(out)), (
        "NaN または inf があります。全部 0 のマップを最大値 0 で割っていませんか？ "
        "最大値が 0 の画像は 0 のままにします (np.divide の where= や np.where が使えます)。")
    assert np.all(out[2] == 0), "全部 0 のマップは全部 0 のまま返してください。"
    peaks = out.reshape(len(out), -1).max(axis=1)
    assert np.allclose(peaks[[0, 1, 3]], 1.0), (
        f"各マップの最大値が {np.round(peaks, 3).tolist()} です。バッチ全体ではなく、"
        "画像ごとの最大値 (maps.max(axis=(1, 2), keepdims=True)) で割ってください。")
    peak = maps.reshape(4, -1).max(axis=1)[:, None, None]
    expected = np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)
    if not np.allclose(out, expected, atol=1e-7):
        lo = maps.min(axis=(1, 2), keepdims=True)
        minmax = (maps - lo) / np.maximum(maps.max(axis=(1, 2), keepdims=True) - lo, 1e-12)
        if np.allclose(out[1], minmax[1], atol=1e-7):
            raise AssertionError("最小値を引いています (min-max 正規化)。このレッスンの約束は "
                                 "『最大値で割るだけ』です: どこも正のマップは 0 まで下げません。")
        raise AssertionError(f"値が maps / (画像ごとの最大値) と一致しません "
                             f"(最大の差 {np.abs(out - expected).max():.3g})。")
    return _ok("check_normalize_per_image")


def check_points_inside(points_inside: Callable[[np.ndarray, tuple], bool]) -> None:
    """Check ``points_inside(cam_map, box) -> bool``: is the map's maximum inside the box
    ``(x0, y0, x1, y1)`` (ends exclusive)? An all-zero map is a miss."""
    cases = []
    m = np.zeros((10, 12))
    m[2, 7] = 1.0                       # row 2 (y), column 7 (x)
    cases += [(m, (6, 1, 9, 4), True, "inside"),
              (m, (1, 6, 4, 9), False, "swapped"),       # the same box with x and y swapped
              (m, (3, 0, 7, 3), False, "edge_x"),        # x1 = 7 is exclusive: column 7 is outside
              (m, (7, 0, 9, 2), False, "edge_y"),        # y1 = 2 is exclusive: row 2 is outside
              (m, (7, 2, 8, 3), True, "one_pixel")]
    cases.append((np.zeros((8, 8)), (0, 0, 8, 8), False, "zero"))
    m2 = np.zeros((9, 9))
    m2[5, 1] = 0.8
    m2[1, 5] = 0.9                      # the maximum, not the first bright pixel, decides
    cases += [(m2, (4, 0, 7, 3), True, "max"), (m2, (0, 4, 3, 7), False, "max2")]
    for cam_map, box, expected, kind in cases:
        got = points_inside(cam_map.copy(), tuple(box))
        assert isinstance(got, (bool, np.bool_)), (
            f"{type(got).__name__} が返りました。True / False (bool) を返してください。")
        if bool(got) == expected:
            continue
        if kind == "zero":
            raise AssertionError("全部 0 のマップには最大の場所がありません: 外れ (False) にします。")
        y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)
        x0, y0, x1, y1 = box
        if bool(got) == bool(x0 <= y < x1 and y0 <= x < y1):
            raise AssertionError(f"x と y が逆のようです。最大の位置は行 y={y}, 列 x={x} で、"
                                 "箱は (x0, y0, x1, y1) = (列の範囲, 行の範囲) です。"
                                 "np.unravel_index は (行, 列) = (y, x) の順に返します。")
        if bool(got) == bool(x0 <= x <= x1 and y0 <= y <= y1):
            raise AssertionError(f"箱 {box} の終端は『含まない』約束です: x0 <= x < x1 かつ y0 <= y < y1 "
                                 f"(最大の位置は x={x}, y={y})。")
        raise AssertionError(f"箱 {box}、最大の位置 (x={x}, y={y}) で {bool(got)} が返りました。"
                             f"期待値は {expected} です。np.argmax と np.unravel_index で最大の位置を"
                             "求めていますか？")
    return _ok("check_points_inside")
