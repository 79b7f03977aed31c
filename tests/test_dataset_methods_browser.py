"""igw.Gallery of a Grad-CAM store in JupyterLab (headless Chromium): an opened image shows
the input and its Grad-CAM map (no plain gradient: the store has none), and a comparison
with an integrated-gradients store of the same images shows both views side by side."""

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
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

COUNT = 12


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    images, labels, masks = igw.demo.make_shapes(COUNT, seed=1)
    folder = tmp_path_factory.mktemp("methods")
    options = dict(labels=labels, masks=masks, progress=False)
    igw.explain_dataset(igw.demo.model(), images, steps=16, store=folder / "ig", **options)
    igw.explain_dataset(
        igw.demo.model(), images, explainer="gradcam", store=folder / "gradcam", **options
    )
    return folder / "ig", folder / "gradcam"


def _visible_panels(scope) -> list[str]:
    return scope.locator("figure.igw-panel:visible .igw-panel-title").all_text_contents()


def test_a_gradcam_stores_gallery_shows_the_input_and_its_map(chromium, stores, tmp_path):
    cam_store = stores[1]
    result = igw.open_dataset(cam_store)
    chosen = int(result.table.sort_values("score", ascending=False, kind="stable").index[0])
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "cams.ipynb",
            [f"import ig_widget as igw\ng = igw.Gallery({str(cam_store)!r})\ng"],
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1400})
        open_notebook(page, server, "cams.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        cell = page.locator(f".igg-cell[data-image='{chosen}']")
        cell.locator(".igg-details:not(:text('loading…'))").wait_for(timeout=120_000)
        # Sorted by score by default (no delta); the caption has no completeness error.
        first = page.locator(".igg-cell:not([hidden])").first.get_attribute("data-image")
        assert int(first) == chosen
        assert "Δ" not in cell.locator(".igg-details").text_content()

        cell.click()
        detail = page.locator(".igg-detail .igw")
        detail.locator("canvas[data-panel='Grad-CAM']").wait_for(timeout=60_000)
        page.wait_for_function(
            "() => document.querySelector(\".igg-detail canvas[data-panel='Grad-CAM']\")"
            "?.width > 0",
            timeout=30_000,
        )
        panels = _visible_panels(detail)
        assert panels[:2] == ["Input", "Grad-CAM"]
        assert "Normal gradients" not in panels
        # The map drawn is the renderer's picture of the stored Grad-CAM map.
        stored = result[chosen]
        positive, negative = channel_maps(stored.attributions)
        expected = render_maps(display_image(result.image(chosen)), positive, negative)
        drawn = canvas_pixels(detail.locator("canvas[data-panel='Grad-CAM']"))
        assert not is_blank(drawn)
        assert np.abs(drawn.astype(int) - expected).max() <= 1
        assert errors == []
        page.close()


def test_a_comparison_of_integrated_gradients_and_gradcam_shows_both_views(
    chromium, stores, tmp_path, artifacts
):
    ig_store, cam_store = stores
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "pair.ipynb",
            [
                "import ig_widget as igw\n"
                f"drift = igw.compare_datasets({str(ig_store)!r}, {str(cam_store)!r}, "
                "names=('IG', 'Grad-CAM'))\n"
                "g = igw.Gallery(drift, class_names=igw.demo.class_names)\ng"
            ],
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1600})
        open_notebook(page, server, "pair.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igg-cell .igg-details:not(:text('loading…'))").first.wait_for(
            timeout=120_000
        )
        page.locator(".igg-cell").first.click()
        sides = page.locator(".igg-detail-pair > .igg-detail-side")
        sides.nth(1).locator("canvas[data-panel='Grad-CAM']").wait_for(timeout=60_000)
        sides.nth(0).locator("canvas[data-panel='Integrated gradients']").wait_for(timeout=60_000)
        page.wait_for_timeout(500)
        assert _visible_panels(sides.nth(0))[:3] == [
            "Input",
            "Normal gradients",
            "Integrated gradients",
        ]
        right = _visible_panels(sides.nth(1))
        assert right[:2] == ["Input", "Grad-CAM"] and "Normal gradients" not in right
        for side, title in ((0, "Integrated gradients"), (1, "Grad-CAM")):
            assert not is_blank(
                canvas_pixels(sides.nth(side).locator(f"canvas[data-panel='{title}']"))
            )
        page.locator(".igg-detail").screenshot(path=artifacts / "gallery-ig-vs-gradcam.png")
        assert errors == []
        page.close()
