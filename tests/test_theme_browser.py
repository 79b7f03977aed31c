"""Every host's theme: the view and the Gallery take JupyterLab's colours (light and
dark) and marimo's dark theme, and every text keeps 4.5:1 contrast (WCAG AA) with
what is behind it. Headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from .browser import (
    jupyter_server,
    low_contrast_texts,
    marimo_app,
    open_notebook,
    run_all_cells,
    write_notebook,
)

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SIZE = 32
NAMES = ["tabby cat", "<b>bold</b>", "golden retriever", "owl"]
SETUP = f"""\
import tempfile
import numpy as np
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

model = tiny_cnn({SIZE}, seed=2)
w = igw.IGWidget(model, sample_image({SIZE}), class_names={NAMES!r}, top_k=4, steps=8)
images = np.random.default_rng(0).integers(0, 256, (12, {SIZE}, {SIZE}, 3)).astype(np.uint8)
result = igw.explain_dataset(model, images, labels=np.arange(12) % 4, steps=2,
                             store=tempfile.mkdtemp() + "/store", progress=False)
g = igw.Gallery(result, model=model, class_names={NAMES!r})
w"""


# The view itself (the Gallery's display controls are wrapped in .igw too, for their styles).
VIEW = ".igw:not(.igg-display)"


def _assert_readable(page, selector: str) -> int:
    checked, failing = low_contrast_texts(page.locator(selector).first)
    assert failing == [], failing
    return checked


def test_jupyterlab_light_and_dark(chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path) as server:
        write_notebook(server.root / "theme.ipynb", [SETUP, "g"])
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        open_notebook(page, server, "theme.ipynb")
        run_all_cells(page)
        page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
        page.locator(".igg-cell .igg-details:not(:text('loading…'))").first.wait_for(
            timeout=120_000
        )
        light = {name: _assert_readable(page, name) for name in (VIEW, ".igg")}
        assert light[VIEW] > 40 and light[".igg"] > 20
        colour = page.locator(VIEW).evaluate("(el) => getComputedStyle(el).color")
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        page.wait_for_function(
            "(light) => getComputedStyle(document.querySelector('.igw')).color !== light",
            arg=colour,
            timeout=30_000,
        )
        page.wait_for_timeout(500)
        for name in (VIEW, ".igg"):
            assert _assert_readable(page, name) == light[name]
        page.locator(VIEW).screenshot(path=artifacts / "theme-lab-dark.png")
        page.locator(".igg").screenshot(path=artifacts / "theme-lab-dark-gallery.png")
        page.close()


def test_marimo_dark(chromium, tmp_path, artifacts):
    # marimo's "system" theme follows the browser's prefers-color-scheme, emulated dark here.
    config = tmp_path / "config" / "marimo" / "marimo.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[display]\ntheme = "system"\n')
    with marimo_app(tmp_path, NOTEBOOKS / "quickstart_marimo.py") as url:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
        page.goto(url)
        page.locator(".igw canvas").nth(2).wait_for(timeout=180_000)
        page.wait_for_function(
            "() => document.body.classList.contains('dark') || "
            "document.documentElement.classList.contains('dark')",
            timeout=30_000,
        )
        page.wait_for_timeout(1000)
        assert _assert_readable(page, ".igw") > 40
        page.screenshot(path=artifacts / "theme-marimo-dark.png", full_page=True)
        page.close()
