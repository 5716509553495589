"""Answer checkers for lesson 11 (auditing a whole dataset).

Each checker calls the learner's function on small audit tables (pandas DataFrames with the
columns of :func:`gradcam_helpers.audit.schema`) whose answers are known, and raises
``AssertionError`` with a hint in Japanese when an answer is wrong.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _table():
    """Ten rows: hospital a (4 rows, one unreadable), hospital b (6 rows); flags chosen so that
    forgetting the error row, or averaging over all hospitals, gives another answer."""
    import pandas as pd

    return pd.DataFrame({
        "path": [f"h{i}.png" for i in range(10)],
        "folder": ["hospital_a"] * 4 + ["hospital_b"] * 6,
        "label": [0, 1, 1, 0, 1, 1, 0, 1, 0, 1],
        "pred": [0, 0, 1, None, 1, 1, 1, 1, 0, 0],
        "flag_corner": [False, True, False, None, True, True, True, True, False, False],
        "error": [None, None, None, "ValueError: broken", None, None, None, None, None, None],
    })


def check_flag_rate_by_folder(fn: Callable) -> None:
    """Exercise 1: ``fn(df, flag)`` -> dict folder -> share of the folder's *audited* images
    (``error`` is null) whose column ``flag`` is True."""
    df = _table()
    got = fn(df.copy(), "flag_corner")
    assert isinstance(got, dict), f"dict (フォルダ名 -> 割合) を返してください。得られた型: {type(got).__name__}"
    assert set(got) == {"hospital_a", "hospital_b"}, (
        f"キーはフォルダ名 (hospital_a, hospital_b) です。得られたキー: {sorted(got)}")
    assert np.isclose(float(got["hospital_b"]), 4 / 6), (
        f"hospital_b は 6 枚中 4 枚にフラグがあるので 0.667 のはずが {float(got['hospital_b']):.3f} でした。")
    assert np.isclose(float(got["hospital_a"]), 1 / 3), (
        "読めなかった画像 (error が空でない行) を除いていますか? hospital_a で監査できたのは 3 枚、"
        f"そのうちフラグは 1 枚なので 0.333 のはずが {float(got['hospital_a']):.3f} でした。")
    other = df.assign(flag_uniform=[True] * 10)
    got = fn(other, "flag_uniform")
    assert np.isclose(float(got["hospital_a"]), 1.0), "引数 flag の列を使っていますか?"
    print("正解です! フォルダ (病院) ごとのフラグの割合を計算できました。")


def check_accuracy_without_flag(fn: Callable) -> None:
    """Exercise 2: ``fn(df, flag)`` -> ``(with_flag, without_flag)``: accuracy (``pred ==
    label``) on the audited images whose ``flag`` is True, and on those whose ``flag`` is
    False."""
    df = _table()
    got = fn(df.copy(), "flag_corner")
    assert isinstance(got, tuple) and len(got) == 2, "(フラグあり, フラグなし) の 2 つを返してください。"
    flagged, unflagged = map(float, got)
    # flagged: rows 1, 4, 5, 6, 7 -> correct 4, 5, 7 -> 3/5
    # unflagged, audited: rows 0, 2, 8, 9 -> correct 0, 2, 8 -> 3/4
    assert np.isclose(flagged, 3 / 5), (
        f"フラグのある 5 枚のうち正解は 3 枚なので 0.6 のはずが {flagged:.3f} でした。")
    assert np.isclose(unflagged, 3 / 4), (
        "読めなかった画像を除いていますか? フラグのない画像 (監査できたもの) は 4 枚、正解は 3 枚なので "
        f"0.75 のはずが {unflagged:.3f} でした。")
    print("正解です! フラグのある画像とない画像で正解率を比べられました。")
