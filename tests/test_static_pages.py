"""A notebook executed and converted to HTML (`jupyter nbconvert --execute --to html`)
shows the widget's three panels offline, with and without the stored widget state;
the README's pictures of the widget, taken from its standalone page."""

from __future__ import annotations

import base64
import io
import os

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image

from .browser import REPO, canvas_pixels, is_blank, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS_IMAGES = REPO / "docs" / "images"
CELLS = [
    "import ig_widget as igw\nimages, _ = igw.demo.images()",
    "igw.IGWidget(igw.demo.model(), images[0], class_names=igw.demo.class_names, steps=8)",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> nbformat.NotebookNode:
    """The notebook as `nbconvert --execute` leaves it: outputs and the widget state."""
    path = write_notebook(tmp_path_factory.mktemp("static") / "widget.ipynb", CELLS)
    notebook = nbformat.read(path, as_version=4)
    path_var = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path_var}
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute(env=env)
    return notebook


def _offline_page(chromium, html: str, path):
    """``html`` opened from a file with every network request refused."""
    path.write_text(html)
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    page.route(lambda url: not url.startswith("file:"), refuse)
    page.goto(path.as_uri())
    page.wait_for_load_state("networkidle")
    return page, refused


def _visible_pictures(page) -> list[np.ndarray]:
    """The RGB pixels of every visible picture on the page."""
    pictures = []
    for image in page.locator("img").all():
        if image.is_visible():
            source = image.get_attribute("src")
            assert source.startswith("data:image/png;base64,")
            pictures.append(_png_pixels(source.split(",", 1)[1]))
    return pictures


def _png_pixels(encoded: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))


@pytest.mark.parametrize("state", ["stored", "without"])
def test_the_converted_page_shows_the_panels_offline(executed, state, chromium, tmp_path):
    notebook = nbformat.from_dict(executed)
    assert "widgets" in notebook.metadata  # nbclient stores it, as `nbconvert --execute` does
    if state == "without":
        del notebook.metadata["widgets"]
    html, _ = HTMLExporter().from_notebook_node(notebook)
    page, refused = _offline_page(chromium, html, tmp_path / "page.html")
    if state == "stored":
        # The page asks a CDN for the widget manager, which never comes.
        assert any("html-manager" in url for url in refused), refused
    # Exactly one picture: the kernel's PNG of the three panels.
    (output,) = [out for out in notebook.cells[1].outputs if "image/png" in out.get("data", {})]
    panels = _png_pixels(output["data"]["image/png"])
    pictures = _visible_pictures(page)
    assert len(pictures) == 1, len(pictures)
    np.testing.assert_array_equal(pictures[0], panels)
    assert len(np.unique(panels.reshape(-1, 3), axis=0)) > 100
    box = page.locator("img:visible").bounding_box()
    assert box["width"] > 300 and box["height"] > 100

    if state == "stored":
        # Once a widget manager draws the widget (here: its root element put where
        # the manager puts it), the picture steps aside.
        page.evaluate(
            """() => {
                const view = document.querySelector(
                    'script[type="application/vnd.jupyter.widget-view+json"]');
                const root = document.createElement("div");
                root.className = "igw";
                view.parentElement.appendChild(root);
            }"""
        )
        assert _visible_pictures(page) == []


# The README's pictures: the demo as the widget shows it, alone and in compare mode,
# from the blurred baseline of the README's first example.
# Written by this test on every run, so they show the current widget.
README_PICTURES = {
    "widget.png": {"baseline": "blur"},
    "compare.png": {
        "baseline": "blur",
        "explainer": "smoothgrad",
        "compare": "integrated_gradients",
    },
}


@pytest.mark.parametrize("name", README_PICTURES)
def test_the_readme_pictures_show_the_demo(name, chromium, tmp_path):
    import ig_widget as igw

    images, _ = igw.demo.images()
    widget = igw.IGWidget(
        igw.demo.model(),
        images[0],
        class_names=igw.demo.class_names,
        steps=32,
        **README_PICTURES[name],
    )
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(widget.to_html(tmp_path / "demo.html").as_uri())
    canvases = page.locator(".igw canvas:visible")
    canvases.nth(2).wait_for()
    shown = [canvas_pixels(canvases.nth(index)) for index in range(canvases.count())]
    # Input, gradient, method; in compare mode the second method takes the gradient's place.
    assert len(shown) == 3
    assert page.locator(".igw-panel-gradient").is_hidden() == (name == "compare.png")
    assert not any(is_blank(pixels) for pixels in shown)
    DOCS_IMAGES.mkdir(exist_ok=True)
    page.locator(".igw").screenshot(path=DOCS_IMAGES / name)
    widget.close()
