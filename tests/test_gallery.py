"""igw.Gallery on the kernel side: sorting, filtering, thumbnails on request, the detail view."""

from __future__ import annotations

import gc
import logging
import re
import weakref

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import RENDER_DEFAULTS

from .models import tiny_cnn

SIZE = 16
NAMES = ["zero", "one", "<b>two</b>", "three"]


@pytest.fixture(scope="module")
def model():
    return tiny_cnn(SIZE, seed=5)


@pytest.fixture(scope="module")
def result(model, tmp_path_factory):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (9, SIZE, SIZE, 3)).astype(np.uint8)
    masks = np.zeros((9, SIZE, SIZE), bool)
    masks[:, :8] = True
    return igw.explain_dataset(
        model,
        images,
        labels=rng.integers(0, 4, 9),
        masks=masks,
        steps=4,
        chunk_size=4,
        store=tmp_path_factory.mktemp("gallery") / "store",
        progress=False,
    )


def shown(gallery):
    return np.frombuffer(gallery.order, np.int32).tolist()


def test_sorts_and_filters_by_any_column(result):
    table = result.table
    gallery = igw.Gallery(result, class_names=NAMES)
    assert shown(gallery) == table.sort_values("delta", ascending=False).index.tolist()
    assert gallery.total == 9 and gallery.thumbnail_size == [SIZE, SIZE]
    assert ["label", "class"] in gallery.columns and ["mask_share", "number"] in gallery.columns
    gallery.sort_by, gallery.descending = "mask_share", False
    assert shown(gallery) == table.sort_values("mask_share").index.tolist()
    gallery.filters = [("correct", "==", False)]
    assert shown(gallery) == table[~table["correct"]].sort_values("mask_share").index.tolist()
    gallery.filters = [("mask_share", ">=", 0.5), ("predicted", "!=", 1)]
    kept = table[(table["mask_share"] >= 0.5) & (table["predicted"] != 1)]
    assert shown(gallery) == kept.sort_values("mask_share").index.tolist()
    gallery.filters = [("source", "contains", "[1")]
    assert shown(gallery) == [1]
    assert gallery.shown().index.tolist() == [1]


def test_bad_views_are_refused_with_the_parameter_named(result):
    gallery = igw.Gallery(result)
    with pytest.raises(ValueError, match="sort_by: expected one of"):
        gallery.sort_by = "nope"
    with pytest.raises(TypeError, match=r"filters \(delta\): expected a number"):
        gallery.filters = [("delta", ">", "big")]
    with pytest.raises(ValueError, match=r"filters \(correct\): expected one of '=='"):
        gallery.filters = [("correct", "<", True)]
    with pytest.raises(ValueError, match="clip_above_percentile"):
        igw.Gallery(result, clip_above_percentile=120)
    # From the browser: the message is shown, the view stays.
    before = gallery.order
    heard = []
    gallery.observe(lambda change: heard.append(change["new"]), names="error")
    for _ in range(2):
        gallery._handle_message(gallery, {"type": "view", "sort_by": "x", "filters": []}, [])
    assert gallery.error.startswith("sort_by: expected one of")
    assert gallery.order == before and gallery.sort_by == "delta"
    # The same refusal twice is heard twice: the browser waits for an answer to each view.
    assert heard == [gallery.error, "", gallery.error]
    gallery.set_state({"clip_above_percentile": 500, "order": b""})
    assert "clip_above_percentile" in gallery.error or "order" in gallery.error
    assert gallery.clip_above_percentile == RENDER_DEFAULTS["clip_above_percentile"]
    # Display options are IGWidget's typed traits: checked, named, normalised.
    for name, value, error in [
        ("overlay", None, "overlay: expected True or False, got NoneType None"),
        ("positive_color", (1, 2), "positive_color: expected 3 integers"),
        ("picture_style", "x", "picture_style: expected one of 'heatmap', 'keras', got 'x'"),
        ("structure", "3", "structure: expected an integer"),
    ]:
        with pytest.raises((TypeError, ValueError), match=re.escape(error)):
            setattr(gallery, name, value)
    gallery.clip_above_percentile = 98
    assert gallery.clip_above_percentile == 98.0
    assert isinstance(gallery.clip_above_percentile, float)
    gallery.positive_color = [10, 20, 30]
    assert gallery.positive_color == (10, 20, 30)


def test_thumbnails_are_sent_on_request_as_two_buffers(result, monkeypatch):
    gallery = igw.Gallery(result)
    sent = []
    monkeypatch.setattr(gallery, "send", lambda content, buffers: sent.append((content, buffers)))
    gallery._handle_message(gallery, {"type": "thumbnails", "indices": [4, 0]}, [])
    (content, (rgb, maps)) = sent[0]
    assert content["indices"] == [4, 0]
    assert len(rgb) == 2 * SIZE * SIZE * 3 and len(maps) == 2 * 2 * SIZE * SIZE * 4
    table = result.table
    caption = content["captions"][0]
    assert caption["source"] == "array[4]"
    assert caption["predicted"] == table.loc[4, "predicted"]
    assert caption["mask_share"] == pytest.approx(table.loc[4, "mask_share"])
    positive = np.frombuffer(maps, np.float32).reshape(2, 2, SIZE, SIZE)[0, 0]
    expected = np.maximum(result[4].attributions, 0).mean(axis=2)
    np.testing.assert_allclose(positive, expected, rtol=1e-6)
    np.testing.assert_array_equal(
        np.frombuffer(rgb, np.uint8).reshape(2, SIZE, SIZE, 3)[1], result.image(0)
    )
    gallery._handle_message(gallery, {"type": "thumbnails", "indices": list(range(300))}, [])
    assert "indices: expected a list of at most 256" in gallery.error


def test_clicking_opens_the_stored_or_the_live_view(result, model):
    stored_view = igw.Gallery(result, class_names=NAMES, overlay=False)
    stored_view._handle_message(stored_view, {"type": "open", "index": 3}, [])
    detail = stored_view.detail
    assert stored_view.selected == 3 and detail is not None
    assert detail.compute_enabled is False and detail.overlay is False
    np.testing.assert_array_equal(detail.result.attributions, result[3].attributions)
    with pytest.raises(ValueError, match="model: this view shows a stored result"):
        detail.compute()
    shown_target = detail.target
    detail.set_state({"target": (shown_target + 1) % 4, "steps": 9})
    assert detail.error.startswith("model: this view shows a stored result")
    assert detail.target == shown_target and detail.steps == 4
    with pytest.raises(ValueError, match="model: this view shows a stored result"):
        detail.target = (shown_target + 1) % 4
    detail.overlay = True  # display options still change
    # The gallery's display options reach the open view.
    stored_view.picture_style, stored_view.clip_above_percentile = "keras", 97
    assert detail.picture_style == "keras" and detail.clip_above_percentile == 97.0
    stored_view.set_state({"polarity": "negative"})
    assert detail.polarity == "negative"

    live = igw.Gallery(result, model=model, class_names=NAMES)
    widget = live.open_image(3)
    assert widget.compute_enabled and live.live
    assert widget.target == result.table.loc[3, "target"] and widget.steps == 4
    np.testing.assert_allclose(
        widget.result.attributions, result[3].attributions, rtol=1e-5, atol=1e-7
    )
    other = (widget.target + 1) % 4
    widget.target = other
    assert widget.compute().target == other
    live._handle_message(live, {"type": "close"}, [])
    assert live.detail is None and live.selected == -1


def test_closing_the_gallery_closes_and_frees_its_open_view(result, model):
    gallery = igw.Gallery(result, model=model, class_names=NAMES)
    detail = gallery.open_image(3)
    detail.compute()  # a live result of its own, with the model's forward pass
    freed = [weakref.ref(detail), weakref.ref(detail.result), weakref.ref(detail._shown)]
    del detail
    gallery.close()
    gc.collect()
    assert gallery.detail is None and gallery.selected == -1
    assert [reference() for reference in freed] == [None] * 3


@pytest.mark.parametrize(
    "message",
    [
        {"type": "thumbnails", "indices": [-1]},
        {"type": "thumbnails", "indices": [2, 9]},
        {"type": "thumbnails", "indices": [1.5]},
        {"type": "thumbnails", "indices": [True]},
        {"type": "thumbnails", "indices": ["3"]},
        {"type": "thumbnails", "indices": 3},
        {"type": "open", "index": -1},
        {"type": "open", "index": 2.0},
        {"type": "view", "sort_by": "delta", "descending": "no", "filters": []},
        {"type": "explode"},
        ["thumbnails"],
        {"__class__": "Gallery"},
    ],
)
def test_malformed_front_end_messages_are_ignored_with_a_warning(result, message, caplog):
    # No front end sends these: the gallery ignores and logs them, shows why,
    # and raises nothing out of the handler (index -1 raised a KeyError).
    gallery = igw.Gallery(result)
    sent = []
    gallery.send = lambda content, buffers=None: sent.append(content)
    before = (gallery.order, gallery.detail, gallery.selected)
    with caplog.at_level(logging.WARNING, logger="ig_widget"):
        if "__class__" in message:
            gallery.set_state(message)
        else:
            gallery._handle_message(gallery, message, [])
    assert (gallery.order, gallery.detail, gallery.selected) == before and sent == []
    [record] = [r for r in caplog.records if r.name.startswith("ig_widget")]
    assert record.levelno == logging.WARNING and "Gallery: ignored" in record.getMessage()
    gallery._handle_message(gallery, {"type": "thumbnails", "indices": [8]}, [])
    assert sent and sent[-1]["indices"] == [8]  # still usable


@pytest.fixture(scope="module")
def comparison(result, tmp_path_factory):
    rng = np.random.default_rng(1)  # the same images as ``result``
    images = rng.integers(0, 256, (9, SIZE, SIZE, 3)).astype(np.uint8)
    masks = np.zeros((9, SIZE, SIZE), bool)
    masks[:, :8] = True
    other = igw.explain_dataset(
        tiny_cnn(SIZE, seed=6),
        images,
        labels=rng.integers(0, 4, 9),
        masks=masks,
        steps=4,
        store=tmp_path_factory.mktemp("gallery") / "other",
        progress=False,
    )
    return igw.compare_datasets(result, other, names=("seed 5", "seed 6"))


def test_a_comparison_sorts_by_its_columns_and_opens_both_views(comparison, model, monkeypatch):
    drift = comparison.table
    gallery = igw.Gallery(comparison, sort_by="rank_correlation", descending=False)
    assert shown(gallery) == drift.sort_values("rank_correlation").index.tolist()
    assert ["predicted_a", "class"] in gallery.columns and ["top_iou", "number"] in gallery.columns
    assert ["prediction_changed", "boolean"] in gallery.columns
    assert gallery.compared_names == ["seed 5", "seed 6"]
    # Store b's own columns are there too, its predictions the comparison's predicted_b.
    assert (gallery.shown()["predicted"] == gallery.shown()["predicted_b"]).all()
    gallery.filters = [("top_iou", "<", 0.5)]
    kept = drift[drift["top_iou"] < 0.5].sort_values("rank_correlation")
    assert shown(gallery) == kept.index.tolist() and len(kept)

    sent = []
    monkeypatch.setattr(gallery, "send", lambda content, buffers: sent.append(content))
    gallery._handle_message(gallery, {"type": "thumbnails", "indices": [4]}, [])
    [caption] = sent[0]["captions"]
    assert caption["rank_correlation"] == drift.loc[4, "rank_correlation"]
    assert caption["top_iou"] == drift.loc[4, "top_iou"]
    assert caption["predicted"] == drift.loc[4, "predicted_b"]

    gallery.overlay = False
    b_view = gallery.open_image(4)
    a_view = gallery.detail_a
    assert gallery.detail is b_view and a_view is not None
    np.testing.assert_array_equal(a_view.result.attributions, comparison.a[4].attributions)
    np.testing.assert_array_equal(b_view.result.attributions, comparison.b[4].attributions)
    assert a_view.overlay is False and b_view.overlay is False
    gallery.picture_style = "keras"
    assert a_view.picture_style == b_view.picture_style == "keras"
    gallery.close_detail()
    assert gallery.detail is None and gallery.detail_a is None
    with pytest.raises(ValueError, match=r"^model: a comparison's gallery shows the two stored"):
        igw.Gallery(comparison, model=model)
