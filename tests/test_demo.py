"""The bundled demo: dataset, model file, photographs, and the quality of its IG maps.

The quality tests are the package's evidence that its maps mean something: on
fresh images the bundled model is accurate, its integrated gradients fall on
the object, and they stop doing so when the weights are randomised.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from scipy import ndimage, stats
from scipy.spatial import ConvexHull

import ig_widget as igw
import ig_widget.demo.shapes
import ig_widget.demo.train
import ig_widget.demo.vit  # registers the ViT's layers, to load trained ViT files
from ig_widget.demo import MODEL_PATH, PHOTO_DIR, VIT_PATH, class_names, make_shapes
from ig_widget.demo.train import TRAIN_SEED, VALIDATION_SEED
from ig_widget.render import channel_maps, patch_maps

REPO = Path(__file__).resolve().parents[1]
# Seeds that neither training nor validation nor the examples used.
ACCURACY_SEED = 1001
LOCALISATION_SEED = 1002
LOCALISATION_IMAGES = 50
# The reference's random baselines (uniform noise), averaged over many runs:
# a black baseline cannot credit dark pixels (x - x' is 0 there), so on dark
# shapes it puts the evidence on the brighter surroundings instead.
QUALITY_BASELINE = "uniform"
QUALITY_RUNS = 16
QUALITY_STEPS = 8
DILATION_PX = 2
# The demo ViT's accuracy on fresh images: below the CNN's 0.95 (measured 0.909, the CNN
# 0.968, on 6 December 2026): a transformer this small
# learns the outlines from 12,000 images less well.
VIT_ACCURACY = 0.90
VIT_OBJECT_SHARE = 0.6
# The ViT's score curves are steeper: at QUALITY_STEPS its median delta was 0.14.
VIT_QUALITY_STEPS = 32


def geometric_class(mask: np.ndarray) -> str:
    """Recognise a shape from its mask alone, by holes, convexity and fill of its circumcircle."""
    ys, xs = np.nonzero(mask)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    solidity = len(xs) / ConvexHull(corners).volume
    centre = np.array([xs.mean(), ys.mean()]) + 0.5
    circumradius = np.sqrt(((corners - centre) ** 2).sum(axis=1)).max()
    fill = len(xs) / (np.pi * circumradius**2)
    holes = ndimage.label(~mask)[1] - 1
    if holes == 1:
        return "ring"
    if solidity < 0.625:
        return "star"
    if solidity < 0.78:
        return "cross"
    if fill > 0.78:
        return "circle"
    return "square" if fill > 0.5 else "triangle"


# -- dataset -------------------------------------------------------------------


def test_make_shapes_is_deterministic_for_a_seed():
    first = make_shapes(20, seed=5)
    again = make_shapes(20, seed=5)
    other = make_shapes(20, seed=6)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_make_shapes_types_and_balanced_classes():
    images, labels, masks = make_shapes(62, seed=3, size=64)
    assert images.shape == (62, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (62,) and labels.dtype == np.int64
    assert masks.shape == (62, 64, 64) and masks.dtype == bool
    counts = np.bincount(labels, minlength=len(class_names))
    assert len(class_names) >= 6 and counts.max() - counts.min() <= 1
    # Every shape lies wholly inside the image: no mask touches the border.
    border = masks[:, [0, -1], :].any(axis=(1, 2)) | masks[:, :, [0, -1]].any(axis=(1, 2))
    assert not border.any()


def test_masks_are_the_shapes_of_their_labels():
    _, labels, masks = make_shapes(120, seed=11)
    recognised = [geometric_class(mask) for mask in masks]
    assert recognised == [class_names[label] for label in labels]


def test_masks_cover_exactly_the_shape_colour():
    images, _, masks = make_shapes(60, seed=12)
    pixels = images.astype(np.float64)
    for image, mask in zip(pixels, masks, strict=True):
        inside = image[mask]
        # One flat colour plus the sensor-like noise (sigma 4).
        assert inside.std(axis=0).max() < 6
        colour = inside.mean(axis=0)
        ring = ndimage.binary_dilation(mask, iterations=2) & ~mask
        distance = np.linalg.norm(image[ring] - colour, axis=1)
        # The pixels right outside are background, not shape: most are far from its colour.
        assert np.median(distance) > 40


def test_shape_area_does_not_give_the_class_away():
    # Shapes are sized to the same area for a given radius, so area overlaps between classes.
    _, labels, masks = make_shapes(600, seed=13)
    areas = masks.sum(axis=(1, 2))
    medians = [np.median(areas[labels == label]) for label in range(len(class_names))]
    assert max(medians) / min(medians) < 1.25


def test_make_shapes_rejects_bad_arguments_by_name():
    with pytest.raises(ValueError, match="n: expected an integer >= 1"):
        make_shapes(0)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        make_shapes(3, seed=1.5)
    with pytest.raises(ValueError, match="size: expected an integer >= 32"):
        make_shapes(3, size=8)


def test_importing_the_demo_and_making_data_loads_no_framework():
    script = (
        "import sys, json, ig_widget as igw\n"
        "igw.demo.make_shapes(3); igw.demo.images(); igw.demo.photo('coffee')\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules]\n"
        "print(json.dumps(loaded))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(completed.stdout) == []


# -- photographs ------------------------------------------------------------------


@pytest.mark.parametrize("name", igw.demo.photo_names)
def test_photos_are_rgb_and_licensed(name):
    image = igw.demo.photo(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert max(image.shape[:2]) == 299
    assert (PHOTO_DIR / f"{name}.jpg").stat().st_size < 60_000
    licences = (PHOTO_DIR / "LICENSES.md").read_text()
    row = next(line for line in licences.splitlines() if f"`{name}.jpg`" in line)
    assert "CC0" in row or "Public domain" in row
    square = igw.demo.photo(name, size=224)
    assert square.shape == (224, 224, 3) and square.dtype == np.uint8


def test_photo_size_crops_the_centre():
    full = igw.demo.photo("coffee").astype(np.float64)
    height, width = full.shape[:2]
    left = (width - height) // 2
    centre = full[:, left : left + height]
    square = igw.demo.photo("coffee", size=height).astype(np.float64)
    # Same pixels up to resampling: the crop is central, not a squeeze of the whole photo.
    assert np.abs(square - centre).mean() < 2.0


def test_unknown_photo_lists_the_names():
    with pytest.raises(ValueError) as error:
        igw.demo.photo("elephant")
    message = str(error.value)
    assert message.startswith("name:") and all(repr(n) in message for n in igw.demo.photo_names)


def test_photo_size_is_a_side_or_a_height_and_width():
    tall = igw.demo.photo("coffee", size=(120, 60))
    assert tall.shape == (120, 60, 3) and tall.dtype == np.uint8
    # The central region of that shape, not the whole photo squeezed.
    full = igw.demo.photo("coffee").astype(np.float64)
    height, width = full.shape[:2]
    left = (width - height // 2) // 2
    centre = full[:, left : left + height // 2]
    same = igw.demo.photo("coffee", size=(height, height // 2)).astype(np.float64)
    assert np.abs(same - centre).mean() < 2.0
    assert igw.demo.photo("coffee", size=[50, 70]).shape == (50, 70, 3)
    assert igw.demo.photo("coffee", size=np.int64(32)).shape == (32, 32, 3)


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, ValueError),
        ((299, 0), ValueError),
        ((5000, 10), ValueError),
        ((299,), TypeError),
        ((299, 299, 3), TypeError),
        ((299.0, 299), TypeError),
        ("224", TypeError),
        (True, TypeError),
    ],
)
def test_a_bad_photo_size_names_size(size, error):
    expected = "size: expected an integer or a (height, width) pair of integers, each 1..4096"
    with pytest.raises(error, match=re.escape(expected)):
        igw.demo.photo("coffee", size=size)


# -- model file --------------------------------------------------------------------


def test_model_file_is_small_and_loads_in_safe_mode():
    assert MODEL_PATH.suffix == ".keras"
    assert MODEL_PATH.stat().st_size < 2 * 1024 * 1024
    model = igw.demo.model()
    assert igw.demo.model() is model
    assert model.input_shape == (None, 96, 96, 3)
    assert model.output_shape == (None, len(class_names))
    assert model.layers[-1].__class__.__name__ == "Softmax"
    probabilities = np.asarray(model(np.zeros((2, 96, 96, 3), np.float32)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_the_vit_file_is_small_and_loads_in_safe_mode():
    assert VIT_PATH.suffix == ".keras"
    assert VIT_PATH.stat().st_size < 1024 * 1024
    model = igw.demo.model("vit")
    assert igw.demo.model("vit") is model and igw.demo.model() is not model
    assert model.input_shape == (None, 96, 96, 3)
    assert model.output_shape == (None, len(class_names))
    assert model.layers[-1].__class__.__name__ == "Softmax"
    assert any(layer.__class__.__name__ == "MultiHeadAttention" for layer in model.layers)
    # Its tokens: 144 of them, each an 8 x 8 square of the image (VIT_TOKEN).
    assert model.get_layer("tokens").output.shape[1] == (96 // igw.demo.VIT_TOKEN) ** 2
    probabilities = np.asarray(model(np.zeros((2, 96, 96, 3), np.float32)))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_an_unknown_demo_model_lists_the_names():
    with pytest.raises(ValueError, match="name: expected one of 'cnn', 'vit', got 'resnet'"):
        igw.demo.model("resnet")


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["cnn", "vit"])
def test_training_is_reproducible_from_its_seed(tmp_path, architecture):
    # A tiny run, twice from the same seed (in a fresh process, as the training
    # switches on TensorFlow's deterministic ops): the weights must be identical.
    outputs = [tmp_path / "first.keras", tmp_path / "second.keras"]
    script = (
        "import sys\n"
        "from ig_widget.demo.train import main\n"
        "for output in sys.argv[1:]:\n"
        f"    main(['--model', '{architecture}', '--train-images', '64', '--epochs', '1',"
        " '--output', output])\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, *map(str, outputs)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        timeout=300,
        check=True,
    )
    first, second = (keras.saving.load_model(o, safe_mode=True) for o in outputs)
    assert first.output_shape == (None, len(class_names))
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "least"), [("cnn", 0.95), ("vit", VIT_ACCURACY)])
def test_model_accuracy_on_fresh_images(name, least):
    assert ACCURACY_SEED not in (TRAIN_SEED, VALIDATION_SEED, igw.demo.EXAMPLES_SEED)
    images, labels, _ = make_shapes(1000, seed=ACCURACY_SEED)
    model = igw.demo.model(name)
    predicted = np.argmax(model.predict(images.astype(np.float32), verbose=0), axis=1)
    accuracy = float(np.mean(predicted == labels))
    print(f"\n{name}: accuracy on 1000 fresh images: {accuracy:.3f}")
    assert accuracy >= least


def test_examples_are_one_per_class_and_classified_right():
    examples, labels = igw.demo.images()
    assert examples.shape == (len(class_names), 96, 96, 3) and examples.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.arange(len(class_names)))
    predicted = np.argmax(np.asarray(igw.demo.model()(examples.astype(np.float32))), axis=1)
    np.testing.assert_array_equal(predicted, labels)


# -- quality of the IG maps ----------------------------------------------------------


def randomised_copy(model: keras.Model) -> keras.Model:
    """The same architecture with freshly initialised weights (model randomisation test)."""
    keras.utils.set_random_seed(0)
    return keras.models.clone_model(model)


def positive_share_inside(attributions: np.ndarray, region: np.ndarray) -> float:
    per_pixel = np.maximum(attributions.sum(axis=2), 0.0)
    return float(per_pixel[region].sum() / max(per_pixel.sum(), 1e-12))


def object_regions(masks: np.ndarray) -> list[np.ndarray]:
    """The shapes' masks dilated by DILATION_PX (IG credits the outline's both sides)."""
    disk = np.hypot(*np.mgrid[-DILATION_PX : DILATION_PX + 1, -DILATION_PX : DILATION_PX + 1])
    return [ndimage.binary_dilation(m, structure=disk <= DILATION_PX) for m in masks]


@pytest.fixture(scope="module")
def localisation():
    """IG of the true class for trained and randomised models on 50 fresh images."""
    images, labels, masks = make_shapes(LOCALISATION_IMAGES, seed=LOCALISATION_SEED)
    regions = object_regions(masks)
    trained = igw.demo.model()
    randomised = randomised_copy(trained)
    maps: dict[str, list[np.ndarray]] = {"trained": [], "randomised": []}
    deltas: dict[str, list[float]] = {"trained": [], "randomised": []}
    for name, model in (("trained", trained), ("randomised", randomised)):
        # Each image's result equals its own integrated_gradients call with seed=0.
        results = igw.integrated_gradients_batch(
            model,
            images,
            targets=labels,
            baseline=QUALITY_BASELINE,
            runs=QUALITY_RUNS,
            steps=QUALITY_STEPS,
            seed=0,
        )
        maps[name] = [result.attributions for result in results]
        deltas[name] = [result.delta for result in results]
    return {"regions": regions, "maps": maps, "deltas": deltas}


@pytest.mark.slow
def test_ig_mass_falls_on_the_object(localisation):
    regions = localisation["regions"]
    trained = localisation["maps"]["trained"]
    shares = [positive_share_inside(a, r) for a, r in zip(trained, regions, strict=True)]
    area_shares = [float(r.mean()) for r in regions]
    deltas = localisation["deltas"]["trained"]
    print(
        f"\npositive IG share inside the object (dilated {DILATION_PX} px): "
        f"{np.mean(shares):.3f}; the region's share of the image: {np.mean(area_shares):.3f}; "
        f"median delta ({QUALITY_RUNS} {QUALITY_BASELINE} baselines, {QUALITY_STEPS} steps): "
        f"{np.median(deltas):.4f}"
    )
    assert np.mean(shares) >= 0.6
    assert np.mean(shares) >= 3 * np.mean(area_shares)
    # Enough steps for these numbers to be about IG, not quadrature error.
    assert np.median(deltas) < 0.05


@pytest.mark.slow
def test_randomised_weights_lose_the_object(localisation):
    regions = localisation["regions"]
    trained, randomised = localisation["maps"]["trained"], localisation["maps"]["randomised"]
    shares = [positive_share_inside(a, r) for a, r in zip(randomised, regions, strict=True)]
    area_share = float(np.mean([r.mean() for r in regions]))
    correlations = [
        stats.spearmanr(t.sum(axis=2).ravel(), r.sum(axis=2).ravel()).statistic
        for t, r in zip(trained, randomised, strict=True)
    ]
    print(
        f"\nrandomised model: positive IG share inside the object {np.mean(shares):.3f} "
        f"(area share {area_share:.3f}); mean Spearman rank correlation with the trained "
        f"model's maps {np.mean(correlations):.3f}"
    )
    assert abs(np.mean(shares) - area_share) < 0.1
    assert np.mean(correlations) < 0.3


@pytest.mark.slow
def test_the_vits_ig_mass_falls_on_the_object():
    images, labels, masks = make_shapes(LOCALISATION_IMAGES, seed=LOCALISATION_SEED)
    regions = object_regions(masks)
    results = igw.integrated_gradients_batch(
        igw.demo.model("vit"),
        images,
        targets=labels,
        baseline=QUALITY_BASELINE,
        runs=QUALITY_RUNS,
        steps=VIT_QUALITY_STEPS,
        seed=0,
    )
    shares = [
        positive_share_inside(r.attributions, region)
        for r, region in zip(results, regions, strict=True)
    ]
    # The patch view: the positive share of the squares (tokens) that touch the object.
    token = igw.demo.VIT_TOKEN
    patch_shares = []
    for result, region in zip(results, regions, strict=True):
        positive, _ = patch_maps(*channel_maps(result.attributions), token)
        touched = region.reshape(96 // token, token, 96 // token, token).any(axis=(1, 3))
        touched = np.repeat(np.repeat(touched, token, axis=0), token, axis=1)
        patch_shares.append(float(positive[touched].sum() / max(positive.sum(), 1e-12)))
    area_share = float(np.mean([r.mean() for r in regions]))
    deltas = [r.delta for r in results]
    print(
        f"\nViT: positive IG share inside the object {np.mean(shares):.3f} (area share "
        f"{area_share:.3f}); in the tokens touching it {np.mean(patch_shares):.3f}; "
        f"median delta {np.median(deltas):.4f}"
    )
    assert np.mean(shares) >= VIT_OBJECT_SHARE
    assert np.mean(shares) >= 3 * area_share
    assert np.mean(patch_shares) >= np.mean(shares)
    assert np.median(deltas) < 0.05
