"""Small models with known behaviour, shared by the test files."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def linear_model(weights: np.ndarray):
    """F(x) = x.flatten() @ weights: IG is exactly weights * (x - x')."""
    w = tf.constant(weights.reshape(-1, weights.shape[-1]), tf.float32)

    def model(batch):
        return tf.reshape(batch, (tf.shape(batch)[0], -1)) @ w

    return model


def tiny_cnn(
    size: int = 16, channels: int = 3, classes: int = 4, seed: int = 0, rescale: bool = True
) -> keras.Model:
    """A small nonlinear CNN returning logits, deterministic for a seed.

    Its output layer is initialised wide so that class scores differ by whole
    units: a near-constant model would make the relative completeness error
    meaningless. ``rescale=False`` leaves out the 0..255 -> -1..1 input scaling,
    for tests that pass it as ``preprocess``.
    """
    keras.utils.set_random_seed(seed)
    scaling = [keras.layers.Rescaling(1 / 127.5, offset=-1)] if rescale else []
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            *scaling,
            keras.layers.Conv2D(8, 3, activation="tanh"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                classes, kernel_initializer=keras.initializers.RandomNormal(stddev=3)
            ),
        ]
    )


def random_image(size: int = 16, channels: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (size, size, channels)).astype(np.float32)
