"""The widget in a real browser: JupyterLab and Notebook 7 with a live kernel,
and the standalone HTML export opened from a file:// URL. Headless Chromium."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import channel_maps, display_image, render_maps

from .browser import (
    canvas_pixels,
    is_blank,
    jupyter_server,
    open_notebook,
    run_all_cells,
    sample_image,
    write_notebook,
)
from .models import tiny_cnn

pytestmark = pytest.mark.browser

HOSTILE = '<b>bold</b><img src=x onerror="window.__igwPwned = 1">'
NAMES = ["tabby cat", HOSTILE, "<i>italic</i> & co", "golden retriever"]
SIZE = 32

MODEL_SEED = 2
NOTEBOOK_SETUP = f"""\
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

w = igw.IGWidget(tiny_cnn({SIZE}, seed={MODEL_SEED}), sample_image({SIZE}),
                 class_names={NAMES!r}, top_k=4, steps=40)
w"""

# Notes whether the progress bar was ever shown. Mutation records keep the
# value an attribute had before each change, so a bar shown and hidden again
# between two callbacks is still seen: hiding it records "not hidden" as old.
WATCH_PROGRESS = """() => {
    window.__igwBarShown = false;
    const bar = document.querySelector(".igw progress");
    new MutationObserver((records) => {
        if (!bar.hidden || records.some((record) => record.oldValue === null)) {
            window.__igwBarShown = true;
        }
    }).observe(bar, { attributes: true, attributeFilter: ["hidden"], attributeOldValue: true });
}"""


def _drag_slider(page, slider, fraction: float) -> None:
    """Drag a range input's thumb from its right end to ``fraction`` of its width."""
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] - 3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, y, steps=8)
    page.mouse.up()


def _wait_for_drawing(page, canvas) -> None:
    page.wait_for_function("(c) => c.width > 0", arg=canvas.element_handle())


def _assert_text_is_literal(page) -> None:
    labels = page.locator("select.igw-class option").all_text_contents()
    assert f"{HOSTILE} (" in " ".join(labels)
    assert any(label.startswith("<i>italic</i> & co (") for label in labels)
    assert page.locator(".igw b, .igw i, .igw img").count() == 0
    assert page.evaluate("() => window.__igwPwned") is None


@pytest.mark.parametrize("front_end", ["lab", "notebook"])
def test_widget_in_jupyter(front_end, chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path, front_end) as server:
        write_notebook(
            server.root / "widget.ipynb",
            [NOTEBOOK_SETUP, "import time\ntime.sleep(12)\nprint('kernel free')"],
        )
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        open_notebook(page, server, "widget.ipynb")
        # Listening from here on: Notebook 7.6's own keyboard-shortcut settings
        # throw a TypeError ("reading 'schema'") while the page loads.
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)

        canvases = page.locator(".igw canvas")
        canvases.nth(2).wait_for(timeout=120_000)
        _wait_for_drawing(page, canvases.nth(2))
        assert canvases.count() == 3
        for index in range(3):
            pixels = canvas_pixels(canvases.nth(index))
            assert pixels.shape == (SIZE, SIZE, 3) and not is_blank(pixels)

        # The kernel now sleeps in the second cell: a redraw cannot come from it.
        sleeping = page.locator(".jp-CodeCell").nth(1).locator(".jp-InputPrompt")
        page.wait_for_function(
            "(prompt) => prompt.textContent.includes('*')", arg=sleeping.element_handle()
        )
        kernel_free = page.locator(".jp-OutputArea-output", has_text="kernel free")
        before = canvas_pixels(canvases.nth(2))
        _drag_slider(page, page.locator("input.igw-clip-above"), 0.3)
        after = canvas_pixels(canvases.nth(2))
        assert "*" in sleeping.text_content()
        assert kernel_free.count() == 0
        assert np.any(before != after)
        clip = float(page.locator("input.igw-clip-above").input_value())
        assert 20 < clip < 40
        page.screenshot(path=artifacts / f"{front_end}-slider-moved.png", full_page=True)

        kernel_free.wait_for(timeout=60_000)
        page.evaluate(WATCH_PROGRESS)
        shown_target = page.locator("select.igw-class").input_value()
        other = next(v for v in ("0", "1", "2", "3") if v != shown_target)
        ig_before = canvas_pixels(canvases.nth(2))
        page.locator("select.igw-class").select_option(other)
        page.wait_for_function(
            "() => window.__igwBarShown"
            " && document.querySelector('.igw').dataset.computing === 'false'",
            timeout=60_000,
        )
        assert page.locator("select.igw-class").input_value() == other
        assert np.any(canvas_pixels(canvases.nth(2)) != ig_before)
        assert page.locator(".igw-error").is_hidden()

        # A compute option marks the view stale; the Compute button applies it.
        steps = page.locator("input.igw-steps")
        steps.fill("12")
        steps.press("Enter")
        page.locator(".igw-stale").wait_for()
        page.locator(".igw-compute-button").click()
        page.locator(".igw-details", has_text="13 points").wait_for(timeout=60_000)
        assert page.locator(".igw-stale").is_hidden()

        _assert_text_is_literal(page)
        page.locator(".igw").screenshot(path=artifacts / f"{front_end}-light.png")

        light_color = page.locator(".igw").evaluate("(el) => getComputedStyle(el).color")
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        page.wait_for_function(
            "(light) => getComputedStyle(document.querySelector('.igw')).color !== light",
            arg=light_color,
            timeout=30_000,
        )
        page.locator(".igw").screenshot(path=artifacts / f"{front_end}-dark.png")
        assert errors == []
        page.close()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    widget = igw.IGWidget(
        tiny_cnn(SIZE, seed=MODEL_SEED), sample_image(SIZE), class_names=NAMES, top_k=4, steps=16
    )
    path = widget.to_html(tmp_path_factory.mktemp("export") / "widget.html")
    return widget, path


@pytest.fixture
def standalone_page(chromium, exported):
    page = chromium.new_page(viewport={"width": 1200, "height": 700})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(exported[1].as_uri())
    page.locator(".igw canvas").nth(2).wait_for()
    yield page
    assert [url for url in requests if not url.startswith("file://")] == []
    assert errors == []
    page.close()


def test_standalone_export_renders_offline_and_redraws(standalone_page, exported, artifacts):
    widget, _ = exported
    page = standalone_page
    canvases = page.locator(".igw canvas")
    shown = [canvas_pixels(canvases.nth(i)) for i in range(3)]
    assert not any(is_blank(pixels) for pixels in shown)
    rgb = display_image(sample_image(SIZE))
    np.testing.assert_array_equal(shown[0], rgb)
    options = widget.render_options()
    gradient_maps = channel_maps(widget.result.gradients)
    ig_maps = channel_maps(widget.result.attributions)
    # The browser's renderer matches Python's on what it was sent (float32 maps).
    assert np.abs(shown[2].astype(int) - render_maps(rgb, *ig_maps, **options)).max() <= 1
    assert np.abs(shown[1].astype(int) - render_maps(rgb, *gradient_maps, **options)).max() <= 1

    _drag_slider(page, page.locator("input.igw-clip-above"), 0.3)
    clip = float(page.locator("input.igw-clip-above").input_value())
    moved = canvas_pixels(canvases.nth(2))
    assert np.any(moved != shown[2])
    expected = render_maps(rgb, *ig_maps, **{**options, "clip_above_percentile": clip})
    assert np.abs(moved.astype(int) - expected).max() <= 1

    page.get_by_role("checkbox", name="outlines").check()
    outlined = canvas_pixels(canvases.nth(2))
    expected = render_maps(
        rgb, *ig_maps, **{**options, "clip_above_percentile": clip, "outlines": True}
    )
    assert np.abs(outlined.astype(int) - expected).max() <= 1

    assert page.locator("input.igw-steps").is_disabled()
    assert page.locator(".igw-compute-button").is_disabled()
    assert page.locator("select.igw-class").is_disabled()
    page.screenshot(path=artifacts / "standalone.png", full_page=True)


def test_class_names_with_html_show_literally(standalone_page, artifacts):
    _assert_text_is_literal(standalone_page)
    label = standalone_page.locator(".igw-predicted-name").text_content()
    assert label in NAMES
    standalone_page.locator(".igw-header").screenshot(path=artifacts / "standalone-header.png")


def test_hover_reads_the_values_under_the_pointer(standalone_page, exported):
    widget, _ = exported
    canvas = standalone_page.locator(".igw canvas").nth(2)
    box = canvas.bounding_box()
    x, y = 20, 13
    canvas.hover(
        position={"x": (x + 0.5) * box["width"] / SIZE, "y": (y + 0.5) * box["height"] / SIZE}
    )
    text = standalone_page.locator(".igw-readout").text_content()
    ig = float(widget.result.attributions[y, x].mean())
    assert text.startswith(f"x {x}, y {y} · channel mean: gradient ")
    assert float(text.rsplit("IG ", 1)[1]) == pytest.approx(ig, rel=5e-3)
