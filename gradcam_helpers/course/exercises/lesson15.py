"""Answer checkers for lesson 15 (targets beyond one class score).

Each checker calls the learner's function on small cases whose answers are worked out here
independently, and raises ``AssertionError`` with a hint in Japanese when an answer is wrong.
Only NumPy is needed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _ok(name: str) -> None:
    print(f"{name}: 正解です！ (all checks passed)")


# ------------------------------------------------------------------------------------------------
# 1. the other class of a single-output model


def _other_class_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(15)
    cases = []
    # mixed signs: both classes have evidence somewhere
    g = rng.normal(size=(4, 5, 3)) + np.array([1.0, -1.0, 0.2])   # channel weights of both signs
    cases.append((rng.uniform(0, 1, (4, 5, 3)), g))
    # every channel weight positive for z: the other class has no evidence (all-zero map)
    a = rng.uniform(0.1, 1, (3, 3, 2))
    cases.append((a, np.abs(rng.normal(size=(3, 3, 2))) + 0.1))
    # every channel weight negative for z: the other class's map is everywhere positive
    cases.append((a, -np.abs(rng.normal(size=(3, 3, 2))) - 0.1))
    return cases


def check_other_class_map(other_class_map: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Check ``other_class_map(activations, gradients) -> (h, w)``: the raw Grad-CAM map of the
    other class of a single-output model, ``ReLU(Σ_k −mean(g_k) · A_k)``, given the gradients
    ``g = dz/dA`` of its logit z. ``activations`` and ``gradients`` are (h, w, K)."""
    for a, g in _other_class_cases():
        a_in, g_in = a.copy(), g.copy()
        out = np.asarray(other_class_map(a_in, g_in), dtype=np.float64)
        assert np.array_equal(a_in, a) and np.array_equal(g_in, g), (
            "入力配列を書き換えないでください (do not modify the inputs)。")
        assert out.shape == a.shape[:2], (
            f"形が {out.shape} です。期待値は {a.shape[:2]}: (h, w) のマップを 1 枚返します。")
        alpha = g.mean(axis=(0, 1))
        signed = np.tensordot(a, alpha, axes=([2], [0]))
        expected = np.maximum(-signed, 0)
        if np.allclose(out, expected, rtol=1e-6, atol=1e-9):
            continue
        if np.allclose(out, np.maximum(signed, 0), rtol=1e-6, atol=1e-9):
            raise AssertionError("それは z (陽性のクラス) の Grad-CAM です。もう一方のクラスのスコアは "
                                 "−z なので、勾配も −g になります: 重みは −mean(g) です。")
        if np.allclose(out, -signed, rtol=1e-6, atol=1e-9):
            raise AssertionError("負の値があります。重み付き和の後に ReLU (np.maximum(x, 0)) をかけて"
                                 "ください。")
        if np.allclose(out, -np.maximum(signed, 0), rtol=1e-6, atol=1e-9):
            raise AssertionError("ReLU の後で符号を反転しています。−z の重みで重み付き和を作ってから "
                                 "ReLU をかけます (負の値は残りません)。")
        if (out < -1e-12).any():
            raise AssertionError("負の値があります。最後に ReLU (np.maximum(x, 0)) をかけてください。")
        raise AssertionError(f"形 {a.shape} の入力で答えが合いません (最大の差 "
                             f"{np.abs(out - expected).max():.3g})。重み −gradients.mean(axis=(0, 1)) "
                             "を各チャンネルにかけて足し、ReLU をかけます。")
    return _ok("check_other_class_map")


# ------------------------------------------------------------------------------------------------
# 2. IoU of two boxes


_IOU_CASES = [
    # (a, b, IoU, what the case catches)
    ((0, 0, 2, 2), (1, 1, 3, 3), 1 / 7, "overlap"),
    ((0, 0, 4, 2), (0, 0, 4, 2), 1.0, "same"),
    ((0, 0, 4, 2), (1, 0, 2, 2), 2 / 8, "inside"),
    ((0, 0, 2, 2), (2, 0, 4, 2), 0.0, "touching"),
    ((0, 0, 2, 2), (5, 5, 7, 8), 0.0, "apart"),        # both overlaps negative: their product is not
    ((0, 0, 3, 3), (1, 5, 4, 9), 0.0, "apart_y"),
    ((10, 20, 30, 25), (15, 10, 20, 40), 25 / (100 + 150 - 25), "cross"),
]


def check_box_iou(box_iou: Callable[[tuple, tuple], float]) -> None:
    """Check ``box_iou(a, b) -> float``: the intersection over union of two boxes
    ``(x0, y0, x1, y1)`` with exclusive ends (width ``x1 − x0``)."""
    for a, b, expected, kind in _IOU_CASES:
        got = box_iou(a, b)
        assert np.ndim(got) == 0, f"{np.shape(got)} の配列が返りました。1 つの数を返してください。"
        got = float(got)
        assert np.isfinite(got), f"箱 {a} と {b} で {got} が返りました。有限の数を返してください。"
        if abs(got - expected) < 1e-9:
            continue
        if kind in ("apart", "apart_y") and got > 0:
            raise AssertionError(f"離れた箱 {a} と {b} で {got:.3g} が返りました。重なりの幅や高さが負の "
                                 "ときは 0 にします (np.maximum(…, 0)): 負と負をかけると正になってしまいます。")
        x0, y0, x1, y1 = a
        u0, v0, u1, v1 = b
        iw = max(min(x1, u1) - max(x0, u0), 0)
        ih = max(min(y1, v1) - max(y0, v0), 0)
        area_a, area_b = (x1 - x0) * (y1 - y0), (u1 - u0) * (v1 - v0)
        if iw * ih and abs(got - iw * ih / (area_a + area_b)) < 1e-9:
            raise AssertionError("和集合の面積は 面積A + 面積B − 共通部分 です。共通部分を 2 回数えています。")
        inclusive = (max(min(x1, u1) - max(x0, u0) + 1, 0) * max(min(y1, v1) - max(y0, v0) + 1, 0))
        union_inclusive = (x1 - x0 + 1) * (y1 - y0 + 1) + (u1 - u0 + 1) * (v1 - v0 + 1) - inclusive
        if abs(got - inclusive / union_inclusive) < 1e-9:
            raise AssertionError("終端を含めて +1 しています。このコースの箱は終端を含まない約束 "
                                 "(幅 = x1 − x0) です。")
        if iw * ih and abs(got - iw * ih / min(area_a, area_b)) < 1e-9:
            raise AssertionError("小さい方の箱の面積で割っています。IoU は 共通部分 ÷ 和集合 です。")
        raise AssertionError(f"箱 {a} と {b} の IoU は {expected:.4g} ですが、{got:.4g} が返りました。")
    return _ok("check_box_iou")


# ------------------------------------------------------------------------------------------------
# 3. how much of a map lies outside a region


def check_energy_outside(energy_outside: Callable[[np.ndarray, np.ndarray], float]) -> None:
    """Check ``energy_outside(cam, region) -> float``: the fraction of the map's total mass that
    lies outside the boolean ``region`` (0 for an all-zero map, never NaN)."""
    rng = np.random.default_rng(151)
    cam = rng.uniform(0, 1, (6, 7))
    cam[0, :] *= 10                      # a heavy row outside: mass, not pixel counts, decides
    region = np.zeros((6, 7), bool)
    region[2:5, 1:6] = True
    cases = [(cam, region), (np.zeros((4, 4)), np.eye(4, dtype=bool)),
             (np.ones((3, 3)), np.ones((3, 3), bool))]
    for cam, region in cases:
        cam_in, region_in = cam.copy(), region.copy()
        with np.errstate(all="ignore"):
            got = energy_outside(cam_in, region_in)
        assert np.array_equal(cam_in, cam) and np.array_equal(region_in, region), (
            "入力配列を書き換えないでください (do not modify the inputs)。")
        assert np.ndim(got) == 0, f"{np.shape(got)} の配列が返りました。1 つの数を返してください。"
        got = float(got)
        total = cam.sum()
        assert np.isfinite(got), ("NaN または inf が返りました。全部 0 のマップは外にも中にも何もないので "
                                  "0.0 を返します (0 で割らないように)。")
        expected = float(cam[~region].sum() / total) if total > 0 else 0.0
        if abs(got - expected) < 1e-9:
            continue
        if total > 0 and abs(got - cam[region].sum() / total) < 1e-9:
            raise AssertionError("それは領域の**中**の割合です。外の割合は 1 − (中の割合) です。")
        if abs(got - (~region).mean()) < 1e-9:
            raise AssertionError("外にある画素の数の割合になっています。画素の数ではなく、マップの値の "
                                 "合計 (エネルギー) の割合を求めます。")
        if (~region).any() and abs(got - cam[~region].mean()) < 1e-9:
            raise AssertionError("外の値の平均になっています。外の値の合計 ÷ 全体の合計 です。")
        raise AssertionError(f"期待値は {expected:.4g} ですが、{got:.4g} が返りました。")
    return _ok("check_energy_outside")
