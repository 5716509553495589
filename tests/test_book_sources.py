"""What ``make book`` puts in the book, checked on the staged sources (no Sphinx, no browser).

The contents follow the repository: the lessons and their order from ``notebooks/``, the API pages
from the package's modules on disk, the glossary when ``docs/glossary.md`` exists, with its links
rewritten for the site. The student book keeps the lessons' figures and hides every answer.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_book  # noqa: E402
from make_student_copies import student_copy  # noqa: E402

from gradcam_helpers.course.exercises import BEGIN, END, has_solution  # noqa: E402

IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")


def test_lessons_and_titles_follow_the_notebooks_folder(tmp_path):
    for name, title in [("01_b.ipynb", "# 01 二番目"), ("00_a.ipynb", "## 00 最初"), ("notes.ipynb", "# x")]:
        nb = new_notebook(cells=[new_code_cell("1"), new_markdown_cell(f"前置き\n\n{title}\n\n本文")])
        nbformat.write(nb, tmp_path / name)
    paths = build_book.lesson_paths(tmp_path)
    assert [p.name for p in paths] == ["00_a.ipynb", "01_b.ipynb"]   # sorted, numbered ones only
    assert [build_book.lesson_title(p) for p in paths] == ["00 最初", "01 二番目"]
    nbformat.write(new_notebook(cells=[new_markdown_cell("見出しなし")]), tmp_path / "02_c.ipynb")
    with pytest.raises(ValueError, match="no Markdown heading"):
        build_book.lesson_title(tmp_path / "02_c.ipynb")


def test_public_modules_are_found_on_disk():
    found = build_book.public_modules()
    package = ROOT / "gradcam_helpers"
    expected = {"gradcam_helpers"}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(p.startswith("_") for p in parts[1:]):
            continue
        expected.add(".".join(parts))
    assert set(found) == expected
    assert found == sorted(found)
    assert "gradcam_helpers.audit.__main__" not in found
    assert not [name for name in found if any(part.startswith("_") for part in name.split(".")[1:])]


def test_glossary_links_are_rewritten_for_the_site(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    glossary = docs / "glossary.md"
    lesson = build_book.lesson_paths()[0]
    glossary.write_text(
        f"# 用語集\n\n[CAM](../notebooks/{lesson.name}#sec) と [README](../README.md)、"
        "[外](https://example.org/x) と [節](#map)。\n\n![図](../docs/explorer.png)\n",
        encoding="utf-8")
    monkeypatch.setattr(build_book, "GLOSSARY", glossary)
    src = tmp_path / "src"
    # the glossary's folder stands where docs/ is, so ../notebooks and ../README.md resolve in ROOT
    text = build_book._rewrite_links(glossary.read_text(encoding="utf-8"),
                                     ROOT / "docs" / "glossary.md", src)
    assert f"[CAM](lessons/{lesson.stem}.ipynb#sec)" in text
    assert "README (`README.md`)" in text                      # not served by the site: plain text
    assert "[外](https://example.org/x)" in text and "[節](#map)" in text  # left as they are
    assert "![図](_repo/docs/explorer.png)" in text
    assert (src / "_repo" / "docs" / "explorer.png").read_bytes() == \
        (ROOT / "docs" / "explorer.png").read_bytes()
    assert build_book.stage_glossary(src) is True and (src / "glossary.md").is_file()
    glossary.unlink()
    assert build_book.stage_glossary(src) is False and not (src / "glossary.md").exists()


def _exercise_notebook() -> nbformat.NotebookNode:
    def stream(text):
        return new_output("stream", name="stdout", text=text)

    cells = [
        new_markdown_cell("# 99 テスト"),
        new_code_cell("print('lesson')", outputs=[stream("lesson output\n")], execution_count=1),
        new_code_cell(f"def f():\n    {BEGIN}\n    return 42\n    {END}",
                      outputs=[stream("solution output\n")], execution_count=2),
        new_code_cell("check_f(f)", outputs=[stream("check_f: 正解です！ 答え 42\n")], execution_count=3),
        new_code_cell("check_other()", outputs=[stream("a later check, not an exercise's\n")],
                      execution_count=4),
    ]
    return new_notebook(cells=cells)


def test_student_copy_keeps_outputs_except_the_answers(tmp_path):
    src = tmp_path / "99_x.ipynb"
    nbformat.write(_exercise_notebook(), src)
    assert student_copy(src, tmp_path / "kept.ipynb", keep_outputs=True) == 1
    kept = nbformat.read(tmp_path / "kept.ipynb", as_version=4).cells
    assert [len(c.get("outputs", [])) for c in kept[1:]] == [1, 0, 0, 1]
    assert [c.get("execution_count") for c in kept[1:]] == [1, None, None, 4]
    assert BEGIN not in kept[2].source and "42" not in kept[2].source
    assert student_copy(src, tmp_path / "plain.ipynb") == 1     # make student: no outputs at all
    plain = nbformat.read(tmp_path / "plain.ipynb", as_version=4).cells
    assert all(c.outputs == [] for c in plain if c.cell_type == "code")


def test_student_book_sources_hide_the_answers_and_keep_the_figures(tmp_path):
    src = tmp_path / "book-student-src"
    names = build_book.stage_lessons(src, student=True)
    assert names == [p.stem for p in build_book.lesson_paths()]
    kept_images = 0
    for path in build_book.lesson_paths():
        # the lesson as the full book shows it (a widget's note made visible), then compared
        original = nbformat.reads(build_book.for_the_book(path.read_bytes()).decode("utf-8"),
                                  as_version=4).cells
        staged = nbformat.read(src / "lessons" / path.name, as_version=4).cells
        answer_cells = set()
        for i, cell in enumerate(original):
            if cell.cell_type == "code" and has_solution(cell.source):
                answer_cells.add(i)
                check = next((j for j in range(i + 1, len(original))
                              if original[j].cell_type == "code"), None)
                if check is not None and re.search(r"\bcheck_\w+\(", original[check].source):
                    answer_cells.add(check)
        for i, (orig, cell) in enumerate(zip(original, staged, strict=True)):
            if cell.cell_type != "code":
                continue
            assert BEGIN not in cell.source and END not in cell.source, (path.name, i)
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert "正解です" not in text, (path.name, i)   # a passed check gives the answer away
            if i in answer_cells:
                assert cell.outputs == [], (path.name, i)
            else:
                assert cell.outputs == orig.outputs, (path.name, i)
                kept_images += sum(any(m in o.get("data", {}) for m in IMAGE_MIMES)
                                   for o in cell.outputs)
    assert kept_images > 10


def test_landing_page_lists_the_lessons_and_links_the_exam_review(tmp_path):
    src = tmp_path / "book-src"
    names = build_book.stage_lessons(src, student=False)
    build_book.stage_index(src, names, glossary=False, student=False)
    index = (src / "index.md").read_text(encoding="utf-8")
    assert "@@" not in index
    toc = re.findall(r"^lessons/(\S+)$", index, re.M)
    assert toc == names
    exam = [p for p in build_book.lesson_paths() if "E資格" in build_book.lesson_title(p)]
    if exam:
        assert f"(lessons/{exam[0].stem}.ipynb)" in index
    assert "glossary" not in re.findall(r"^\w+$", index, re.M)
    build_book.stage_index(src, names, glossary=True, student=True)
    index = (src / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^glossary$", index, re.M) and "学生用" in index


def test_a_widget_output_becomes_a_visible_note():
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    plain = "[インタラクティブな部品: JupyterLab で <実行> すると操作できます]"
    nb = new_notebook(cells=[
        new_markdown_cell("# 99 x"),
        new_code_cell("explore()", outputs=[new_output(
            "display_data", data={build_book.WIDGET_VIEW: view, "text/plain": plain})]),
        new_code_cell("1", outputs=[new_output("execute_result", data={"text/plain": "1"},
                                               execution_count=1)])])
    raw = nbformat.writes(nb).encode("utf-8")
    shown = nbformat.reads(build_book.for_the_book(raw).decode("utf-8"), as_version=4)
    data = shown.cells[1].outputs[0]["data"]
    assert data["text/html"] == ('<p class="widget-needs-kernel">インタラクティブな部品: JupyterLab で '
                                 '&lt;実行&gt; すると操作できます</p>')
    assert data[build_book.WIDGET_VIEW] == view and data["text/plain"] == plain
    assert shown.cells[2] == nb.cells[2]
    without = nbformat.writes(new_notebook(cells=[nb.cells[2]])).encode("utf-8")
    assert build_book.for_the_book(without) is without        # untouched, byte for byte
