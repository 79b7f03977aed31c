"""Contrastive targets: "why a and not b" explains score(a) - score(b), for every method."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
from ig_widget.explainers import REGISTRY

from .models import CountingModel, linear_model, random_image, tiny_cnn

NAMES = ("circle", "square", "triangle", "star")


@pytest.fixture(scope="module")
def weights():
    return np.random.default_rng(0).normal(size=(4, 4, 3, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def image():
    return random_image(size=4)


def torch_linear(weights):
    """The same linear map as ``linear_model(weights)``, as a ``torch.nn.Module``."""
    layer = torch.nn.Linear(weights[..., 0].size, weights.shape[-1], bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weights.reshape(-1, weights.shape[-1]).T.copy()))
        layer.bias.fill_(0.5)
    return torch.nn.Sequential(torch.nn.Flatten(), layer)


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("target", [(3, 0), ("star", "circle"), (np.int64(3), "circle")])
def test_a_contrast_of_a_linear_model_is_the_difference_of_weights_times_the_input(
    weights, image, framework, target
):
    model = linear_model(weights) if framework == "tensorflow" else torch_linear(weights)
    result = igw.integrated_gradients(
        model, image, target=target, baseline="white", steps=3, class_names=NAMES
    )
    expected = (weights[..., 3] - weights[..., 0]) * (image - 255.0)
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(result.gradients, weights[..., 3] - weights[..., 0], rtol=1e-6)
    assert (result.target, result.against) == (3, 0)
    assert result.score == pytest.approx(result.scores[3] - result.scores[0])
    assert result.delta < 1e-5
    assert result.explained == "class 3 and not class 0"


def test_a_contrast_on_a_one_column_model_is_twice_the_column(weights, image):
    """Class 1 is the column z, class 0 its complement -z: 1 and not 0 is 2z."""
    model = linear_model(weights[..., :1])
    result = igw.integrated_gradients(model, image, target=(1, 0), steps=2)
    np.testing.assert_allclose(result.attributions, 2 * weights[..., 0] * image, rtol=1e-5)
    assert result.score == pytest.approx(2 * result.scores[1])


@pytest.fixture(scope="module")
def demo():
    images, _ = igw.demo.images()
    return igw.demo.model(), images[:3]


def test_completeness_holds_for_the_difference_on_the_demo_model(demo):
    model, images = demo
    names = igw.demo.class_names
    for image in images:
        result = igw.integrated_gradients(
            model, image, target=("star", "circle"), steps="auto", class_names=names
        )
        star, circle = names.index("star"), names.index("circle")
        at_black = model.predict(np.zeros((1, *image.shape), np.float32), verbose=0)[0]
        difference = (result.scores[star] - result.scores[circle]) - (
            at_black[star] - at_black[circle]
        )
        assert float(result.attributions.sum()) == pytest.approx(difference, rel=0.01, abs=1e-4)
        assert result.delta <= 0.01
        # Integrated gradients is linear in the score: the contrast is the difference of maps.
        alone = [
            igw.integrated_gradients(model, image, target=c, steps=result.steps)
            for c in (star, circle)
        ]
        np.testing.assert_allclose(
            result.attributions, alone[0].attributions - alone[1].attributions, atol=1e-6
        )


# Methods whose map is linear in the explained score: their contrast is the
# difference of the two classes' maps (Guided IG's path and XRAI's regions
# depend on the score itself).
LINEAR_METHODS = {"integrated_gradients", "smoothgrad", "expected_gradients", "blur_ig"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_explains_a_contrast(name):
    model = tiny_cnn()
    image = random_image()
    kwargs = {"references": [random_image(seed=s) for s in (2, 3)]}
    if name != "expected_gradients":
        kwargs = {}
    if "seed" in REGISTRY[name].parameters():
        kwargs["seed"] = 0
    explain = REGISTRY[name].function
    result = explain(model, image, target=("b", "a"), class_names=["a", "b", "c", "d"], **kwargs)
    assert (result.target, result.against) == (1, 0)
    assert result.score == pytest.approx(result.scores[1] - result.scores[0])
    if name in LINEAR_METHODS:
        maps = [explain(model, image, target=c, **kwargs).attributions for c in (1, 0)]
        np.testing.assert_allclose(result.attributions, maps[0] - maps[1], rtol=1e-4, atol=1e-5)


def test_insertion_deletion_follows_the_difference(weights, image):
    model = linear_model(weights)
    result = igw.integrated_gradients(model, image, target=(2, 1), steps=2)
    curves = igw.insertion_deletion(model, image, result, steps=4, baseline="black")
    assert (curves.target, curves.against) == (2, 1)
    assert curves.deletion[0] == pytest.approx(result.score, rel=1e-5)
    assert curves.deletion[-1] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(
    ("target", "names", "error", "message"),
    [
        ((1, 1), None, ValueError, r"target: expected two different classes .*, got \(1, 1\)"),
        (("star", "star"), NAMES, ValueError, "two different classes"),
        (("star", "hexagon"), NAMES, ValueError, r"target: expected one of 'circle', .*'hexagon'"),
        ((1, 2, 3), None, ValueError, "target: expected one class or a pair .* a tuple of 3"),
        ((1,), None, ValueError, "a tuple of 1"),
        (("star", 0), None, ValueError, r"target: a class name \('star'\) needs class_names"),
        ((1.5, 0), None, TypeError, "target: expected an integer, got float 1.5"),
        ((1, -1), None, ValueError, "target: expected an integer >= 0, got -1"),
    ],
)
def test_bad_contrasts_are_refused_before_the_model_runs(target, names, error, message):
    model = CountingModel(tiny_cnn(size=8))
    with pytest.raises(error, match=message):
        igw.integrated_gradients(model, random_image(size=8), target=target, class_names=names)
    assert model.calls == 0


def test_a_contrast_beyond_the_classes_names_the_bound(weights, image):
    with pytest.raises(ValueError, match=r"target: expected a class index in \[0, 3\], got 4"):
        igw.integrated_gradients(linear_model(weights), image, target=(0, 4))


def test_class_names_are_checked():
    with pytest.raises(TypeError, match="class_names: expected a list of strings"):
        igw.integrated_gradients(tf.identity, np.zeros((2, 2, 3)), class_names="abc")


# -- region targets: a class's scores summed (or averaged) over a region of a score map --


def pixel_linear(weights):
    """A per-pixel linear segmentation model: map[n, h, w, k] = x[n, h, w] @ weights (C, K).
    The region score is sum over the region of x @ weights[:, k], so IG is exactly
    region[h, w] * weights[c, k] * (x - x')."""

    def model(batch):
        return tf.einsum("nhwc,ck->nhwk", batch, tf.constant(weights))

    return model


def torch_pixel_linear(weights):
    layer = torch.nn.Linear(weights.shape[0], weights.shape[1], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weights.T.copy()))
    return layer  # applied to the last axis: (N, H, W, C) -> (N, H, W, K)


@pytest.fixture(scope="module")
def pixel_weights():
    return np.random.default_rng(3).normal(size=(3, 5)).astype(np.float32)


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_a_region_of_a_per_pixel_linear_model_has_the_exact_answer(
    pixel_weights, image, framework, reduce
):
    model = (
        pixel_linear(pixel_weights)
        if framework == "tensorflow"
        else torch_pixel_linear(pixel_weights)
    )
    mask = np.zeros((4, 4), bool)
    mask[1:3, 0:3] = True
    result = igw.integrated_gradients(
        model, image, target=igw.Region(class_=2, mask=mask, reduce=reduce), steps=2
    )
    share = mask / (mask.sum() if reduce == "mean" else 1.0)
    expected = share[..., None] * pixel_weights[:, 2] * image
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-5, atol=1e-4)
    assert result.target == 2 and result.scores.shape == (5,)
    # A map of the image's size: its cells are the pixels, the words count pixels.
    assert result.map_shape == (4, 4)
    assert result.explained == f"class 2, the {reduce} over a region of 6 pixels"
    maps = np.einsum("hwc,ck->hwk", image, pixel_weights)
    np.testing.assert_allclose(result.scores, (maps * share[..., None]).sum((0, 1)), rtol=1e-5)
    assert result.delta < 1e-5


def test_a_box_is_the_mask_of_its_rectangle(pixel_weights, image):
    model = pixel_linear(pixel_weights)
    mask = np.zeros((4, 4), bool)
    mask[0:2, 1:4] = True
    by_box = igw.integrated_gradients(model, image, target=igw.Region(1, box=(0, 1, 2, 4)))
    by_mask = igw.integrated_gradients(model, image, target=igw.Region(1, mask=mask))
    np.testing.assert_array_equal(by_box.attributions, by_mask.attributions)


def keras_linear(weights, per_pixel):
    """``linear_model`` (``per_pixel``: ``pixel_linear``) as a Keras model, whose weights
    the sanity check can randomise; ``exact`` gives IG from black for any weights."""
    import keras

    layers = [] if per_pixel else [keras.layers.Flatten()]
    columns = weights.reshape(-1, weights.shape[-1])
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), *layers, keras.layers.Dense(weights.shape[-1], use_bias=False)]
    )
    model.set_weights([columns])
    return model


@pytest.mark.parametrize("kind", ["contrast", "region"])
def test_stability_the_sanity_check_and_the_curves_keep_the_target_at_every_run(
    weights, pixel_weights, image, kind
):
    """Each run after the first used to get the bare class: the contrast was dropped and a
    region refused ("give a region target"), after the first run's work."""
    from ig_widget.sanity import randomised_model

    per_pixel = kind == "region"
    model = keras_linear(pixel_weights if per_pixel else weights, per_pixel)
    region = np.zeros((4, 4, 1))
    region[0:3, 1:4] = 1.0
    target = igw.Region(2, box=(0, 1, 3, 4)) if per_pixel else (2, 1)

    def exact(columns):  # IG from black of the linear score, for the model's Dense weights
        if per_pixel:
            return region * columns[:, 2] * image
        return (columns[:, 2] - columns[:, 1]).reshape(image.shape) * image

    runs = igw.stability(
        model, image, baselines=["black", "black"], target=target, parameters={"steps": 2}
    )
    for run in runs.attributions:
        np.testing.assert_allclose(run, exact(model.get_weights()[0]), rtol=1e-4, atol=1e-3)
    assert runs.rank_correlation == 1.0 and runs.target == 2
    words = "class 2, the sum over" if per_pixel else "class 2 and not class 1"
    assert runs.explained.startswith(words)
    assert f"for {runs.explained}" in runs.report_section().summary[0]
    check = igw.sanity_check(model, image, target=target, options={"steps": 2})
    random = randomised_model(model).get_weights()[0]
    np.testing.assert_allclose(check.maps[1], exact(random), rtol=1e-4, atol=1e-3)
    assert check.target == 2 and check.explained.startswith(words)
    result = igw.integrated_gradients(model, image, target=target, steps=2)
    assert result.given_target == target
    curves = igw.insertion_deletion(model, image, result, steps=4, baseline="black")
    assert curves.deletion[0] == pytest.approx(result.score, rel=1e-5)


def coarse_pixel_linear(weights, framework):
    """A per-pixel linear segmentation model on a 2x-coarser map: each cell is the mean
    of its 2 x 2 pixels, times ``weights`` (C, K). A cell's score is linear in its four
    pixels, so IG from black gives each pixel a quarter of its cell's weight."""
    if framework == "tensorflow":
        return lambda batch: tf.einsum(
            "nhwc,ck->nhwk", tf.nn.avg_pool2d(batch, 2, 2, "VALID"), tf.constant(weights)
        )

    class Coarse(torch.nn.Module):
        def forward(self, batch):
            pooled = torch.nn.functional.avg_pool2d(batch.permute(0, 3, 1, 2), 2)
            return torch.einsum("nchw,ck->nhwk", pooled, torch.from_numpy(weights))

    return Coarse()


@pytest.mark.parametrize("framework", ["tensorflow", "torch"])
@pytest.mark.parametrize(
    ("region", "cells", "words"),
    [
        # Cell centres of a 4 x 4 map on 8 x 8 pixels: pixel rows and columns 1, 3, 5, 7.
        # Rows 1..5 hold centres 1, 3, 5; columns 2..4 the centre 3.
        (
            igw.Region(2, box=(1, 2, 6, 5)),
            [(0, 1), (1, 1), (2, 1)],
            "class 2, the sum over 3 cells of the 4 x 4 score map (a box of 15 pixels)",
        ),
        (
            igw.Region(2, box=(0, 0, 8, 8), reduce="mean"),
            [(i, j) for i in range(4) for j in range(4)],
            "class 2, the mean over 16 cells of the 4 x 4 score map (a box of 64 pixels)",
        ),
        # An image-sized mask: only its pixels on a centre count, (3, 3) and (7, 1).
        (
            igw.Region(
                2, mask=np.isin(np.arange(64).reshape(8, 8), [0, 27, 46, 57]), reduce="mean"
            ),
            [(1, 1), (3, 0)],
            "class 2, the mean over 2 cells of the 4 x 4 score map (a mask of 4 pixels)",
        ),
    ],
)
def test_a_box_or_image_mask_on_a_coarser_map_takes_the_cells_whose_centre_it_holds(
    pixel_weights, framework, region, cells, words
):
    image = random_image(size=8, seed=2)
    model = coarse_pixel_linear(pixel_weights, framework)
    result = igw.integrated_gradients(model, image, target=region, steps=2)
    inside = np.zeros((4, 4))
    for cell in cells:
        inside[cell] = 1.0 / (len(cells) if region.reduce == "mean" else 1)
    # Each pixel: its cell's weight, a quarter of the cell's mean, times the class's weights.
    per_pixel = np.kron(inside, np.ones((2, 2))) / 4
    expected = per_pixel[..., None] * pixel_weights[:, 2] * image
    np.testing.assert_allclose(result.attributions, expected, rtol=1e-5, atol=1e-4)
    cell_scores = image.reshape(4, 2, 4, 2, 3).mean(axis=(1, 3)) @ pixel_weights
    np.testing.assert_allclose(
        result.scores, (cell_scores * inside[..., None]).sum((0, 1)), rtol=1e-5
    )
    # The words name the cells explained (Region.weights' count), then the region as given.
    assert result.map_shape == (4, 4) and result.explained == words
    assert np.count_nonzero(region.weights((4, 4), (8, 8))) == len(cells)
    # The same as the map-sized mask of those cells, for every method's shared rule.
    by_cells = igw.Region(2, mask=inside > 0, reduce=region.reduce)
    same = igw.integrated_gradients(model, image, target=by_cells, steps=2)
    np.testing.assert_array_equal(result.attributions, same.attributions)
    assert same.explained == words.partition(" (")[0]
    occluded = igw.occlusion(model, image, target=region, window=2)
    assert occluded.map_shape == (4, 4) and occluded.explained == words


def test_a_region_without_a_cell_centre_on_a_coarser_map_is_refused(pixel_weights):
    model = coarse_pixel_linear(pixel_weights, "tensorflow")
    image = random_image(size=8, seed=2)
    for region in (
        igw.Region(0, box=(0, 0, 1, 8)),
        igw.Region(0, mask=np.eye(8, dtype=bool)[::-1]),
    ):
        with pytest.raises(
            ValueError,
            match=r"^target: the region holds no cell centre of the 4 x 4 score map \(the image "
            r"is 8 x 8 pixels\); expected a region over at least one centre$",
        ):
            igw.integrated_gradients(model, image, target=region, steps=2)
    with pytest.raises(
        ValueError,
        match=r"^mask: expected the score map's shape \(4, 4\) or the image's \(8, 8\), "
        r"got \(4, 8\)$",
    ):
        igw.integrated_gradients(model, image, target=igw.Region(0, mask=np.ones((4, 8), bool)))


def small_segmenter(classes=3):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(8, 3, padding="same", activation="tanh"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(
                classes, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=2)
            ),
        ]
    )


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_completeness_holds_for_a_region_of_a_conv_net(reduce):
    model = small_segmenter()
    image = random_image()
    mask = np.zeros((16, 16), bool)
    mask[4:12, 2:9] = True
    region = igw.Region(class_="road", mask=mask, reduce=reduce)
    result = igw.integrated_gradients(
        model, image, target=region, steps="auto", class_names=["sky", "road", "car"]
    )
    assert result.target == 1 and result.delta <= 0.01
    assert result.region == region.named(["sky", "road", "car"])
    assert result.explained == f"class 1, the {reduce} over a region of 56 pixels"
    maps = model.predict(np.stack([image, np.zeros_like(image)]), verbose=0)[..., 1]
    weights = mask / (mask.sum() if reduce == "mean" else 1.0)
    at_image, at_black = (maps * weights).sum(axis=(1, 2))
    assert float(result.attributions.sum()) == pytest.approx(at_image - at_black, rel=0.01)
    # Every method explains the region's score.
    smooth = igw.smoothgrad(model, image, target=region, class_names=["sky", "road", "car"], seed=0)
    assert smooth.target == 1 and smooth.score == pytest.approx(result.score, rel=1e-5)
    assert smooth.region == result.region


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"class_": 0}, ValueError, "target: a Region needs one of mask= or box=, got neither"),
        ({"class_": 0, "mask": np.ones((2, 2), bool), "box": (0, 0, 1, 1)}, ValueError, "both"),
        ({"class_": 0, "mask": np.ones((2, 2))}, TypeError, "mask: expected a boolean array"),
        ({"class_": 0, "mask": np.zeros((2, 2), bool)}, ValueError, "mask: expected at least one"),
        (
            {"class_": 0, "box": (0, 0, 1)},
            ValueError,
            r"box: expected \(top, left, bottom, right\)",
        ),
        ({"class_": -1, "box": (0, 0, 1, 1)}, ValueError, "class_: expected an integer >= 0"),
        (
            {"class_": 0, "box": (0, 0, 1, 1), "reduce": "max"},
            ValueError,
            "reduce: expected one of",
        ),
    ],
)
def test_bad_regions_are_refused_at_construction(kwargs, error, message):
    with pytest.raises(error, match=message):
        igw.Region(**kwargs)


def test_a_region_that_does_not_fit_the_model_is_named(pixel_weights, image, weights):
    with pytest.raises(ValueError, match=r"mask: expected the score map's shape|target: a Region"):
        igw.integrated_gradients(
            pixel_linear(pixel_weights), image, target=igw.Region(0, mask=np.ones((3, 4), bool))
        )
    with pytest.raises(ValueError, match=r"box: expected a box inside the image \(4, 4\)"):
        igw.integrated_gradients(
            pixel_linear(pixel_weights), image, target=igw.Region(0, box=(0, 0, 5, 2))
        )
    with pytest.raises(
        ValueError,
        match=r"^target: a Region needs a model that returns a score map \(N, H', W', classes\), "
        r"got output of shape \(1, 4\)$",
    ):
        igw.integrated_gradients(
            linear_model(weights), image, target=igw.Region(0, box=(0, 0, 1, 1))
        )
    with pytest.raises(ValueError, match=r"give a region target, target=igw.Region"):
        igw.integrated_gradients(pixel_linear(pixel_weights), image)
