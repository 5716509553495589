"""Lesson 03's exercises: the committed solutions pass their checkers, wrong answers fail."""
from __future__ import annotations

from pathlib import Path

import pytest

from gradcam_helpers.exercises import define, solution_cells, replace_solutions
from gradcam_helpers.exercises import lesson03

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_cam.ipynb"


def _solution_cells() -> dict[str, str]:
    return solution_cells(NOTEBOOK)


def _define(source: str, name: str):
    return define(source, name)


CASES = {
    "cam_by_hand": (lesson03.check_cam_by_hand, "return features @ weights[:, cls]"),  # no ReLU
    "normalize_map": (lesson03.check_normalize_map, "return m / m.max()"),           # 0 / 0
    "bgr_to_rgb": (lesson03.check_bgr_to_rgb, "return image"),
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
    ("return np.maximum(features @ weights[:, 0], 0)", "クラス 1 の CAM が違います"),  # always class 0
    ("return np.maximum(features.sum(-1), 0)", "CAM が違います"),
])
def test_cam_checker_rejects_other_mistakes(wrong, hint):
    source = replace_solutions(_solution_cells()["cam_by_hand"], wrong)
    with pytest.raises(AssertionError, match=hint):
        lesson03.check_cam_by_hand(_define(source, "cam_by_hand"))


def test_flipping_the_image_instead_of_the_channels_gets_a_hint():
    with pytest.raises(AssertionError, match="上下や左右"):
        lesson03.check_bgr_to_rgb(lambda img: img[:, ::-1])
