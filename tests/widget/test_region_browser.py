"""A region target's outline in the exported page (headless Chromium): the input panel's
pixels are render.outline_region's, and the completeness line names the region; wide and
narrow screenshots."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import display_image, outline_region

from ..browser import canvas_pixels, sample_image

pytestmark = pytest.mark.browser

SIZE = 64


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    # A score map a quarter of the image's side: the outline is scaled to the input.
    segmenter = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(8, 3, padding="same", activation="tanh"),
            keras.layers.AveragePooling2D(4),
            keras.layers.Conv2D(3, 1),
        ]
    )
    mask = np.zeros((16, 16), bool)
    mask[3:11, 4:13] = True
    mask[6:8, 7:10] = False  # a hole: its border is outlined too
    image = sample_image(SIZE)
    widget = igw.IGWidget(
        segmenter,
        image,
        class_names=["sky", "road", "car"],
        target=igw.Region("road", mask=mask, reduce="mean"),
        steps=16,
    )
    path = widget.to_html(tmp_path_factory.mktemp("export") / "region.html")
    return widget, path, image, mask


@pytest.mark.parametrize("width", [1400, 700])
def test_the_exported_page_outlines_the_region(chromium, exported, artifacts, width):
    widget, path, image, mask = exported
    page = chromium.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    canvas = page.locator(".igw-panel-input canvas")
    canvas.wait_for()
    page.wait_for_function("(c) => c.width > 0", arg=canvas.element_handle())
    expected = outline_region(display_image(image), mask)
    np.testing.assert_array_equal(canvas_pixels(canvas), expected)
    assert (expected != display_image(image)).any(axis=2).sum() > 100
    delta = page.locator(".igw-delta").text_content().replace("\u2068", "").replace("\u2069", "")
    # The 16 x 16 map-sized mask's cells (4 x 4 image pixels each), not pixels.
    words = "the mean over 66 cells of the 16 x 16 score map"
    assert widget.summary["region"] == words
    assert delta.endswith(f"of {words} of score(road)"), delta
    description = page.locator(".igw-panel-input").text_content()
    assert "The explained region is outlined in yellow" in description
    page.locator(".igw").screenshot(path=artifacts / f"region-outline-{width}.png")
    assert errors == []
    page.close()
