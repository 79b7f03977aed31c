"""Guided IG (Kapishnikov et al. 2021): integrated gradients along an adaptive path.

The path (``guided_path.GuidedPath``) depends on the gradient at each of its
points, so the points are evaluated one after another: one engine evaluation
of one point per step, as in PAIR saliency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..options import IGOptions
from ..points import PointSet, ProgressCallback, evaluate_points, report_progress
from ..validation import as_image, check_int, check_number
from .base import AttributionResult, check_fraction, start
from .common import baseline_name, baseline_row
from .guided_path import GuidedPath

MAX_STEPS = 10_000


def guided_ig(
    model: Any,
    image: Any,
    *,
    baseline: str | np.ndarray = "black",
    steps: int = 200,
    fraction: float = 0.25,
    max_dist: float = 0.02,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Guided IG of ``model``'s ``target`` score at ``image``.

    Parameters
    ----------
    model, image, target, preprocess, seed, pixel_range, precision, class_names
        As for ``integrated_gradients``.
    baseline : {"black", "white", "uniform", "blur"} or array
        Where the path starts.
    steps : int
        Steps of the path, one gradient evaluation each, one after another
        (PAIR saliency's default 200).
    fraction : float
        Share of the features, those with the smallest absolute gradient,
        moved at each step (0, 1].
    max_dist : float
        How far (in alpha, [0, 1]) a feature may stray from the straight
        path: 0 gives integrated gradients on the straight line (a left
        Riemann sum), 1 an unbounded guided path. Completeness holds only as
        far as ``max_dist`` allows: features move in jumps of up to about
        ``max_dist`` of their range, chosen where the gradient is small at
        the jump's start, so ``sum(A)`` misses part of ``F(x) - F(x')``
        however many steps are taken (as in PAIR saliency's implementation).
    progress : callable, optional
        ``progress(done, steps)`` after each step; ``False`` cancels.

    Returns
    -------
    AttributionResult
        ``explainer="guided_ig"``; ``parameters`` holds ``baseline``,
        ``steps``, ``fraction`` and ``max_dist``.

    Examples
    --------
    For a linear model every path gives ``w * (x - x')``:

    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [-2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> res = guided_ig(model, np.full((1, 1, 3), 10.0), steps=20)
    >>> res.attributions.ravel().round(4).tolist(), res.points_used
    ([10.0, -20.0, 30.0], 20)
    """
    steps = check_int("steps", steps, low=1, high=MAX_STEPS)
    fraction = check_fraction("fraction", fraction, open_low=True)
    max_dist = check_number("max_dist", max_dist, low=0.0, high=1.0)
    options = IGOptions(
        target=target,
        baseline=baseline,
        preprocess=preprocess,
        seed=seed,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    converted = as_image(image)
    baseline_image = baseline_row(
        converted, options
    )  # before the model runs: a bad one fails first
    started = start(model, converted, options, progress)
    path = GuidedPath(
        started.image,
        baseline_image,
        steps=steps,
        fraction=fraction,
        max_dist=max_dist,
    )
    for step in range(steps):
        row = path.point.astype(np.float32)[None]
        point = PointSet(
            row, row, [0], [0], [0.0], [1.0], [0], [started.target], [0],
            n_segments=1, labels=[f"step {step} of the guided path"],
        )  # fmt: skip
        # One point per call: an explicit batch of one keeps static-shape
        # backends (JAX) from padding it to a larger bucket.
        gradient, _ = evaluate_points(started.prepared.classifier, point, batch_size=1)
        assert gradient is not None
        path.advance(gradient[0])
        report_progress(progress, step + 1, steps)
    parameters = {
        "baseline": baseline_name(started.options.baseline),
        "steps": steps,
        "fraction": fraction,
        "max_dist": max_dist,
    }
    return started.result(path.attributions, "guided_ig", parameters, steps)
