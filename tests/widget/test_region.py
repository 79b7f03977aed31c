"""A region target in the widget: a segmentation model's class scores reduced over a region,
computed by the engine, named in the summary and outlined on the input."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import outline_region
from ig_widget.widget.snapshots import heading

from ..models import random_image

NAMES = ["sky", "road", "car"]


@pytest.fixture(scope="module")
def segmenter():
    """A tiny segmentation net whose score map (N, 8, 8, 3) is half the image's size."""
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(8, 3, padding="same", activation="tanh"),
            keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(3, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=2)),
        ]
    )


@pytest.fixture(scope="module")
def image():
    return random_image(16)


def coarse_mask():
    mask = np.zeros((8, 8), bool)
    mask[2:6, 1:4] = True
    return mask


def sent_region(w):
    height, width = w.region_size
    return np.frombuffer(w.region_mask, np.uint8).reshape(height, width).astype(bool)


def test_a_region_target_shows_the_engine_result_and_its_outline(segmenter, image):
    region = igw.Region(class_="road", mask=coarse_mask(), reduce="mean")
    w = igw.IGWidget(segmenter, image, class_names=NAMES, target=region, steps=16)
    expected = igw.integrated_gradients(
        segmenter, image, target=region, class_names=NAMES, steps=16
    )
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w.result.scores, expected.scores, rtol=1e-5)
    assert w.result.region == expected.region and w.region == region.named(NAMES)
    assert w.target == 1 and w.summary["target"] == 1
    # The map-sized mask's 12 cells, not pixels: each cell is 2 x 2 image pixels.
    assert w.summary["region"] == "the mean over 12 cells of the 8 x 8 score map"
    assert w.result.explained == "class 1, the mean over 12 cells of the 8 x 8 score map"
    # The menu's scores are the region's (the mean of each class's scores in it).
    maps = segmenter.predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(
        [score for _, _, score in sorted(w.classes)], maps[coarse_mask()].mean(0), rtol=1e-5
    )
    # The region goes to the browser at the score map's size; on the 16 x 16 picture it is
    # the 4 x 3 map pixels' 8 x 6 image pixels, outlined on their inner border.
    np.testing.assert_array_equal(sent_region(w), coarse_mask())
    outlined = outline_region(np.zeros((16, 16, 3), np.uint8), sent_region(w))
    drawn = outlined.any(axis=2)
    assert drawn.sum() == 2 * 8 + 2 * 6 - 4
    assert drawn[4, 2:8].all() and drawn[4:12, 2].all() and not drawn[5:11, 3:7].any()


def test_the_class_menu_picks_the_class_of_the_region(segmenter, image):
    region = igw.Region(class_=1, mask=coarse_mask())
    w = igw.IGWidget(segmenter, image, class_names=NAMES, target=region, steps=8)
    w.set_state({"target": 2})
    assert w.wait(timeout=60)
    assert w.result.target == 2 and w.region == igw.Region(2, mask=coarse_mask())
    expected = igw.integrated_gradients(
        segmenter, image, target=igw.Region(class_=2, mask=coarse_mask()), steps=8
    )
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(sent_region(w), coarse_mask())


def test_a_box_on_the_coarser_map_explains_its_cells_and_is_outlined_in_image_pixels(
    segmenter, image
):
    # The 8 x 8 map's cell centres are at image pixels 1, 3, ..., 15: the box (3..11, 2..7)
    # holds rows 3, 5, 7, 9, 11 and columns 3, 5, 7: cells 1..5 by 1..3.
    box = (3, 2, 12, 8)
    w = igw.IGWidget(segmenter, image, target=igw.Region(1, box=box, reduce="mean"), steps=8)
    cells = np.zeros((8, 8), bool)
    cells[1:6, 1:4] = True
    expected = igw.integrated_gradients(
        segmenter, image, target=igw.Region(1, mask=cells, reduce="mean"), steps=8
    )
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    maps = segmenter.predict(image[None], verbose=0)[0]
    np.testing.assert_allclose(w.result.scores, maps[cells].mean(0), rtol=1e-5)
    # The completeness line names the 15 cells explained, then the box as given.
    words = "the mean over 15 cells of the 8 x 8 score map (a box of 54 pixels)"
    assert w.summary["region"] == words and w.result.explained == f"class 1, {words}"
    assert heading(w.summary).startswith(
        f"Predicted: {w.summary['predicted_label']} ({w.summary['predicted_score']:.4g})   "
        f"Explained: class 1, {words} ({w.result.score:.4g})   completeness error "
    )
    # The outline is the box the user gave, in image pixels.
    assert w.region_size == [16, 16]
    drawn = np.zeros((16, 16), bool)
    drawn[3:12, 2:8] = True
    np.testing.assert_array_equal(sent_region(w), drawn)


def test_a_box_is_sent_as_its_rectangle_in_image_pixels(image):
    """A box is in image pixels, on a map of the image's size too."""
    import keras

    keras.utils.set_random_seed(1)
    full = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 3, padding="same")])
    w = igw.IGWidget(full, image, target=igw.Region(0, box=(2, 3, 5, 16)), steps=4)
    assert w.region_size == [16, 16] and w.summary["region"] == "the sum over a region of 39 pixels"
    expected = np.zeros((16, 16), bool)
    expected[2:5, 3:16] = True
    np.testing.assert_array_equal(sent_region(w), expected)


def test_a_region_assigned_from_python_recomputes(segmenter, image):
    w = igw.IGWidget(segmenter, image, target=igw.Region(0, mask=coarse_mask()), steps=8)
    other = np.zeros((8, 8), bool)
    other[5:, 5:] = True
    w.region = igw.Region(2, mask=other, reduce="sum")
    expected = igw.integrated_gradients(
        segmenter, image, target=igw.Region(2, mask=other, reduce="sum"), steps=8
    )
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-4, atol=1e-6)
    assert w.target == 2 and w.summary["region"] == "the sum over 9 cells of the 8 x 8 score map"
    np.testing.assert_array_equal(sent_region(w), other)


@pytest.mark.parametrize(
    ("region", "error", "message"),
    [
        (
            igw.Region(0, mask=np.ones((12, 12), bool)),
            ValueError,
            r"mask: expected the score map's shape \(8, 8\) or the image's \(16, 16\), "
            r"got \(12, 12\)",
        ),
        (
            igw.Region(0, box=(0, 0, 17, 2)),
            ValueError,
            r"box: expected a box inside the image \(16, 16\), got \(0, 0, 17, 2\)",
        ),
        (
            igw.Region(0, box=(0, 0, 1, 16)),
            ValueError,
            r"target: the region holds no cell centre of the 8 x 8 score map",
        ),
        (np.ones((8, 8), bool), TypeError, "region: expected an igw.Region or None, got ndarray"),
    ],
)
def test_a_bad_region_is_refused_and_the_widget_keeps_its_result(
    segmenter, image, region, error, message
):
    w = igw.IGWidget(segmenter, image, target=igw.Region(1, mask=coarse_mask()), steps=8)
    before, before_region, before_mask = w.result, w.region, w.region_mask
    with pytest.raises(error, match=message):
        w.region = region
    assert w.result is before and w.region == before_region and w.region_mask == before_mask
    assert w.target == 1 and not w.stale


def test_a_region_with_a_contrast_is_refused(segmenter, image):
    with pytest.raises(ValueError, match="against: a region target explains one class, got"):
        igw.IGWidget(segmenter, image, target=igw.Region(1, mask=coarse_mask()), against=0)


def test_to_png_outlines_the_region_on_the_input(segmenter, image, tmp_path):
    from PIL import Image

    from ig_widget.export import MIN_PANEL_PIXELS
    from ig_widget.render import REGION_COLOR

    w = igw.IGWidget(segmenter, image, target=igw.Region(1, mask=coarse_mask()), steps=4)
    w.to_png(tmp_path / "region.png")
    picture = np.asarray(Image.open(tmp_path / "region.png").convert("RGB"))
    scale = -(-MIN_PANEL_PIXELS // 16)
    # The 24 outline pixels of the 8 x 6 region, each drawn as a scale x scale square.
    assert (picture == REGION_COLOR).all(axis=2).sum() == 24 * scale**2


def test_the_against_menu_is_refused_with_a_region_and_the_result_stays(segmenter, image):
    w = igw.IGWidget(segmenter, image, target=igw.Region(1, mask=coarse_mask()), steps=4)
    before = w.result
    w.set_state({"against": 0})
    w.wait(timeout=60)
    assert w.result is before and w.against is None and w.target == 1
    assert w.error == "ValueError: against: a region target explains one class, got against=0"


def test_stability_and_the_sanity_check_explain_the_shown_region(segmenter, image):
    """Both used to get the region's class alone, which a segmentation model refuses."""
    region = igw.Region(class_=1, mask=coarse_mask())
    w = igw.IGWidget(segmenter, image, class_names=NAMES, target=region, steps=8)
    drawn = w.compute_stability(draws=2)
    expected = igw.stability(segmenter, image, draws=2, target=region,
                             parameters={"steps": 8, "method": "trapezoid"})  # fmt: skip
    assert drawn.explained == expected.explained == w.result.explained
    np.testing.assert_array_equal(drawn.attributions, expected.attributions)
    check = w.sanity_check(layers=1)
    assert check.explained == w.result.explained and w.error == ""
    assert w.sanity["label"].endswith(", the sum over 12 cells of the 8 x 8 score map")


def test_a_region_result_brings_its_region_and_another_is_refused(segmenter, image):
    """A region result with no target failed (the model's "give a region target"), and one
    with another region showed the result's while the next computation explained the other."""
    region = igw.Region(1, mask=coarse_mask())
    result = igw.integrated_gradients(segmenter, image, target=region, steps=8)
    w = igw.IGWidget(segmenter, image, result=result)
    assert w.region == region and w.target == 1 and not w.stale
    w.compute()  # the same region again (other batches: the last bits differ)
    np.testing.assert_allclose(w.result.attributions, result.attributions, rtol=1e-5, atol=1e-7)
    assert w.result.region == region
    assert igw.IGWidget(segmenter, image, result=result, target=region).region == region
    other = igw.Region(1, box=(0, 0, 4, 16))
    with pytest.raises(ValueError, match=r"^target: the result shows what it explains \(class 1, "):
        igw.IGWidget(segmenter, image, result=result, target=other)
