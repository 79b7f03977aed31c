"""DatasetResult.report: the audit page's content against the store, escaping, refusals,
trust (a damaged store raises), and a size that does not grow with the number of images."""

from __future__ import annotations

import base64
import io
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget.dataset import report as report_module
from ig_widget.dataset.report import GAP, class_means
from ig_widget.render import render_maps
from ig_widget.report_section import Picture, ReportSection, Table

from .models import tiny_cnn

SIZE = 16
COUNT = 30
HOSTILE = "<img src=x onerror=alert(1)>"
HEBREW = "\u05e2\u05d9\u05d2\u05d5\u05dc"  # "circle", written right to left
NAMES = ["circle", HOSTILE, HEBREW, "star"]


class Page(HTMLParser):
    """What a browser would build from the page: headings, tables (cell texts), pictures."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[str, str]] = []
        self.tables: list[dict[str, list]] = []
        self.images: list[str] = []
        self._heading: str | None = None
        self._cell: list[str] | None = None
        self._caption = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        self.tags.append((tag, values))
        if tag in ("h1", "h2", "h3"):
            self._heading = ""
            self.headings.append((tag, ""))
        elif tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "caption":
            self._caption = True
        elif tag == "img":
            self.images.append(values["src"])
            if self._cell is not None:
                self._cell.append(f"<picture {len(self.images) - 1}>")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "caption":
            self._caption = False
        elif tag in ("h1", "h2", "h3"):
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            tag, text = self.headings[-1]
            self.headings[-1] = (tag, text + data)
        if self._cell is not None:
            self._cell.append(data)
        if self._caption:
            self.tables[-1]["caption"] += data

    def table(self, caption_start: str) -> list[list[str]]:
        (found,) = [t for t in self.tables if plain(t["caption"]).startswith(caption_start)]
        return found["rows"]


def pixels(source: str) -> np.ndarray:
    assert source.startswith("data:image/png;base64,")
    png = base64.b64decode(source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def plain(text: str) -> str:
    """A cell's text without the isolating marks around names."""
    return text.replace("\u2068", "").replace("\u2069", "")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (COUNT, SIZE, SIZE, 3)).astype(np.uint8)
    path = tmp_path_factory.mktemp("report") / "store"
    igw.explain_dataset(
        tiny_cnn(SIZE, seed=3),
        images,
        labels=rng.integers(0, 4, COUNT),
        steps=4,
        chunk_size=8,
        store=path,
        progress=False,
        insertion_deletion_steps=8,
    )
    return path


def hostile_section() -> ReportSection:
    picture = np.zeros((4, 6, 3), np.uint8)
    picture[:, :3] = (255, 0, 0)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return ReportSection(
        title="</h2><script>alert(1)</script>",
        summary=(f"Class {HOSTILE} moved.", f"{HEBREW} 12 images"),
        tables=(
            Table(
                "cells & <b>",
                ("name", "n"),
                ((HOSTILE, 3), (HEBREW, None), ("x", np.float32("nan")), ("y", -np.inf)),
            ),
        ),
        pictures=(Picture(f"caption {HOSTILE}", buffer.getvalue()),),
    )


class Finding:
    """A Reportable: a finding with a report_section() method."""

    def report_section(self) -> ReportSection:
        return ReportSection("A finding", ("One sentence.",))


def test_the_page_shows_what_was_run_and_every_text_as_text(store, tmp_path):
    result = igw.open_dataset(store)
    path = result.report(tmp_path / "audit.html", class_names=NAMES, sections=[hostile_section()])
    text = path.read_text("utf-8")
    page = Page(text)
    # No element came from a name: only the page's own tags, every picture a PNG data URI.
    assert {tag for tag, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table",
        "caption", "thead", "tbody", "tr", "th", "td", "img", "span", "div", "figure",
        "figcaption",
    }  # fmt: skip
    assert "<script" not in text.lower() and "<img src=x" not in text
    assert all(source.startswith("data:image/png;base64,") for source in page.images)
    headings = [plain(text) for tag, text in page.headings if tag == "h2"]
    assert headings == [
        "What was run",
        "Completeness and faithfulness",
        "Worst images",
        "Mean map per class",
        "</h2><script>alert(1)</script>",
    ]
    facts = {row[0]: plain(row[1]) for row in page.table("Options and versions")[1:]}
    options = result.options
    assert facts["model digest"] == options["model"] and facts["model digest"].startswith("value:")
    assert facts["steps"] == "4" and facts["images stored"] == str(COUNT)
    assert facts["preprocess digest"] == "none (no preprocess)"
    manifest = json.loads((store / "ig-dataset.json").read_text())
    assert manifest["versions"]["ig-widget"] == igw.__version__
    assert f"ig-widget {igw.__version__}" in facts["store created with"]
    # A name is one isolated unit; the page's own text around it is not isolated.
    section = page.table("cells & <b>")
    assert section[0] == ["\u2068name\u2069", "\u2068n\u2069"]
    assert section[1:] == [
        [f"\u2068{HOSTILE}\u2069", "3"],
        [f"\u2068{HEBREW}\u2069", "\u2013"],
        ["\u2068x\u2069", "\u2013"],
        ["\u2068y\u2069", "-inf"],
    ]
    worst = page.table("The 12 images with the largest delta")
    column = worst[0].index("label")
    for row in worst[1:]:
        label = int(result.table.loc[int(row[0]), "label"])
        assert row[column] == f"\u2068{NAMES[label]}\u2069 ({label})"
    assert page.headings[0] == ("h1", f"Audit of \u2068{store}\u2069")


def test_the_worst_images_are_the_table_s_and_their_pictures_the_store_s_thumbnails(
    store, tmp_path
):
    result = igw.open_dataset(store)
    options = {"polarity": "both", "overlay": False}
    path = result.report(
        tmp_path / "audit.html", worst_by=["delta", ("score", "high")], worst=5, **options
    )
    text = path.read_text("utf-8")
    assert text.count("(red: raises the score; blue: lowers the score)") == 2
    page = Page(text)
    table = result.table
    for caption, expected in (
        ("The 5 images with the largest delta", table["delta"].nlargest(5)),
        ("The 5 images with the largest score", table["score"].nlargest(5)),
    ):
        rows = page.table(caption)
        header = rows[0]
        assert header[:3] == ["image", "picture", "source"]
        shown = [int(row[0]) for row in rows[1:]]
        assert shown == [int(index) for index in expected.index]
        images, maps = result.thumbnails(shown)
        for row, image, channel_maps in zip(rows[1:], images, maps, strict=True):
            number = int(row[1].removeprefix("<picture ").removesuffix(">"))
            drawn = render_maps(image, channel_maps[0], channel_maps[1], **options)
            gap = np.full((SIZE, GAP, 3), 255, np.uint8)
            np.testing.assert_array_equal(
                pixels(page.images[number]), np.concatenate([image, gap, drawn], axis=1)
            )


def test_the_class_means_equal_a_straightforward_mean_over_the_store(store):
    result = igw.open_dataset(store)
    table = result.table
    classes = sorted(int(c) for c in table["target"].unique())
    counts, images, maps = class_means(result, classes)
    every = [int(index) for index in table.index]
    thumbnails, channel_maps = result.thumbnails(every)
    for target in classes:
        members = [i for i, index in enumerate(every) if table.loc[index, "target"] == target]
        assert counts[target] == len(members)
        np.testing.assert_allclose(images[target], thumbnails[members].mean(axis=0), rtol=1e-12)
        # In float64 throughout: NumPy 1 keeps float32 / float64-scalar in float32.
        wide = [channel_maps[i].astype(np.float64) for i in members]
        normalised = [values / values.sum() for values in wide]
        np.testing.assert_allclose(maps[target], np.mean(normalised, axis=0), rtol=1e-12)


def test_findings_are_sections_in_the_order_given(store, tmp_path):
    result = igw.open_dataset(store)
    path = result.report(tmp_path / "a.html", sections=[Finding(), hostile_section()], worst=1)
    page = Page(path.read_text("utf-8"))
    titles = [plain(text) for tag, text in page.headings if tag == "h2"]
    assert titles[-2:] == ["A finding", "</h2><script>alert(1)</script>"]
    assert pixels(page.images[-1]).shape == (4, 6, 3)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"path": "audit.txt"}, ValueError, "path: expected a file name ending in '.html'"),
        ({"worst_by": "nope"}, ValueError, "worst_by: no column 'nope' in the table"),
        ({"worst_by": ["delta", ("score", "up")]}, ValueError, "worst_by[1]: expected (column"),
        ({"worst_by": "source"}, ValueError, "worst_by: column 'source' holds string"),
        ({"worst": 0}, ValueError, "worst: expected an integer >= 1, got 0"),
        ({"class_names": ["a"]}, ValueError, "class_names: expected 4 names"),
        ({"sections": [5]}, TypeError, "sections[0]: expected a ReportSection or an object"),
        ({"sections": Finding()}, TypeError, "sections: expected a list of findings"),
        (
            {"sections": [ReportSection("t", tables=(Table("c", ("a", "b"), ((1,),)),))]},
            ValueError,
            "sections[0].tables[0].rows[0]: expected 2 values",
        ),
        (
            {"sections": [ReportSection("t", pictures=(Picture("c", b"GIF89a"),))]},
            ValueError,
            "sections[0].pictures[0].png: expected PNG bytes",
        ),
        ({"style": "nope"}, ValueError, "style:"),
    ],
)
def test_bad_arguments_are_refused_before_the_store_is_read(
    store, tmp_path, monkeypatch, arguments, error, message
):
    def never(*args, **kwargs):
        raise AssertionError("the store was read before the arguments were checked")

    monkeypatch.setattr(report_module, "class_means", never)
    monkeypatch.setattr(igw.DatasetResult, "thumbnails", never)
    result = igw.open_dataset(store)
    path = tmp_path / arguments.pop("path", "audit.html")
    with pytest.raises(error) as caught:
        result.report(path, **arguments)
    assert str(caught.value).startswith(message)
    assert not path.exists()


def test_a_damaged_store_raises_instead_of_drawing_zeros(store, tmp_path):
    damaged = tmp_path / "damaged"
    igw.open_dataset(store).save(damaged)
    os.remove(damaged / "arrays.zarr" / "thumbnail_maps" / "c" / "1" / "0" / "0" / "0")
    result = igw.open_dataset(damaged)
    with pytest.raises(ValueError, match=r"row 8 of 'thumbnail_maps'.*is missing"):
        result.report(tmp_path / "audit.html", worst_by=[])
    assert not (tmp_path / "audit.html").exists()


def test_the_page_replaces_a_file_in_one_piece(store, tmp_path):
    path = tmp_path / "audit.html"
    path.write_text("old")
    igw.open_dataset(store).report(path, worst=1)
    assert path.read_text("utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.html"]


def test_a_store_without_recorded_versions_says_so(store, tmp_path):
    old = tmp_path / "old"
    igw.open_dataset(store).save(old)
    manifest = json.loads((old / "ig-dataset.json").read_text())
    del manifest["versions"]
    (old / "ig-dataset.json").write_text(json.dumps(manifest))
    page = Page(igw.open_dataset(old).report(tmp_path / "a.html", worst=1).read_text("utf-8"))
    facts = {row[0]: plain(row[1]) for row in page.table("Options and versions")[1:]}
    assert facts["store created with"].startswith("not recorded")
    assert f"ig-widget {igw.__version__}" in facts["report written with"]


# The size test: 96x96 noise (PNG cannot shrink it), so each thumbnail is as large as it gets.
BIG = 96


def _noise_store(folder: Path, count: int) -> igw.DatasetResult:
    images = np.random.default_rng(count).integers(0, 256, (count, BIG, BIG, 3)).astype(np.uint8)
    return igw.explain_dataset(
        tiny_cnn(BIG, seed=3),
        images,
        steps=1,
        baseline="black",
        chunk_size=16,
        store=folder / f"store{count}",
        progress=False,
    )


def _text_bytes(text: str) -> int:
    """The page's bytes outside its embedded pictures."""
    page = Page(text)
    return len(text.encode("utf-8")) - sum(len(source) for source in page.images)


def test_the_page_size_does_not_grow_with_the_number_of_images(tmp_path):
    small, large = _noise_store(tmp_path, 16), _noise_store(tmp_path, 64)
    texts = [
        r.report(tmp_path / f"{len(r)}.html", worst=12).read_text("utf-8") for r in (small, large)
    ]
    pages = [Page(text) for text in texts]
    # The same pictures: the 12 worst, and one per class (each store has the same classes).
    assert len(pages[0].images) == len(pages[1].images)
    assert abs(_text_bytes(texts[1]) - _text_bytes(texts[0])) < 600
    # A picture is at most an uncompressed PNG of two thumbnails side by side.
    width = 2 * BIG + GAP
    bound = BIG * (1 + 3 * width) + 1024
    sizes = [len(base64.b64decode(source.split(",", 1)[1])) for source in pages[1].images]
    assert max(sizes) <= bound
    assert max(sizes) > 0.5 * bound  # noise: the bound is close, not loose
    # So at 10,000 images, with the default columns (delta and up to three measures) and
    # the most classes shown, the page stays under 10 MB.
    pictures = 4 * report_module.WORST_COUNT + report_module.MAX_CLASS_MAPS
    growth = 4 * len("10,000") * 10  # longer counts in the text
    estimate = _text_bytes(texts[1]) + growth + pictures * (bound * 4 // 3 + 64)
    assert estimate < 10 * 1024**2
