"""Lesson 05 exercises: the committed solutions pass their checkers, and wrong answers fail them."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytest.importorskip("keras")

from gradcam_helpers.exercises import define, solution_cells, STUB, replace_solutions  # noqa: E402
from gradcam_helpers.exercises import lesson05  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_sequential_pitfall.ipynb"

# exercise function -> its checker
EXERCISES = {
    "make_grad_model": lesson05.check_make_grad_model,
    "find_layer_path": lesson05.check_find_layer_path,
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
    stub = replace_solutions(_solution_cell(name))
    assert STUB.splitlines()[0] in stub
    with pytest.raises((NotImplementedError, AssertionError)):
        EXERCISES[name](_define(stub, name))


WRONG = [
    # the seed lesson's line: model.output is undefined on a Sequential model
    ("make_grad_model",
     "return keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])",
     "outputs[0]"),
    ("make_grad_model",
     "return keras.Model(model.inputs, [model.layers[0].output, model.outputs[0]])",
     "一致しません"),
    ("make_grad_model", "return keras.Model(model.inputs, model.outputs[0])", "2 つ"),
    # looks one level deep only
    ("find_layer_path",
     "for layer in model.layers:\n"
     "    if layer.name == name:\n"
     "        return layer.name\n"
     "    for sub in getattr(layer, 'layers', []):\n"
     "        if sub.name == name:\n"
     "            return f'{layer.name}/{sub.name}'\n"
     "return None", "再帰"),
    # finds the layer but forgets the path
    ("find_layer_path",
     "for layer in getattr(model, 'layers', []):\n"
     "    if layer.name == name or find_layer_path(layer, name) is not None:\n"
     "        return name\n"
     "return None", "経路"),
    ("find_layer_path", "return name", "経路"),
]


@pytest.mark.parametrize("name, wrong, hint", WRONG)
def test_checker_rejects_wrong_answer(name, wrong, hint):
    fn = _define(replace_solutions(_solution_cell(name), wrong), name)
    with pytest.raises(AssertionError) as info:
        EXERCISES[name](fn)
    if hint is not None:
        assert hint in str(info.value)
