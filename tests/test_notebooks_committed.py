"""What is committed is usable: lessons carry their outputs, the package imports light, and the
student copies hide the solutions."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from gradcam_helpers.course.exercises import BEGIN, END, STUB, has_solution, replace_solutions, split_solution_lines

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
RAISES = "raises-exception"


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# ------------------------------------------------------------------ lessons are committed executed


def test_there_are_lessons():
    assert LESSONS, "no notebooks/[0-9]*.ipynb found"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_is_committed_executed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    assert code, f"{path.name} has no code cells"
    counts = []
    for i, cell in code:
        assert cell.execution_count is not None, (
            f"{path.name}: code cell {i} was never executed; run "
            f"`make execute NB={path.relative_to(ROOT)}` and commit the outputs")
        counts.append(cell.execution_count)
    assert counts == sorted(counts) and len(set(counts)) == len(counts), (
        f"{path.name}: execution counts {counts} are out of order — the outputs come from an "
        "interactive session, not one clean run; re-execute with `make execute`")
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {})
               for _, c in code for o in c.outputs), (
        f"{path.name}: no figure output was committed")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_errors_only_where_tagged(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if RAISES in _tags(cell):
            assert errors, (f"{path.name}: cell {i} is tagged {RAISES!r} but has no error output "
                            "(it must show the exception it is there to show)")
        else:
            assert not errors, (f"{path.name}: cell {i} has an error output "
                                f"({errors[0].ename}: {errors[0].evalue}); fix it or tag the cell "
                                f"{RAISES!r} if the error is the point")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_exercises_have_markers_in_pairs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.source.count(BEGIN) == cell.source.count(END), f"{path.name}: cell {i}"


# ------------------------------------------------------------------ the package imports light


def test_import_does_not_pull_tensorflow_or_torch():
    code = ("import gradcam_helpers, sys; "
            "heavy = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules]; "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_load_mnist_import_stays_light():
    code = ("from gradcam_helpers import load_mnist; import gradcam_helpers.course.mnist, sys; "
            "assert 'tensorflow' not in sys.modules and 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ solution markers


SOLVED = '''import numpy as np


def f(x):
    """Docstring stays."""
    y = 1
    ### BEGIN SOLUTION
    secret = x * 2
    return secret + y
    ### END SOLUTION


def g():
    if True:
        ### BEGIN SOLUTION
        return "hidden"
        ### END SOLUTION
'''


def test_replace_solutions_keeps_the_rest_and_indents():
    out = replace_solutions(SOLVED)
    assert BEGIN not in out and END not in out
    assert "secret" not in out and "hidden" not in out
    assert '"""Docstring stays."""' in out and "    y = 1" in out and "import numpy as np" in out
    stub_first, stub_second = STUB.splitlines()
    assert f"    {stub_first}\n    {stub_second}" in out
    assert f"        {stub_first}\n        {stub_second}" in out
    compile(out, "<student>", "exec")  # still valid Python
    namespace: dict = {}
    exec(out, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_replace_solutions_custom_replacement_and_no_markers():
    out = replace_solutions(SOLVED, "return -1")
    namespace: dict = {}
    exec(out, namespace)
    assert namespace["f"](5) == -1 and namespace["g"]() == -1
    plain = "x = 1\nprint(x)\n"
    assert replace_solutions(plain) == plain
    assert has_solution(SOLVED) and not has_solution(plain)


@pytest.mark.parametrize("source", [
    "def f():\n    ### BEGIN SOLUTION\n    return 1\n",
    "def f():\n    return 1\n    ### END SOLUTION\n",
    "### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n",
])
def test_unbalanced_markers_raise(source):
    with pytest.raises(ValueError, match="unbalanced"):
        replace_solutions(source)


# ------------------------------------------------------------------ student copies


def _run_student_tool(src: Path, dst: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "make_student_copies.py"),
                           str(src), str(dst)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def _solution_lines(source: str) -> list[str]:
    return [line.strip() for line in split_solution_lines(source)[1] if line.strip()]


def test_student_copies_of_the_lessons(tmp_path):
    result = _run_student_tool(ROOT / "notebooks", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in LESSONS:
        original = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / path.name, as_version=4)
        assert len(student.cells) == len(original.cells)
        for cell, orig in zip(student.cells, original.cells):
            if cell.cell_type != "code":
                assert cell.source == orig.source
                continue
            assert cell.outputs == [] and cell.execution_count is None
            assert BEGIN not in cell.source and END not in cell.source
            if has_solution(orig.source):
                assert STUB.splitlines()[0] in cell.source
                own = set(line.strip() for line in cell.source.splitlines())
                leaked = [s for s in _solution_lines(orig.source) if s in own]
                assert not leaked, f"{path.name}: solution text left in the student copy: {leaked}"
            else:
                assert cell.source == orig.source
        # the original is left untouched
        assert nbformat.read(path, as_version=4) == original


def _write_nb(path: Path, sources: list[str]) -> None:
    cells = [new_markdown_cell("# title")]
    for s in sources:
        c = new_code_cell(s)
        c.execution_count = 1
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="output\n")]
        cells.append(c)
    nbformat.write(new_notebook(cells=cells), path)


def test_student_tool_on_a_small_course(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _write_nb(src / "01_a.ipynb", [SOLVED, "print('kept')"])
    _write_nb(src / "scratch.ipynb", [SOLVED])  # not a lesson: no leading digit
    result = _run_student_tool(src, dst)
    assert result.returncode == 0, result.stderr
    assert "1 solution cell(s)" in result.stdout
    assert not (dst / "scratch.ipynb").exists()
    nb = nbformat.read(dst / "01_a.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "secret" not in code[0].source and "hidden" not in code[0].source
    assert code[1].source == "print('kept')"
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_student_tool_refuses_unbalanced_markers(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _write_nb(src / "01_bad.ipynb", ["def f():\n    ### BEGIN SOLUTION\n    return 'leak'\n"])
    result = _run_student_tool(src, dst)
    assert result.returncode != 0
    assert "unbalanced" in result.stderr
    assert not (dst / "01_bad.ipynb").exists()


# ------------------------------------------------------------------ saved outputs read well

# tqdm's text fallback ("  0%|          | 0/8") or a bar saved before it moved ("  0% |    | 0/8"):
# a "0%" that is not the end of "100%" and is followed by the bar's "|".
_STALLED_BAR = re.compile(r"(?<![0-9])0%\s?\|")
_JARGON = ("シードレッスン", "元レッスン")


def _output_texts(cell) -> list[str]:
    texts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(out.get("text", ""))
        else:
            texts.extend(v for k, v in out.get("data", {}).items() if k.startswith("text/")
                         and isinstance(v, str))
    return texts


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_saved_outputs_show_no_stalled_progress_bar(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for text in _output_texts(cell):
            match = _STALLED_BAR.search(text)
            assert match is None, (
                f"{path.name}: cell {i} keeps a progress bar at 0% "
                f"({text[max(0, match.start() - 20):match.end() + 20]!r}): a saved notebook must show the "
                "finished bar — use gradcam_helpers.engine.progress.progress instead of tqdm.auto")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lessons_name_their_sources(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for text in [cell.source, *_output_texts(cell)]:
            for word in _JARGON:
                assert word not in text, (
                    f"{path.name}: cell {i} says {word!r}, which a learner cannot follow; cite the source "
                    "article by title in the lesson's 参考文献 section and call it 参考記事 [n]")


def test_stalled_bar_pattern():
    assert _STALLED_BAR.search("Score-CAM:   0%|          | 0/8 [00:00<?, ?it/s]")
    assert _STALLED_BAR.search("training:   0% |                    | 0/40 [0.0 s]")
    assert not _STALLED_BAR.search("training: 100% |████████████████████| 40/40 [12.3 s]")
    assert not _STALLED_BAR.search("accuracy 90% | loss 0.1")
