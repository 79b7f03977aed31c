"""Expected Gradients (Erion et al. 2021, "Improving performance of deep learning
models with axiomatic attribution priors and expected gradients").

Integrated gradients averaged over baselines drawn from a set of reference
images, estimated by sampling: each sample draws a reference ``r`` and a
position ``alpha ~ U(0, 1)`` and contributes ``(x - r) * dF/dx`` at
``r + alpha * (x - r)``. In expectation the attributions sum to ``F(x)``
minus the mean score over the references. All samples go through the
engine's evaluator as one point set: the references are the start rows, the
image the end row, the direction folded into the sum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..options import IGOptions
from ..points import PointSet, ProgressCallback, evaluate_points
from ..validation import as_image, check_int, to_numpy
from .base import AttributionResult, start

MAX_SAMPLES = 100_000


def _check_references(references: Any) -> np.ndarray:
    """Reference images as float32 (N, H, W, C), or raise naming ``references``."""
    if references is None or isinstance(references, (str, bytes)):
        raise TypeError(
            "references: expected an array (N, H, W, C) or a sequence of images, "
            f"got {type(references).__name__}"
        )
    if isinstance(references, Sequence):
        if len(references) == 0:
            raise ValueError("references: expected at least one image, got none")
        images = [as_image(r, name=f"references[{i}]") for i, r in enumerate(references)]
        if any(image.shape != images[0].shape for image in images):
            shapes = sorted({image.shape for image in images})
            raise ValueError(f"references: expected images of one shape, got shapes {shapes}")
        return np.stack(images)
    array = to_numpy(references, name="references", expected="an array (N, H, W, C)")
    if array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(
            f"references: expected an array of shape (N, H, W, C) with N >= 1, got {array.shape}"
        )
    return np.stack([as_image(r, name=f"references[{i}]") for i, r in enumerate(array)])


def expected_gradients(
    model: Any,
    image: Any,
    *,
    references: Any = None,
    samples: int = 200,
    seed: int | None = None,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Expected gradients of ``model``'s ``target`` score at ``image`` over ``references``.

    Parameters
    ----------
    model, image, target, preprocess, batch_size, progress, precision, class_names
        As for ``integrated_gradients``.
    references : array (N, H, W, C) or sequence of images
        The baselines' distribution: typically training images. Each of the
        image's shape. Required (its default, None, is refused; it is a
        keyword with a default only so the function is an ``Explainer``).
    samples : int
        Number of (reference, alpha) draws; one gradient evaluation each
        (SHAP's ``GradientExplainer`` default: 200).
    seed : int, optional
        Seed of the draws.

    Returns
    -------
    AttributionResult
        ``explainer="expected_gradients"``; ``parameters`` holds
        ``samples``, ``seed`` and ``references`` (their count).

    Examples
    --------
    For a linear model every sample gives ``w * (x - r)``: the result is ``w``
    times the image minus the references' mean (up to which were drawn).

    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> refs = np.full((1, 1, 1, 3), 4.0)  # one reference: exact
    >>> res = expected_gradients(model, np.full((1, 1, 3), 10.0), references=refs, samples=5)
    >>> res.attributions.ravel().round(4).tolist()
    [6.0, 12.0, 18.0]
    """
    reference_images = _check_references(references)
    samples = check_int("samples", samples, low=1, high=MAX_SAMPLES)
    image = as_image(image)
    if reference_images.shape[1:] != image.shape:
        raise ValueError(
            f"references: expected images of the image's shape {image.shape}, "
            f"got {reference_images.shape[1:]}"
        )
    options = IGOptions(
        target=target,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        precision=precision,
        class_names=class_names,
    )
    started = start(model, image, options, progress)
    rng = np.random.default_rng(started.options.seed)
    drawn = rng.integers(0, len(reference_images), samples)
    alphas = rng.uniform(0.0, 1.0, samples)
    points = PointSet(
        reference_images,
        started.image[None],
        drawn,
        np.zeros(samples, np.int64),
        alphas,
        np.full(samples, 1.0 / samples),
        np.ones(samples),
        np.full(samples, started.target),
        np.zeros(samples, np.int64),
        n_segments=1,
        labels=[f"reference {r}, alpha {a:.6g}" for r, a in zip(drawn, alphas, strict=True)],
    )
    sums, _ = evaluate_points(
        started.prepared.classifier,
        points,
        batch_size=started.options.batch_size,
        progress=progress,
    )
    assert sums is not None
    parameters = {
        "samples": samples,
        "seed": started.options.seed,
        "references": len(reference_images),
    }
    return started.result(sums[0], "expected_gradients", parameters, samples)
