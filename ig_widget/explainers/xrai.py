"""XRAI (Kapishnikov et al. 2019): integrated gradients summed into image regions.

Integrated gradients from a black and a white baseline (averaged; both paths
share the model calls), reduced to one value per pixel by the maximum over
the channels, then the regions of ``regions.felzenszwalb_regions`` ranked by
``regions.rank_regions``. Other attributions (Guided IG, SmoothGrad, ...)
can be ranked instead by passing them as ``attributions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..options import IGOptions
from ..points import PointSet, ProgressCallback, evaluate_points
from ..quadrature import integration_points
from ..validation import as_image, check_int, to_numpy
from .base import AttributionResult, check_fraction, start
from .common import baseline_name, baseline_rows, check_attributions
from .regions import MIN_PIXEL_DIFF, felzenszwalb_regions, rank_regions, require_scikit_image

DEFAULT_BASELINES = ("black", "white")


@dataclass(frozen=True, eq=False)
class XRAIResult(AttributionResult):
    """An ``AttributionResult`` with XRAI's regions.

    Attributes
    ----------
    attributions : ndarray, float32 (H, W, 1)
        Each pixel's value: the mean attribution over the new pixels of the
        region that first covered it.
    ranks : ndarray, int (H, W)
        Each pixel's region rank, 1 = most attributed; ``ranks <= k`` is the
        image's k most important regions.
    base_attributions : ndarray, float32 (H, W, C)
        The attributions the regions were ranked by (integrated gradients
        unless given).
    """

    ranks: np.ndarray | None = None
    base_attributions: np.ndarray | None = None

    def top_regions(self, area: float) -> np.ndarray:
        """The most attributed regions that together cover at most ``area`` of
        the image (a share in [0, 1]), as a boolean mask (H, W).

        Whole regions are taken in rank order while they fit (at least the first).
        """
        area = check_fraction("area", area)
        assert self.ranks is not None
        counts = np.bincount(self.ranks.ravel())[1:]
        covered = np.cumsum(counts) / self.ranks.size
        keep = max(1, int(np.searchsorted(covered, area, side="right")))
        return self.ranks <= keep


def _check_segments(segments: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """Candidate regions as boolean masks (R, H, W), from masks or a label image (H, W)."""
    if segments is None:
        return None
    if isinstance(segments, Sequence) and not isinstance(segments, (str, bytes)):
        if len(segments) == 0:
            raise ValueError("segments: expected at least one region, got none")
        segments = np.stack([to_numpy(mask, name="segments") for mask in segments])
    array = to_numpy(segments, name="segments", expected="boolean masks or a label image")
    if array.ndim == 2 and np.issubdtype(array.dtype, np.integer):
        labels = np.unique(array)
        array = array[None] == labels[:, None, None]
    if array.dtype != bool or array.ndim != 3:
        raise ValueError(
            "segments: expected boolean masks (R, H, W) or an integer label image (H, W), "
            f"got {array.dtype} of shape {array.shape}"
        )
    if array.shape[1:] != shape:
        raise ValueError(
            f"segments: expected masks of the image's size {shape}, got {array.shape[1:]}"
        )
    return array


def xrai(
    model: Any,
    image: Any,
    *,
    attributions: Any = None,
    segments: Any = None,
    baselines: Sequence[str | np.ndarray] = DEFAULT_BASELINES,
    steps: int = 50,
    method: str = "trapezoid",
    area_threshold: float = 1.0,
    min_pixel_diff: int = MIN_PIXEL_DIFF,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> XRAIResult:
    """XRAI of ``model``'s ``target`` score at ``image``: attributions by region.

    Parameters
    ----------
    model, image, target, preprocess, batch_size, seed, progress, pixel_range, precision
    class_names
        As for ``integrated_gradients``.
    attributions : array (H, W, C) or (H, W), optional
        Attributions to rank regions by; default integrated gradients from
        ``baselines``.
    segments : boolean masks (R, H, W) or integer label image (H, W), optional
        Candidate regions; default Felzenszwalb's segmentation at six scales,
        dilated (``regions.felzenszwalb_regions``). Earlier regions win ties.
    baselines : sequence of baselines
        Integrated gradients is averaged over paths from each (each as
        ``integrated_gradients``'s ``baseline``); the paper's black and white.
    steps, method
        The integration rule, as for ``integrated_gradients``.
    area_threshold : float
        Rank regions until this share of the image is covered; the rest is
        one last region (1.0 ranks them all).
    min_pixel_diff : int
        Regions that add fewer new pixels are dropped (PAIR saliency's 50).

    Returns
    -------
    XRAIResult
        ``explainer="xrai"``, with ``ranks`` and ``base_attributions``;
        ``points_used`` is 0 when ``attributions`` are given.

    Examples
    --------
    >>> import tensorflow as tf
    >>> image = np.zeros((32, 32, 3), np.float32)
    >>> image[:, 16:] = 200.0
    >>> model = lambda x: tf.reduce_mean(x[:, :, 16:], axis=[1, 2])  # reads the right half
    >>> res = xrai(model, image, target=0, steps=8)
    >>> bool(res.top_regions(0.5)[:, 16:].mean() > 0.9)  # the first half found is the right one
    True
    """
    area_threshold = check_fraction("area_threshold", area_threshold)
    min_pixel_diff = check_int("min_pixel_diff", min_pixel_diff, low=1)
    converted = as_image(image)
    given = None if attributions is None else check_attributions(attributions, converted.shape)
    masks = _check_segments(segments, converted.shape[:2])
    if masks is None:
        require_scikit_image()
    options = IGOptions(
        target=target,
        steps=steps,
        method=method,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    # Made before the model runs, so that a bad baseline fails first.
    rows = baseline_rows(baselines, converted, options) if given is None else None
    started = start(model, converted, options, progress)
    points_used = 0
    if rows is not None:
        alphas, weights = integration_points(options.method, int(options.steps))
        runs, count = len(rows), len(alphas)
        index = np.repeat(np.arange(runs), count)
        points = PointSet(
            rows,
            started.image[None],
            index,
            np.zeros_like(index),
            np.tile(alphas, runs),
            np.tile(weights, runs) / runs,
            np.ones(index.shape),
            np.full(index.shape, started.target),
            np.zeros_like(index),
            n_segments=1,
            labels=[
                f"baseline {r}, alpha {a:.6g}"
                for r, a in zip(index, np.tile(alphas, runs), strict=True)
            ],
        )
        sums, _ = evaluate_points(
            started.prepared.classifier, points, batch_size=options.batch_size, progress=progress
        )
        assert sums is not None
        base = sums[0].astype(np.float32)
        points_used = len(points)
    else:
        base = given
    if masks is None:
        masks = felzenszwalb_regions(started.image)
    values, ranks = rank_regions(
        base.max(axis=-1), masks, area_threshold=area_threshold, min_pixel_diff=min_pixel_diff
    )
    parameters = {
        "baselines": [baseline_name(b) for b in baselines] if given is None else None,
        "steps": options.steps if given is None else None,
        "method": options.method if given is None else None,
        "area_threshold": area_threshold,
        "min_pixel_diff": min_pixel_diff,
        "regions": len(masks),
    }
    return started.result(
        values[..., None],
        "xrai",
        parameters,
        points_used,
        result_type=XRAIResult,
        ranks=ranks,
        base_attributions=base,
    )
