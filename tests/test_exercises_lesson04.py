"""Lesson 04 exercises: the committed solutions pass their checkers, and wrong answers fail them."""
from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from gradcam_helpers.exercises import define, solution_cells, STUB, replace_solutions
from gradcam_helpers.exercises import lesson04

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_gradcam.ipynb"

# exercise function -> its checker
EXERCISES = {
    "gradcam_maps": lesson04.check_gradcam_maps,
    "normalize_per_image": lesson04.check_normalize_per_image,
    "points_inside": lesson04.check_points_inside,
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
    # the seed code's mistake: one set of weights for the whole batch
    ("gradcam_maps", "return np.maximum(np.einsum('nhwk,k->nhw', activations, "
                     "gradients.mean(axis=(0, 1, 2))), 0)", "バッチ軸"),
    ("gradcam_maps", "return np.einsum('nhwk,nk->nhw', activations, gradients.mean(axis=(1, 2)))",
     "ReLU"),
    ("gradcam_maps", "return np.maximum(np.einsum('nhwk,nk->nhw', activations, "
                     "gradients.sum(axis=(1, 2))), 0)", "平均"),
    ("gradcam_maps", "return np.maximum((activations * gradients).sum(axis=-1), 0)", None),
    ("gradcam_maps", "return np.maximum(np.einsum('nhwk,nk->nhw', activations, "
                     "gradients.mean(axis=(1, 2))), 0).mean(axis=0)", "形"),
    ("normalize_per_image", "return maps / maps.max(axis=(1, 2), keepdims=True)", "NaN"),
    ("normalize_per_image", "return maps / maps.max()", "画像ごと"),
    ("normalize_per_image",
     "lo = maps.min(axis=(1, 2), keepdims=True)\n"
     "hi = maps.max(axis=(1, 2), keepdims=True)\n"
     "return np.divide(maps - lo, hi - lo, out=np.zeros_like(maps), where=hi > lo)", "min-max"),
    ("points_inside",
     "y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
     "x0, y0, x1, y1 = box\n"
     "return bool(cam_map.max() > 0 and x0 <= x <= x1 and y0 <= y <= y1)", "含まない"),
    ("points_inside",
     "x, y = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
     "x0, y0, x1, y1 = box\n"
     "return bool(cam_map.max() > 0 and x0 <= x < x1 and y0 <= y < y1)", "逆"),
    ("points_inside",
     "y, x = np.unravel_index(np.argmax(cam_map), cam_map.shape)\n"
     "x0, y0, x1, y1 = box\n"
     "return bool(x0 <= x < x1 and y0 <= y < y1)", "全部 0"),
]


@pytest.mark.parametrize("name, wrong, hint", WRONG)
def test_checker_rejects_wrong_answer(name, wrong, hint):
    fn = _define(replace_solutions(_solution_cell(name), wrong), name)
    with pytest.raises(AssertionError) as info:
        EXERCISES[name](fn)
    if hint is not None:
        assert hint in str(info.value)


def test_gradcam_checker_rejects_input_mutation():
    def in_place(activations, gradients):
        gradients -= gradients.mean(axis=0)       # changes the caller's array
        return np.maximum(np.einsum("nhwk,nk->nhw", activations, gradients.mean(axis=(1, 2))), 0)

    with pytest.raises(AssertionError, match="書き換え"):
        lesson04.check_gradcam_maps(in_place)
