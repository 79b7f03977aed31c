"""The attribution methods besides IG and the insertion/deletion curves: exact answers on
models with known gradients, completeness, progress and cancel, input checks before work.

Parity with PAIR saliency, Captum and Quantus is in tests/test_parity.py; the
same methods on the JAX and PyTorch backends in tests/test_explainer_backends.py.
"""

from __future__ import annotations

import itertools
import sys
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

import ig_widget as igw
from ig_widget.explainers.blur_ig import blur_sigmas, gaussian_blur
from ig_widget.explainers.smoothgrad import NoisyRows
from ig_widget.faithfulness import perturbed_counts, pixel_ranks
from ig_widget.points import ComputationCancelled

from .models import CountingModel, linear_model, random_image, tiny_cnn

RNG = np.random.default_rng(7)
SHAPE = (8, 8, 3)
WEIGHTS = RNG.normal(size=(*SHAPE, 4)).astype(np.float32)
IMAGE = RNG.uniform(0, 255, SHAPE).astype(np.float32)
TARGET = 2
W = WEIGHTS[..., TARGET].astype(np.float64)


@pytest.fixture(scope="module")
def linear():
    return linear_model(WEIGHTS)


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


def assert_close(actual, expected, rtol=1e-5):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


# --- exact answers on a linear model (its gradient is w everywhere) ---------------


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_of_gradients_on_a_linear_model(linear, kind):
    res = igw.smoothgrad(linear, IMAGE, target=TARGET, kind=kind, samples=6, seed=1)
    expected = {"smoothgrad": W, "smoothgrad_sq": W**2, "vargrad": np.zeros_like(W)}[kind]
    assert_close(res.attributions, expected)
    assert res.explainer == "smoothgrad" and res.points_used == 6 and res.target == TARGET
    assert res.parameters["sigma"] == pytest.approx(0.15 * 255)
    assert res.attributions.dtype == np.float32 and res.attributions.shape == SHAPE


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
# Batches of 3: each copy's 7 points over 3 or 4 batches, a batch's own copies
# in its sums; of 16: a row for every copy in each batch's sums (zeros for most).
@pytest.mark.parametrize("batch_size", [3, 16])
def test_smoothgrad_of_integrated_gradients_on_a_linear_model(linear, kind, batch_size):
    samples, sigma = 5, 0.2 * 255
    res = igw.smoothgrad(
        linear,
        IMAGE,
        of="integrated_gradients",
        target=TARGET,
        kind=kind,
        samples=samples,
        noise=0.2,
        steps=6,
        baseline="white",
        seed=4,
        batch_size=batch_size,  # squares must be of whole copies however they are split
    )
    noisy = NoisyRows(IMAGE, sigma, samples, seed=4).take(np.arange(samples)).astype(np.float64)
    per_copy = W * (noisy - 255.0)  # IG of a linear model, exactly
    expected = {
        "smoothgrad": per_copy.mean(axis=0),
        "smoothgrad_sq": (per_copy**2).mean(axis=0),
        "vargrad": per_copy.var(axis=0),
    }[kind]
    assert_close(res.attributions, expected, rtol=1e-4)
    assert res.points_used == samples * 7
    assert res.parameters["baseline"] == "white" and res.parameters["steps"] == 6


@pytest.mark.parametrize("kind", ["smoothgrad_sq", "vargrad"])
def test_squared_smoothgrad_of_integrated_gradients_holds_no_map_per_copy(kind):
    # The squares need whole copies' maps, but only those of the copies a batch
    # touches are kept: the peak does not grow with samples (it held every copy:
    # 3.7 MB per sample at 224x224).
    shape = (64, 64, 3)
    model = linear_model(np.ones((*shape, 2), np.float32))
    image = np.full(shape, 100.0, np.float32)
    map_bytes = np.zeros(shape).nbytes

    def peak(samples):
        tracemalloc.start()
        try:
            igw.smoothgrad(
                model, image, of="integrated_gradients", kind=kind, samples=samples, steps=4,
                target=1, seed=0, batch_size=8,
            )  # fmt: skip
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(2)  # traces the model's function
    growth = peak(96) - peak(8)
    assert growth < 4 * map_bytes, f"{growth / map_bytes:.1f} maps more for 88 more samples"


def test_noise_is_the_same_in_any_batching_and_differs_between_seeds(linear):
    rows = NoisyRows(IMAGE, 10.0, 50, seed=3)
    assert np.array_equal(rows.take(np.arange(50))[17], rows.take(np.array([17]))[0])
    noise = rows.take(np.arange(50)) - IMAGE
    assert abs(noise.std() - 10.0) < 0.2 and abs(noise.mean()) < 0.2
    other = NoisyRows(IMAGE, 10.0, 50, seed=4).take(np.arange(50))
    assert not np.array_equal(other, rows.take(np.arange(50)))
    first = igw.smoothgrad(linear, IMAGE, of="integrated_gradients", steps=2, seed=9, batch_size=4)
    second = igw.smoothgrad(linear, IMAGE, of="integrated_gradients", steps=2, seed=9, batch_size=7)
    assert_close(first.attributions, second.attributions)


def test_expected_gradients_on_a_linear_model(linear):
    references = RNG.uniform(0, 255, (5, *SHAPE)).astype(np.float32)
    res = igw.expected_gradients(
        linear, IMAGE, references=references, samples=40, seed=2, target=TARGET
    )
    drawn = np.random.default_rng(2).integers(0, 5, 40)
    expected = W * (IMAGE - references[drawn].astype(np.float64).mean(axis=0))
    assert_close(res.attributions, expected, rtol=1e-4)
    assert res.parameters == {"samples": 40, "seed": 2, "references": 5}
    # A sequence of images works as well as an array.
    listed = igw.expected_gradients(
        linear, IMAGE, references=list(references), samples=40, seed=2, target=TARGET
    )
    assert_close(listed.attributions, res.attributions)


def test_expected_gradients_is_complete_in_expectation(cnn):
    image = random_image()
    references = np.stack([np.full(image.shape, value, np.float32) for value in (0, 60, 255)])
    res = igw.expected_gradients(cnn, image, references=references, samples=600, seed=0)
    mean_reference = float(np.mean(cnn(references).numpy()[:, res.target]))
    gap = res.score - mean_reference
    assert abs(gap) > 0.5
    assert abs(res.attributions.sum() - gap) < 0.1 * abs(gap)


def test_blur_ig_on_a_linear_model(linear):
    steps, max_sigma, grad_step = 20, 3.0, 0.01
    res = igw.blur_ig(
        linear, IMAGE, target=TARGET, steps=steps, max_sigma=max_sigma, grad_step=grad_step
    )
    sigmas = blur_sigmas(max_sigma, steps)
    expected = np.zeros(SHAPE)
    for low, high in itertools.pairwise(sigmas):
        direction = gaussian_blur(IMAGE, low + grad_step) - gaussian_blur(IMAGE, low)
        expected -= (high - low) / grad_step * W * direction
    assert_close(res.attributions, expected, rtol=1e-4)
    assert res.points_used == steps and res.parameters["max_sigma"] == max_sigma


@pytest.mark.parametrize("sqrt", [False, True])
def test_blur_ig_is_complete(cnn, sqrt):
    image = random_image()
    res = igw.blur_ig(cnn, image, max_sigma=8.0, steps=300, sqrt=sqrt)
    blurred = gaussian_blur(image, 8.0)  # where the path ends, with either spacing
    gap = res.score - float(cnn(blurred[None]).numpy()[0, res.target])
    assert abs(res.attributions.sum() - gap) < 0.05 * abs(gap)
    assert res.parameters["sqrt"] is sqrt
    # sqrt spaces the widths evenly in sigma squared.
    np.testing.assert_allclose(blur_sigmas(8.0, 4, sqrt=True) ** 2, [0, 16, 32, 48, 64])


@pytest.mark.parametrize("max_dist", [0.0, 0.02, 1.0])
def test_guided_ig_on_a_linear_model_is_exact_on_any_path(linear, max_dist):
    res = igw.guided_ig(linear, IMAGE, target=TARGET, steps=25, max_dist=max_dist)
    assert_close(res.attributions, W * IMAGE)
    assert res.points_used == 25


def test_guided_ig_nears_completeness_as_max_dist_shrinks_and_is_ig_at_zero(cnn):
    image = random_image()
    white = np.full_like(image, 255.0)
    errors = []
    for max_dist in (0.1, 0.02, 0.005):
        res = igw.guided_ig(cnn, image, baseline="white", steps=200, max_dist=max_dist)
        gap = res.score - float(cnn(white[None]).numpy()[0, res.target])
        errors.append(abs(res.attributions.sum() - gap) / abs(gap))
    # Features jump by up to max_dist where the gradient is small: the error
    # is set by max_dist, not by the steps (as in PAIR's implementation).
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.2
    straight = igw.guided_ig(cnn, image, baseline="white", steps=200, max_dist=0.0)
    # max_dist=0 is integrated gradients along the straight line (a left Riemann sum).
    ig = igw.integrated_gradients(cnn, image, baseline="white", steps=200, method="riemann_left")
    assert_close(straight.attributions, ig.attributions, rtol=2e-3)
    assert not np.allclose(res.attributions, straight.attributions, rtol=0.05)


def test_xrai_ranks_the_region_the_model_reads_first():
    def model(batch):  # scores the mean of the top-left quarter
        return tf.reduce_mean(batch[:, :24, :24], axis=[1, 2])

    image = np.zeros((48, 48, 3), np.float32)
    image[:24, :24] = 200
    image[24:, 24:] = 100
    res = igw.xrai(model, image, target=0, steps=8)
    assert isinstance(res, igw.XRAIResult) and res.explainer == "xrai"
    assert res.attributions.shape == (48, 48, 1) and res.ranks.shape == (48, 48)
    assert res.ranks[:24, :24].mean() < res.ranks[24:, 24:].mean()
    top = res.top_regions(0.3)
    assert top[:24, :24].mean() > 0.9 and top[24:, 24:].mean() < 0.1
    assert res.points_used == 2 * 9  # black and white paths, 9 points each
    # IG over both baselines: black -> image and white -> image, averaged.
    black = igw.integrated_gradients(model, image, target=0, steps=8)
    white = igw.integrated_gradients(model, image, target=0, steps=8, baseline="white")
    assert_close(res.base_attributions, (black.attributions + white.attributions) / 2, 1e-4)


def test_xrai_with_given_attributions_and_label_segments():
    def model(batch):
        return tf.reduce_mean(batch, axis=[1, 2])

    attributions = np.zeros((8, 8), np.float32)
    attributions[:, 4:] = 1.0
    attributions[:4, 4:] = 3.0
    labels = np.zeros((8, 8), int)
    labels[:, 4:] = 1
    labels[:4, 4:] = 2
    res = igw.xrai(
        model,
        np.ones((8, 8, 3)),
        attributions=attributions,
        segments=labels,
        min_pixel_diff=1,
        target=0,
    )
    expected_ranks = np.where(labels == 2, 1, np.where(labels == 1, 2, 3))
    np.testing.assert_array_equal(res.ranks, expected_ranks)
    np.testing.assert_allclose(res.attributions[..., 0], np.where(labels == 0, 0.0, attributions))
    assert res.points_used == 0 and res.parameters["regions"] == 3


# --- insertion and deletion ---------------------------------------------------------


def _left_column_model(batch):
    return tf.stack([tf.reduce_mean(batch[:, :, 0], axis=[1, 2]), tf.zeros(tf.shape(batch)[0])], 1)


def test_insertion_deletion_on_a_model_with_known_curves():
    image = np.full((4, 4, 1), 100.0, np.float32)
    left = np.zeros((4, 4), np.float32)
    left[:, 0] = 1.0
    res = igw.insertion_deletion(_left_column_model, image, left, steps=4, baseline="black")
    np.testing.assert_allclose(res.fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(res.deletion, [100, 0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(res.insertion, [0, 100, 100, 100, 100], atol=1e-5)
    assert res.deletion_auc == pytest.approx(12.5) and res.insertion_auc == pytest.approx(87.5)
    assert res.target == 0 and res.points_used == 7 and res.baseline == "black"
    # Ranked the wrong way round, the column goes last: deletion stays high.
    wrong = igw.insertion_deletion(
        _left_column_model, image, -left, steps=4, baseline="black", target=0
    )
    np.testing.assert_allclose(wrong.deletion, [100, 100, 100, 100, 0], atol=1e-5)
    assert wrong.deletion_auc == pytest.approx(87.5)


def test_insertion_deletion_curves_meet_at_the_ends_and_take_a_result(cnn):
    image = random_image()
    res = igw.integrated_gradients(cnn, image, steps=16)
    curves = igw.insertion_deletion(cnn, image, res, steps=8)
    assert curves.target == res.target
    blurred = igw.baselines.single_baseline(image, "blur")
    substrate = float(cnn(blurred[None]).numpy()[0, res.target])
    assert curves.insertion[0] == pytest.approx(substrate, rel=1e-5)
    assert curves.deletion[-1] == pytest.approx(substrate, rel=1e-5)
    assert curves.insertion[-1] == curves.deletion[0] == pytest.approx(res.score)
    # Each point is the model's score at the image it describes.
    ranks = pixel_ranks(res.attributions)
    counts = perturbed_counts(256, 8)
    for k in (1, 5):
        kept = ranks < counts[k]
        deleted = np.where(kept[..., None], blurred, image)
        inserted = np.where(kept[..., None], image, blurred)
        scores = cnn(np.stack([deleted, inserted])).numpy()[:, res.target]
        assert curves.deletion[k] == pytest.approx(scores[0], rel=1e-4, abs=1e-4)
        assert curves.insertion[k] == pytest.approx(scores[1], rel=1e-4, abs=1e-4)


def test_insertion_deletion_softmax_follows_probabilities(cnn):
    image = random_image()
    attributions = np.random.default_rng(0).normal(size=image.shape)
    raw = igw.insertion_deletion(cnn, image, attributions, steps=4, target=1)
    soft = igw.insertion_deletion(cnn, image, attributions, steps=4, target=1, softmax=True)
    logits = cnn(image[None]).numpy()[0]
    probability = np.exp(logits[1]) / np.exp(logits).sum()
    assert soft.deletion[0] == pytest.approx(probability, rel=1e-5)
    assert raw.deletion[0] == pytest.approx(logits[1], rel=1e-5)
    assert 0 <= soft.insertion.min() and soft.insertion.max() <= 1


def test_pixel_ranks_sum_channels_and_break_ties_in_reading_order():
    attributions = np.zeros((2, 2, 3))
    attributions[1, 1] = [1.0, 1.0, -1.5]  # sum 0.5
    attributions[0, 1] = [0.0, 0.0, 2.0]
    np.testing.assert_array_equal(pixel_ranks(attributions), [[2, 0], [3, 1]])
    assert perturbed_counts(7, 3).tolist() == [0, 2, 5, 7]


# --- progress and cancel ------------------------------------------------------------

METHOD_CALLS = {
    "smoothgrad": lambda m, image, **kw: igw.smoothgrad(m, image, samples=6, **kw),
    "smoothgrad_ig_sq": lambda m, image, **kw: igw.smoothgrad(
        m, image, samples=3, of="integrated_gradients", kind="smoothgrad_sq", steps=4, **kw
    ),
    "expected_gradients": lambda m, image, **kw: igw.expected_gradients(
        m, image, references=np.stack([image * 0, image / 2]), samples=8, **kw
    ),
    "blur_ig": lambda m, image, **kw: igw.blur_ig(m, image, steps=8, max_sigma=4.0, **kw),
    "guided_ig": lambda m, image, **kw: igw.guided_ig(m, image, steps=6, **kw),
    "xrai": lambda m, image, **kw: igw.xrai(m, image, steps=4, **kw),
    "insertion_deletion": lambda m, image, **kw: igw.insertion_deletion(
        m, image, np.arange(image.size, dtype=np.float32).reshape(image.shape), steps=8, **kw
    ),
}


@pytest.mark.parametrize("name", METHOD_CALLS)
def test_progress_reaches_the_total_and_false_cancels(cnn, name):
    image = random_image()
    seen = []
    call = METHOD_CALLS[name]
    kwargs = {} if name == "guided_ig" else {"batch_size": 2}
    res = call(cnn, image, progress=lambda done, total: seen.append((done, total)), **kwargs)
    assert len(seen) >= 2 and seen[-1][0] == seen[-1][1] == res.points_used
    assert all(a[0] < b[0] for a, b in itertools.pairwise(seen))
    calls = []

    def stop_at_first(done, total):
        calls.append(done)
        return False

    with pytest.raises(ComputationCancelled):
        call(cnn, image, progress=stop_at_first, **kwargs)
    assert len(calls) == 1


# --- input checks, before the model runs --------------------------------------------


IMG16 = random_image()
BAD_INPUT = [
    ("smoothgrad", {"of": "gradient"}, ValueError, "of: expected one of 'gradients'"),
    ("smoothgrad", {"kind": "sq"}, ValueError, "kind: expected one of 'smoothgrad'"),
    ("smoothgrad", {"samples": 0}, ValueError, "samples: expected an integer >= 1"),
    ("smoothgrad", {"noise": 1.5}, ValueError, r"noise: expected a number in \[0.0, 1.0\]"),
    ("smoothgrad", {"noise": "lots"}, TypeError, "noise: expected a number"),
    ("smoothgrad", {"steps": 0, "of": "integrated_gradients"}, ValueError, "steps: expected"),
    ("smoothgrad", {"baseline": "grey"}, ValueError, "baseline: expected one of"),
    ("smoothgrad", {"target": 9}, ValueError, r"target: expected a class index in \[0, 3\]"),
    ("smoothgrad", {"progress": 3}, TypeError, "progress: expected a callable"),
    ("expected_gradients", {"references": None}, TypeError, "references: expected an array"),
    ("expected_gradients", {"references": []}, ValueError, "references: expected at least one"),
    (
        "expected_gradients",
        {"references": np.zeros((2, 8, 8, 3))},
        ValueError,
        r"references: expected images of the image's shape \(16, 16, 3\)",
    ),
    (
        "expected_gradients",
        {"references": np.zeros((16, 16, 3))},
        ValueError,
        r"references: expected an array of shape \(N, H, W, C\)",
    ),
    ("expected_gradients", {"samples": 1.5}, TypeError, "samples: expected an integer"),
    ("blur_ig", {"max_sigma": 0}, ValueError, r"max_sigma: expected a number in \(0, 64\]"),
    # Up to 4 times the image's larger side: 1e9 would need a kernel of 8e9 values (the
    # OS killed it at 19.5 GB), a refusal that names the bound costs nothing.
    (
        "blur_ig",
        {"max_sigma": 1e9},
        ValueError,
        r"max_sigma: expected a number in \(0, 64\] \(4 times the image's larger side, "
        r"16 pixels\), got 1e\+09",
    ),
    ("blur_ig", {"max_sigma": 64.5}, ValueError, r"max_sigma: .*got 64.5"),
    ("blur_ig", {"steps": 0}, ValueError, "steps: expected an integer >= 1"),
    ("blur_ig", {"grad_step": -1.0}, ValueError, "grad_step: expected a number in"),
    ("blur_ig", {"sqrt": "yes"}, TypeError, "sqrt: expected True or False"),
    ("guided_ig", {"fraction": 0.0}, ValueError, r"fraction: expected a number in \(0, 1\]"),
    ("guided_ig", {"max_dist": 2.0}, ValueError, r"max_dist: expected a number in \[0.0, 1.0\]"),
    ("guided_ig", {"baseline": np.zeros((3, 3))}, ValueError, "baseline: expected an array"),
    ("xrai", {"baselines": "black"}, TypeError, "baselines: expected a sequence"),
    ("xrai", {"baselines": ["black", "grey"]}, ValueError, r"baselines\[1\]: expected one of"),
    ("xrai", {"attributions": np.zeros((4, 4))}, ValueError, r"attributions: expected an array"),
    ("xrai", {"segments": np.zeros((2, 4, 4), bool)}, ValueError, "segments: expected masks"),
    ("xrai", {"segments": np.zeros((16, 16))}, ValueError, "segments: expected boolean masks"),
    ("xrai", {"area_threshold": 2}, ValueError, r"area_threshold: expected a number in"),
    ("xrai", {"min_pixel_diff": 0}, ValueError, "min_pixel_diff: expected an integer >= 1"),
    (
        "insertion_deletion",
        {"attributions": np.zeros((16, 15))},
        ValueError,
        r"attributions: expected an array of shape \(16, 16\)",
    ),
    (
        "insertion_deletion",
        {"attributions": np.full((16, 16), np.nan)},
        ValueError,
        "attributions: contains NaN",
    ),
    ("insertion_deletion", {"steps": 257}, ValueError, r"steps: expected an integer <= 256"),
    ("insertion_deletion", {"softmax": 1}, TypeError, "softmax: expected True or False"),
    ("insertion_deletion", {"baseline": "grey"}, ValueError, "baseline: expected one of"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "pattern"), BAD_INPUT)
def test_bad_input_is_named_before_the_model_runs(cnn, name, kwargs, error, pattern):
    model = CountingModel(cnn)
    function = getattr(igw, name)
    defaults = {
        "expected_gradients": {"references": IMG16[None]},
        "insertion_deletion": {"attributions": IMG16},
    }.get(name, {})
    arguments = {**defaults, **kwargs}
    if "target" in kwargs:  # only known once the model has run once
        with pytest.raises(error, match=pattern):
            function(model, IMG16, **arguments)
        assert model.calls == 1
        return
    with pytest.raises(error, match=pattern):
        function(model, IMG16, **arguments)
    assert model.calls == 0


def test_xrai_without_scikit_image_names_the_extra_before_the_model_runs(cnn, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    model = CountingModel(cnn)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'ig-widget\[xrai\]'"):
        igw.xrai(model, IMG16)
    assert model.calls == 0
    # Given regions need no segmentation.
    labels = np.arange(256).reshape(16, 16) // 64
    assert igw.xrai(model, IMG16, segments=labels, steps=2).ranks.max() == 4


def test_a_method_declares_only_parameters_its_function_takes():
    from ig_widget.explainers import Method

    with pytest.raises(TypeError, match="blurred: takes no parameter 'baseline' it declares"):
        Method("blurred", igw.blur_ig, "Blurred", ("baseline",))
    with pytest.raises(TypeError, match="blurred: takes no parameter 'references' it declares"):
        Method("blurred", igw.blur_ig, "Blurred", requires=("references",))


def test_the_widget_passes_each_method_the_options_its_entry_declares(linear, monkeypatch):
    """A method added as one registry entry gets exactly the widget options it declares."""
    from ig_widget.explainers import REGISTRY, Method
    from ig_widget.options import IGOptions
    from ig_widget.widget.methods import run_method

    seen = {}

    def recording(model, image, *, steps=1, seed=None, **keywords):
        seen.update(keywords, steps=steps, seed=seed)
        return igw.blur_ig(model, image, steps=4, max_sigma=8, target=keywords["target"])

    monkeypatch.setitem(
        REGISTRY, "recording", Method("recording", recording, "Recording", ("steps", "seed"))
    )
    options = IGOptions(steps=7, seed=3, baseline="white", method="gausslegendre")
    result = run_method("recording", linear, IMAGE, options, 0, {"recording": {"extra": 1}}, None)
    assert isinstance(result, igw.AttributionResult)
    assert seen == {
        "target": 0,
        "preprocess": None,
        "precision": "float32",
        "progress": None,
        "steps": 7,
        "seed": 3,
        "extra": 1,
    }
