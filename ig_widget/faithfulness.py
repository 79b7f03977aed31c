"""Insertion and deletion curves (Petsiuk et al. 2018, "RISE: Randomized Input
Sampling for Explanation of Black-box Models"): how faithful an attribution map is.

Pixels are ranked by their attribution (summed over the channels, most
positive first). **Deletion** replaces them, in that order, by a substrate
(the ``baseline``) and records the target score after each step: a faithful
map makes it fall fast, so a *low* area under the curve is good.
**Insertion** starts from the substrate and puts the image's pixels back in
the same order: the score should rise fast, a *high* area is good. Both
curves are sampled at ``steps + 1`` fractions of the pixels, 0 to 1, and the
areas are trapezoid integrals over that fraction.

The perturbed images are made per batch from the pixel ranks and go through
the engine's forward-pass evaluator (``ig_widget.points.evaluate_scores``);
the two ends every curve shares (the image and the substrate) are evaluated
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine import ExplainsTarget, prepare
from .explainers.common import baseline_name, baseline_row, check_attributions
from .options import IGOptions, check_callable
from .points import ProgressCallback, evaluate_scores
from .validation import as_image, check_int

DEFAULT_STEPS = 100


@dataclass(frozen=True, eq=False)
class InsertionDeletionResult:
    """Both curves of ``insertion_deletion`` and their areas.

    Attributes
    ----------
    fractions : ndarray, float64 (steps + 1,)
        Share of the pixels inserted or deleted at each point of the curves, 0 to 1.
    insertion, deletion : ndarray, float64 (steps + 1,)
        Target score (probability with ``softmax=True``) at each fraction.
    insertion_auc, deletion_auc : float
        Areas under the curves over [0, 1] (trapezoid rule): high insertion
        and low deletion mean a faithful map.
    target : int
    against : int or None
        For a contrastive target, the class whose score is subtracted.
    baseline : str
        The substrate (``"array"`` for one given as an array).
    steps : int
    softmax : bool
    points_used : int
        Forward passes (one per distinct perturbed image).
    elapsed_s : float
    """

    fractions: np.ndarray
    insertion: np.ndarray
    deletion: np.ndarray
    insertion_auc: float
    deletion_auc: float
    target: int
    baseline: str
    steps: int
    softmax: bool
    points_used: int
    elapsed_s: float
    against: int | None = None


def pixel_ranks(attributions: np.ndarray) -> np.ndarray:
    """Each pixel's place (0 = first) when ordered by attribution summed over channels,
    largest first; ties keep row-major order.

    Examples
    --------
    >>> pixel_ranks(np.array([[1.0, 3.0], [2.0, 3.0]])).tolist()
    [[3, 0], [2, 1]]
    """
    saliency = attributions.sum(axis=-1) if attributions.ndim == 3 else attributions
    order = np.argsort(-saliency.ravel(), kind="stable")
    ranks = np.empty(order.size, np.int64)
    ranks[order] = np.arange(order.size)
    return ranks.reshape(saliency.shape)


def perturbed_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels changed at each of the ``steps + 1`` points of a curve:
    ``i * pixels / steps``, rounded half up.

    Examples
    --------
    >>> perturbed_counts(10, 4).tolist()
    [0, 3, 5, 8, 10]
    """
    return np.floor(np.arange(steps + 1) * pixels / steps + 0.5).astype(np.int64)


class PerturbedRows:
    """The images of both curves, made when a batch asks for them.

    Row ``k < n`` is insertion point ``k`` (the ``counts[k]`` top-ranked
    pixels from the image, the rest from the substrate); row ``n + k`` is
    deletion point ``k`` (the top-ranked pixels from the substrate).

    Examples
    --------
    >>> image, substrate = np.ones((1, 2, 1), np.float32), np.zeros((1, 2, 1), np.float32)
    >>> rows = PerturbedRows(image, substrate, np.array([[1, 0]]), np.array([0, 1, 2]))
    >>> rows.take(np.array([1, 4]))[:, 0, :, 0].tolist()  # insert 1, delete 1
    [[0.0, 1.0], [1.0, 0.0]]
    """

    def __init__(
        self, image: np.ndarray, substrate: np.ndarray, ranks: np.ndarray, counts: np.ndarray
    ) -> None:
        self.image, self.substrate = image, substrate
        self.ranks, self.counts = ranks, counts
        self.shape = tuple(image.shape)

    def __len__(self) -> int:
        return 2 * len(self.counts)

    def take(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        n = len(self.counts)
        inserted = self.ranks[None] < self.counts[indices % n][:, None, None]
        from_image = np.where((indices < n)[:, None, None], inserted, ~inserted)
        return np.where(from_image[..., None], self.image, self.substrate).astype(np.float32)


def _probabilities(scores: np.ndarray, columns: int, complement: str | None) -> np.ndarray:
    """Class probabilities from the class view's scores (N, classes)."""
    if columns == 1:
        if complement == "probability":  # already [1 - p, p]
            return scores
        positive = 1.0 / (1.0 + np.exp(-scores[:, 1]))  # the column is a logit
        return np.stack([1.0 - positive, positive], axis=1)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def insertion_deletion(
    model: Any,
    image: Any,
    attributions: Any,
    *,
    target: Any = None,
    steps: int = DEFAULT_STEPS,
    baseline: str | np.ndarray = "blur",
    softmax: bool = False,
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
) -> InsertionDeletionResult:
    """Insertion and deletion curves of ``attributions`` for ``model``'s ``target`` score.

    Parameters
    ----------
    model, image, preprocess, batch_size, pixel_range, precision
        As for ``integrated_gradients``.
    attributions : array (H, W, C) or (H, W), or a result
        The map to assess; ``IGResult`` and ``AttributionResult`` are taken
        as they are (their target too, a contrast or a region included, unless
        ``target`` is given).
    target : int, (int, int) or Region, optional
        Class whose score the curves follow (a pair: the difference of two
        classes' scores; a region: a segmentation model's score over it; as for
        ``integrated_gradients``); default the result's target, or the top class.
    steps : int
        Intervals of the curves (``steps + 1`` points, ``2 * steps - 1``
        forward passes), at most the number of pixels.
    baseline : {"blur", "black", "white", "uniform"} or array
        The substrate pixels are deleted to and inserted from (Petsiuk et al.
        insert into a blurred copy and delete to black; one substrate serves
        both curves here so that they meet at the ends).
    softmax : bool
        Follow the probability (softmax over the classes; a sigmoid for a
        one-column logit model) instead of the model's raw output, as the
        paper does, for models that return logits.
    seed : int, optional
        Seed of a ``"uniform"`` substrate.
    progress : callable, optional
        ``progress(done, total)`` after each batch of forward passes;
        ``False`` cancels with ``ComputationCancelled``.

    Returns
    -------
    InsertionDeletionResult

    Examples
    --------
    A model that reads the left column only: a map on that column deletes
    its score at once (a low area), a map on the right column only at the end.

    >>> import tensorflow as tf
    >>> model = lambda x: tf.reduce_mean(x[:, :, :1], axis=[1, 2])
    >>> image = np.full((4, 4, 1), 100.0)
    >>> left = np.zeros((4, 4)); left[:, 0] = 1.0
    >>> good = insertion_deletion(model, image, left, steps=4, baseline="black")
    >>> bad = insertion_deletion(model, image, left[:, ::-1], steps=4, baseline="black")
    >>> good.deletion.tolist(), round(good.deletion_auc, 2), round(bad.deletion_auc, 2)
    ([100.0, 0.0, 0.0, 0.0, 0.0], 12.5, 56.25)
    """
    started = time.perf_counter()
    steps = check_int("steps", steps, low=1)
    if not isinstance(softmax, (bool, np.bool_)):
        raise TypeError(
            f"softmax: expected True or False, got {type(softmax).__name__} {softmax!r}"
        )
    converted = as_image(image)
    if target is None and isinstance(attributions, ExplainsTarget):
        target = attributions.given_target
    saliency = check_attributions(attributions, converted.shape)
    pixels = converted.shape[0] * converted.shape[1]
    if steps > pixels:
        raise ValueError(
            f"steps: expected an integer <= {pixels} (the image's pixels), got {steps}"
        )
    options = IGOptions(
        target=target,
        baseline=baseline,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        pixel_range=pixel_range,
        precision=precision,
    )
    check_callable("progress", progress)
    substrate = baseline_row(converted, options)
    prepared = prepare(model, converted, options)
    chosen = prepared.target_index(options.target)
    counts = perturbed_counts(pixels, steps)
    rows = PerturbedRows(prepared.image, substrate, pixel_ranks(saliency), counts)
    # Insertion 0 .. steps-1 (its last point is the image) and deletion
    # 1 .. steps-1 (its first is the image, its last the substrate: insertion 0).
    wanted = np.concatenate([np.arange(steps), len(counts) + np.arange(1, steps)])
    classifier = prepared.classifier
    scores = evaluate_scores(
        classifier,
        _Subset(rows, wanted),
        batch_size=options.batch_size,
        progress=progress,
        describe=lambda row: _describe(int(wanted[row]), len(counts), counts, pixels),
    )
    at_image = prepared.scores[None]
    if softmax:
        scores = _probabilities(scores, classifier.columns, classifier.complement)
        at_image = _probabilities(at_image, classifier.columns, classifier.complement)
    followed = classifier.target_scores(scores, np.full(len(scores), chosen))
    image_score = float(classifier.target_scores(at_image, np.array([chosen]))[0])
    insertion = np.append(followed[:steps], image_score)
    deletion = np.concatenate([[image_score], followed[steps:], [followed[0]]])
    fractions = counts / pixels
    target, against = classifier.split(chosen)
    # SciPy's, not np.trapezoid: NumPy 1.x (within the bounds) has no np.trapezoid.
    from scipy.integrate import trapezoid

    return InsertionDeletionResult(
        fractions=fractions,
        insertion=insertion,
        deletion=deletion,
        insertion_auc=float(trapezoid(insertion, fractions)),
        deletion_auc=float(trapezoid(deletion, fractions)),
        target=target,
        against=against,
        baseline=baseline_name(options.baseline),
        steps=steps,
        softmax=bool(softmax),
        points_used=len(wanted),
        elapsed_s=time.perf_counter() - started,
    )


class _Subset:
    """Some rows of another ``Rows``, renumbered from 0."""

    def __init__(self, rows: PerturbedRows, indices: np.ndarray) -> None:
        self.rows, self.indices = rows, indices
        self.shape = rows.shape

    def __len__(self) -> int:
        return len(self.indices)

    def take(self, indices: np.ndarray) -> np.ndarray:
        return self.rows.take(self.indices[np.asarray(indices)])


def _describe(row: int, n: int, counts: np.ndarray, pixels: int) -> str:
    share = f"{counts[row % n] / pixels:.1%} of the pixels"
    return (
        f"the insertion image with {share} inserted"
        if row < n
        else (f"the deletion image with {share} deleted")
    )
