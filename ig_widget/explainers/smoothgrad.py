"""SmoothGrad, SmoothGrad-squared and VarGrad over gradients or integrated gradients.

Smilkov et al. 2017 ("SmoothGrad: removing noise by adding noise"), Adebayo
et al. 2018 (VarGrad): the attribution of ``samples`` noisy copies of the
image, ``x + N(0, sigma^2)`` with ``sigma = noise * (brightest - darkest)``,
combined by their mean (``"smoothgrad"``), the mean of their squares
(``"smoothgrad_sq"``) or their variance (``"vargrad"``, the mean of squares
minus the squared mean), as PAIR saliency's ``GetSmoothedMask`` and Captum's
``NoiseTunnel`` do.

All noisy copies go through the engine's evaluator together: for the mean,
every point's gradient is summed into one segment; for the squared kinds each
copy has its own segment, and a copy's map is squared and added up as soon as
its last point is done, so no more than the maps of the copies one batch
touches are ever held, however many samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from ..options import IGOptions
from ..points import PointSet, ProgressCallback, evaluate_points
from ..quadrature import integration_points
from ..validation import as_image, check_choice, check_int
from .base import AttributionResult, check_fraction, start
from .common import baseline_name, baseline_row

OF = ("gradients", "integrated_gradients")
KINDS = ("smoothgrad", "smoothgrad_sq", "vargrad")
MAX_SAMPLES = 10_000


class NoisyRows:
    """``samples`` noisy copies of ``image``, drawn on demand and the same in any grouping.

    Copy ``i`` adds ``N(0, sigma^2)`` noise drawn from
    ``SeedSequence(seed, spawn_key=(i, 1))`` (apart from the streams of
    uniform baselines, ``(i,)``); ``seed=None`` draws fresh entropy
    once, at construction. The sum is rounded to float32 once (as a float32
    image plus float64 noise would be when given to a model).

    Examples
    --------
    >>> rows = NoisyRows(np.zeros((2, 2, 1), np.float32), 5.0, 100, seed=0)
    >>> bool(np.array_equal(rows.take(np.array([3]))[0], rows.take(np.arange(4))[3]))
    True
    """

    def __init__(self, image: np.ndarray, sigma: float, samples: int, seed: int | None) -> None:
        self.image = image
        self.sigma = sigma
        self.count = samples
        self.shape = tuple(image.shape)
        self.seed = np.random.SeedSequence(seed).entropy

    def __len__(self) -> int:
        return self.count

    def noise(self, index: int) -> np.ndarray:
        """The float64 noise of copy ``index``."""
        sequence = np.random.SeedSequence(self.seed, spawn_key=(index, 1))
        return np.random.default_rng(sequence).normal(0.0, self.sigma, self.shape)

    def take(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.shape), np.float32)
        for row, index in enumerate(np.asarray(indices).tolist()):
            out[row] = self.image + self.noise(index)
        return out


class _Moments:
    """Running sums of whole copies' maps and of their squares, batch by batch.

    The evaluator's ``accumulate``. Points come copy by copy, so a copy's map
    (one gradient, or its integrated gradients over several batches) is
    complete once a later copy has points: the partial maps of the copies a
    batch touches are kept, and each is folded into both sums as soon as it
    is complete, so memory does not grow with the number of copies. Rows that
    are all zeros (copies the batch does not touch) add nothing and are
    skipped; a touched copy whose partial map is zero is then folded in later,
    with the same result.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.total = np.zeros(shape, np.float64)
        self.squares = np.zeros(shape, np.float64)
        self._partial: dict[int, np.ndarray] = {}

    def __call__(self, segment_ids: np.ndarray, sums: np.ndarray) -> None:
        touched = []
        for copy, row in zip(segment_ids.tolist(), sums[: len(segment_ids)], strict=True):
            if not row.any():
                continue
            touched.append(copy)
            if copy in self._partial:
                self._partial[copy] += row
            else:
                self._partial[copy] = row.astype(np.float64)
        if touched:
            self._fold(below=max(touched))

    def finish(self) -> None:
        """Fold in the copies still open after the last batch."""
        self._fold(below=None)

    def _fold(self, below: int | None) -> None:
        for copy in sorted(self._partial):
            if below is not None and copy >= below:
                break
            whole = self._partial.pop(copy)
            self.total += whole
            self.squares += np.square(whole)


def smoothgrad(
    model: Any,
    image: Any,
    *,
    of: Literal["gradients", "integrated_gradients"] = "gradients",
    kind: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad",
    samples: int = 25,
    noise: float = 0.15,
    target: Any = None,
    baseline: str | np.ndarray = "black",
    steps: int = 50,
    method: str = "trapezoid",
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """SmoothGrad of ``model``'s ``target`` score at ``image``: noisy copies' maps, combined.

    Parameters
    ----------
    model, image, target, preprocess, batch_size, progress, pixel_range, precision, class_names
        As for ``integrated_gradients``; ``progress(done, total)`` counts
        gradient evaluations.
    of : {"gradients", "integrated_gradients"}
        The attribution of each noisy copy: its plain gradient, or integrated
        gradients from ``baseline`` to it (``steps`` intervals of ``method``).
    kind : {"smoothgrad", "smoothgrad_sq", "vargrad"}
        Mean, mean of squares, or variance of the copies' attributions.
    samples : int
        Number of noisy copies (PAIR saliency's default 25; Captum's 5).
    noise : float
        Standard deviation of the Gaussian noise as a fraction of the pixel
        range, ``pixel_range[1] - pixel_range[0]`` (PAIR saliency takes the
        fraction of the image's own range, ``max(x) - min(x)``, which is the
        same for an image that uses the full range). Smilkov et al. found
        0.1-0.2 best. Noisy values are not clipped, as in both peers.
    baseline, steps, method
        For ``of="integrated_gradients"``: as for ``integrated_gradients``
        (one baseline, made from the original image, for every copy).
    seed : int, optional
        Seed of the noise (and of a ``"uniform"`` baseline).

    Returns
    -------
    AttributionResult
        ``explainer="smoothgrad"``; ``parameters`` holds ``of``, ``kind``,
        ``samples``, ``noise``, ``sigma`` (in pixel units), ``seed`` and, for
        integrated gradients, ``baseline``, ``steps``, ``method``.

    Examples
    --------
    For a linear model every copy has the same gradient, the weights:

    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [-2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> res = smoothgrad(model, np.full((1, 1, 3), 100.0), samples=8, seed=0)
    >>> res.attributions.ravel().tolist(), res.points_used
    ([1.0, -2.0, 3.0], 8)
    >>> float(smoothgrad(model, np.ones((1, 1, 3)), kind="vargrad", samples=8).attributions.max())
    0.0
    """
    checked_of = check_choice("of", of, OF)
    checked_kind = check_choice("kind", kind, KINDS)
    samples = check_int("samples", samples, low=1, high=MAX_SAMPLES)
    noise = check_fraction("noise", noise)
    integrated = checked_of == "integrated_gradients"
    options = IGOptions(
        target=target,
        baseline=baseline,
        steps=steps,
        method=method,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    converted = as_image(image)
    # Made before the model runs, so that a bad baseline fails first.
    baseline_image = baseline_row(converted, options) if integrated else None
    started = start(model, converted, options, progress)
    low, high = options.pixel_range
    sigma = noise * (high - low)
    noisy = NoisyRows(started.image, sigma, samples, options.seed)
    if baseline_image is not None:
        alphas, weights = integration_points(options.method, int(options.steps))
        starts: np.ndarray | NoisyRows = baseline_image[None]
    else:
        # A plain gradient is the point at alpha = 0 on a path starting at the copy.
        alphas, weights = np.zeros(1), np.ones(1)
        starts = noisy
    per_copy = len(alphas)
    copy_of = np.repeat(np.arange(samples), per_copy)
    squared = checked_kind != "smoothgrad"
    points = PointSet(
        starts,
        noisy,
        np.zeros_like(copy_of) if integrated else copy_of,
        copy_of,
        np.tile(alphas, samples),
        np.tile(weights, samples) * (1.0 if squared else 1.0 / samples),
        np.full(copy_of.shape, 1.0 if integrated else 0.0),
        np.full(copy_of.shape, started.target),
        copy_of if squared else np.zeros_like(copy_of),
        n_segments=samples if squared else 1,
        labels=[f"noisy copy {i}" for i in copy_of],
    )
    moments = _Moments(started.image.shape) if squared else None
    sums, _ = evaluate_points(
        started.prepared.classifier,
        points,
        batch_size=options.batch_size,
        progress=progress,
        accumulate=moments,
    )
    if moments is None:
        assert sums is not None
        attributions = sums[0]
    else:
        moments.finish()
        mean_square = moments.squares / samples
        attributions = (
            mean_square if kind == "smoothgrad_sq" else mean_square - (moments.total / samples) ** 2
        )
    parameters: dict[str, Any] = {
        "of": checked_of,
        "kind": checked_kind,
        "samples": samples,
        "noise": noise,
        "sigma": sigma,
        "seed": options.seed,
    }
    if integrated:
        parameters.update(
            baseline=baseline_name(options.baseline), steps=options.steps, method=options.method
        )
    return started.result(attributions, "smoothgrad", parameters, len(points))
