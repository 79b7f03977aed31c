"""Integrated Gradients and plain gradients for image classifiers.

Data flows one way: (model, image) -> backend calls in batches -> ``IGResult``.
The framework-specific work lives in ``ig_widget.backends``; this module does
the validation, batching, quadrature bookkeeping and completeness check.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .backends import GradientBackend, backend_for
from .baselines import BASELINES, make_baselines
from .quadrature import METHODS, integration_points, trapezoid_refinement
from .validation import as_image, check_choice, check_int, check_number

MAX_STEPS = 10_000
# steps="auto" starts from this many trapezoid intervals and doubles up to the cap.
AUTO_START_INTERVALS = 8
AUTO_MAX_INTERVALS = 512
# Batch sizing: share of available RAM the engine may use on CPU, the fixed
# budget where free memory is unknown (GPUs under TensorFlow), and the cap
# beyond which larger batches stop paying off.
RAM_SHARE = 0.25
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
    model: Any, image: Any, target: Any, preprocess: Any
) -> tuple[GradientBackend, np.ndarray, np.ndarray, int]:
    """Validate model-independent input, run the model once and resolve the target."""
    if model is None or not callable(model):
        raise TypeError(f"model: expected a Keras model or callable, got {type(model).__name__}")
    _check_callable("preprocess", preprocess)
    target = _check_target(target)
    image = as_image(image)
    if preprocess is None:
        _check_model_input(model, image)
    backend = backend_for(model, preprocess)
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


def _batch_size_for(backend: GradientBackend, model: Any, image: np.ndarray) -> int:
    """Points per batch that fit the memory budget (see README, 'Memory')."""
    free = backend.free_memory_bytes()
    budget = DEFAULT_MEMORY_BUDGET if free is None else int(free * RAM_SHARE)
    per_point = 4 * _activation_values(model, image) * 3
    return int(min(MAX_BATCH, max(1, budget // max(per_point, 1))))


def _activation_values(model: Any, image: np.ndarray) -> int:
    """Estimate of the float values one image keeps alive through forward and backward.

    For a Keras model, the sum of its layers' output sizes; for other
    callables, a generous multiple of the image size.
    """
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
        total += math.prod(d if d is not None else max(image.shape[:2]) for d in shape[1:])
    return max(total, image.size)


class _PathEvaluator:
    """Evaluates weighted gradient sums over many path points, in batches.

    Halves the batch and retries on an out-of-memory error (the result is the
    same, only the grouping of points changes), and reports progress.
    """

    def __init__(
        self,
        backend: GradientBackend,
        image: np.ndarray,
        baselines: np.ndarray,
        target: int,
        batch_size: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.backend = backend
        self.image = image
        self.baselines = baselines
        self.target = target
        self.batch_size = batch_size
        self.progress = progress
        self.done = 0
        self.total = 0

    def evaluate(self, alphas: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient sums per baseline and target scores (runs, len(alphas))."""
        runs = self.baselines.shape[0]
        run_index = np.repeat(np.arange(runs, dtype=np.int32), len(alphas))
        all_alphas = np.tile(alphas, runs).astype(np.float32)
        all_weights = np.tile(weights, runs).astype(np.float32)
        sums = np.zeros(self.baselines.shape, np.float64)
        scores = np.empty(len(all_alphas), np.float64)
        start = 0
        while start < len(all_alphas):
            stop = min(start + self.batch_size, len(all_alphas))
            try:
                batch_sums, batch_scores = self.backend.gradient_sums(
                    self.image,
                    self.baselines,
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
            self.done += stop - start
            start = stop
            if self.progress is not None and self.progress(self.done, self.total) is False:
                raise ComputationCancelled(
                    "integrated gradients cancelled by the progress callback"
                )
        return sums, scores.reshape(runs, len(alphas))


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
) -> IGResult:
    """Integrated gradients of ``model``'s ``target`` score at ``image``.

    Parameters
    ----------
    model : Keras model or callable
        Maps a float32 batch (N, H, W, C) to class scores (N, K), logits or
        probabilities. A ``torch.nn.Module`` or a Keras model on the JAX or
        PyTorch backend is differentiated with that framework.
    image : array, PIL image or path
        One image (H, W, C) or (H, W) in raw pixel units (see ``pixel_range``).
    target : int, optional
        Class to explain; default the top predicted class.
    baseline : {"black", "white", "uniform", "blur"} or array
        Where the path starts. ``"uniform"`` is noise over ``pixel_range``.
    steps : int or "auto"
        Intervals of the integration rule (trapezoid: ``steps + 1`` points).
        ``"auto"`` doubles a trapezoid grid, reusing every evaluation, until
        ``delta <= tolerance`` or 512 intervals.
    runs : int
        Number of baselines to average over (independent draws for "uniform").
    method : {"trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre"}
    preprocess : callable, optional
        Applied to each batch of raw points inside the differentiated
        computation, so attributions are in raw pixel units and completeness
        holds in them (unlike the Keras example this package grew from).
    batch_size : int, optional
        Points per model call; default from the memory budget. An
        out-of-memory error halves it and retries, with the same result.
    seed : int, optional
        Seed of the uniform baselines.
    progress : callable, optional
        Called as ``progress(done, total)`` after each batch; returning
        ``False`` cancels with ``ComputationCancelled``.
    tolerance : float
        Target ``delta`` for ``steps="auto"``.
    pixel_range : (float, float)
        Darkest and brightest pixel value, for the black, white and uniform baselines.

    Returns
    -------
    IGResult

    Examples
    --------
    >>> import tensorflow as tf
    >>> w = tf.constant([[1.0], [2.0], [3.0]])
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ w
    >>> res = integrated_gradients(model, np.ones((1, 1, 3)) * 10)
    >>> res.attributions.ravel().tolist()
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

    backend, image, scores, target = _prepare(model, image, target, preprocess)
    # Deterministic baselines give identical runs: evaluate one and reuse it.
    distinct_runs = runs if isinstance(baseline, str) and baseline == "uniform" else 1
    baselines = make_baselines(image, baseline, distinct_runs, seed=seed, pixel_range=(low, high))
    baseline_scores = _checked_scores(backend.predict(baselines), distinct_runs)[:, target]
    evaluator = _PathEvaluator(
        backend,
        image,
        baselines,
        target,
        batch_size or _batch_size_for(backend, model, image),
        progress,
    )
    directions = (image[None] - baselines).astype(np.float64)

    if steps == "auto":
        intervals = AUTO_START_INTERVALS
        alphas, _ = integration_points("trapezoid", intervals)
        # Unnormalised trapezoid weights: halves at the ends, ones inside.
        raw_weights = np.ones_like(alphas)
        raw_weights[[0, -1]] = 0.5
        evaluator.total = distinct_runs * len(alphas)
        sums, path_scores = evaluator.evaluate(alphas, raw_weights)
        while True:
            attributions = np.mean(directions * sums, axis=0) / intervals
            delta = _relative_delta(attributions, scores[target], baseline_scores)
            if delta <= tolerance or intervals >= AUTO_MAX_INTERVALS:
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
        sums, path_scores = evaluator.evaluate(alphas, weights)
        attributions = np.mean(directions * sums, axis=0)
        delta = _relative_delta(attributions, scores[target], baseline_scores)

    order = np.argsort(alphas, kind="stable")
    return IGResult(
        attributions=attributions.astype(np.float32),
        gradients=_gradient_at_image(backend, image, target),
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
    backend, image, _, target = _prepare(model, image, target, preprocess)
    return _gradient_at_image(backend, image, target)
