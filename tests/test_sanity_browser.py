"""The widget's Sanity check button in JupyterLab (headless Chromium), used by keyboard:
the strip of the cascade under the panels, its similarities, its redraw with the display
options, names shown as text, and its layout wide and narrow."""

from __future__ import annotations

import numpy as np
import pytest

from .browser import canvas_pixels, is_blank, jupyter_server, open_notebook, run_all_cells
from .browser import write_notebook as write

pytestmark = pytest.mark.browser

HOSTILE = '<b>bold</b><img src=x onerror="window.__igwPwned = 1">'
SETUP = f"""\
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

w = igw.IGWidget(tiny_cnn(32, seed=2), sample_image(32), steps=8, target=1,
                 class_names=["cat", {HOSTILE!r}, "dog", "fish"])
w"""
KERNEL = 'print("kernel:", len(w.sanity["steps"]), "steps")'

# The view redraws in a microtask after the change: awaiting a frame lets it draw.
SET_CLIP = """async (value) => {
    const input = document.querySelector(".igw input.igw-clip-above");
    input.value = String(value);
    input.dispatchEvent(new Event("input"));
    await new Promise((resolve) => requestAnimationFrame(resolve));
}"""


def test_the_sanity_check_button_shows_the_cascade(chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path, "lab") as server:
        write(server.root / "sanity.ipynb", [SETUP, KERNEL])
        page = chromium.new_page(viewport={"width": 1400, "height": 1100})
        open_notebook(page, server, "sanity.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
        assert page.locator(".igw-sanity").is_hidden()

        # By keyboard: focus the button, Enter.
        button = page.get_by_role("button", name="Sanity check")
        button.focus()
        page.keyboard.press("Enter")
        steps = page.locator(".igw-sanity-step")
        steps.nth(3).wait_for(timeout=120_000)
        page.wait_for_function("() => document.querySelector('.igw').dataset.computing === 'false'")
        assert steps.count() == 4
        titles = page.locator(".igw-sanity-step .igw-panel-title").all_text_contents()
        assert titles[0] == "original"
        assert [t[:4] for t in titles[1:]] == ["dens", "conv", "conv"]
        captions = page.locator(".igw-sanity-step .igw-description").all_text_contents()
        assert captions[0] == "Spearman 1.00 (signed 1.00), SSIM 1.00"
        assert all(c.startswith("Spearman ") and ", SSIM " in c for c in captions)
        pictures = [canvas_pixels(steps.nth(i).locator("canvas")) for i in range(4)]
        assert not any(is_blank(p) for p in pictures)
        assert all(np.any(pictures[0] != p) for p in pictures[1:])
        # The class name is shown as text, not HTML.
        note = page.locator(".igw-sanity-note").text_content()
        assert HOSTILE in note.replace("\u2068", "").replace("\u2069", "")
        assert page.locator(".igw b, .igw img").count() == 0
        assert page.evaluate("() => window.__igwPwned") is None

        # Display options redraw the strip in the browser.
        page.evaluate(SET_CLIP, 60)
        redrawn = canvas_pixels(steps.nth(0).locator("canvas"))
        assert np.any(redrawn != pictures[0])

        # A picture enlarges by keyboard, as the panels do.
        enlarge = steps.nth(1).get_by_role("button", name=f"Enlarge {titles[1]}")
        enlarge.focus()
        page.keyboard.press("Enter")
        assert "igw-panel-large" in (steps.nth(1).get_attribute("class") or "")
        page.keyboard.press("Enter")
        page.locator(".igw").screenshot(path=artifacts / "sanity-wide.png")

        # Narrow: the strip wraps inside the widget.
        page.set_viewport_size({"width": 700, "height": 1100})
        page.wait_for_timeout(300)
        root = page.locator(".igw").bounding_box()
        for i in range(4):
            box = steps.nth(i).bounding_box()
            assert root["x"] - 1 <= box["x"]
            assert box["x"] + box["width"] <= root["x"] + root["width"] + 1
            assert box["width"] >= 100
        page.locator(".igw-sanity").screenshot(path=artifacts / "sanity-narrow.png")

        # The kernel holds what the browser shows.
        page.locator(".jp-CodeCell").last.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-RenderedText", has_text="kernel: 4 steps").wait_for(timeout=60_000)
        assert errors == []
        page.close()
