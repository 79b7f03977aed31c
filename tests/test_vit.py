"""Vision transformers: integrated gradients and every registry method on a Keras
ViT and a PyTorch ViT, their ImageNet-style preprocessing differentiated through.

The two ViTs (tests/models.py) have the same layout and, with ``torch_vit_like``,
the same weights, so every method must give the same attributions on both.
IG is checked against a Riemann sum written by hand with ``tf.GradientTape``
and ``torch.autograd``, and for completeness.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
from ig_widget.explainers import REGISTRY

from .models import (
    VIT,
    keras_normalise,
    keras_vit,
    random_image,
    torch_normalise,
    torch_vit_like,
)

TARGET = 2
STEPS = 32


@pytest.fixture(scope="module")
def vits():
    keras_model = keras_vit()
    return keras_model, torch_vit_like(keras_model)


@pytest.fixture(scope="module")
def image():
    return random_image(VIT["size"], seed=3)


def _riemann_middle_tf(model, image: np.ndarray, steps: int) -> np.ndarray:
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    points = tf.constant(alphas[:, None, None, None] * image[None])
    with tf.GradientTape() as tape:
        tape.watch(points)
        scores = model(keras_normalise(points))[:, TARGET]
    gradients = tape.gradient(scores, points).numpy()
    return gradients.mean(axis=0) * image


def _riemann_middle_torch(model, image: np.ndarray, steps: int) -> np.ndarray:
    alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    points = (alphas[:, None, None, None] * torch.tensor(image)[None]).requires_grad_()
    model(torch_normalise(points))[:, TARGET].sum().backward()
    return points.grad.mean(dim=0).numpy() * image


def test_ig_on_the_keras_vit_is_the_riemann_sum_by_hand(vits, image):
    ours = igw.integrated_gradients(
        vits[0],
        image,
        target=TARGET,
        steps=STEPS,
        method="riemann_middle",
        preprocess=keras_normalise,
    )
    by_hand = _riemann_middle_tf(vits[0], image, STEPS)
    scale = np.abs(by_hand).max()
    assert scale > 0
    np.testing.assert_allclose(ours.attributions, by_hand, rtol=1e-4, atol=1e-5 * scale)


def test_ig_on_the_torch_vit_is_the_riemann_sum_by_hand(vits, image):
    ours = igw.integrated_gradients(
        vits[1],
        image,
        target=TARGET,
        steps=STEPS,
        method="riemann_middle",
        preprocess=torch_normalise,
    )
    by_hand = _riemann_middle_torch(vits[1], image, STEPS)
    scale = np.abs(by_hand).max()
    assert scale > 0
    np.testing.assert_allclose(ours.attributions, by_hand, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_ig_on_a_vit_is_complete(vits, image, framework):
    model, preprocess = {
        "keras": (vits[0], keras_normalise),
        "torch": (vits[1], torch_normalise),
    }[framework]
    result = igw.integrated_gradients(
        model, image, target=TARGET, steps=64, method="gausslegendre", preprocess=preprocess
    )
    black = np.zeros((1, *image.shape), np.float32)
    if framework == "keras":
        baseline_score = float(model(keras_normalise(black))[0, TARGET])
    else:
        with torch.no_grad():
            baseline_score = float(model(torch_normalise(torch.tensor(black)))[0, TARGET])
    change = float(result.scores[TARGET]) - baseline_score
    # A ViT's score moves by whole units from black to the image; the sum of
    # the attributions must give that change (completeness) to float32 rounding.
    assert abs(change) > 1.0
    assert float(result.attributions.sum(dtype=np.float64)) == pytest.approx(change, rel=1e-4)
    assert result.delta < 1e-4


# Small settings per method; a method added to the registry later runs with its defaults.
METHOD_SETTINGS = {
    "integrated_gradients": {"steps": 16},
    "smoothgrad": {"samples": 6, "seed": 0},
    "expected_gradients": {
        "references": np.stack([random_image(VIT["size"], seed=s) * 0.5 for s in range(3)]),
        "samples": 12,
        "seed": 0,
    },
    "blur_ig": {"max_sigma": 4.0, "steps": 12},
    "guided_ig": {"steps": 12, "baseline": "uniform", "seed": 0},
    "xrai": {"steps": 8, "method": "gausslegendre"},
}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_gives_the_same_map_on_the_keras_and_the_torch_vit(vits, image, name):
    settings = {"target": TARGET, **METHOD_SETTINGS.get(name, {})}
    function = REGISTRY[name].function
    on_keras = function(vits[0], image, preprocess=keras_normalise, **settings)
    on_torch = function(vits[1], image, preprocess=torch_normalise, **settings)
    assert on_keras.attributions.shape[:2] == image.shape[:2]
    scale = np.abs(on_keras.attributions).max()
    assert np.isfinite(scale) and scale > 0
    np.testing.assert_allclose(
        on_torch.attributions, on_keras.attributions, rtol=1e-3, atol=1e-3 * scale
    )


@pytest.mark.slow
def test_ig_on_keras_hubs_vit_is_the_riemann_sum_by_hand_and_complete():
    # A real architecture from a maintained library, with random weights
    # (built offline): keras_hub's ViTImageClassifier, ViT-tiny's layout
    # scaled down to 32 x 32 images in 8 x 8 patches.
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=3,
        hidden_dim=48,
        mlp_dim=96,
    )
    model = keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=4)
    image = random_image(32, seed=4)
    ours = igw.integrated_gradients(
        model,
        image,
        target=TARGET,
        steps=STEPS,
        method="riemann_middle",
        preprocess=keras_normalise,
    )
    by_hand = _riemann_middle_tf(model, image, STEPS)
    scale = np.abs(by_hand).max()
    assert scale > 0
    np.testing.assert_allclose(ours.attributions, by_hand, rtol=1e-4, atol=1e-5 * scale)
    complete = igw.integrated_gradients(
        model, image, target=TARGET, steps=64, method="gausslegendre", preprocess=keras_normalise
    )
    assert complete.delta < 1e-3
