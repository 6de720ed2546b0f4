"""The explorer in a real browser: Debian's headless chromium, driven by Selenium through chromedriver.

Fails (never skips) when the browser is missing: `.ci/install-browser` installs it. The page is served by
a real ``stylegan explore`` process on two networks (the built-in one and a tiny StyleGAN3 network the test
saves); pixels read back from the page are compared with ``stylegan generate`` or with the HTTP API's renders.
With STYLEGAN_SCREENSHOT=PATH set, saves the page's screenshot there (the README's is docs/explore.png:
``STYLEGAN_SCREENSHOT=docs/explore.png python -m pytest tests/web/test_browser.py``); a plain run writes nothing
into the tree.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import stylegan
from stylegan.cli import main
from tests.detector_standins import write_detectors
from tests.web.conftest import png_pixels, seed_dependent_sg3

ROOT = Path(__file__).resolve().parents[2]


def browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromedriver are missing: run .ci/install-browser"
    return chromium, driver


SG3_FILE = "sg3.safetensors"  # network 1 of the server, saved in its working folder


@pytest.fixture
def server(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", STYLEGAN_DETECTOR_DIR=str(write_detectors(tmp_path / "det")))
    stylegan.save_network({"G_ema": seed_dependent_sg3("t")}, tmp_path / SG3_FILE)
    proc = subprocess.Popen([sys.executable, "-m", "stylegan", "explore", "--network", "default", "--network",
                             SG3_FILE, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=tmp_path)
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


def select_network(driver, net: int) -> None:
    """Pick network ``net`` in the page's network menu, firing the change event it listens to."""
    driver.execute_script("const e = arguments[0]; e.value = arguments[1];"
                          "e.dispatchEvent(new Event('change', {bubbles: true}));", by_testid(driver, "network"),
                          str(net))


def shown_rgb(driver, must_contain: str) -> np.ndarray:
    """The page's image, once it shows a query containing ``must_contain``, read back from a canvas: ``[H, W, 3]``."""
    wait_for(lambda: by_testid(driver, "image").get_attribute("data-state") == "ready" and
             must_contain in (by_testid(driver, "image").get_attribute("data-query") or ""), what=must_contain)
    rgba = driver.execute_script("""
        const img = arguments[0], c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        return [c.width, c.height, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)];""",
        by_testid(driver, "image"))
    width, height, data = rgba
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]


def shown_pixels(driver, must_contain: str) -> np.ndarray:
    """The page's (grayscale) image as ``[H, W]``: see :func:`shown_rgb`."""
    return shown_rgb(driver, must_contain)[:, :, 0]


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W]`` or ``[H, W, C]`` (C = 1 or 3) → ``[H, W, 3]``, as a browser shows a gray PNG."""
    pixels = pixels if pixels.ndim == 3 else pixels[:, :, None]
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def api_render(server: str, query: str) -> np.ndarray:
    """``GET /api/render?query`` from the running server, as ``[H, W, 3]``."""
    with urllib.request.urlopen(server + "api/render?" + query, timeout=30) as r:
        assert r.status == 200 and r.headers["content-type"] == "image/png"
        return as_rgb(png_pixels(r.read()))


def api_json(server: str, path: str) -> dict:
    with urllib.request.urlopen(server + path, timeout=30) as r:
        return json.loads(r.read())


def generated(tmp_path, *args) -> np.ndarray:
    """``stylegan generate *args`` run in this process: its one image's pixels."""
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
    seed5 = shown_rgb(driver, "seed=5&")

    check_layer_viewer(driver, server, seed5)
    check_stylegan3_transform(driver, tmp_path)
    check_second_tab_during_projection(driver, server, tmp_path)


def check_layer_viewer(driver, server: str, output_image: np.ndarray) -> None:
    """Pick a layer and a channel: the page shows what GET /api/render gives for them, and differs from the image."""
    plain = "net=0&seed=5&psi=0.7&class=3&noise=const"
    set_value(driver, "layer", "b16.conv1")
    rgb_view = shown_rgb(driver, plain + "&layer=b16.conv1&channel=rgb")
    assert rgb_view.shape == (16, 16, 3)  # the layer's resolution, not the image's 32²
    assert np.array_equal(rgb_view, api_render(server, plain + "&layer=b16.conv1&channel=rgb"))
    set_value(driver, "channel", 5)
    channel_view = shown_rgb(driver, plain + "&layer=b16.conv1&channel=5")
    assert np.array_equal(channel_view, api_render(server, plain + "&layer=b16.conv1&channel=5"))
    assert channel_view.std() > 0 and not np.array_equal(channel_view, rgb_view)
    assert (channel_view[:, :, 0] == channel_view[:, :, 2]).all()  # one channel shows as gray
    assert by_testid(driver, "command").get_attribute("value").startswith("#")  # a layer view has no command
    set_value(driver, "layer", "")  # back to the output image
    back = shown_rgb(driver, plain)
    assert "layer=" not in by_testid(driver, "image").get_attribute("data-query")
    assert np.array_equal(back, output_image)


def check_stylegan3_transform(driver, tmp_path) -> None:
    """Switch to the StyleGAN3 network and move translate / rotate: the pixels are generate --translate --rotate."""
    select_network(driver, 1)
    wait_for(lambda: by_testid(driver, "translate-x").is_displayed(), what="the StyleGAN3 controls")
    set_value(driver, "psi", 1)
    set_value(driver, "seed", 4)
    plain = shown_rgb(driver, "net=1&seed=4&psi=1&noise=const")
    assert np.array_equal(plain, generated(tmp_path, "--network", str(tmp_path / SG3_FILE), "--seeds", "4"))
    assert not np.array_equal(plain, generated(tmp_path, "--network", str(tmp_path / SG3_FILE), "--seeds", "3"))
    set_value(driver, "translate-x", 0.2)
    set_value(driver, "translate-y", -0.1)
    set_value(driver, "rotate", 15)
    moved = shown_rgb(driver, "net=1&seed=4&psi=1&noise=const&translate=0.2%2C-0.1&rotate=15")
    expected = generated(tmp_path, "--network", str(tmp_path / SG3_FILE), "--seeds", "4", "--translate", "0.2,-0.1",
                         "--rotate", "15")
    assert np.array_equal(moved, expected) and not np.array_equal(moved, plain)
    assert by_testid(driver, "command").get_attribute("value") == \
        f"stylegan generate --network {SG3_FILE} --seeds 4 --translate 0.2,-0.1 --rotate 15"
    select_network(driver, 0)
    wait_for(lambda: not by_testid(driver, "translate-x").is_displayed(), what="the StyleGAN3 controls to hide")


def check_second_tab_during_projection(driver, server: str, tmp_path) -> None:
    """A long projection runs in the first tab; a second tab renders meanwhile; then the first tab cancels it."""
    first = driver.current_window_handle
    photo = tmp_path / "photo2.png"  # a new file, so the upload input fires its change event
    PIL.Image.fromarray((np.arange(32 * 32) * 7 % 251).reshape(32, 32).astype(np.uint8)).save(photo)
    set_value(driver, "project-steps", 10000)
    by_testid(driver, "upload").send_keys(str(photo))
    wait_for(lambda: by_testid(driver, "project-status").text.startswith("step "), what="projection progress")
    job = driver.execute_script("return jobId;")
    started = api_json(server, f"api/project/{job}")
    assert started["state"] == "running"

    driver.switch_to.new_window("tab")
    driver.get(server)
    wait_for(lambda: by_testid(driver, "image").get_attribute("data-state") == "ready", what="second tab's frame")
    set_value(driver, "seed", 9)
    set_value(driver, "class", 2)
    second = shown_pixels(driver, "seed=9&psi=1&class=2")
    assert np.array_equal(second, generated(tmp_path, "--seeds", "9", "--class", "2"))
    meanwhile = api_json(server, f"api/project/{job}")
    assert meanwhile["state"] == "running" and meanwhile["step"] > started["step"]  # both went on at once

    driver.close()
    driver.switch_to.window(first)
    by_testid(driver, "project-cancel").click()
    wait_for(lambda: by_testid(driver, "project-status").text == "cancelled", what="the cancelled projection")
    assert api_json(server, f"api/project/{job}")["state"] == "cancelled"
