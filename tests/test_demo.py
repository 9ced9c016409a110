"""``ganzoo demo``, end to end in a real browser: the command serves a model's page on a local port and headless
Chromium (Debian's ``chromium``, driven by Playwright's Python client) uses it as a person would.

``GANZOO_SCREENSHOTS=DIR`` keeps a screenshot of each page (the README's come from here)."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ganzoo
from ganzoo.gan import to_pil
from tests.conftest import need

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("GANZOO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need(CHROMIUM is not None, "Chromium is not installed (apt-get install -y chromium; or set GANZOO_CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """``ganzoo demo NAME`` in its own process, on a free port."""

    def __init__(self, name: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        cmd = [sys.executable, "-m", "ganzoo.cli", "demo", name, "--port", str(self.port)]
        self.process = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"ganzoo demo {name} exited:\n{log.read_text()[-3000:]}"
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"ganzoo demo {name} did not answer within 180 s:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture
def open_demo(browser, tmp_path):
    demos, pages = [], []

    def open_(name: str):
        demo = Demo(name, tmp_path / f"{name}.log")
        demos.append(demo)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        pages.append(page)
        page.goto(demo.url)
        page.wait_for_selector("text=Model card", timeout=60_000)
        return page

    yield open_
    for page in pages:
        page.close()
    for demo in demos:
        demo.stop()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("GANZOO_SCREENSHOTS")
    if folder:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(Path(folder) / f"demo-{name}.png"))


def shown(page, selector: str, previous: str | None = None, timeout: float = 120) -> tuple[str, np.ndarray]:
    """The image under ``selector`` once it is there (and is not ``previous``): its URL and its pixels."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        images = page.locator(f"{selector} img")
        if images.count():
            src = images.last.get_attribute("src")
            if src and src != previous and images.last.evaluate("i => i.complete && i.naturalWidth > 0"):
                with urllib.request.urlopen(src) as r:
                    return src, np.asarray(Image.open(io.BytesIO(r.read())))
        time.sleep(0.2)
    raise AssertionError(f"no new image in {selector} within {timeout} s")


def clear(page) -> None:
    """Remove the input's image, and wait until it is gone."""
    page.locator("#input button[aria-label='Remove Image']").first.click()
    page.wait_for_selector("#input img", state="detached")


def upload(page, path: Path) -> None:
    """Upload ``path`` to the page's input, and wait until the server has it (a click before would send nothing)."""
    with page.expect_response(lambda r: "/upload" in r.url and r.request.method == "POST"):
        page.set_input_files("#input input[type=file]", str(path))


def set_number(page, selector: str, value: int) -> None:
    box = page.locator(f"{selector} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


@pytest.mark.parametrize(("name", "size"), [("dcgan-mnist", 32), ("stylegan2-mnist-32", 32), ("cgan-mnist", 32)])
def test_generation_demo_shows_the_models_image_and_the_seed_decides_it(open_demo, name, size):
    page = open_demo(name)
    src, grid = shown(page, "#samples")  # samples of seed 0 as the page opens
    assert max(grid.shape[:2]) > 3 * size  # a grid
    screenshot(page, name)
    set_number(page, "#num-images", 1)
    page.click("#generate")
    src, first = shown(page, "#samples", src)
    assert first.shape[:2] == (size, size)  # one image of the model's size, not a grid
    set_number(page, "#seed", 1)
    page.click("#generate")
    src, other = shown(page, "#samples", src)
    assert np.abs(other.astype(int) - first.astype(int)).mean() > 5  # another seed, another image
    set_number(page, "#seed", 0)
    page.click("#generate")
    src, again = shown(page, "#samples", src)
    assert np.array_equal(again, first)  # back to the seed, back to its image
    gan = ganzoo.load(name)
    assert np.array_equal(first, np.asarray(to_pil(gan.sample(1, seed=0))[0]))  # the library's sample of seed 0
    if gan.num_classes:  # the class picker: all of one class
        page.locator("#class input").first.click()
        page.get_by_role("option", name=gan.class_names[3], exact=True).click()
        page.click("#generate")
        _, three = shown(page, "#samples", src)
        assert np.array_equal(three, np.asarray(to_pil(gan.sample(1, seed=0, labels=3))[0]))


def test_stylegan2_demo_walks_and_mixes(open_demo):
    page = open_demo("stylegan2-mnist-32")
    shown(page, "#samples")
    page.get_by_role("tab", name="Latent walk").click()
    page.click("#walk")
    _, frame = shown(page, "#walk-output")
    assert frame.shape[:2] == (8 * 32, 8 * 32)  # shown 8x larger; a GIF, whose first frame is seed 1's sample
    page.get_by_role("tab", name="Style mixing").click()
    page.click("#mix")
    _, figure = shown(page, "#mix-output")
    assert figure.shape[:2] == (4 * 34 + 2, 4 * 34 + 2)  # 3 row and 3 column seeds, their sources, a blank corner
    screenshot(page, "stylegan2-mnist-32-mixing")


def test_translation_demo_returns_an_image_of_the_uploads_size_and_refuses_a_huge_one(open_demo, tmp_path):
    page = open_demo("pix2pix-maps")
    page.locator("#examples img").first.click()  # a generated example
    page.click("#translate")
    src, _ = shown(page, "#output")
    screenshot(page, "pix2pix-maps")
    clear(page)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    upload(page, tmp_path / "photo.png")
    page.click("#translate")
    _, out = shown(page, "#output", src)
    assert out.shape[:2] == (120, 200)
    expected = ganzoo.load("pix2pix-maps").translate(Image.open(tmp_path / "photo.png"))  # what the library makes
    assert np.abs(out.astype(int) - np.asarray(expected, dtype=int)).max() <= 1
    Image.new("RGB", (1100, 1000), "gray").save(tmp_path / "huge.png")
    clear(page)
    upload(page, tmp_path / "huge.png")
    page.click("#translate")
    page.wait_for_selector("text=this demo takes at most", timeout=60_000)
    page.click("#translate")  # the app still answers
    page.wait_for_selector("text=this demo takes at most", timeout=60_000)


def test_super_resolution_demo_returns_the_4x_image_to_compare_and_download(open_demo, tmp_path):
    page = open_demo("srresnet-x4")
    page.locator("#examples img").first.click()  # the shipped example
    page.click("#upscale")
    src, out = shown(page, "#slider", timeout=180)
    assert out.shape[:2] == (4 * 96, 4 * 96)
    screenshot(page, "srresnet-x4")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "small.png")
    clear(page)
    upload(page, tmp_path / "small.png")
    page.click("#upscale")
    _, out = shown(page, "#slider", src)
    assert out.shape[:2] == (120, 160)
    link = page.locator("#download a").first
    link.wait_for(timeout=30_000)
    with urllib.request.urlopen(link.get_attribute("href")) as r:
        downloaded = Image.open(io.BytesIO(r.read()))
    assert downloaded.size == (160, 120)
    expected = ganzoo.load("srresnet-x4").upscale(Image.open(tmp_path / "small.png"))  # what the library makes
    assert np.array_equal(np.asarray(downloaded), np.asarray(expected))
    assert np.array_equal(out, np.asarray(expected))  # the slider's "after" side
    Image.new("RGB", (600, 500), "gray").save(tmp_path / "huge.png")
    clear(page)
    upload(page, tmp_path / "huge.png")
    page.click("#upscale")
    page.wait_for_selector("text=this demo takes at most", timeout=60_000)
    (tmp_path / "notes.png").write_text("not an image")  # a wrong format, whatever its name says
    clear(page)
    upload(page, tmp_path / "notes.png")
    page.click("#upscale")
    page.wait_for_selector("text=notes.png is not an image this page can read", timeout=60_000)
