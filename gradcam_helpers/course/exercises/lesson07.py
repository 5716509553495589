"""Answer checkers for lesson 07 (shortcut learning).

Each checker calls the learner's function on cases with known answers and raises ``AssertionError``
with a hint in Japanese when an answer is wrong. Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _reference_corner_share(cam: np.ndarray, corner_size: float) -> float:
    h, w = cam.shape
    ch, cw = max(1, round(corner_size * h)), max(1, round(corner_size * w))
    rows = np.zeros(h, bool)
    cols = np.zeros(w, bool)
    rows[:ch] = rows[h - ch:] = True
    cols[:cw] = cols[w - cw:] = True
    total = cam.sum()
    return float((cam * (rows[:, None] & cols[None, :])).sum() / total) if total > 0 else 0.0


def check_corner_share(fn: Callable) -> None:
    """Exercise 1: ``fn(cam, corner_size)`` -> share of the map's mass inside the four corner
    squares of side ``round(corner_size * H)`` × ``round(corner_size * W)``; 0 for an empty map."""
    bottom_left = np.zeros((10, 20))
    bottom_left[9, 0] = 1.0
    assert np.isclose(float(fn(bottom_left, 0.2)), 1.0), (
        "左下の隅も数えていますか? 隅は左上・右上・左下・右下の 4 つです。")
    cam = np.zeros((10, 20))
    cam[0, 0] = 3.0        # top-left corner
    cam[9, 19] = 1.0       # bottom-right corner
    cam[5, 10] = 4.0       # centre
    got = float(fn(cam.copy(), 0.2))
    assert np.isclose(got, 0.5), (
        f"隅 (2 × 4 画素の正方形 4 つ) にある量は 3 + 1 = 4、全体は 8 なので 0.5 のはずが {got:.3f} でした。")
    rect = np.zeros((10, 20))
    rect[1, 3] = 1.0       # inside the top-left corner (rows < 2, columns < 4)
    rect[3, 1] = 1.0       # outside (row 3 is not in the top 2 rows)
    got = float(fn(rect, 0.2))
    assert np.isclose(got, 0.5), (
        f"高さと幅を取り違えていませんか? 隅の正方形は 行 round(0.2·H) × 列 round(0.2·W) です "
        f"(期待 0.5, 得られた値 {got:.3f})。")
    with np.errstate(all="ignore"):
        empty = float(fn(np.zeros((8, 8)), 0.25))
    assert np.isfinite(empty) and empty == 0, (
        "全部 0 の地図では 0 を返してください (0 / 0 で NaN にしない)。")
    rng = np.random.default_rng(8)
    for size in (0.1, 0.25):
        m = rng.random((16, 12))
        assert np.isclose(float(fn(m.copy(), size)), _reference_corner_share(m, size)), (
            f"corner_size={size} のときの値が違います。")
    print("正解です! 地図の何割が画像の隅にあるかを測れました (ショートカットの 1 つ目の兆候)。")


def check_accuracy_by_tag(fn: Callable) -> None:
    """Exercise 2: ``fn(pred, labels, has_tag)`` -> ``(agree, disagree)``: accuracy on the images
    where the tag agrees with the label (PNEUMONIA with tag, NORMAL without) and on those where
    it disagrees (PNEUMONIA without tag, NORMAL with tag)."""
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    has_tag = np.array([1, 1, 0, 0, 0, 1, 1, 1], bool)
    # a model that only reads the tag: predicts PNEUMONIA exactly when the tag is there
    pred = has_tag.astype(int)
    out = fn(pred.copy(), labels.copy(), has_tag.copy())
    assert len(out) == 2, "(一致グループの正解率, 不一致グループの正解率) の 2 つを返してください。"
    agree, disagree = map(float, out)
    assert np.isclose(agree, 1.0) and np.isclose(disagree, 0.0), (
        "タグだけを見るモデルは、タグとラベルが一致する画像では 100 %、一致しない画像では 0 % の"
        f"はずが ({agree:.2f}, {disagree:.2f}) でした。一致 = (label == 1) と has_tag が等しい画像です。")
    honest = labels.copy()
    a2, d2 = map(float, fn(honest, labels.copy(), has_tag.copy()))
    assert np.isclose(a2, 1.0) and np.isclose(d2, 1.0), (
        "すべて正解のモデルなら両方のグループで 1.0 です。")
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 2, 50)
    has_tag = rng.random(50) < 0.5
    pred = rng.integers(0, 2, 50)
    agrees = (labels == 1) == has_tag
    correct = pred == labels
    a3, d3 = map(float, fn(pred.copy(), labels.copy(), has_tag.copy()))
    assert np.isclose(a3, correct[agrees].mean()) and np.isclose(d3, correct[~agrees].mean()), (
        "ランダムなデータで値が違います。グループごとに (pred == labels) の平均をとります。")
    print("正解です! タグとラベルが食い違う画像での正解率が、ショートカットを見抜く物差しになります。")
