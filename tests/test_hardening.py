"""Issue 6: bad inputs, faults and hostile text, one table row per case.

Every bad input must fail with a ValueError or TypeError whose message names
the parameter, before any heavy work (checked by counting model calls).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ig_widget as igw

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
