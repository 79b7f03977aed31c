"""Grad-CAM, Guided Grad-CAM and occlusion: exact results, the layer choice, bad input.

Parity with Captum and pytorch-grad-cam's conventions (OpenCV's resize) is in tests/test_parity.py;
the same maps on TensorFlow, JAX and PyTorch in tests/test_explainer_backends.py.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
from ig_widget.explainers.gradcam import resize_bilinear, token_grid

from .models import (
    channels_first,
    convolution_names,
    linear_model,
    random_image,
    tiny_cnn,
    torch_cnn,
)


@pytest.fixture(scope="module")
def keras_cnn():
    return tiny_cnn(size=16)


@pytest.fixture(scope="module")
def image():
    return random_image(size=16)


def _keras_gradcam(model, image, layer, target):
    """Grad-CAM the way Keras' own example computes it: a model with two outputs, one tape."""
    model(image[None])
    both = keras.Model(model.inputs, [model.get_layer(layer).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        activation, scores = both([image[None]])
        score = scores[0, target]
    gradient = tape.gradient(score, activation).numpy()[0]
    cam = np.maximum(activation.numpy()[0] @ gradient.mean(axis=(0, 1)), 0.0)
    return cam


@pytest.mark.parametrize("first", [False, True])
def test_gradcam_is_keras_example_computation_resized_as_opencv_does(keras_cnn, image, first):
    layer = convolution_names(keras_cnn)[0] if first else None
    result = igw.gradcam(keras_cnn, image, layer=layer, target=3)
    name = layer or convolution_names(keras_cnn)[-1]  # the default: the last convolution
    cam = _keras_gradcam(keras_cnn, image, name, 3)
    assert cam.max() > 0 and result.parameters == {"layer": name}
    assert result.explainer == "gradcam" and result.points_used == 1 and result.target == 3
    expected = _resized(cam, (16, 16))
    np.testing.assert_allclose(result.attributions[..., 0], expected, rtol=1e-5, atol=1e-7)


def _resized(values, size):
    """Bilinear with half-pixel centres, as OpenCV's INTER_LINEAR and pytorch-grad-cam resize
    (equal to it: tests/test_parity.py)."""
    return torch.nn.functional.interpolate(
        torch.tensor(np.asarray(values, np.float64))[None, None],
        size=size,
        mode="bilinear",
        align_corners=False,
    )[0, 0].numpy()


def test_resize_matches_torch_up_and_down():
    values = np.random.default_rng(0).normal(size=(5, 7))
    for size in [(16, 9), (3, 4), (5, 7), (11, 2)]:
        ours = resize_bilinear(values, size)
        np.testing.assert_allclose(ours, _resized(values, size), rtol=1e-9, atol=1e-12)


def test_gradcam_on_a_token_layer_uses_the_grid_after_the_class_token():
    # A "transformer" in miniature: 1 class token + a 2 x 2 grid of patch tokens.
    class Tokens(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Identity()
            self.head = torch.nn.Linear(3, 2, bias=False)
            with torch.no_grad():
                self.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]]))

        def forward(self, batch):  # (N, 2, 2, 3) -> tokens (N, 5, 3)
            patches = batch.reshape(len(batch), 4, 3)
            tokens = self.embed(torch.cat([torch.ones_like(patches[:, :1]), patches], dim=1))
            return self.head(tokens.mean(dim=1))

    image = np.arange(12.0, dtype=np.float32).reshape(2, 2, 3)
    result = igw.gradcam(Tokens(), image, layer="embed", target=1)
    # Gradient of score 1 with respect to every token: (0, 0, 2) / 5; the map is 2/5 * channel 2.
    np.testing.assert_allclose(result.attributions[..., 0], image[..., 2] * 2 / 5, rtol=1e-6)


def test_gradcam_default_layer_of_a_module_is_its_last_convolution(image):
    model = torch_cnn()
    result = igw.gradcam(model, image, preprocess=channels_first, target=0)
    assert result.parameters == {"layer": "3"}


def _mixing_model(order):
    """Keras: ``order`` of "conv" (a 1x1 Conv2D on the 2 x 2 grid) and "attention"
    (a MultiHeadAttention on its 4 tokens, with its residual Add), then a head."""
    grid = keras.Input((2, 2, 3))
    x = grid
    for index, kind in enumerate(order):
        if kind == "conv":
            x = keras.layers.Conv2D(4, 1, name=f"conv{index}")(x)
        else:
            tokens = keras.layers.Reshape((4, x.shape[-1]))(x)
            mixed = keras.layers.MultiHeadAttention(2, 2, name=f"attention{index}")(tokens, tokens)
            tokens = keras.layers.Add(name=f"residual{index}")([tokens, mixed])
            x = keras.layers.Reshape((2, 2, x.shape[-1]))(tokens)
    head = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(grid, head)


@pytest.mark.parametrize(
    ("order", "default"),
    [
        (["conv", "conv"], "conv1"),
        # A hybrid ViT: what its last attention mixes, a stem's output or a residual add.
        (["conv", "attention"], "conv0"),
        (["conv", "attention", "attention"], "residual1"),
        (["conv", "attention", "conv", "attention"], "conv2"),
        (["attention", "conv"], "conv1"),  # a convolution after the attention
    ],
)
def test_the_default_layer_is_the_last_convolution_or_token_layer_before_the_last_attention(
    order, default
):
    model = _mixing_model(order)
    image = random_image(size=2, seed=1)
    result = igw.gradcam(model, image, target=0, pixel_range=(0.0, 1.0))
    assert result.parameters == {"layer": default}
    named = igw.gradcam(model, image, target=0, pixel_range=(0.0, 1.0), layer=default)
    np.testing.assert_array_equal(result.attributions, named.attributions)


def test_the_default_layer_of_a_module_is_the_block_before_its_last_block():
    # A token-mixing block registered after the convolution: its class name says "block".
    class MixerBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = torch.nn.Linear(4, 4)

        def forward(self, tokens):
            return tokens + self.mix(tokens.transpose(1, 2)).transpose(1, 2)

    class Hybrid(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Conv2d(3, 4, 2, stride=2)
            self.blocks = torch.nn.Sequential(MixerBlock(), MixerBlock())
            self.norm = torch.nn.LayerNorm(4)  # a module's norm is no candidate
            self.head = torch.nn.Linear(4, 2)

        def forward(self, images):
            tokens = self.stem(images).flatten(2).transpose(1, 2)
            return self.head(self.norm(self.blocks(tokens)).mean(dim=1))

    torch.manual_seed(0)
    result = igw.gradcam(Hybrid(), random_image(size=4), preprocess=channels_first, target=1)
    assert result.parameters == {"layer": "blocks.0"}


def test_a_model_without_a_convolution_or_token_mixing_block_names_what_was_looked_for(image):
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(name="flat")])
    with pytest.raises(
        ValueError,
        match=r"^layer: the model has no 2-D convolution, nor a transformer block \(class name "
        r"ending in Block or EncoderLayer\) or a Keras Add or normalisation layer on tokens "
        r"before its last attention, to default to; pass layer= one of 'flat'$",
    ):
        igw.gradcam(model, image)


def test_an_unknown_layer_is_named_with_the_candidates_before_the_model_runs(image):
    model = torch_cnn()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    with pytest.raises(ValueError, match=r"^layer: no layer named 'fc' in the model; expected "):
        igw.gradcam(model, image, layer="fc", preprocess=channels_first)
    with pytest.raises(ValueError, match=r"one of '0', '1', '2', '3', '4', '5', '6', '7'$"):
        igw.guided_gradcam(model, image, layer="conv", preprocess=channels_first)
    with pytest.raises(TypeError, match=r"^layer: expected a layer's name \(str\), got int"):
        igw.gradcam(model, image, layer=3, preprocess=channels_first)
    assert calls == []


def test_gradcam_needs_a_model_with_layers(image):
    with pytest.raises(TypeError, match=r"^model: Grad-CAM needs a Keras model or a torch"):
        igw.gradcam(linear_model(np.ones((16 * 16 * 3, 2), np.float32)), image)


def test_gradcam_names_a_layer_called_twice():
    dense = keras.layers.Dense(3, name="shared")
    inputs = keras.Input((1, 1, 3))
    model = keras.Model(inputs, keras.layers.Flatten()(dense(dense(inputs))))
    with pytest.raises(ValueError, match=r"^layer: the chosen layer ran 2 times"):
        igw.gradcam(model, np.ones((1, 1, 3), np.float32), layer="shared")


def test_the_model_is_put_back_after_guided_gradcam(keras_cnn, image):
    before = keras_cnn(image[None]).numpy()
    attributes = [
        (vars(layer).get("call"), vars(layer).get("activation")) for layer in keras_cnn.layers
    ]
    igw.guided_gradcam(keras_cnn, image, target=2)
    assert [
        (vars(layer).get("call"), vars(layer).get("activation")) for layer in keras_cnn.layers
    ] == attributes
    last = convolution_names(keras_cnn)[-1]
    assert keras_cnn.get_layer(last).activation is keras.activations.relu
    np.testing.assert_array_equal(keras_cnn(image[None]).numpy(), before)
    plain = igw.gradcam(keras_cnn, image, target=2).attributions
    np.testing.assert_allclose(
        plain[..., 0],
        _resized(_keras_gradcam(keras_cnn, image, last, 2), (16, 16)),
        rtol=1e-5,
        atol=1e-7,
    )


def test_guided_backprop_keeps_positive_gradients_at_positive_inputs():
    # Units u = relu(x @ A), score 0 = u @ (3, 7, -1). At x = (3, 1, 1): u = (2, 0, 1),
    # unit 1 is off. The plain gradient is 3 * (1, -1, 0) - 1 * (0, 0, 1) = (3, -3, -1);
    # guided backprop stops unit 2's negative upstream gradient: (3, -3, 0). Grad-CAM at
    # the units: relu(2 * 3 + 0 * 7 + 1 * -1) = 5.
    model = keras.Sequential(
        [
            keras.Input((1, 1, 3)),
            keras.layers.Dense(3, activation="relu", use_bias=False, name="units"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, use_bias=False),
        ]
    )
    model.layers[0].set_weights([np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0, 0, 1.0]])])
    model.layers[2].set_weights([np.array([[3.0, 0.0], [7.0, 0.0], [-1.0, 0.0]])])
    image = np.array([[[3.0, 1.0, 1.0]]], np.float32)
    cam = igw.gradcam(model, image, layer="units", target=0)
    guided = igw.guided_gradcam(model, image, layer="units", target=0)
    assert cam.attributions.ravel().tolist() == [5.0]
    assert guided.attributions.ravel().tolist() == [15.0, -15.0, 0.0]


# --- occlusion -------------------------------------------------------------------------


def test_occlusion_of_a_linear_model_is_the_window_sum_of_w_times_x_minus_baseline():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(8, 12, 3, 2)).astype(np.float32)
    image = rng.uniform(0, 255, (8, 12, 3)).astype(np.float32)
    result = igw.occlusion(
        linear_model(weights), image, window=(4, 3), stride=(4, 3), baseline="white", target=1
    )
    contribution = (weights[..., 1] * (image - 255.0)).astype(np.float64)
    expected = contribution.reshape(2, 4, 4, 3, 3).sum(axis=(1, 3, 4))
    expected = np.repeat(np.repeat(expected, 4, axis=0), 3, axis=1)
    assert result.points_used == 8 and result.parameters == {
        "window": (4, 3),
        "stride": (4, 3),
        "baseline": "white",
    }
    np.testing.assert_allclose(
        result.attributions, np.repeat(expected[..., None], 3, axis=2), rtol=1e-4, atol=1e-2
    )


def test_occlusion_averages_overlapping_windows_and_cuts_the_last_at_the_edge():
    weights = np.ones((6, 1, 1, 2), np.float32)
    image = np.arange(1.0, 7.0, dtype=np.float32).reshape(6, 1, 1)
    result = igw.occlusion(linear_model(weights), image, window=(3, 1), stride=(2, 1), target=1)
    # ceil((6 - 3) / 2) + 1 = 3 windows, at rows 0, 2 and 4, the last cut to rows 4 and 5:
    # drops 1 + 2 + 3, 3 + 4 + 5 and 5 + 6; rows 2 and 4 are covered twice.
    expected = [6.0, 6.0, (6 + 12) / 2, 12.0, (12 + 11) / 2, 11.0]
    np.testing.assert_allclose(result.attributions[:, 0, 0], expected, rtol=1e-6)
    assert result.points_used == 3


def test_occlusion_runs_forward_passes_in_batches_with_progress(image, keras_cnn):
    seen = []
    one = igw.occlusion(keras_cnn, image, window=4, target=1, batch_size=1)
    batched = igw.occlusion(
        keras_cnn,
        image,
        window=4,
        target=1,
        batch_size=5,
        progress=lambda done, total: seen.append((done, total)),
    )
    np.testing.assert_allclose(batched.attributions, one.attributions, rtol=1e-5, atol=1e-6)
    assert batched.points_used == 49 and seen[-1] == (49, 49)
    with pytest.raises(igw.ComputationCancelled):
        igw.occlusion(keras_cnn, image, window=4, progress=lambda done, total: False)


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        ({"window": 0}, ValueError, r"^window: expected an integer >= 1, got 0$"),
        ({"window": (2, 2, 2)}, ValueError, r"^window: expected an integer or a pair"),
        ({"window": 17}, ValueError, r"^window: expected at most the image's size \(16, 16\)"),
        ({"stride": 1.5}, TypeError, r"^stride: expected an integer, got float 1.5$"),
        ({"baseline": "grey"}, ValueError, r"^baseline: expected one of"),
    ],
)
def test_occlusion_checks_its_parameters_before_the_model_runs(image, keywords, error, message):
    calls = []
    model = tiny_cnn(size=16)

    def counting(batch):
        calls.append(1)
        return model(batch)

    with pytest.raises(error, match=message):
        igw.occlusion(counting, image, **keywords)
    assert calls == []


def test_every_new_method_gives_insertion_and_deletion_curves(keras_cnn, image):
    for method in (igw.gradcam, igw.guided_gradcam, igw.occlusion):
        result = method(keras_cnn, image, target=1)
        curves = igw.insertion_deletion(keras_cnn, image, result, steps=8)
        assert curves.insertion[-1] == pytest.approx(result.score, rel=1e-5)
        assert len(curves.deletion) == 9


def test_guided_gradcam_refuses_a_model_without_a_relu_to_guide(image):
    model = tiny_cnn(size=16)
    for layer in model.layers:  # the second convolution is the only ReLU
        if isinstance(layer, keras.layers.Conv2D):
            layer.activation = keras.activations.tanh
    with pytest.raises(ValueError, match=r"^model: Guided Grad-CAM found no ReLU to guide"):
        igw.guided_gradcam(model, image)
    torch_model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.Tanh(), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"^model: Guided Grad-CAM found no ReLU to guide"):
        igw.guided_gradcam(torch_model, image, preprocess=channels_first)


def _two_channel_copy(size: int = 4, score_map: bool = False):
    """A 1x1 convolution making channels x and 2x of a one-channel image; each class's
    score the mean of its channel (or, as a score map, the channel itself)."""
    convolution = keras.layers.Conv2D(2, 1, name="c", use_bias=False)
    layers = [keras.Input((size, size, 1)), convolution]
    if not score_map:
        layers.append(keras.layers.GlobalAveragePooling2D())
    model = keras.Sequential(layers)
    convolution.set_weights([np.array([[[[1.0, 2.0]]]])])
    return model


def test_gradcam_of_a_contrast_weights_the_channels_by_the_difference_of_gradients():
    model = _two_channel_copy()
    image = np.arange(16.0).reshape(4, 4, 1) + 1
    # Class 1 against 0: channel weights (-1/16, 1/16), so relu(-x/16 + 2x/16) = x/16.
    against = igw.gradcam(model, image, target=(1, 0))
    np.testing.assert_allclose(against.attributions[..., 0], image[..., 0] / 16, rtol=1e-6)
    assert (against.target, against.against) == (1, 0)
    # Class 0 against 1: relu(x/16 - 2x/16) = 0 on positive pixels.
    assert not igw.gradcam(model, image, target=(0, 1)).attributions.any()


def test_gradcam_of_a_region_reads_the_score_map_inside_it():
    model = _two_channel_copy(score_map=True)
    image = np.arange(16.0).reshape(4, 4, 1) + 1
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    region = igw.gradcam(model, image, target=igw.Region(1, mask=mask))
    # d(sum of class 1 inside)/dA_1 is 1 on the 4 pixels: weight 4/16; A_1 = 2x.
    np.testing.assert_allclose(region.attributions[..., 0], 2 * image[..., 0] * 4 / 16, rtol=1e-6)
    assert region.explained == "class 1, the sum over a region of 4 pixels"  # cells = pixels


def test_gradcam_of_a_box_on_a_coarser_score_map_reads_the_cells_whose_centre_it_holds():
    # The channels x and 2x at 8 x 8, the score map their 2 x 2 means (4 x 4).
    model = _two_channel_copy(size=8, score_map=True)
    model = keras.Sequential([model, keras.layers.AveragePooling2D(2)])
    image = np.arange(64.0).reshape(8, 8, 1) + 1
    # Cell centres at pixels 1, 3, 5, 7: the box holds rows 1, 3, 5 and column 3, 3 cells.
    result = igw.gradcam(model, image, layer="c", target=igw.Region(1, box=(1, 2, 6, 5)))
    # d(sum of class 1 in the 3 cells)/dA_1 is 1/4 on their 12 pixels: weight 3/64; A_1 = 2x.
    np.testing.assert_allclose(result.attributions[..., 0], 2 * image[..., 0] * 3 / 64, rtol=1e-6)
    # Grad-CAM reads the map's shape from its own pass; the words name the 3 cells.
    assert result.map_shape == (4, 4)
    assert (
        result.explained
        == "class 1, the sum over 3 cells of the 4 x 4 score map (a box of 15 pixels)"
    )


def test_occlusion_of_a_contrast_is_the_difference_of_the_two_classes(keras_cnn, image):
    both = igw.occlusion(keras_cnn, image, window=4, target=(1, 0))
    first = igw.occlusion(keras_cnn, image, window=4, target=1)
    second = igw.occlusion(keras_cnn, image, window=4, target=0)
    np.testing.assert_allclose(
        both.attributions, first.attributions - second.attributions, rtol=1e-5, atol=1e-6
    )


def test_tokens_of_a_non_square_image_are_read_on_its_grid():
    """32 tokens of a 4 x 8 grid were read as the last 25 on a 5 x 5 one, without a word."""
    inputs = keras.Input((16, 32, 3))
    grid = keras.layers.Conv2D(4, 4, strides=4, name="grid")(inputs)  # (4, 8, 4)
    tokens = keras.layers.Reshape((32, 4), name="tokens")(grid)
    pooled = keras.layers.GlobalAveragePooling1D()(tokens)
    model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
    image = random_image(size=32, seed=2)[:16]
    by_tokens = igw.gradcam(model, image, layer="tokens", target=0).attributions
    by_grid = igw.gradcam(model, image, layer="grid", target=0).attributions
    np.testing.assert_array_equal(by_tokens, by_grid)
    # Patches tiling the image first: a class token and 3 x 5 (4 x 4 would leave none),
    # DINOv2's 5 tokens and 12 x 16 (14 x 14 would leave 1), each with a warning naming
    # the square the count also fits; then the aspect or a square, fewer left over: a
    # model that resizes to 224 x 224, a stem that drops the last pixels.
    for tokens, shape, grid, square in [(16, (24, 40), (3, 5), 4), (197, (168, 224), (12, 16), 14),
                                        (197, (100, 400), (7, 28), 14)]:  # fmt: skip
        words = rf"its {tokens} tokens could be a {grid[0]} x {grid[1]} grid .* or {square} x "
        with pytest.warns(UserWarning, match=words + rf"{square} .* read as {grid[0]} x"):
            assert token_grid(tokens, shape) == grid
    assert token_grid(197, (16, 32)) == (14, 14) and token_grid(393, (230, 460)) == (14, 28)
    with pytest.raises(ValueError, match=r"^layer: its 98 tokens form no grid of the image's"):
        token_grid(98, (16, 16))  # 9 x 9 would leave 17 tokens before it
    with pytest.raises(ValueError, match=r"^layer: its 0 tokens form no grid"):
        token_grid(0, (16, 16))
