"""Reports opened as a user opens them: headless Chromium driven by selenium.

Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs them with
apt-get; selenium is in the dev extra). Outside CI a missing browser skips with the
reason; under ``CI=true`` it fails. ``S2EMU_SCREENSHOTS=DIR`` keeps a screenshot of the
first screen and of the first membrane-trace figure of every report looked at.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

#: the first screen a user sees: a laptop-sized window
VIEWPORT = (1400, 900)

_RENDERED = """
const plots = Array.from(document.querySelectorAll('.plot'));
return plots.every(d => d.querySelector('.main-svg') !== null);
"""

#: per figure: its height on the page and whether any trace has something to draw
_PLOTS = """
return Array.from(document.querySelectorAll('.plot')).map(d => ({
  id: d.id, height: d.offsetHeight,
  filled: (d._fullData || []).some(t => (t._length > 0) || (t.z && t.z.length > 0) ||
                                          (t.type === 'waterfall' && t.y && t.y.length > 0)),
  title: ((d.layout || {}).title || {}).text || ''}));
"""


def open_browser():
    """A headless Chromium with a 1400 x 900 viewport, or a skip (a failure under CI=true)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", browser), ("chromedriver (package chromium-driver)", driver))
               if not path]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip, the dev extra)")
    if missing:
        why = f"the browser test needs {', '.join(missing)}; .ci/run installs them"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingOptions", {"browser": "ALL"})
    # the driver's path given: selenium never tries to download one
    chrome = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": VIEWPORT[0], "height": VIEWPORT[1],
                                                                  "deviceScaleFactor": 1, "mobile": False})
    return chrome


def look(chrome, html: Path, finding: str, min_figures: int = 1) -> list[dict]:
    """Open ``html`` and check what a user would see: no console errors, ``finding`` shown in the
    first screen, every figure drawn with something in it. Returns the figures seen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chrome.get_log("browser")  # drop what an earlier page logged
    chrome.get(Path(html).resolve().as_uri())
    WebDriverWait(chrome, 60).until(lambda d: d.execute_script(_RENDERED))
    errors = [e["message"] for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{html.name}: console errors: {errors}"
    box = chrome.find_element(By.ID, "finding")
    assert box.is_displayed() and box.text == finding, f"{html.name}: finding shown as {box.text!r}"
    rect = box.rect
    assert rect["y"] + rect["height"] <= VIEWPORT[1], f"{html.name}: the finding ends at {rect} below the first screen"
    plots = chrome.execute_script(_PLOTS)
    assert len(plots) >= min_figures, f"{html.name}: {len(plots)} figures"
    empty = [p for p in plots if not p["filled"] or p["height"] < 150]
    assert not empty, f"{html.name}: empty or flat figures {empty}"
    _screenshots(chrome, html, plots)
    return plots


def _screenshots(chrome, html: Path, plots: list[dict]) -> None:
    folder = os.environ.get("S2EMU_SCREENSHOTS")
    if not folder:
        return
    from selenium.webdriver.common.by import By

    Path(folder).mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(html).stem)
    chrome.execute_script("window.scrollTo(0, 0);")
    chrome.save_screenshot(str(Path(folder) / f"{name}_first_screen.png"))
    traces = [p for p in plots if "around tick" in p["title"]]
    if traces:
        element = chrome.find_element(By.ID, traces[0]["id"])
        chrome.execute_script("arguments[0].scrollIntoView();", element)
        chrome.save_screenshot(str(Path(folder) / f"{name}_divergence.png"))
