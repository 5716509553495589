"""Headless Chromium for the browser tests and the screenshots, and a local server for the book.

Chromium and its driver come from the system (Debian: ``apt-get install chromium chromium-driver
fonts-noto-cjk``) or from ``$CHROMIUM`` / ``$CHROMEDRIVER``; nothing here downloads a browser.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

INSTALL_HINT = ("sudo apt-get install chromium chromium-driver fonts-noto-cjk "
                "(Debian/Ubuntu), then run `make test` again; or point $CHROMIUM and $CHROMEDRIVER "
                "at a Chromium and its chromedriver")


def in_ci() -> bool:
    """Whether ``CI`` is set to a true value (there a missing browser is a failure, not a skip)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def find_browser() -> tuple[str | None, str | None]:
    """``(chromium, chromedriver)`` paths; either is None when it is not installed."""
    browser = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def missing_message(browser: str | None, driver: str | None) -> str:
    missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
    return f"the browser test needs {missing}: {INSTALL_HINT}"


def start_chromium(browser: str, driver: str, log: Path, width: int = 1500, height: int = 1100,
                   env: dict[str, str] | None = None):
    """A selenium ``webdriver.Chrome`` on a headless Chromium (Japanese UI language).

    ``env`` adds variables to the browser's environment (e.g. ``FONTCONFIG_FILE``).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--lang=ja-JP", "--no-first-run",
                "--hide-scrollbars"):
        options.add_argument(arg)
    service = Service(executable_path=driver, log_output=str(log),
                      env=dict(os.environ, **env) if env else None)
    return webdriver.Chrome(service=service, options=options)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; remembers every request and its status instead of logging to stderr."""

    requests: list[tuple[str, int]]

    def log_request(self, code="-", size="-") -> None:  # noqa: D102 - http.server's hook
        self.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """Serve ``folder`` on 127.0.0.1 (a free port) while in the block.

    Yields ``(base_url, requests)``; ``requests`` fills with ``(path, status)`` as the browser
    asks for pages, images and scripts, so a caller can check that nothing was missing (404).
    """
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
