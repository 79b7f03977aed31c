"""Integrated Gradients and plain gradients for image classifiers.

Data flows one way: (model, image) -> backend calls in batches -> ``IGResult``.
The framework-specific work lives in ``ig_widget.backends``; this module does
the validation, batching, quadrature bookkeeping and completeness check.
"""

from __future__ import annotations

import math
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .backends import PRECISIONS, GradientBackend, backend_for
from .baselines import BASELINES, make_baselines
from .quadrature import METHODS, integration_points, trapezoid_refinement
from .validation import as_image, check_choice, check_int, check_number

MAX_STEPS = 10_000
# steps="auto" starts from this many trapezoid intervals and doubles up to the cap.
AUTO_START_INTERVALS = 8
AUTO_MAX_INTERVALS = 512
# Batch sizing (see batch_size_for): share of free memory the engine may use,
# the fixed budget where free memory is unknown (GPUs under TensorFlow), and
# the cap beyond which larger batches stop paying off.
MEMORY_SHARE = 0.25
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
MAX_BATCH = 256

ProgressCallback = Callable[[int, int], "bool | None"]


class ComputationCancelled(Exception):
    """Raised when a ``progress`` callback returns ``False``."""


@dataclass(frozen=True, eq=False)
class IGResult:
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

    @property
    def score(self) -> float:
        """Model output for the target class at the image."""
        return float(self.scores[self.target])


def _check_callable(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name}: expected a callable or None, got {type(value).__name__}")


def _check_target(target: Any) -> int | None:
    if target is None:
        return None
    if hasattr(target, "numpy") and not isinstance(target, np.ndarray):
        target = target.numpy()
    if isinstance(target, np.ndarray) and target.ndim == 0:
        target = target.item()
    return check_int("target", target, low=0)


def _check_steps(steps: Any, method: str) -> int | Literal["auto"]:
    if steps == "auto":
        if method != "trapezoid":
            raise ValueError(
                f"steps: 'auto' refines nested trapezoid grids and needs method='trapezoid', "
                f"got method={method!r}"
            )
        return "auto"
    return check_int("steps", steps, low=1, high=MAX_STEPS)


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


def _checked_scores(output: Any, batch: int) -> np.ndarray:
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
    if scores.ndim != 2 or scores.shape[0] != batch:
        raise ValueError(
            f"model: expected class scores of shape ({batch}, K) for a batch of {batch}, "
            f"got shape {scores.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("model: returned NaN or infinite scores for the image")
    return scores.astype(np.float64)


def _prepare(
    model: Any, image: Any, target: Any, preprocess: Any, precision: Any
) -> tuple[GradientBackend, np.ndarray, np.ndarray, int]:
    """Validate model-independent input, run the model once and resolve the target."""
    if model is None or not callable(model):
        raise TypeError(f"model: expected a Keras model or callable, got {type(model).__name__}")
    _check_callable("preprocess", preprocess)
    precision = check_choice("precision", precision, PRECISIONS)
    target = _check_target(target)
    image = as_image(image)
    if preprocess is None:
        _check_model_input(model, image)
    backend = backend_for(model, preprocess, precision)
    try:
        output = backend.predict(image[None])
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"model: failed on a batch of shape {(1, *image.shape)} float32: {exc}"
        ) from exc
    scores = _checked_scores(output, 1)[0]
    if target is None:
        target = int(np.argmax(scores))
    elif target >= scores.shape[0]:
        raise ValueError(
            f"target: expected a class index in [0, {scores.shape[0] - 1}], got {target}"
        )
    return backend, image, scores, target


def batch_size_for(backend: GradientBackend, model: Any, image: np.ndarray) -> int:
    """Points per model call when ``batch_size=None``: the memory rule.

    ``batch = clip(budget // per_point, 1, 256)``, where

    - ``budget`` is a quarter of the memory free for this computation: free
      GPU memory where the framework reports it (PyTorch's
      ``torch.cuda.mem_get_info`` plus its cached blocks, JAX's device
      ``memory_stats``), available RAM (``MemAvailable``) on the CPU, and a
      fixed 2 GiB where neither is known (TensorFlow on a GPU);
    - ``per_point = backend.activation_bytes * activations + 16 * pixels``:
      ``activations`` is the sum of a Keras model's layer output sizes for one
      image (64 values per input value for models without Keras layers), and
      ``activation_bytes`` is the peak memory one such value costs in a
      backward pass, measured on Xception at 299x299 on the CPU and rounded
      up: TensorFlow 1.6 -> 2 bytes, JAX 3.1 -> 4, PyTorch 9.3 -> 10 (graph
      compilers drop most intermediates, eager PyTorch keeps them);
      ``16 * pixels`` covers the point, its gradient and the sums.

    A quarter leaves room for the model, the framework and other programs; an
    out-of-memory error on a GPU still halves the batch (on the CPU the
    operating system may kill the process instead, hence the margins). With
    TensorFlow and 24 GiB free, a 1024x1024 image through Xception gets
    batches of 4 (about 1 GiB per point measured; the earlier estimate of 12
    bytes per value gave batches of 1), and a 299x299 image batches of 49.

    Examples
    --------
    >>> import keras
    >>> from ig_widget.backends import backend_for
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    >>> 1 <= batch_size_for(backend_for(model, None), model, np.zeros((8, 8, 3))) <= 256
    True
    """
    free = backend.free_memory_bytes()
    budget = DEFAULT_MEMORY_BUDGET if free is None else int(free * MEMORY_SHARE)
    per_point = backend.activation_bytes * _activation_values(model, image) + 16 * image.size
    return int(min(MAX_BATCH, max(1, budget // per_point)))


# The rule's batch per backend and image shape, fixed at first use: free
# memory drifts from call to call, and under JAX every new batch size is a new
# compilation.
_automatic_batches: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], int]] = (
    weakref.WeakKeyDictionary()
)


def automatic_batch_size(backend: GradientBackend, model: Any, image: np.ndarray) -> int:
    """The batch ``batch_size=None`` uses: ``batch_size_for``, once per backend and image shape.

    Examples
    --------
    >>> import keras
    >>> from ig_widget.backends import backend_for
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    >>> backend = backend_for(model, None)
    >>> first = automatic_batch_size(backend, model, np.zeros((8, 8, 3)))
    >>> first == automatic_batch_size(backend, model, np.ones((8, 8, 3)))
    True
    """
    per_shape = _automatic_batches.setdefault(backend, {})
    if image.shape not in per_shape:
        per_shape[image.shape] = batch_size_for(backend, model, image)
    return per_shape[image.shape]


def balanced_batch_size(points: int, limit: int) -> int:
    """Batch that splits ``points`` into the fewest calls of at most ``limit``, evenly.

    Examples
    --------
    >>> balanced_batch_size(103, 64)  # 52 + 51, not 64 + 39
    52
    """
    return math.ceil(points / math.ceil(points / limit))


def _activation_values(model: Any, image: np.ndarray) -> int:
    """Float values one image produces through the model's layers (see ``batch_size_for``)."""
    fallback = 64 * image.size
    try:
        layers = model.layers
    except AttributeError:
        return fallback
    total = 0
    for layer in layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            return fallback
        # An unknown (None) spatial size is taken as the image's longer side:
        # an overestimate for downsampled layers, which only costs speed.
        total += math.prod(d if d is not None else max(image.shape[:2]) for d in shape[1:])
    return max(total, image.size)


class _PathEvaluator:
    """Evaluates weighted gradient sums over many path points, in batches.

    Halves the batch and retries on an out-of-memory error (the result is the
    same, only the grouping of points changes), and reports progress. With
    ``balance`` (an automatic batch size) the points of one call are split
    into equal batches (103 points under a limit of 64: 52 + 51, not 64 + 39),
    which costs the same and shows compiled backends fewer batch shapes.

    The plain gradient at the image rides along in the first call instead of
    costing a call of its own: the image is one more start row, and the point
    at alpha = 1 on the path from the image to itself is the image exactly.
    """

    def __init__(
        self,
        backend: GradientBackend,
        image: np.ndarray,
        baselines: np.ndarray,
        target: int,
        batch_size: int,
        progress: ProgressCallback | None,
        balance: bool = False,
    ) -> None:
        self.backend = backend
        self.image = image
        self.runs = baselines.shape[0]
        # Every call gets the same start rows, so compiled programs see one shape.
        self.starts = np.concatenate([baselines, image[None]])
        self.target = target
        self.batch_size = batch_size
        self.progress = progress
        self.balance = balance
        self.image_gradient: np.ndarray | None = None
        self.done = 0
        self.total = 0

    def evaluate(
        self, alphas: np.ndarray, weights: np.ndarray, *, image_gradient: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradient sums per baseline and target scores (runs, len(alphas)).

        With ``image_gradient`` the plain gradient at the image is computed
        too and kept in ``self.image_gradient``.
        """
        path_points = self.runs * len(alphas)
        run_index = np.repeat(np.arange(self.runs, dtype=np.int32), len(alphas))
        all_alphas = np.tile(alphas, self.runs).astype(np.float32)
        all_weights = np.tile(weights, self.runs).astype(np.float32)
        if image_gradient:
            run_index = np.append(run_index, np.int32(self.runs))
            all_alphas = np.append(all_alphas, np.float32(1))
            all_weights = np.append(all_weights, np.float32(1))
        sums = np.zeros(self.starts.shape, np.float64)
        scores = np.empty(len(all_alphas), np.float64)
        start = 0
        while start < len(all_alphas):
            remaining = len(all_alphas) - start
            size = min(self.batch_size, remaining)
            if self.balance:
                size = balanced_batch_size(remaining, self.batch_size)
            stop = start + size
            try:
                batch_sums, batch_scores = self.backend.gradient_sums(
                    self.image,
                    self.starts,
                    run_index[start:stop],
                    all_alphas[start:stop],
                    all_weights[start:stop],
                    self.target,
                )
            except Exception as exc:
                if not self.backend.is_out_of_memory(exc):
                    raise
                if self.batch_size == 1:
                    raise MemoryError(
                        "batch_size: out of memory even for one point at a time; "
                        "use a smaller image or a smaller model"
                    ) from exc
                self.batch_size = max(1, self.batch_size // 2)
                continue
            sums += batch_sums
            scores[start:stop] = batch_scores[:, self.target]
            self.done += min(stop, path_points) - min(start, path_points)
            start = stop
            if self.progress is not None and self.progress(self.done, self.total) is False:
                raise ComputationCancelled(
                    "integrated gradients cancelled by the progress callback"
                )
        if image_gradient:
            self.image_gradient = sums[self.runs].astype(np.float32)
        return sums[: self.runs], scores[:path_points].reshape(self.runs, len(alphas))


def _gradient_at_image(backend: GradientBackend, image: np.ndarray, target: int) -> np.ndarray:
    # One point at alpha = 1 on a path that starts at the image itself is
    # exactly the image, so the shared compiled program serves here too.
    sums, _ = backend.gradient_sums(
        image,
        image[None],
        np.zeros(1, np.int32),
        np.ones(1, np.float32),
        np.ones(1, np.float32),
        target,
    )
    return sums[0].astype(np.float32)


def _baseline_scores(
    backend: GradientBackend,
    baselines: np.ndarray,
    alphas: np.ndarray,
    path_scores: np.ndarray,
    target: int,
) -> np.ndarray:
    # A rule that evaluates alpha = 0 has already scored the baselines exactly.
    if alphas[0] == 0.0:
        return path_scores[:, 0]
    return _checked_scores(backend.predict(baselines), len(baselines))[:, target]


def _relative_delta(attributions: np.ndarray, score: float, baseline_scores: np.ndarray) -> float:
    expected = score - float(np.mean(baseline_scores))
    gap = float(np.sum(attributions, dtype=np.float64)) - expected
    return abs(gap) / max(abs(expected), 1e-12)


def integrated_gradients(
    model: Any,
    image: Any,
    *,
    target: int | None = None,
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
        One image (H, W, C) or (H, W) in raw pixel units (see ``pixel_range``).
    target : int, optional
        Class to explain; default the top predicted class.
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
        Points per model call; default from the memory budget (see
        ``batch_size_for``), chosen at the first call for a model and image
        shape. An out-of-memory error halves it and retries, with the same
        result.
    seed : int, optional
        Seed of the uniform baselines.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch; returning
        ``False`` cancels with ``ComputationCancelled``.
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
    started = time.perf_counter()
    method = check_choice("method", method, METHODS)
    steps = _check_steps(steps, method)
    runs = check_int("runs", runs, low=1, high=MAX_STEPS)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1)
    if seed is not None:
        seed = check_int("seed", seed, low=0)
    tolerance = check_number("tolerance", tolerance, low=0.0)
    if isinstance(baseline, str):
        check_choice("baseline", baseline, BASELINES)
    _check_callable("progress", progress)
    low, high = (check_number("pixel_range", v) for v in pixel_range)

    backend, image, scores, target = _prepare(model, image, target, preprocess, precision)
    # Deterministic baselines give identical runs: evaluate one and reuse it.
    distinct_runs = runs if isinstance(baseline, str) and baseline == "uniform" else 1
    baselines = make_baselines(image, baseline, distinct_runs, seed=seed, pixel_range=(low, high))
    evaluator = _PathEvaluator(
        backend,
        image,
        baselines,
        target,
        batch_size or automatic_batch_size(backend, model, image),
        progress,
        balance=batch_size is None,
    )
    directions = (image[None] - baselines).astype(np.float64)

    if steps == "auto":
        intervals = AUTO_START_INTERVALS
        alphas, _ = integration_points("trapezoid", intervals)
        # Unnormalised trapezoid weights: halves at the ends, ones inside.
        raw_weights = np.ones_like(alphas)
        raw_weights[[0, -1]] = 0.5
        evaluator.total = distinct_runs * len(alphas)
        sums, path_scores = evaluator.evaluate(alphas, raw_weights, image_gradient=True)
        baseline_scores = _baseline_scores(backend, baselines, alphas, path_scores, target)
        while True:
            attributions = np.mean(directions * sums, axis=0) / intervals
            delta = _relative_delta(attributions, scores[target], baseline_scores)
            if delta <= tolerance:
                break
            if intervals >= AUTO_MAX_INTERVALS:
                warnings.warn(
                    f"steps='auto' stopped at its cap of {AUTO_MAX_INTERVALS} intervals with "
                    f"delta={delta:.3g} > tolerance={tolerance:g}: the score along the path "
                    "is rough (ReLU and max-pool switching) or barely changes; "
                    "the result's delta says how far completeness is off",
                    RuntimeWarning,
                    stacklevel=2,
                )
                break
            midpoints = trapezoid_refinement(intervals)
            evaluator.total += distinct_runs * len(midpoints)
            more_sums, more_scores = evaluator.evaluate(midpoints, np.ones_like(midpoints))
            sums += more_sums
            alphas = np.concatenate([alphas, midpoints])
            path_scores = np.concatenate([path_scores, more_scores], axis=1)
            intervals *= 2
        steps = intervals
    else:
        alphas, weights = integration_points(method, steps)
        evaluator.total = distinct_runs * len(alphas)
        sums, path_scores = evaluator.evaluate(alphas, weights, image_gradient=True)
        baseline_scores = _baseline_scores(backend, baselines, alphas, path_scores, target)
        attributions = np.mean(directions * sums, axis=0)
        delta = _relative_delta(attributions, scores[target], baseline_scores)

    # Both branches above ask their first evaluation for the gradient at the image.
    assert evaluator.image_gradient is not None
    order = np.argsort(alphas, kind="stable")
    return IGResult(
        attributions=attributions.astype(np.float32),
        gradients=evaluator.image_gradient,
        target=target,
        scores=scores,
        path_alphas=alphas[order],
        path_scores=np.repeat(path_scores[:, order], runs // distinct_runs, axis=0),
        baseline_scores=np.repeat(baseline_scores, runs // distinct_runs),
        delta=delta,
        steps=int(steps),
        method=method,
        runs=runs,
        points_used=evaluator.done,
        elapsed_s=time.perf_counter() - started,
    )


def gradients(
    model: Any,
    image: Any,
    *,
    target: int | None = None,
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
    backend, image, _, target = _prepare(model, image, target, preprocess, precision)
    return _gradient_at_image(backend, image, target)
