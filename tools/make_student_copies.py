"""Write student copies of the lessons: solutions replaced by stubs, outputs cleared.

Usage: python tools/make_student_copies.py notebooks build/student [--keep-outputs]

``--keep-outputs`` (used by ``make book STUDENT=1``) keeps the outputs a learner may see before
answering — the lesson's own figures and prints — and clears only those that give an answer away:
the outputs of each solution cell and of the check cell that follows it (a check prints the answer
and its explanation once it passes).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from gradcam_helpers.course.exercises import has_solution, replace_solutions

CHECK_CALL = re.compile(r"\bcheck_\w+\(")


def student_copy(src: Path, dst: Path, keep_outputs: bool = False) -> int:
    """Write the student copy of lesson ``src`` to ``dst``; return the number of solution cells.

    With ``keep_outputs=False`` every output and execution count is cleared. With
    ``keep_outputs=True`` only the solution cells and the first code cell after each of them that
    calls a checker (``check_…(``) lose their outputs.
    """
    nb = nbformat.read(src, as_version=4)
    stripped = 0
    answer_shown = False  # a solution cell was seen and its check cell has not come yet
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        clear = not keep_outputs
        if has_solution(cell.source):
            cell.source = replace_solutions(cell.source)
            stripped += 1
            clear, answer_shown = True, True
        elif answer_shown and CHECK_CALL.search(cell.source):
            clear, answer_shown = True, False
        if clear:
            cell.outputs = []
            cell.execution_count = None
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return stripped


def main(argv: list[str]) -> int:
    keep = "--keep-outputs" in argv
    args = [a for a in argv if a != "--keep-outputs"]
    if len(args) != 2:
        print(__doc__)
        return 2
    src_dir, dst_dir = args
    sources = sorted(Path(src_dir).glob("[0-9]*.ipynb"))
    if not sources:
        print(f"no lessons found in {src_dir}")
        return 1
    for src in sources:
        n = student_copy(src, Path(dst_dir) / src.name, keep_outputs=keep)
        print(f"{src.name}: {n} solution cell(s) replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
