"""What the engine takes and refuses: images in every form, options, models.

Every bad input fails with a ValueError or TypeError whose message names the
parameter, before any heavy work (checked by counting model calls).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ig_widget as igw

from .models import CountingModel, random_image, tiny_cnn

IMAGE = random_image()


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


# (id, keyword arguments replacing the defaults, error type, message pattern)
BAD_INPUTS = [
    ("1-D image", {"image": np.zeros(48)}, ValueError, r"image: expected one image of shape"),
    ("batch of 2", {"image": np.zeros((2, 16, 16, 3))}, ValueError, r"image: .*batch of 2"),
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
    (
        "target text",
        {"target": "cat"},
        ValueError,
        r"target: a class name \('cat'\) needs class_names=\[...\]; or give class indices",
    ),
    ("target negative", {"target": -2}, ValueError, "target: expected an integer >= 0"),
    ("steps zero", {"steps": 0}, ValueError, "steps: expected an integer >= 1"),
    ("steps negative", {"steps": -5}, ValueError, "steps: expected an integer >= 1"),
    ("steps absurd", {"steps": 10_001}, ValueError, "steps: expected an integer <= 10000"),
    ("steps float", {"steps": 2.5}, TypeError, "steps: expected an integer"),
    ("steps text", {"steps": "many"}, TypeError, "steps: expected an integer"),
    ("auto steps", {"steps": "auto", "method": "gausslegendre"}, ValueError, "steps: 'auto'"),
    ("method", {"method": "simpson"}, ValueError, "method: expected one of 'trapezoid'"),
    ("baseline name", {"baseline": "gray"}, ValueError, "baseline: expected one of 'black'"),
    ("baseline shape", {"baseline": np.zeros((8, 8, 3))}, ValueError, "baseline: expected an arr"),
    ("baseline NaN", {"baseline": np.full(IMAGE.shape, np.nan)}, ValueError, "baseline: .*NaN"),
    ("runs zero", {"runs": 0}, ValueError, "runs: expected an integer >= 1"),
    ("batch_size zero", {"batch_size": 0}, ValueError, "batch_size: expected an integer >= 1"),
    ("seed negative", {"seed": -1}, ValueError, "seed: expected an integer >= 0"),
    ("progress", {"progress": 3}, TypeError, "progress: expected a callable"),
    ("preprocess", {"preprocess": "scale"}, TypeError, "preprocess: expected a callable"),
    ("precision", {"precision": "float16"}, ValueError, "precision: expected one of 'float32'"),
    ("precision None", {"precision": None}, ValueError, "precision: expected one of"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_named_before_work(cnn, kwargs, error, pattern):
    model = CountingModel(cnn)
    kwargs = {"image": IMAGE, **kwargs}
    image = kwargs.pop("image")
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients(model, image, **kwargs)
    # The one forward pass that finds the number of classes is the only model
    # call allowed before a target or baseline error; none for the rest.
    assert model.calls <= 2


def test_a_corrupt_file_is_named(cnn, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"image: cannot read .*broken.png"):
        igw.gradients(cnn, path)


def test_pil_images_and_paths_are_accepted(cnn, tmp_path):
    pixels = IMAGE.astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    from_array = igw.gradients(cnn, pixels)
    np.testing.assert_array_equal(igw.gradients(cnn, Image.fromarray(pixels)), from_array)
    np.testing.assert_array_equal(igw.gradients(cnn, str(tmp_path / "x.png")), from_array)
    rgba = Image.fromarray(pixels).convert("RGBA")
    np.testing.assert_array_equal(igw.gradients(cnn, rgba), from_array)  # alpha dropped


def test_greyscale_pil_and_path_images(tmp_path):
    model = tiny_cnn(channels=1)
    grey = np.random.default_rng(0).integers(0, 255, (16, 16)).astype(np.uint8)
    from_array = igw.integrated_gradients(model, grey, steps=8)
    assert from_array.attributions.shape == (16, 16, 1)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    from_pil = igw.integrated_gradients(model, Image.open(tmp_path / "grey.png"), steps=8)
    from_path = igw.integrated_gradients(model, tmp_path / "grey.png", steps=8)
    np.testing.assert_array_equal(from_pil.attributions, from_array.attributions)
    np.testing.assert_array_equal(from_path.attributions, from_array.attributions)


def test_16_bit_images_are_rescaled_to_8_bit_units(cnn):
    pixels = IMAGE.astype(np.uint8)
    sixteen = pixels.astype(np.uint16) * 257  # 255 -> 65535
    np.testing.assert_allclose(
        igw.gradients(cnn, sixteen), igw.gradients(cnn, pixels), rtol=1e-4, atol=1e-9
    )


def _scalar_model(x):
    return tf.reduce_sum(x)


BAD_MODELS = [
    ("scalar", _scalar_model, ValueError, r"model: expected class scores of shape \(1, K\)"),
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
    ("None", None, TypeError, "model: expected a Keras model or callable"),
]


@pytest.mark.parametrize(
    ("model", "error", "pattern"),
    [case[1:] for case in BAD_MODELS],
    ids=[case[0] for case in BAD_MODELS],
)
def test_models_with_the_wrong_output_are_named(model, error, pattern):
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients(model, IMAGE)


@pytest.mark.parametrize("entry", [igw.integrated_gradients, igw.gradients])
def test_a_model_that_raises_is_named(entry):
    def broken(batch):
        raise ValueError("weights not loaded")

    with pytest.raises(ValueError, match=r"model: failed on a batch .*weights not loaded"):
        entry(broken, IMAGE)
