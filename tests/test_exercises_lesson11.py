"""Lesson 11's exercises: the committed solutions pass their checkers, wrong answers fail."""
from __future__ import annotations

from pathlib import Path

import pytest

from gradcam_helpers.exercises import define, replace_solutions, solution_cells
from gradcam_helpers.exercises import lesson11

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "11_dataset_audit.ipynb"

CASES = {
    # counts the unreadable image's row (its flag is None, read as False)
    "flag_rate_by_folder": (lesson11.check_flag_rate_by_folder,
                            "return df[flag].fillna(False).astype(bool)"
                            ".groupby(df['folder']).mean().to_dict()", "読めなかった"),
    # accuracy over all rows, flagged or not, for both numbers
    "accuracy_with_and_without": (lesson11.check_accuracy_without_flag,
                                  "ok = df[df['error'].isna()]\n"
                                  "a = float((ok['pred'] == ok['label']).mean())\nreturn a, a",
                                  "フラグのある 5 枚"),
}


def test_notebook_has_the_expected_exercises():
    assert set(solution_cells(NOTEBOOK)) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_committed_solution_passes(name, capsys):
    checker, _, _ = CASES[name]
    checker(define(solution_cells(NOTEBOOK)[name], name))
    assert "正解" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(CASES))
def test_wrong_answer_fails_with_its_hint(name):
    checker, wrong, hint = CASES[name]
    source = replace_solutions(solution_cells(NOTEBOOK)[name], wrong)
    assert "BEGIN SOLUTION" not in source
    with pytest.raises(AssertionError, match=hint):
        checker(define(source, name))
