"""One vocabulary and one shape for every lesson, read from docs/glossary.md.

- The glossary's table (日本語 | English | 初出 | 避ける表記) is the one source of truth: every entry of
  its "avoid" column is looked for in the lessons' prose (see the glossary's header for the rules), and
  the "first lesson" column is checked against the lessons.
- Headings: the exercises are ``## N. 演習`` with items ``### 演習 k: …``; the exam summary is
  ``## N. E資格ではこう問われる``; the numbered ``## N.`` sections count 1, 2, 3, … in order.
- Numbers in prose: a percentage in the prose is printed (or set) by a code cell above it, or set by
  the code cell right below it (a setting described before the code that sets it).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "docs" / "glossary.md"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
HEADER = ["日本語", "English", "初出", "避ける表記"]


# ------------------------------------------------------------------ the glossary


@dataclass(frozen=True)
class Term:
    japanese: str          # the course's term, as written in the table
    english: str
    first: str             # the lesson where it first appears ("00", "13", ...)
    avoid: tuple[str, ...]

    @property
    def keys(self) -> list[str]:
        """The strings that count as the term in a lesson: the Japanese cell without its
        parentheses, split at " / " (e.g. "大域的な説明 / 局所的な説明")."""
        bare = re.sub(r"\s*[（(][^)）]*[)）]", "", self.japanese)
        return [k.strip() for k in bare.split(" / ") if k.strip()]


def parse_glossary(text: str) -> list[Term]:
    """The rows of the glossary's table (the first table whose header is HEADER)."""
    rows, in_table = [], False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
        if cells is None:
            if in_table:
                break
            continue
        if cells == HEADER:
            in_table = True
            continue
        if in_table and not set("".join(cells)) <= set("-: "):
            japanese, english, first, avoid = (cells + [""] * 4)[:4]
            rows.append(Term(japanese, english, first.split()[0] if first else "",
                             tuple(a.strip() for a in re.split(r"[、,]", avoid) if a.strip())))
    return rows


@functools.lru_cache(maxsize=1)
def terms() -> tuple[Term, ...]:
    return tuple(parse_glossary(GLOSSARY.read_text(encoding="utf-8")))


# ------------------------------------------------------------------ what a lesson's prose is


_FENCE = re.compile(r"```.*?```", re.S)
_CODE = re.compile(r"`[^`\n]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
_URL = re.compile(r"https?://\S+")
_REFERENCES = re.compile(r"^##\s*(\d+\.\s*)?参考", re.M)


def prose(markdown: str) -> str:
    """A Markdown cell without code, math, URLs, HTML comments and its references section."""
    m = _REFERENCES.search(markdown)
    if m:
        markdown = markdown[:m.start()]
    for pattern in (_FENCE, _CODE, _MATH, _URL):
        markdown = pattern.sub(" ", markdown)
    return re.sub(r"<!--.*?-->", " ", markdown, flags=re.S)


def lesson_number(path: Path) -> str:
    return path.name[:2]


def _lesson_prose(path: Path) -> list[tuple[int, str]]:
    nb = nbformat.read(path, as_version=4)
    return [(i, prose(c.source)) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def variant_hits(text: str, term: Term, *, ascii_too: bool = True) -> list[str]:
    """The avoided variants of ``term`` in ``text``, with context. An English gloss right after the
    course's term is allowed: "ロジット (logit)"."""
    for key in term.keys:
        text = re.sub(re.escape(key) + r"\s*[（(][^)）]*[)）]", key, text)
    hits = []
    for variant in term.avoid:
        if variant.isascii():
            if not ascii_too:
                continue
            pattern = re.compile(r"(?<![A-Za-z])" + re.escape(variant), re.I)
        else:
            pattern = re.compile(re.escape(variant))
        hits += [f"{variant!r} in …{text[max(0, m.start() - 25):m.end() + 25]}…".replace("\n", " ")
                 for m in pattern.finditer(text)]
    return hits


# ------------------------------------------------------------------ headings


_NUMBERED = re.compile(r"^## (\d+)\. (.+?)\s*$")
EXERCISES = "演習"
EXAM = "E資格ではこう問われる"
#: The one other name an exercise section may have: the checked questions of a review lesson (10),
#: grouped by topic (### N.k …) rather than numbered 演習 k. Written '## N. 確認問題' or '## N. 確認問題 (45 問)'.
REVIEW = "確認問題"


def heading_problems(markdown_cells: list[str], has_exercises: bool) -> list[str]:
    """What is wrong with a lesson's headings (an empty list when nothing is)."""
    problems = []
    lines = [line.rstrip() for cell in markdown_cells for line in _FENCE.sub("", cell).splitlines()]
    numbers = [int(m.group(1)) for line in lines if (m := _NUMBERED.match(line))]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"numbered sections run {numbers}, not 1, 2, 3, … in order")
    exam = [line for line in lines if (m := _NUMBERED.match(line)) and m.group(2) == EXAM]
    if len(exam) != 1:
        problems.append(f"{len(exam)} headings '## N. {EXAM}' (one expected)")
    for line in lines:
        if (re.match(r"#+ .*E資格", line) or re.match(r"\*\*[^*]*E資格[^*]*\*\*", line)) and \
                not ((m := _NUMBERED.match(line)) and m.group(2) == EXAM) and not line.startswith("# "):
            problems.append(f"an exam heading in another style: {line!r} (write '## N. {EXAM}')")
        if line.startswith("#") and re.search(r"練習|問題 \d", line):
            problems.append(f"{line!r}: exercises are '## N. 演習' and '### 演習 k: …'")
    sections = [i for i, line in enumerate(lines) if (m := _NUMBERED.match(line)) and m.group(2) == EXERCISES]
    others = [line for line in lines if line.startswith("## ") and EXERCISES in line
              and not ((m := _NUMBERED.match(line)) and m.group(2) == EXERCISES)]
    problems += [f"{line!r}: the exercise section is '## N. {EXERCISES}'" for line in others]
    reviews = [line for line in lines if (m := _NUMBERED.match(line)) and re.fullmatch(
        rf"{REVIEW}(?: \(\d+ 問\))?", m.group(2))]
    if has_exercises and len(sections) + len(reviews) != 1:
        problems.append(f"{len(sections)} sections '## N. {EXERCISES}' and {len(reviews)} '## N. {REVIEW}' "
                        "(one expected: the lesson has exercises)")
    if sections:
        start = sections[0] + 1
        end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
        items = [line for line in lines[start:end] if line.startswith("### ")]
        expected = [f"### {EXERCISES} {k}: " for k in range(1, len(items) + 1)]
        for line, want in zip(items, expected):
            if not line.startswith(want) or len(line) == len(want):
                problems.append(f"{line!r}: exercise items are '{want}<title>' in order")
        if has_exercises and not items:
            problems.append(f"the section '## N. {EXERCISES}' has no '### {EXERCISES} k: …' items")
    return problems


# ------------------------------------------------------------------ numbers in prose


_PERCENT = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s?[%％]")
_QUOTE = re.compile(r"「[^」]*」")


_PERCENT_ANY = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s?[%％]")
_FRACTION = re.compile(r"(?<![\w.])(?:0?\.\d+|1\.0+)(?![\d.])")


def supported(number: str, haystack: str) -> bool:
    """Whether ``haystack`` (code and outputs) shows the percentage ``number`` ("58", "87.5"):
    as a percentage or as a fraction ("0.58") that rounds to it at the prose's precision."""
    digits = len(number.split(".")[1]) if "." in number else 0
    target = float(number)
    values = [float(m.group(1)) for m in _PERCENT_ANY.finditer(haystack)]
    values += [100 * float(m.group(0)) for m in _FRACTION.finditer(haystack)]
    return any(round(v, digits) == target for v in values)


def unsupported_percentages(cells) -> list[str]:
    """Percentages in the prose that no code cell above prints or sets, and that the code cell
    right below does not set or print. Text in 「」 (a quotation) is not a claim of the lesson."""
    problems, seen = [], []
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            seen.append(cell.source)
            seen.extend(t for out in cell.get("outputs", []) for t in _out_texts(out))
            continue
        text = _QUOTE.sub(" ", prose(cell.source))
        below = next((c for c in cells[i + 1:] if c.cell_type == "code"), None)
        near = seen + ([below.source] + [t for out in below.get("outputs", []) for t in _out_texts(out)]
                       if below is not None else [])
        haystack = "\n".join(near)
        for m in _PERCENT.finditer(text):
            if not supported(m.group(1), haystack):
                problems.append(f"cell {i}: {m.group(0)!r} in …{text[max(0, m.start() - 30):m.end() + 10]}…"
                                .replace("\n", " "))
    return problems


def _out_texts(out) -> list[str]:
    if out.get("output_type") == "stream":
        return [out.get("text", "")]
    return [v if isinstance(v, str) else "".join(v) for k, v in out.get("data", {}).items()
            if k.startswith("text/")]


# ------------------------------------------------------------------ the checks on the course


def test_glossary_has_the_course_terms():
    found = {t.japanese for t in terms()}
    for word in ["マップ", "ヒートマップ", "チャンネル", "ロジット", "勾配", "正解率", "検証データ", "テストデータ",
                 "特徴マップ", "逆伝播", "判断根拠の可視化", "忠実性", "サニティチェック", "ショートカット学習",
                 "トークン", "クラストークン", "アテンションロールアウト", "反実仮想説明", "セグメンテーション",
                 "物体検出", "バウンディングボックス", "マルチラベル"]:
        assert word in found, f"docs/glossary.md has no row for {word}"
    for term in terms():
        assert term.japanese and term.english and re.fullmatch(r"\d\d", term.first), (
            f"glossary row {term}: every row needs a Japanese term, an English term and a lesson number")


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_uses_the_glossary_terms(path):
    nb = nbformat.read(path, as_version=4)
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            text, ascii_too = prose(cell.source), True
        elif cell.cell_type == "code":      # comments and strings: only the Japanese variants
            text, ascii_too = cell.source, False
        else:
            continue
        bad += [f"cell {i}: {hit}" for term in terms() for hit in variant_hits(text, term, ascii_too=ascii_too)]
    assert not bad, (f"{path.name} uses variants that docs/glossary.md asks to avoid "
                     "(use the 日本語 column's term):\n" + "\n".join(bad[:15]))


def test_glossary_first_lessons_are_right():
    """The 初出 column names the first lesson whose prose uses the term; a planned lesson (no file
    yet) only if no lesson uses the term so far."""
    texts = {lesson_number(p): "\n".join(t for _, t in _lesson_prose(p)) for p in LESSONS}
    wrong = []
    for term in terms():
        first = next((n for n, t in sorted(texts.items()) if any(k in t for k in term.keys)), None)
        if first is None and term.first not in texts:
            continue
        if first != term.first:
            wrong.append(f"{term.japanese}: glossary says {term.first}, first used in {first}")
    assert not wrong, "docs/glossary.md's 初出 column is out of date:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_headings(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    has_exercises = any("### BEGIN SOLUTION" in c.source for c in nb.cells if c.cell_type == "code")
    problems = heading_problems(markdown, has_exercises)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_percentages_in_prose_are_computed(path):
    nb = nbformat.read(path, as_version=4)
    problems = unsupported_percentages(nb.cells)
    assert not problems, (
        f"{path.name}: percentages in the prose that no code cell prints — print them in the cell "
        "above (or state the setting in the code below):\n" + "\n".join(problems))


# ------------------------------------------------------------------ the rules themselves


GLOSSARY_SAMPLE = """
intro

| 日本語 | English | 初出 | 避ける表記 |
|---|---|---|---|
| マップ | map | 01 | 地図 |
| ロジット | logit | 03 | logit、logits |
| 大域的な説明 / 局所的な説明 (global / local) | global / local explanation | 14 (予定) | |

after
"""


def test_parse_glossary():
    rows = parse_glossary(GLOSSARY_SAMPLE)
    assert [r.japanese for r in rows] == ["マップ", "ロジット", "大域的な説明 / 局所的な説明 (global / local)"]
    assert rows[1].avoid == ("logit", "logits") and rows[0].avoid == ("地図",) and rows[2].avoid == ()
    assert rows[2].first == "14" and rows[2].keys == ["大域的な説明", "局所的な説明"]


def test_variants_are_found_but_glosses_and_code_pass():
    logit = Term("ロジット", "logit", "03", ("logit",))
    kaart = Term("マップ", "map", "01", ("地図",))
    assert variant_hits("softmax の前の logit を微分する", logit)
    assert variant_hits("Logits を読む", logit)
    assert variant_hits("Grad-CAM の地図", kaart)
    assert not variant_hits("ロジット (logit) を微分する", logit)        # a gloss after the term
    assert not variant_hits(prose("`logit_model` と $\\mathrm{logit}$"), logit)   # code and math
    assert not variant_hits("the logit", logit, ascii_too=False)         # code cells: Japanese only
    assert not variant_hits(prose("本文\n\n## 参考文献\n\n- 地図の本"), kaart)    # references


def test_heading_rules():
    good = ["# 99 t\n\n## 学習目標\n\n## 1. a\n\n## 2. 演習\n\n### 演習 1: x\n\n### 演習 2: y",
            "## まとめ\n\n## 3. E資格ではこう問われる\n\n## 参考文献"]
    assert heading_problems(good, has_exercises=True) == []
    assert heading_problems(["## 1. a\n## 3. E資格ではこう問われる"], False)            # 1, 3: a gap
    assert heading_problems(["## 1. a\n## 練習問題\n### 練習 1: x\n## 2. E資格ではこう問われる"], True)
    assert heading_problems(["## 1. 演習\n### 問題 1: x\n## 2. E資格ではこう問われる"], True)
    assert heading_problems(["## 1. 演習\n### 演習 2: x\n## 2. E資格ではこう問われる"], True)  # starts at 2
    assert heading_problems(["## 1. a\n\n**E資格で問われそうなこと**: …"], False)
    assert heading_problems(["## 1. a\n### E資格ではこう問われる"], False)
    assert not heading_problems(["## 1. a\n**CAM** は E資格の欄にない\n## 2. E資格ではこう問われる"], False)
    assert heading_problems(["## 1. a\n## 2. E資格ではこう問われる"], has_exercises=True)   # no 演習 section
    review = ["## 1. a\n## 2. 確認問題 (45 問)\n### 2.1 CAM\n## 3. E資格ではこう問われる"]
    assert heading_problems(review, has_exercises=True) == []                         # a review lesson
    assert heading_problems(["## 1. 演習\n### 演習 1: x\n## 2. 確認問題\n## 3. E資格ではこう問われる"], True)  # two
    assert heading_problems(["## 1. a\n## 2. 確認問題をしよう\n## 3. E資格ではこう問われる"], True)  # not the name


def test_percentage_rule():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

    printed = new_code_cell("x = 1")
    printed.outputs = [new_output("stream", name="stdout", text="肺の中 58%\nAUC 0.969\n")]
    setting = new_code_cell("SHORTCUT_RATE = 0.98\n")
    cells = [printed, new_markdown_cell("肺の中は 58 % で、「肺炎 93%」は例えです。"),
             new_markdown_cell("タグは 98 % の画像に付きます。"), setting,
             new_markdown_cell("正解率は 77 % でした。")]
    problems = unsupported_percentages(cells)
    assert len(problems) == 1 and "77 %" in problems[0]
    assert supported("97", "AUC 0.969") and supported("100", "正解率: 100.0%") and supported("87.5", "87.5%")
    assert not supported("96", "AUC 0.969") and not supported("16", "116%") and not supported("5", "2025")
