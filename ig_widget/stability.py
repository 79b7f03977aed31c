"""Stability of an attribution map: one method run several times, and how much its map moves.

``stability`` runs a method of the registry (``ig_widget.explainers.REGISTRY``)
several times on one image, each run differing only in what should not matter:
the seed of a random method (``draws``: noise of SmoothGrad, references drawn
by Expected Gradients, uniform-noise baselines of integrated gradients) or the
baseline (``baselines``). Each run is the method's own function; nothing here
computes attributions. From the runs' maps, summed over the channels:

- the per-pixel **spread**, the standard deviation over the runs, and the mean map;
- the mean pairwise **Spearman rank correlation** between the runs (1: every
  run ranks the pixels alike);
- the **top share**: of the top 5 % pixels (by attribution, largest first, as
  ``insertion_deletion`` ranks them), the share that is in the top of every run.

``explain_dataset(..., stability=n)`` gives the last two as columns, computed
by the same functions (``rank_correlation``, ``top_share``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .explainers import REGISTRY
from .explainers.common import baseline_rows
from .faithfulness import pixel_ranks
from .options import IGOptions, check_callable
from .points import ProgressCallback
from .render import TOP_PIXELS_PERCENT
from .report_section import Picture, ReportSection, Table
from .validation import as_image, check_choice, check_int, check_number

MAX_RUNS = 100
# Methods whose only random part is a uniform-noise baseline (their default
# baselines are deterministic, so draws of them would all be one map): their draws
# start from uniform noise unless ``parameters`` gives the baseline.
UNIFORM_DRAWS: dict[str, tuple[str, Any]] = {
    "integrated_gradients": ("baseline", "uniform"),
    "guided_ig": ("baseline", "uniform"),
    "occlusion": ("baseline", "uniform"),
    "xrai": ("baselines", ("uniform", "uniform")),
}
# What ``stability`` passes every run itself; ``parameters`` cannot set them.
SET_BY_STABILITY = ("model", "image", "target", "preprocess", "precision", "progress")


@dataclass(frozen=True, eq=False)
class StabilityResult:
    """Several runs of one method on one image, and how far their maps agree.

    Attributes
    ----------
    image : ndarray, float32 (H, W, C)
        The explained image.
    attributions : ndarray, float32 (runs, H, W, C)
        Each run's map.
    runs : tuple of str
        What each run was: ``"seed=3"`` or ``"baseline='white'"``.
    method : str
        The registry name of the method (``"integrated_gradients"``, ``"smoothgrad"``, ...).
    parameters : dict
        The method's parameters every run shared.
    target : int
        The explained class.
    explained : str
        What every run explained, in words (``IGResult.explained``: a contrast or a
        region named).
    scores : ndarray, (K,)
        Model output at the image.
    mean : ndarray, float32 (H, W, C)
        The mean map over the runs.
    spread : ndarray, float64 (H, W)
        Per pixel, the standard deviation over the runs of the channel-summed map.
    pairwise : ndarray, float64 (runs, runs)
        Spearman rank correlation of each pair of runs' channel-summed maps.
    rank_correlation : float
        Mean of ``pairwise`` over the pairs of distinct runs.
    top_share : float
        Share of the ``top_percent`` % top pixels of each run that are top in every run.
    top_percent : float
    points_used : int
        Gradient evaluations of all runs together.
    elapsed_s : float
    """

    image: np.ndarray
    attributions: np.ndarray
    runs: tuple[str, ...]
    method: str
    parameters: Mapping[str, Any]
    target: int
    explained: str
    scores: np.ndarray
    mean: np.ndarray
    spread: np.ndarray
    pairwise: np.ndarray
    rank_correlation: float
    top_share: float
    top_percent: float
    points_used: int
    elapsed_s: float

    @property
    def relative_spread(self) -> np.ndarray:
        """The spread over the largest absolute channel-summed mean (H, W): 0 where the runs
        agree, comparable between images; all zeros for a map that is zero everywhere."""
        scale = float(np.max(np.abs(self.mean.sum(axis=2, dtype=np.float64))))
        return self.spread / scale if scale > 0 else np.zeros_like(self.spread)

    def report_section(self) -> ReportSection:
        """The runs, their agreement and the mean and spread pictures, for the audit report."""
        from .export import panels_png
        from .render import channel_maps, display_image

        title = REGISTRY[self.method].title
        count = len(self.runs)
        summary = (
            f"{title} run {count} times on one image for {self.explained} "
            f"({', '.join(self.runs)}).",
            f"Mean pairwise Spearman rank correlation of the maps: "
            f"{self.rank_correlation:.3f} (1: every run ranks the pixels alike).",
            f"Of the top {self.top_percent:g} % pixels, {100 * self.top_share:.1f} % are "
            "top in every run.",
        )
        table = Table(
            caption="Spearman rank correlation between the runs' maps (summed over channels)",
            columns=("run", *self.runs),
            rows=tuple(
                (run, *(round(float(value), 4) for value in row))
                for run, row in zip(self.runs, self.pairwise, strict=True)
            ),
        )
        spread = self.spread.astype(np.float32)
        png = panels_png(
            display_image(self.image),
            [
                (f"Mean of {count} runs", channel_maps(self.mean)),
                ("Spread (std over runs)", (spread, np.zeros_like(spread))),
            ],
            {},
            f"{title}: mean map and per-pixel spread",
        )
        return ReportSection(
            title=f"Stability of {title}",
            summary=summary,
            tables=(table,),
            pictures=(Picture(caption="The image, the mean map and the spread", png=png),),
        )


def channel_sums(attributions: np.ndarray) -> np.ndarray:
    """Maps (runs, H, W, C) summed over the channels, float64 (runs, H, W)."""
    return np.asarray(attributions).sum(axis=-1, dtype=np.float64)


def pairwise_rank_correlations(saliency: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps (runs, H, W): (runs, runs).

    Ties get their average rank, as in ``scipy.stats.spearmanr``. A constant
    map ranks nothing: its correlation with a map that differs is NaN (as in
    SciPy), with an identical map 1.

    Examples
    --------
    >>> maps = np.array([[[1.0, 2.0, 3.0]], [[1.0, 3.0, 2.0]], [[3.0, 2.0, 1.0]]])
    >>> pairwise_rank_correlations(maps).round(3).tolist()
    [[1.0, 0.5, -1.0], [0.5, 1.0, -0.5], [-1.0, -0.5, 1.0]]
    """
    from scipy.stats import rankdata

    flat = np.asarray(saliency, np.float64).reshape(len(saliency), -1)
    ranks = rankdata(flat, axis=1)
    # Ranks are halves and their sums of squares stay below 2 ** 53 for any
    # image size a model takes: the products are exact.
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    squares = np.einsum("ij,ij->i", centred, centred)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlations = (centred @ centred.T) / np.sqrt(np.outer(squares, squares))
    # Equal rankings correlate exactly 1, constant maps included (whose norm is 0).
    _, group = np.unique(ranks, axis=0, return_inverse=True)
    group = group.reshape(-1)
    correlations[group[:, None] == group[None, :]] = 1.0
    return np.clip(correlations, -1.0, 1.0)


def rank_correlation(saliency: np.ndarray) -> float:
    """Mean Spearman rank correlation over the pairs of distinct maps (runs >= 2, (runs, H, W)).

    Examples
    --------
    >>> rank_correlation(np.array([[[1.0, 2.0, 3.0]], [[1.0, 3.0, 2.0]]]))
    0.5
    """
    return _mean_of_pairs(pairwise_rank_correlations(saliency))


def _mean_of_pairs(pairwise: np.ndarray) -> float:
    return float(np.mean(pairwise[np.triu_indices(len(pairwise), k=1)]))


def top_count(pixels: int, percent: float) -> int:
    """Pixels in the top ``percent`` %: rounded up, as the colour key counts them; at least 1.
    Rounded to 9 decimals first, so that 7 % of 100 pixels is 7 although ``100 * 0.07``
    is 7.000000000000001.

    Examples
    --------
    >>> top_count(100, 5), top_count(101, 5), top_count(10, 1), top_count(100, 100 * 0.07)
    (5, 6, 1, 7)
    """
    return max(1, math.ceil(round(pixels * percent / 100, 9)))


def top_share(saliency: np.ndarray, percent: float = TOP_PIXELS_PERCENT) -> float:
    """Share of the top ``percent`` % pixels that are top in every map ((runs, H, W)).

    Pixels are ranked as ``insertion_deletion`` ranks them (largest first,
    ties in row-major order); the top of each map is its ``top_count`` first.

    Examples
    --------
    >>> a = np.arange(20.0).reshape(1, 4, 5)
    >>> b = a.copy(); b[0, 3, 4] = -1.0  # the largest pixel drops out of b's top
    >>> top_share(np.concatenate([a, b]), percent=10)  # top 2: {19, 18} and {18, 17}
    0.5
    """
    maps = np.asarray(saliency)
    count = top_count(maps[0].size, percent)
    in_all = np.logical_and.reduce([pixel_ranks(m) < count for m in maps])
    return float(np.count_nonzero(in_all) / count)


def check_parameters(
    method: str, parameters: Any, reserved: Sequence[str], caller: str
) -> dict[str, Any]:
    """``parameters`` as a dict of ``method``'s own keywords, or raise naming ``parameters``.

    A name in ``reserved`` is set by ``caller`` itself; any other name must
    be a parameter of the method's function.

    Examples
    --------
    >>> check_parameters("occlusion", {"window": 4}, ("target",), "explain_dataset")
    {'window': 4}
    >>> check_parameters("gradcam", {"window": 4}, ("target",), "explain_dataset")
    Traceback (most recent call last):
    ...
    TypeError: parameters: gradcam takes no parameter 'window'
    """
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"parameters: expected a dict of {method}'s parameters, got {type(parameters).__name__}"
        )
    taken = REGISTRY[method].parameters()
    for name in parameters:
        if name in reserved:
            raise ValueError(f"parameters: {name!r} is set by {caller}")
        if name not in taken:
            raise TypeError(f"parameters: {method} takes no parameter {name!r}")
    return dict(parameters)


def _base_seed(seed: Any) -> int:
    if seed is None:
        # Fresh, and recorded in each run's label so that the runs can be repeated.
        return int(np.random.SeedSequence().generate_state(1)[0])
    return check_int("seed", seed, low=0)


def stability(
    model: Any,
    image: Any,
    *,
    method: str = "integrated_gradients",
    draws: int | None = None,
    baselines: Sequence[str | np.ndarray] | None = None,
    seed: int | None = 0,
    parameters: Mapping[str, Any] | None = None,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    precision: str = "float32",
    top_percent: float = TOP_PIXELS_PERCENT,
    progress: ProgressCallback | None = None,
) -> StabilityResult:
    """Run ``method`` several times on ``image`` and measure how much its map moves.

    Parameters
    ----------
    model, image, target, preprocess, precision
        As for ``integrated_gradients``.
    method : str
        A name of ``igw.EXPLAINERS``.
    draws : int, optional
        Runs that differ only by their seed: run ``k`` has ``seed=seed + k``
        (for a method that takes a seed). Integrated gradients, Guided IG and
        occlusion then start from a uniform-noise baseline, XRAI from two,
        unless ``parameters`` gives them: their default baselines have nothing
        to draw. The default when ``baselines`` is not given: 5.
    baselines : sequence, optional
        Instead of ``draws``: one run per baseline (each as
        ``integrated_gradients``'s ``baseline``; a method that takes one),
        for example ``("black", "white", "blur")``.
    seed : int or None
        The first draw's seed (None: a fresh one, named in ``runs``); with
        ``baselines``, the seed of every run.
    parameters : dict, optional
        The method's other parameters, the same for every run
        (``{"steps": 32}``, ``{"samples": 10, "noise": 0.2}``, ``{"references": images}``).
    top_percent : float
        The top of a map for ``top_share``, in percent of its pixels.
    progress : callable, optional
        ``progress(done, total)`` over all runs (each run's total taken as the
        first's); returning ``False`` cancels with ``ComputationCancelled``.

    Returns
    -------
    StabilityResult

    Examples
    --------
    A linear model's integrated gradients from one baseline do not move:

    >>> import tensorflow as tf
    >>> model = lambda x: tf.reshape(x, (-1, 3)) @ tf.constant([[1.0], [2.0], [3.0]])
    >>> res = stability(model, np.full((1, 1, 3), 9.0), baselines=["black", "black"])
    >>> float(res.spread.max()), res.rank_correlation, res.top_share
    (0.0, 1.0, 1.0)
    """
    started = time.perf_counter()
    method = check_choice("method", method, tuple(REGISTRY))
    taken = REGISTRY[method].parameters()
    if draws is not None and baselines is not None:
        raise ValueError("draws: give draws or baselines, not both")
    varied = "seed" if baselines is None else "baseline"
    if varied not in taken:
        what = "draws (runs that differ by their seed)" if varied == "seed" else "baselines"
        raise ValueError(f"method: {method!r} takes no {varied}, so it has no {what}")
    settings = check_parameters(method, parameters, (*SET_BY_STABILITY, varied), "stability")
    top_percent = check_number("top_percent", top_percent, low=0.0, high=100.0)
    if top_percent == 0.0:
        raise ValueError(f"top_percent: expected a number in (0, 100], got {top_percent}")
    check_callable("progress", progress)
    pixels = as_image(image)
    changes: list[dict[str, Any]]
    if baselines is None:
        count = check_int("draws", 5 if draws is None else draws, low=2, high=MAX_RUNS)
        first = _base_seed(seed)
        changes = [{"seed": first + k} for k in range(count)]
        labels = tuple(f"seed={first + k}" for k in range(count))
        if method in UNIFORM_DRAWS:
            settings.setdefault(*UNIFORM_DRAWS[method])
    else:
        pixel_range = settings.get("pixel_range", (0.0, 255.0))
        # Each baseline checked (and fitted to the image) before any run.
        baseline_rows(baselines, pixels, IGOptions(pixel_range=pixel_range))
        if len(baselines) < 2:
            raise ValueError(f"baselines: expected at least 2 baselines, got {len(baselines)}")
        if len(baselines) > MAX_RUNS:
            raise ValueError(f"baselines: expected at most {MAX_RUNS}, got {len(baselines)}")
        changes = [{"baseline": b} for b in baselines]
        labels = tuple(
            f"baseline={b!r}" if isinstance(b, str) else f"baselines[{i}] (array)"
            for i, b in enumerate(baselines)
        )
        if "seed" in taken:
            settings["seed"] = None if seed is None else check_int("seed", seed, low=0)

    function = REGISTRY[method].function
    results = []
    per_run: list[int] = []

    def run_progress(number: int) -> ProgressCallback | None:
        if progress is None:
            return None
        callback = progress

        def report(done: int, total: int) -> Any:
            if not per_run:
                per_run.append(total)
            return callback(number * per_run[0] + done, len(changes) * per_run[0])

        return report

    chosen = target
    for number, change in enumerate(changes):
        result = function(
            model,
            pixels,
            target=chosen,
            preprocess=preprocess,
            precision=precision,
            progress=run_progress(number),
            **settings,
            **change,
        )
        chosen = result.given_target
        results.append(result)

    attributions = np.stack([np.asarray(r.attributions, np.float32) for r in results])
    saliency = channel_sums(attributions)
    pairwise = pairwise_rank_correlations(saliency)
    return StabilityResult(
        image=pixels,
        attributions=attributions,
        runs=labels,
        method=method,
        parameters={name: _plain(value) for name, value in settings.items()},
        target=int(results[-1].target),
        explained=results[-1].explained,
        scores=results[0].scores,
        mean=attributions.mean(axis=0, dtype=np.float64).astype(np.float32),
        spread=saliency.std(axis=0),
        pairwise=pairwise,
        rank_correlation=_mean_of_pairs(pairwise),
        top_share=top_share(saliency, top_percent),
        top_percent=top_percent,
        points_used=sum(r.points_used for r in results),
        elapsed_s=time.perf_counter() - started,
    )


def _plain(value: Any) -> Any:
    """A parameter as the result records it: an array (a baseline, references) as ``'array'``."""
    if isinstance(value, (str, int, float, bool, type(None), tuple)):
        return value
    return "array"
