"""What to_png, to_html and the notebook's fallback picture show (ig_widget/widget/snapshots.py);
how the files are written is in tests/test_export.py."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget import export
from ig_widget.render import (
    channel_maps,
    display_image,
    render_maps,
)
from ig_widget.widget.options import DISPLAY_TRAITS

from ..models import linear_model
from .support import HOSTILE, sent_maps


def test_to_png_writes_the_shown_panels(w, image, tmp_path):
    w.polarity = "both"
    w.outlines = True
    target = w.to_png(tmp_path / "panels.png")
    assert sorted(tmp_path.iterdir()) == [target]
    picture = np.asarray(Image.open(target).convert("RGB"))
    scale = int(np.ceil(export.MIN_PANEL_PIXELS / 16))
    panel = 16 * scale
    top = export.MARGIN + 2 * (export.FONT_SIZE + 8)
    left = export.MARGIN + 2 * (panel + export.MARGIN)
    shown = picture[top : top + panel : scale, left : left + panel : scale]
    expected = render_maps(
        display_image(image),
        *channel_maps(w.result.attributions),
        **w.render_options(),
    )
    np.testing.assert_array_equal(shown, expected)
    with pytest.raises(ValueError, match="directory"):
        w.to_png(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        w.to_png(tmp_path / "missing" / "x.png")
    assert sorted(tmp_path.iterdir()) == [target]


def test_snapshots_refuse_a_name_of_another_format_before_rendering(w, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "panels_png", None)  # rendering would fail loudly
    monkeypatch.setattr(export, "standalone_html", None)
    with pytest.raises(ValueError, match=r"path: expected a file name ending in '\.png'"):
        w.to_png(tmp_path / "x.jpg")
    with pytest.raises(ValueError, match=r"path: expected a file name ending in '\.html'"):
        w.to_html(tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_repr_carries_a_png_for_viewers_without_a_kernel(w):
    data, _ = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    picture = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
    assert picture.format == "PNG" and picture.width > 3 * 16


def test_the_fallback_png_is_built_once_at_display_size(monkeypatch):
    # 700 x 700 is shown at 350 x 350; the fallback used to be full resolution
    # (48 MB of base64 at 2048 x 2048) and rebuilt on every display.
    size = 700
    weights = np.random.default_rng(0).normal(size=(size, size, 3, 2)).astype(np.float32)
    image = np.random.default_rng(1).uniform(0, 255, (size, size, 3)).astype(np.float32)
    w = igw.IGWidget(linear_model(weights), image, steps=1, polarity="both")
    built = []
    real_panels_png = export.panels_png
    monkeypatch.setattr(
        export, "panels_png", lambda *args: built.append(args[0].shape) or real_panels_png(*args)
    )
    first, _ = w._repr_mimebundle_()
    again, _ = w._repr_mimebundle_()
    assert built == [(350, 350, 3)] and again["image/png"] is first["image/png"]
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(first["image/png"]))))
    assert picture.shape[1] == 3 * 350 + 4 * export.MARGIN
    top = export.MARGIN + 2 * (export.FONT_SIZE + 8)
    left = export.MARGIN + 2 * (350 + export.MARGIN)
    shown_rgb = np.frombuffer(w.image_rgb, np.uint8).reshape(350, 350, 3)
    maps = sent_maps(w)
    expected = render_maps(
        shown_rgb, maps["explainer_positive"], maps["explainer_negative"], **w.render_options()
    )
    np.testing.assert_array_equal(picture[top : top + 350, left : left + 350, :3], expected)
    w.outlines = True  # a display change draws it again, once
    w._repr_mimebundle_()
    w._repr_mimebundle_()
    w.target = 1 - w.target  # so does a new result
    w.compute()
    w._repr_mimebundle_()
    assert len(built) == 3


def test_to_html_embeds_hostile_text_safely(cnn, image, tmp_path):
    w = igw.IGWidget(cnn, image, class_names=[HOSTILE, "b&c", "<d>", "e"], steps=4, top_k=4)
    w.set_state({"clip_below_percentile": 99.99})  # an error that must not be exported
    target = w.to_html(tmp_path / "view.html")
    assert sorted(tmp_path.iterdir()) == [target]
    page = target.read_text("utf-8")
    assert page.lower().count("</script") == 2  # the data element's and the code's
    assert "<script>alert" not in page and HOSTILE not in page
    match = re.search(r'<script type="application/json" id="igw-data">(.*?)</script>', page, re.S)
    data = json.loads(match.group(1))
    assert sorted(name for _, name, _ in data["state"]["classes"]) == sorted(
        [HOSTILE, "b&c", "<d>", "e"]
    )
    assert data["state"]["error"] == ""
    # Every display option travels, as the widget has it (the page draws with them).
    assert {name: data["state"][name] for name in DISPLAY_TRAITS} == w.get_state(DISPLAY_TRAITS)
    assert base64.b64decode(data["buffers"]["explainer_positive"]) == w.explainer_positive
    assert re.search(r"<(script|link|img)[^>]+(src|href)=", page) is None  # nothing fetched
    with pytest.raises(ValueError, match="directory"):
        w.to_html(tmp_path)
    assert sorted(tmp_path.iterdir()) == [target]
