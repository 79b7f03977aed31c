"""The engine's errors: non-finite values on the path, models with odd outputs, odd inputs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw

from .models import random_image


def _mean_pixel(batch):
    return tf.reduce_mean(batch, axis=[1, 2, 3])


def log_of_mean(batch):
    """Finite at any real image; minus infinity at the black baseline."""
    mean = _mean_pixel(batch)
    return tf.stack([tf.math.log(mean), mean], axis=1)


def sqrt_of_mean(batch):
    """Finite score everywhere, infinite gradient at the black baseline."""
    mean = _mean_pixel(batch)
    return tf.stack([tf.sqrt(mean), mean], axis=1)


def infinite_in_the_middle(batch):
    """Infinite where the mean pixel is between 40 and 60 (alpha 0.31 to 0.47 from black)."""
    mean = _mean_pixel(batch)
    # sign() has a zero gradient, so the gradient stays finite elsewhere.
    score = mean / (tf.sign(tf.abs(mean - 50) - 10) + 1)
    return tf.stack([score, -mean], axis=1)


IMAGE = np.full((4, 4, 3), 127.5, np.float32)


@pytest.mark.parametrize(
    ("model", "kwargs", "pattern"),
    [
        (log_of_mean, {}, r"model: its score is NaN or infinite at baseline run 0, alpha 0;"),
        (sqrt_of_mean, {}, r"model: its gradient is NaN or infinite at baseline run 0, alpha 0;"),
        (infinite_in_the_middle, {"steps": 20}, r"model: its score .* alpha 0\.35;"),
        (
            log_of_mean,
            {"baseline": np.zeros((4, 4, 3)), "method": "riemann_left", "batch_size": 3},
            r"model: its score .* at baseline run 0, alpha 0;",
        ),
    ],
)
def test_a_non_finite_score_or_gradient_on_the_path_names_model_and_where(model, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        igw.integrated_gradients(model, IMAGE, target=0, **kwargs)


def test_paths_that_avoid_the_problem_give_finite_results():
    # From a grey baseline the log stays finite; never a NaN result.
    res = igw.integrated_gradients(log_of_mean, IMAGE, target=0, baseline=np.full((4, 4, 3), 64))
    assert np.all(np.isfinite(res.attributions)) and res.delta < 1e-3
    with pytest.raises(ValueError, match=r"image itself"):
        igw.integrated_gradients(sqrt_of_mean, np.zeros((4, 4, 3)), target=0, baseline="white")


def test_several_images_name_the_image():
    images = np.stack([IMAGE, IMAGE * 0 + 30])
    with pytest.raises(ValueError, match=r"baseline run 0, alpha 0 of images\[0\]"):
        igw.integrated_gradients_batch(log_of_mean, images, targets=0)


@pytest.mark.parametrize(
    ("model", "error", "pattern"),
    [
        (
            lambda x: tf.reshape(x, (-1, 48))[:, :0],
            ValueError,
            r"model: expected class scores of shape \(1, K\) with K >= 1 .* got shape \(1, 0\)",
        ),
        (
            lambda x: tf.strings.as_string(tf.reshape(x, (-1, 48))),
            TypeError,
            r"model: expected float class scores .* dtype object",
        ),
    ],
    ids=["no classes", "strings"],
)
def test_models_with_unusable_outputs_are_named(model, error, pattern):
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients(model, random_image(size=4))


def test_torch_tensors_that_require_grad_are_accepted_as_image_and_baseline():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))
    image = torch.rand(4, 4, 3, requires_grad=True) * 255  # a non-leaf tensor in a graph
    baseline = torch.full((4, 4, 3), 10.0, requires_grad=True)
    res = igw.integrated_gradients(model, image, baseline=baseline, target=torch.tensor(2))
    weights = model[1].weight.detach().numpy()[2].reshape(4, 4, 3)
    expected = weights * (image.detach().numpy() - 10.0)
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-4, atol=1e-4)
    batch = igw.integrated_gradients_batch(model, torch.stack([image, image]), targets=2)
    np.testing.assert_allclose(batch[1].attributions, batch[0].attributions, rtol=1e-6)
