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
    marimo_app,
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
        # The key says in words what the colours mean, each picture on its own scale.
        key = page.locator(".igg-key")
        assert key.is_visible() and all(
            words in key.inner_text()
            for words in ("red: raises the score", "scaled to its own strongest pixels")
        )
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
        # Once the thumbnails asked for ahead of the view have come.
        page.locator(".igg[data-waiting='0']").wait_for(timeout=60_000)
        requested = _requested(page)
        drawn_before = picture.evaluate("(canvas) => canvas.toDataURL()")
        page.locator(".igg select.igw-polarity").select_option("negative")
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


# -- keyboard in every host ------------------------------------------------------------

KEYS_COUNT = 60

# The focused element, looking through shadow roots (marimo mounts widgets in one):
# a cell's image index, the class of another element in the Gallery, or "outside: ...".
FOCUSED = """() => {
    let active = document.activeElement;
    while (active?.shadowRoot?.activeElement) {
        active = active.shadowRoot.activeElement;
    }
    if (!active || !active.closest(".igg")) {
        return `outside: ${active?.tagName} ${active?.className}`;
    }
    return active.dataset.image ?? active.className;
}"""


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (KEYS_COUNT, SIZE, SIZE, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("gallery-keys") / "store"
    igw.explain_dataset(
        tiny_cnn(SIZE, seed=MODEL_SEED),
        images,
        labels=rng.integers(0, 4, KEYS_COUNT),
        steps=2,
        store=path,
        progress=False,
    )
    return path


def _gallery_source(store) -> str:
    return (
        "import ig_widget as igw\nfrom tests.models import tiny_cnn\n"
        f"g = igw.Gallery(igw.open_dataset({str(store)!r}), "
        f"model=tiny_cnn({SIZE}, seed={MODEL_SEED}), class_names={NAMES!r})\n"
    )


def _use_by_keyboard(page, order: list[int], artifacts, name: str) -> None:
    """Tab into the grid and walk it, open and close images, all by keyboard; the
    focus stays in the Gallery after every key."""
    page.locator(".igg-cell").first.wait_for(timeout=120_000)
    _wait_drawn(page, order[0])
    columns = page.evaluate(
        """() => {
        const cells = [...document.querySelectorAll('.igg-cell:not([hidden])')];
        return new Set(cells.map((cell) => cell.getBoundingClientRect().top)).size
            ? cells.filter((cell) => cell.getBoundingClientRect().top ===
                cells[0].getBoundingClientRect().top).length : 0;
    }"""
    )
    if columns == 0:  # marimo: the cells are in a shadow root
        columns = page.locator(".igg-cell:not([hidden])").evaluate_all(
            """(cells) => cells.filter((cell) => cell.getBoundingClientRect().top ===
                cells[0].getBoundingClientRect().top).length"""
        )
    assert columns >= 2

    def press(key: str, expected: str | int) -> None:
        page.keyboard.press(key)
        assert page.evaluate(FOCUSED) == str(expected), key

    # Tab from the last display control reaches the grid.
    page.locator(".igg-display input[type=color]").last.focus()
    page.keyboard.press("Tab")
    assert "igg-scroller" in page.evaluate(FOCUSED)
    press("ArrowRight", order[1])
    press("ArrowDown", order[1 + columns])
    press("ArrowLeft", order[columns])
    press("ArrowUp", order[0])
    press("End", order[-1])
    press("Home", order[0])
    press("ArrowRight", order[1])
    press("Enter", order[1])
    page.locator(".igg-detail-title", has_text=f"Image #{order[1]}").wait_for(timeout=60_000)
    page.screenshot(path=artifacts / f"gallery-keys-{name}.png")
    press("Escape", order[1])
    page.locator(".igg-detail").wait_for(state="hidden", timeout=30_000)
    # A click on a picture opens it; the arrows then go on from there.
    page.locator(f".igg-cell[data-image='{order[2]}']").click()
    page.locator(".igg-detail-title", has_text=f"Image #{order[2]}").wait_for(timeout=60_000)
    assert page.evaluate(FOCUSED) == str(order[2])
    press("ArrowRight", order[3])
    press("ArrowDown", order[3 + columns])
    press("Escape", order[3 + columns])
    page.locator(".igg-detail").wait_for(state="hidden", timeout=30_000)
    # The toolbar's controls keep their keys: the arrow changes the sort column here.
    page.locator("select.igg-sort").focus()
    page.keyboard.press("ArrowDown")
    assert "igg-sort" in page.evaluate(FOCUSED)
    page.keyboard.type("x")
    assert "igg-sort" in page.evaluate(FOCUSED)


@pytest.mark.parametrize("front_end", ["lab", "notebook"])
def test_gallery_keyboard_in_jupyter(front_end, chromium, small_store, tmp_path, artifacts):
    order = igw.open_dataset(small_store).table
    order = order.sort_values("delta", ascending=False, kind="stable").index.tolist()
    with jupyter_server(tmp_path, front_end) as server:
        import nbformat

        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        last = "print('the last cell')"
        notebook.cells = [
            nbformat.v4.new_markdown_cell("# Heading above the Gallery"),
            nbformat.v4.new_code_cell(_gallery_source(small_store) + "g"),
            nbformat.v4.new_code_cell(last),
        ]
        nbformat.write(notebook, server.root / "keys.ipynb")
        page = chromium.new_page(viewport={"width": 1000, "height": 900})
        open_notebook(page, server, "keys.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".jp-RenderedText", has_text="the last cell").wait_for(timeout=120_000)
        cells = page.locator(".jp-Cell").count()
        _use_by_keyboard(page, order, artifacts, front_end)
        # The notebook took no key: no cell added, opened or changed.
        assert page.locator(".jp-Cell").count() == cells
        assert page.locator(".jp-CodeCell").last.locator(".cm-content").text_content() == last
        assert (
            page.locator(".jp-CodeCell")
            .first.locator(".cm-content")
            .text_content()
            .startswith("import ig_widget")
        )
        assert page.get_by_role("heading", name="Heading above the Gallery").is_visible()
        assert errors == []
        page.close()


def test_gallery_keyboard_in_marimo(chromium, small_store, tmp_path, artifacts):
    order = igw.open_dataset(small_store).table
    order = order.sort_values("delta", ascending=False, kind="stable").index.tolist()
    notebook = tmp_path / "gallery_marimo.py"
    body = _gallery_source(small_store).replace("\n", "\n    ")
    notebook.write_text(
        "import marimo\n\napp = marimo.App()\n\n\n@app.cell\ndef _():\n"
        f"    import marimo as mo\n    {body}\n    mo.ui.anywidget(g)\n    return\n\n\n"
        'if __name__ == "__main__":\n    app.run()\n'
    )
    with marimo_app(tmp_path, notebook) as url:
        page = chromium.new_page(viewport={"width": 1000, "height": 900})
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        _use_by_keyboard(page, order, artifacts, "marimo")
        assert errors == []
        page.close()


def test_the_readme_picture_of_the_gallery(chromium, tmp_path):
    # The README's example at a small size: demo images explained with the
    # defaults, the Gallery sorted by completeness error. Written on every run.
    from .test_static_pages import DOCS_IMAGES

    images, labels, masks = igw.demo.make_shapes(12, seed=1)
    store = tmp_path / "demo.store"
    igw.explain_dataset(
        igw.demo.model(), images, labels=labels, masks=masks, store=store, progress=False
    )
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "demo-gallery.ipynb",
            [
                "import ig_widget as igw\n"
                f"result = igw.open_dataset({str(store)!r})\n"
                "igw.Gallery(result, model=igw.demo.model(), "
                "class_names=igw.demo.class_names, sort_by='delta')"
            ],
        )
        page = chromium.new_page(viewport={"width": 1100, "height": 900})
        open_notebook(page, server, "demo-gallery.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igg-cell").first.wait_for(timeout=120_000)
        page.locator(".igg[data-waiting='0']").wait_for(timeout=60_000)
        assert page.locator(".igg-count").text_content() == "12 of 12 images"
        drawn = [
            canvas_pixels(canvas)
            for canvas in page.locator(".igg-cell:not([hidden]) canvas.igg-picture").all()
        ]
        assert drawn and not any(is_blank(pixels) for pixels in drawn)
        assert errors == []
        DOCS_IMAGES.mkdir(exist_ok=True)
        page.locator(".igg").screenshot(path=DOCS_IMAGES / "gallery.png")
        page.close()


def test_a_comparison_in_jupyterlab_sorts_by_drift_and_shows_both_views(
    chromium, tmp_path, artifacts
):
    # Two stores of the same demo images, the demo model explained from two
    # baselines: the Gallery of their comparison, sorted by rank correlation.
    images, labels, masks = igw.demo.make_shapes(12, seed=1)
    stores = {}
    for baseline in ("blur", "black"):
        stores[baseline] = tmp_path / f"{baseline}.store"
        igw.explain_dataset(
            igw.demo.model(),
            images,
            labels=labels,
            masks=masks,
            baseline=baseline,
            steps=16,
            store=stores[baseline],
            progress=False,
        )
    drift = igw.compare_datasets(stores["blur"], stores["black"]).table
    by_correlation = drift.sort_values("rank_correlation", kind="stable").index.tolist()
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "drift.ipynb",
            [
                "import ig_widget as igw\n"
                f"drift = igw.compare_datasets({str(stores['blur'])!r}, "
                f"{str(stores['black'])!r}, names=('<i>blur</i> baseline', 'black baseline'))\n"
                "g = igw.Gallery(drift, class_names=igw.demo.class_names)\ng"
            ],
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        open_notebook(page, server, "drift.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        page.locator(".igg-cell").first.wait_for(timeout=120_000)
        page.locator("select.igg-sort").select_option("rank_correlation")
        page.locator("button.igg-direction").click()  # low first
        page.wait_for_function(
            "(first) => document.querySelector('.igg-cell:not([hidden])')?.dataset.image === first",
            arg=str(by_correlation[0]),
            timeout=30_000,
        )
        worst = by_correlation[0]
        _wait_drawn(page, worst)
        details = page.locator(f".igg-cell[data-image='{worst}'] .igg-details").text_content()
        assert f"ρ {drift.loc[worst, 'rank_correlation']:.2f}" in details
        assert "top IoU" in details

        page.locator(f".igg-cell[data-image='{worst}']").click()
        sides = page.locator(".igg-detail-pair > .igg-detail-side")
        sides.nth(1).locator(".igw canvas").nth(2).wait_for(timeout=60_000)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.igg-detail-side')].every((side) =>"
            " [...side.querySelectorAll('.igw canvas')].slice(0, 3).every((c) => c.width > 0))",
            timeout=30_000,
        )
        assert sides.count() == 2
        names = [sides.nth(i).locator(".igg-detail-name").text_content() for i in range(2)]
        assert names == ["<i>blur</i> baseline", "black baseline"]  # text, not HTML
        assert page.locator(".igg-detail i").count() == 0
        # Side by side: the same top, b to the right of a.
        boxes = [sides.nth(i).bounding_box() for i in range(2)]
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] > boxes[0]["x"]
        page.set_viewport_size({"width": 1400, "height": 2400})
        page.locator(".igg-detail").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.locator(".igg-detail").screenshot(path=artifacts / "gallery-comparison-detail.png")
        titles = ("Input", "Normal gradients", "Integrated gradients")
        panels = [
            [
                canvas_pixels(sides.nth(i).locator(f".igw canvas[data-panel='{title}']"))
                for title in titles
            ]
            for i in range(2)
        ]
        assert not any(is_blank(pixels) for pixels in panels[0] + panels[1])
        # The same image and model: the same input and gradients; two baselines, two IG maps.
        np.testing.assert_array_equal(panels[0][0], panels[1][0])
        np.testing.assert_array_equal(panels[0][1], panels[1][1])
        assert np.any(panels[0][2] != panels[1][2])
        # A display option of the gallery reaches both views.
        page.locator(".igg-display select.igw-polarity").select_option("negative")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.igg-detail-side select.igw-polarity')]"
            ".map((s) => s.value).join() === 'negative,negative'",
            timeout=30_000,
        )
        page.screenshot(path=artifacts / "gallery-comparison-negative.png", full_page=True)
        assert errors == []
        page.close()
