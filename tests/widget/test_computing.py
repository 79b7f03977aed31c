"""Computing: in the background and blocking, cancel, every way out of a computation, new
images, many recomputes, and freeing closed widgets (ig_widget/widget/runner.py, __init__.py)."""

from __future__ import annotations

import gc
import re
import shutil
import threading
import time
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ig_widget as igw
from ig_widget import export, widget
from ig_widget.backends import backend_for
from ig_widget.render import (
    channel_maps,
    display_image,
)
from ig_widget.widget import runner

from ..models import random_image, tiny_cnn
from .support import NAMES, GatedModel, message_from_the_browser, sent_maps, shown_traits


def test_class_choice_from_the_front_end_recomputes_in_the_background(w, cnn, image):
    new_target = w.classes[1][0]
    w.comm.messages.clear()
    w.set_state({"target": new_target})
    assert w.wait(timeout=60)
    assert w.result.target == new_target == w.target == w.summary["target"]
    expected = igw.integrated_gradients(cnn, image, steps=8, target=new_target)
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        sent_maps(w)["explainer_positive"], channel_maps(w.result.attributions)[0]
    )
    assert w.progress == [9, 9] and not w.computing and not w.stale
    progress = [s["progress"] for _, s, _ in w.comm.updates() if "progress" in s]
    assert progress[0] == [0, 0] and progress[-1] == [9, 9] and len(progress) >= 3
    result_update = [b for _, s, b in w.comm.updates() if "explainer_positive" in s]
    assert len(result_update) == 1 and len(result_update[0]) == 4


def test_compute_message_applies_edited_options(w):
    w.steps = 5
    w.method = "riemann_middle"
    assert w.stale
    previous = w.result
    message_from_the_browser(w, "compute")
    assert w.wait(timeout=60)
    assert w.result is not previous
    assert (w.result.steps, w.result.method, w.result.points_used) == (5, "riemann_middle", 5)
    assert not w.stale


def test_blocking_compute_and_python_target(w):
    w.target = 2
    assert w.stale
    res = w.compute()
    assert res is w.result and res.target == 2 and not w.stale


def test_stale_stays_true_when_options_change_while_the_result_is_shown(w, monkeypatch):
    # The background thread compares the current options with the result it
    # shows; an assignment from Python between its read and its write must
    # still leave stale true. The delay holds the thread right after its read.
    w.steps = 5
    read, assigned = threading.Event(), threading.Event()
    request = w.request

    def delayed_request():
        options = request()
        if threading.current_thread().name == runner.THREAD_NAME:
            read.set()
            assigned.wait(1.0)
        return options

    monkeypatch.setattr(w, "request", delayed_request)
    message_from_the_browser(w, "compute")
    assert read.wait(60)
    w.steps = 8  # the main thread, while the shown result is the new one of 5 steps
    assigned.set()
    assert w.wait(timeout=60)
    assert w.result.steps == 5 and w.steps == 8
    assert w.stale


def _compute_threads():
    return [t for t in threading.enumerate() if t.name == "ig-widget-compute"]


def test_cancel_mid_computation_keeps_the_previous_result(gated):
    model, w = gated
    previous = w.result
    previous_maps = sent_maps(w)
    model.block = True
    w.set_state({"target": (previous.target + 1) % 4})
    assert model.entered.wait(30) and w.computing
    # The class being computed, echoed back by the front end (marimo does), is no change.
    w.set_state({"target": (previous.target + 1) % 4})
    assert w.error == ""
    w.set_state({"target": previous.target})
    assert "computation is running" in w.error
    message_from_the_browser(w, "cancel")
    model.release.set()
    assert w.wait(timeout=30)
    assert not _compute_threads()
    assert w.result is previous and w.target == previous.target and not w.computing
    assert "Cancelled" in w.notice
    for name, values in sent_maps(w).items():
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
        message_from_the_browser(w, "compute")
        assert w.wait(30)
    else:
        with pytest.raises(error, match=pattern):
            w.compute()


def test_a_failure_while_preparing_the_result_keeps_the_previous_one(gated, monkeypatch):
    # The background thread itself fails (not the model or the engine).
    _, w = gated
    previous, shown = w.result, shown_traits(w)

    def broken(_):
        raise RuntimeError("maps broke")

    monkeypatch.setattr(widget.shown, "channel_maps", broken)
    w.set_state({"target": (previous.target + 1) % 4})
    assert w.wait(30)
    assert "RuntimeError: maps broke" in w.error and not w.computing
    assert w.result is previous and shown_traits(w) == shown and w.target == previous.target
    monkeypatch.undo()
    assert w.compute().target == previous.target and w.error == ""


@pytest.mark.parametrize("background", [False, True], ids=["compute()", "background"])
def test_a_failure_while_showing_the_result_rolls_back(gated, background):
    # The result is computed, but sending it to the browser fails midway.
    _, w = gated
    previous, shown = w.result, shown_traits(w)
    w.comm.refuse = "explainer_positive"
    w.target = (previous.target + 1) % 4
    _compute_expecting_failure(w, background, OSError, "link to the browser broke")
    assert "link to the browser broke" in w.error and not w.computing
    assert w.result is previous and shown_traits(w) == shown and w.target == previous.target
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
    previous, shown = w.result, shown_traits(w)
    w.baseline = "black"
    _compute_expecting_failure(w, background, ValueError, r"model: .*alpha")
    assert re.search(r"model: .*(NaN|infinite|non-finite).*alpha", w.error), w.error
    assert not w.computing and w.result is previous and shown_traits(w) == shown
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
        sent_maps(w)["explainer_positive"], channel_maps(w.result.attributions)[0]
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
    assert len(w.image_rgb) == 24 * 20 * 3 and len(w.explainer_positive) == 24 * 20 * 4


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
    before, shown = w.image.copy(), shown_traits(w)
    previous, rgb = w.result, w.image_rgb
    with pytest.raises(error, match=pattern):
        w.image = bad
    assert w.result is previous and w.image_rgb == rgb and shown_traits(w) == shown
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
    monkeypatch.setattr(widget.frontend, "STATIC", tmp_path)
    monkeypatch.setenv("ANYWIDGET_HMR", "1")  # the files are watched (watchfiles)
    widget.frontend.built_file.cache_clear()
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
            widget.frontend.built_file(name).stop()
        widget.frontend.built_file.cache_clear()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_200_recomputes_neither_retrace_nor_leak(cnn, image):
    w = igw.IGWidget(cnn, image, steps=4)
    backend = backend_for(cnn, None)
    program = backend._programs[(image.shape, None, 1)]  # one weighted column
    options = [
        {"steps": 4, "method": "trapezoid", "runs": 1, "baseline": "black"},
        {"steps": 5, "method": "gausslegendre", "runs": 1, "baseline": "white"},
        {"steps": 3, "method": "riemann_middle", "runs": 2, "baseline": "uniform"},
        {"steps": 6, "method": "riemann_left", "runs": 1, "baseline": "blur"},
    ]

    def recompute(i):
        for name, value in options[i % len(options)].items():
            setattr(w, name, value)
        w.target = i % 4
        result = w.compute()
        assert result.target == i % 4 and result.steps == options[i % len(options)]["steps"]

    for i in range(20):  # warm-up: allocator pools and caches settle
        recompute(i)
    traces, rss = program.experimental_get_tracing_count(), _rss_bytes()
    for i in range(200):
        recompute(i)
    assert program.experimental_get_tracing_count() == traces == 1
    assert _rss_bytes() - rss < 50 * 1024**2


def test_two_widgets_on_one_model_compute_at_the_same_time(cnn, image):
    other_image = random_image(seed=9)
    first = igw.IGWidget(cnn, image, steps=30)
    second = igw.IGWidget(cnn, other_image, steps=30)
    first.set_state({"target": 1})
    second.set_state({"target": 2})
    assert first.wait(60) and second.wait(60)
    for w, shown, target in ((first, image, 1), (second, other_image, 2)):
        expected = igw.integrated_gradients(cnn, shown, steps=30, target=target)
        assert w.result.target == target and w.error == ""
        np.testing.assert_allclose(
            w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-7
        )


def test_out_of_memory_at_batch_one_is_reported_and_the_widget_recovers(cnn, image):
    w = igw.IGWidget(cnn, image, steps=6)
    previous = w.result
    backend = backend_for(cnn, None)

    def always_out_of_memory(*args):
        raise tf.errors.ResourceExhaustedError(None, None, "simulated OOM")

    backend.gradient_sums = always_out_of_memory
    try:
        w.set_state({"target": (previous.target + 1) % 4})
        assert w.wait(30)
    finally:
        del backend.gradient_sums
    assert "batch_size: out of memory even for one point" in w.error
    assert w.result is previous and w.target == previous.target
    w.target = (previous.target + 1) % 4
    assert w.compute().target == (previous.target + 1) % 4 and w.error == ""


def test_an_against_class_from_the_front_end_explains_the_difference(w, cnn, image):
    target = w.target
    other = next(index for index, _, _ in w.classes if index != target)
    w.set_state({"against": other})
    assert w.wait(timeout=60)
    assert (w.result.target, w.result.against) == (target, other)
    assert (w.summary["against"], w.summary["against_label"]) == (other, w._label(other))
    assert not w.stale
    expected = igw.integrated_gradients(cnn, image, steps=8, target=(target, other))
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    assert w.summary["score"] == pytest.approx(expected.score)
    assert w.summary["delta"] == pytest.approx(expected.delta, rel=1e-3, abs=1e-6)
    # Every method explains the same difference.
    w.explainer = "smoothgrad"
    assert w.compute().against == other
    # The contrasted class chosen to explain: the browser drops the contrast in the same update.
    w.set_state({"target": other, "against": None})
    assert w.wait(timeout=60)
    assert (w.result.target, w.result.against, w.summary["against"]) == (other, None, None)


def test_a_class_is_not_contrasted_with_itself(w):
    with pytest.raises(ValueError, match=r"against: expected a class other than the explained"):
        w.against = w.target
    w.set_state({"against": w.target})
    assert w.against is None and w.error.startswith("against: expected a class other than")
    with pytest.raises(ValueError, match=r"against: expected an integer <= 3, got 9"):
        w.against = 9


def test_the_constructor_takes_an_against_class(cnn, image):
    w = igw.IGWidget(cnn, image, steps=8, against=0)
    top = int(np.argmax(w.result.scores))
    assert top != 0  # else the fixture could not show a contrast with class 0
    assert (w.result.target, w.result.against, w.against) == (top, 0, 0)
    with pytest.raises(ValueError, match=r"against: expected a class other than the explained"):
        igw.IGWidget(cnn, image, steps=8, target=2, against=2)


def test_classes_are_taken_by_name_and_a_result_keeps_its_own(cnn, image):
    """A name asked for class_names=[...], which were given; a result's target was dropped
    for another one given beside it, without a word."""
    w = igw.IGWidget(cnn, image, steps=8, class_names=NAMES, target="dog", against="cat")
    assert (w.result.target, w.result.against) == (1, 0)
    w.target = "bird"
    w.against = None
    w.compute()
    assert w.result.target == 2 and w.target == 2
    assert w.set_image(image, target="fish").target == 3
    with pytest.raises(ValueError, match=r"target: expected one of 'cat', 'dog', .*, got 'cow'"):
        w.target = "cow"
    shown = igw.IGWidget(cnn, image, steps=8, result=w.result, target=3)
    assert shown.target == 3
    with pytest.raises(ValueError, match=r"^target: the result shows what it explains \(class 3"):
        igw.IGWidget(cnn, image, steps=8, result=w.result, target=1)
    with pytest.raises(ValueError, match=r"^against: the result shows what it explains"):
        igw.IGWidget(None, image, result=w.result, against=0)
