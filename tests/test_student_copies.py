"""`make student` gives learners something that works: for every lesson the copy differs from the
lesson only inside the solution blocks (checks kept, nothing else changed), and a copy *run* in a
kernel — one Keras and one PyTorch lesson — gets through the cells before its first exercise (see
EXECUTED for the one exception) and then stops at that exercise's check with the learner-facing
message."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gradcam_helpers.course.exercises import (
    BEGIN,
    END,
    STUB,
    STUB_MESSAGE,
    has_solution,
    replace_solutions,
    split_solution_lines,
)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CHECK_CALL = re.compile(r"\bcheck_\w+\(")

# One lesson per framework, executed in a kernel up to its first exercise's check. Lesson 07 trains
# two ResNets before its exercises (minutes on a laptop CPU), so there the cells from the one that
# trains (marked by the string below) up to the exercise are left out: they are the lesson's own
# cells, unchanged in the copy (test_copy_differs_only_inside_solution_blocks) and run by
# `make test` with the lesson itself.
EXECUTED = {"keras": ("03_cam.ipynb", None),
            "torch": ("07_shortcut_learning.ipynb", "train_xray_resnet(")}


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "make_student_copies.py"),
                             str(ROOT / "notebooks"), str(out)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def _first_exercise(nb) -> tuple[int, int]:
    """In a student copy: (index of the first exercise cell, index of the cell that checks it)."""
    first = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and STUB.splitlines()[0] in c.source)
    check = next(i for i in range(first + 1, len(nb.cells))
                 if nb.cells[i].cell_type == "code" and CHECK_CALL.search(nb.cells[i].source))
    return first, check


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_copy_differs_only_inside_solution_blocks(path, student_dir):
    original = nbformat.read(path, as_version=4)
    student = nbformat.read(student_dir / path.name, as_version=4)
    assert student.metadata.get("kernelspec") == original.metadata.get("kernelspec")
    assert len(student.cells) == len(original.cells)
    for i, (cell, orig) in enumerate(zip(student.cells, original.cells)):
        where = f"{path.name} cell {i}"
        assert cell.cell_type == orig.cell_type, where
        assert cell.get("metadata", {}).get("tags") == orig.get("metadata", {}).get("tags"), where
        if cell.cell_type != "code":
            assert cell.source == orig.source, where
            continue
        assert cell.outputs == [] and cell.execution_count is None, where
        if has_solution(orig.source):
            # the solution is gone, the stub is there, every other line is kept as it was
            assert BEGIN not in cell.source and END not in cell.source, where
            assert cell.source == replace_solutions(orig.source), where
            assert STUB.splitlines()[0] in cell.source, where
            kept = [line for line in cell.source.splitlines()
                    if line.strip() not in {s.strip() for s in STUB.splitlines()}]
            assert kept == split_solution_lines(orig.source)[0], where
        else:
            assert cell.source == orig.source, where


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_every_exercise_keeps_its_check(path, student_dir):
    student = nbformat.read(student_dir / path.name, as_version=4)
    code = [c for c in student.cells if c.cell_type == "code"]
    for k, cell in enumerate(code):
        if STUB.splitlines()[0] not in cell.source:
            continue
        rest = [cell.source] + [c.source for c in code[k + 1:k + 3]]
        assert any(CHECK_CALL.search(s) for s in rest), (
            f"{path.name}: the exercise cell {cell.source[:60]!r} has no check within two cells")


def test_lessons_with_exercises_exist():
    with_exercises = [p for p in LESSONS
                      if any(has_solution(c.source) for c in nbformat.read(p, as_version=4).cells
                             if c.cell_type == "code")]
    assert len(with_exercises) >= 2
    for name, _ in EXECUTED.values():
        assert ROOT / "notebooks" / name in with_exercises, name


@pytest.mark.slow
@pytest.mark.parametrize("framework", sorted(EXECUTED))
def test_student_copy_runs_until_its_first_exercise_check(framework, student_dir):
    from nbclient import NotebookClient

    name, slow = EXECUTED[framework]
    nb = nbformat.read(student_dir / name, as_version=4)
    first, check = _first_exercise(nb)
    if slow is None:
        nb.cells = nb.cells[:check + 1]
    else:
        cut = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and slow in c.source)
        assert cut < first, f"{name}: {slow!r} is not before the first exercise"
        nb.cells = nb.cells[:cut] + nb.cells[first:check + 1]
        first, check = cut, cut + (check - first)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()
    for i, cell in enumerate(nb.cells[:check]):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        assert not errors, (f"student copy of {name}: cell {i} fails before the first exercise: "
                            f"{errors[0].ename}: {errors[0].evalue}")
    errors = [o for o in nb.cells[check].outputs if o.output_type == "error"]
    assert errors, f"student copy of {name}: the first exercise's check passed without an answer"
    assert errors[0].ename == "NotImplementedError", errors[0].ename
    assert errors[0].evalue == STUB_MESSAGE
    imported = {"keras": "keras", "torch": "torch"}[framework]
    assert any(imported in c.source for c in nb.cells[:first] if c.cell_type == "code"), (
        f"{name} is not a {framework} lesson")
