"""The spread panel in a real browser (headless Chromium): the Stability button in
JupyterLab with a live kernel, and the exported page wide and narrow, drawn as the
Python renderer draws the spread."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import display_image, render_maps

from ..browser import (
    canvas_pixels,
    is_blank,
    jupyter_server,
    open_notebook,
    run_all_cells,
    sample_image,
    write_notebook,
)
from ..models import tiny_cnn

pytestmark = pytest.mark.browser

SIZE = 32
MODEL_SEED = 2
# Elements wider than the widget (what would need a horizontal scroll), and texts cut.
OVERFLOWING = """() => {
    const root = document.querySelector('.igw').getBoundingClientRect();
    return [...document.querySelectorAll('.igw *')]
        .filter((node) => node.getBoundingClientRect().right > root.right + 1)
        .map((node) => node.className || node.tagName);
}"""
CUT_TEXT = """() => [...document.querySelectorAll('.igw-panel-title, .igw-description')]
    .filter((node) => node.scrollWidth > node.clientWidth + 1)
    .map((node) => node.textContent)"""


def test_the_stability_button_shows_the_spread_in_jupyterlab(chromium, tmp_path, artifacts):
    setup = (
        "import ig_widget as igw\n"
        "from tests.browser import sample_image\n"
        "from tests.models import tiny_cnn\n"
        f"w = igw.IGWidget(tiny_cnn({SIZE}, seed={MODEL_SEED}), sample_image({SIZE}), steps=16)\n"
        "w"
    )
    with jupyter_server(tmp_path, "lab") as server:
        write_notebook(server.root / "stability.ipynb", [setup])
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        open_notebook(page, server, "stability.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
        panel = page.locator(".igw-panel-stability")
        assert panel.is_hidden()
        page.get_by_role("button", name="Stability", exact=True).click()
        panel.wait_for(state="visible", timeout=120_000)
        title = panel.locator(".igw-panel-title").text_content()
        assert title == "Spread over 5 runs"
        description = panel.locator(".igw-description").text_content()
        assert "(seed=0, seed=1, seed=2, seed=3, seed=4)" in description
        assert "Mean rank correlation between the runs" in description
        assert not is_blank(canvas_pixels(panel.locator("canvas")))
        page.locator(".igw").screenshot(path=artifacts / "stability-lab.png")
        # Another class: a new result, whose spread is not computed yet.
        select = page.locator("select.igw-class")
        values = select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
        select.select_option(next(v for v in values if v != select.input_value()))
        panel.wait_for(state="hidden", timeout=60_000)
        assert errors == []
        page.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    widget = igw.IGWidget(tiny_cnn(SIZE, seed=MODEL_SEED), sample_image(SIZE), steps=16)
    result = widget.compute_stability()
    path = widget.to_html(tmp_path_factory.mktemp("export") / "stability.html")
    return widget, result, path


@pytest.mark.parametrize("width", [1200, 480])
def test_the_exported_spread_panel_wide_and_narrow(chromium, exported, artifacts, width):
    widget, result, path = exported
    page = chromium.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    panel = page.locator(".igw-panel-stability")
    panel.locator("canvas").wait_for()
    shown = canvas_pixels(panel.locator("canvas"))
    rgb = display_image(sample_image(SIZE))
    spread = result.spread.astype(np.float32)
    options = {**widget.render_options(), "polarity": "positive"}
    expected = render_maps(rgb, spread, np.zeros_like(spread), **options)
    assert not is_blank(shown)
    assert np.abs(shown.astype(int) - expected).max() <= 1
    description = panel.locator(".igw-description").text_content()
    assert f"Mean rank correlation between the runs {result.rank_correlation:.3f}" in description
    assert f"{100 * result.top_share:.0f} % of the top 5 % pixels" in description
    box = panel.bounding_box()
    assert box["width"] >= 180 and box["x"] + box["width"] <= width
    assert page.evaluate(OVERFLOWING) == []
    assert page.evaluate(CUT_TEXT) == []
    # The polarity shown does not hide the spread: it has one sign.
    page.locator("select.igw-polarity").select_option("negative")
    assert np.abs(canvas_pixels(panel.locator("canvas")).astype(int) - expected).max() <= 1
    page.locator("select.igw-polarity").select_option("positive")
    page.screenshot(path=artifacts / f"stability-standalone-{width}.png", full_page=True)
    assert errors == []
    page.close()
