"""The course as a book (``make book``), built and read in a real browser.

The book is built fresh with warnings as errors into ``build/book/`` (so after ``make test`` that
folder holds a checked site; a second run reuses that build when none of its inputs changed), served on 127.0.0.1 and opened in headless Chromium — the same
Chromium as the explorer test (``tests/test_browser.py``). Checked:

- every lesson page opens with its first heading as title, its figures load (``naturalWidth > 0``,
  at least as many as the notebook has image outputs), its math is typeset by MathJax, and its
  Japanese text is drawn with a font that has Japanese glyphs (asked of Chromium itself through the
  DevTools protocol, then checked against fontconfig's list of fonts covering Japanese);
- every internal link and resource of the site resolves (a crawl from ``index.html``, anchors
  included) and no page loads anything from another host;
- the search finds a Japanese term (勾配);
- the landing page links every lesson in order, the API reference and the glossary when it exists.

Screenshots go to ``build/screenshots/`` (``make book-screenshots`` refreshes those in ``docs/``).
Without Chromium the browser checks are skipped on a learner's machine and fail in CI (``CI=true``).
"""
from __future__ import annotations

import html.parser
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_book  # noqa: E402
import chromium  # noqa: E402

pytestmark = pytest.mark.slow

SITE = ROOT / "build" / "book"
SCREENSHOTS = ROOT / "build" / "screenshots"
LESSONS = build_book.lesson_paths()
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser_paths():
    """Chromium and chromedriver, looked up before the (slower) build."""
    if not chromium.in_ci():
        pytest.importorskip("selenium")
    browser, driver = chromium.find_browser()
    if not (browser and driver):
        message = chromium.missing_message(browser, driver)
        if chromium.in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return browser, driver


@pytest.fixture(scope="module")
def site() -> Path:
    start = time.perf_counter()
    out = build_book.build(strict=True, fresh=True, quiet=True, reuse=True)
    print(f"book ready (built fresh with -W, or such a build of the same inputs reused) "
          f"in {time.perf_counter() - start:.1f} s")
    return out


@pytest.fixture(scope="module")
def server(site):
    with chromium.serve(site) as (base, requests):
        yield {"base": base, "requests": requests}


@pytest.fixture(scope="module")
def driver(browser_paths, server, tmp_path_factory):
    log = tmp_path_factory.mktemp("chromium") / "chromedriver.log"
    d = chromium.start_chromium(*browser_paths, log=log, width=1280, height=900)
    d.set_page_load_timeout(120)
    try:
        yield d
    finally:
        d.quit()


# -------------------------------------------------------------------------------- page helpers


def _open(driver, server, path: str) -> list[tuple[str, int]]:
    """Open a page and wait until it and its images have loaded; return the failed requests."""
    before = len(server["requests"])
    driver.get(server["base"] + "/" + path)
    deadline = time.monotonic() + 60
    while driver.execute_script(
            "return document.readyState !== 'complete' || "
            "[...document.images].some(i => !i.complete);"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: not loaded after 60 s")
        time.sleep(0.2)
    return [(p, s) for p, s in server["requests"][before:]
            if s >= 400 and not p.startswith("/favicon.ico")]


def _japanese_fonts() -> set[str] | None:
    """Font families that fontconfig says cover Japanese (None when fc-list is missing)."""
    try:
        out = subprocess.run(["fc-list", ":lang=ja", "family"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


JA_FONTS = _japanese_fonts()


def _fonts_drawing(driver, selector: str) -> list[dict]:
    """The platform fonts Chromium used to draw the text of the first element matching selector."""
    driver.execute_cdp_cmd("DOM.enable", {})
    driver.execute_cdp_cmd("CSS.enable", {})
    root = driver.execute_cdp_cmd("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": selector})
    assert node.get("nodeId"), f"no element {selector}"
    fonts = driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    return [f for f in fonts["fonts"] if f.get("glyphCount", 0) > 0]


PROBE_JAPANESE = """
const main = document.querySelector('main') || document.body;
const el = [...main.querySelectorAll('h1, p, li')].find(e =>
    /[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(e.textContent) && e.offsetParent !== null);
if (!el) return null;
// a span of only the Japanese characters of that element, styled as the element is
const chars = [...el.textContent].filter(c => /[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(c));
const probe = document.createElement('span');
probe.setAttribute('data-japanese-probe', '1');
probe.textContent = chars.slice(0, 40).join('');
el.appendChild(probe);
probe.getBoundingClientRect();  // lay it out now, so that its fonts are known
return probe.textContent;
"""


def _japanese_font_problems(driver) -> list[str]:
    """Why the page's Japanese would show tofu ([] when it would not).

    Chromium reports which fonts drew the first visible Japanese heading or paragraph's Japanese
    characters; each must be a font that fontconfig lists as covering Japanese. A missing glyph is
    drawn by a fallback font that has none (the tofu box), which fails the check.
    """
    text = driver.execute_script(PROBE_JAPANESE)
    if text is None:
        return ["no Japanese text found on the page"]
    try:
        for _ in range(20):  # the report can be empty until the probe has been painted once
            fonts = _fonts_drawing(driver, "[data-japanese-probe]")
            if fonts:
                break
            time.sleep(0.25)
    finally:
        driver.execute_script("document.querySelectorAll('[data-japanese-probe]')"
                              ".forEach(e => e.remove());")
    names = [f["familyName"] for f in fonts]
    if not names:
        return [f"Chromium reports no font for {text!r}"]
    if JA_FONTS is not None:
        bad = [n for n in names if n not in JA_FONTS]
        if bad:
            return [f"{text!r} is drawn with {bad}, fonts without Japanese glyphs "
                    f"(fc-list :lang=ja knows {sorted(JA_FONTS)[:6]}...)"]
    elif not any(re.search(r"CJK|JP|Gothic|Mincho|Hiragino|Meiryo|IPA", n) for n in names):
        return [f"{text!r} is drawn with {names}, none of them a Japanese font"]
    return []


IMAGES = """
const main = document.querySelector('main') || document.body;
return [...main.querySelectorAll('img')].map(i => [i.getAttribute('src'), i.naturalWidth]);
"""


WIDGET_NOTES = """
return [...document.querySelectorAll('p.widget-needs-kernel')].map(p => {
  const cell = p.closest('div.cell') || p.parentElement;
  return [p.textContent, [...cell.querySelectorAll('img')].filter(i => i.naturalWidth > 0).length];
});
"""


def _notebook_facts(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    images, widget_notes, math = 0, [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            math = math or "$" in cell.source
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            images += any(m in data for m in IMAGE_MIMES)
            if WIDGET_VIEW in data and "text/plain" in data:
                widget_notes.append(data["text/plain"].strip().strip("[]").split(":")[0])
    return {"images": images, "widget_notes": widget_notes, "math": math,
            "title": build_book.lesson_title(path)}


# ------------------------------------------------------------------------------- the checks


def test_site_has_every_lesson_the_api_and_the_glossary_if_present(site):
    for path in LESSONS:
        assert (site / "lessons" / f"{path.stem}.html").is_file(), path.name
    assert (site / "api" / "index.html").is_file()
    assert (site / "search.html").is_file() and (site / "searchindex.js").is_file()
    glossary = (ROOT / "docs" / "glossary.md").is_file()
    assert (site / "glossary.html").is_file() == glossary
    index = (site / "index.html").read_text(encoding="utf-8")
    positions = [index.find(f'href="lessons/{p.stem}.html"') for p in LESSONS]
    assert -1 not in positions, "the landing page misses a lesson"
    assert positions == sorted(positions), "the landing page lists the lessons out of order"
    assert 'href="api/index.html"' in index
    # each public module has its page, documented from its docstrings
    for module in build_book.public_modules():
        page = site / "api" / f"{module}.html"
        assert page.is_file(), module
        assert f'id="module-{module}"' in page.read_text(encoding="utf-8"), module


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []      # navigations (a href)
        self.resources: list[str] = []  # what the page loads (img, script, stylesheet)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag in ("img", "script") and a.get("src"):
            self.resources.append(a["src"])
        elif tag == "link" and a.get("href") and "stylesheet" in (a.get("rel") or ""):
            self.resources.append(a["href"])


def _fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_every_internal_link_resolves_and_nothing_loads_from_outside(server):
    base = server["base"] + "/"
    pages: dict[str, _Links] = {}
    queue, seen, broken, external, checked = [base + "index.html"], set(), [], [], 0

    def parse(url: str) -> _Links | None:
        if url not in pages:
            status, body = _fetch(url)
            if status != 200:
                return None
            parser = _Links()
            parser.feed(body.decode("utf-8", "replace"))
            pages[url] = parser
        return pages[url]

    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        page = parse(url)
        if page is None:
            broken.append(f"{url} (not found)")
            continue
        for ref in page.links + page.resources:
            target = urllib.parse.urljoin(url, ref)
            if not target.startswith(base):
                if ref in page.resources:
                    external.append(f"{url} loads {ref}")
                continue
            checked += 1
            path, _, fragment = target.partition("#")
            path = path.split("?")[0]
            if path.endswith(".html"):
                linked = parse(path)
                if linked is None:
                    broken.append(f"{url} -> {ref}")
                    continue
                if fragment and urllib.parse.unquote(fragment) not in linked.ids:
                    broken.append(f"{url} -> {ref} (no anchor #{fragment})")
                if ref in page.links:
                    queue.append(path)
            elif _fetch(path)[0] != 200:
                broken.append(f"{url} -> {ref}")
    print(f"crawled {len(seen)} pages, {checked} internal links and resources: "
          f"{len(broken)} broken, {len(external)} loaded from outside")
    assert len(seen) >= len(LESSONS) + 2
    assert broken == [], "\n".join(broken[:30])
    assert external == [], "\n".join(external[:30])


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_page_in_chromium(path, server, driver):
    facts = _notebook_facts(path)
    failed = _open(driver, server, f"lessons/{path.stem}.html")
    problems = [f"request failed: {p} ({s})" for p, s in failed]
    title = driver.execute_script("return document.querySelector('main h1').textContent")
    if facts["title"] not in title:
        problems.append(f"title {title!r} is not the lesson's first heading {facts['title']!r}")
    images = driver.execute_script(IMAGES)
    broken = [src for src, width in images if not width]
    if broken:
        problems.append(f"{len(broken)} figure(s) did not load: {broken[:3]}")
    if len(images) < facts["images"]:
        problems.append(f"{len(images)} images on the page, {facts['images']} in the notebook")
    problems += _japanese_font_problems(driver)
    if facts["math"]:
        deadline = time.monotonic() + 30
        while not driver.execute_script("return document.querySelectorAll('mjx-container').length"):
            if time.monotonic() > deadline:
                problems.append("the lesson has math but MathJax typeset none of it in 30 s")
                break
            time.sleep(0.3)
        errors = driver.execute_script("return [...document.querySelectorAll('mjx-merror')]"
                                       ".map(e => e.getAttribute('data-mjx-error') || e.textContent)")
        if errors:
            problems.append(f"MathJax errors: {errors[:3]}")
    text = driver.execute_script("return document.querySelector('main').innerText")
    for note in facts["widget_notes"]:  # a live widget: its note (it needs a kernel) is shown
        if note not in text:
            problems.append(f"the widget's note {note!r} is not shown")
    # the explorer's note points at the static figure below it: that figure is in the same cell
    notes = driver.execute_script(WIDGET_NOTES)
    if len(notes) != len(facts["widget_notes"]):
        problems.append(f"{len(notes)} widget notes on the page, {len(facts['widget_notes'])} widgets")
    for note_text, figures in notes:
        if "図" in note_text and not figures:
            problems.append(f"no loaded figure next to the note {note_text[:40]!r}")
    if path == LESSONS[min(4, len(LESSONS) - 1)]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / "book_lesson.png"))
    print(f"{path.stem}: {len(images)} figures, math={facts['math']}, "
          f"widgets={len(facts['widget_notes'])}")
    assert problems == [], f"{path.name}:\n" + "\n".join(problems)


def test_landing_page_is_japanese_and_fits_a_phone(server, driver):
    failed = _open(driver, server, "index.html")
    assert failed == []
    assert driver.execute_script("return document.documentElement.lang") == "ja"
    assert _japanese_font_problems(driver) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "book_landing.png"))
    # on a phone's width the text wraps: no page wider than the screen
    driver.set_window_size(390, 844)
    try:
        # every lesson: one long inline name or wide table is enough to widen a page
        for page in ("index.html", *(f"lessons/{nb.stem}.html" for nb in LESSONS)):
            _open(driver, server, page)
            widths = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            assert widths[0] <= widths[1] + 1, f"{page} is {widths[0]} px wide on a {widths[1]} px screen"
    finally:
        driver.set_window_size(1280, 900)


def test_the_font_check_sees_tofu(browser_paths, server, tmp_path):
    """The check above can fail: a Chromium whose fontconfig sees one Latin font only draws the
    Japanese as tofu, and the check must say so."""
    if JA_FONTS is None:
        message = "fc-list is not installed (Debian: apt-get install fontconfig)"
        if chromium.in_ci():
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    listing = subprocess.run(["fc-list", ":", "file", "family"], capture_output=True, text=True,
                             timeout=60).stdout
    latin = next((line.split(":")[0] for line in listing.splitlines() if ":" in line
                  and not set(n.strip() for n in line.split(":", 1)[1].split(",")) & JA_FONTS
                  and line.split(":")[0].endswith((".ttf", ".otf"))), None)
    if latin is None:
        pytest.skip("no font without Japanese glyphs is installed")
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    (fonts / Path(latin).name).symlink_to(latin)
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">'
                    f"<fontconfig><dir>{fonts}</dir><cachedir>{tmp_path / 'cache'}</cachedir>"
                    "</fontconfig>")
    d = chromium.start_chromium(*browser_paths, log=tmp_path / "chromedriver.log",
                                env={"FONTCONFIG_FILE": str(conf)})
    try:
        _open(d, server, f"lessons/{LESSONS[0].stem}.html")
        problems = _japanese_font_problems(d)
    finally:
        d.quit()
    assert problems and "without Japanese glyphs" in problems[0], problems


def test_search_finds_a_japanese_term(server, driver):
    term = "勾配"
    _open(driver, server, "search.html?q=" + urllib.parse.quote(term))
    deadline = time.monotonic() + 60
    while True:
        hits = driver.execute_script(
            "return [...document.querySelectorAll('#search-results ul.search li a')]"
            ".map(a => a.getAttribute('href'))")
        if hits:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the search for {term} found nothing in 60 s")
        time.sleep(0.3)
    lessons_hit = [h for h in hits if h.startswith("lessons/")]
    print(f"search {term}: {len(hits)} pages, {len(lessons_hit)} lessons")
    assert lessons_hit, hits
    # the term is in those lessons' text, so the hits are real
    first = (SITE / lessons_hit[0].split("?")[0].split("#")[0]).read_text(encoding="utf-8")
    assert term in first
