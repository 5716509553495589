"""Lesson 06's exercises: the committed solutions pass their checkers, wrong answers fail."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcam_helpers.exercises import define, solution_cells, replace_solutions
from gradcam_helpers.exercises import lesson06

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "06_chest_xray_resnet.ipynb"


def _solution_cells() -> dict[str, str]:
    return solution_cells(NOTEBOOK)


def _define(source: str, name: str):
    return define(source, name)


CASES = {
    # the raw product, no spatial mean: the classic slip
    "gradcam_from_arrays": (lesson06.check_gradcam_from_arrays,
                            "return np.maximum((activations * gradients).sum(axis=0), 0)"),
    # accuracy at 0.5 instead of AUC
    "roc_auc": (lesson06.check_roc_auc,
                "return float(((np.asarray(scores) > 0.5) == np.asarray(labels)).mean())"),
    # (x, y) order mixed up
    "pointing_hit": (lesson06.check_pointing_hit,
                     "r, c = np.unravel_index(np.argmax(cam), cam.shape)\nreturn bool(mask[c % mask.shape[0], r])"),
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
    ("return np.maximum((activations * gradients).sum(axis=0), 0)", "空間方向"),
    ("return np.maximum(np.tensordot(gradients.sum(axis=(1, 2)), activations, axes=(0, 0)), 0)",
     "合計"),
    ("return np.tensordot(gradients.mean(axis=(1, 2)), activations, axes=(0, 0))", "ReLU"),
    # channels-last thinking (Keras): weights over the wrong axes, result (C, h)
    ("return np.maximum(activations @ gradients.mean(axis=(0, 1)), 0)", r"\(h, w\)"),
])
def test_gradcam_hints(wrong, hint):
    fn = _define(replace_solutions(_solution_cells()["gradcam_from_arrays"], wrong),
                 "gradcam_from_arrays")
    with pytest.raises(AssertionError, match=hint):
        lesson06.check_gradcam_from_arrays(fn)


@pytest.mark.parametrize("wrong, hint", [
    ("return float(((np.asarray(scores) > 0.5) == np.asarray(labels)).mean())", "正解率"),
    ("s = np.asarray(scores); l = np.asarray(labels)\n"
     "return float((s[l == 0][:, None] > s[l == 1][None, :]).mean())", "取り違え"),
    ("s = np.asarray(scores); l = np.asarray(labels)\n"
     "return float((s[l == 1][:, None] > s[l == 0][None, :]).mean())", "同点"),
])
def test_roc_auc_hints(wrong, hint):
    fn = _define(replace_solutions(_solution_cells()["roc_auc"], wrong), "roc_auc")
    with pytest.raises(AssertionError, match=hint):
        lesson06.check_roc_auc(fn)


def test_pointing_hint_for_empty_map():
    wrong = "r, c = np.unravel_index(np.argmax(cam), cam.shape)\nreturn bool(mask[r, c])"
    fn = _define(replace_solutions(_solution_cells()["pointing_hit"], wrong), "pointing_hit")
    with pytest.raises(AssertionError, match="全部 0"):
        lesson06.check_pointing_hit(fn)
