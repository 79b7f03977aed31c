"""Point sets and their evaluators: per-point rows, lazy baselines, errors from any batch."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
import torch

import ig_widget as igw
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

from .models import random_image, tiny_cnn


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


def _tape_gradient(model, point, target):
    point = tf.constant(point[None])
    with tf.GradientTape() as tape:
        tape.watch(point)
        score = model(point)[:, target]
    return tape.gradient(score, point).numpy()[0]


def test_one_segment_per_point_gives_per_point_gradients(cnn):
    image = random_image()
    prepared = prepare(cnn, image)
    others = np.stack([random_image(seed=s) for s in (5, 6)])
    # Points on lines from the image to two other images, per-point targets.
    alphas = np.array([0.0, 0.3, 1.0, 0.7, 0.5])
    end_index = np.array([0, 0, 1, 1, 0])
    targets = np.array([0, 1, 2, 3, 1])
    points = PointSet(
        image[None],
        others,
        np.zeros(5),
        end_index,
        alphas,
        np.full(5, 2.0),
        np.zeros(5),
        targets,
        np.arange(5),
        n_segments=5,
    )
    sums, scores = evaluate_points(prepared.classifier, points, batch_size=2, all_scores=True)
    for b in range(5):
        point = image + alphas[b] * (others[end_index[b]] - image)
        expected = 2.0 * _tape_gradient(cnn, point, targets[b])
        np.testing.assert_allclose(sums[b], expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
        np.testing.assert_allclose(scores[b], cnn(point[None]).numpy()[0], rtol=1e-5, atol=1e-6)
    # The same points with a statistic over per-point gradients, nothing kept per point.
    squares = np.zeros(image.shape)

    def accumulate(ids, batch_sums):
        squares[...] += np.sum(batch_sums[: len(ids)].astype(np.float64) ** 2, axis=0)

    none, _ = evaluate_points(prepared.classifier, points, batch_size=3, accumulate=accumulate)
    assert none is None
    np.testing.assert_allclose(squares, np.sum(sums**2, axis=0), rtol=1e-5)


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
    assert seen == [3, 6, 9, 10]
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
    assert len(calls) >= 10 and calls[-1] == (102, 102)
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
