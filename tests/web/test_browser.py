"""The explorer in a real browser: Debian's headless chromium, driven by Selenium through chromedriver.

Fails (never skips) when the browser is missing: `.ci/install-browser` installs it. The page is served by
a real ``stylegan explore`` process; pixels read back from the page are compared with ``stylegan generate``.
With STYLEGAN_SCREENSHOT=PATH set, saves the page's screenshot there (the README's is docs/explore.png:
``STYLEGAN_SCREENSHOT=docs/explore.png python -m pytest tests/web/test_browser.py``); a plain run writes nothing
into the tree.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from stylegan.cli import main
from tests.detector_standins import write_detectors
from tests.web.conftest import png_pixels

ROOT = Path(__file__).resolve().parents[2]


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver are missing: run .ci/install-browser"
    return chromium, driver


@pytest.fixture
def server(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_DETECTOR_DIR=str(write_detectors(tmp_path / "det")))
    proc = subprocess.Popen([sys.executable, "-m", "stylegan", "explore", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield line.split("open ")[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def driver(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1250",
                "--force-color-profile=srgb"):
        options.add_argument(arg)
    (tmp_path / "downloads").mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield d
    finally:
        d.quit()


def by_testid(driver, testid):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def set_value(driver, testid, value) -> None:
    """Set a control as a user would, firing the input event the page listens to."""
    driver.execute_script("const e = arguments[0]; e.value = arguments[1];"
                          "e.dispatchEvent(new Event('input', {bubbles: true}));", by_testid(driver, testid), str(value))


def wait_for(predicate, timeout=30.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shown_pixels(driver, must_contain: str) -> np.ndarray:
    """The page's image, once it shows a query containing ``must_contain``, read back from a canvas (gray)."""
    wait_for(lambda: by_testid(driver, "image").get_attribute("data-state") == "ready" and
             must_contain in (by_testid(driver, "image").get_attribute("data-query") or ""), what=must_contain)
    rgba = driver.execute_script("""
        const img = arguments[0], c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return Array.from(ctx.getImageData(0, 0, c.width, c.height).data);""", by_testid(driver, "image"))
    side = int(round((len(rgba) // 4) ** 0.5))
    return np.array(rgba, dtype=np.uint8).reshape(side, side, 4)[:, :, 0]


def generated(tmp_path, *args) -> np.ndarray:
    out = tmp_path / f"gen{len(list(tmp_path.glob('gen*')))}"
    assert main(["generate", *args, "--outdir", str(out), "--quiet"]) == 0
    (path,) = out.glob("*.png")
    return png_pixels(path.read_bytes())


def test_explorer_in_chromium(server, driver, tmp_path):
    driver.get(server)
    # seed, psi and class set through the page's controls: the pixels are generate's
    wait_for(lambda: by_testid(driver, "image").get_attribute("data-state") == "ready", what="first frame")
    set_value(driver, "seed", 42)
    set_value(driver, "psi", 0.7)
    set_value(driver, "class", 3)
    page = shown_pixels(driver, "seed=42&psi=0.7&class=3")
    assert np.array_equal(page, generated(tmp_path, "--seeds", "42", "--trunc", "0.7", "--class", "3"))
    assert by_testid(driver, "command").get_attribute("value") == "stylegan generate --seeds 42 --trunc 0.7 --class 3"

    # a mix seed and one ticked layer change the image
    set_value(driver, "mix-seed", 7)
    by_testid(driver, "mix-layer-0").click()
    mixed = shown_pixels(driver, "mix_layers=0")
    assert not np.array_equal(mixed, page)

    # an uploaded image is projected (stand-in VGG16), and the result becomes the latent
    target = tmp_path / "photo.png"
    PIL.Image.fromarray((np.arange(40 * 50) % 253).reshape(40, 50).astype(np.uint8)).save(target)
    by_testid(driver, "mix-layer-0").click()  # mixing off again
    set_value(driver, "project-steps", 5)
    by_testid(driver, "upload").send_keys(str(target))
    wait_for(lambda: by_testid(driver, "project-status").text == "done", timeout=40, what="projection")
    projected = shown_pixels(driver, "w=")

    # the downloaded w renders the same image with generate --projected-w
    by_testid(driver, "download-w").click()
    w_file = wait_for(lambda: next((tmp_path / "downloads").glob("*.npz"), None), what="download")
    time.sleep(0.2)  # chromium renames the finished download into place; let it settle
    assert np.array_equal(projected, generated(tmp_path, "--projected-w", str(w_file)))

    # back to a seed for the README's screenshot
    by_testid(driver, "use-seed").click()
    set_value(driver, "seed", 5)
    shown_pixels(driver, "seed=5&")
    shot = driver.get_screenshot_as_png()
    assert PIL.Image.open(io.BytesIO(shot)).size[0] >= 800
    target = os.environ.get("STYLEGAN_SCREENSHOT")
    if target:
        target = ROOT / target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp_shot = target.with_name(f".{target.name}.tmp")
        tmp_shot.write_bytes(shot)
        tmp_shot.replace(target)
