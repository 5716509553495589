"""Build the course's book: a static site of the executed lessons (Sphinx + MyST-NB).

Usage::

    python tools/build_book.py                 # the full book (with solutions) -> build/book/
    python tools/build_book.py --student       # solutions removed             -> build/book-student/
    python tools/build_book.py --strict        # warnings are errors (the browser test builds so)

Nothing is executed: each page shows the lesson with the outputs it was committed with. What is in
the book follows what is in the repository, with no list kept here:

- the lessons are ``notebooks/[0-9]*.ipynb`` in name order, each titled by its first heading;
- the glossary is ``docs/glossary.md`` when that file exists (left out, with a note, when not);
- the API reference has one page per public module of ``gradcam_helpers`` found at build time
  (any module or package whose dotted name has no part starting with ``_``), each documented from
  its docstrings by ``automodule``, and a table of the flat API ``gradcam_helpers.__all__``.

The sources are staged in ``build/book-src/`` (``build/book-student-src/``); files are rewritten
only when their content changed, so a second build is incremental.
"""
from __future__ import annotations

import argparse
import hashlib
import html
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"            # conf.py, the landing page's template, the style sheet
PACKAGE = "gradcam_helpers"
GLOSSARY = ROOT / "docs" / "glossary.md"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ROLE = re.compile(r":(?:py:)?\w+:`~?(?:[^`<]*<)?(?P<target>[^`>]+)>?`")
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s]+)\)")
IMAGE = re.compile(r"!\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")


# ------------------------------------------------------------------------------------- helpers


def write_if_changed(path: Path, content: str | bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that (keeps Sphinx incremental)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def lesson_paths(notebooks: Path = ROOT / "notebooks") -> list[Path]:
    """The lessons, in order: ``notebooks/[0-9]*.ipynb`` sorted by name."""
    return sorted(notebooks.glob("[0-9]*.ipynb"))


def lesson_title(path: Path) -> str:
    """The text of a lesson's first Markdown heading (what Sphinx uses as the page title)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"#+\s+(.*\S)", line)
            if match:
                return match.group(1)
    raise ValueError(f"{path.name} has no Markdown heading: the book needs one as the page title")


def public_modules(package: str = PACKAGE) -> list[str]:
    """Dotted names of the package's public modules and subpackages, found on disk at build time.

    A name is public when none of its parts starts with ``_`` (so ``__main__`` and ``_common`` are
    left out). Subpackages are imported to find their contents (``pkgutil.walk_packages``); the
    modules themselves are imported later, by autodoc.
    """
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names.append(info.name)
    return sorted(names)


# ------------------------------------------------------------------------------------- staging


def for_the_book(notebook: bytes) -> bytes:
    """A lesson as the book shows it: a live widget's output becomes a visible note.

    A widget (the explorer, a progress bar) needs a running kernel. Its saved output carries a
    text form, which for the explorer says so in Japanese and points at the static figure drawn
    below it; the book shows that text as a highlighted paragraph (``text/html``) instead of an
    empty widget. Everything else is left as committed.
    """
    nb = nbformat.reads(notebook.decode("utf-8"), as_version=4)
    changed = False
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/plain" in data and "text/html" not in data:
                text = data["text/plain"].strip()
                if text.startswith("[") and text.endswith("]"):
                    text = text[1:-1]
                data["text/html"] = f'<p class="widget-needs-kernel">{html.escape(text)}</p>'
                changed = True
    return nbformat.writes(nb).encode("utf-8") if changed else notebook


def stage_lessons(src_dir: Path, student: bool) -> list[str]:
    """Copy the lessons (or their student copies, outputs kept) into ``src_dir/lessons``."""
    lessons = lesson_paths()
    if not lessons:
        raise RuntimeError("no lessons: notebooks/[0-9]*.ipynb is empty")
    target = src_dir / "lessons"
    target.mkdir(parents=True, exist_ok=True)
    names = []
    if student:
        sys.path.insert(0, str(ROOT / "tools"))
        from make_student_copies import student_copy

        scratch = src_dir.parent / (src_dir.name + "-copies")
        for path in lessons:
            student_copy(path, scratch / path.name, keep_outputs=True)
            write_if_changed(target / path.name, for_the_book((scratch / path.name).read_bytes()))
            names.append(path.stem)
    else:
        for path in lessons:
            write_if_changed(target / path.name, for_the_book(path.read_bytes()))
            names.append(path.stem)
    for stale in target.glob("*.ipynb"):  # a lesson renamed or removed since the last build
        if stale.stem not in names:
            stale.unlink()
    return names


def _rewrite_links(text: str, origin: Path, src_dir: Path) -> str:
    """Make a Markdown file's relative links work from the book's root.

    Links to lessons go to their pages; images are copied into the book; links to other files of
    the repository (which the site does not serve) become plain text naming the file.
    """
    lessons = {p.resolve(): p.stem for p in lesson_paths()}

    def resolve(target: str) -> tuple[Path | None, str]:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
            return None, ""
        path, _, anchor = target.partition("#")
        return (origin.parent / path).resolve(), ("#" + anchor if anchor else "")

    def image(match: re.Match) -> str:
        path, _ = resolve(match.group("target"))
        if path is None or not path.is_file():
            return match.group(0)
        rel = path.relative_to(ROOT)
        write_if_changed(src_dir / "_repo" / rel, path.read_bytes())
        return f"![{match.group('text')}](_repo/{rel.as_posix()})"

    def link(match: re.Match) -> str:
        path, anchor = resolve(match.group("target"))
        if path is None:
            return match.group(0)
        if path in lessons:
            return f"[{match.group('text')}](lessons/{lessons[path]}.ipynb{anchor})"
        if path == GLOSSARY.resolve():
            return f"[{match.group('text')}](glossary.md{anchor})"
        try:
            shown = path.relative_to(ROOT).as_posix()
        except ValueError:
            shown = match.group("target")
        return f"{match.group('text')} (`{shown}`)"

    return LINK.sub(link, IMAGE.sub(image, text))


def stage_glossary(src_dir: Path) -> bool:
    """Copy ``docs/glossary.md`` into the book when it exists; report whether it did."""
    page = src_dir / "glossary.md"
    if not GLOSSARY.is_file():
        page.unlink(missing_ok=True)
        return False
    write_if_changed(page, _rewrite_links(GLOSSARY.read_text(encoding="utf-8"), GLOSSARY, src_dir))
    return True


def _summary(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
    first = ROLE.sub(lambda m: f"`{m.group('target').split('.')[-1]}`", first)  # reST roles
    return first.replace("|", "\\|")


def stage_api(src_dir: Path) -> list[str]:
    """Write the API reference: an index with the flat API and one page per public module."""
    package = importlib.import_module(PACKAGE)
    modules = public_modules()
    api = src_dir / "api"
    api.mkdir(parents=True, exist_ok=True)
    pages = []
    for name in modules:
        page = f"{name}.md"
        write_if_changed(api / page, f"# {name}\n\n```{{eval-rst}}\n.. automodule:: {name}\n```\n")
        pages.append(page)
    for stale in api.glob("*.md"):
        if stale.name != "index.md" and stale.name not in pages:
            stale.unlink()

    rows = []
    for name in getattr(package, "__all__", []):
        if name.startswith("_"):
            continue
        obj = getattr(package, name)
        home = getattr(obj, "__module__", None)
        if inspect.isclass(obj):
            ref = f"{{py:class}}`{name} <{home}.{obj.__qualname__}>`"
        elif callable(obj) and home:
            ref = f"{{py:func}}`{name} <{home}.{obj.__qualname__}>`"
        else:
            ref = f"`{name}`"
            home = None
        where = f"`{home}`" if home else "—"
        summary = _summary(obj) if home else f"`{type(obj).__name__}`"
        rows.append(f"| {ref} | {where} | {summary} |")
    body = [
        "# API リファレンス",
        "",
        "講座のヘルパーパッケージ `gradcam_helpers` の関数とクラスを、ソースコードの docstring から",
        "自動で生成したページです (英語)。形 (shape)・型 (dtype)・値の範囲は各関数の説明に書かれています。",
        "",
        "## よく使う名前",
        "",
        "パッケージの最上位から `from gradcam_helpers import explain` のように import できる名前です。",
        "",
        "| 名前 | 定義しているモジュール | 概要 |",
        "|---|---|---|",
        *rows,
        "",
        "## モジュール",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
        *(f"{p[:-3]}" for p in pages),
        "```",
        "",
    ]
    write_if_changed(api / "index.md", "\n".join(body))
    return modules


def stage_index(src_dir: Path, lessons: list[str], glossary: bool, student: bool) -> None:
    """The landing page: ``book/index.md`` with the tables of contents filled in."""
    template = (BOOK / "index.md").read_text(encoding="utf-8")
    titles = {stem: lesson_title(src_dir / "lessons" / f"{stem}.ipynb") for stem in lessons}
    exam = next((stem for stem, title in titles.items() if "E資格" in title), None)
    variant = (
        ":::{note}\nこれは**学生用**の版です。演習の解答と、解答を明かすチェックの出力は消してあります。"
        "各ページ上部のダウンロードボタンから、演習を書き込む `.ipynb` を入手できます。\n:::"
        if student else
        ":::{note}\nこれは**解答付き**の版です。演習を先に配る授業では、解答を消した学生用の版 "
        "(`make book STUDENT=1`) を使ってください。\n:::")
    exam_line = (f"E資格の対策には、まず [{titles[exam]}](lessons/{exam}.ipynb) で全体を復習し、"
                 "各レッスン末尾の「E資格ではこう問われる」を読んでください。"
                 if exam else "各レッスン末尾の「E資格ではこう問われる」を読んでください。")
    toc = ["```{toctree}", ":maxdepth: 1", ":caption: レッスン", ""]
    toc += [f"lessons/{stem}" for stem in lessons]
    toc += ["```", "", "```{toctree}", ":maxdepth: 1", ":caption: 資料", ""]
    toc += (["glossary"] if glossary else []) + ["api/index", "```", ""]
    text = (template.replace("@@VARIANT@@", variant).replace("@@EXAM@@", exam_line)
            .replace("@@TOC@@", "\n".join(toc)))
    if not glossary:
        text = text.replace("@@GLOSSARY@@", "用語集 (`docs/glossary.md`) はまだありません。")
    else:
        text = text.replace("@@GLOSSARY@@", "訳語と記号は [用語集](glossary.md) にまとめています。")
    leftover = re.findall(r"@@\w+@@", text)
    if leftover:
        raise ValueError(f"book/index.md has placeholders this script does not fill: {leftover}")
    write_if_changed(src_dir / "index.md", text)


def stage(src_dir: Path, student: bool) -> dict:
    lessons = stage_lessons(src_dir, student)
    glossary = stage_glossary(src_dir)
    modules = stage_api(src_dir)
    stage_index(src_dir, lessons, glossary, student)
    return {"lessons": lessons, "glossary": glossary, "modules": modules}


# --------------------------------------------------------------------------------------- build


def inputs_digest(student: bool = False) -> str:
    """A hash of everything the book is built from (lessons, glossary, package, tools, versions)."""
    files = [*lesson_paths(), GLOSSARY, ROOT / "constraints.txt", Path(__file__),
             ROOT / "tools" / "make_student_copies.py", *sorted(BOOK.rglob("*")),
             *sorted((ROOT / PACKAGE).rglob("*.py"))]
    digest = hashlib.sha256(b"student" if student else b"full")
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build(student: bool = False, strict: bool = False, fresh: bool = False,
          out: Path | None = None, quiet: bool = False, reuse: bool = False) -> Path:
    """Stage the sources and run Sphinx; return the output folder (its ``index.html`` is the site).

    ``reuse=True`` (with ``strict`` and ``fresh``) skips the build when the output folder holds a
    strict, fresh build of exactly the current inputs (see :func:`inputs_digest`).
    """
    name = "book-student" if student else "book"
    out = Path(out) if out is not None else ROOT / "build" / name
    src_dir = ROOT / "build" / f"{name}-src"
    stamp = out.parent / f".{out.name}.strict-build"
    digest = inputs_digest(student) if strict and fresh else None
    if reuse and digest and stamp.is_file() and stamp.read_text() == digest:
        print(f"reusing the strict build in {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
              " (its inputs have not changed)")
        return out
    stamp.unlink(missing_ok=True)
    start = time.perf_counter()
    staged = stage(src_dir, student)
    print(f"staged {len(staged['lessons'])} lessons, {len(staged['modules'])} API pages, "
          f"glossary {'yes' if staged['glossary'] else 'missing (docs/glossary.md)'} "
          f"in {time.perf_counter() - start:.1f} s")
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK), "-d",
               str(src_dir.parent / f".{name}-doctrees"), str(src_dir), str(out)]
    if strict:
        command += ["-W", "--keep-going"]
    if fresh:
        command += ["-E"]
    if quiet:
        command += ["-q"]
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning", TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"sphinx-build failed (exit {result.returncode})"
                           + (": warnings are errors with --strict" if strict else ""))
    if digest:
        stamp.write_text(digest)
    shown = (out / "index.html").relative_to(ROOT) if out.is_relative_to(ROOT) else out / "index.html"
    print(f"book built in {time.perf_counter() - start:.1f} s: {shown}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", action="store_true", help="solutions removed (build/book-student/)")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--fresh", action="store_true", help="re-read every page (no incremental build)")
    parser.add_argument("--out", type=Path, help="output folder (default build/book[-student]/)")
    args = parser.parse_args(argv)
    try:
        build(student=args.student, strict=args.strict, fresh=args.fresh, out=args.out)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
