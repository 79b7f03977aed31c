"""The renderer: the keras style's parity with the example's process_grads, the heatmap
style's definition, the colour key, robustness, errors, plot."""

from __future__ import annotations

import hashlib
import inspect
import io
import itertools
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from IPython.core.formatters import PNGFormatter
from matplotlib.figure import Figure
from PIL import Image
from scipy import ndimage

import ig_widget as igw
from ig_widget.render import (
    KEY_STOPS,
    RENDER_DEFAULTS,
    STYLE_COLORS,
    _cleanup,
    _fill_holes,
    _inner_border,
    channel_maps,
    colour_key,
    display_image,
    format_number,
    format_percent,
    ground_luma,
    key_labels,
    patch_maps,
    plot,
    render,
    render_maps,
    validate_render_options,
)

from .js_vectors import _synthetic_photo, write_vectors
from .models import tiny_cnn

RNG = np.random.default_rng(3)


def reference_process_grads(
    image,
    attributions,
    polarity="positive",
    clip_above_percentile=99.9,
    clip_below_percentile=0,
    morphological_cleanup=False,
    structure=3,
    outlines=False,
    outlines_component_percentage=90,
    overlay=True,
):
    """The Keras example's GradVisualizer.process_grads, step for step, for comparison.

    Written for this test with the example's structure and arithmetic (float32
    maps, the non-flat np.ones structure, a loop over components); only
    ndimage.measurements.label is replaced by its non-deprecated name.
    """
    if polarity == "positive":
        attributions = np.clip(attributions, 0, 1)
        colour = [0, 255, 0]
    else:
        attributions = np.abs(np.clip(attributions, -1, 0))
        colour = [255, 0, 0]
    attributions = np.average(attributions, axis=2)

    def threshold(values, percentage):
        if percentage == 100.0:
            return np.min(values)
        flat = values.flatten()
        total = np.sum(flat)
        ordered = np.sort(np.abs(flat))[::-1]
        cumulative = 100.0 * np.cumsum(ordered) / total
        return ordered[np.where(cumulative >= percentage)[0][0]]

    high = threshold(attributions, 100 - clip_above_percentile)
    low = threshold(attributions, 100 - clip_below_percentile)
    transformed = (np.abs(attributions) - low) / (high - low)
    transformed *= np.sign(attributions)
    transformed *= transformed >= 0.0
    attributions = np.clip(transformed, 0.0, 1.0)

    if morphological_cleanup:
        footprint = np.ones((structure, structure))
        closed = ndimage.grey_closing(attributions, structure=footprint)
        attributions = ndimage.grey_opening(closed, structure=footprint)

    if outlines:
        mask = ndimage.binary_fill_holes(attributions > 0.001)
        components, count = ndimage.label(mask, structure=np.ones((3, 3)))
        total = np.sum(mask[components > 0])
        sums_and_masks = []
        for label in range(1, count + 1):
            component = components == label
            sums_and_masks.append((np.sum(mask[component]), component))
        sums_and_masks = sorted(sums_and_masks, key=lambda pair: pair[0], reverse=True)
        cumulative = np.cumsum([pair[0] for pair in sums_and_masks])
        cutoff = np.where(cumulative >= outlines_component_percentage * total / 100)[0][0]
        border = np.zeros_like(mask)
        for index in range(min(cutoff, 2) + 1):
            border[sums_and_masks[index][1]] = 1
        border[ndimage.binary_erosion(border, iterations=1)] = 0
        attributions = border

    coloured = np.expand_dims(attributions, 2) * colour
    if overlay:
        coloured = np.clip(coloured * 0.8 + image, 0, 255)
    return coloured.astype(np.uint8)


def _smooth(height, width):
    noise = ndimage.gaussian_filter(RNG.normal(size=(height, width, 3)), (2, 2, 0))
    return (0.9 * noise / np.abs(noise).max()).astype(np.float32)


@pytest.fixture(scope="module")
def maps():
    """Image and attribution pairs: random maps with |a| < 1 and a tiny CNN's real maps."""
    photo = _synthetic_photo(32)
    result = igw.integrated_gradients(tiny_cnn(size=32), photo, steps=24)
    pairs = {
        "smooth": (RNG.integers(0, 256, (36, 44, 3), dtype=np.uint8), _smooth(36, 44)),
        "speckle": (
            RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8),
            RNG.uniform(-0.99, 0.99, (24, 24, 3)).astype(np.float32),
        ),
        "real_ig": (photo.astype(np.uint8), result.attributions),
        "real_gradients": (photo.astype(np.uint8), result.gradients),
    }
    for _, attributions in pairs.values():
        # The example clips to [-1, 1]; below 1 that is the same as our sign split.
        assert 0 < np.abs(attributions).max() < 1
    return pairs


def _draws_the_frame(image, picture, overlay):
    drawn = np.any(picture != (image if overlay else 0), axis=2)
    frame = np.ones(drawn.shape, bool)
    frame[1:-1, 1:-1] = False
    return np.array_equal(drawn, frame)


@pytest.mark.parametrize("overlay", [True, False])
@pytest.mark.parametrize("outlines", [False, True])
@pytest.mark.parametrize("cleanup", [None, 2, 3, 4])
@pytest.mark.parametrize("clip", [(99.0, 0.0), (95.0, 28.0), (99.9, 0.0), (90.0, 10.0)])
@pytest.mark.parametrize("polarity", ["positive", "negative"])
def test_render_matches_the_reference_steps(maps, polarity, clip, cleanup, outlines, overlay):
    options = {
        "style": "keras",
        "polarity": polarity,
        "clip_above_percentile": clip[0],
        "clip_below_percentile": clip[1],
        "morphological_cleanup": cleanup is not None,
        "structure": cleanup or 3,
        "outlines": outlines,
        "overlay": overlay,
    }
    for name, (image, attributions) in maps.items():
        ours = render(image, attributions, **options).astype(int)
        reference_options = {name: value for name, value in options.items() if name != "style"}
        expected = reference_process_grads(image, attributions, **reference_options).astype(int)
        frame = outlines and _draws_the_frame(image, expected, overlay)
        if frame:
            # The one deliberate difference: the frame is not drawn.
            expected = image.astype(int) if overlay else np.zeros_like(expected)
        assert np.abs(ours - expected).max() <= 1, name
        # Rounding only: nearly every pixel is identical.
        assert np.mean(ours != expected) < 0.002, name
        drawn = np.any(ours != (image if overlay else 0))
        assert drawn != frame, f"{name}: nothing drawn, the comparison would be empty"


def test_both_polarity_draws_each_sign_in_its_colour(maps):
    for image, attributions in maps.values():
        for overlay in (True, False):
            keras = {"style": "keras", "overlay": overlay}
            both = render(image, attributions, polarity="both", **keras)
            positive = render(image, attributions, polarity="positive", **keras)
            negative = render(image, attributions, polarity="negative", **keras)
            # Default colours use disjoint channels: green from the positive
            # map, red from the negative one, blue untouched.
            np.testing.assert_array_equal(both[..., 1], positive[..., 1])
            np.testing.assert_array_equal(both[..., 0], negative[..., 0])
            np.testing.assert_array_equal(both[..., 2], image[..., 2] if overlay else 0)


def test_both_polarity_adds_shared_channels_and_saturates():
    image = np.full((1, 2, 3), 100, np.uint8)
    positive = np.array([[1.0, 0.0]], np.float32)
    negative = np.array([[1.0, 0.0]], np.float32)
    rgb = render_maps(
        image,
        positive,
        negative,
        style="keras",
        polarity="both",
        clip_above_percentile=100.0,
        positive_color=(200, 10, 0),
        negative_color=(200, 20, 0),
    )
    # 0.8 * (200 + 200) + 100 clips to 255; 0.8 * (10 + 20) + 100 = 124.
    assert rgb[0, 0].tolist() == [255, 124, 100]
    assert rgb[0, 1].tolist() == [100, 100, 100]


@pytest.mark.parametrize("style", ["heatmap", "keras"])
def test_attributions_above_one_are_not_saturated(style):
    # Raw-pixel-unit attributions exceed 1; the picture depends on their
    # ratios only, where the example's clip to [0, 1] would flatten them.
    image = RNG.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    attributions = _smooth(30, 30)
    small = render(image, attributions, style=style, overlay=False).astype(int)
    large = render(image, attributions * 400, style=style, overlay=False).astype(int)
    assert np.abs(small - large).max() <= 1
    assert len(np.unique(large.reshape(-1, 3), axis=0)) > 50


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_cleanup_equals_scipy_grey_closing_then_opening(size):
    for height, width in [(1, 1), (1, 9), (7, 1), (2, 3), (23, 17)]:
        values = RNG.random((height, width))
        values[RNG.random((height, width)) < 0.3] = 0.5  # plateaus
        footprint = np.ones((size, size), dtype=bool)
        expected = ndimage.grey_opening(
            ndimage.grey_closing(values, footprint=footprint), footprint=footprint
        )
        np.testing.assert_array_equal(_cleanup(values, size), expected)


def test_hole_filling_and_border_equal_scipy():
    for _ in range(200):
        height, width = RNG.integers(1, 20, size=2)
        mask = RNG.random((height, width)) < RNG.random()
        np.testing.assert_array_equal(_fill_holes(mask), ndimage.binary_fill_holes(mask))
        np.testing.assert_array_equal(_inner_border(mask), mask & ~ndimage.binary_erosion(mask))


def test_outlines_keep_the_three_largest_components_as_one_pixel_borders():
    attributions = np.zeros((40, 40, 3), np.float32)
    attributions[2:12, 2:12] = 0.5  # 100 pixels
    attributions[20:28, 2:10] = 0.5  # 64
    attributions[2:9, 20:27] = 0.5  # 49
    attributions[30:36, 30:36] = 0.5  # 36: fourth, never outlined
    attributions[5:8, 5:8] = 0.0  # a hole, filled before outlining
    image = np.zeros((40, 40, 3), np.uint8)
    keras = {"style": "keras", "outlines": True, "overlay": False}
    rgb = render(image, attributions, clip_above_percentile=100.0, **keras)
    drawn = rgb[..., 1] == 255
    expected = np.zeros((40, 40), bool)
    for top, left, size in [(2, 2, 10), (20, 2, 8), (2, 20, 7)]:
        expected[top : top + size, left : left + size] = True
        expected[top + 1 : top + size - 1, left + 1 : left + size - 1] = False
    np.testing.assert_array_equal(drawn, expected)
    only_largest = render(
        image,
        attributions,
        clip_above_percentile=100.0,
        outlines_component_percentage=40.0,
        **keras,
    )
    assert (only_largest[..., 1] == 255).sum() == 36  # the 10x10 square's border


def _render_without_warnings(image, attributions, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return render(image, attributions, **options)


DEGENERATE_OPTIONS = [
    {},
    {"polarity": "both", "morphological_cleanup": True, "outlines": True},
    {"polarity": "negative", "outlines": True, "clip_below_percentile": 50.0},
]


def _grey(image):
    """The heatmap style's background: the luma, rounded half up."""
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.repeat(np.floor(luma + 0.5).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("options", DEGENERATE_OPTIONS)
def test_all_zero_map_renders_the_plain_image_or_black(options):
    image = RNG.integers(0, 256, (9, 13, 3), dtype=np.uint8)
    zeros = np.zeros((9, 13, 3), np.float32)
    keras = _render_without_warnings(image, zeros, style="keras", **options)
    np.testing.assert_array_equal(keras, image)
    np.testing.assert_array_equal(_render_without_warnings(image, zeros, **options), _grey(image))
    for style in ("keras", "heatmap"):
        black = _render_without_warnings(image, zeros, style=style, overlay=False, **options)
        np.testing.assert_array_equal(black, 0)


def test_no_component_left_for_outlines_renders_the_plain_image():
    image = RNG.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    attributions = np.zeros((12, 12, 3), np.float32)
    attributions[5, 6] = 0.7  # an isolated peak: the opening removes it
    options = {"style": "keras", "morphological_cleanup": True, "outlines": True}
    np.testing.assert_array_equal(_render_without_warnings(image, attributions, **options), image)
    black = _render_without_warnings(image, attributions, overlay=False, **options)
    np.testing.assert_array_equal(black, 0)
    # Without the cleanup the peak itself is outlined.
    peak = _render_without_warnings(
        image, attributions, style="keras", outlines=True, overlay=False
    )
    assert np.argwhere(peak[..., 1] == 255).tolist() == [[5, 6]]


@pytest.mark.parametrize("style", ["heatmap", "keras"])
def test_outlining_the_whole_image_draws_nothing_rather_than_the_frame(style):
    # With clip_below_percentile=0 all but the weakest few pixels are in the
    # selection; speckle joins them into one region, which after hole filling
    # is the whole image: its border would be the frame. The region's edges are
    # kept strong so the weakest pixels (left out) are holes, not notches in an
    # edge, whatever the random stream (a notch failed in 18 of 300 streams).
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    speckle = rng.uniform(0.01, 1.0, (24, 24, 3)).astype(np.float32)
    speckle[[0, -1], :] = 1.0
    speckle[:, [0, -1]] = 1.0
    plain = render(image, np.zeros_like(speckle), style=style)
    outlined = _render_without_warnings(image, speckle, style=style, outlines=True)
    np.testing.assert_array_equal(outlined, plain)
    # A selection that leaves pixels out is outlined as before.
    speckle[:, 12:] = 0.0
    speckle[:, 11] = 1.0
    outlined = render(image, speckle, style=style, outlines=True, overlay=False)
    drawn = outlined.any(axis=2)
    assert drawn[:, 11].all() and not drawn[:, 12:].any() and not drawn[1:-1, 1:11].any()


def test_equal_thresholds_show_only_values_above_them():
    image = RNG.integers(0, 200, (8, 8, 3), dtype=np.uint8)
    constant = np.full((8, 8, 3), 0.3, np.float32)
    np.testing.assert_array_equal(_render_without_warnings(image, constant, style="keras"), image)
    # 1600 ones and one 5: the 5 alone is under 0.1 % of the total, so both
    # thresholds are 1 and only the 5 is drawn, at full strength.
    spike = np.ones((40, 40, 3), np.float32)
    spike[11, 17] = 5.0
    black = np.zeros((40, 40, 3), np.uint8)
    rgb = _render_without_warnings(black, spike, style="keras", overlay=False)
    assert np.argwhere(rgb.any(axis=2)).tolist() == [[11, 17]]
    assert rgb[11, 17].tolist() == [0, 255, 0]


def test_greyscale_and_rgba_images_are_shown_as_rgb():
    grey = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
    attributions = np.zeros((6, 7), np.float32)
    for style in ("heatmap", "keras"):
        # A grey image's luma is itself.
        shown = render(grey, attributions, style=style)
        np.testing.assert_array_equal(shown, np.repeat(grey[..., None], 3, 2))
        shown = render(grey[..., None], attributions[..., None], style=style)
        np.testing.assert_array_equal(shown, np.repeat(grey[..., None], 3, 2))
    rgba = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    zeros = np.zeros((6, 7, 4), np.float32)
    np.testing.assert_array_equal(render(rgba, zeros, style="keras"), rgba[..., :3])
    assert (
        display_image(Image.fromarray(grey)).tolist() == np.repeat(grey[..., None], 3, 2).tolist()
    )


def test_float_images_follow_the_documented_rule():
    unit = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    assert display_image(unit).tolist() == [[[0, 128, 255]]]
    # Any value outside [0, 1]: a 0..255 image, clipped.
    assert display_image(np.array([[[-3.0, 0.5, 300.0]]])).tolist() == [[[0, 0, 255]]]
    assert display_image(np.array([[[1.0, 2.0, 3.0]]])).tolist() == [[[1, 2, 3]]]
    # Integer images are 0..255 even when their values are 0 and 1.
    assert display_image(np.array([[[0, 1, 1]]], np.uint8)).tolist() == [[[0, 1, 1]]]
    attributions = np.zeros((1, 1, 3), np.float32)
    assert render(unit, attributions, style="keras").tolist() == [[[0, 128, 255]]]


def test_channel_maps_split_the_signs_and_average():
    attributions = np.array([[[3.0, -3.0, 6.0], [-1.5, -1.5, 0.0]]])
    positive, negative = channel_maps(attributions)
    assert positive.dtype == np.float32 and negative.dtype == np.float32
    assert positive.tolist() == [[3.0, 0.0]]
    assert negative.tolist() == [[1.0, 1.0]]


def test_render_is_render_maps_of_display_image_and_channel_maps(maps):
    image, attributions = maps["real_ig"]
    options = {"polarity": "both", "outlines": True, "clip_below_percentile": 20.0}
    np.testing.assert_array_equal(
        render(image, attributions, **options),
        render_maps(display_image(image), *channel_maps(attributions), **options),
    )


def test_defaults_are_the_examples_but_the_style_and_match_the_signature():
    assert RENDER_DEFAULTS == {
        "style": "heatmap",
        "polarity": "positive",
        "clip_above_percentile": 99.9,
        "clip_below_percentile": 0.0,
        "morphological_cleanup": False,
        "structure": 3,
        "outlines": False,
        "outlines_component_percentage": 90.0,
        "overlay": True,
        "positive_color": None,
        "negative_color": None,
        "patch": 0,
    }
    assert STYLE_COLORS["keras"] == {"positive": (0, 255, 0), "negative": (255, 0, 0)}
    signature = inspect.signature(render).parameters
    assert {name: signature[name].default for name in RENDER_DEFAULTS} == RENDER_DEFAULTS
    assert validate_render_options() == RENDER_DEFAULTS


def test_validate_render_options_normalises_browser_values():
    checked = validate_render_options(
        clip_above_percentile=95, structure=np.int64(4), positive_color=[1, 2, 3], overlay=np.True_
    )
    assert checked["clip_above_percentile"] == 95.0
    assert isinstance(checked["clip_above_percentile"], float)
    assert checked["structure"] == 4 and type(checked["structure"]) is int
    assert checked["positive_color"] == (1, 2, 3)
    assert checked["negative_color"] is None
    assert checked["overlay"] is True
    assert validate_render_options(style="keras")["style"] == "keras"


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"polarity": "up"}, ValueError, "polarity: expected one of 'positive', 'negative'"),
        ({"style": "Keras"}, ValueError, "style: expected one of 'heatmap', 'keras', got 'Keras'"),
        ({"style": None}, ValueError, "style: expected one of"),
        ({"clip_above_percentile": 100.5}, ValueError, r"clip_above_percentile: .*\[0.0, 100.0\]"),
        ({"clip_below_percentile": -1}, ValueError, r"clip_below_percentile: .*\[0.0, 100.0\]"),
        (
            {"clip_above_percentile": 30, "clip_below_percentile": 30},
            ValueError,
            r"clip_below_percentile: expected a value below clip_above_percentile \(30.0\)",
        ),
        ({"clip_above_percentile": "99"}, TypeError, "clip_above_percentile: expected a number"),
        ({"clip_above_percentile": float("nan")}, ValueError, "clip_above_percentile: .*finite"),
        ({"structure": 0}, ValueError, "structure: expected an integer >= 1"),
        ({"structure": 65}, ValueError, "structure: expected an integer <= 64"),
        ({"structure": 2.5}, TypeError, "structure: expected an integer"),
        ({"outlines_component_percentage": 101}, ValueError, "outlines_component_percentage"),
        ({"overlay": 1}, TypeError, "overlay: expected True or False"),
        ({"outlines": "yes"}, TypeError, "outlines: expected True or False"),
        ({"morphological_cleanup": None}, TypeError, "morphological_cleanup: expected True"),
        ({"positive_color": (0, 256, 0)}, ValueError, r"positive_color\[1\]: .*<= 255"),
        ({"negative_color": "red"}, TypeError, r"negative_color: expected 3 integers"),
        ({"negative_color": (1.0, 0, 0)}, TypeError, r"negative_color\[0\]: expected an integer"),
        ({"positive_color": (0, 255)}, TypeError, r"positive_color: expected 3 integers"),
        ({"clip_above": 99}, TypeError, "clip_above: not a render option; expected one of"),
        ({"patch": -1}, ValueError, "patch: expected an integer >= 0"),
        ({"patch": 513}, ValueError, "patch: expected an integer <= 512"),
        ({"patch": 16.0}, TypeError, "patch: expected an integer"),
        ({"patch": True}, TypeError, "patch: expected an integer"),
    ],
)
def test_bad_options_are_rejected_naming_the_option(options, error, message):
    with pytest.raises(error, match=message):
        validate_render_options(**options)
    image, attributions = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3))
    if "clip_above" not in options:
        with pytest.raises(error, match=message):
            render(image, attributions, **options)
        with pytest.raises(error, match=message):
            plot(image, attributions, attributions, **options)


def test_bad_attributions_are_rejected_before_rendering():
    image = np.zeros((5, 6, 3), np.uint8)
    bad = np.zeros((5, 6, 3))
    bad[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match="attributions: contains NaN or infinite values"):
        render(image, bad)
    bad[2, 3, 1] = np.inf
    with pytest.raises(ValueError, match="attributions: contains NaN"):
        render(image, bad)
    with pytest.raises(ValueError, match=r"attributions: expected the image's shape \(5, 6, 3\)"):
        render(image, np.zeros((6, 5, 3)))
    with pytest.raises(ValueError, match=r"attributions: expected the image's shape"):
        render(image, np.zeros((5, 6, 2)))
    with pytest.raises(TypeError, match="attributions: expected an array of real numbers"):
        render(image, np.full((5, 6, 3), "x"))
    with pytest.raises(ValueError, match=r"attributions: values up to 1e\+308 exceed float32"):
        render(image, np.full((5, 6, 3), 1e308))
    with pytest.raises(ValueError, match="attributions: expected a non-empty array"):
        render(image, np.zeros((5,)))
    with pytest.raises(ValueError, match="image: expected 1, 3 or 4 channels"):
        render(np.zeros((5, 6, 2)), np.zeros((5, 6, 2)))


def test_render_maps_checks_its_inputs():
    image = np.zeros((3, 4, 3), np.uint8)
    maps = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"image: expected a uint8 array \(H, W, 3\)"):
        render_maps(image.astype(np.float32), maps, maps)
    with pytest.raises(ValueError, match=r"positive: expected shape \(3, 4\)"):
        render_maps(image, maps.T, maps)
    with pytest.raises(TypeError, match="negative: expected float32 values"):
        render_maps(image, maps, maps.astype(int))
    with pytest.raises(ValueError, match="negative: contains NaN"):
        render_maps(image, maps, np.full((3, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match=r"positive: expected values >= 0 .*got -0.5"):
        render_maps(image, np.full((3, 4), -0.5, np.float32), maps)


def test_plot_returns_three_titled_panels_and_saves_headless(maps, tmp_path):
    image, attributions = maps["real_ig"]
    _, gradients = maps["real_gradients"]
    name = "$x$ <b>elephant</b>"
    fig = plot(image, gradients, attributions, class_name=name, score=0.8871, outlines=True)
    assert isinstance(fig, Figure)
    panels = fig.axes
    titles = ["Input", "Normal gradients", "Integrated gradients"]
    assert [ax.get_title() for ax in panels] == titles
    # These attributions add up to a negative total: the second line says so.
    assert fig.get_suptitle().split("\n")[0] == f"{name} — score 0.8871"
    width, height = fig.get_size_inches()
    assert width == 15.0 and 6 < height < 8  # as tall as the square panels and one key row
    shown = [np.asarray(ax.images[0].get_array()) for ax in panels]
    np.testing.assert_array_equal(shown[0], image)
    np.testing.assert_array_equal(shown[1], render(image, gradients, outlines=True))
    np.testing.assert_array_equal(shown[2], render(image, attributions, outlines=True))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    with Image.open(io.BytesIO(buffer.getvalue())) as png:
        assert png.format == "PNG" and png.size == (600, round(40 * height))
    # What a notebook shows for a figure that is a cell's value when no
    # matplotlib backend has registered a formatter (no %matplotlib inline).
    shown_png = PNGFormatter()(fig)
    assert shown_png is not None and shown_png.startswith(b"\x89PNG")
    untitled = plot(image, gradients, -attributions, figsize=(6, 3))
    assert untitled.get_suptitle() == ""
    # (negated: these attributions add up to a negative total, which adds a line)
    assert plot(image, gradients, -attributions, score=0.5).get_suptitle() == "score 0.5"


def test_plot_draws_a_colour_key_under_each_attribution_panel(maps):
    image, attributions = maps["real_ig"]
    _, gradients = maps["real_gradients"]
    fig = plot(image, gradients, attributions, polarity="both", clip_below_percentile=28.0)
    keys = [child for ax in fig.axes for child in ax.child_axes]
    assert {key.get_label() for key in keys} == {"colour key"}
    assert len(keys) == 4  # two signs under each of the two attribution panels
    # Drawn over the picture's own ground: the image's mean grey.
    options = {
        "polarity": "both",
        "clip_below_percentile": 28.0,
        "ground": ground_luma(display_image(image), True),
    }
    expected = colour_key(*channel_maps(gradients), **options) + colour_key(
        *channel_maps(attributions), **options
    )
    for bar, entry in zip(keys, expected, strict=True):
        np.testing.assert_array_equal(bar.images[0].get_array()[0], entry["colors"])
        labels = key_labels(entry)
        assert bar.get_title(loc="left") == labels["meaning"]
        ticks = [tick.get_text() for tick in bar.get_xticklabels()]
        assert ticks == [labels["low"], labels["high"]]
        assert bar.get_xlabel() == "\n".join(
            [labels["low_share"], labels["high_share"], labels["top"]]
        )
    assert [bar.get_title(loc="left") for bar in keys[:2]] == [
        "red: raises the score",
        "blue: lowers the score",
    ]


def _text_boxes(fig, texts):
    renderer = fig.canvas.get_renderer()
    return [text.get_window_extent(renderer) for text in texts]


@pytest.mark.parametrize("figsize", [None, (8, 6)])
def test_plot_fits_its_content_with_readable_keys(maps, figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    image, attributions = maps["real_ig"]
    _, gradients = maps["real_gradients"]
    fig = plot(image, gradients, attributions, class_name="cat", polarity="both", figsize=figsize)
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    keys = [child for ax in fig.axes for child in ax.child_axes]
    ticks = [bar.get_xticklabels() for bar in keys]
    scale = min(1.0, fig.get_figwidth() / 15.0)  # a smaller figure is the layout scaled
    for low, high in ticks:
        # Key labels as large as the panel titles' neighbours, side by side without touching.
        assert low.get_fontsize() >= 10 * scale
        left, right = _text_boxes(fig, [low, high])
        assert left.x1 < right.x0
    everything = fig.get_tightbbox()
    width, height = fig.get_size_inches()
    # Nothing is cut, and the default figure has no empty band (a tight save trims < 0.4 in).
    assert everything.x0 >= 0 and everything.y0 >= 0
    assert everything.x1 <= width and everything.y1 <= height
    if figsize is None:
        assert height - everything.height < 0.4
        assert width - everything.width < 0.8


def test_plot_rejects_bad_arguments(maps):
    image, attributions = maps["smooth"]
    with pytest.raises(TypeError, match="class_name: expected a string"):
        plot(image, attributions, attributions, class_name=3)
    with pytest.raises(TypeError, match="score: expected a number"):
        plot(image, attributions, attributions, score="high")
    for figsize in [(0, 3), (True, True), (np.inf, 5), (4, np.nan)]:
        with pytest.raises(ValueError, match=r"figsize: expected \(width, height\) in inches"):
            plot(image, attributions, attributions, figsize=figsize)
    with pytest.raises(ValueError, match="polarity"):
        plot(image, attributions, attributions, polarity="up")
    with pytest.raises(ValueError, match="attributions: expected the image's shape"):
        plot(image, attributions[:-1], attributions)


def test_package_exports_the_functions_even_after_the_module_is_imported():
    # Importing ig_widget.render makes Python set the package attribute
    # "render" to the submodule; igw.render must still be the function.
    code = (
        "import ig_widget, ig_widget.render\n"
        "print(callable(ig_widget.render), callable(ig_widget.plot))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["True", "True"]


def _read_block(blob, block, dtype, shape):
    offset, size = block
    assert offset % 8 == 0
    return np.frombuffer(blob, dtype, size // np.dtype(dtype).itemsize, offset).reshape(shape)


def test_js_vector_generator_writes_cases_the_renderer_reproduces(tmp_path):
    index = write_vectors(tmp_path, with_model=False)
    assert json.loads((tmp_path / "index.json").read_text()) == json.loads(json.dumps(index))
    blob = (tmp_path / "vectors.bin").read_bytes()
    assert {"column_30x1", "row_1x23", "zeros_12x9", "single_pixel_10x10"} <= set(index["inputs"])
    for case in index["cases"][:: max(1, len(index["cases"]) // 40)]:
        source = index["inputs"][case["input"]]
        shape = (source["height"], source["width"])
        image = _read_block(blob, source["image"], np.uint8, (*shape, 3))
        positive = _read_block(blob, source["positive"], "<f4", shape)
        negative = _read_block(blob, source["negative"], "<f4", shape)
        expected = _read_block(blob, case["expected"], np.uint8, (*shape, 3))
        np.testing.assert_array_equal(
            render_maps(image, positive, negative, **case["options"]), expected
        )


def _keras_golden_inputs():
    rng = np.random.default_rng(20261130)

    def smooth(height, width):
        noise = ndimage.gaussian_filter(rng.normal(size=(height, width, 3)), (2, 2, 0))
        return (0.9 * noise / np.abs(noise).max()).astype(np.float32)

    return {
        "smooth": (rng.integers(0, 256, (36, 44, 3), dtype=np.uint8), smooth(36, 44)),
        "speckle": (
            rng.integers(0, 256, (24, 24, 3), dtype=np.uint8),
            rng.uniform(-0.99, 0.99, (24, 24, 3)).astype(np.float32),
        ),
        "scaled": (rng.integers(0, 256, (30, 20, 3), dtype=np.uint8), smooth(30, 20) * 300),
    }


def test_keras_style_is_pixel_identical_to_the_pipeline_before_styles():
    # SHA-256 of 144 pictures drawn by the renderer before the heatmap style
    # was added (commit a3e8287). Outlines appear only with
    # clip_below_percentile=28, where no region fills the whole image (the
    # one case drawn differently since: see the frame test).
    digest = hashlib.sha256()
    for image, attributions in _keras_golden_inputs().values():
        for polarity, clip, cleanup, outlines, overlay in itertools.product(
            ("positive", "negative", "both"),
            ((99.9, 0.0), (95.0, 28.0), (90.0, 10.0)),
            (None, 3),
            (False, True),
            (False, True),
        ):
            if outlines and clip[1] != 28.0:
                continue
            picture = render(
                image,
                attributions,
                style="keras",
                polarity=polarity,
                clip_above_percentile=clip[0],
                clip_below_percentile=clip[1],
                morphological_cleanup=cleanup is not None,
                structure=cleanup or 3,
                outlines=outlines,
                overlay=overlay,
            )
            digest.update(picture.tobytes())
    assert digest.hexdigest() == "56b809413a830fcd44def3030560c2f097fcd0a5a851c082363f640efccccc98"


def _heatmap_by_definition(image, values, colour, above, below):
    """The heatmap style for one sign, pixel by pixel, from its definition."""
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    total = values[values > 0].astype(np.float64).sum()
    out = np.empty(image.shape, np.uint8)
    for (row, col), value in np.ndenumerate(values):
        share_above = 100.0 * values[values > value].astype(np.float64).sum() / total
        if value <= 0:
            share_above = 100.0
        strength = np.clip((100 - below - share_above) / (above - below), 0, 1)
        opacity = min(1.0, strength / 0.5) ** 2
        for channel in range(3):
            target = colour[channel] * (1 - 0.5 * strength)
            shown = grey[row, col] + opacity * (target - grey[row, col])
            out[row, col, channel] = int(np.floor(shown + 0.5))
    return out


@pytest.mark.parametrize("clip", [(99.9, 0.0), (95.0, 28.0), (70.0, 40.0)])
def test_heatmap_style_follows_its_definition(clip):
    image = RNG.integers(0, 256, (14, 17, 3), dtype=np.uint8)
    attributions = _smooth(14, 17)
    positive, negative = channel_maps(attributions)
    options = {"clip_above_percentile": clip[0], "clip_below_percentile": clip[1]}
    for sign, values in (("positive", positive), ("negative", negative)):
        expected = _heatmap_by_definition(
            image, values, STYLE_COLORS["heatmap"][sign], *clip
        ).astype(int)
        shown = render(image, attributions, polarity=sign, **options).astype(int)
        # The definition sums differently (not as one running total): rounding only.
        assert np.abs(shown - expected).max() <= 1
        assert np.mean(shown != expected) < 0.01


def test_heatmap_style_shows_the_top_share_opaque_and_the_tail_faded():
    # Values 10, 9, ..., 1 and zeros: the total is 55.
    values = np.zeros((4, 5), np.float32)
    values.flat[:10] = np.arange(10, 0, -1)
    image = np.full((4, 5, 3), 200, np.uint8)
    shown = render(image, values, clip_above_percentile=100.0)
    green = shown[..., 1].ravel()
    # The largest value has nothing above it: full strength, the deepest colour.
    assert shown[0, 0].tolist() == [128, 24, 0]
    # Pixels with less than half the total above them are opaque: 10 + 9 + 8
    # + 7 = 34 (62 %) is above the 6, so it is the first to be translucent.
    opaque = [
        np.isclose(green[i], 48 * (1 - 0.5 * s), atol=0.5)
        for i, s in enumerate(np.clip(1 - np.cumsum(np.r_[0, values.flat[:9]]) / 55, 0, 1))
    ]
    assert opaque[:4] == [True] * 4 and not any(opaque[5:9])
    # Below that, the colour fades towards the image's grey.
    distance = np.abs(shown.reshape(-1, 3)[:10].astype(int) - 200).sum(axis=1)
    assert np.all(np.diff(distance[4:]) < 0)
    # Zeros and the smallest value (everything else is above it) show the grey image.
    assert shown.reshape(-1, 3)[9:].tolist() == [[200, 200, 200]] * 11


def test_colour_key_states_the_thresholds_shares_and_colours():
    values = np.zeros((10, 10), np.float32)
    values.flat[:20] = np.arange(20, 0, -1)  # total 210
    zeros = np.zeros_like(values)
    (entry,) = colour_key(values, zeros, clip_above_percentile=90.0, clip_below_percentile=20.0)
    # 20 (9.5 %) and 19 (18.6 %): the 19 reaches 10 %; from the top, 20 + ... + 10
    # = 165 (78.6 %) and + 9 = 174 (82.9 %): the 9 reaches 80 %.
    assert (entry["high"], entry["low"]) == (19.0, 9.0)
    assert entry["high_share"] == pytest.approx(100 * 39 / 210)
    assert entry["low_share"] == pytest.approx(100 * 174 / 210)
    assert entry["total"] == 210.0
    # The strongest 5 % of the 100 pixels: 20 + 19 + 18 + 17 + 16 = 90.
    assert entry["top_share"] == pytest.approx(100 * 90 / 210)
    assert len(entry["colors"]) == KEY_STOPS
    assert entry["colors"][0] == [128, 128, 128]
    assert entry["colors"][-1] == [128, 24, 0]
    keras = colour_key(values, zeros, style="keras", polarity="both", overlay=False)
    assert [e["polarity"] for e in keras] == ["positive", "negative"]
    assert keras[0]["colors"][0] == [0, 0, 0] and keras[0]["colors"][-1] == [0, 255, 0]
    assert keras[1]["total"] == 0.0 and keras[1]["top_share"] == 0.0
    labels = key_labels(entry, "star")
    assert labels == {
        "meaning": "red: raises the score of 'star'",
        "low": "9.00",
        "high": "19.0",
        "low_share": "all red: 82.9 % of the rise",
        "high_share": "strongest red: 18.6 % of the rise",
        "top": "the strongest 5 % of pixels carry 42.9 % of the rise",
    }
    assert key_labels(entry)["meaning"] == "red: raises the score"
    # The keras style's own colours: green for the rise, red for the fall.
    assert [key_labels(e, "star")["meaning"] for e in keras] == [
        "green: raises the score of 'star'",
        "red: lowers the score of 'star'",
    ]
    custom = colour_key(values, zeros, positive_color=(10, 20, 30))[0]
    assert key_labels(custom)["low_share"] == "all coloured: 100 % of the rise"


# Three questions a reader who has never heard of integrated gradients asks
# about the key, and the sentence of the key that answers each (for the
# positive sign of the star, explained for "star").
QUESTIONS = {
    "What does red mean?": ("meaning", "red: raises the score of 'star'"),
    "What does the strongest red mean?": ("high_share", "strongest red: {high} of the rise"),
    "How much of the total is coloured?": ("low_share", "all red: {low} of the rise"),
    "Is it spread out or concentrated?": (
        "top",
        "the strongest 5 % of pixels carry {top} of the rise",
    ),
}


def test_the_key_answers_a_newcomers_questions_in_plain_words():
    images, _ = igw.demo.images()
    result = igw.integrated_gradients(igw.demo.model(), images[3], baseline="blur", steps=32)
    fig = plot(images[3], result.gradients, result.attributions, class_name="star")
    (entry,) = colour_key(*channel_maps(result.attributions))
    numbers = {
        "high": format_percent(entry["high_share"]),
        "low": format_percent(entry["low_share"]),
        "top": format_percent(entry["top_share"]),
    }
    labels = key_labels(entry, "star")
    bar = [child for ax in fig.axes for child in ax.child_axes][-1]  # the IG panel's key
    shown = f"{bar.get_title(loc='left')}\n{bar.get_xlabel()}"
    for question, (part, sentence) in QUESTIONS.items():
        answer = sentence.format(**numbers)
        assert labels[part] == answer, question
        assert answer in shown, question
    # No word of the method's jargon in the answers.
    assert not any(word in shown for word in ("attribution", "percentile", "integrated"))


def test_plot_says_when_the_score_falls_and_which_polarity_shows_it():
    # The ring explained for "circle" from black: the circle's score falls.
    images, _ = igw.demo.images()
    result = igw.integrated_gradients(igw.demo.model(), images[5], target=0, steps=16)
    total = float(result.attributions.sum(dtype=np.float64))
    assert total < -0.5
    fig = plot(images[5], result.gradients, result.attributions, class_name="circle")
    title, note = fig.get_suptitle().split("\n")
    assert title == "circle"
    assert note == (
        f"The score of 'circle' falls from the baseline to the image: the attributions add up "
        f"to {format_number(total)}. The positive colour shows only what raised it; "
        "polarity='negative' shows what lowered it."
    )
    # Drawn in the negative polarity the fall is shown: the note no longer offers it.
    negative = plot(
        images[5], result.gradients, result.attributions, class_name="circle", polarity="negative"
    )
    assert negative.get_suptitle() == "circle\n" + note.split(" The positive")[0]
    # The ring's own class rises: no note.
    rising = igw.integrated_gradients(igw.demo.model(), images[5], target=5, steps=16)
    assert plot(images[5], rising.gradients, rising.attributions).get_suptitle() == ""
    # The note's line has its room: the title's box is above the panels'.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    heading = fig._suptitle.get_window_extent(renderer)
    assert all(heading.y0 > ax.get_window_extent(renderer).y1 for ax in fig.axes[:3])


# -- the patch view ----------------------------------------------------------------------------


def _patch_means_by_hand(attributions: np.ndarray, patch: int) -> np.ndarray:
    """Each square's attributions summed over pixels and channels, per pixel and channel."""
    height, width = attributions.shape[:2]
    means = np.zeros((height, width))
    for top in range(0, height, patch):
        for left in range(0, width, patch):
            square = attributions[top : top + patch, left : left + patch]
            means[top : top + patch, left : left + patch] = square.sum() / square.size
    return means


@pytest.mark.parametrize(
    ("shape", "patch"), [((16, 16), 4), ((17, 40), 7), ((9, 5), 1), ((6, 6), 64)]
)
def test_patch_maps_are_the_signed_sum_per_square(shape, patch):
    attributions = np.random.default_rng(3).normal(size=(*shape, 3)).astype(np.float32)
    positive, negative = patch_maps(*channel_maps(attributions), patch)
    by_hand = _patch_means_by_hand(attributions.astype(np.float64), patch)
    np.testing.assert_allclose(positive, np.maximum(by_hand, 0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(negative, np.maximum(-by_hand, 0), rtol=1e-5, atol=1e-7)
    # Completeness carries over: the two maps' totals differ by the attributions' sum
    # (per channel, the channel-mean unit of channel_maps).
    total = attributions.sum(dtype=np.float64) / 3
    assert positive.sum(dtype=np.float64) - negative.sum(dtype=np.float64) == pytest.approx(
        total, rel=1e-5, abs=1e-5
    )


def test_the_patch_view_draws_each_square_in_one_colour_and_keys_its_numbers():
    image = np.full((12, 12, 3), 120, np.uint8)
    attributions = np.zeros((12, 12, 3), np.float32)
    attributions[1, 1] = 9.0  # one strong pixel in the top-left square
    attributions[5, 9] = (4.0, -1.0, 0.0)  # a weaker, mixed one in another
    attributions[10, 10] = -2.0  # a negative square
    rgb = render(image, attributions, patch=4, polarity="both", clip_above_percentile=50)
    squares = rgb.reshape(3, 4, 3, 4, 3)
    for row in range(3):
        for col in range(3):
            square = squares[row, :, col].reshape(-1, 3)
            assert (square == square[0]).all(), (row, col)
    grey = render(image, np.zeros_like(attributions))[0, 0]
    assert (squares[0, 0, 0, 0] != grey).any() and (squares[1, 0, 2, 0] != grey).any()
    assert (squares[2, 0, 2, 0] != grey).any() and (squares[0, 0, 1, 0] == grey).all()
    pixel_view = render(image, attributions, polarity="both", clip_above_percentile=50)
    assert not (pixel_view.reshape(3, 4, 3, 4, 3)[0, :, 0] == pixel_view[0, 0]).all()
    positive, negative = channel_maps(attributions)
    entry, negative_entry = colour_key(positive, negative, polarity="both", patch=4)
    # The key's numbers are the squares': 27 / 3 / 16 and 3 / 3 / 16 per pixel.
    assert entry["total"] == pytest.approx((27.0 + 3.0) / 3)
    assert entry["high"] == pytest.approx(27.0 / 3 / 16)
    assert negative_entry["total"] == pytest.approx(6.0 / 3)
