"""The audit report in headless Chromium with every request refused: it loads nothing,
shows its headings, tables and pictures, runs no text as HTML, and keeps a right-to-left
class name from reordering the text around it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget.report_section import Picture, ReportSection, Table

from .models import tiny_cnn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZE = 40  # thumbnails are the image itself up to 96 pixels a side
COUNT = 24
HOSTILE = "<img src=x onerror=alert(1)>"
HEBREW = "\u05e2\u05d9\u05d2\u05d5\u05dc"
NAMES = ["circle", HOSTILE, HEBREW, "star"]


def _png(height: int, width: int) -> bytes:
    picture = np.zeros((height, width, 3), np.uint8)
    picture[:, : width // 2] = (200, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


class Drift:
    """A hand-made finding, as igw.compare_datasets' result gives one."""

    def report_section(self) -> ReportSection:
        return ReportSection(
            title=f"Drift: {HOSTILE}",
            summary=(f"The explanation of {HEBREW} moved in 3 of 24 images.",),
            tables=(Table("Most changed", ("image", "class", "IoU"), ((4, HOSTILE, 0.25),)),),
            pictures=(Picture("before and after", _png(30, 60)),),
        )


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("report_browser")
    result = igw.explain_dataset(
        tiny_cnn(SIZE, seed=3),
        rng.integers(0, 256, (COUNT, SIZE, SIZE, 3)).astype(np.uint8),
        labels=rng.integers(0, 4, COUNT),
        steps=4,
        chunk_size=8,
        store=folder / "store",
        progress=False,
        insertion_deletion_steps=8,
    )
    return result.report(
        folder / "audit.html", class_names=NAMES, sections=[Drift()], worst=6
    ).resolve()


_PICTURES = """() => Array.from(document.images).map((image) => [
    image.complete, image.naturalWidth, image.naturalHeight, image.src.slice(0, 22)])"""

# Where the name and the class number that follows it are drawn, in one cell.
_NAME_AND_NUMBER = """([name]) => {
    for (const cell of document.querySelectorAll("td, figcaption")) {
        const text = cell.firstChild;
        if (!text || text.nodeType !== Node.TEXT_NODE) continue;
        const start = text.data.indexOf(name);
        const open = text.data.indexOf("(", start + name.length);
        if (start < 0 || open < 0) continue;
        const range = (from, to) => {
            const r = document.createRange();
            r.setStart(text, from);
            r.setEnd(text, to);
            return r.getBoundingClientRect();
        };
        return [range(start, start + name.length).left, range(open, open + 3).left];
    }
    return null;
}"""


def test_the_report_opens_offline_and_shows_everything(chromium, page_file, artifacts):
    url = page_file.as_uri()
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    requested, refused, dialogs, errors = [], [], [], []
    page.on("request", lambda request: requested.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    page.route(lambda address: address != url, refuse)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    # Nothing but the file itself was asked for: the pictures are data URIs.
    assert refused == [] and requested == [url] and dialogs == [] and errors == []
    assert page.evaluate("document.scripts.length") == 0

    headings = [
        text.replace("\u2068", "").replace("\u2069", "")
        for text in page.locator("h2").all_inner_texts()
    ]
    assert headings == [
        "What was run",
        "Completeness and faithfulness",
        "Worst images",
        "Mean map per class",
        f"Drift: {HOSTILE}",
    ]
    assert page.locator("table").count() == 7  # facts, delta, measures, 3 worst, the finding's
    assert page.locator("img[src='x']").count() == 0
    pictures = page.evaluate(_PICTURES)
    # 6 worst by each of delta, insertion_auc, deletion_auc; a mean per class; the finding's.
    classes = len(igw.open_dataset(page_file.parent / "store").table["target"].unique())
    assert len(pictures) == 3 * 6 + classes + 1
    assert all(complete and width > 0 for complete, width, _, _ in pictures)
    assert all(source == "data:image/png;base64," for *_, source in pictures)
    # The store's thumbnails, image and map side by side: 40 x (2 * 40 + 2) pixels.
    assert {(width, height) for _, width, height, _ in pictures[:-1]} == {(82, 40)}
    assert pictures[-1][1:3] == [60, 30]
    # The hostile name is text in its cell.
    cell = page.locator("td", has_text="onerror").first
    assert HOSTILE in cell.inner_text()
    # A right-to-left name keeps its number after it, as in "name (2)".
    name_left, number_left = page.evaluate(_NAME_AND_NUMBER, [HEBREW])
    assert number_left > name_left
    page.screenshot(path=artifacts / "audit_report.png", full_page=True)
    page.close()
