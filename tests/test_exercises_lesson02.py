"""Lesson 02's exercises: the committed solutions pass their checkers, wrong answers fail."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcam_helpers.exercises import define, solution_cells, replace_solutions
from gradcam_helpers.exercises import lesson02

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_functional_cnn.ipynb"


def _solution_cells() -> dict[str, str]:
    return solution_cells(NOTEBOOK)


def _define(source: str, name: str):
    return define(source, name)


CASES = {
    # function name: (checker, a wrong answer a learner might write)
    "conv_output_size": (lesson02.check_conv_output_size, "return size - kernel + 1"),
    "conv_params": (lesson02.check_conv_params, "return kernel * kernel * in_channels * filters"),
    "confusion_matrix": (lesson02.check_confusion_matrix,
                         "cm = np.zeros((num_classes, num_classes), dtype=int)\n"
                         "np.add.at(cm, (y_pred, y_true), 1)\nreturn cm"),
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


def test_student_stub_does_not_pass():
    source = replace_solutions(_solution_cells()["conv_params"])
    with pytest.raises(NotImplementedError):
        lesson02.check_conv_params(_define(source, "conv_params"))


def test_transposed_confusion_matrix_gets_the_specific_hint():
    def transposed(y_true, y_pred, k):
        cm = np.zeros((k, k), int)
        np.add.at(cm, (y_pred, y_true), 1)
        return cm

    with pytest.raises(AssertionError, match="行と列が逆"):
        lesson02.check_confusion_matrix(transposed)
