"""Lesson 07's exercises: the committed solutions pass their checkers, wrong answers fail."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcam_helpers.exercises import define, solution_cells, replace_solutions
from gradcam_helpers.exercises import lesson07

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_shortcut_learning.ipynb"


def _solution_cells() -> dict[str, str]:
    return solution_cells(NOTEBOOK)


def _define(source: str, name: str):
    return define(source, name)


CASES = {
    # only the top-left corner
    "corner_share": (lesson07.check_corner_share,
                     "h, w = cam.shape\nc = round(corner_size * h)\n"
                     "return float(cam[:c, :c].sum() / cam.sum())"),
    # accuracy by tag presence instead of agreement with the label
    "accuracy_by_tag": (lesson07.check_accuracy_by_tag,
                        "pred, labels, t = map(np.asarray, (pred, labels, has_tag))\n"
                        "ok = pred == labels\nreturn float(ok[t].mean()), float(ok[~t].mean())"),
}


def test_notebook_has_the_expected_exercises():
    assert set(_solution_cells()) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_solution_passes(name, capsys):
    checker, _ = CASES[name]
    checker(_define(_solution_cells()[name], name))
    assert "正解" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CASES))
def test_wrong_answer_fails(name):
    checker, wrong = CASES[name]
    source = replace_solutions(_solution_cells()[name], wrong)
    assert "BEGIN SOLUTION" not in source
    with pytest.raises(AssertionError):
        checker(_define(source, name))


@pytest.mark.parametrize("wrong, hint", [
    # squares of round(size * H) on both axes: wrong for a non-square map
    ("h, w = cam.shape\nc = max(1, round(corner_size * h))\nt = cam.sum()\n"
     "return 0.0 if t <= 0 else float((cam[:c, :c].sum() + cam[:c, -c:].sum() + "
     "cam[-c:, :c].sum() + cam[-c:, -c:].sum()) / t)", "高さと幅"),
    # no guard for the empty map
    ("h, w = cam.shape\nch, cw = round(corner_size * h), round(corner_size * w)\n"
     "return float((cam[:ch, :cw].sum() + cam[:ch, w - cw:].sum() + cam[h - ch:, :cw].sum() "
     "+ cam[h - ch:, w - cw:].sum()) / cam.sum())", "全部 0"),
    # forgets the bottom corners
    ("h, w = cam.shape\nch, cw = round(corner_size * h), round(corner_size * w)\nt = cam.sum()\n"
     "return 0.0 if t <= 0 else float((cam[:ch, :cw].sum() + cam[:ch, w - cw:].sum()) / t)",
     "左下"),
])
def test_corner_share_hints(wrong, hint):
    fn = _define(replace_solutions(_solution_cells()["corner_share"], wrong), "corner_share")
    with pytest.raises(AssertionError, match=hint):
        lesson07.check_corner_share(fn)


def test_accuracy_by_tag_hint():
    wrong = ("pred, labels, t = map(np.asarray, (pred, labels, has_tag))\n"
             "ok = pred == labels\nreturn float(ok[t].mean()), float(ok[~t].mean())")
    fn = _define(replace_solutions(_solution_cells()["accuracy_by_tag"], wrong), "accuracy_by_tag")
    with pytest.raises(AssertionError, match="一致"):
        lesson07.check_accuracy_by_tag(fn)
