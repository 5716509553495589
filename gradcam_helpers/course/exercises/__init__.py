"""Exercise support: solution markers, student copies, and per-lesson answer checkers.

Exercises in the lessons follow nbgrader's convention::

    def my_answer(...):
        ### BEGIN SOLUTION
        ...the reference solution...
        ### END SOLUTION

followed by a check cell that calls a checker from ``gradcam_helpers.course.exercises.lessonNN``. A checker
raises ``AssertionError`` with a hint when the answer is wrong. ``make student`` removes everything
between the markers, so learners get a stub to fill in.
"""
from __future__ import annotations

import re

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
#: What a learner sees when an exercise is run before it is written (the stub's exception message).
STUB_MESSAGE = "演習です: ここに答えを書いてから、次のチェックのセルを実行してください (exercise not written yet)"
STUB = f"# ここにコードを書いてください (YOUR CODE HERE)\nraise NotImplementedError({STUB_MESSAGE!r})"

_BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)" + re.escape(BEGIN) + r"[^\n]*\n.*?^[ \t]*" + re.escape(END) + r"[^\n]*$",
    re.S | re.M,
)


def has_solution(source: str) -> bool:
    """Whether a cell's source contains a solution block."""
    return BEGIN in source


def replace_solutions(source: str, replacement: str = STUB) -> str:
    """Replace every solution block with ``replacement``, indented like the block's markers.

    Raises
    ------
    ValueError
        If the markers are unbalanced (a BEGIN without END), so a broken exercise is noticed
        instead of shipping its solution to students.
    """
    if source.count(BEGIN) != source.count(END):
        raise ValueError(f"unbalanced solution markers: {source.count(BEGIN)} × '{BEGIN}', "
                         f"{source.count(END)} × '{END}'")

    def indent(match: re.Match) -> str:
        pad = match.group("indent")
        return "\n".join(pad + line if line else line for line in replacement.splitlines())

    return _BLOCK.sub(indent, source)


def split_solution_lines(source: str) -> tuple[list[str], list[str]]:
    """``(lines outside the solution blocks, lines inside them)`` of a cell, markers left out."""
    outside, inside, within = [], [], False
    for line in source.splitlines():
        if BEGIN in line:
            within = True
        elif END in line:
            within = False
        else:
            (inside if within else outside).append(line)
    return outside, inside


def solution_cells(notebook) -> dict[str, str]:
    """``{function name: cell source}`` for every cell of a notebook that holds a solution block.

    The exercise convention puts the solution inside ``def name(...)``; the first ``def`` of the
    cell names it. A quiz cell without a ``def`` (``answer_q01 = "a"`` between the markers) is
    named by the first variable its solution assigns. Tests use this to run the committed solution
    against its checker.
    """
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells: dict[str, str] = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and has_solution(cell.source):
            name = _exercise_name(cell.source)
            if name is None:
                raise ValueError(f"{notebook}: an exercise cell neither defines a function nor "
                                 f"assigns a variable in its solution:\n{cell.source}")
            if name in cells:
                raise ValueError(f"{notebook}: two exercise cells define {name}()")
            cells[name] = cell.source
    return cells


def _exercise_name(source: str) -> str | None:
    """The first ``def`` of a cell, else the first variable assigned inside its solution block."""
    found = re.search(r"^\s*def\s+(\w+)\s*\(", source, re.M)
    if found:
        return found.group(1)
    for line in split_solution_lines(source)[1]:
        found = re.match(r"\s*([A-Za-z_]\w*)\s*=(?!=)", line)
        if found:
            return found.group(1)
    return None


def define(source: str, name: str, namespace: dict | None = None):
    """Execute a cell's source in a fresh namespace (NumPy available as ``np``) and return ``name``."""
    import numpy as np

    scope = {"np": np, **(namespace or {})}
    exec(compile(source, f"<exercise {name}>", "exec"), scope)
    return scope[name]
