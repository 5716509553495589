"""Answer checkers for lesson 01 (MNIST data).

Each checker calls the learner's function on small cases whose answers are computed here
independently, and raises ``AssertionError`` with a hint in Japanese when an answer is wrong.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _ok(name: str) -> None:
    print(f"{name}: 正解です！ (all checks passed)")


def check_normalize(normalize: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check ``normalize(raw) -> (N, H, W, 1)`` floats in [0, 1] equal to ``raw / 255``.

    ``raw`` is (N, H, W) uint8 with values 0..255.
    """
    rng = np.random.default_rng(1)
    # the second case is a dark image (max 200): dividing by x.max() instead of 255 is wrong there
    for shape, high in [((3, 28, 28), 256), ((2, 5, 7), 201)]:
        raw = rng.integers(0, high, size=shape, dtype=np.uint8)
        raw.flat[0], raw.flat[-1] = 0, high - 1
        before = raw.copy()
        out = np.asarray(normalize(raw))
        assert np.array_equal(raw, before), "入力配列を書き換えないでください (do not modify the input)。"
        assert out.shape == shape + (1,), (
            f"形が {out.shape} です。期待値は {shape + (1,)}: 最後にチャンネル軸を "
            "np.expand_dims(x, -1) で追加しましたか？")
        assert np.issubdtype(out.dtype, np.floating), (
            f"dtype が {out.dtype} です。uint8 のまま割ると整数になります: 浮動小数点 (float) で "
            "返してください (x / 255.0)。")
        assert out.max() <= 1.0 and out.min() >= 0.0, (
            f"値の範囲が [{out.min():.3g}, {out.max():.3g}] です。0〜1 になるよう 255 で割りましたか？")
        expected = raw[..., None] / 255.0
        assert np.allclose(out, expected, atol=1e-6), (
            "値が x / 255.0 と一致しません。255 (最大の画素値) で割ってください"
            " (256 や x.max() ではありません)。")
    return _ok("check_normalize")


def check_class_counts(class_counts: Callable[[np.ndarray], np.ndarray]) -> None:
    """Check ``class_counts(labels) -> (10,)`` number of images of each digit 0..9."""
    cases = [
        np.array([0, 1, 1, 9, 9, 9]),
        np.array([3, 3, 5]),                                    # most classes missing
        np.random.default_rng(2).integers(0, 10, size=500),
    ]
    for labels in cases:
        out = np.asarray(class_counts(labels.copy()))
        expected = np.array([(labels == c).sum() for c in range(10)])
        assert out.shape == (10,), (
            f"形が {out.shape} です。数字 0〜9 の 10 クラスぶん、長さ 10 の配列を返してください。"
            "出てこないクラスも 0 として数えます (np.bincount の minlength=10)。")
        assert np.array_equal(out, expected), (
            f"ラベル {labels[:12]}... で {out.tolist()} が返りました。期待値は {expected.tolist()} です。"
            "i 番目の要素は『ラベルが i の画像の枚数』です。")
    return _ok("check_class_counts")


def _box_of(image: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(image > threshold)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def check_ink_box(ink_box: Callable[..., tuple]) -> None:
    """Check ``ink_box(image, threshold) -> (x0, y0, x1, y1)``, ends exclusive, of pixels > threshold."""
    rng = np.random.default_rng(3)
    images = []
    img = np.zeros((28, 28), np.float32)
    img[5:9, 10:20] = 1.0                     # wide and flat: catches swapped x and y
    images.append((img, 0.0))
    img = np.zeros((20, 30), np.float32)      # not square, ink touching the right/bottom edge
    img[12:, 25:] = 0.7
    images.append((img, 0.0))
    img = np.zeros((28, 28), np.float32)
    img[3, 4] = 0.05                          # faint pixel below the threshold: not ink
    img[10:15, 8:12] = 0.9
    images.append((img, 0.1))
    for _ in range(5):
        img = np.zeros((28, 28), np.float32)
        y0, x0 = rng.integers(0, 20, size=2)
        h, w = rng.integers(1, 8, size=2)
        img[y0:y0 + h, x0:x0 + w] = rng.uniform(0.3, 1.0, size=(h, w))
        images.append((img, 0.0))
    for img, thr in images:
        expected = _box_of(img, thr)
        got = ink_box(img.copy(), thr)
        assert got is not None and len(tuple(got)) == 4, "(x0, y0, x1, y1) の 4 つの整数を返してください。"
        got = tuple(int(v) for v in got)
        swapped = (expected[1], expected[0], expected[3], expected[2])
        if got == swapped and swapped != expected:
            raise AssertionError(f"{got} は x と y が逆です。x は列 (axis=1)、y は行 (axis=0) です。")
        if got == (expected[0], expected[1], expected[2] - 1, expected[3] - 1):
            raise AssertionError(f"{got} は終端が 1 つ小さいです。終端は『含まない』(exclusive) 約束なので "
                                 "最後のインクの位置 + 1 にしてください (image[y0:y1, x0:x1] が数字)。")
        assert got == expected, (
            f"形 {img.shape}, threshold={thr} の画像で {got} が返りました。期待値は {expected} です。"
            "threshold より明るい画素 (image > threshold) だけをインクとして数えていますか？")
    return _ok("check_ink_box")
