"""Lesson 01 exercises: the committed solutions pass their checkers, and wrong answers fail them."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from gradcam_helpers.exercises import define, solution_cells, STUB, replace_solutions
from gradcam_helpers.exercises import lesson01

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_mnist_data.ipynb"

# exercise function -> its checker
EXERCISES = {
    "normalize": lesson01.check_normalize,
    "class_counts": lesson01.check_class_counts,
    "ink_box": lesson01.check_ink_box,
}


def _solution_cell(name: str) -> str:
    return solution_cells(NOTEBOOK)[name]


def _define(source: str, name: str):
    return define(source, name)


def test_every_exercise_has_a_check_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    for name, checker in EXERCISES.items():
        assert any(f"{checker.__name__}({name})" in s for s in sources), name


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_committed_solution_passes(name, capsys):
    fn = _define(_solution_cell(name), name)
    EXERCISES[name](fn)
    assert "正解" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_student_stub_does_not_pass(name):
    fn = _define(replace_solutions(_solution_cell(name)), name)
    assert STUB.splitlines()[0] in replace_solutions(_solution_cell(name))
    with pytest.raises((NotImplementedError, AssertionError)):
        EXERCISES[name](fn)


WRONG = [
    ("normalize", "return np.expand_dims(raw / 256.0, -1)", "255"),
    ("normalize", "return raw / 255.0", "チャンネル軸"),
    ("normalize", "return np.expand_dims(raw // 255, -1)", "float"),
    ("normalize", "return np.expand_dims(raw / raw.max(), -1)", None),
    ("class_counts", "return np.unique(labels, return_counts=True)[1]", "長さ 10"),
    ("class_counts", "return np.bincount(labels)", "長さ 10"),
    ("class_counts", "return np.full(10, len(labels) // 10)", "期待値"),
    ("ink_box", "ys, xs = np.nonzero(image > threshold)\n"
                "return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())", "終端"),
    ("ink_box", "ys, xs = np.nonzero(image > threshold)\n"
                "return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1", "逆"),
    ("ink_box", "ys, xs = np.nonzero(image > 0)\n"
                "return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1",
     "threshold"),
    ("ink_box", "return 0, 0, image.shape[1], image.shape[0]", None),
]


@pytest.mark.parametrize("name, wrong, hint", WRONG)
def test_checker_rejects_wrong_answer(name, wrong, hint):
    fn = _define(replace_solutions(_solution_cell(name), wrong), name)
    with pytest.raises(AssertionError) as info:
        EXERCISES[name](fn)
    if hint is not None:
        assert hint in str(info.value)


def test_normalize_checker_rejects_input_mutation():
    def in_place(raw):
        raw[...] = 0
        return np.expand_dims(raw / 255.0, -1)

    with pytest.raises(AssertionError, match="書き換え"):
        lesson01.check_normalize(in_place)
