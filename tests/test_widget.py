"""IGWidget on the kernel side: state, validation from both sides, background
computing, cancel, errors, snapshots. The browser side is in js/tests and
tests/test_browser.py."""

from __future__ import annotations

import base64
import gc
import io
import json
import re
import shutil
import threading
import time
import weakref

import comm
import keras
import numpy as np
import pytest
import tensorflow as tf
import traitlets
from comm.base_comm import BaseComm
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

import ig_widget as igw
from ig_widget import batching, export, widget
from ig_widget.backends import backend_for
from ig_widget.render import (
    RENDER_DEFAULTS,
    channel_maps,
    display_image,
    render_maps,
    validate_render_options,
)

from .models import linear_model, random_image, tiny_cnn

NAMES = ["cat", "dog", "bird", "fish"]
HOSTILE = "</script><script>alert(1)</script>"


class RecordingComm(BaseComm):
    """A comm that keeps what the widget would send to the browser."""

    def __init__(self, **kwargs):
        self.messages = []
        self.refuse = None  # a binary trait whose updates fail to send, as a broken link would
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        sent = [path[0] for path in (data or {}).get("buffer_paths", [])]
        if self.refuse in sent:
            raise OSError(f"the link to the browser broke while sending {self.refuse}")
        self.messages.append((msg_type, data, list(buffers or [])))

    def updates(self):
        """(method, state with binary traits put back, buffers) of each state message."""
        found = []
        for msg_type, data, buffers in self.messages:
            if msg_type == "comm_msg" and data.get("method") in ("update", "echo_update"):
                state = dict(data["state"])
                for path, buffer in zip(data.get("buffer_paths", []), buffers, strict=True):
                    state[path[0]] = buffer
                found.append((data["method"], state, buffers))
        return found


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch):
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


class GatedModel:
    """A tiny CNN that can be made to fail, or to block inside a call.

    The gate is a stateful numpy_function, so it runs (and can block or
    raise) on every execution of a traced program, not only while tracing.
    """

    def __init__(self, base):
        self.base = base
        self.block = False
        self.fail = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def _gate(self, _):
        if self.fail is not None:
            raise self.fail
        if self.block:
            self.entered.set()
            self.release.wait(30)
        return np.int32(0)

    def __call__(self, batch):
        passed = tf.numpy_function(self._gate, [tf.shape(batch)[0]], tf.int32, stateful=True)
        with tf.control_dependencies([passed]):
            batch = tf.identity(batch)
        return self.base(batch)


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn(16)


@pytest.fixture(scope="module")
def image():
    return random_image(16)


@pytest.fixture
def w(cnn, image):
    return igw.IGWidget(cnn, image, class_names=NAMES, steps=8, top_k=3)


def _sent_maps(w):
    height, width = w.display_size
    return {
        name: np.frombuffer(getattr(w, name), np.float32).reshape(height, width)
        for name in widget.MAP_BUFFERS
    }


def _message_from_the_browser(w, kind):
    """What the view's Compute and Cancel buttons send."""
    w._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": kind}}}, "buffers": []}
    )


def test_first_display_shows_a_computed_result(w, cnn, image):
    res = w.result
    expected = igw.integrated_gradients(cnn, image, steps=8)
    assert res.target == expected.target == int(np.argmax(res.scores)) == w.target
    np.testing.assert_allclose(res.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    ranked = np.argsort(-res.scores)[:3]
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
    maps = _sent_maps(w)
    for panel, values in (("gradient", res.gradients), ("ig", res.attributions)):
        positive, negative = channel_maps(values)
        np.testing.assert_array_equal(maps[f"{panel}_positive"], positive)
        np.testing.assert_array_equal(maps[f"{panel}_negative"], negative)


def test_state_is_json_apart_from_binary_buffers(w):
    state, paths, buffers = _remove_buffers(w.get_state())
    json.dumps(state)
    assert sorted(p[0] for p in paths) == sorted(["image_rgb", *widget.MAP_BUFFERS])
    assert sum(len(b) for b in buffers) == 16 * 16 * widget.BYTES_PER_DISPLAY_PIXEL


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
        ({"top_k": 0}, ValueError, "top_k"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": "auto", "method": "riemann_left"}, ValueError, "steps"),
        ({"runs": 0}, ValueError, "runs"),
        ({"method": "simpson"}, ValueError, "method"),
        ({"baseline": "grey"}, ValueError, "baseline"),
        ({"baseline": np.zeros((3, 3, 3))}, ValueError, "baseline"),
        ({"target": 4}, ValueError, "target"),
        ({"clip_above_percentile": 120}, ValueError, "clip_above_percentile"),
        ({"structure": 2.5}, TypeError, "structure"),
        ({"colour": (1, 2, 3)}, TypeError, "colour"),
    ],
)
def test_constructor_refuses_bad_input_before_computing(
    cnn, image, monkeypatch, kwargs, error, pattern
):
    def no_computing(*args, **kw):
        raise AssertionError("the engine ran before validation finished")

    monkeypatch.setattr(widget.engine, "run", no_computing)
    with pytest.raises(error, match=pattern):
        igw.IGWidget(cnn, image, **kwargs)


def test_construction_runs_the_model_forward_once_and_computes_within_the_engine_rule(
    image, monkeypatch
):
    model = tiny_cnn(16, seed=4)
    backend = backend_for(model, None)
    forward, batches = [], []
    predict, gradient_sums = backend.predict, backend.gradient_sums

    def counting_predict(batch):
        forward.append(len(batch))
        return predict(batch)

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
    # About ten progress updates, never a batch beyond the engine's rule.
    assert len(batches) >= 10 and max(batches) <= limit and sum(batches) == 3 * 41 + 1
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


@pytest.mark.parametrize("name", widget.FRONT_END_OPTIONS)
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
        ({"clip_below_percentile": 99.95}, "clip_below_percentile: expected a value below"),
        ({"polarity": "<b>up</b>"}, "polarity"),
        ({"positive_color": [0, 300, 0]}, r"positive_color\[1\]"),
        ({"target": 7}, r"target: expected a class index in \[0, 3\]"),
        ({"summary": {}}, "summary: cannot be changed from the browser"),
    ],
)
def test_front_end_update_refused_restores_value_and_shows_error(w, state, pattern):
    [name] = state
    before = getattr(w, name)
    w.comm.messages.clear()
    w.set_state(state)
    assert getattr(w, name) == before
    assert re.search(pattern, w.error)
    restored = [s for method, s, _ in w.comm.updates() if method == "update" and name in s]
    assert restored, "the previous value was not sent back to the browser"
    assert json.loads(json.dumps(restored[-1][name])) == json.loads(json.dumps(before))
    assert not w.computing


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
    assert w.style == "heatmap" and w.positive_color is None
    w.set_state({"style": "keras", "positive_color": [1, 2, 3]})
    assert w.render_options()["style"] == "keras" and w.positive_color == (1, 2, 3)
    # None again: the style's own colour.
    w.set_state({"positive_color": None})
    assert w.positive_color is None and w.error == ""
    w.set_state({"style": "sketch"})
    assert w.style == "keras"
    assert w.error.startswith("style: expected one of 'heatmap', 'keras'")


def test_class_choice_from_the_front_end_recomputes_in_the_background(w, cnn, image):
    new_target = w.classes[1][0]
    w.comm.messages.clear()
    w.set_state({"target": new_target})
    assert w.wait(timeout=60)
    assert w.result.target == new_target == w.target == w.summary["target"]
    expected = igw.integrated_gradients(cnn, image, steps=8, target=new_target)
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        _sent_maps(w)["ig_positive"], channel_maps(w.result.attributions)[0]
    )
    assert w.progress == [9, 9] and not w.computing and not w.stale
    progress = [s["progress"] for _, s, _ in w.comm.updates() if "progress" in s]
    assert progress[0] == [0, 0] and progress[-1] == [9, 9] and len(progress) >= 3
    result_update = [b for _, s, b in w.comm.updates() if "ig_positive" in s]
    assert len(result_update) == 1 and len(result_update[0]) == 4


def test_compute_message_applies_edited_options(w):
    w.steps = 5
    w.method = "riemann_middle"
    assert w.stale
    previous = w.result
    _message_from_the_browser(w, "compute")
    assert w.wait(timeout=60)
    assert w.result is not previous
    assert (w.result.steps, w.result.method, w.result.points_used) == (5, "riemann_middle", 5)
    assert not w.stale


def test_blocking_compute_and_python_target(w):
    w.target = 2
    assert w.stale
    res = w.compute()
    assert res is w.result and res.target == 2 and not w.stale


@pytest.fixture
def gated(image):
    model = GatedModel(tiny_cnn(16, seed=3))
    w = igw.IGWidget(model, image, class_names=NAMES, steps=30)
    return model, w


def _compute_threads():
    return [t for t in threading.enumerate() if t.name == "ig-widget-compute"]


def test_cancel_mid_computation_keeps_the_previous_result(gated):
    model, w = gated
    previous = w.result
    previous_maps = _sent_maps(w)
    model.block = True
    w.set_state({"target": (previous.target + 1) % 4})
    assert model.entered.wait(30) and w.computing
    w.set_state({"target": previous.target})
    assert "computation is running" in w.error
    _message_from_the_browser(w, "cancel")
    model.release.set()
    assert w.wait(timeout=30)
    assert not _compute_threads()
    assert w.result is previous and w.target == previous.target and not w.computing
    assert "Cancelled" in w.notice
    for name, values in _sent_maps(w).items():
        np.testing.assert_array_equal(values, previous_maps[name])
    model.block = False
    assert w.compute().target == previous.target and w.notice == ""


def test_model_error_is_reported_and_the_widget_stays_usable(gated):
    model, w = gated
    previous = w.result
    model.fail = RuntimeError("the accelerator <b>caught fire</b>")
    w.set_state({"target": (previous.target + 1) % 4})
    assert w.wait(timeout=30)
    assert "caught fire" in w.error and w.result is previous
    assert w.target == previous.target and not w.computing
    with pytest.raises(Exception, match="caught fire"):
        w.compute()
    assert "caught fire" in w.error and w.result is previous
    model.fail = None
    w.set_state({"target": (previous.target + 1) % 4})
    assert w.wait(timeout=30)
    assert w.error == "" and w.result.target == (previous.target + 1) % 4


def test_keyboard_interrupt_during_compute_keeps_the_result(gated, monkeypatch):
    _, w = gated
    previous = w.result

    def interrupted(done, total):
        # Ctrl-C lands in Python code between two batches, as here.
        raise KeyboardInterrupt

    monkeypatch.setattr(w._runner, "_report", interrupted)
    w.target = (previous.target + 1) % 4
    with pytest.raises(KeyboardInterrupt):
        w.compute()
    assert w.result is previous and not w.computing and "Interrupted" in w.notice
    assert w.target == previous.target
    monkeypatch.undo()
    w.target = (previous.target + 1) % 4
    assert w.compute().target == (previous.target + 1) % 4 and w.notice == ""


def _compute_expecting_failure(w, background, error, pattern):
    """Compute from the browser (in a thread), or with compute(), which raises."""
    if background:
        _message_from_the_browser(w, "compute")
        assert w.wait(30)
    else:
        with pytest.raises(error, match=pattern):
            w.compute()


def _shown_traits(w):
    return {name: getattr(w, name) for name in ("summary", "path", "classes", *widget.MAP_BUFFERS)}


def test_a_failure_while_preparing_the_result_keeps_the_previous_one(gated, monkeypatch):
    # The background thread itself fails (not the model or the engine).
    _, w = gated
    previous, shown = w.result, _shown_traits(w)

    def broken(_):
        raise RuntimeError("maps broke")

    monkeypatch.setattr(widget.shown, "channel_maps", broken)
    w.set_state({"target": (previous.target + 1) % 4})
    assert w.wait(30)
    assert "RuntimeError: maps broke" in w.error and not w.computing
    assert w.result is previous and _shown_traits(w) == shown and w.target == previous.target
    monkeypatch.undo()
    assert w.compute().target == previous.target and w.error == ""


@pytest.mark.parametrize("background", [False, True], ids=["compute()", "background"])
def test_a_failure_while_showing_the_result_rolls_back(gated, background):
    # The result is computed, but sending it to the browser fails midway.
    _, w = gated
    previous, shown = w.result, _shown_traits(w)
    w.comm.refuse = "ig_positive"
    w.target = (previous.target + 1) % 4
    _compute_expecting_failure(w, background, OSError, "link to the browser broke")
    assert "link to the browser broke" in w.error and not w.computing
    assert w.result is previous and _shown_traits(w) == shown and w.target == previous.target
    w.comm.refuse = None
    w.target = (previous.target + 1) % 4
    assert w.compute().target == (previous.target + 1) % 4 and w.error == ""
    assert w.summary["target"] == w.target


def _log_of_the_mean(batch):
    """Finite at any image with a pixel above 0, -inf (with an infinite gradient) at black."""
    mean = tf.reduce_mean(batch, axis=[1, 2, 3])
    return tf.stack([tf.math.log(mean), -tf.math.log(mean)], axis=1)


@pytest.mark.parametrize("background", [False, True], ids=["compute()", "background"])
def test_a_non_finite_result_is_refused_and_the_previous_one_stays(image, background):
    # The widget used to adopt delta=nan and infinite maps, and stay computing.
    w = igw.IGWidget(_log_of_the_mean, image, steps=4, baseline="white")
    previous, shown = w.result, _shown_traits(w)
    w.baseline = "black"
    _compute_expecting_failure(w, background, ValueError, r"model: .*alpha")
    assert re.search(r"model: .*(NaN|infinite|non-finite).*alpha", w.error), w.error
    assert not w.computing and w.result is previous and _shown_traits(w) == shown
    assert w.stale and w.baseline == "black"  # the edited option stays, marked stale
    w.baseline = "white"
    assert w.compute() is not previous and w.error == "" and np.isfinite(w.result.delta)


def _any_size_cnn():
    """A small fully convolutional classifier that takes images of any size."""
    keras.utils.set_random_seed(4)
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(6, 3, activation="tanh"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, kernel_initializer=keras.initializers.RandomNormal(stddev=3)),
        ]
    )


def test_a_new_image_from_python_is_explained_and_shown(w, cnn, tmp_path):
    # w.image = other used to set a plain attribute and change nothing.
    other = random_image(16, seed=7)
    w.image = other
    expected = igw.integrated_gradients(cnn, other, steps=8)
    assert w.result.target == expected.target == w.target == w.summary["target"]
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(w.image, other)
    rgb = np.frombuffer(w.image_rgb, np.uint8).reshape(16, 16, 3)
    np.testing.assert_array_equal(rgb, display_image(other))
    np.testing.assert_array_equal(
        _sent_maps(w)["ig_positive"], channel_maps(w.result.attributions)[0]
    )
    assert not w.stale and not w.computing and w.error == ""
    with pytest.raises(ValueError, match="read-only"):
        w.image[0, 0, 0] = 1
    second = (expected.target + 1) % 4
    assert w.set_image(random_image(16, seed=8), target=second).target == second == w.target
    panels = np.asarray(Image.open(w.to_png(tmp_path / "x.png")).convert("RGB"))
    scale = int(np.ceil(export.MIN_PANEL_PIXELS / 16))
    top = export.MARGIN + 2 * (export.FONT_SIZE + 8)
    shown = panels[
        top : top + 16 * scale : scale, export.MARGIN : export.MARGIN + 16 * scale : scale
    ]
    np.testing.assert_array_equal(shown, display_image(random_image(16, seed=8)))


def test_a_new_image_may_have_another_size():
    model = _any_size_cnn()
    w = igw.IGWidget(model, random_image(16), steps=4)
    bigger = np.random.default_rng(5).uniform(0, 255, (24, 20, 3)).astype(np.float32)
    w.image = bigger
    expected = igw.integrated_gradients(model, bigger, steps=4)
    assert w.result.attributions.shape == (24, 20, 3)
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    assert w.image_size == w.display_size == [24, 20]
    assert len(w.image_rgb) == 24 * 20 * 3 and len(w.ig_positive) == 24 * 20 * 4


@pytest.mark.parametrize(
    ("bad", "error", "pattern", "shown_in_the_view"),
    [
        (np.zeros((16, 16, 2)), ValueError, "image: expected 1, 3 or 4 channels", False),
        ("/nonexistent/cat.png", ValueError, "image: no image file at", False),
        (np.full((16, 16, 3), np.nan), ValueError, "image: contains NaN", False),
        (np.zeros((20, 20, 3)), ValueError, r"image: the model takes images of shape", True),
    ],
    ids=["channels", "missing file", "NaN", "size the model refuses"],
)
def test_a_bad_image_is_refused_and_the_previous_one_stays(
    w, bad, error, pattern, shown_in_the_view
):
    before, shown = w.image.copy(), _shown_traits(w)
    previous, rgb = w.result, w.image_rgb
    with pytest.raises(error, match=pattern):
        w.image = bad
    assert w.result is previous and w.image_rgb == rgb and _shown_traits(w) == shown
    np.testing.assert_array_equal(w.image, before)
    assert not w.computing and bool(re.search(pattern, w.error)) == shown_in_the_view


def test_a_new_image_must_fit_a_custom_baseline(image):
    model = _any_size_cnn()
    w = igw.IGWidget(model, image, steps=2, baseline=np.full(image.shape, 128.0))
    with pytest.raises(ValueError, match=r"image: shape \(20, 20, 3\) does not fit the custom"):
        w.image = np.zeros((20, 20, 3))
    w.baseline = "black"
    w.image = np.zeros((20, 20, 3))
    assert w.image_size == [20, 20]


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
    np.testing.assert_allclose(_sent_maps(w)["ig_positive"], expected, rtol=1e-5, atol=1e-6)
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
    maps = _sent_maps(w)
    expected = render_maps(
        shown_rgb, maps["ig_positive"], maps["ig_negative"], **w.render_options()
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
    assert base64.b64decode(data["buffers"]["ig_positive"]) == w.ig_positive
    assert re.search(r"<(script|link|img)[^>]+(src|href)=", page) is None  # nothing fetched
    with pytest.raises(ValueError, match="directory"):
        w.to_html(tmp_path)
    assert sorted(tmp_path.iterdir()) == [target]


def _freed_after_close(make) -> bool:
    """Make a widget, close it, drop it and collect: is it gone?"""
    w = make()
    reference = weakref.ref(w)
    w.close()
    del w
    gc.collect()
    return reference() is None


def test_closed_widgets_are_freed(cnn, image):
    # anywidget kept every widget with a Path _esm alive (+21 MiB per closed
    # 512 x 512 widget); so does a widget that computed in a thread.
    def computed_in_the_background():
        w = igw.IGWidget(cnn, image, steps=4)
        w.set_state({"target": (w.target + 1) % 4})
        assert w.wait(60) and w.result.target == w.target
        return w

    assert _freed_after_close(lambda: igw.IGWidget(cnn, image, steps=4))
    assert _freed_after_close(computed_in_the_background)


def test_closing_during_a_computation_stops_it_and_frees_the_widget(image):
    model = GatedModel(tiny_cnn(16, seed=3))
    w = igw.IGWidget(model, image, steps=30)
    previous = w.result
    model.block = True
    w.set_state({"target": (previous.target + 1) % 4})
    assert model.entered.wait(30) and w.computing
    worker = w._runner._worker
    reference = weakref.ref(w)
    w.close()
    model.release.set()
    worker.join(30)
    assert not worker.is_alive()
    assert not w.computing and w.result is previous and "Cancelled" in w.notice
    del w
    gc.collect()
    assert reference() is None


def test_hot_reload_reaches_live_widgets_and_lets_closed_ones_go(cnn, image, tmp_path, monkeypatch):
    for name in ("widget.js", "widget.css"):
        shutil.copy(widget.STATIC / name, tmp_path / name)
    monkeypatch.setattr(widget.state, "STATIC", tmp_path)
    monkeypatch.setenv("ANYWIDGET_HMR", "1")  # anywidget watches the files (watchfiles)
    widget.state.front_end_file.cache_clear()
    try:
        w = igw.IGWidget(cnn, image, steps=2)
        assert w._esm == (tmp_path / "widget.js").read_text()
        edited = "export default { render() {} }; // edited\n"
        deadline = time.monotonic() + 20
        while w._esm != edited and time.monotonic() < deadline:
            (tmp_path / "widget.js").write_text(edited)
            time.sleep(0.2)
        assert w._esm == edited
        reference = weakref.ref(w)
        w.close()
        del w
        gc.collect()
        assert reference() is None
    finally:
        for name in ("widget.js", "widget.css"):
            widget.state.front_end_file(name).stop_thread()
        widget.state.front_end_file.cache_clear()
