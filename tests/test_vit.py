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

from .keras_backends import run_per_backend
from .models import (
    VIT,
    VIT_METHOD_SETTINGS,
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


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_gives_the_same_map_on_the_keras_and_the_torch_vit(vits, image, name):
    settings = {"target": TARGET, **VIT_METHOD_SETTINGS.get(name, {})}
    function = REGISTRY[name].function
    if name == "guided_gradcam":
        # Its ReLUs are GELUs: nothing to guide, and it says so before the model runs.
        for model, preprocess in zip(vits, (keras_normalise, torch_normalise), strict=True):
            with pytest.raises(ValueError, match="model: Guided Grad-CAM found no ReLU"):
                function(model, image, preprocess=preprocess, **settings)
        return
    # Grad-CAM's defaults differ (a Module's norms are not candidates): the same layer on both.
    layers = (
        [{"layer": "block1_norm1"}, {"layer": "blocks.1.norm1"}] if name == "gradcam" else [{}] * 2
    )
    on_keras = function(vits[0], image, preprocess=keras_normalise, **settings, **layers[0])
    on_torch = function(vits[1], image, preprocess=torch_normalise, **settings, **layers[1])
    assert on_keras.attributions.shape[:2] == image.shape[:2]
    scale = np.abs(on_keras.attributions).max()
    assert np.isfinite(scale) and scale > 0
    np.testing.assert_allclose(
        on_torch.attributions, on_keras.attributions, rtol=1e-3, atol=1e-3 * scale
    )


def _keras_hub_vit():
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
    return keras_hub.models.ViTImageClassifier(backbone=backbone, num_classes=4)


@pytest.mark.slow
def test_ig_on_keras_hubs_vit_is_the_riemann_sum_by_hand_and_complete():
    model = _keras_hub_vit()
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


def _check_default_layer(model, picture, preprocess, layer, after):
    """Grad-CAM's default is ``layer`` and draws a map; ``after`` (a layer past the last
    attention of a model that reads its class token) gives a blank one."""
    result = igw.gradcam(model, picture, target=TARGET, preprocess=preprocess)
    assert result.parameters == {"layer": layer}
    named = igw.gradcam(model, picture, target=TARGET, preprocess=preprocess, layer=layer)
    np.testing.assert_array_equal(result.attributions, named.attributions)
    assert float(result.attributions.max()) > 0
    if after is not None:
        late = igw.gradcam(model, picture, target=TARGET, preprocess=preprocess, layer=after)
        assert float(np.abs(late.attributions).max()) == 0.0


def test_gradcams_default_layer_on_the_vits_is_their_last_attentions_input(vits, image):
    """Their patch embedding is a convolution; the default reads what their last attention mixes."""
    keras_model, torch_model = vits
    # A Keras ViT of plain layers: its last attention's input, the last block's first norm.
    _check_default_layer(keras_model, image, keras_normalise, "block1_norm1", "norm")
    # The demo ViT: two convolution blocks as stem, then attention blocks.
    _check_default_layer(igw.demo.model("vit"), igw.demo.images()[0][0], None, "block1_norm1", None)
    # A Module's norms are not candidates: the block before its last one.
    _check_default_layer(torch_model, image, torch_normalise, "blocks.0", "blocks.1")


@pytest.mark.slow  # keras_hub is a dev dependency: the lowest-versions run has none
def test_gradcams_default_layer_on_keras_hubs_vit_is_the_block_before_its_last():
    # keras_hub's subclassed encoder: the ViTEncoderBlock before its last one.
    picture = random_image(32, seed=4)
    _check_default_layer(_keras_hub_vit(), picture, keras_normalise, "transformer_block_1", "ln")


# The Keras ViT on each Keras backend (TensorFlow, JAX, PyTorch), from the same
# NumPy weights: every registry method gives the same map (but Guided Grad-CAM,
# which refuses a model without ReLU: tested above). JAX compiles the attention
# for its bucketed batch sizes, PyTorch runs it eagerly.
GUIDED_NEEDS_RELU = "guided_gradcam"
BACKENDS_CHILD = """
import sys
import keras
import numpy as np
import ig_widget as igw
from ig_widget.backends import backend_for
from ig_widget.explainers import REGISTRY
from tests.models import (
    IMAGENET_MEAN, IMAGENET_STD, VIT_METHOD_SETTINGS, keras_vit, random_image, seeded_weights,
)

model = keras_vit()
weights = seeded_weights(model)
for index, variable in enumerate(model.weights):
    if variable.path.endswith("gamma"):
        weights[index] = weights[index] + 1  # layer norm scales near 1, as trained ones are
model.set_weights(weights)
mean, std = (keras.ops.convert_to_tensor(v) for v in (IMAGENET_MEAN, IMAGENET_STD))
image = random_image(16, seed=3)
maps = {
    name: REGISTRY[name].function(
        model, image, target=2,
        preprocess=lambda batch: (batch / 255.0 - mean) / std,
        **VIT_METHOD_SETTINGS.get(name, {}),
    ).attributions
    for name in REGISTRY
    if name != "guided_gradcam"
}
np.savez(sys.argv[1], backend=backend_for(model, None).name, **maps)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_every_method_gives_the_same_map_on_every_keras_backend(vit_backends, name):
    reference, other = vit_backends["tensorflow"], vit_backends[name]
    assert str(other["backend"]) == name and str(reference["backend"]) == "tensorflow"
    for method in (name for name in REGISTRY if name != GUIDED_NEEDS_RELU):
        scale = np.abs(reference[method]).max()
        assert scale > 0, method
        np.testing.assert_allclose(
            other[method], reference[method], rtol=1e-3, atol=1e-3 * scale, err_msg=method
        )


@pytest.fixture(scope="module")
def vit_backends(tmp_path_factory):
    return run_per_backend(BACKENDS_CHILD, tmp_path_factory.mktemp("vit_backends"), timeout=600)
