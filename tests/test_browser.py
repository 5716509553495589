"""The course in a real browser: JupyterLab on loopback, headless Chromium driven by selenium.

Opens a lesson that uses the explorer, runs all its cells, and checks what a learner would see:
no cell shows an error, the explorer's widgets rendered (with its Japanese labels), and moving a
slider redraws the picture. Screenshots go to ``build/screenshots/``.

Chromium comes from the system (Debian: ``apt-get install chromium chromium-driver fonts-noto-cjk``);
nothing here downloads a browser or a driver. Without it the test is skipped on a learner's machine
and fails in CI (``CI=true``), where `.ci/run` installs it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LESSON = "10_exam_review.ipynb"
SCREENSHOTS = ROOT / "build" / "screenshots"
INSTALL_HINT = ("sudo apt-get install chromium chromium-driver fonts-noto-cjk "
                "(Debian/Ubuntu), then run `make test` again; or point $CHROMIUM and $CHROMEDRIVER "
                "at a Chromium and its chromedriver")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _find_browser() -> tuple[str, str]:
    browser = os.environ.get("CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if not p)
    message = f"the browser test needs {missing}: {INSTALL_HINT}"
    if _in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the lesson; always shut down after."""
    pytest.importorskip("selenium")
    pytest.importorskip("jupyterlab")
    browser, driver = _find_browser()
    work = tmp_path_factory.mktemp("lab")
    root_dir = work / "notebooks"
    root_dir.mkdir()
    shutil.copy(ROOT / "notebooks" / LESSON, root_dir / LESSON)  # the committed lesson stays untouched
    settings = work / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token = uuid.uuid4().hex
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(work / "config"),
               JUPYTER_RUNTIME_DIR=str(work / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"))
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--port-retries=0", f"--ServerApp.root_dir={root_dir}",
               f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    log = open(work / "jupyter.log", "w")
    server = subprocess.Popen(command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({server.returncode}); see {work / 'jupyter.log'}:\n"
                                   + (work / "jupyter.log").read_text()[-3000:])
            try:
                if _get(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not answer within 120 s")
            time.sleep(0.5)
        yield {"base": base, "token": token, "browser": browser, "driver": driver, "work": work}
    finally:
        _stop(server, base, token)
        log.close()


def _stop(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server and its kernels down: politely through the API, then by signal."""
    if server.poll() is None:
        try:
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
    try:  # kernels left in the server's own process group (it was started in a new session)
        os.killpg(server.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def driver(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = lab["browser"]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1100", "--lang=ja-JP", "--no-first-run"):
        options.add_argument(arg)
    service = Service(executable_path=lab["driver"], log_output=str(lab["work"] / "chromedriver.log"))
    d = webdriver.Chrome(service=service, options=options)
    try:
        yield d
    finally:
        d.quit()


def _wait(driver, script: str, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if value:
            return value
        if time.monotonic() > deadline:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SCREENSHOTS / "timeout.png"))
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} "
                                 f"(screenshot: {SCREENSHOTS / 'timeout.png'})")
        time.sleep(interval)


NOTEBOOK_MODEL = """
const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!w || !w.content || !w.content.model || !w.sessionContext) return null;
"""

ALL_RAN = NOTEBOOK_MODEL + """
const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
if (!kernel || kernel.status !== 'idle') return false;
const cells = w.content.model.cells;
for (let i = 0; i < cells.length; i++) {
  const c = cells.get(i);
  if (c.type === 'code' && c.sharedModel.getSource().trim() && c.executionCount === null) return false;
}
return document.querySelectorAll('.jp-InputPrompt').length > 0 &&
       ![...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
"""

ERRORS = NOTEBOOK_MODEL + """
const found = [];
const cells = w.content.model.cells;
for (let i = 0; i < cells.length; i++) {
  const c = cells.get(i);
  if (c.type !== 'code') continue;
  for (let j = 0; j < c.outputs.length; j++) {
    const o = c.outputs.get(j).toJSON();
    if (o.output_type === 'error') found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
  }
}
for (const out of document.querySelectorAll('.jp-OutputArea-output')) {
  const t = out.innerText || '';
  if (t.includes('Traceback (most recent call last)') || t.includes('Error displaying widget'))
    found.push('shown: ' + t.slice(0, 200));
}
return found;
"""

EXPLORER = """
const box = document.querySelector('.gradcam-explorer');
if (!box) return null;
const imgs = [...box.querySelectorAll('img')];
return {sliders: box.querySelectorAll('.widget-slider, .jupyter-widget-slider').length,
        selects: box.querySelectorAll('select').length,
        images: imgs.map(i => i.src), loaded: imgs.map(i => i.complete && i.naturalWidth),
        text: box.innerText};
"""


def test_lesson_runs_in_jupyterlab_and_the_explorer_reacts(lab, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{lab['base']}/lab/tree/{LESSON}?token={lab['token']}&reset")
    _wait(driver, NOTEBOOK_MODEL + "return w.sessionContext.session && "
                  "w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle';",
          180, "the notebook to open with an idle kernel")
    driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    time.sleep(2)
    _wait(driver, ALL_RAN, 900, "every cell to run", interval=2)

    errors = driver.execute_script(ERRORS)
    assert errors == [], f"cells show errors in JupyterLab: {errors}"

    # the explorer rendered as widgets, with its Japanese labels
    box = driver.find_element(By.CSS_SELECTOR, ".gradcam-explorer")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    state = _wait(driver, EXPLORER.replace("return {", "const s = {").replace(
        "text: box.innerText};", "text: box.innerText}; "
        # innerText is '' until the scrolled-to cell is laid out (JupyterLab skips off-screen cells)
        "return (s.loaded.every(Boolean) && s.text.trim()) ? s : null;"),
        60, "the explorer's pictures to load and its labels to be laid out")
    assert state["sliders"] >= 2 and state["selects"] >= 3, state
    assert len(state["images"]) == 2
    for label in ("画像", "クラス", "層", "手法", "重ね具合", "予測"):
        assert label in state["text"], label

    # move the overlay-alpha slider with the keyboard (as a learner can) and see the picture change
    handles = box.find_elements(By.CSS_SELECTOR, ".noUi-handle, .slider-container [role=slider]")
    assert len(handles) >= 2, "no slider handles found"
    before = state["images"]
    alpha_handle = handles[-1]
    driver.execute_script("arguments[0].focus();", alpha_handle)
    alpha_handle.send_keys(Keys.HOME)  # alpha 0: the plain image
    after = _wait(driver, EXPLORER.replace("return {", "const s = {").replace(
        "text: box.innerText};", "text: box.innerText}; "
        f"return (s.images[1] !== {json.dumps(before[1])} && s.loaded.every(Boolean)) ? s : null;"),
        60, "the overlay to redraw after moving the alpha slider")
    assert after["images"][1] != before[1]
    assert "0.00" in after["text"]  # the slider's read-out

    # and the image slider changes the input picture
    image_handle = handles[0]
    driver.execute_script("arguments[0].focus();", image_handle)
    image_handle.send_keys(Keys.ARROW_RIGHT)
    moved = _wait(driver, EXPLORER.replace("return {", "const s = {").replace(
        "text: box.innerText};", "text: box.innerText}; "
        f"return (s.images[0] !== {json.dumps(after['images'][0])} && s.loaded.every(Boolean)) ? s : null;"),
        60, "the input picture to change after moving the image slider")
    assert moved["images"][0] != after["images"][0]

    # put the view back to a readable state and save the screenshots
    driver.execute_script("arguments[0].focus();", alpha_handle)
    for _ in range(10):
        alpha_handle.send_keys(Keys.ARROW_RIGHT)  # alpha 0.5
    time.sleep(3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    driver.save_screenshot(str(SCREENSHOTS / "lesson10_jupyterlab.png"))
    box.screenshot(str(SCREENSHOTS / "explorer.png"))
    assert (SCREENSHOTS / "explorer.png").stat().st_size > 10_000
