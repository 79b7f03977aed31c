"""The widget in a real browser: JupyterLab and Notebook 7 with a live kernel,
and the standalone HTML export opened from a file:// URL. Headless Chromium."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import channel_maps, display_image, render_maps

from .browser import (
    canvas_pixels,
    is_blank,
    jupyter_server,
    marimo_app,
    open_notebook,
    run_all_cells,
    sample_image,
    write_notebook,
)
from .models import tiny_cnn

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

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
WATCH_PROGRESS = """(root) => {
    window.__igwBarShown = false;
    const bar = root.querySelector("progress");
    new MutationObserver((records) => {
        if (!bar.hidden || records.some((record) => record.oldValue === null)) {
            window.__igwBarShown = true;
        }
    }).observe(bar, { attributes: true, attributeFilter: ["hidden"], attributeOldValue: true });
}"""


RECOMPUTED = "(root) => window.__igwBarShown && root.dataset.computing === 'false'"


def _recompute_for_another_class(page) -> None:
    """Choose another class in the menu; the view recomputes (progress bar) and redraws."""
    root = page.locator(".igw").first
    root.evaluate(WATCH_PROGRESS)
    select = page.locator("select.igw-class")
    shown = select.input_value()
    values = select.locator("option").evaluate_all("(options) => options.map((o) => o.value)")
    other = next(value for value in values if value != shown)
    ig_canvas = page.locator(".igw canvas").nth(2)
    ig_before = canvas_pixels(ig_canvas)
    select.select_option(other)
    page.wait_for_function(RECOMPUTED, arg=root.element_handle(), timeout=60_000)
    assert select.input_value() == other
    assert np.any(canvas_pixels(ig_canvas) != ig_before)
    assert page.locator(".igw-error").is_hidden()


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


def _without_isolates(text: str) -> str:
    """``text`` less the bidi isolates the view puts around names (FSI, PDI)."""
    return text.replace("\u2068", "").replace("\u2069", "")


def _assert_text_is_literal(page) -> None:
    labels = [
        _without_isolates(label)
        for label in page.locator("select.igw-class option").all_text_contents()
    ]
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
        # Input, gradient, method; the compare panel stays hidden until compare mode, the
        # spread panel until the Stability button.
        assert canvases.count() == 5 and canvases.nth(3).is_hidden()
        assert canvases.nth(4).is_hidden()
        # The picture for static pages (snapshots.static_html) stays hidden here.
        assert page.locator(".igw-static").count() == 1
        assert page.locator(".igw-static").is_hidden()
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
        _recompute_for_another_class(page)

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


def test_widget_in_marimo(chromium, tmp_path, artifacts):
    # The quickstart as marimo runs it: `marimo run notebooks/quickstart_marimo.py`.
    with marimo_app(tmp_path, NOTEBOOKS / "quickstart_marimo.py") as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        requests, errors = [], []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        canvases = page.locator(".igw canvas")
        canvases.nth(2).wait_for(timeout=180_000)
        _wait_for_drawing(page, canvases.nth(2))
        assert canvases.count() == 5 and canvases.nth(3).is_hidden()
        assert canvases.nth(4).is_hidden()
        images, _ = igw.demo.images()
        side = images[0].shape[0]
        for index in range(3):
            pixels = canvas_pixels(canvases.nth(index))
            assert pixels.shape == (side, side, 3) and not is_blank(pixels)

        before = canvas_pixels(canvases.nth(2))
        _drag_slider(page, page.locator("input.igw-clip-above"), 0.3)
        assert np.any(canvas_pixels(canvases.nth(2)) != before)
        assert 20 < float(page.locator("input.igw-clip-above").input_value()) < 40

        _recompute_for_another_class(page)
        page.screenshot(path=artifacts / "marimo.png", full_page=True)
        assert [request for request in requests if not request.startswith(url)] == []
        assert errors == []
        page.close()


METHODS_SETUP = f"""\
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

w = igw.IGWidget(tiny_cnn({SIZE}, seed={MODEL_SEED}), sample_image({SIZE}), steps=8,
                 class_names={NAMES!r},
                 explainer_options={{"smoothgrad": {{"samples": 4, "seed": 0}}}})
w"""


def _compute_and_wait(page, details: str) -> None:
    page.locator(".igw-compute-button").click()
    page.locator(".igw-details", has_text=details).wait_for(timeout=120_000)
    page.wait_for_function("() => document.querySelector('.igw').dataset.computing === 'false'")


def test_method_menu_and_compare_mode_in_jupyterlab(chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path, "lab") as server:
        write_notebook(server.root / "methods.ipynb", [METHODS_SETUP])
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        open_notebook(page, server, "methods.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        canvases = page.locator(".igw canvas")
        canvases.nth(2).wait_for(timeout=120_000)
        _wait_for_drawing(page, canvases.nth(2))
        ig_pixels = canvas_pixels(canvases.nth(2))
        assert page.locator(".igw-path .igw-panel-title").text_content() == "Score along the path"

        # Another method in the third panel: its map, its insertion and deletion curves.
        page.locator("select.igw-explainer").select_option("smoothgrad")
        _compute_and_wait(page, "SmoothGrad")
        smooth_pixels = canvas_pixels(canvases.nth(2))
        assert not is_blank(smooth_pixels) and np.any(smooth_pixels != ig_pixels)
        assert page.locator(".igw-panel-explainer .igw-panel-title").text_content() == "SmoothGrad"
        assert page.locator(".igw-plot polyline.igw-curve").count() == 2
        legend = page.locator(".igw-plot text").all_text_contents()
        assert legend[legend.index("SmoothGrad") + 1].startswith("insertion area ")
        assert page.locator(".igw-delta").is_hidden()

        # Compare mode: two methods side by side, both with curves; the gradient gives way.
        page.locator("select.igw-compare").select_option("blur_ig")
        _compute_and_wait(page, "SmoothGrad and Blur IG")
        assert page.locator(".igw-panel-gradient").is_hidden()
        compared = canvases.nth(3)
        assert compared.is_visible() and not is_blank(canvas_pixels(compared))
        assert np.array_equal(canvas_pixels(canvases.nth(2)), smooth_pixels)
        assert page.locator(".igw-plot polyline.igw-curve").count() == 4
        # Display options apply to both panels: the slider redraws them, no kernel round trip.
        before = [canvas_pixels(canvases.nth(i)) for i in (2, 3)]
        _drag_slider(page, page.locator("input.igw-clip-above"), 0.3)
        after = [canvas_pixels(canvases.nth(i)) for i in (2, 3)]
        assert all(np.any(b != a) for b, a in zip(before, after, strict=True))
        page.locator(".igw").screenshot(path=artifacts / "methods-compare-lab.png")

        # Grad-CAM from the menu: a one-channel map at the image's size, with its curves.
        page.locator("select.igw-explainer").select_option("gradcam")
        _compute_and_wait(page, "Grad-CAM and Blur IG")
        assert page.locator(".igw-panel-explainer .igw-panel-title").text_content() == "Grad-CAM"
        cam_pixels = canvas_pixels(canvases.nth(2))
        assert not is_blank(cam_pixels) and np.any(cam_pixels != smooth_pixels)
        legend = page.locator(".igw-plot text").all_text_contents()
        assert legend[legend.index("Grad-CAM") + 1].startswith("insertion area ")
        page.locator(".igw").screenshot(path=artifacts / "methods-gradcam-lab.png")
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
    assert _without_isolates(label) in NAMES
    standalone_page.locator(".igw-header").screenshot(path=artifacts / "standalone-header.png")


# The left edges of each character of every occurrence of `word` in the page's text.
CHARACTER_EDGES = """(word) => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        for (let at = node.data.indexOf(word); at >= 0; at = node.data.indexOf(word, at + 1)) {
            found.push([...word].map((_, i) => {
                const range = document.createRange();
                range.setStart(node, at + i);
                range.setEnd(node, at + i + 1);
                return range.getBoundingClientRect().left;
            }));
        }
    }
    return found;
}"""


def test_names_with_bidi_overrides_stay_inside_their_names(chromium, tmp_path, artifacts):
    # U+202E (right-to-left override) in every class name: without isolation it
    # reverses the words after the name too ("Explain" -> "nialpxE").
    names = [f"\u202e{name}.exe" for name in ("cat", "dog", "fox", "owl")]
    widget = igw.IGWidget(
        tiny_cnn(SIZE, seed=MODEL_SEED), sample_image(SIZE), class_names=names, top_k=4, steps=4
    )
    path = widget.to_html(tmp_path / "bidi.html")
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    page.goto(path.as_uri())
    page.locator(".igw canvas").nth(2).wait_for()
    # Words that follow a name: in the header, the panels' descriptions, the plot's.
    for word in ("Explain", "strongest", "baseline"):
        edges = page.evaluate(CHARACTER_EDGES, word)
        assert edges, word
        for lefts in edges:
            assert lefts == sorted(lefts), (word, lefts)
    page.locator(".igw-header").screenshot(path=artifacts / "bidi-header.png")
    page.close()


def test_hover_reads_the_values_under_the_pointer(standalone_page, exported):
    widget, _ = exported
    canvas = standalone_page.locator(".igw canvas").nth(2)
    box = canvas.bounding_box()
    x, y = 20, 13
    canvas.hover(
        position={"x": (x + 0.5) * box["width"] / SIZE, "y": (y + 0.5) * box["height"] / SIZE}
    )
    readout = standalone_page.locator(".igw-readout")
    text = readout.text_content()
    ig = float(widget.result.attributions[y, x].mean())
    assert text.startswith(f"x {x}, y {y} · channel mean: gradient ")
    value, rank = text.rsplit("IG ", 1)[1].split(" (stronger than ")
    assert float(value) == pytest.approx(ig, rel=5e-3)
    magnitudes = np.abs(widget.result.attributions.mean(axis=2))
    below = 100 * np.mean(magnitudes < abs(ig) * (1 - 1e-4))
    assert float(rank.split(" %")[0]) == pytest.approx(below, abs=1.0)
    standalone_page.mouse.move(0, 0)
    assert readout.text_content() == "Hover over a panel to read the values under the pointer."


# Whether any element in a panel row overflows what it has (a title or a key cut).
CUT_TEXT = """() => [...document.querySelectorAll(
    '.igw-panel-title, .igw-key-ends, .igw-field-name, .igw-description')]
    .filter((node) => node.scrollWidth > node.clientWidth + 1)
    .map((node) => node.textContent)"""
# The shown panels (the compare panel is hidden outside compare mode).
PANEL_BOXES = """() => [...document.querySelectorAll('.igw-panel:not([hidden])')].map((node) => {
    const box = node.getBoundingClientRect();
    return [Math.round(box.left), Math.round(box.top), Math.round(box.width)];
})"""
# Elements wider than the widget (what would need a horizontal scroll).
OVERFLOWING = """() => {
    const root = document.querySelector('.igw').getBoundingClientRect();
    return [...document.querySelectorAll('.igw *')]
        .filter((node) => node.getBoundingClientRect().right > root.right + 1)
        .map((node) => node.className || node.tagName);
}"""


def _check_layout(page, min_panel: int) -> list:
    """Panels wrap rather than shrink, titles are whole, and nothing sticks out of the view."""
    boxes = page.evaluate(PANEL_BOXES)
    assert len(boxes) == 4
    assert min(width for _, _, width in boxes) >= min_panel, boxes
    assert len({top for _, top, _ in boxes}) >= 2, f"panels on one row: {boxes}"
    assert page.evaluate(CUT_TEXT) == []
    assert page.evaluate(OVERFLOWING) == []
    return boxes


def test_exported_page_fits_a_narrow_window(chromium, exported, artifacts):
    page = chromium.new_page(viewport={"width": 480, "height": 900})
    page.goto(exported[1].as_uri())
    page.locator(".igw canvas").nth(2).wait_for()
    _check_layout(page, min_panel=180)
    page.screenshot(path=artifacts / "standalone-480.png", full_page=True)
    # A panel enlarged takes the whole row; its button says so.
    enlarge = page.get_by_role("button", name="Enlarge Integrated gradients")
    enlarge.focus()
    page.keyboard.press("Enter")
    shrink = page.get_by_role("button", name="Shrink Integrated gradients")
    assert shrink.get_attribute("aria-pressed") == "true"
    panel = page.locator(".igw-panel-explainer").bounding_box()
    assert panel["width"] > 400
    page.close()


KEYBOARD_NOTEBOOK = f"""\
import ig_widget as igw
from tests.browser import sample_image
from tests.models import tiny_cnn

w = igw.IGWidget(tiny_cnn({SIZE}, seed={MODEL_SEED}), sample_image({SIZE}),
                 class_names={NAMES!r}, top_k=4, steps=8)
w"""
# Run after the keys: what the kernel's widget holds.
KERNEL_STATE = (
    "print('kernel:', w.clip_above_percentile, w.clip_below_percentile, w.polarity, "
    "w.picture_style, w.morphological_cleanup, w.structure, w.steps, w.method)"
)

# What has the keyboard focus: the control's label, or the element's tag.
FOCUSED = """() => {
    const node = document.activeElement;
    const label = node && node.closest('label');
    const name = label && label.querySelector('.igw-field-name');
    if (name) return name.textContent;
    return node ? node.getAttribute('aria-label') || node.tagName : null;
}"""
# The widget's controls in document order, named as FOCUSED names them.
TAB_ORDER = """() => [...document.querySelectorAll('.igw input, .igw select, .igw button')]
    .filter((node) => !node.disabled && !node.hidden && node.offsetParent !== null)
    .map((node) => {
        const label = node.closest('label');
        const name = label && label.querySelector('.igw-field-name');
        return name ? name.textContent : node.getAttribute('aria-label') || node.tagName;
    })"""


# (control, keys pressed on it, the value it then shows), one after another.
KEY_PRESSES = [
    ("clip above", ["ArrowLeft", "ArrowLeft"], "99.7"),
    ("clip above", ["PageDown"], "89.7"),
    ("clip above", ["End"], "100"),
    ("clip below", ["ArrowRight", "ArrowUp"], "0.2"),
    ("clip below", ["Home"], "0"),
    ("polarity", ["End"], "both"),
    ("polarity", ["Home", "ArrowDown"], "negative"),
    ("style", ["ArrowDown", "ArrowUp", "ArrowDown"], "keras"),
    ("cleanup", [" "], "true"),
    ("window (px)", ["ArrowUp", "ArrowUp", "PageUp"], "15"),
    ("window (px)", ["PageDown", "ArrowDown"], "4"),
    ("steps", ["ArrowDown"], "7"),
    ("steps", ["PageUp"], "17"),
    ("method", ["ArrowDown"], "riemann_left"),
]


def _control(page, name: str):
    """The widget's control labelled ``name`` (its label's own text)."""
    label = page.locator(".igw label").filter(
        has=page.locator(".igw-field-name").get_by_text(name, exact=True)
    )
    return label.locator("input, select")


def _keyboard_notebook(path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    # A heading above the widget: the notebook's ArrowLeft shortcut would collapse it.
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Heading above the widget"),
        nbformat.v4.new_code_cell(KEYBOARD_NOTEBOOK),
        nbformat.v4.new_code_cell(KERNEL_STATE),
    ]
    nbformat.write(notebook, path)


@pytest.mark.parametrize("front_end", ["lab", "notebook"])
def test_keyboard_and_narrow_layout_in_jupyter(front_end, chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path, front_end) as server:
        _keyboard_notebook(server.root / "keys.ipynb")
        page = chromium.new_page(viewport={"width": 700, "height": 1000})
        open_notebook(page, server, "keys.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error) + str(error.stack)))
        run_all_cells(page)
        page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
        _wait_for_drawing(page, page.locator(".igw canvas").nth(2))
        cells = page.locator(".jp-Cell").count()
        _check_layout(page, min_panel=150)
        page.locator(".igw").screenshot(path=artifacts / f"{front_end}-700.png")
        # A click on a picture enlarges its panel to the whole row (up to 720 px); again shrinks it.
        grid = page.locator(".igw-panels").bounding_box()
        panel = page.locator(".igw-panel-explainer")
        normal_width = panel.bounding_box()["width"]
        panel.locator("canvas").click()
        enlarged = panel.bounding_box()
        assert enlarged["width"] == pytest.approx(min(grid["width"], 720), abs=2)
        assert enlarged["width"] >= normal_width
        assert panel.get_by_role("button", name="Shrink Integrated gradients").is_visible()
        assert page.evaluate(CUT_TEXT) == []
        panel.locator("canvas").click()
        assert panel.bounding_box()["width"] == pytest.approx(normal_width, abs=1)

        def value(name):
            return _control(page, name).evaluate(
                "(node) => node.type === 'checkbox' ? String(node.checked) : node.value"
            )

        def press(name, *keys):
            _control(page, name).focus()
            for key in keys:
                page.keyboard.press(key)
                # Focus stays on the control: the notebook took no key.
                assert page.evaluate(FOCUSED) == name, (name, key)

        for name, keys, expected in KEY_PRESSES:
            press(name, *keys)
            assert value(name) == expected, (name, keys)
        # The notebook is as it was: no cell added, moved or collapsed, the widget shown.
        assert page.locator(".jp-Cell").count() == cells
        assert page.locator(".igw").is_visible()
        assert page.get_by_role("heading", name="Heading above the widget").is_visible()

        # Tab walks the controls in document order.
        order = page.evaluate(TAB_ORDER)
        _control(page, "Explain").focus()
        walked = [page.evaluate(FOCUSED)]
        for _ in order[1:]:
            page.keyboard.press("Tab")
            walked.append(page.evaluate(FOCUSED))
        assert walked == order
        # The keys' values reached the kernel: run the last cell, which prints them.
        page.locator(".jp-CodeCell").last.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        # (Run All printed the options the widget started with.)
        printed = page.locator(".jp-RenderedText", has_text="riemann_left")
        printed.wait_for(timeout=60_000)
        assert printed.text_content().split() == [
            "kernel:",
            "100.0",
            "0.0",
            "negative",
            "keras",
            "True",
            "4",
            "17",
            "riemann_left",
        ]
        page.locator(".igw").screenshot(path=artifacts / f"{front_end}-700-keyboard.png")
        _focus_is_handed_on(page)
        assert errors == []
        page.close()


def _focus_is_handed_on(page) -> None:
    """A button disabled or hidden while it has focus hands focus on, never to the page
    (which sent a keyboard user back to the top of the notebook): Compute to Cancel while
    it runs and back after, "style colours" to the colour picker before it."""
    details = page.locator(".igw-details").text_content()
    compute = page.get_by_role("button", name="Compute", exact=True)
    compute.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(before) => document.querySelector('.igw-details').textContent !== before "
        "&& !document.querySelector('.igw-compute-button').disabled",
        arg=details,
        timeout=120_000,
    )
    assert page.evaluate("() => document.activeElement.textContent") == "Compute"
    colour = _control(page, "positive colour")
    colour.evaluate(
        """(node) => { node.value = '#00aa00';
        node.dispatchEvent(new Event('input', { bubbles: true }));
        node.dispatchEvent(new Event('change', { bubbles: true })); }"""
    )
    style = page.get_by_role("button", name="style colours")
    style.focus()
    page.keyboard.press("Enter")
    style.wait_for(state="hidden")
    page.wait_for_function("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED) == "negative colour"


def test_the_exported_ring_says_its_score_falls_and_shows_the_fall(chromium, tmp_path, artifacts):
    # The ring explained for "circle" from black: the circle's score falls
    # along the path. The page says so and one click shows the negative polarity.
    images, _ = igw.demo.images()
    widget = igw.IGWidget(
        igw.demo.model(), images[5], class_names=igw.demo.class_names, target=0, steps=16
    )
    path = widget.to_html(tmp_path / "ring.html")
    page = chromium.new_page(viewport={"width": 1200, "height": 800})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    canvas = page.locator(".igw canvas").nth(2)
    canvas.wait_for()
    note = page.locator(".igw-falling-text")
    assert note.is_visible()
    assert note.text_content() == widget.summary["falling_note"]
    assert _without_isolates(note.text_content()).startswith(
        "The score of 'circle' falls from the baseline"
    )
    # The key's words name the class.
    meanings = [
        _without_isolates(text)
        for text in page.locator(".igw-panel-explainer .igw-key-meaning").all_text_contents()
    ]
    assert meanings == ["red: raises the score of 'circle'"]
    page.locator(".igw").screenshot(path=artifacts / "ring-falling.png")
    page.get_by_role("button", name="show what lowered it").click()
    rgb = display_image(images[5])
    expected = render_maps(
        rgb,
        *channel_maps(widget.result.attributions),
        **{**widget.render_options(), "polarity": "negative"},
    )
    assert np.abs(canvas_pixels(canvas).astype(int) - expected).max() <= 1
    assert not page.get_by_role("button", name="show what lowered it").is_visible()
    meanings = [
        _without_isolates(text)
        for text in page.locator(".igw-panel-explainer .igw-key-meaning").all_text_contents()
    ]
    assert meanings == ["blue: lowers the score of 'circle'"]
    page.locator(".igw").screenshot(path=artifacts / "ring-negative.png")
    assert errors == []
    page.close()


def test_refused_values_stay_until_corrected_in_jupyterlab(chromium, tmp_path, artifacts):
    with jupyter_server(tmp_path) as server:
        write_notebook(server.root / "refused.ipynb", [NOTEBOOK_SETUP])
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        open_notebook(page, server, "refused.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igw canvas").nth(2).wait_for(timeout=120_000)
        _wait_for_drawing(page, page.locator(".igw canvas").nth(2))
        compute = page.locator(".igw-compute-button")
        blocked = page.locator(".igw-blocked")
        top_error = page.locator(".igw-error")

        def message(name: str) -> str:
            return _control(page, name).evaluate(
                "(node) => node.closest('.igw-field').querySelector('.igw-field-error').textContent"
            )

        def enter(name: str, text: str) -> None:
            box = _control(page, name)
            box.fill(text)
            box.press("Enter")

        steps_refused = "steps: a whole number from 1 to 10,000; got -5"
        enter("steps", "-5")
        assert message("steps") == steps_refused
        assert _control(page, "steps").get_attribute("aria-invalid") == "true"
        assert compute.is_disabled()
        assert blocked.text_content() == "Compute waits: correct steps first"
        # Other controls, and the kernel's answers to them, leave the refused value standing.
        _drag_slider(page, page.locator("input.igw-clip-above"), 0.5)
        _control(page, "baseline").select_option("white")
        _control(page, "cleanup").check()
        page.wait_for_timeout(1500)
        assert _control(page, "steps").input_value() == "-5"
        assert message("steps") == steps_refused
        assert compute.is_disabled()
        # The window's own words, beside its box, each time.
        enter("window (px)", "0")
        assert message("window (px)") == "window (px): a whole number from 1 to 64; got 0"
        enter("window (px)", "99")
        assert message("window (px)") == "window (px): a whole number from 1 to 64; got 99"
        assert _control(page, "window (px)").input_value() == "99"
        page.wait_for_timeout(1000)
        assert top_error.is_hidden()
        assert blocked.text_content() == "Compute waits: correct steps and window (px) first"
        page.locator(".igw").screenshot(path=artifacts / "refused-values.png")
        # Text that is not a number is refused as such.
        box = _control(page, "steps")
        box.focus()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type("1e")
        box.press("Enter")
        assert message("steps").startswith("steps: a whole number from 1 to 10,000; got ")
        assert "str" not in message("steps")
        # Corrected: accepted, unmarked, and Compute uses the corrected value.
        enter("window (px)", "5")
        enter("steps", "12")
        assert message("steps") == "" and message("window (px)") == ""
        assert blocked.is_hidden()
        compute.click()
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            page.locator(".igw-details", has_text="13 points").wait_for(timeout=120_000)
        except PlaywrightTimeout as timeout:
            # Say what the widget shows instead (it once timed out in CI, never here).
            shown = page.locator(".igw").inner_text()
            message = f"no result of 13 points in 120 s; the widget shows:\n{shown}"
            raise AssertionError(message) from timeout
        assert top_error.is_hidden()
        assert errors == []
        page.close()


def _score_model(offset: float, scale: float):
    """Two classes scoring ``offset ± scale`` times the image's mean (0..1): known score sizes."""
    import tensorflow as tf

    def model(batch):
        mean = tf.reduce_mean(batch, axis=[1, 2, 3]) / 255.0
        return tf.stack([offset + scale * mean, offset - scale * mean], axis=1)

    return model


# Every plot's texts and frame as boxes on the page: the svg's, the frame's
# and each text's (tick labels, axis titles, legend), with the texts' words.
PLOT_BOXES = """() => [...document.querySelectorAll('svg.igw-plot')]
    .filter((svg) => svg.querySelector('text'))
    .map((svg) => {
        const box = (node) => {
            const r = node.getBoundingClientRect();
            return [r.left, r.top, r.right, r.bottom];
        };
        return {
            svg: box(svg),
            frame: box(svg.querySelector('.igw-plot-frame')),
            texts: [...svg.querySelectorAll('text')].map((t) => [t.firstChild.textContent, box(t)]),
            ticks: [...svg.querySelectorAll('.igw-plot-tick')].map((t) => t.textContent),
            curves: svg.querySelectorAll('.igw-curve').length > 0,
        };
    })"""


def _overlap(a: list[float], b: list[float]) -> float:
    """The area two boxes [left, top, right, bottom] share."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(width, 0) * max(height, 0)


@pytest.fixture(scope="module")
def score_pages(tmp_path_factory):
    """Exported pages for flat, tiny and negative scores: IG's (the path plot) and a
    comparison's (two methods' insertion and deletion curves)."""
    folder = tmp_path_factory.mktemp("scores")
    image = sample_image(16)
    cases = {"flat": (1e-3, 4e-7), "tiny": (1e-4, 3e-4), "negative": (-2.0, 1.5)}
    return {
        case: [
            igw.IGWidget(
                _score_model(*scale),
                image,
                class_names=["a", "b"],
                target=0,
                steps=8,
                compare=compare,
            ).to_html(folder / f"{case}-{compare or 'ig'}.html")
            for compare in ("", "smoothgrad")
        ]
        for case, scale in cases.items()
    }


@pytest.mark.parametrize("width", [1400, 700])
@pytest.mark.parametrize("case", ["flat", "tiny", "negative"])
def test_plot_labels_neither_overlap_nor_leave_the_plot(
    chromium, score_pages, case, width, artifacts
):
    page = chromium.new_page(viewport={"width": width, "height": 1000})
    plots = []
    for kind, path in zip(("ig", "compare"), score_pages[case], strict=True):
        page.goto(path.as_uri())
        page.locator("svg.igw-plot .igw-plot-tick").first.wait_for()
        plots += page.evaluate(PLOT_BOXES)
        page.locator(".igw").screenshot(path=artifacts / f"plots-{case}-{kind}-{width}.png")
    # The path plot and the insertion/deletion plot.
    assert sorted(plot["curves"] for plot in plots) == [False, True]
    for plot in plots:
        svg, frame, texts = plot["svg"], plot["frame"], plot["texts"]
        assert len(plot["ticks"]) >= 2 and len(set(plot["ticks"])) == len(plot["ticks"]), plot
        for words, box in texts:
            inside = svg[0] - 0.5 <= box[0] and box[2] <= svg[2] + 0.5
            assert inside and svg[1] - 0.5 <= box[1] and box[3] <= svg[3] + 0.5, (words, box, svg)
            assert _overlap(box, frame) == 0, (words, box, frame)
        for i, (words, box) in enumerate(texts):
            for other, other_box in texts[i + 1 :]:
                assert _overlap(box, other_box) == 0, (words, other, box, other_box)
    page.close()


@pytest.mark.parametrize("width", [1200, 480])
def test_the_patch_view_draws_the_python_renderers_squares(chromium, exported, artifacts, width):
    widget, path = exported
    page = chromium.new_page(viewport={"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    canvases = page.locator(".igw canvas")
    canvases.nth(2).wait_for()
    box = _control(page, "patch (px)")
    assert box.input_value() == "0"
    box.fill("8")
    box.press("Enter")
    rgb = display_image(sample_image(SIZE))
    options = {**widget.render_options(), "patch": 8}
    shown = canvas_pixels(canvases.nth(2))
    expected = render_maps(rgb, *channel_maps(widget.result.attributions), **options)
    np.testing.assert_array_equal(shown, expected)
    pixel_view = render_maps(
        rgb, *channel_maps(widget.result.attributions), **widget.render_options()
    )
    assert (shown != pixel_view).any()
    if width < 600:
        _check_layout(page, min_panel=180)
    page.screenshot(path=artifacts / f"patch-view-{width}.png", full_page=True)
    assert errors == []
    page.close()
