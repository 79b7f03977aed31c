"""The "against" class menu in JupyterLab (headless Chromium): a contrast chosen by mouse and
by keyboard recomputes "why star and not circle" and says what completeness is of; wide and
narrow screenshots."""

from __future__ import annotations

import numpy as np
import pytest

from .browser import canvas_pixels, jupyter_server, open_notebook, run_all_cells, write_notebook

pytestmark = pytest.mark.browser

SETUP = """\
import ig_widget as igw
images, _ = igw.demo.images()
w = igw.IGWidget(igw.demo.model(), images[3], class_names=igw.demo.class_names, steps=32)
w"""
# Resolves when the view has recomputed after `mark` set data-igw-mark on its root.
RECOMPUTED = """(root) => root.dataset.computing === 'false'
    && root.querySelector('.igw-delta').textContent !== root.dataset.igwBefore"""
# The widget's controls and text that stick out of it at this width.
OVERFLOWING = """() => {
    const root = document.querySelector('.igw').getBoundingClientRect();
    return [...document.querySelectorAll('.igw-header *')]
        .filter((node) => node.getBoundingClientRect().right > root.right + 1)
        .map((node) => node.className || node.tagName);
}"""


def _remember_delta(page) -> None:
    page.locator(".igw").first.evaluate(
        "(root) => { root.dataset.igwBefore = root.querySelector('.igw-delta').textContent; }"
    )


def _wait_recomputed(page) -> None:
    root = page.locator(".igw").first.element_handle()
    page.wait_for_function(RECOMPUTED, arg=root, timeout=120_000)


def _text(page, selector: str) -> str:
    return page.locator(selector).text_content().replace("\u2068", "").replace("\u2069", "")


@pytest.mark.parametrize("width", [1400, 700])
def test_against_menu_by_mouse_and_keyboard(chromium, tmp_path, artifacts, width):
    with jupyter_server(tmp_path, "lab") as server:
        write_notebook(server.root / "against.ipynb", [SETUP, "print('kernel:', w.against)"])
        page = chromium.new_page(viewport={"width": width, "height": 1000})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        open_notebook(page, server, "against.ipynb")
        run_all_cells(page)
        canvas = page.locator(".igw canvas").nth(2)
        canvas.wait_for(timeout=120_000)
        page.wait_for_function("(c) => c.width > 0", arg=canvas.element_handle())
        explain = page.locator("select.igw-class")
        against = page.locator("select.igw-against")
        assert against.input_value() == ""
        assert _text(page, ".igw-delta").startswith("completeness error Δ")
        assert " of score(" not in _text(page, ".igw-delta")
        shown = explain.input_value()
        offered = against.locator("option").evaluate_all("(o) => o.map((x) => x.value)")
        assert offered[0] == "" and shown not in offered  # a class is not contrasted with itself

        # By mouse: the star explained (the model's top class), against circle.
        assert explain.input_value() == "3"
        before = canvas_pixels(canvas)
        _remember_delta(page)
        against.click()
        against.select_option("0")
        _wait_recomputed(page)
        delta = _text(page, ".igw-delta")
        assert delta.startswith("completeness error Δ") and delta.endswith(
            "of score(star) − score(circle)"
        ), delta
        assert np.any(canvas_pixels(canvas) != before)
        assert page.locator(".igw-error").is_hidden()
        page.locator(".igw").screenshot(path=artifacts / f"against-{width}.png")

        # The path plot and the colour keys name the difference too.
        description = _text(page, ".igw-path .igw-description")
        assert description.startswith("The score of “star − circle” goes from"), description
        assert "raises the score of 'star − circle'" in _text(page, ".igw-panel-explainer")

        # By keyboard: the class above in the menu, then back to "none" by typing its initial.
        offered = against.locator("option").evaluate_all("(o) => o.map((x) => [x.value, x.text])")
        following = offered[[value for value, _ in offered].index("0") - 1]
        assert following[0] != ""
        _remember_delta(page)
        against.focus()
        page.keyboard.press("ArrowUp")
        _wait_recomputed(page)
        assert against.input_value() == following[0]
        name = following[1].replace("\u2068", "").replace("\u2069", "")
        assert _text(page, ".igw-delta").endswith(f"of score(star) − score({name})")
        _remember_delta(page)
        # The menus are disabled while computing, which takes the focus away: Tab back.
        explain.focus()
        page.keyboard.press("Tab")
        page.keyboard.press("n")
        _wait_recomputed(page)
        assert against.input_value() == ""
        assert " of score(" not in _text(page, ".igw-delta")
        assert page.evaluate(OVERFLOWING) == []
        # The kernel has the browser's choice.
        page.locator(".jp-CodeCell").last.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        page.locator(".jp-RenderedText", has_text="kernel:").wait_for(timeout=60_000)
        assert _text(page, ".jp-RenderedText:has-text('kernel:')").split() == ["kernel:", "None"]
        assert errors == []
        page.close()
