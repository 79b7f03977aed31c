"""igw.Gallery in JupyterLab (headless Chromium) over a 10,000-image result: thumbnails drawn
by the renderer, asked for as they scroll into view, sorting and filtering, and the
three-panel view a click opens. Screenshots wide and narrow, light and dark."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import render_maps

from .browser import (
    canvas_pixels,
    is_blank,
    jupyter_server,
    open_notebook,
    run_all_cells,
    write_notebook,
)
from .models import tiny_cnn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNT = 10_000
SIZE = 16
MODEL_SEED = 2
NAMES = ["circle", "<b>square</b>", "triangle", "star"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (COUNT, SIZE, SIZE, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("gallery") / "store"
    igw.explain_dataset(
        tiny_cnn(SIZE, seed=MODEL_SEED),
        images,
        labels=rng.integers(0, 4, COUNT),
        steps=2,
        chunk_size=256,
        store=path,
        progress=False,
    )
    return path


def _requested(page) -> int:
    return int(page.locator(".igg").get_attribute("data-requested"))


def _first_shown(page) -> int:
    return int(page.locator(".igg-cell:not([hidden])").first.get_attribute("data-image"))


def _wait_drawn(page, image: int) -> None:
    page.locator(f".igg-cell[data-image='{image}'] .igg-details:not(:text('loading…'))").wait_for(
        timeout=60_000
    )


def test_gallery_in_jupyterlab(chromium, store, tmp_path, artifacts):
    result = igw.open_dataset(store)
    table = result.table
    by_delta = table.sort_values("delta", ascending=False, kind="stable").index.tolist()
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "gallery.ipynb",
            [
                "import ig_widget as igw\nfrom tests.models import tiny_cnn\n"
                f"g = igw.Gallery(igw.open_dataset({str(store)!r}), "
                f"model=tiny_cnn({SIZE}, seed={MODEL_SEED}), class_names={NAMES!r})\ng"
            ],
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        open_notebook(page, server, "gallery.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)

        page.locator(".igg-cell").first.wait_for(timeout=120_000)
        _wait_drawn(page, by_delta[0])
        assert page.locator(".igg-count").text_content() == f"{COUNT} of {COUNT} images"
        assert _first_shown(page) == by_delta[0]
        # The thumbnail is the renderer's picture of the stored maps.
        cell = page.locator(f".igg-cell[data-image='{by_delta[0]}']")
        rgb, maps = result.thumbnails([by_delta[0]])
        expected = render_maps(rgb[0], maps[0, 0], maps[0, 1])
        drawn = canvas_pixels(cell.locator("canvas.igg-picture"))
        assert not is_blank(drawn)
        assert np.abs(drawn.astype(int) - expected).max() <= 1
        np.testing.assert_array_equal(canvas_pixels(cell.locator("canvas.igg-input")), rgb[0])
        # Class names are text.
        assert page.locator(".igg b").count() == 0
        first_requests = _requested(page)
        assert 0 < first_requests < 200
        page.screenshot(path=artifacts / "gallery-wide-light.png")

        # Scrolling to the end asks for the thumbnails there, not for the 10,000.
        page.locator(".igg-scroller").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
        _wait_drawn(page, by_delta[-1])
        assert first_requests < _requested(page) < first_requests + 200
        page.locator(".igg-scroller").evaluate("(el) => { el.scrollTop = 0; }")

        # Filtering and sorting run in the kernel; the browser shows the new order.
        page.locator("input.igg-misclassified").check()
        wrong = table[~table["correct"]].sort_values("delta", ascending=False, kind="stable")
        page.locator(".igg-count", has_text=f"{len(wrong)} of {COUNT} images").wait_for()
        _wait_drawn(page, int(wrong.index[0]))
        assert _first_shown(page) == int(wrong.index[0])
        assert page.locator(".igg-cell.igg-wrong").count() > 0
        page.locator("select.igg-sort").select_option("score")
        page.locator("button.igg-direction").click()
        by_score = wrong.sort_values("score", kind="stable")
        page.wait_for_function(
            "(first) => document.querySelector('.igg-cell:not([hidden])')?.dataset.image === first",
            arg=str(int(by_score.index[0])),
            timeout=30_000,
        )

        # A display option redraws every thumbnail in the browser.
        _wait_drawn(page, int(by_score.index[0]))
        picture = page.locator(
            f".igg-cell[data-image='{int(by_score.index[0])}'] canvas.igg-picture"
        )
        before = canvas_pixels(picture)
        requested = _requested(page)
        drawn_before = picture.evaluate("(canvas) => canvas.toDataURL()")
        page.locator("select.igg-polarity").select_option("negative")
        page.wait_for_function(
            "([canvas, before]) => canvas.toDataURL() !== before",
            arg=[picture.element_handle(), drawn_before],
            timeout=10_000,
        )
        assert np.any(canvas_pixels(picture) != before)
        assert _requested(page) == requested

        # Clicking opens the live three-panel view of that image below the grid.
        chosen = int(by_score.index[1])
        page.locator(f".igg-cell[data-image='{chosen}']").click()
        panels = page.locator(".igg-detail .igw canvas")
        panels.nth(2).wait_for(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.igg-detail .igw canvas')]"
            ".slice(0, 3).every((c) => c.width > 0)",
            timeout=30_000,
        )
        for index in range(3):
            assert not is_blank(canvas_pixels(panels.nth(index)))
        assert page.locator(".igg-detail-title").text_content().startswith(f"Image #{chosen}")
        assert page.locator(".igg-detail .igw-compute-button").is_enabled()
        page.screenshot(path=artifacts / "gallery-detail-wide-light.png", full_page=True)

        page.set_viewport_size({"width": 700, "height": 1000})
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / "gallery-detail-narrow-light.png", full_page=True)

        light = page.locator(".igg").evaluate("(el) => getComputedStyle(el).color")
        page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
        page.get_by_text("Theme", exact=True).hover()
        page.get_by_text("JupyterLab Dark", exact=True).click()
        page.wait_for_function(
            "(light) => getComputedStyle(document.querySelector('.igg')).color !== light",
            arg=light,
            timeout=30_000,
        )
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / "gallery-narrow-dark.png")
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.wait_for_timeout(500)
        page.screenshot(path=artifacts / "gallery-wide-dark.png", full_page=True)

        # Keyboard: from the clicked image, the arrow moves on; Enter opens that one.
        page.locator(".igg-scroller").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        third = int(by_score.index[2])
        page.locator(".igg-detail-title", has_text=f"Image #{third}").wait_for(timeout=60_000)
        page.keyboard.press("Escape")
        page.locator(".igg-detail").wait_for(state="hidden", timeout=30_000)
        assert errors == []
        page.close()
