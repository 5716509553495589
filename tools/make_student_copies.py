"""Write student copies of the lessons: solutions replaced by stubs, outputs cleared.

Usage: python tools/make_student_copies.py notebooks build/student
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from gradcam_helpers.course.exercises import has_solution, replace_solutions


def student_copy(src: Path, dst: Path) -> int:
    nb = nbformat.read(src, as_version=4)
    stripped = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            if has_solution(cell.source):
                cell.source = replace_solutions(cell.source)
                stripped += 1
            cell.outputs = []
            cell.execution_count = None
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return stripped


def main(src_dir: str, dst_dir: str) -> int:
    sources = sorted(Path(src_dir).glob("[0-9]*.ipynb"))
    if not sources:
        print(f"no lessons found in {src_dir}")
        return 1
    for src in sources:
        n = student_copy(src, Path(dst_dir) / src.name)
        print(f"{src.name}: {n} solution cell(s) replaced")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
