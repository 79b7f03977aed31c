"""The IG engine: exactness, completeness, parity with a plain loop, batching, several images
at once. What it takes and refuses is in test_inputs.py."""

from __future__ import annotations

import threading
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
from ig_widget.backends import backend_for
from ig_widget.baselines import make_baselines
from ig_widget.points import UniformRows
from ig_widget.quadrature import METHODS, integration_points

from .models import linear_model, random_image, tiny_cnn

REPO = Path(__file__).resolve().parents[1]

RNG = np.random.default_rng(42)
LIN_WEIGHTS = RNG.normal(size=(6, 5, 3, 4)).astype(np.float32)
LIN_IMAGE = RNG.uniform(0, 255, (6, 5, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


@pytest.fixture(scope="module")
def image():
    return random_image()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("steps", [1, 3, 50])
@pytest.mark.parametrize("baseline", ["black", "white", "array"])
def test_linear_model_ig_is_exact(method, steps, baseline):
    model = linear_model(LIN_WEIGHTS)
    start = (
        RNG.uniform(0, 255, LIN_IMAGE.shape).astype(np.float32) if baseline == "array" else baseline
    )
    start_array = make_baselines(LIN_IMAGE, start, 1)[0]
    res = igw.integrated_gradients(
        model, LIN_IMAGE, target=2, method=method, steps=steps, baseline=start
    )
    expected = LIN_WEIGHTS[..., 2] * (LIN_IMAGE - start_array)
    np.testing.assert_allclose(
        res.attributions, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
    )
    np.testing.assert_allclose(res.gradients, LIN_WEIGHTS[..., 2], rtol=1e-6)
    assert res.delta < 1e-4  # float32 scores: F(x) - F(x') loses digits to cancellation
    assert res.method == method and res.steps == steps and res.target == 2


@pytest.mark.parametrize("method", ["trapezoid", "riemann_right", "riemann_left"])
def test_the_image_is_computed_once_where_the_paths_end_at_it(method, monkeypatch):
    # Each path's point at alpha 1 is the image, whose own point gives the plain
    # gradient: it is evaluated once and serves every run's sum, which must equal
    # the sums of a plain loop over every path point (a model whose gradient varies).
    weights = tf.constant(LIN_WEIGHTS[..., :2] / 255.0)

    def model(x):
        return tf.reduce_sum(tf.sin(x[..., None] * weights), axis=[1, 2, 3])

    runs, steps = 3, 4
    alphas, quadrature = integration_points(method, steps)
    starts = UniformRows(runs, LIN_IMAGE.shape, (0.0, 255.0), seed=7).take(np.arange(runs))
    expected = np.zeros(LIN_IMAGE.shape, np.float64)
    for start in starts:
        for alpha, weight in zip(alphas, quadrature, strict=True):
            point = tf.constant((start + alpha * (LIN_IMAGE - start))[None].astype(np.float32))
            with tf.GradientTape() as tape:
                tape.watch(point)
                score = model(point)[0, 1]
            gradient = tape.gradient(score, point).numpy()[0]
            expected += weight / runs * (LIN_IMAGE - start) * gradient
    backend = backend_for(model, None)
    evaluated, original = [], backend.gradient_sums

    def counting(*args):
        evaluated.append(len(args[2]))
        return original(*args)

    monkeypatch.setattr(backend, "gradient_sums", counting)
    res = igw.integrated_gradients(
        model, LIN_IMAGE, target=1, method=method, steps=steps, runs=runs,
        baseline="uniform", seed=7, batch_size=64,
    )  # fmt: skip
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-4, atol=1e-6)
    ends = alphas[-1] == 1.0
    assert sum(evaluated) == runs * (len(alphas) - ends) + 1
    assert (res.path_scores[:, -1] == res.scores[1]).all() == ends


def test_integration_rules_weights_sum_to_one_and_integrate_polynomials():
    for method in METHODS:
        alphas, weights = integration_points(method, 1000)
        assert np.isclose(weights.sum(), 1.0)
        assert np.all(np.diff(alphas) > 0) and alphas.min() >= 0 and alphas.max() <= 1
        assert abs(np.sum(weights * alphas**2) - 1 / 3) < 1e-3
    alphas, weights = integration_points("gausslegendre", 4)
    assert abs(np.sum(weights * alphas**7) - 1 / 8) < 1e-12  # exact up to degree 2n-1


def test_completeness_on_a_cnn(cnn, image):
    res = igw.integrated_gradients(cnn, image, steps=50)
    assert res.delta < 0.01
    scores_x = cnn(image[None]).numpy()[0]
    score_baseline = cnn(np.zeros((1, *image.shape), np.float32)).numpy()[0, res.target]
    assert res.target == int(np.argmax(scores_x))
    expected = scores_x[res.target] - score_baseline
    independent = abs(res.attributions.astype(np.float64).sum() - expected) / abs(expected)
    assert res.delta == pytest.approx(independent, rel=1e-3, abs=1e-6)
    np.testing.assert_allclose(res.scores, scores_x, rtol=1e-5)
    np.testing.assert_allclose(res.baseline_scores, [score_baseline], rtol=1e-5)
    assert res.path_scores.shape == (1, 51) and res.path_alphas.shape == (51,)
    assert res.path_scores[0, -1] == pytest.approx(scores_x[res.target], rel=1e-5)


def test_delta_decreases_as_steps_grow(cnn, image):
    deltas = [
        igw.integrated_gradients(cnn, image, steps=s, baseline="white").delta
        for s in (4, 16, 64, 256)
    ]
    assert deltas[-1] < deltas[0] / 10
    assert deltas[2] < deltas[0]


def _loop_ig(model, image, baselines, target, method, steps, preprocess=None):
    """One interpolated image per forward/backward pass, as the Keras example does."""
    alphas, weights = integration_points(method, steps)
    total = np.zeros(image.shape, np.float64)
    for start in baselines:
        grad_sum = np.zeros(image.shape, np.float64)
        for alpha, weight in zip(alphas, weights, strict=True):
            point = tf.constant((start + alpha * (image - start))[None], tf.float32)
            with tf.GradientTape() as tape:
                tape.watch(point)
                batch = preprocess(point) if preprocess else point
                score = model(batch)[:, target]
            grad_sum += weight * tape.gradient(score, point).numpy()[0]
        total += (image - start) * grad_sum
    return total / len(baselines)


@pytest.mark.parametrize("method", ["trapezoid", "gausslegendre"])
def test_batched_engine_matches_a_plain_loop(cnn, image, method):
    res = igw.integrated_gradients(
        cnn,
        image,
        steps=50,
        runs=2,
        baseline="uniform",
        seed=7,
        batch_size=7,
        method=method,
        target=1,
    )
    baselines = make_baselines(image, "uniform", 2, seed=7)
    expected = _loop_ig(cnn, image, baselines, 1, method, 50)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-4, atol=1e-4 * scale)
    assert res.runs == 2 and res.path_scores.shape == (2, len(res.path_alphas))
    assert res.points_used == 2 * len(res.path_alphas)


def test_batch_size_does_not_change_the_result(cnn, image):
    results = [
        igw.integrated_gradients(cnn, image, steps=20, batch_size=b).attributions
        for b in (1, 5, 21, 64)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-5, atol=1e-9)


def test_preprocess_keeps_completeness_in_raw_pixels(image):
    scaled_inside = tiny_cnn(seed=0)
    scaled_outside = tiny_cnn(seed=0, rescale=False)
    res = igw.integrated_gradients(
        scaled_outside, image, steps=50, preprocess=lambda x: x / 127.5 - 1
    )
    assert res.delta < 0.01
    same_function = igw.integrated_gradients(scaled_inside, image, steps=50)
    np.testing.assert_allclose(res.attributions, same_function.attributions, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(res.gradients, same_function.gradients, rtol=1e-4, atol=1e-9)


def test_out_of_memory_halves_the_batch_with_identical_result(cnn, image):
    reference = igw.integrated_gradients(cnn, image, steps=30, batch_size=31)
    backend = backend_for(cnn, None)
    original = backend.gradient_sums
    seen = []

    def flaky(starts, ends, start_index, *args):
        seen.append(len(start_index))
        if len(start_index) > 4:
            raise tf.errors.ResourceExhaustedError(None, None, "simulated OOM")
        return original(starts, ends, start_index, *args)

    backend.gradient_sums = flaky
    try:
        res = igw.integrated_gradients(cnn, image, steps=30, batch_size=31)
    finally:
        del backend.gradient_sums
    assert seen[:4] == [31, 15, 7, 3]
    np.testing.assert_allclose(res.attributions, reference.attributions, rtol=1e-5, atol=1e-9)

    backend.gradient_sums = lambda *a: (_ for _ in ()).throw(
        tf.errors.ResourceExhaustedError(None, None, "simulated OOM")
    )
    try:
        with pytest.raises(MemoryError, match="batch_size"):
            igw.integrated_gradients(cnn, image, steps=3, batch_size=2)
    finally:
        del backend.gradient_sums


def test_no_retracing_when_image_or_target_change(cnn, image):
    igw.integrated_gradients(cnn, image, steps=10)
    program = backend_for(cnn, None)._programs[(image.shape, None, 1)]  # one weighted column
    traces = program.experimental_get_tracing_count()
    for target in range(4):
        igw.integrated_gradients(cnn, image[::-1].copy(), target=target, steps=9, batch_size=4)
    igw.gradients(cnn, image, target=2)
    assert program.experimental_get_tracing_count() == traces


def test_progress_reports_and_cancels(cnn, image):
    calls = []
    igw.integrated_gradients(
        cnn, image, steps=20, batch_size=8, progress=lambda d, t: calls.append((d, t))
    )
    # 20 path points and the image's own point, which is the path's last point too.
    assert calls == [(8, 21), (16, 21), (21, 21)]
    stop = threading.Event()
    stop.set()
    with pytest.raises(igw.ComputationCancelled):
        igw.integrated_gradients(
            cnn, image, steps=20, batch_size=4, progress=lambda d, t: not stop.is_set()
        )


def test_auto_steps_reuses_points_and_meets_tolerance(cnn, image):
    res = igw.integrated_gradients(cnn, image, steps="auto", tolerance=0.005, baseline="white")
    assert res.delta <= 0.005
    assert res.points_used == res.steps + 1 == len(res.path_alphas)
    fixed = igw.integrated_gradients(cnn, image, steps=res.steps, baseline="white")
    np.testing.assert_allclose(res.attributions, fixed.attributions, rtol=1e-4, atol=1e-9)


def test_auto_steps_warns_when_the_cap_stops_it(cnn, image):
    with pytest.warns(RuntimeWarning, match=r"steps='auto' stopped at its cap of 512 intervals"):
        res = igw.integrated_gradients(cnn, image, steps="auto", tolerance=1e-9, baseline="white")
    assert res.steps == 512 and res.points_used == 513 and res.delta > 1e-9
    fixed = igw.integrated_gradients(cnn, image, steps=512, baseline="white")
    np.testing.assert_allclose(res.attributions, fixed.attributions, rtol=1e-4, atol=1e-9)


def test_plain_gradients_match_a_tape(cnn, image):
    g = igw.gradients(cnn, image, target=3)
    point = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(point)
        score = cnn(point)[:, 3]
    np.testing.assert_allclose(g, tape.gradient(score, point).numpy()[0], rtol=1e-5, atol=1e-12)


def test_bfloat16_needs_layers_to_switch():
    with pytest.raises(ValueError, match="precision: 'bfloat16' needs a Keras model"):
        igw.integrated_gradients(linear_model(LIN_WEIGHTS), LIN_IMAGE, precision="bfloat16")


# --- several images at once -----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:steps='auto' stopped at its cap")
@pytest.mark.parametrize(
    "options",
    [
        {"steps": 12},
        {"steps": 9, "method": "gausslegendre", "baseline": "uniform", "runs": 3, "seed": 5},
        {"steps": 10, "baseline": "blur", "runs": 2},
        {"steps": "auto", "baseline": "white", "tolerance": 0.005},
    ],
    ids=["black", "uniform-gausslegendre", "blur", "auto"],
)
def test_a_batch_of_images_equals_single_calls(cnn, options):
    images = np.stack([random_image(seed=s) for s in (1, 2, 3)])
    targets = [2, None, 0]
    batch = igw.integrated_gradients_batch(cnn, images, targets=targets, **options)
    assert len(batch) == 3
    for image, target, result in zip(images, targets, batch, strict=True):
        single = igw.integrated_gradients(cnn, image, target=target, **options)
        scale = np.abs(single.attributions).max()
        np.testing.assert_allclose(
            result.attributions, single.attributions, rtol=1e-4, atol=1e-5 * scale
        )
        np.testing.assert_allclose(result.gradients, single.gradients, rtol=1e-4, atol=1e-7)
        for key in ("scores", "path_alphas", "path_scores", "baseline_scores"):
            np.testing.assert_allclose(
                getattr(result, key), getattr(single, key), rtol=1e-5, atol=1e-6
            )
        assert (result.target, result.steps, result.runs, result.points_used) == (
            single.target,
            single.steps,
            single.runs,
            single.points_used,
        )
        assert result.delta == pytest.approx(single.delta, rel=1e-3, abs=1e-6)


def test_a_batch_of_small_images_shares_model_calls(cnn, monkeypatch):
    images = [random_image(seed=s) for s in range(4)]  # a sequence works too
    backend = backend_for(cnn, None)
    calls = []
    original = backend.gradient_sums

    def counting(*args):
        calls.append(len(args[2]))
        return original(*args)

    monkeypatch.setattr(backend, "gradient_sums", counting)
    results = igw.integrated_gradients_batch(cnn, images, targets=1, steps=8, batch_size=64)
    # 4 x 8 path points and the 4 images' own points (their paths' last): one call.
    assert calls == [36] and [r.target for r in results] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "pattern"),
    [
        (np.zeros((2, 16, 16, 3)), {"targets": [1]}, ValueError, "targets: expected 2 class"),
        (
            [np.zeros((16, 16, 3)), np.zeros((8, 8, 3))],
            {},
            ValueError,
            "images: expected images of one shape",
        ),
        (
            np.zeros((16, 16, 3)),
            {},
            ValueError,
            r"images: expected an array of shape \(N, H, W, C\)",
        ),
        ([], {}, ValueError, "images: expected at least one image"),
        ("cat.png", {}, TypeError, "images: expected an array"),
        (
            np.zeros((2, 16, 16, 3)),
            {"targets": [1, 9]},
            ValueError,
            r"target: expected a class index in \[0, 3\]",
        ),
        (np.zeros((2, 16, 16, 3)), {"steps": 0}, ValueError, "steps: expected an integer >= 1"),
    ],
)
def test_a_bad_batch_is_named(cnn, images, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        igw.integrated_gradients_batch(cnn, images, **kwargs)


def test_one_image_call_refuses_a_batch_but_takes_a_batch_of_one(cnn, image):
    with pytest.raises(ValueError, match=r"image: .*batch of 2.*integrated_gradients_batch"):
        igw.integrated_gradients(cnn, np.stack([image, image]))
    one = igw.integrated_gradients(cnn, image[None], steps=4)
    np.testing.assert_array_equal(
        one.attributions, igw.integrated_gradients(cnn, image, steps=4).attributions
    )


# --- a binary classifier with one output column ------------------------------------------


def _binary_cnn(activation):
    keras.utils.set_random_seed(2)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 127.5, offset=-1),
            keras.layers.Conv2D(4, 3, activation="tanh"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation=activation),
        ]
    )


@pytest.mark.parametrize(("activation", "complement"), [("sigmoid", "1 - s"), (None, "-s")])
def test_a_one_column_model_explains_either_class(image, activation, complement):
    model = _binary_cnn(activation)
    column = float(model(image[None]).numpy()[0, 0])
    other = 1 - column if complement == "1 - s" else -column
    one = igw.integrated_gradients(model, image, target=1, steps=64, baseline="white")
    zero = igw.integrated_gradients(model, image, target=0, steps=64, baseline="white")
    np.testing.assert_allclose(one.scores, [other, column], rtol=1e-5)
    np.testing.assert_allclose(zero.scores, one.scores)
    # The complement's gradients are the column's with the opposite sign.
    np.testing.assert_allclose(zero.attributions, -one.attributions, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(zero.gradients, -one.gradients, rtol=1e-5, atol=1e-12)
    assert zero.score == pytest.approx(other, rel=1e-5)
    assert zero.delta == pytest.approx(one.delta, rel=1e-3, abs=1e-7) and zero.delta < 0.01
    np.testing.assert_allclose(zero.path_scores[0, -1], other, rtol=1e-5)
    top = igw.integrated_gradients(model, image, steps=4)
    assert top.target == int(np.argmax([other, column]))
    with pytest.raises(
        ValueError,
        match=r"target: expected a class index in \[0, 1\] \(the model has one output column: "
        r"1 is the column, 0 its complement; Captum's and PAIR saliency's target=0 is "
        r"target=1 here\), got 2",
    ):
        igw.integrated_gradients(model, image, target=2)


def test_the_readme_recipe_gives_captums_convention_for_one_column(image):
    # Captum reads target=0 of a one-column model as the column itself: the
    # same as target 0 of the model with the column first and a zero column
    # after it, computed here without the one-column rule.
    model = _binary_cnn("sigmoid")
    readme = (REPO / "README.md").read_text()
    recipe = "igw.integrated_gradients(model, image, target=1)  # Captum: ig.attribute(x, target=0)"
    assert recipe in readme
    ours = eval(recipe.split("  #")[0], {"igw": igw, "model": model, "image": image})

    def columns(x):
        column = model(x)
        return keras.ops.concatenate([column, keras.ops.zeros_like(column)], axis=1)

    captum = igw.integrated_gradients(columns, image, target=0)
    np.testing.assert_allclose(ours.attributions, captum.attributions, rtol=1e-5, atol=1e-9)
    assert ours.score == pytest.approx(captum.score, rel=1e-6)
    # The docstring says the same.
    assert "their ``target=0`` is ``target=1``" in igw.integrated_gradients.__doc__


def test_a_torch_module_ending_in_a_sigmoid_is_a_probability():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 1), torch.nn.Sigmoid())
    image = random_image(size=4)
    res = igw.integrated_gradients(model, image, target=0, steps=8)
    with torch.no_grad():
        p = float(model(torch.tensor(image[None]))[0, 0])
    np.testing.assert_allclose(res.scores, [1 - p, p], rtol=1e-5)
