"""Point sets and their evaluators: per-point rows, lazy baselines, errors from any batch."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
from ig_widget import batching
from ig_widget.backends import backend_for
from ig_widget.baselines import make_baselines
from ig_widget.engine import prepare
from ig_widget.options import IGOptions
from ig_widget.points import (
    ComputationCancelled,
    PointSet,
    UniformRows,
    evaluate_points,
    evaluate_scores,
)

from .models import channels_first, plain_targets_both_ways, random_image, tiny_cnn, torch_cnn


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


def _tape_gradient(model, point, target):
    point = tf.constant(point[None])
    with tf.GradientTape() as tape:
        tape.watch(point)
        score = model(point)[:, target]
    return tape.gradient(score, point).numpy()[0]


# Five points on lines from an image to two other images, each with its own target.
FIVE_ALPHAS = np.array([0.0, 0.3, 1.0, 0.7, 0.5])
FIVE_ENDS = np.array([0, 0, 1, 1, 0])
FIVE_TARGETS = np.array([0, 1, 2, 3, 1])


def _five_points(segments):
    """The image, its five points (weight 2) summed into ``segments``, and where each point is."""
    image = random_image()
    others = np.stack([random_image(seed=s) for s in (5, 6)])
    points = PointSet(
        image[None], others, np.zeros(5), FIVE_ENDS, FIVE_ALPHAS, np.full(5, 2.0), np.zeros(5),
        FIVE_TARGETS, segments, n_segments=int(np.max(segments)) + 1,
    )  # fmt: skip
    pairs = zip(FIVE_ALPHAS, FIVE_ENDS, strict=True)
    where = [image + alpha * (others[end] - image) for alpha, end in pairs]
    return image, points, where


def test_one_segment_per_point_gives_per_point_gradients(cnn):
    image, points, where = _five_points(np.arange(5))
    prepared = prepare(cnn, image)
    sums, scores = evaluate_points(prepared.classifier, points, batch_size=2, all_scores=True)
    for b, point in enumerate(where):
        expected = 2.0 * _tape_gradient(cnn, point, FIVE_TARGETS[b])
        np.testing.assert_allclose(sums[b], expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
        np.testing.assert_allclose(scores[b], cnn(point[None]).numpy()[0], rtol=1e-5, atol=1e-6)
    # The same points with a statistic over per-point gradients, nothing kept per point.
    squares = np.zeros(image.shape)

    def accumulate(ids, batch_sums):
        squares[...] += np.sum(batch_sums[: len(ids)].astype(np.float64) ** 2, axis=0)

    none, _ = evaluate_points(prepared.classifier, points, batch_size=3, accumulate=accumulate)
    assert none is None
    np.testing.assert_allclose(squares, np.sum(sums**2, axis=0), rtol=1e-5)


def test_points_reach_the_backend_grouped_and_come_back_in_their_order(cnn):
    # The backend sums sorted segments: the engine sends a batch's points with
    # their groups in order, and hands back each point's scores where it was.
    segments = np.array([2, 0, 2, 1, 0])
    image, points, where = _five_points(segments)
    prepared = prepare(cnn, image)
    backend = prepared.classifier.backend
    original = backend.gradient_sums
    sent_groups = []

    def recording(*args):
        sent_groups.append(np.asarray(args[2])[:, 2].copy())
        return original(*args)

    backend.gradient_sums = recording
    try:
        sums, scores = evaluate_points(prepared.classifier, points, batch_size=5, all_scores=True)
    finally:
        del backend.gradient_sums
    assert len(sent_groups) == 1 and np.all(np.diff(sent_groups[0]) >= 0)
    expected = np.zeros((3, *image.shape))
    for b, point in enumerate(where):
        expected[segments[b]] += 2.0 * _tape_gradient(cnn, point, FIVE_TARGETS[b])
        np.testing.assert_allclose(scores[b], cnn(point[None]).numpy()[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sums, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_uniform_rows_do_not_depend_on_the_batch(cnn):
    image = random_image()
    results = [
        igw.integrated_gradients(
            cnn, image, steps=6, runs=5, baseline="uniform", seed=4, batch_size=size
        )
        for size in (1, 4, 36)
    ]
    for other in results[1:]:
        np.testing.assert_allclose(
            other.attributions, results[0].attributions, rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(other.baseline_scores, results[0].baseline_scores, rtol=1e-6)
    rows = UniformRows(5, image.shape, (0.0, 255.0), seed=4)
    np.testing.assert_array_equal(
        rows.take(np.arange(5)), make_baselines(image, "uniform", 5, seed=4)
    )


def test_ten_thousand_uniform_baselines_never_hold_runs_times_the_image():
    image = random_image(size=32)
    weights = np.random.default_rng(0).normal(size=(image.size, 2)).astype(np.float32)
    model = lambda x: tf.reshape(x, (-1, image.size)) @ weights  # noqa: E731
    igw.integrated_gradients(model, image, steps=1, runs=2, baseline="uniform", seed=0)
    tracemalloc.start()
    try:
        res = igw.integrated_gradients(model, image, steps=1, runs=10_000, baseline="uniform")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    runs_times_image = 10_000 * image.nbytes  # 123 MB
    assert peak < runs_times_image / 5, f"peak {peak / 2**20:.0f} MiB"
    assert res.path_scores.shape == (10_000, 2) and res.delta < 1e-3


def test_progress_returning_numpy_false_cancels_and_none_goes_on(cnn):
    image = random_image()
    seen = []
    igw.integrated_gradients(
        cnn, image, steps=8, batch_size=3, progress=lambda d, t: seen.append(d)
    )
    assert seen == [3, 6, 9]
    with pytest.raises(ComputationCancelled):
        igw.integrated_gradients(
            cnn, image, steps=8, batch_size=3, progress=lambda d, t: np.bool_(d < 6)
        )
    igw.integrated_gradients(cnn, image, steps=8, batch_size=3, progress=lambda d, t: 0)


def test_progress_updates_ask_for_granularity_within_the_rule(cnn):
    image = random_image()
    prepared = prepare(cnn, image)
    calls = []
    igw.engine.run(
        prepared,
        IGOptions(steps=100, batch_size=64),
        progress=lambda d, t: calls.append((d, t)),
        progress_updates=10,
    )
    assert len(calls) >= 10 and calls[-1] == (101, 101)
    sizes = np.diff([0] + [d for d, _ in calls])
    assert sizes.max() <= 64


class _FailingModule(torch.nn.Module):
    """Fine on one image; raises ``error`` on any larger batch (the gradient batches)."""

    def __init__(self, error):
        super().__init__()
        self.linear = torch.nn.Linear(48, 3)
        self.error = error

    def forward(self, x):
        if x.shape[0] > 1:
            raise self.error
        return self.linear(x.flatten(1))


@pytest.mark.parametrize(
    "error", [RuntimeError("cuDNN failure"), KeyError("layer"), NotImplementedError()]
)
def test_model_errors_of_any_type_on_any_batch_name_the_model(error):
    with pytest.raises(
        ValueError, match=r"model: failed on a batch of shape \(\d+, 4, 4, 3\)"
    ) as info:
        igw.integrated_gradients(_FailingModule(error), random_image(size=4), steps=4)
    assert info.value.__cause__ is error
    assert type(error).__name__ in str(info.value)


def test_keyboard_interrupt_from_the_model_is_not_swallowed():
    with pytest.raises(KeyboardInterrupt):
        igw.integrated_gradients(_FailingModule(KeyboardInterrupt()), random_image(size=4), steps=4)


def test_forward_evaluator_batches_and_checks(cnn):
    image = random_image()
    prepared = prepare(cnn, image)
    many = np.stack([random_image(seed=s) for s in range(11)])
    calls = []
    scores = evaluate_scores(
        prepared.classifier, many, batch_size=4, progress=lambda d, t: calls.append((d, t))
    )
    np.testing.assert_allclose(scores, cnn(many).numpy(), rtol=1e-5, atol=1e-6)
    assert calls == [(4, 11), (8, 11), (11, 11)]
    with pytest.raises(ComputationCancelled):
        evaluate_scores(prepared.classifier, many, batch_size=4, progress=lambda d, t: False)


# --- reproducibility: the tuner's batch never changes a result ----------------------


@pytest.fixture(scope="module")
def demo():
    # TensorFlow's CPU kernels compute a point of this model differently in a
    # batch of 8 or 24 than in one of 16 or 64 (last bits), so only whole
    # blocks of points keep results identical.
    images, _, _ = igw.demo.make_shapes(2, seed=3)
    return igw.demo.model(), images


def _at_tuner_batches(model, image, compute, sizes=(16, 48, 64)):
    """``compute()`` with the engine's tuner fixed at each of ``sizes`` points, and the
    batch sizes the backend was sent each time."""
    backend = backend_for(model, None)
    tuner = batching.tuner_for(backend, model, image, "gradients")
    saved = tuner.size, tuner.fixed
    original = backend.gradient_sums
    results, sent = [], []
    try:
        for size in sizes:
            tuner.size, tuner.fixed = min(size, tuner.limit), True
            calls = []

            def counting(*args, calls=calls):
                calls.append(len(args[2]))
                return original(*args)

            backend.gradient_sums = counting
            results.append(compute())
            sent.append(calls)
    finally:
        del backend.gradient_sums
        tuner.size, tuner.fixed = saved
    return results, sent


def _assert_identical(results, fields):
    for result in results[1:]:
        for field in fields:
            np.testing.assert_array_equal(getattr(result, field), getattr(results[0], field))


@pytest.mark.parametrize(
    ("method", "kwargs", "fields"),
    [
        (igw.integrated_gradients, {"runs": 5, "baseline": "uniform", "seed": 0, "steps": 20},
         ("attributions", "gradients", "path_scores")),
        (igw.smoothgrad, {"samples": 70, "seed": 0}, ("attributions",)),
        (igw.smoothgrad, {"samples": 4, "seed": 0, "of": "integrated_gradients", "steps": 20,
                          "kind": "vargrad"}, ("attributions",)),
        (igw.expected_gradients, {"samples": 70, "seed": 0}, ("attributions",)),
        (igw.blur_ig, {"steps": 70}, ("attributions",)),
        (igw.xrai, {"steps": 40, "seed": 0}, ("attributions", "ranks", "base_attributions")),
    ],
)  # fmt: skip
def test_results_are_identical_bit_for_bit_whatever_batch_the_tuner_picks(
    demo, method, kwargs, fields
):
    model, images = demo
    if method is igw.expected_gradients:
        kwargs = {**kwargs, "references": images[1:]}
    results, sent = _at_tuner_batches(model, images[0], lambda: method(model, images[0], **kwargs))
    assert len({max(calls) for calls in sent}) == 3  # three different batch sizes
    _assert_identical(results, fields)


def test_a_dataset_is_identical_bit_for_bit_whatever_batch_the_tuner_picks(demo, tmp_path):
    model, _ = demo
    images, _, _ = igw.demo.make_shapes(5, seed=4)
    stores = iter(range(100))

    def explain():
        store = tmp_path / str(next(stores))
        igw.explain_dataset(model, images, steps=20, chunk_size=4, store=store, progress=False)
        return igw.open_dataset(store)

    results, sent = _at_tuner_batches(model, images[0], explain, sizes=(16, 64))
    # 16 points a call, the last of a chunk with the points left over (fewer than 16).
    assert max(sent[0]) < 2 * batching.BLOCK and max(sent[1]) == 64
    for index in range(len(images)):
        _assert_identical([r[index] for r in results], ("attributions", "gradients"))


def test_the_work_of_a_batch_does_not_grow_with_the_number_of_images(cnn):
    """Bytes sent to and returned from the backend per call, with 16 and with 128
    images sharing calls: bounded by the points of the call, not by the images."""
    backend = backend_for(cnn, None)
    original = backend.gradient_sums
    # The automatic batch, started at 16 points: its limit (256 here) would
    # let a whole chunk's rows and segments through at once.
    tuner = batching.tuner_for(backend, cnn, random_image(), "gradients")
    tuner.size, tuner.fixed = 16, True
    assert tuner.limit >= 256
    image_bytes = random_image().astype(np.float32).nbytes
    try:
        for count in (16, 128):
            calls = []

            def counting(*args, calls=calls):
                sums, scores = original(*args)
                calls.append((len(args[2]), sum(np.asarray(a).nbytes for a in args) + sums.nbytes))
                return sums, scores

            backend.gradient_sums = counting
            images = [random_image(seed=s) for s in range(count)]
            igw.integrated_gradients_batch(cnn, images, steps=4)
            # 5 path points per image, the last the image's own.
            assert sum(points for points, _ in calls) == count * 5
            # At most two rows per point in and one sum per point out.
            for points, sent in calls:
                assert sent <= 3 * points * image_bytes + 64 * points
    finally:
        del backend.gradient_sums


def test_a_torch_module_takes_one_column_for_plain_targets_bit_for_bit():
    one, two, columns_sent = plain_targets_both_ways(torch_cnn(), channels_first)
    assert columns_sent == 1
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_plain_targets_beside_a_contrast_in_one_batch_keep_their_sums(cnn):
    # A batch holding a contrast sends two columns for every point; the plain
    # points' sums are those of a batch of plain points only.
    image = random_image()
    prepared = prepare(cnn, image, IGOptions())
    classifier = prepared.classifier
    rng = np.random.default_rng(2)
    rows = rng.uniform(0, 255, (2, *image.shape)).astype(np.float32)
    plain = [0, 3, 1, 2]
    contrast = classifier.contrast(2, 1)

    def sums(targets):
        count = len(targets)
        points = PointSet(
            rows,
            rows,
            start_index=[0] * count,
            end_index=[1] * count,
            alphas=[0.1, 0.3, 0.5, 0.7, 0.9][:count],
            weights=[0.5] * count,
            directional=[1] * count,
            targets=targets,
            segments=np.arange(count),
            n_segments=count,
        )
        return evaluate_points(classifier, points, batch_size=count)

    alone, alone_scores = sums(plain)
    mixed, mixed_scores = sums([*plain, contrast])
    np.testing.assert_allclose(mixed[:4], alone, rtol=1e-6, atol=1e-6 * np.abs(alone).max())
    np.testing.assert_allclose(mixed_scores[:4], alone_scores, rtol=1e-6)
    # The contrast point is the difference of its two classes' points.
    point = sums([*plain, 2])[0][4] - sums([*plain, 1])[0][4]
    np.testing.assert_allclose(mixed[4], point, rtol=1e-5, atol=1e-5 * np.abs(point).max())
