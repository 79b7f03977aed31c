"""Small models with known behaviour, shared by the test files.

Only ``linear_model`` needs TensorFlow, and it imports it itself, so that the
Keras models here also serve tests that run Keras on JAX or PyTorch with
TensorFlow blocked.
"""

from __future__ import annotations

import keras
import numpy as np


def linear_model(weights: np.ndarray):
    """F(x) = x.flatten() @ weights: IG is exactly weights * (x - x')."""
    import tensorflow as tf

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


def seeded_weights(model: keras.Model, seed: int = 0) -> list[np.ndarray]:
    """NumPy weights for ``model`` that do not depend on the Keras backend.

    Keras' initialisers draw different numbers on TensorFlow, JAX and PyTorch;
    these let the same network run on every backend. Kernels get a
    1/sqrt(fan-in) scale, the last one 3 times that (wide logits, as in
    ``tiny_cnn``); biases a small spread.
    """
    rng = np.random.default_rng(seed)
    shapes = [w.shape for w in model.get_weights()]
    weights = []
    for i, shape in enumerate(shapes):
        if len(shape) == 1:
            weights.append(rng.normal(0, 0.1, shape).astype(np.float32))
            continue
        scale = (3.0 if i == len(shapes) - 2 else 1.0) / np.sqrt(np.prod(shape[:-1]))
        weights.append(rng.normal(0, scale, shape).astype(np.float32))
    return weights


def torch_cnn(seed: int = 0):
    """A channels-first PyTorch CNN, as torchvision and Captum users have, with logits
    wide apart; it takes (N, C, H, W) in -1..1 (see ``channels_first``)."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.Tanh(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )
    with torch.no_grad():
        model[-1].weight.mul_(10)
    return model


def channels_first(batch):
    """The engine's ``preprocess`` for ``torch_cnn``: raw (N, H, W, C) to (N, C, H, W) in -1..1."""
    return batch.permute(0, 3, 1, 2) / 127.5 - 1


class CountingModel:
    """Wraps a model and counts batches, to prove validation happens first."""

    def __init__(self, model):
        self.model = model
        self.inputs = model.inputs  # so the engine can check the declared input shape
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        return self.model(batch)
