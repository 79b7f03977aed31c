"""The synced state: construction checks, typed traits, updates from Python and from the
browser, what is sent for a result (ig_widget/widget/state.py, options.py, shown.py)."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import tensorflow as tf
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

import ig_widget as igw
from ig_widget import batching, widget
from ig_widget.backends import backend_for
from ig_widget.render import (
    RENDER_DEFAULTS,
    channel_maps,
    display_image,
    format_number,
    validate_render_options,
)

from ..models import linear_model, tiny_cnn
from .support import NAMES, sent_maps


def test_first_display_shows_a_computed_result(w, cnn, image):
    res = w.result
    expected = igw.integrated_gradients(cnn, image, steps=8)
    assert res.target == expected.target == int(np.argmax(res.scores)) == w.target
    np.testing.assert_allclose(res.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    # top_k=3, but a model with few classes (4) has them all in the menu.
    ranked = np.argsort(-res.scores, kind="stable")
    assert len(ranked) == 4
    assert w.classes == [[int(i), NAMES[i], pytest.approx(float(res.scores[i]))] for i in ranked]
    assert w.summary["label"] == NAMES[res.target]
    assert w.summary["delta"] == pytest.approx(res.delta)
    assert w.summary["points_used"] == 9
    assert w.path["alphas"] == pytest.approx(np.linspace(0, 1, 9).tolist())
    assert w.path["mean"] == pytest.approx(res.path_scores[0].tolist())
    assert not w.stale and not w.computing and w.error == ""
    assert w.image_size == w.display_size == [16, 16]
    rgb = np.frombuffer(w.image_rgb, np.uint8).reshape(16, 16, 3)
    np.testing.assert_array_equal(rgb, display_image(image))
    maps = sent_maps(w)
    for panel, values in (("gradient", res.gradients), ("explainer", res.attributions)):
        positive, negative = channel_maps(values)
        np.testing.assert_array_equal(maps[f"{panel}_positive"], positive)
        np.testing.assert_array_equal(maps[f"{panel}_negative"], negative)


def test_state_is_json_apart_from_binary_buffers(w):
    state, paths, buffers = _remove_buffers(w.get_state())
    json.dumps(state)
    binary = [
        "image_rgb",
        *widget.MAP_BUFFERS,
        "stability_spread",
        "sanity_rgb",
        "sanity_maps",
        "region_mask",
    ]
    assert sorted(p[0] for p in paths) == sorted(binary)
    # The compare panel's two maps are empty outside compare mode, the spread and
    # the sanity check's until asked for.
    assert sum(len(b) for b in buffers) == 16 * 16 * (widget.BYTES_PER_DISPLAY_PIXEL - 2 * 4)


def test_traits_round_trip_between_widgets(cnn, image, w):
    w.polarity = "both"
    w.clip_below_percentile = 30
    w.structure = 5
    w.positive_color = (0, 0, 255)
    w.steps = 12
    w.method = "gausslegendre"
    keys = list(widget.FRONT_END_OPTIONS)
    state = json.loads(json.dumps(w.get_state(key=keys)))
    other = igw.IGWidget(cnn, image, class_names=NAMES, steps=8)
    other.set_state(state)
    assert other.error == ""
    for key in keys:
        assert getattr(other, key) == getattr(w, key), key
    assert w.positive_color == (0, 0, 255) and w.clip_below_percentile == 30.0
    assert other.stale  # steps and method changed; target did not


def test_constructor_takes_render_options_and_an_array_baseline(cnn, image):
    start = np.full(image.shape, 128, np.float32)
    w = igw.IGWidget(cnn, image, steps=4, baseline=start, overlay=False, outlines=True)
    assert w.baseline == "custom" and w.overlay is False and w.outlines is True
    expected = igw.integrated_gradients(cnn, image, steps=4, baseline=start)
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    assert w.render_options()["outlines"] is True
    w.baseline = "white"
    w.baseline = "custom"  # the array is kept
    with pytest.raises(ValueError, match="baseline"):
        igw.IGWidget(cnn, image, steps=4).baseline = "custom"


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"class_names": ["a", "b"]}, ValueError, "class_names: expected 4 names"),
        ({"class_names": "abcd"}, TypeError, "class_names"),
        (
            {"class_names": ["a", "\ud800", "c", "d"]},
            ValueError,
            r"class_names\[1\]: expected text that UTF-8 can encode, got '\\ud800' "
            r"\(a lone surrogate at position 0\)",
        ),
        (
            {"class_names": ["a", "b", "c", "ok\udfff"]},
            ValueError,
            r"class_names\[3\]: .*position 2",
        ),
        ({"top_k": 0}, ValueError, "top_k: expected an integer >= 1"),
        ({"steps": 0}, ValueError, "steps: expected an integer >= 1"),
        ({"steps": "auto", "method": "riemann_left"}, ValueError, "steps: 'auto'"),
        ({"runs": 0}, ValueError, "runs: expected an integer >= 1"),
        ({"runs": "two"}, TypeError, "runs: expected an integer"),
        ({"method": "simpson"}, ValueError, "method: expected one of"),
        ({"baseline": "grey"}, ValueError, "baseline: expected one of"),
        ({"baseline": np.zeros((3, 3, 3))}, ValueError, "baseline: expected an array"),
        ({"target": 4}, ValueError, r"target: expected a class index in \[0, 3\]"),
        ({"clip_above_percentile": 120}, ValueError, "clip_above_percentile"),
        ({"structure": 2.5}, TypeError, "structure: expected an integer"),
        ({"colour": (1, 2, 3)}, TypeError, "colour: not a render option"),
        ({"image": np.zeros((16, 16, 3, 2))}, ValueError, "image: expected one image"),
        ({"image": np.zeros((16, 16, 2))}, ValueError, "image: expected 1, 3 or 4 channels"),
    ],
)
def test_constructor_refuses_bad_input_before_computing(
    cnn, image, monkeypatch, kwargs, error, pattern
):
    def no_computing(*args, **kw):
        raise AssertionError("the engine ran before validation finished")

    monkeypatch.setattr(widget.engine, "run", no_computing)
    kwargs = {"image": image, **kwargs}
    with pytest.raises(error, match=pattern):
        igw.IGWidget(cnn, **kwargs)


def test_construction_runs_the_model_forward_once_and_computes_within_the_engine_rule(
    image, monkeypatch
):
    model = tiny_cnn(16, seed=4)
    backend = backend_for(model, None)
    forward, batches = [], []
    predict, gradient_sums = backend.predict, backend.gradient_sums

    def counting_predict(batch, *region):
        forward.append(len(batch))
        return predict(batch, *region)

    def counting_gradient_sums(*args):
        batches.append(len(args[2]))
        return gradient_sums(*args)

    monkeypatch.setattr(backend, "predict", counting_predict)
    monkeypatch.setattr(backend, "gradient_sums", counting_gradient_sums)
    w = igw.IGWidget(model, image, steps=40, runs=3, baseline="uniform")
    # One forward pass gave the class count and the scores; the first
    # result's path starts at alpha 0, so the baselines need none of their own.
    assert forward == [1]
    limit = batching.tuner_for(backend, model, image, "gradients").limit
    # About ten progress updates, never a batch beyond the engine's rule; 3 paths of 41
    # points, whose last is the image's own point, computed once.
    assert len(batches) >= 10 and max(batches) <= limit and sum(batches) == 3 * 40 + 1
    w.target = (w.target + 1) % 4
    w.compute()
    assert forward == [1]


def test_constructor_reports_a_model_that_is_not_a_classifier(image):
    with pytest.raises(ValueError, match=r"model: expected class scores of shape \(1, K\)"):
        igw.IGWidget(lambda batch: tf.reduce_sum(batch, axis=[1, 2, 3]), image)
    with pytest.raises(TypeError, match="model"):
        igw.IGWidget("not a model", image)


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("steps", 0, ValueError),
        ("steps", "many", TypeError),
        ("runs", 1.5, TypeError),
        ("method", "simpson", ValueError),
        ("target", 4, ValueError),
        ("polarity", "up", ValueError),
        ("clip_below_percentile", 99.95, ValueError),
        ("structure", 0, ValueError),
        ("overlay", "yes", TypeError),
        ("negative_color", (1, 2), TypeError),
    ],
)
def test_python_assignment_is_validated_and_keeps_the_value(w, name, value, error):
    before = getattr(w, name)
    with pytest.raises(error, match=name):
        setattr(w, name, value)
    assert getattr(w, name) == before


@pytest.mark.parametrize("name", [n for n in widget.FRONT_END_OPTIONS if n != "against"])
def test_none_is_refused_unless_the_renderer_takes_it(w, name):
    # The traits used to be traitlets.Any: None was accepted silently, and a
    # compute option set to None then broke compute() for good.
    before = getattr(w, name)
    try:
        validate_render_options(**{name: None})
    except (TypeError, ValueError) as exc:
        expected = re.escape(str(exc))
    else:
        expected = None
    if name not in RENDER_DEFAULTS or expected is not None:
        with pytest.raises((TypeError, ValueError), match=rf"^{name}: expected"):
            setattr(w, name, None)
        assert getattr(w, name) == before
    else:
        w.set_trait(name, None)  # the renderer's own meaning of None
        assert getattr(w, name) is None
        setattr(w, name, before)


def test_against_none_is_no_contrast(w):
    w.against = next(index for index, _, _ in w.classes if index != w.target)
    assert w.stale
    w.against = None
    assert w.against is None and not w.stale


def test_every_synced_trait_has_a_type(w):
    untyped = [name for name, trait in w.traits(sync=True).items() if type(trait) is traitlets.Any]
    assert untyped == []


@pytest.mark.parametrize(
    ("name", "value", "error", "pattern"),
    [
        ("clip_above_percentile", True, TypeError, "expected a number, got bool"),
        ("overlay", 1, TypeError, "expected True or False"),
        ("steps", 8.0, TypeError, "expected an integer, got float"),
        ("runs", "2", TypeError, "expected an integer, got str"),
        ("target", np.float32(1), TypeError, "expected an integer"),
        ("positive_color", "red", TypeError, "expected 3 integers"),
    ],
)
def test_wrong_types_are_refused_not_converted(w, name, value, error, pattern):
    before = getattr(w, name)
    with pytest.raises(error, match=f"^{name}: {pattern}"):
        setattr(w, name, value)
    assert getattr(w, name) == before and type(getattr(w, name)) is type(before)


def test_numpy_values_are_taken_as_plain_python_values(w):
    w.structure = np.int64(5)
    w.clip_above_percentile = np.float32(99.5)
    w.overlay = np.bool_(False)
    assert (type(w.structure), type(w.clip_above_percentile), type(w.overlay)) == (
        int,
        float,
        bool,
    )


@pytest.mark.parametrize(
    ("state", "pattern"),
    [
        ({"steps": -1}, "steps: expected an integer >= 1"),
        ({"steps": 20_000}, "steps: expected an integer <= 10000"),
        ({"runs": 0}, "runs: expected an integer >= 1"),
        ({"method": "<img src=x>"}, "method: expected one of"),
        ({"clip_above_percentile": 150}, "clip_above_percentile"),
        ({"clip_below_percentile": "lots"}, "clip_below_percentile: expected a number"),
        ({"clip_below_percentile": 99.95}, "clip_below_percentile: expected a value below"),
        ({"structure": 0}, "structure: expected an integer >= 1"),
        ({"outlines_component_percentage": -3}, "outlines_component_percentage"),
        ({"polarity": "<b>up</b>"}, "polarity"),
        ({"positive_color": [0, 300, 0]}, r"positive_color\[1\]"),
        ({"target": 7}, r"target: expected a class index in \[0, 3\]"),
        ({"summary": {}}, "summary: cannot be changed from the browser"),
        ({"image_rgb": b"\x00" * 10}, "image_rgb: cannot be changed from the browser"),
    ],
)
def test_front_end_update_refused_restores_value_and_shows_error(w, state, pattern):
    [name] = state
    before, result = getattr(w, name), w.result
    w.comm.messages.clear()
    w.set_state(state)
    assert w.wait(30)
    assert getattr(w, name) == before and w.result is result
    assert re.search(pattern, w.error)
    restored = [s for method, s, _ in w.comm.updates() if method == "update" and name in s]
    assert restored, "the previous value was not sent back to the browser"
    sent = restored[-1][name]
    if isinstance(before, bytes):
        assert bytes(sent) == before
    else:
        assert json.loads(json.dumps(sent)) == json.loads(json.dumps(before))
    assert not w.computing
    w.set_state({"clip_above_percentile": 98.0})  # still usable
    assert w.error == "" and w.clip_above_percentile == 98.0


@pytest.mark.parametrize(
    "message",
    [
        {"state": {"__class__": "IGWidget"}},
        {"state": {"no_such_trait": 1}},
        {"custom": {"type": "explode"}},
        {"custom": ["compute"]},
    ],
)
def test_malformed_front_end_messages_are_ignored_with_a_warning(w, message, caplog):
    # No front end sends these: one that does is ignored and logged, never raised
    # out of the handler (set_state sent back "__class__", which is no trait).
    before, result = w.current_options(), w.result
    with caplog.at_level(logging.WARNING, logger="ig_widget"):
        if "state" in message:
            w.set_state(message["state"])
        else:
            w._handle_front_end_message(w, message["custom"], [])
    assert w.current_options() == before and w.result is result and not w.computing
    [record] = [r for r in caplog.records if r.name.startswith("ig_widget")]
    assert record.levelno == logging.WARNING and "ignored" in record.getMessage()
    assert "IGWidget" in record.getMessage()
    w.set_state({"clip_above_percentile": 98.0})  # still usable
    assert w.error == "" and w.clip_above_percentile == 98.0


def test_front_end_display_change_is_accepted_without_a_kernel_redraw(w):
    w.error = "stale message"
    w.comm.messages.clear()
    w.set_state({"clip_above_percentile": 97, "outlines": True})
    assert w.clip_above_percentile == 97.0 and w.outlines is True
    assert w.error == ""
    # Only the echo of the change and the cleared error go back; no maps.
    assert all(not buffers for _, _, buffers in w.comm.updates())
    assert {key for _, state, _ in w.comm.updates() for key in state} <= {
        "clip_above_percentile",
        "outlines",
        "error",
    }


def test_style_and_style_colours_come_from_the_browser_and_reach_the_snapshots(w):
    assert w.picture_style == "heatmap" and w.positive_color is None
    w.set_state({"picture_style": "keras", "positive_color": [1, 2, 3]})
    assert w.render_options()["style"] == "keras" and w.positive_color == (1, 2, 3)
    # None again: the style's own colour.
    w.set_state({"positive_color": None})
    assert w.positive_color is None and w.error == ""
    w.set_state({"picture_style": "sketch"})
    assert w.picture_style == "keras"
    assert w.error.startswith("picture_style: expected one of 'heatmap', 'keras'")


def test_large_images_are_reduced_for_display_only():
    size = 700
    weights = np.random.default_rng(0).normal(size=(size, size, 3, 2)).astype(np.float32)
    image = np.random.default_rng(1).uniform(0, 255, (size, size, 3)).astype(np.float32)
    w = igw.IGWidget(linear_model(weights), image, steps=1)
    assert widget.display_factor(size, size) == 2
    assert w.display_size == [350, 350] and w.image_size == [size, size]
    assert w.result.attributions.shape == (size, size, 3)
    _, _, buffers = _remove_buffers(w.get_state())
    assert sum(len(b) for b in buffers) <= widget.MAX_UPDATE_BYTES
    positive, _ = channel_maps(w.result.attributions)
    expected = positive.reshape(350, 2, 350, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(sent_maps(w)["explainer_positive"], expected, rtol=1e-5, atol=1e-6)
    assert w.summary["display_factor"] == 2


def test_display_factor_and_block_mean():
    limit = widget.MAX_UPDATE_BYTES // widget.BYTES_PER_DISPLAY_PIXEL
    side = int(np.sqrt(limit))
    assert widget.display_factor(side, side) == 1
    assert widget.display_factor(side + 1, side + 1) == 2
    values = np.arange(5 * 7 * 2, dtype=np.float32).reshape(5, 7, 2)
    reduced = widget.block_mean(values, 3)
    assert reduced.shape == (2, 3, 2)
    assert reduced[0, 0].tolist() == values[:3, :3].mean(axis=(0, 1)).tolist()
    assert reduced[1, 2].tolist() == values[3:, 6:].mean(axis=(0, 1)).tolist()


def test_a_falling_score_is_said_and_every_demo_class_can_be_chosen(tmp_path):
    # The ring, explained for "circle" from black: the score falls from 0.63
    # at the baseline to 3e-11, so the attributions add up to about -0.66.
    images, _ = igw.demo.images()
    w = igw.IGWidget(
        igw.demo.model(), images[5], class_names=igw.demo.class_names, target=0, steps=16
    )
    total = float(w.result.attributions.sum(dtype=np.float64))
    assert total < -0.5
    assert w.summary["total"] == pytest.approx(total)
    assert w.summary["falling_note"] == (
        "The score of '\u2068circle\u2069' falls from the baseline to the image: "
        "the attributions add up "
        f"to {format_number(total)}."
    )
    # The exported page carries the sentence to its header (js/tests/view.test.ts shows it).
    page = w.to_html(tmp_path / "ring.html").read_text()
    assert json.dumps(w.summary["falling_note"], ensure_ascii=False)[1:-1] in page
    # Six classes and the default top_k=5: every class is in the menu.
    assert sorted(index for index, _, _ in w.classes) == list(range(6))
    w.target = 5  # the ring itself: its score rises, nothing to say
    w.compute()
    assert w.summary["total"] > 0 and w.summary["falling_note"] == ""
