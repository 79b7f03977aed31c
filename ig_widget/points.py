"""Point sets and their evaluators: the one loop every computation runs through.

A *point set* is a list of points in image space, each defined by a row of
small arrays (see ``PointBatch``): point ``b`` lies at ``alphas[b]`` on the
straight line from ``starts[start_index[b]]`` to ``ends[end_index[b]]``; the
gradient of its ``targets[b]`` score, times ``weights[b]`` and, where
``directional[b]``, times the line's direction ``end - start``, is summed into
row ``segments[b]`` of the result. That one shape of work serves integrated
gradients over many baselines (direction folded in, nothing kept per run),
plain gradients (a non-directional point at the image), several images in one
model call (a segment per image) and per-point gradients (a segment per
point).

``evaluate_points`` runs a point set through a model in batches (sized by
``ig_widget.batching``), with progress, cancellation, out-of-memory halving,
a clear error for model failures and non-finite values, and returns the sums
and the target scores; ``evaluate_scores`` does the same for forward passes
only. Start and end rows may be produced lazily (``UniformRows``), so that a
computation over 10,000 noise baselines never holds more than a batch of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

from .backends import GradientBackend
from .batching import BLOCK, BatchPlan, tuner_for

ProgressCallback = Callable[[int, int], Any]


# Why a computation stopped when its progress callback returned False.
CANCELLED = "cancelled by the progress callback"


class ComputationCancelled(Exception):
    """Raised when a ``progress`` callback returns ``False``."""


def report_progress(progress: ProgressCallback | None, done: int, total: int) -> None:
    """Call ``progress(done, total)``; a result that is ``False`` (also ``np.False_``) cancels.

    ``None`` and every other value mean "go on".

    Examples
    --------
    >>> report_progress(lambda done, total: np.False_, 1, 2)
    Traceback (most recent call last):
    ...
    ig_widget.points.ComputationCancelled: cancelled by the progress callback after 1 of 2 points
    """
    if progress is None:
        return
    answer = progress(done, total)
    if isinstance(answer, (bool, np.bool_)) and not answer:
        raise ComputationCancelled(f"{CANCELLED} after {done} of {total} points")


# -- rows ---------------------------------------------------------------------------


class Rows(Protocol):
    """Images (rows) by index, for the starts and ends of a point set.

    ``shape`` is one row's (H, W, C); ``take(indices)`` returns float32
    (len(indices), H, W, C).
    """

    shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def take(self, indices: np.ndarray) -> np.ndarray: ...


class ArrayRows:
    """Rows held in one float32 array (S, H, W, C).

    Examples
    --------
    >>> ArrayRows(np.zeros((3, 2, 2, 1))).take(np.array([2, 0])).shape
    (2, 2, 2, 1)
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.asarray(array, np.float32)
        self.shape = tuple(self.array.shape[1:])

    def __len__(self) -> int:
        return len(self.array)

    def take(self, indices: np.ndarray) -> np.ndarray:
        return self.array[indices]


class UniformRows:
    """``count`` rows of uniform noise over ``pixel_range``, generated on demand.

    Row ``i`` is drawn from ``numpy.random.SeedSequence(seed, spawn_key=(i,))``,
    so it is the same whichever rows are asked for together (any batch size
    gives the same baselines) and no row is kept. ``seed=None`` draws fresh
    entropy once, at construction.

    Examples
    --------
    >>> rows = UniformRows(10_000, (2, 2, 3), (0.0, 255.0), seed=0)
    >>> bool(np.array_equal(rows.take(np.array([7]))[0], rows.take(np.arange(9))[7]))
    True
    """

    def __init__(
        self,
        count: int,
        shape: tuple[int, ...],
        pixel_range: tuple[float, float],
        seed: int | None,
    ) -> None:
        self.count = count
        self.shape = tuple(shape)
        self.pixel_range = pixel_range
        self.seed = np.random.SeedSequence(seed).entropy

    def __len__(self) -> int:
        return self.count

    def take(self, indices: np.ndarray) -> np.ndarray:
        low, high = self.pixel_range
        out = np.empty((len(indices), *self.shape), np.float32)
        for row, index in enumerate(np.asarray(indices).tolist()):
            sequence = np.random.SeedSequence(self.seed, spawn_key=(index,))
            out[row] = np.random.default_rng(sequence).uniform(low, high, self.shape)
        return out


class StackedRows:
    """The rows of several sources one after another.

    Examples
    --------
    >>> rows = StackedRows(ArrayRows(np.zeros((2, 1, 1, 1))), ArrayRows(np.ones((1, 1, 1, 1))))
    >>> len(rows), rows.take(np.array([2, 0])).ravel().tolist()
    (3, [1.0, 0.0])
    """

    def __init__(self, *sources: Rows) -> None:
        self.sources = sources
        self.shape = sources[0].shape
        self._offsets = np.cumsum([0, *(len(source) for source in sources)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def take(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices)
        out = np.empty((len(indices), *self.shape), np.float32)
        which = np.searchsorted(self._offsets, indices, side="right") - 1
        for number, source in enumerate(self.sources):
            chosen = which == number
            if np.any(chosen):
                out[chosen] = source.take(indices[chosen] - self._offsets[number])
        return out


# Rows taken at a time by ``row_sum``: its memory does not grow with their count.
ROW_SUM_BYTES = 8 * 2**20


def row_sum(rows: Rows, indices: np.ndarray) -> np.ndarray:
    """The float64 sum of rows ``indices``, taken a few at a time.

    Examples
    --------
    >>> row_sum(ArrayRows(np.arange(6).reshape(3, 2, 1, 1)), np.array([0, 2, 2])).ravel()
    array([ 8., 11.])
    """
    per_take = max(1, ROW_SUM_BYTES // (4 * math.prod(rows.shape)))
    total = np.zeros(rows.shape, np.float64)
    for first in range(0, len(indices), per_take):
        total += rows.take(indices[first : first + per_take]).sum(axis=0, dtype=np.float64)
    return total


def as_rows(value: np.ndarray | Rows) -> Rows:
    """An array (S, H, W, C) as ``ArrayRows``; ``Rows`` objects pass through."""
    return ArrayRows(value) if isinstance(value, np.ndarray) else value


# -- point sets ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class PointBatch:
    """The per-point arrays of consecutive points (see the module docstring)."""

    start_index: np.ndarray
    end_index: np.ndarray
    alphas: np.ndarray
    weights: np.ndarray
    directional: np.ndarray
    targets: np.ndarray
    segments: np.ndarray

    def __len__(self) -> int:
        return len(self.alphas)

    def select(self, rows: np.ndarray | slice) -> PointBatch:
        return PointBatch(*(getattr(self, field.name)[rows] for field in dataclasses.fields(self)))


class Points(Protocol):
    """What ``evaluate_points`` needs: rows, a segment count, and the points by position."""

    starts: np.ndarray | Rows
    ends: np.ndarray | Rows
    n_segments: int

    def __len__(self) -> int: ...

    def batch(self, start: int, stop: int) -> PointBatch: ...

    def describe(self, index: int) -> str: ...


class PointSet:
    """A point set given by its per-point arrays (the general case).

    Parameters
    ----------
    starts, ends : ndarray (S, H, W, C) and (E, H, W, C), or ``Rows``
    start_index, end_index, alphas, weights, directional, targets, segments : array-like (B,)
        ``directional`` is 0/1 (or bool); ``targets`` are class indices of the
        ``Classifier`` (for a one-column binary model, 0 is the complement).
    n_segments : int
        Rows of the sums; every ``segments`` value is below it.
    labels : sequence of str, optional
        Where each point lies, for error messages ("point 3" otherwise).

    Examples
    --------
    >>> image = np.ones((2, 2, 1), np.float32)
    >>> points = PointSet(image[None] * 0, image[None], [0, 0], [0, 0], [0.5, 1.0],
    ...                   [1.0, 1.0], [1, 0], [0, 0], [0, 1], n_segments=2)
    >>> len(points), points.batch(1, 2).alphas.tolist()
    (2, [1.0])
    """

    def __init__(
        self,
        starts: np.ndarray | Rows,
        ends: np.ndarray | Rows,
        start_index: Any,
        end_index: Any,
        alphas: Any,
        weights: Any,
        directional: Any,
        targets: Any,
        segments: Any,
        *,
        n_segments: int,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.starts, self.ends = starts, ends
        self.n_segments = int(n_segments)
        self._points = PointBatch(
            np.asarray(start_index, np.int64),
            np.asarray(end_index, np.int64),
            np.asarray(alphas, np.float64),
            np.asarray(weights, np.float64),
            np.asarray(directional, np.float64),
            np.asarray(targets, np.int64),
            np.asarray(segments, np.int64),
        )
        count = len(self._points)
        for field in dataclasses.fields(self._points):
            values = getattr(self._points, field.name)
            if values.shape != (count,):
                raise ValueError(
                    f"{field.name}: expected one value per point ({count}), "
                    f"got shape {values.shape}"
                )
        for name, values, bound in (
            ("start_index", self._points.start_index, len(as_rows(starts))),
            ("end_index", self._points.end_index, len(as_rows(ends))),
            ("segments", self._points.segments, self.n_segments),
        ):
            if count and (values.min() < 0 or values.max() >= bound):
                raise ValueError(f"{name}: expected values in [0, {bound - 1}]")
        self._labels = labels

    def __len__(self) -> int:
        return len(self._points)

    def batch(self, start: int, stop: int) -> PointBatch:
        return self._points.select(slice(start, stop))

    def describe(self, index: int) -> str:
        return self._labels[index] if self._labels is not None else f"point {index}"


class PathPoints:
    """Integrated-gradients points: for each image ``m``, ``runs`` straight paths
    from its baselines to it at the given alphas, optionally preceded by one
    non-directional point at the image itself (its plain gradient).

    Points are ordered: the images' own points, then image by image, run by
    run, alpha by alpha. Nothing is stored per point.

    Parameters
    ----------
    starts, ends : Rows
        Baselines (and the images, for their own points) and the images.
    images : (M,) int
        Row of ``ends`` of each image.
    baseline_index : (M, runs) int
        Row of ``starts`` of each image's baselines.
    alphas, weights : (P,) float
    targets : (M,) int
    segments : (M,) int
        Where each image's integrated gradients are summed.
    gradient_rows, gradient_segments : (M,) int, optional
        Row of ``starts`` holding each image, and where its plain gradient goes;
        None leaves the images' own points out.
    n_segments : int
    names : sequence of str, optional
        How to call each image in messages (nothing is added for one image).
    """

    def __init__(
        self,
        starts: Rows,
        ends: Rows,
        *,
        images: np.ndarray,
        baseline_index: np.ndarray,
        alphas: np.ndarray,
        weights: np.ndarray,
        targets: np.ndarray,
        segments: np.ndarray,
        gradient_rows: np.ndarray | None,
        gradient_segments: np.ndarray | None,
        n_segments: int,
        names: Sequence[str] | None = None,
    ) -> None:
        self.starts, self.ends = starts, ends
        self.n_segments = n_segments
        self.images = np.asarray(images, np.int64)
        self.baseline_index = np.asarray(baseline_index, np.int64)
        self.alphas = np.asarray(alphas, np.float64)
        self.weights = np.asarray(weights, np.float64)
        self.targets = np.asarray(targets, np.int64)
        self.segments = np.asarray(segments, np.int64)
        self.gradient_rows = gradient_rows
        self.gradient_segments = gradient_segments
        self._own = 0 if gradient_rows is None else len(self.images)
        self.runs = self.baseline_index.shape[1]
        self._names = names

    def __len__(self) -> int:
        return self._own + len(self.images) * self.runs * len(self.alphas)

    def batch(self, start: int, stop: int) -> PointBatch:
        k = np.arange(start, stop)
        own = k < self._own
        j = np.where(own, 0, k - self._own)
        per_image = self.runs * len(self.alphas)
        image = np.where(own, k, j // per_image)
        run = (j // len(self.alphas)) % self.runs
        step = j % len(self.alphas)
        start_index = self.baseline_index[image, run]
        segments = self.segments[image]
        if self._own:
            assert self.gradient_rows is not None and self.gradient_segments is not None
            start_index = np.where(own, self.gradient_rows[image], start_index)
            segments = np.where(own, self.gradient_segments[image], segments)
        return PointBatch(
            start_index=start_index,
            end_index=self.images[image],
            # alpha 0 on a path that starts at the image is the image exactly.
            alphas=np.where(own, 0.0, self.alphas[step]),
            weights=np.where(own, 1.0, self.weights[step]),
            directional=np.where(own, 0.0, 1.0),
            targets=self.targets[image],
            segments=segments,
        )

    def describe(self, index: int) -> str:
        if index < self._own:
            where, image = "the image itself (its plain gradient)", index
        else:
            j = index - self._own
            image = j // (self.runs * len(self.alphas))
            run = (j // len(self.alphas)) % self.runs
            alpha = self.alphas[j % len(self.alphas)]
            where = f"baseline run {run}, alpha {alpha:.6g}"
        if self._names is None:
            return where
        return f"{where} of {self._names[image]}"


# -- the model as the engine sees it ------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """A model behind its backend, with the class view the engine explains.

    A model with one output column (a binary classifier: sigmoid or logit) is
    shown as two classes: class 1 is its column ``s``, class 0 the
    complement, ``1 - s`` when the model ends in a sigmoid
    (``complement="probability"``) and ``-s`` otherwise (``"logit"``). The
    complement's gradients are the column's with the opposite sign, so
    completeness holds for both classes.

    Examples
    --------
    >>> binary = Classifier(model=None, backend=None, columns=1, complement="probability")
    >>> binary.classes, binary.class_scores(np.array([[0.8]])).round(3).tolist()
    (2, [[0.2, 0.8]])
    """

    model: Any
    backend: GradientBackend
    columns: int
    complement: Literal["probability", "logit"] | None = None
    # For a region target: each score-map pixel's weight (H', W'), which turns the
    # model's score map into one score per class (``ig_widget.options.Region``).
    region: np.ndarray | None = None

    @property
    def classes(self) -> int:
        return 2 if self.columns == 1 else self.columns

    def class_scores(self, raw: np.ndarray) -> np.ndarray:
        """Scores per class (N, classes) from the model's output (N, columns)."""
        raw = np.asarray(raw, np.float64)
        if self.columns != 1:
            return raw
        other = 1.0 - raw if self.complement == "probability" else -raw
        return np.concatenate([other, raw], axis=1)

    def contrast(self, target: int, against: int) -> int:
        """The target index of "``target`` and not ``against``": score(target) - score(against).

        Contrasts are numbered after the classes, so that a point set's
        ``targets`` stay one integer per point whatever they explain.

        Examples
        --------
        >>> three = Classifier(model=None, backend=None, columns=3)
        >>> t = three.contrast(2, 0)
        >>> t, three.split(t), three.split(1)
        (9, (2, 0), (1, None))
        """
        return self.classes * (1 + target) + against

    def split(self, target: int) -> tuple[int, int | None]:
        """The explained class and the class it is contrasted against (None: no contrast)."""
        if target < self.classes:
            return target, None
        return target // self.classes - 1, target % self.classes

    def target_scores(self, class_scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The explained score of each row (B,) from every class's scores (B, classes)."""
        targets = np.asarray(targets, np.int64)
        rows = np.arange(len(targets))
        contrast = targets >= self.classes
        first = np.where(contrast, targets // self.classes - 1, targets)
        scores = class_scores[rows, first]
        second = class_scores[rows, targets % self.classes]
        return np.where(contrast, scores - second, scores)

    def columns_and_signs(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The two (model column, gradient sign) terms whose sum gives each target's
        score: the class and, for a contrast, the class against (sign -1), or a
        second term of sign 0.

        Returns
        -------
        columns : (B, 2) int
        signs : (B, 2) float
        """
        targets = np.asarray(targets, np.int64)
        contrast = targets >= self.classes
        first = np.where(contrast, targets // self.classes - 1, targets)
        second = np.where(contrast, targets % self.classes, first)
        classes = np.stack([first, second], axis=1)
        signs = np.stack([np.ones(len(targets)), np.where(contrast, -1.0, 0.0)], axis=1)
        if self.columns != 1:
            return classes, signs
        # One column: class 1 is the column, class 0 its complement (gradient negated).
        return np.zeros_like(classes), signs * np.where(classes == 0, -1.0, 1.0)


def complement_of(model: Any) -> Literal["probability", "logit"]:
    """How a one-column model's other class is scored: ``"probability"`` (1 - p) when
    its last layer is a sigmoid (Keras ``activation="sigmoid"``, ``torch.nn.Sigmoid``),
    ``"logit"`` (-z) otherwise.

    Examples
    --------
    >>> complement_of(lambda x: x)
    'logit'
    """
    last = None
    layers = getattr(model, "layers", None)
    if isinstance(layers, Sequence) and layers:
        last = layers[-1]
    elif hasattr(model, "modules") and callable(model.modules):
        modules = list(model.modules())
        last = modules[-1] if modules else None
    if last is None:
        return "logit"
    activation = getattr(last, "activation", None)
    names = {type(last).__name__.lower(), getattr(activation, "__name__", "")}
    return "probability" if "sigmoid" in names else "logit"


# -- model output checks and errors -------------------------------------------------


def checked_output(output: Any, batch: int) -> np.ndarray:
    """The output for ``batch`` inputs as float64 (batch, K), or an error naming ``model``."""
    if isinstance(output, (dict, list, tuple)):
        raise TypeError(
            f"model: expected one tensor of class scores of shape (N, K), "
            f"got a {type(output).__name__}; wrap the model to return a single output"
        )
    scores = np.asarray(output)
    if scores.dtype == bool or np.issubdtype(scores.dtype, np.integer):
        raise TypeError(
            f"model: returns {scores.dtype} values, which cannot be differentiated; "
            "integrated gradients needs float class scores (logits or probabilities), "
            "not labels from argmax"
        )
    # bfloat16 (ml_dtypes) is not a NumPy floating type, but is float scores.
    if not (np.issubdtype(scores.dtype, np.floating) or "float" in scores.dtype.name):
        raise TypeError(
            f"model: expected float class scores (logits or probabilities), "
            f"got values of dtype {scores.dtype}"
        )
    if scores.ndim != 2 or scores.shape[0] != batch or scores.shape[1] == 0:
        hint = (
            "; for a segmentation model's score map give a region target, "
            "target=igw.Region(class_=..., mask=...)"
            if scores.ndim == 4
            else ""
        )
        raise ValueError(
            f"model: expected class scores of shape ({batch}, K) with K >= 1 for a batch of "
            f"{batch}, got shape {scores.shape}{hint}"
        )
    return scores.astype(np.float64)


def _raise_model_failure(error: Exception, shape: tuple[int, ...]) -> None:
    """Report that the model failed on a batch of ``shape``.

    Errors that already name the model go on unchanged; every other is raised
    as ``ValueError("model: ...")`` chained to the original.
    """
    if isinstance(error, (TypeError, ValueError)) and str(error).startswith("model:"):
        raise error
    text = str(error).strip() or "(no message)"
    raise ValueError(
        f"model: failed on a batch of shape {shape} float32: {type(error).__name__}: {text}"
    ) from error


NON_FINITE_HINT = (
    "integrated gradients needs a score that is finite and differentiable along the whole "
    "path; choose another baseline or make the model finite there (e.g. log(x + eps))"
)


def _non_finite(what: str, where: str) -> ValueError:
    return ValueError(f"model: {what} is NaN or infinite at {where}; {NON_FINITE_HINT}")


# -- evaluators ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class _Call:
    """One backend call's arguments (see ``GradientBackend.gradient_sums``) and where
    its group sums go.

    A *line* is one (start row, end row, directional) triple of the batch; a
    *group* the points of one line, one segment and one block of ``BLOCK``
    consecutive points. Only the batch's own lines are sent, and only its
    groups are summed, so the work per call depends on the batch, never on how
    many points or segments the whole computation has.
    """

    rows: np.ndarray
    directional: np.ndarray
    index: np.ndarray
    values: np.ndarray
    group_lines: np.ndarray
    group_segments: np.ndarray
    # The batch's points in the order sent (groups in order), or None if that is the batch's order.
    order: np.ndarray | None

    def send(
        self, backend: GradientBackend, region: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The call's group sums and every point's raw scores, in the batch's order."""
        sums, raw = backend.gradient_sums(
            self.rows, self.directional, self.index, self.values, self.group_lines, region
        )
        raw = np.asarray(raw, np.float64)
        if self.order is not None:
            in_order = raw.copy()  # a new array: a backend's may be read-only
            in_order[self.order] = raw[: len(self.order)]
            raw = in_order
        return np.asarray(sums)[: len(self.group_segments)], raw


def _prepare_call(
    classifier: Classifier,
    batch: PointBatch,
    offset: int,
    starts: Rows,
    ends: Rows,
    n_segments: int,
    padded: int,
    static: bool,
) -> _Call:
    """The arguments of one backend call over ``batch`` (points ``offset``...), padded
    to ``padded`` points (and, for ``static`` backends, lines and groups too)."""
    size = len(batch)
    directional = (batch.directional > 0).astype(np.int64)
    line_keys = (batch.start_index * len(ends) + batch.end_index) * 2 + directional
    keys, first, line_of = np.unique(line_keys, return_index=True, return_inverse=True)
    # Groups sorted by (block, segment, line): each segment's groups are summed
    # in the same order whatever the batches, so sums do not depend on them.
    block = (offset + np.arange(size)) // BLOCK
    group_keys = (block * n_segments + batch.segments) * len(keys) + line_of
    _, group_first, group_of = np.unique(group_keys, return_index=True, return_inverse=True)
    lines = len(keys)
    line_rows = np.concatenate(
        [starts.take(batch.start_index[first]), ends.take(batch.end_index[first])]
    )
    flags = directional[first].astype(np.float32)
    group_lines = line_of[group_first]
    if static:
        # One program per batch shape: lines and groups padded to the batch.
        line_rows = np.concatenate(
            [_pad(line_rows[:lines], padded), _pad(line_rows[lines:], padded)]
        )
        flags = _pad(flags, padded)
        group_lines = _pad(group_lines, padded)
    columns, signs = classifier.columns_and_signs(batch.targets)
    weighted = batch.weights[:, None] * signs
    # The second column only where a point weighs one (a contrast): it costs a
    # gather and its gradient per point in every call.
    two = bool(np.any(signs[:, 1] != 0))
    index_columns = [line_of, columns[:, 0], group_of] + ([columns[:, 1]] if two else [])
    value_columns = [batch.alphas, weighted[:, 0]] + ([weighted[:, 1]] if two else [])
    index, values = np.stack(index_columns, axis=1), np.stack(value_columns, axis=1)
    # Points are sent with their groups in order, so that the backend sums them as
    # sorted segments (TensorFlow on the CPU: 0.5-0.8 ms for 64 demo points against
    # 2.1-2.4 ms unsorted). Stable, so a group's points keep their order: its sum is
    # the same whatever the batch.
    order = None
    if np.any(np.diff(group_of) < 0):
        order = np.argsort(group_of, kind="stable")
        index, values = index[order], values[order]
    index, values = _pad(index, padded), _pad(values, padded)
    # Padding repeats the last point with weight 0: a real point, so its
    # gradient is as finite as that one's, and it adds nothing.
    values[size:, 1:] = 0.0
    return _Call(
        rows=line_rows,
        directional=flags,
        index=index.astype(np.int32),
        values=values.astype(np.float32),
        group_lines=group_lines.astype(np.int32),
        group_segments=batch.segments[group_first],
        order=order,
    )


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with its last row repeated up to ``size`` rows."""
    if len(array) >= size:
        return array
    return np.concatenate([array, np.repeat(array[-1:], size - len(array), axis=0)])


def _plan(
    backend: GradientBackend,
    model: Any,
    shape: tuple[int, ...],
    kind: str,
    total: int,
    batch_size: int | None,
    progress_updates: int | None,
) -> BatchPlan:
    static = getattr(backend, "static_shapes", False)
    tuner = None
    if batch_size is None:
        tuner = tuner_for(backend, model, np.empty(shape, np.float32), kind)
    return BatchPlan(
        total,
        batch_size=batch_size,
        tuner=tuner,
        progress_updates=progress_updates,
        static_shapes=static,
    )


def evaluate_points(
    classifier: Classifier,
    points: Points,
    *,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    progress_updates: int | None = None,
    all_scores: bool = False,
    accumulate: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Weighted gradient sums per segment and the target scores of a point set.

    Runs the points through ``classifier``'s backend in batches of the one
    batching rule (``ig_widget.batching``; or ``batch_size`` each), halving a
    batch that runs out of memory (same result, other grouping), and calls
    ``progress(done, total)`` after each batch (``False`` cancels with
    ``ComputationCancelled``; ``progress_updates`` asks for at least that many
    calls). A model that fails on any batch is reported as
    ``ValueError("model: ...")`` chained to the original error; a score or
    gradient that is NaN or infinite anywhere raises ``ValueError`` naming the
    model and the point (``points.describe``), so sums are always finite.

    Each batch sends the backend only the start and end rows of its own
    lines and sums only into its own segments. Sums are reproducible bit for
    bit whatever batches the tuner picks: each segment adds the float32 sums of
    fixed blocks of ``BLOCK`` points in one order, and automatic batches
    start on block boundaries (see ``ig_widget.batching``).

    Parameters
    ----------
    classifier : Classifier
        From ``ig_widget.engine.prepare`` (``prepared.classifier``).
    points : PointSet, PathPoints or any ``Points``
    all_scores : bool
        Return every class's score per point (B, classes), not only the target's (B,).
    accumulate : callable, optional
        Called as ``accumulate(segment_ids, sums)`` with each batch's float64
        sums (one row per id) instead of adding them into one array; then no
        sums are returned. For statistics over per-point gradients (one
        segment per point) without keeping them all.

    Returns
    -------
    sums : ndarray float64 (n_segments, H, W, C), or None with ``accumulate``
    scores : ndarray float64 (B,) or (B, classes)

    Examples
    --------
    Integrated gradients of a linear model from two baselines, and its plain
    gradient, in one call: the direction is folded in, so ``sums[0]`` is
    already ``w * (x - x')`` averaged over the baselines.

    >>> import tensorflow as tf
    >>> from ig_widget.engine import prepare
    >>> from ig_widget.options import IGOptions
    >>> w = tf.constant([[1.0, 0.0], [2.0, 0.0], [3.0, 1.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> image = np.full((1, 1, 3), 10.0, np.float32)
    >>> prepared = prepare(model, image, IGOptions())
    >>> baselines = np.stack([np.zeros_like(image), np.full_like(image, 4.0)])
    >>> alphas = [0.0, 0.5, 1.0] * 2 + [1.0]
    >>> quarter = [0.25, 0.5, 0.25]  # trapezoid weights, halved for two baselines
    >>> points = PointSet(
    ...     starts=np.concatenate([baselines, image[None]]), ends=image[None],
    ...     start_index=[0, 0, 0, 1, 1, 1, 2], end_index=[0] * 7, alphas=alphas,
    ...     weights=[q / 2 for q in quarter] * 2 + [1.0], directional=[1] * 6 + [0],
    ...     targets=[0] * 7, segments=[0] * 6 + [1], n_segments=2)
    >>> sums, scores = evaluate_points(prepared.classifier, points)
    >>> sums[0].ravel().round(4).tolist(), sums[1].ravel().tolist()  # IG, gradient
    ([8.0, 16.0, 24.0], [1.0, 2.0, 3.0])
    >>> scores.round(4).tolist()  # target score at each point
    [0.0, 30.0, 60.0, 24.0, 42.0, 60.0, 60.0]
    """
    backend = classifier.backend
    starts, ends = as_rows(points.starts), as_rows(points.ends)
    shape = starts.shape
    total = len(points)
    plan = _plan(backend, classifier.model, shape, "gradients", total, batch_size, progress_updates)
    static = getattr(backend, "static_shapes", False)
    sums = None if accumulate is not None else np.zeros((points.n_segments, *shape), np.float64)
    scores = np.empty((total, classifier.classes) if all_scores else total, np.float64)
    done = 0
    while done < total:
        size = plan.next_size(total - done)
        padded = plan.padded(size)
        batch = points.batch(done, done + size)
        call = _prepare_call(
            classifier, batch, done, starts, ends, points.n_segments, padded, static
        )
        started = plan.clock()
        try:
            group_sums, raw = call.send(backend, classifier.region)
        except Exception as exc:
            if not backend.is_out_of_memory(exc):
                _raise_model_failure(exc, (padded, *shape))
            plan.out_of_memory(size)
            continue
        plan.record(size, plan.clock() - started)
        raw = raw[:size]
        _check_batch(classifier, points, batch, done, raw, group_sums, starts, ends, padded)
        if accumulate is not None:
            ids, inverse = np.unique(call.group_segments, return_inverse=True)
            per_segment = np.zeros((len(ids), *shape), np.float64)
            _add_in_order(per_segment, inverse, group_sums)
            accumulate(ids, per_segment)
        else:
            assert sums is not None
            _add_in_order(sums, call.group_segments, group_sums)
        class_scores = classifier.class_scores(raw)
        scores[done : done + size] = (
            class_scores if all_scores else classifier.target_scores(class_scores, batch.targets)
        )
        done += size
        report_progress(progress, done, total)
    return sums, scores


def _add_in_order(sums: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``sums[rows[i]] += values[i]`` one after another, in order, so that a row's
    additions happen in the same order whatever the batches (``np.add.at`` does
    the same, 40 times slower on image rows)."""
    for row, value in zip(rows.tolist(), values, strict=True):
        sums[row] += value


def _check_batch(
    classifier: Classifier,
    points: Points,
    batch: PointBatch,
    offset: int,
    raw: np.ndarray,
    group_sums: np.ndarray,
    starts: Rows,
    ends: Rows,
    padded: int,
) -> None:
    """Raise naming the model and the first point where a score or gradient is not finite."""
    finite_scores = np.all(np.isfinite(raw), axis=1)
    if not np.all(finite_scores):
        first = int(np.argmin(finite_scores))
        raise _non_finite("its score", points.describe(offset + first))
    if np.all(np.isfinite(group_sums)):
        return
    # Find the point: its batch again, one segment per point.
    per_point = dataclasses.replace(batch, segments=np.arange(len(batch)))
    last = points.describe(offset + len(batch) - 1)
    between = f"one of the points from {points.describe(offset)} to {last}"
    backend = classifier.backend
    call = _prepare_call(
        classifier,
        per_point,
        offset,
        starts,
        ends,
        len(batch),
        padded,
        getattr(backend, "static_shapes", False),
    )
    try:
        point_sums, _ = call.send(backend, classifier.region)
    except Exception as exc:
        raise _non_finite("its gradient", between) from exc
    bad = ~np.all(np.isfinite(point_sums.reshape(len(point_sums), -1)), axis=1)
    if np.any(bad):
        where = offset + int(call.group_segments[int(np.argmax(bad))])
        raise _non_finite("its gradient", points.describe(where))
    raise ValueError(
        f"model: the weighted sum of its gradients overflows float32 at {between}; "
        f"{NON_FINITE_HINT}"
    )


def predict_rows(
    backend: GradientBackend,
    model: Any,
    rows: np.ndarray | Rows,
    *,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    progress_updates: int | None = None,
    describe: Callable[[int], str] | None = None,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """The model's raw output (N, K) for every row, in batches; checked, float64.

    The forward-pass evaluator under ``evaluate_scores``, for use before a
    ``Classifier`` exists (``prepare``'s one forward pass). Batching,
    progress, cancellation, out-of-memory halving and model errors are as in
    ``evaluate_points``; non-finite scores are refused naming the row
    (``describe``). ``region`` reduces a score map (see ``Classifier.region``).
    """
    rows = as_rows(rows)
    total = len(rows)
    plan = _plan(backend, model, rows.shape, "forward", total, batch_size, progress_updates)
    out: np.ndarray | None = None
    done = 0
    while done < total:
        size = plan.next_size(total - done)
        padded = plan.padded(size)
        batch = _pad(rows.take(np.arange(done, done + size)), padded)
        started = plan.clock()
        try:
            output = backend.predict(batch, region)
        except Exception as exc:
            if not backend.is_out_of_memory(exc):
                _raise_model_failure(exc, batch.shape)
            plan.out_of_memory(size)
            continue
        plan.record(size, plan.clock() - started)
        output = checked_output(output, padded)[:size]
        if out is None:
            out = np.empty((total, output.shape[1]), np.float64)
        elif output.shape[1] != out.shape[1]:
            raise ValueError(
                f"model: returned {output.shape[1]} class scores for one batch and "
                f"{out.shape[1]} for another"
            )
        finite = np.all(np.isfinite(output), axis=1)
        if not np.all(finite):
            first = done + int(np.argmin(finite))
            where = describe(first) if describe is not None else f"row {first}"
            raise ValueError(f"model: returned NaN or infinite scores for {where}")
        out[done : done + size] = output
        done += size
        report_progress(progress, done, total)
    assert out is not None
    return out


def evaluate_scores(
    classifier: Classifier,
    rows: np.ndarray | Rows,
    *,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    progress_updates: int | None = None,
    describe: Callable[[int], str] | None = None,
) -> np.ndarray:
    """Every class's score (N, classes) for many images: forward passes only, batched.

    Same batching rule (its own tuner: forward passes cost less than
    gradients), progress, cancellation and errors as ``evaluate_points``. For
    insertion/deletion curves and baseline scores.

    Examples
    --------
    >>> import tensorflow as tf
    >>> from ig_widget.engine import prepare
    >>> from ig_widget.options import IGOptions
    >>> model = lambda x: tf.reshape(tf.reduce_mean(x, axis=[1, 2, 3]), (-1, 1))
    >>> image = np.full((4, 4, 3), 0.5, np.float32)
    >>> prepared = prepare(model, image, IGOptions())  # one column: two classes
    >>> deleted = np.stack([image * keep for keep in (1.0, 0.5, 0.0)])
    >>> evaluate_scores(prepared.classifier, deleted).tolist()  # [-z, z] per image
    [[-0.5, 0.5], [-0.25, 0.25], [-0.0, 0.0]]
    """
    raw = predict_rows(
        classifier.backend,
        classifier.model,
        rows,
        batch_size=batch_size,
        progress=progress,
        progress_updates=progress_updates,
        describe=describe,
        region=classifier.region,
    )
    if raw.shape[1] != classifier.columns:
        raise ValueError(
            f"model: returned {raw.shape[1]} class scores, {classifier.columns} before"
        )
    return classifier.class_scores(raw)
