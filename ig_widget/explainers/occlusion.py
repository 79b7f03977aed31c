"""Occlusion: how much the target score drops when a window of the image is replaced.

Zeiler and Fergus 2014, as Captum's ``Occlusion`` computes it: a window of
``window`` pixels (all channels) slides over the image by ``stride``,
starting at the top left; along each axis there are
``ceil((size - window) / stride) + 1`` positions, the last ones cut off at the
image's edge. For each position the window's pixels are set to the
baseline's and the model runs once; the drop ``score(image) -
score(occluded)`` is added to every pixel (and channel) the window covered,
and each pixel's total is divided by the number of windows that covered it
(pixels no window covers, when ``stride`` exceeds ``window``, get 0).

The occluded images are made batch by batch as the engine's evaluator asks
for them (``evaluate_scores``: forward passes only, batched, with progress
and cancellation), so no more than a batch of them is held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..options import IGOptions
from ..points import ProgressCallback, evaluate_scores
from ..validation import as_image, check_int
from .base import AttributionResult, start
from .common import baseline_name, baseline_row


def check_pair(name: str, value: Any) -> tuple[int, int]:
    """An int >= 1 or a pair of them, as (rows, columns), or raise naming ``name``.

    Examples
    --------
    >>> check_pair("window", 4), check_pair("stride", (2, 3))
    ((4, 4), (2, 3))
    >>> check_pair("window", (0, 2))
    Traceback (most recent call last):
    ...
    ValueError: window: expected an integer >= 1, got 0
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(
                f"{name}: expected an integer or a pair (rows, columns), got {value!r}"
            )
        first, second = value
        return check_int(name, first, low=1), check_int(name, second, low=1)
    size = check_int(name, value, low=1)
    return size, size


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Where the windows start along one axis (Captum's positions).

    Examples
    --------
    >>> window_starts(16, 5, 4).tolist()
    [0, 4, 8, 12]
    """
    return np.arange(math.ceil((size - window) / stride) + 1) * stride


class OccludedRows:
    """The image with one window set to the baseline, per window, made on demand."""

    def __init__(
        self,
        image: np.ndarray,
        baseline: np.ndarray,
        corners: np.ndarray,
        window: tuple[int, int],
    ) -> None:
        self.image = image
        self.baseline = baseline
        self.corners = corners
        self.window = window
        self.shape = tuple(image.shape)

    def __len__(self) -> int:
        return len(self.corners)

    def region(self, index: int) -> tuple[slice, slice]:
        """The rows and columns window ``index`` covers."""
        top, left = self.corners[index].tolist()
        return slice(top, top + self.window[0]), slice(left, left + self.window[1])

    def take(self, indices: np.ndarray) -> np.ndarray:
        out = np.repeat(self.image[None], len(indices), axis=0)
        for row, index in enumerate(np.asarray(indices).tolist()):
            rows, columns = self.region(index)
            out[row, rows, columns] = self.baseline[rows, columns]
        return out


def occlusion(
    model: Any,
    image: Any,
    *,
    window: int | tuple[int, int] = 8,
    stride: int | tuple[int, int] | None = None,
    target: Any = None,
    baseline: str | np.ndarray = "black",
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Occlusion of ``model``'s ``target`` score at ``image`` by a sliding window.

    Parameters
    ----------
    model, image, target, preprocess, batch_size, seed, pixel_range, precision, class_names
        As for ``integrated_gradients``; the model needs no gradient.
    window : int or (int, int)
        The window's height and width in pixels (one int: a square).
    stride : int or (int, int), optional
        The step between windows; default half the window (at least 1).
    baseline : str or array
        What an occluded window shows: ``"black"``, ``"white"``, ``"blur"``,
        ``"uniform"`` (one draw, with ``seed``) or an array, as for
        ``integrated_gradients``.
    progress : callable, optional
        ``progress(done, total)`` counts occluded images (forward passes).

    Returns
    -------
    AttributionResult
        ``explainer="occlusion"``; ``attributions`` (H, W, C) in score
        units; ``parameters`` holds ``window``, ``stride``, ``baseline``;
        ``points_used`` is the number of occluded images (forward passes).

    Examples
    --------
    For a linear model each non-overlapping window's drop is ``w * x``
    summed over the window (black baseline):

    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(tf.reduce_sum(x, axis=[1, 2, 3]), (-1, 1)) * [[1.0, -1.0]]
    >>> image = np.arange(4.0).reshape(2, 2, 1)
    >>> res = occlusion(model, image, window=(1, 2), stride=(1, 2), target=0)
    >>> res.attributions[..., 0].tolist(), res.points_used
    ([[1.0, 1.0], [5.0, 5.0]], 2)
    """
    converted = as_image(image)
    height, width = converted.shape[:2]
    window_size = check_pair("window", window)
    if window_size[0] > height or window_size[1] > width:
        raise ValueError(
            f"window: expected at most the image's size {(height, width)}, got {window_size}"
        )
    halves = (max(1, window_size[0] // 2), max(1, window_size[1] // 2))
    stride_size = halves if stride is None else check_pair("stride", stride)
    options = IGOptions(
        target=target,
        baseline=baseline,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    # Made before the model runs, so that a bad baseline fails first.
    baseline_image = baseline_row(converted, options)
    started = start(model, converted, options, progress)
    tops = window_starts(height, window_size[0], stride_size[0])
    lefts = window_starts(width, window_size[1], stride_size[1])
    corners = np.stack(np.meshgrid(tops, lefts, indexing="ij"), axis=-1).reshape(-1, 2)
    rows = OccludedRows(started.image, baseline_image, corners, window_size)
    scores = evaluate_scores(
        started.prepared.classifier,
        rows,
        batch_size=options.batch_size,
        progress=progress,
        describe=lambda index: f"the image occluded at (row, column) {tuple(corners[index])}",
    )
    classifier = started.prepared.classifier
    # The explained score: one class's, or a contrast's difference of two.
    explained = classifier.target_scores(scores, np.full(len(scores), started.target))
    before = classifier.target_scores(started.prepared.scores[None], np.array([started.target]))
    drops = before[0] - explained
    total = np.zeros((height, width), np.float64)
    covered = np.zeros((height, width), np.int64)
    for index, drop in enumerate(drops.tolist()):
        region = rows.region(index)
        total[region] += drop
        covered[region] += 1
    per_pixel = np.divide(total, covered, out=np.zeros_like(total), where=covered > 0)
    attributions = np.repeat(per_pixel[..., None], converted.shape[2], axis=2)
    parameters = {
        "window": window_size,
        "stride": stride_size,
        "baseline": baseline_name(options.baseline),
    }
    return started.result(attributions, "occlusion", parameters, len(rows))
