"""Issue 6: bad inputs, faults and hostile text, one table row per case.

Every bad input must fail with a ValueError or TypeError whose message names
the parameter, before any heavy work (checked by counting model calls).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ig_widget as igw
from ig_widget.backends import backend_for

from .models import random_image, tiny_cnn

IMAGE = random_image()
ATTRIBUTIONS = np.random.default_rng(3).normal(size=IMAGE.shape).astype(np.float32) * 0.1


class CountingModel:
    """Wraps a model and counts batches, to prove validation happens first."""

    def __init__(self, model):
        self.model = model
        self.inputs = model.inputs  # so the engine can check the declared input shape
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        return self.model(batch)


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


def _corrupt_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return path


# (id, keyword arguments replacing the defaults, error type, message pattern)
ENGINE_CASES = [
    ("1-D image", {"image": np.zeros(48)}, ValueError, r"image: expected one image of shape"),
    ("batch of 2", {"image": np.zeros((2, 16, 16, 3))}, ValueError, r"image: expected one image"),
    ("wrong size", {"image": np.zeros((20, 16, 3))}, ValueError, r"image: the model takes images"),
    ("RGBA to RGB model", {"image": np.zeros((16, 16, 4))}, ValueError, r"drop alpha"),
    ("NaN pixel", {"image": np.where(IMAGE > 250, np.nan, IMAGE)}, ValueError, "image: .*NaN"),
    ("Inf pixel", {"image": np.where(IMAGE > 250, np.inf, IMAGE)}, ValueError, "image: .*infinite"),
    ("empty", {"image": np.zeros((0, 0, 3))}, ValueError, "image: expected a non-empty"),
    ("strings", {"image": np.full((16, 16, 3), "x")}, TypeError, "image: expected real numbers"),
    ("complex", {"image": np.zeros((16, 16, 3), complex)}, TypeError, "image: expected real"),
    ("object", {"image": object()}, TypeError, "image: expected real numbers"),
    ("missing file", {"image": "/nonexistent/cat.png"}, ValueError, "image: no image file at"),
    ("target too big", {"target": 4}, ValueError, r"target: expected a class index in \[0, 3\]"),
    ("target float", {"target": 1.5}, TypeError, "target: expected an integer"),
    ("target bool", {"target": True}, TypeError, "target: expected an integer"),
    ("target negative", {"target": -2}, ValueError, "target: expected an integer >= 0"),
    ("steps zero", {"steps": 0}, ValueError, "steps: expected an integer >= 1"),
    ("steps negative", {"steps": -5}, ValueError, "steps: expected an integer >= 1"),
    ("steps absurd", {"steps": 10_001}, ValueError, "steps: expected an integer <= 10000"),
    ("steps text", {"steps": "many"}, TypeError, "steps: expected an integer"),
    ("method", {"method": "simpson"}, ValueError, "method: expected one of 'trapezoid'"),
    ("baseline name", {"baseline": "gray"}, ValueError, "baseline: expected one of 'black'"),
    ("baseline shape", {"baseline": np.zeros((8, 8, 3))}, ValueError, "baseline: expected an arr"),
    ("baseline NaN", {"baseline": np.full(IMAGE.shape, np.nan)}, ValueError, "baseline: .*NaN"),
    ("runs zero", {"runs": 0}, ValueError, "runs: expected an integer >= 1"),
    ("batch_size zero", {"batch_size": 0}, ValueError, "batch_size: expected an integer >= 1"),
    ("seed negative", {"seed": -1}, ValueError, "seed: expected an integer >= 0"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [case[1:] for case in ENGINE_CASES],
    ids=[case[0] for case in ENGINE_CASES],
)
def test_integrated_gradients_refuses_bad_input_before_work(cnn, kwargs, error, pattern):
    model = CountingModel(cnn)
    kwargs = {"image": IMAGE, **kwargs}
    image = kwargs.pop("image")
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients(model, image, **kwargs)
    # The one forward pass that finds the number of classes is the only model
    # call allowed before a target or baseline error; none for the rest.
    assert model.calls <= 2


def test_corrupt_file_is_named(cnn, tmp_path):
    with pytest.raises(ValueError, match=r"image: cannot read .*broken.png"):
        igw.gradients(cnn, _corrupt_file(tmp_path))


def test_pil_image_and_path_are_accepted(cnn, tmp_path):
    pixels = IMAGE.astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    from_array = igw.gradients(cnn, pixels)
    np.testing.assert_array_equal(igw.gradients(cnn, Image.fromarray(pixels)), from_array)
    np.testing.assert_array_equal(igw.gradients(cnn, str(tmp_path / "x.png")), from_array)
    rgba = Image.fromarray(pixels).convert("RGBA")
    np.testing.assert_array_equal(igw.gradients(cnn, rgba), from_array)  # alpha dropped


def test_16_bit_images_are_rescaled_to_8_bit_units(cnn):
    pixels = IMAGE.astype(np.uint8)
    sixteen = pixels.astype(np.uint16) * 257  # 255 -> 65535
    np.testing.assert_allclose(
        igw.gradients(cnn, sixteen), igw.gradients(cnn, pixels), rtol=1e-4, atol=1e-9
    )


MODEL_CASES = [
    ("scalar", lambda x: tf.reduce_sum(x), ValueError, r"model: expected class scores of shape"),
    ("3-D", lambda x: tf.reshape(x, (1, 16, 48)), ValueError, r"model: expected class scores"),
    ("tuple", lambda x: (x, x), TypeError, "model: expected one tensor"),
    ("dict", lambda x: {"p": x}, TypeError, "model: expected one tensor"),
    (
        "argmax",
        lambda x: tf.argmax(tf.reshape(x, (1, -1)), axis=1)[:, None],
        TypeError,
        "cannot be differentiated",
    ),
    ("not callable", "model.keras", TypeError, "model: expected a Keras model or callable"),
]


@pytest.mark.parametrize(
    ("model", "error", "pattern"),
    [case[1:] for case in MODEL_CASES],
    ids=[case[0] for case in MODEL_CASES],
)
def test_models_with_the_wrong_output_are_named(model, error, pattern):
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients(model, IMAGE)


def test_a_model_that_raises_is_named():
    def broken(batch):
        raise ValueError("kernel not built")

    with pytest.raises(ValueError, match=r"model: failed on a batch .*kernel not built"):
        igw.integrated_gradients(broken, IMAGE)


RENDER_CASES = [
    ("clip above > 100", {"clip_above_percentile": 101}, ValueError, "clip_above_percentile"),
    ("clip below < 0", {"clip_below_percentile": -1}, ValueError, "clip_below_percentile"),
    (
        "below >= above",
        {"clip_below_percentile": 60, "clip_above_percentile": 50},
        ValueError,
        "clip_below_percentile: expected a value below",
    ),
    ("clip NaN", {"clip_above_percentile": float("nan")}, ValueError, "clip_above_percentile"),
    ("structure zero", {"structure": 0}, ValueError, "structure: expected an integer >= 1"),
    ("structure float", {"structure": 2.5}, TypeError, "structure: expected an integer"),
    (
        "component > 100",
        {"outlines_component_percentage": 150},
        ValueError,
        "outlines_component_percentage",
    ),
    ("polarity", {"polarity": "up"}, ValueError, "polarity: expected one of"),
    ("colour", {"positive_color": (0, 300, 0)}, ValueError, "positive_color"),
    ("overlay text", {"overlay": "yes"}, TypeError, "overlay"),
    ("unknown option", {"alpha": 0.5}, TypeError, "alpha"),
    ("NaN map", {"attributions": np.full(IMAGE.shape, np.nan)}, ValueError, "attributions"),
    ("shape mismatch", {"attributions": np.zeros((8, 8, 3))}, ValueError, "attributions"),
]


@pytest.mark.parametrize("function", ["render", "plot"])
@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [case[1:] for case in RENDER_CASES],
    ids=[case[0] for case in RENDER_CASES],
)
def test_render_and_plot_refuse_bad_options(function, kwargs, error, pattern):
    kwargs = {"attributions": ATTRIBUTIONS, **kwargs}
    attributions = kwargs.pop("attributions")
    with pytest.raises(error, match=pattern):
        if function == "render":
            igw.render(IMAGE, attributions, **kwargs)
        else:
            igw.plot(IMAGE, ATTRIBUTIONS, attributions, **kwargs)


WIDGET_CASES = [
    ("class_names short", {"class_names": ["a", "b"]}, ValueError, "class_names: expected 4"),
    ("class_names text", {"class_names": "abcd"}, TypeError, "class_names"),
    ("top_k zero", {"top_k": 0}, ValueError, "top_k: expected an integer >= 1"),
    ("steps zero", {"steps": 0}, ValueError, "steps: expected an integer >= 1"),
    ("runs text", {"runs": "two"}, TypeError, "runs: expected an integer"),
    ("method", {"method": "euler"}, ValueError, "method: expected one of"),
    ("baseline", {"baseline": "grey"}, ValueError, "baseline: expected one of"),
    ("target", {"target": 9}, ValueError, r"target: expected a class index in \[0, 3\]"),
    ("render option", {"clip_above_percentile": 120}, ValueError, "clip_above_percentile"),
    ("image", {"image": np.zeros((16, 16, 3, 2))}, ValueError, "image: expected one image"),
    ("image channels", {"image": np.zeros((16, 16, 2))}, ValueError, "image: expected 1, 3 or 4"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [case[1:] for case in WIDGET_CASES],
    ids=[case[0] for case in WIDGET_CASES],
)
def test_widget_constructor_refuses_bad_input_before_computing(cnn, kwargs, error, pattern):
    model = CountingModel(cnn)
    kwargs = {"image": IMAGE, **kwargs}
    image = kwargs.pop("image")
    with pytest.raises(error, match=pattern):
        igw.IGWidget(model, image, **kwargs)
    assert model.calls <= 1  # at most the forward pass that counts the classes


@pytest.fixture(scope="module")
def shared_widget(cnn):
    return igw.IGWidget(cnn, IMAGE, steps=8, class_names=["a", "b", "c", "d"])


FRONT_END_CASES = [
    ({"clip_above_percentile": 150}, "clip_above_percentile"),
    ({"clip_below_percentile": "lots"}, "clip_below_percentile"),
    ({"clip_below_percentile": 99.95}, "clip_below_percentile: expected a value below"),
    ({"structure": 0}, "structure"),
    ({"outlines_component_percentage": -3}, "outlines_component_percentage"),
    ({"polarity": "sideways"}, "polarity"),
    ({"steps": 20_000}, "steps"),
    ({"runs": 0}, "runs"),
    ({"method": "<img src=x>"}, "method"),
    ({"target": 17}, "target"),
    ({"image_rgb": b"\x00" * 10}, "image_rgb: cannot be changed from the browser"),
]


@pytest.mark.parametrize(("state", "pattern"), FRONT_END_CASES)
def test_widget_refuses_bad_values_from_the_browser_and_keeps_its_state(
    shared_widget, state, pattern
):
    name = next(iter(state))
    before = getattr(shared_widget, name)
    result = shared_widget.result
    shared_widget.set_state(state)
    assert shared_widget.wait(30)
    assert getattr(shared_widget, name) == before
    assert shared_widget.result is result
    assert re.search(pattern, shared_widget.error)
    shared_widget.set_state({"clip_above_percentile": 98.0})  # still usable
    assert shared_widget.error == "" and shared_widget.clip_above_percentile == 98.0
    shared_widget.clip_above_percentile = 99.9


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_200_recomputes_neither_retrace_nor_leak(cnn):
    w = igw.IGWidget(cnn, IMAGE, steps=4)
    backend = backend_for(cnn, None)
    program = backend._programs[IMAGE.shape]
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


def test_two_widgets_on_one_model_compute_at_the_same_time(cnn):
    other_image = random_image(seed=9)
    first = igw.IGWidget(cnn, IMAGE, steps=30)
    second = igw.IGWidget(cnn, other_image, steps=30)
    first.set_state({"target": 1})
    second.set_state({"target": 2})
    assert first.wait(60) and second.wait(60)
    for w, image, target in ((first, IMAGE, 1), (second, other_image, 2)):
        expected = igw.integrated_gradients(cnn, image, steps=30, target=target)
        assert w.result.target == target and w.error == ""
        np.testing.assert_allclose(
            w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-7
        )


def test_out_of_memory_at_batch_one_is_reported_and_the_widget_recovers(cnn):
    w = igw.IGWidget(cnn, IMAGE, steps=6)
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
