"""Headless Chromium (Debian's chromium + chromedriver through selenium) for report tests."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ALL_IMAGES_LOADED = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"


def start_browser():
    """Headless Chromium through selenium (skips with the reason if it cannot be had)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium==4.51.0)")
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not Path(binary).exists() and not shutil.which(Path(binary).name):
            pytest.skip(f"{binary} not found (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--window-size=1280,2000", "--hide-scrollbars"):
        options.add_argument(flag)
    driver_path = CHROMEDRIVER if Path(CHROMEDRIVER).exists() else shutil.which("chromedriver")
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    except Exception as exc:  # noqa: BLE001 - any start failure means no browser on this machine
        pytest.skip(f"headless Chromium could not be started: {type(exc).__name__}: {exc}")
    driver.set_page_load_timeout(30)
    return driver




def check_report(driver, index: Path, screenshot: Path | None = None) -> list[str]:
    """Open ``index`` and every cluster page it links to; assert that every image loaded.

    Returns the cluster page URLs; saves a screenshot of the index if ``screenshot`` is given.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(index.as_uri())
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert driver.execute_script("return document.images.length") >= 3
    assert driver.execute_script(ALL_IMAGES_LOADED), f"an image of {index} did not load"
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    hrefs = sorted({a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[href^='cluster_']")})
    for href in hrefs:
        driver.get(href)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        number = re.search(r"cluster_(\d+)\.html$", href).group(1)
        assert driver.find_element(By.TAG_NAME, "h1").text == f"Cluster {number}"
        assert driver.execute_script(ALL_IMAGES_LOADED), f"an image of {href} did not load"
    return hrefs


def check_screening(driver, index: Path, screenshot: Path | None = None) -> list[str]:
    """Open the screening page from ``index``'s link; assert that every image loaded and return the
    material ids of its shortlist table, in order (the second column of the table under "Shortlist")."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(index.as_uri())
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.find_element(By.CSS_SELECTOR, "a[href='screening.html']").click()
    wait.until(lambda d: d.current_url.endswith("screening.html")
               and d.execute_script("return document.readyState") == "complete")
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Screening")
    assert driver.execute_script(ALL_IMAGES_LOADED), "an image of screening.html did not load"
    rows = driver.execute_script(
        "const h = document.getElementById('shortlist'); let t = h.nextElementSibling;"
        "while (t && t.tagName !== 'TABLE') { t = t.querySelector('table') || t.nextElementSibling; }"
        "return t ? [...t.querySelectorAll('tbody tr')].map(r => r.cells[1].innerText) : [];")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    return rows
