"""Screenshots of the book for the README: ``docs/book_landing.png`` and ``docs/book_lesson.png``.

Usage: python tools/book_screenshots.py [--lesson 04_gradcam] [--out docs]

Builds the book if needed (incremental, ``build/book/``), serves it on 127.0.0.1 and takes the
pictures in headless Chromium (Debian's ``chromium`` and ``chromium-driver``; see
``tools/chromium.py``). The lesson picture shows the top of the lesson's first figure.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_book  # noqa: E402
import chromium  # noqa: E402

ROOT = build_book.ROOT


def _wait_loaded(driver, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.readyState !== 'complete' || "
                                "[...document.images].some(i => !i.complete);"):
        if time.monotonic() > deadline:
            raise RuntimeError("the page did not finish loading")
        time.sleep(0.2)
    time.sleep(1.0)  # MathJax and the fonts settle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesson", default="04_gradcam", help="lesson file stem (default 04_gradcam)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    stems = [p.stem for p in build_book.lesson_paths()]
    if args.lesson not in stems:
        print(f"no lesson {args.lesson!r}; lessons: {', '.join(stems)}", file=sys.stderr)
        return 2
    browser, driver_path = chromium.find_browser()
    if not (browser and driver_path):
        print(chromium.missing_message(browser, driver_path), file=sys.stderr)
        return 1
    site = build_book.build(quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, chromium.serve(site) as (base, _):
        driver = chromium.start_chromium(browser, driver_path, Path(tmp) / "chromedriver.log",
                                         width=1280, height=800)
        try:
            driver.get(f"{base}/index.html")
            _wait_loaded(driver)
            driver.save_screenshot(str(args.out / "book_landing.png"))
            driver.get(f"{base}/lessons/{args.lesson}.html")
            _wait_loaded(driver)
            driver.execute_script(
                "const img = document.querySelector('main img');"
                "if (img) window.scrollTo(0, img.getBoundingClientRect().top + window.scrollY - 260);")
            time.sleep(0.5)
            driver.save_screenshot(str(args.out / "book_lesson.png"))
        finally:
            driver.quit()
    for name in ("book_landing.png", "book_lesson.png"):
        path = args.out / name
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
