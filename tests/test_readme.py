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
