"""The two READMEs stay in sync with the course and with each other.

README.md (Japanese, first) and README.en.md (the complete English version) must list exactly the
lessons in ``notebooks/`` — so a new lesson fails here until both tables have it — and show the same
``make`` commands, each of which exists in the Makefile. Their relative links and images resolve.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = {"ja": ROOT / "README.md", "en": ROOT / "README.en.md"}
LESSONS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
ROW = re.compile(r"^\|\s*(?P<num>\d+)\s*\|\s*\[[^\]]+\]\(notebooks/(?P<file>[^)]+\.ipynb)\)", re.M)
FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"\bmake(?:\s+[A-Z_]+=\S+)*\s+(?P<target>[a-z][\w-]*)(?P<vars>(?:\s+[A-Z_]+=[^\s`]+)*)")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _text(lang: str) -> str:
    return READMES[lang].read_text(encoding="utf-8")


def lesson_rows(text: str) -> list[tuple[str, str]]:
    """``(number, notebook file)`` of each lessons-table row, in order."""
    return [(m.group("num"), m.group("file")) for m in ROW.finditer(text)]


def make_commands(text: str) -> set[str]:
    """Every ``make`` command shown in code (fenced blocks and inline code), normalised."""
    code = FENCE.findall(text) + INLINE.findall(text)
    found = set()
    for snippet in code:
        for m in MAKE.finditer(snippet):
            found.add(" ".join(["make", m.group("target"), *sorted(m.group("vars").split())]))
    return found


def test_parsers_on_a_known_answer():
    sample = ("| # | x |\n|---|---|\n| 00 | [A](notebooks/00_a.ipynb) | y |\n"
              "| 01 | [B](notebooks/01_b.ipynb) | z |\n"
              "```bash\nmake lab     # open\nKERAS_BACKEND=jax make lab\n```\n"
              "Use `make book STUDENT=1` or `make execute NB=notebooks/01_b.ipynb`; make no sense.\n")
    assert lesson_rows(sample) == [("00", "00_a.ipynb"), ("01", "01_b.ipynb")]
    assert make_commands(sample) == {"make lab", "make book STUDENT=1",
                                     "make execute NB=notebooks/01_b.ipynb"}


@pytest.mark.parametrize("lang", sorted(READMES))
def test_lessons_table_lists_exactly_the_notebooks(lang):
    rows = lesson_rows(_text(lang))
    files = [f for _, f in rows]
    assert files == LESSONS, (
        f"{READMES[lang].name}: the lessons table must list every notebooks/[0-9]*.ipynb once, in "
        f"order; missing {sorted(set(LESSONS) - set(files))}, extra {sorted(set(files) - set(LESSONS))}")
    for num, name in rows:
        assert name.startswith(num + "_"), f"{READMES[lang].name}: row {num} links {name}"


def test_both_readmes_show_the_same_commands():
    ja, en = make_commands(_text("ja")), make_commands(_text("en"))
    assert {"make lab", "make test"} <= ja
    assert ja == en, f"only in README.md: {sorted(ja - en)}; only in README.en.md: {sorted(en - ja)}"
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    unknown = {c for c in ja if c.split()[1] not in targets}
    assert not unknown, f"commands shown in the READMEs that the Makefile lacks: {sorted(unknown)}"


def test_the_two_commands_lead_both_readmes():
    """The first code block of each README is the two commands, unchanged."""
    for lang in READMES:
        first = FENCE.findall(_text(lang))[0]
        assert [line.split("#")[0].strip() for line in first.strip().splitlines()] == \
            ["make lab", "make test"], READMES[lang].name


def test_readme_md_leads_in_japanese_and_links_the_english_version():
    ja, en = _text("ja"), _text("en")
    head = ja[:1500]
    assert len(JAPANESE.findall(head)) > 200, "README.md must open in Japanese"
    assert "](README.en.md)" in ja.splitlines()[0], "README.md's first line links README.en.md"
    assert "](README.md)" in en.splitlines()[0], "README.en.md's first line links README.md"
    # the English version is complete, not a stub: no shorter than half the Japanese one in lines
    assert len(en.splitlines()) > len(ja.splitlines()) / 2


@pytest.mark.parametrize("lang", sorted(READMES))
def test_relative_links_resolve(lang):
    broken = []
    for m in LINK.finditer(_text(lang)):
        target = m.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        if not (ROOT / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{READMES[lang].name}: links to missing files {broken}"


# ------------------------------------------------------------------ the package's module table

PACKAGE = ROOT / "gradcam_helpers"
PACKAGE_SECTION = re.compile(r"^## The helper package `gradcam_helpers`\n(.*?)(?=^## )", re.S | re.M)


def module_table(text: str) -> list[str]:
    """The paths (relative to ``gradcam_helpers/``) in the "module" column of README.en.md's table
    of the package's layers. A name without a folder in a cell (``road.py`` after
    ``evaluation/faithfulness.py``) is in the folder of the cell's first path."""
    section = PACKAGE_SECTION.search(text)
    assert section, "README.en.md has no '## The helper package `gradcam_helpers`' section"
    paths = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[1]) <= set("-: "):
            continue
        folder = ""
        for name in INLINE.findall(cells[1]):
            if "/" in name.rstrip("/"):
                folder = name.rstrip("/").rsplit("/", 1)[0] + "/"
                paths.append(name)
            else:
                paths.append(folder + name if name.endswith(".py") else name)
    return paths


def test_module_table_parser_on_a_known_answer():
    text = ("## The helper package `gradcam_helpers`\n\n| layer | module | what |\n|---|---|---|\n"
            "| **engine** | `engine/maps.py`, `targets.py` | x |\n| | `audit/` | y |\n"
            "| **applications** | `widgets.py` | z |\n\n## Next\n| | `nope.py` | |\n")
    assert module_table(text) == ["engine/maps.py", "engine/targets.py", "audit/", "widgets.py"]


def test_module_table_matches_the_package_layout():
    """Every path the table names exists, and every module of the package is in the table (by its
    own path or by a folder the table names): a new or moved module fails here until it is listed."""
    listed = module_table(_text("en"))
    missing = [p for p in listed if not (PACKAGE / p).exists()]
    assert missing == [], f"README.en.md's module table names paths that do not exist: {missing}"
    folders = tuple(p for p in listed if p.endswith("/"))
    modules = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py")
                     and p.parent.name != "__pycache__")
    unlisted = [m for m in modules if m not in listed and not m.startswith(folders)]
    assert unlisted == [], f"modules missing from README.en.md's module table: {unlisted}"


def test_the_flat_imports_are_all_named():
    """Every name ``gradcam_helpers`` exports is named in README.en.md's package section."""
    import gradcam_helpers

    section = PACKAGE_SECTION.search(_text("en")).group(1)
    named = set(INLINE.findall(section)) | set(re.findall(r"\b\w+\b", FENCE.findall(section)[0]))
    missing = sorted(n for n in gradcam_helpers.__all__ if n != "__version__" and n not in named)
    assert missing == [], f"exported by gradcam_helpers, not named in README.en.md: {missing}"
