"""Integrated Gradients and plain gradients for image classifiers.

Data flows one way: (model, image) -> ``prepare`` (one forward pass) ->
``run`` (points through the model in batches) -> ``IGResult``. What a
computation is lives in ``ig_widget.options.IGOptions``; the points and the
batched loop in ``ig_widget.points``; the batch size in
``ig_widget.batching``; the framework-specific work in ``ig_widget.backends``.
This module builds the integration paths and does the quadrature bookkeeping
and the completeness check.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from .backends import GradientBackend, backend_for
from .baselines import single_baseline
from .options import (
    MAX_STEPS,
    IGOptions,
    Region,
    Target,
    check_callable,
    check_model,
    check_target,
)
from .points import (
    ArrayRows,
    Classifier,
    ComputationCancelled,
    PathPoints,
    PointSet,
    ProgressCallback,
    Rows,
    StackedRows,
    UniformRows,
    _raise_model_failure,
    complement_of,
    evaluate_points,
    evaluate_scores,
    predict_rows,
    row_sum,
)
from .quadrature import integration_points, trapezoid_refinement
from .validation import as_image, caller_stacklevel, check_int, to_numpy

__all__ = [
    "MAX_STEPS",
    "ComputationCancelled",
    "ExplainsTarget",
    "IGResult",
    "PreparedInput",
    "gradients",
    "integrated_gradients",
    "integrated_gradients_batch",
    "prepare",
    "prepare_batch",
    "run",
    "run_batch",
]

# steps="auto" starts from this many trapezoid intervals and doubles up to the cap.
AUTO_START_INTERVALS = 8
AUTO_MAX_INTERVALS = 512


class ExplainsTarget:
    """The explained score and its words, shared by every result (``IGResult``,
    ``AttributionResult``) from the fields they all have."""

    attributions: np.ndarray
    target: int
    scores: np.ndarray
    against: int | None
    region: Region | None
    map_shape: tuple[int, int] | None

    @property
    def score(self) -> float:
        """Model output for the target class at the image (minus the ``against``
        class's for a contrastive target)."""
        return explained_score(self.scores, self.target, self.against)

    @property
    def given_target(self) -> int | tuple[int, int] | Region:
        """The target that explains this score again: the class, ``(target, against)``
        or the region (its class as an index)."""
        if self.region is not None:
            return replace(self.region, class_=self.target)
        return self.target if self.against is None else (self.target, self.against)

    @property
    def explained(self) -> str:
        """What was explained, in words: ``"class 3"``, ``"class 3 and not class 0"``
        or ``"class 3, the sum over a region of 12 pixels"`` (on a score map coarser
        than the image: ``"class 3, the sum over 3 cells of the 8 x 8 score map (a box
        of 12 pixels)"``)."""
        return describe_target(
            self.target,
            self.against,
            region=self.region,
            map_shape=self.map_shape,
            image_shape=self.attributions.shape[:2],
        )


@dataclass(frozen=True, eq=False)
class IGResult(ExplainsTarget):
    """Everything one integrated-gradients computation produced.

    Attributes
    ----------
    attributions : ndarray, float32, image's shape (H, W, C)
        Integrated gradients in raw pixel units, averaged over the baselines.
    gradients : ndarray, float32, (H, W, C)
        Plain gradient of the target score at the image.
    target : int
        The explained class.
    scores : ndarray, (K,)
        Model output at the image.
    path_alphas : ndarray, (P,)
        Ascending positions along the path where the model was evaluated.
    path_scores : ndarray, (runs, P)
        Target score at each of those points, per baseline.
    baseline_scores : ndarray, (runs,)
        Target score at each baseline.
    delta : float
        Relative completeness error
        ``|sum(A) - (F(x) - mean F(x'))| / max(|F(x) - mean F(x')|, 1e-12)``.
    steps : int
        Intervals of the rule (for ``steps="auto"``, the count it settled on).
    method : str
        The integration rule.
    runs : int
        Number of baselines averaged.
    points_used : int
        Gradient evaluations along the paths (all runs together).
    elapsed_s : float
        Wall time of the computation.
    against : int or None
        For a contrastive target ``(target, against)``: the class contrasted
        against. The target score is then ``score(target) - score(against)``
        (path and baseline scores and ``delta`` too); None otherwise.
    region : Region or None
        For a region target: the region of the score map whose ``target``
        scores were summed (or averaged); the scores are then the region's.
    map_shape : tuple of int or None
        For a region target: the (H', W') of the model's score map, whose
        cells the region selects (``Region.weights``); None otherwise.
    """

    attributions: np.ndarray
    gradients: np.ndarray
    target: int
    scores: np.ndarray
    path_alphas: np.ndarray
    path_scores: np.ndarray
    baseline_scores: np.ndarray
    delta: float
    steps: int
    method: str
    runs: int
    points_used: int
    elapsed_s: float
    against: int | None = None
    region: Region | None = None
    map_shape: tuple[int, int] | None = None


def explained_score(scores: np.ndarray, target: int, against: int | None) -> float:
    """``scores[target]``, minus ``scores[against]`` for a contrastive target."""
    score = float(scores[target])
    return score if against is None else score - float(scores[against])


def describe_target(
    target: int,
    against: int | None,
    class_names: Sequence[str] | None = None,
    region: Region | None = None,
    map_shape: tuple[int, ...] | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> str:
    """What a result explains, in words, with class names where given.

    A region target's words name what its score reduces: on a score map of
    ``map_shape`` (H', W') other than ``image_shape`` (H, W), the map's cells
    that ``Region.weights`` selects (and the region as given, in image
    pixels); on a map of the image's size (or ``map_shape`` None), the
    region's pixels.

    Examples
    --------
    >>> describe_target(3, None), describe_target(2, 0, ["circle", "square", "star"])
    ('class 3', "'star' and not 'circle'")
    >>> describe_target(1, None, region=Region(1, box=(0, 0, 2, 3), reduce="mean"))
    'class 1, the mean over a region of 6 pixels'
    >>> describe_target(1, None, None, Region(1, box=(0, 0, 8, 8), reduce="mean"), (8, 8), (16, 16))
    'class 1, the mean over 16 cells of the 8 x 8 score map (a box of 64 pixels)'
    """

    def name(index: int) -> str:
        return repr(class_names[index]) if class_names is not None else f"class {index}"

    text = name(target) if against is None else f"{name(target)} and not {name(against)}"
    if region is None:
        return text
    if region.mask is not None:
        given, pixels = "a mask", int(region.mask.sum())
    else:
        assert region.box is not None
        top, left, bottom, right = region.box
        given, pixels = "a box", (bottom - top) * (right - left)
    if map_shape is None or image_shape is None or tuple(map_shape) == tuple(image_shape):
        return f"{text}, the {region.reduce} over a region of {pixels} pixels"
    rows, columns = int(map_shape[0]), int(map_shape[1])
    weights = region.weights((rows, columns), (int(image_shape[0]), int(image_shape[1])))
    cells = int(np.count_nonzero(weights))
    words = f"{text}, the {region.reduce} over {cells} cell{'' if cells == 1 else 's'} of the "
    words += f"{rows} x {columns} score map"
    if region.mask is not None and region.mask.shape == (rows, columns):
        return words  # the mask is the map's cells themselves
    return f"{words} ({given} of {pixels} pixels)"


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """An image ready for computations: its model's backend, the image converted
    to float32 (H, W, C), and what the one forward pass at the image gave.

    Build it with ``prepare`` (or ``prepare_batch``); pass it to ``run`` as
    often as needed (new targets, steps, baselines), without another forward
    pass at the image.

    Attributes
    ----------
    classifier : Classifier
        The model, its backend and its class view (``ig_widget.points``).
    image : ndarray, float32 (H, W, C)
    scores : ndarray, float64 (classes,)
        Every class's score at the image.
    preprocess, precision
        What the backend was built with; ``run`` refuses options that differ.
    """

    classifier: Classifier
    image: np.ndarray
    scores: np.ndarray
    preprocess: Callable[[Any], Any] | None
    precision: str

    @property
    def classes(self) -> int:
        """Number of classes (2 for a model with one output column)."""
        return self.classifier.classes

    @property
    def backend(self) -> GradientBackend:
        return self.classifier.backend

    def target_index(self, target: Any) -> int:
        """``target`` checked against the model's classes; None means the top class.

        A contrastive target ``(a, b)`` gives the index of "``a`` and not
        ``b``" (``Classifier.contrast``), beyond the classes' own.

        Examples
        --------
        >>> import tensorflow as tf
        >>> prepared = prepare(lambda x: tf.reshape(x, (-1, 3)), np.arange(3.0).reshape(1, 1, 3))
        >>> prepared.target_index(None), prepared.target_index(np.int64(1))
        (2, 1)
        >>> prepared.target_index(3)
        Traceback (most recent call last):
        ...
        ValueError: target: expected a class index in [0, 2], got 3
        """
        target = check_target(target)
        if target is None:
            return int(np.argmax(self.scores))
        if isinstance(target, Region):
            # The region itself was used by prepare: the scores are its classes' scores.
            return self._class_index(int(target.class_))
        if isinstance(target, tuple):
            first, against = (self._class_index(index) for index in target)
            return self.classifier.contrast(first, against)
        return self._class_index(target)

    def target_score(self, index: int) -> float:
        """The score a target index (``target_index``) explains, at the image."""
        return float(self.classifier.target_scores(self.scores[None], np.array([index]))[0])

    def _class_index(self, target: int) -> int:
        if target >= self.classes:
            one_column = ""
            if self.classifier.columns == 1:
                one_column = (
                    " (the model has one output column: 1 is the column, 0 its complement; "
                    "Captum's and PAIR saliency's target=0 is target=1 here)"
                )
            raise ValueError(
                f"target: expected a class index in [0, {self.classes - 1}]{one_column}, "
                f"got {target}"
            )
        return target


def _check_model_input(model: Any, image: np.ndarray) -> None:
    """Compare the image with a Keras model's declared input shape, if it has one."""
    try:
        declared = tuple(model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        return
    if len(declared) != 4:
        return
    for size, expected in zip(image.shape, declared[1:], strict=True):
        if expected is not None and size != expected:
            raise ValueError(
                f"image: the model takes images of shape {declared[1:]} (None = any size), "
                f"got {image.shape}"
                + (
                    "; for an RGBA image drop alpha with image[..., :3]"
                    if image.shape[2] == 4 and declared[3] == 3
                    else ""
                )
            )


def _prepare_stack(
    model: Any, images: np.ndarray, options: IGOptions, names: Sequence[str]
) -> list[PreparedInput]:
    """One forward pass (batched) over ``images`` (N, H, W, C), already converted."""
    backend = checked_backend(model, images[0], options)
    map_shape = score_map_shape(backend, images[0]) if isinstance(options.target, Region) else None
    region = region_weights(options, images.shape[1:3], map_shape)
    raw = predict_rows(
        backend,
        model,
        images,
        batch_size=1 if len(images) == 1 else None,
        describe=lambda index: names[index],
        region=region,
    )
    return prepared_from(model, backend, images, raw, options, region)


def checked_backend(model: Any, image: np.ndarray, options: IGOptions) -> GradientBackend:
    """The backend for ``model`` and ``options``, once ``image`` (converted) is checked
    against a Keras model's declared input."""
    if options.preprocess is None:
        _check_model_input(model, image)
    return backend_for(model, options.preprocess, options.precision)


def prepared_from(
    model: Any,
    backend: GradientBackend,
    images: np.ndarray,
    raw: np.ndarray,
    options: IGOptions,
    region: np.ndarray | None,
) -> list[PreparedInput]:
    """The prepared inputs of ``images`` from the model's checked output ``raw`` at them,
    reduced by ``region`` (``region_weights``) for a region target (for a computation
    that runs its own forward pass, as Grad-CAM's)."""
    columns = raw.shape[1]
    complement = complement_of(model) if columns == 1 else None
    classifier = Classifier(model, backend, columns, complement, region)
    scores = classifier.class_scores(raw)
    return [
        PreparedInput(classifier, image, row, options.preprocess, options.precision)
        for image, row in zip(images, scores, strict=True)
    ]


def region_weights(
    options: IGOptions, image_shape: tuple[int, ...], map_shape: tuple[int, ...] | None
) -> np.ndarray | None:
    """The score-map weights (H', W') of a region target (``Region.weights``), None for
    any other target; ``map_shape`` is the score map's (H', W') (``score_map_shape``)."""
    region = options.target
    if not isinstance(region, Region):
        return None
    assert map_shape is not None
    return region.weights(
        (int(map_shape[0]), int(map_shape[1])), (int(image_shape[0]), int(image_shape[1]))
    )


def score_map_shape(backend: GradientBackend, image: np.ndarray) -> tuple[int, int]:
    """The (H', W') of the score map the model returns for ``image`` (one forward
    pass), or an error naming ``target`` for a model that returns no score map."""
    try:
        output = backend.predict(image[None], None)
    except Exception as exc:
        _raise_model_failure(exc, (1, *image.shape))
    return map_shape_of(output)


def map_shape_of(output: Any) -> tuple[int, int]:
    """The (H', W') of a score map (N, H', W', classes), or an error naming ``target``."""
    shape = tuple(np.shape(output)) if not isinstance(output, (dict, list, tuple)) else ()
    if len(shape) != 4:
        raise ValueError(
            "target: a Region needs a model that returns a score map (N, H', W', classes), "
            f"got output of shape {shape if shape else type(output).__name__}"
        )
    return int(shape[1]), int(shape[2])


def prepare(model: Any, image: Any, options: IGOptions | None = None) -> PreparedInput:
    """Check ``model`` and ``image`` and run the model once at the image.

    Uses ``options.preprocess``, ``options.precision`` and a region target's
    region (the rest of the options may change between ``run`` calls).

    Examples
    --------
    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(x, (-1, 3)) * [1.0, 2.0, 3.0]
    >>> prepared = prepare(model, np.ones((1, 1, 3)))
    >>> prepared.classes, prepared.scores.tolist()
    (3, [1.0, 2.0, 3.0])
    >>> run(prepared, IGOptions(target=1, steps=4)).attributions.ravel().tolist()
    [0.0, 2.0, 0.0]
    """
    check_model(model)
    options = IGOptions() if options is None else options
    return _prepare_stack(model, as_image(image)[None], options, ["the image"])[0]


def _as_image_list(images: Any) -> list[np.ndarray]:
    if isinstance(images, (str, bytes)) or not (
        isinstance(images, Sequence) or hasattr(images, "__array__")
    ):
        raise TypeError(
            "images: expected an array (N, H, W, C) or a sequence of images, "
            f"got {type(images).__name__}"
        )
    if not isinstance(images, Sequence):
        array = to_numpy(images, name="images")
        if array.ndim != 4:
            raise ValueError(
                f"images: expected an array of shape (N, H, W, C), got shape {array.shape}; "
                "for one image use igw.integrated_gradients"
            )
        images = list(array)
    if len(images) == 0:
        raise ValueError("images: expected at least one image, got none")
    converted = [as_image(image, name=f"images[{index}]") for index, image in enumerate(images)]
    for index, image in enumerate(converted):
        if image.shape != converted[0].shape:
            raise ValueError(
                f"images: expected images of one shape, got {converted[0].shape} for images[0] "
                f"and {image.shape} for images[{index}]"
            )
    return converted


def prepare_batch(
    model: Any,
    images: Any,
    options: IGOptions | None = None,
    *,
    names: Sequence[str] | None = None,
) -> list[PreparedInput]:
    """``prepare`` for several images of one shape, with one batched forward pass.

    ``names`` (default ``images[i]``) is how messages name each image: a
    dataset names an image by its index in the dataset.

    Examples
    --------
    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(x, (-1, 3))
    >>> [p.target_index(None) for p in prepare_batch(model, np.eye(3).reshape(3, 1, 1, 3))]
    [0, 1, 2]
    """
    check_model(model)
    options = IGOptions() if options is None else options
    converted = _as_image_list(images)
    if names is None:
        names = [f"images[{index}]" for index in range(len(converted))]
    return _prepare_stack(model, np.stack(converted), options, names)


def _baselines(images: np.ndarray, options: IGOptions) -> tuple[Rows, np.ndarray]:
    """Baseline rows and, per image and run, which row starts its path.

    Uniform noise is generated per batch from ``seed`` (the same runs for
    every image, as a single-image call with that seed); a blurred copy is one
    row per image; the other kinds are one row shared by all images.
    """
    count = len(images)
    runs = options.distinct_runs
    if isinstance(options.baseline, str) and options.baseline == "uniform":
        rows = UniformRows(runs, images.shape[1:], options.pixel_range, options.seed)
        return rows, np.broadcast_to(np.arange(runs), (count, runs))
    if isinstance(options.baseline, str) and options.baseline == "blur":
        blurred = [single_baseline(image, "blur") for image in images]
        return ArrayRows(np.stack(blurred)), np.arange(count)[:, None]
    single = single_baseline(images[0], options.baseline, pixel_range=options.pixel_range)
    return ArrayRows(single[None]), np.zeros((count, 1), np.int64)


def _relative_delta(attributions: np.ndarray, score: float, baseline_scores: np.ndarray) -> float:
    expected = score - float(np.mean(baseline_scores))
    gap = float(np.sum(attributions, dtype=np.float64)) - expected
    return abs(gap) / max(abs(expected), 1e-12)


class _Progress:
    """One ``progress`` callback over several evaluations: counts add up across them."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self.done = 0

    def stage(self, points: int) -> ProgressCallback | None:
        if self.progress is None:
            return None
        offset, callback = self.done, self.progress
        self.done += points
        return lambda done, total: callback(offset + done, offset + total)

    def waiting(self) -> ProgressCallback | None:
        """For work outside the points (baseline scores): lets a callback cancel."""
        if self.progress is None:
            return None
        done, callback = self.done, self.progress
        return lambda _done, _total: callback(done, done)


def run_batch(
    prepared: Sequence[PreparedInput],
    options: IGOptions,
    targets: Sequence[Any] | None = None,
    *,
    progress: ProgressCallback | None = None,
    progress_updates: int | None = None,
    names: Sequence[str] | None = None,
) -> list[IGResult]:
    """Integrated gradients of several prepared images of one model and shape.

    The points of all images share model calls; each result equals a
    ``run`` of that image alone (to float32 rounding). ``targets`` gives one
    target per image (None entries: the top class); None takes
    ``options.target`` for all. ``progress(done, total)`` counts gradient
    evaluations (path points and the images' own points; a path that ends at
    its image, alpha 1, shares that point); with
    ``progress_updates=n`` there are at least ``n`` progress calls (when
    there are that many points), the batches being no larger than the
    batching rule allows either way.
    """
    started = time.perf_counter()
    check_callable("progress", progress)
    if progress_updates is not None:
        check_int("progress_updates", progress_updates, low=1)
    first = prepared[0]
    if options.preprocess is not first.preprocess or options.precision != first.precision:
        raise ValueError(
            "options: preprocess and precision must be those the input was prepared with; "
            "call prepare again to change them"
        )
    prepared_region = first.classifier.region
    if prepared_region is None:
        same_region = not isinstance(options.target, Region)
    else:
        region = region_weights(options, first.image.shape[:2], prepared_region.shape)
        same_region = region is not None and np.array_equal(region, prepared_region)
    if not same_region:
        raise ValueError(
            "target: a region target must be the region the input was prepared with; "
            "call prepare again with it"
        )
    classifier = first.classifier
    count = len(prepared)
    if targets is None:
        targets = [options.target] * count
    chosen = np.array([p.target_index(t) for p, t in zip(prepared, targets, strict=True)])
    images = np.stack([p.image for p in prepared])
    baselines, baseline_index = _baselines(images, options)
    runs = options.distinct_runs
    starts = StackedRows(baselines, ArrayRows(images))
    if names is None and count > 1:
        names = [f"images[{index}]" for index in range(count)]
    ends = ArrayRows(images)
    counter = _Progress(progress)
    every = np.arange(count)

    def path_points(
        active: np.ndarray, alphas: np.ndarray, weights: np.ndarray, own: bool
    ) -> PathPoints:
        return PathPoints(
            starts,
            ends,
            images=active,
            baseline_index=baseline_index[active],
            alphas=alphas,
            weights=weights / runs,
            targets=chosen[active],
            segments=2 * active,
            gradient_rows=len(baselines) + active if own else None,
            gradient_segments=2 * active + 1 if own else None,
            n_segments=2 * count,
            names=names,
        )

    def evaluate(points: PathPoints) -> tuple[np.ndarray, np.ndarray]:
        sums, scores = evaluate_points(
            classifier,
            points,
            batch_size=options.batch_size,
            progress=counter.stage(len(points)),
            progress_updates=progress_updates,
        )
        assert sums is not None
        return sums, scores

    if options.steps == "auto":
        alphas, _ = integration_points("trapezoid", AUTO_START_INTERVALS)
        # Unnormalised trapezoid weights: halves at the ends, ones inside.
        weights = np.ones_like(alphas)
        weights[[0, -1]] = 0.5
        normaliser = np.full(count, float(AUTO_START_INTERVALS))
    else:
        alphas, weights = integration_points(options.method, options.steps)
        normaliser = np.ones(count)
    # Where the path ends at the image (alpha 1), its last point is the image's own
    # point: evaluated once, its gradient serves both sums (one point in 52 of the
    # default path, one per run).
    shared = alphas[-1] == 1.0 and len(alphas) > 1
    evaluated = slice(None, -1 if shared else None)
    sums, scores = evaluate(path_points(every, alphas[evaluated], weights[evaluated], own=True))
    per_path = scores[count:].reshape(count, runs, len(alphas) - shared)
    if shared:
        at_image = np.broadcast_to(scores[:count, None, None], (count, runs, 1))
        per_path = np.concatenate([per_path, at_image], axis=2)
        baseline_sum, summed = None, None
        for i in range(count):
            # Images share their baselines (uniform noise, a constant) or have their own (blur).
            if summed is None or not np.array_equal(baseline_index[i], summed):
                summed = baseline_index[i]
                baseline_sum = row_sum(baselines, summed)
            directions = runs * images[i].astype(np.float64) - baseline_sum
            sums[2 * i] += weights[-1] / runs * directions * sums[2 * i + 1]
    path_scores = list(per_path)
    path_alphas = [alphas] * count
    baseline_scores = _baseline_scores(
        classifier, baselines, baseline_index, chosen, alphas, path_scores, options, counter
    )
    deltas = np.array(
        [
            _relative_delta(
                sums[2 * i] / normaliser[i], item.target_score(chosen[i]), baseline_scores[i]
            )
            for i, item in enumerate(prepared)
        ]
    )
    if options.steps == "auto":
        active = every[deltas > options.tolerance]
        intervals = AUTO_START_INTERVALS
        while len(active):
            if intervals >= AUTO_MAX_INTERVALS:
                _warn_at_cap(active, deltas, options.tolerance, count)
                break
            midpoints = trapezoid_refinement(intervals)
            more, more_scores = evaluate(
                path_points(active, midpoints, np.ones_like(midpoints), own=False)
            )
            sums += more
            intervals *= 2
            more_scores = more_scores.reshape(len(active), runs, len(midpoints))
            for row, i in enumerate(active):
                path_scores[i] = np.concatenate([path_scores[i], more_scores[row]], axis=1)
                path_alphas[i] = np.concatenate([path_alphas[i], midpoints])
                normaliser[i] = intervals
                deltas[i] = _relative_delta(
                    sums[2 * i] / intervals, prepared[i].target_score(chosen[i]), baseline_scores[i]
                )
            active = active[deltas[active] > options.tolerance]

    elapsed = time.perf_counter() - started
    results = []
    for i, item in enumerate(prepared):
        order = np.argsort(path_alphas[i], kind="stable")
        copies = options.runs // runs
        target, against = classifier.split(int(chosen[i]))
        results.append(
            IGResult(
                attributions=(sums[2 * i] / normaliser[i]).astype(np.float32),
                gradients=sums[2 * i + 1].astype(np.float32),
                target=target,
                against=against,
                region=options.target if isinstance(options.target, Region) else None,
                map_shape=region_map_shape(item.classifier.region),
                scores=item.scores,
                path_alphas=path_alphas[i][order],
                path_scores=_repeat_runs(path_scores[i][:, order], copies),
                baseline_scores=_repeat_runs(baseline_scores[i], copies),
                delta=float(deltas[i]),
                steps=int(normaliser[i]) if options.steps == "auto" else int(options.steps),
                method=options.method,
                runs=options.runs,
                points_used=runs * len(path_alphas[i]),
                elapsed_s=elapsed,
            )
        )
    return results


def region_map_shape(region: np.ndarray | None) -> tuple[int, int] | None:
    """The score map's (H', W') of a region target's weights (``Classifier.region``)."""
    return None if region is None else (int(region.shape[0]), int(region.shape[1]))


def _repeat_runs(values: np.ndarray, copies: int) -> np.ndarray:
    # Identical runs (deterministic baselines) are computed once; the result
    # shows each, as a read-only view rather than copies.
    if copies == 1:
        return values
    return np.broadcast_to(values, (copies * values.shape[0], *values.shape[1:]))


def _baseline_scores(
    classifier: Classifier,
    baselines: Rows,
    baseline_index: np.ndarray,
    targets: np.ndarray,
    alphas: np.ndarray,
    path_scores: list[np.ndarray],
    options: IGOptions,
    counter: _Progress,
) -> list[np.ndarray]:
    """Target score at each image's baselines, (runs,) per image."""
    # A rule that evaluates alpha = 0 has already scored the baselines exactly.
    if alphas[0] == 0.0:
        return [scores[:, 0] for scores in path_scores]
    scores = evaluate_scores(
        classifier,
        baselines,
        batch_size=options.batch_size,
        progress=counter.waiting(),
        describe=lambda row: f"baseline {row}",
    )
    return [
        classifier.target_scores(
            scores[baseline_index[i]], np.full(baseline_index.shape[1], target)
        )
        for i, target in enumerate(targets)
    ]


def _warn_at_cap(active: np.ndarray, deltas: np.ndarray, tolerance: float, count: int) -> None:
    which = "" if count == 1 else f" for images {active.tolist()}"
    warnings.warn(
        f"steps='auto' stopped at its cap of {AUTO_MAX_INTERVALS} intervals{which} with "
        f"delta={deltas[active].max():.3g} > tolerance={tolerance:g}: the score along the "
        "path is rough (ReLU and max-pool switching) or barely changes; "
        "the result's delta says how far completeness is off",
        RuntimeWarning,
        stacklevel=caller_stacklevel(),
    )


def run(
    prepared: PreparedInput,
    options: IGOptions,
    *,
    progress: ProgressCallback | None = None,
    progress_updates: int | None = None,
) -> IGResult:
    """Integrated gradients of a prepared image with ``options`` (``options.target``).

    See ``run_batch`` for ``progress`` and ``progress_updates``.

    Examples
    --------
    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(x, (-1, 3)) ** 2
    >>> prepared = prepare(model, np.full((1, 1, 3), 3.0))
    >>> options = IGOptions(target=0, steps=100)
    >>> round(float(run(prepared, options).attributions.sum()), 3)  # 3 ** 2 - 0
    9.0
    >>> round(float(run(prepared, options.replace(baseline="white")).delta), 6)
    0.0
    """
    return run_batch([prepared], options, progress=progress, progress_updates=progress_updates)[0]


def integrated_gradients(
    model: Any,
    image: Any,
    *,
    target: Any = None,
    baseline: str | np.ndarray = "black",
    steps: int | Literal["auto"] = 50,
    runs: int = 1,
    method: str = "trapezoid",
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    tolerance: float = 0.01,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> IGResult:
    """Integrated gradients of ``model``'s ``target`` score at ``image``.

    Parameters
    ----------
    model : Keras model, torch.nn.Module or callable
        Maps a float32 batch (N, H, W, C) to class scores (N, K), logits or
        probabilities. A Keras model is differentiated by its Keras backend
        (TensorFlow, JAX or PyTorch), a ``torch.nn.Module`` by PyTorch, any
        other callable by TensorFlow. A channels-first Module gets its permute
        in ``preprocess``: ``preprocess=lambda x: x.permute(0, 3, 1, 2) / 255``.
    image : array, PIL image or path
        One image (H, W, C), (H, W) or (1, H, W, C) in raw pixel units (see
        ``pixel_range``); for several, ``integrated_gradients_batch``.
    target : int, str or (class, against class), optional
        Class to explain (also a 0-d or one-element array or tensor, or a
        name in ``class_names``); default the top predicted class. A model
        with one output column (binary) has two classes: 1 is its column, 0
        the complement (``1 - p`` after a sigmoid, ``-z`` for a logit), as in
        alibi. Captum and PAIR saliency call the column itself target 0:
        their ``target=0`` is ``target=1`` here (the other class's
        attributions are these negated). A pair ``(a, b)`` of two different
        classes (indices or names) is a contrastive target, "why ``a`` and
        not ``b``": it explains ``score(a) - score(b)``, and completeness
        holds for that difference (the result's ``against`` is ``b``).
    baseline : {"black", "white", "uniform", "blur"} or array
        Where the path starts. ``"uniform"`` is noise over ``pixel_range``.
    steps : int or "auto"
        Intervals of the integration rule (trapezoid: ``steps + 1`` points).
        ``"auto"`` doubles a trapezoid grid from 8 intervals, reusing every
        evaluation, until ``delta <= tolerance`` or 512 intervals (with a
        ``RuntimeWarning`` if the cap stops it first).
    runs : int
        Number of baselines to average over (independent draws for "uniform").
    method : {"trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre"}
    preprocess : callable, optional
        Applied to each batch of raw points inside the differentiated
        computation, so attributions are in raw pixel units and completeness
        holds in them (unlike the Keras example this package grew from).
    batch_size : int, optional
        Points per model call; default the batching rule
        (``ig_widget.batching``): bounded by free memory, and grown from 8
        points only while the time per point falls, learnt per model and
        image shape. An out-of-memory error halves it and retries, with the
        same result.
    seed : int, optional
        Seed of the uniform baselines.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch, counting
        gradient evaluations (the path points and the image's own point, which
        is also the last path point where the path ends at alpha 1);
        returning ``False`` (also ``np.False_``) cancels with
        ``ComputationCancelled``, any other value (None) goes on.
    tolerance : float
        Target ``delta`` for ``steps="auto"``.
    pixel_range : (float, float)
        Darkest and brightest pixel value, for the black, white and uniform baselines.
    precision : {"float32", "bfloat16"}
        Arithmetic of the model. ``"bfloat16"`` (mixed precision, for GPUs
        with bfloat16 units) runs a Keras model's layers under the
        ``mixed_bfloat16`` policy, a ``torch.nn.Module`` under
        ``torch.autocast``; the path points, the gradients and their sums stay
        float32. Expect attributions within about 1e-2 relative of float32.
    class_names : sequence of str, optional
        The model's class names, so that ``target`` may name classes.

    Returns
    -------
    IGResult

    Examples
    --------
    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> res = integrated_gradients(model, np.ones((1, 1, 3)) * 10)
    >>> np.round(res.attributions.ravel(), 4).tolist()  # w * (x - black baseline)
    [10.0, 20.0, 30.0]
    """
    options = IGOptions(
        target=target,
        baseline=baseline,
        steps=steps,
        runs=runs,
        method=method,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        tolerance=tolerance,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    check_callable("progress", progress)
    return run(prepare(model, image, options), options, progress=progress)


def integrated_gradients_batch(
    model: Any,
    images: Any,
    *,
    targets: Any = None,
    baseline: str | np.ndarray = "black",
    steps: int | Literal["auto"] = 50,
    runs: int = 1,
    method: str = "trapezoid",
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    tolerance: float = 0.01,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
) -> list[IGResult]:
    """Integrated gradients of several images of one shape, sharing model calls.

    The points of all images go through the model together (small images
    fill a batch), and each image's result equals ``integrated_gradients`` of
    that image alone with the same options, to float32 rounding (uniform
    baselines: every image gets the runs a single call with ``seed`` would).
    ``elapsed_s`` of each result is the time of the whole batch.

    Parameters
    ----------
    images : array (N, H, W, C) or sequence of images
        Each as for ``integrated_gradients``; all of one shape.
    targets : None, int or sequence of N ints
        None explains each image's top class; an int, that class for all.
    **options
        As for ``integrated_gradients``; ``progress(done, total)`` counts the
        gradient evaluations of all images together.

    Returns
    -------
    list of IGResult, one per image

    Examples
    --------
    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> images = np.stack([np.ones((1, 1, 3)), np.full((1, 1, 3), 2.0)])
    >>> results = integrated_gradients_batch(model, images)
    >>> [r.attributions.ravel().round(4).tolist() for r in results]
    [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]
    """
    options = IGOptions(
        baseline=baseline,
        steps=steps,
        runs=runs,
        method=method,
        preprocess=preprocess,
        batch_size=batch_size,
        seed=seed,
        tolerance=tolerance,
        pixel_range=pixel_range,
        precision=precision,
    )
    check_callable("progress", progress)
    prepared = prepare_batch(model, images, options)
    return run_batch(prepared, options, _check_targets(targets, len(prepared)), progress=progress)


def check_target_count(given: int, images: int) -> None:
    """Raise naming ``targets`` unless one class index is given per image.

    Examples
    --------
    >>> check_target_count(2, 3)
    Traceback (most recent call last):
    ...
    ValueError: targets: expected 3 class indices (one per image), got 2
    """
    if given != images:
        raise ValueError(f"targets: expected {images} class indices (one per image), got {given}")


def _check_targets(targets: Any, count: int) -> list[Target]:
    if targets is None:
        return [None] * count
    if isinstance(targets, (Sequence, np.ndarray)) or (
        hasattr(targets, "__array__") and to_numpy(targets, name="targets").ndim > 0
    ):
        values = list(to_numpy(targets, name="targets").reshape(-1))
        check_target_count(len(values), count)
        return [check_target(value) for value in values]
    return [check_target(targets)] * count


def gradients(
    model: Any,
    image: Any,
    *,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    precision: str = "float32",
) -> np.ndarray:
    """Plain gradient of the ``target`` score with respect to the raw image.

    Parameters are as for :func:`integrated_gradients`.

    Returns
    -------
    ndarray, float32, the image's shape (H, W, C)

    Examples
    --------
    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(x, (-1, 3)) ** 2
    >>> gradients(model, np.full((1, 1, 3), 2.0), target=1).ravel().tolist()
    [0.0, 4.0, 0.0]
    """
    options = IGOptions(target=target, preprocess=preprocess, precision=precision)
    prepared = prepare(model, image, options)
    rows = prepared.image[None]
    point = PointSet(
        rows,
        rows,
        [0],
        [0],
        [0.0],
        [1.0],
        [0],
        [prepared.target_index(options.target)],
        [0],
        n_segments=1,
        labels=["the image"],
    )
    sums, _ = evaluate_points(prepared.classifier, point, batch_size=1)
    assert sums is not None
    return sums[0].astype(np.float32)
