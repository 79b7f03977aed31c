"""One chunk of a dataset, computed and stored: the work every executor does.

``Computation`` holds everything a worker needs (the model or how to load
it, the validated options, how targets are chosen, the store and its
layout) and pickles, so that a Ray actor runs exactly what the local
executor runs: ``Computation.run_chunk(items)`` computes the chunk's
attributions (integrated gradients through the engine's shared-batch path;
another method of ``ig_widget.explainers.REGISTRY`` through its function,
image by image), writes its arrays to the store and returns its table rows;
the caller commits them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import engine
from ..engine import IGResult, PreparedInput
from ..explainers import REGISTRY, AttributionResult
from ..faithfulness import InsertionDeletionResult, insertion_deletion
from ..options import IGOptions
from ..quadrature import integration_points
from ..stability import channel_sums, rank_correlation, top_share
from ..validation import check_choice
from .columns import Explained, StabilityScores, columns_for, table_rows
from .sources import Item
from .store import CHECKSUMS, IG, Layout, Store, encode_map, thumbnail, thumbnail_factor

TARGET_MODES = ("predicted", "label")
# steps="auto" stops at this many intervals (the engine's cap): its paths have
# at most one point more.
AUTO_PATH_POINTS = 513


@dataclass(frozen=True)
class ModelFactory:
    """Build the model where it is used: once per worker (and once locally).

    For ``executor="ray"`` every actor needs its own model. A Keras model or
    a torch Module passed as such is pickled to the actors; a model that does
    not pickle (a plain TensorFlow function), or one that is better loaded on
    each machine from shared storage, is given as a factory.

    Examples
    --------
    >>> factory = ModelFactory(dict, a=1)  # any callable returning the model
    >>> factory()
    {'a': 1}
    """

    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __init__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(function):
            raise TypeError(
                f"ModelFactory: expected a callable that returns the model, got "
                f"{type(function).__name__}"
            )
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "kwargs", kwargs)

    def __call__(self) -> Any:
        return self.function(*self.args, **self.kwargs)


def resolve_model(model: Any) -> Any:
    """The model itself: loaded from a ``.keras`` path or built by a ``ModelFactory``."""
    if isinstance(model, (str, os.PathLike)):
        import keras

        return keras.saving.load_model(model, compile=False)
    if isinstance(model, ModelFactory):
        return model()
    return model


def check_targets(targets: Any, length: int | None) -> str | list[int]:
    """ "predicted", "label", or one class index per image (validated)."""
    if isinstance(targets, str):
        return check_choice("targets", targets, TARGET_MODES)
    if hasattr(targets, "numpy") and not isinstance(targets, np.ndarray):
        targets = targets.numpy()
    if not isinstance(targets, (Sequence, np.ndarray)):
        raise TypeError(
            "targets: expected 'predicted', 'label' or one class index per image, "
            f"got {type(targets).__name__}"
        )
    values = np.asarray(targets)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer) or np.any(values < 0):
        raise ValueError(
            "targets: expected a sequence of class indices >= 0, one per image, "
            f"got {values.dtype} values of shape {values.shape}"
        )
    if length is not None:
        engine.check_target_count(len(values), length)
    return [int(v) for v in values]


def path_points(options: IGOptions) -> int:
    """Points on each path: the longest a result of these options can have."""
    if options.steps == "auto":
        return AUTO_PATH_POINTS
    return len(integration_points(options.method, options.steps)[0])


@dataclass
class Computation:
    """What every chunk of one ``explain_dataset`` run shares (see the module docstring)."""

    model: Any
    options: IGOptions
    targets: str | list[int]
    store_path: str
    layout: Layout
    has_masks: bool
    # Steps of the insertion and deletion curves of every image; None: none.
    curve_steps: int | None = None
    # Uniform-noise baselines per image for the stability columns; None: none.
    stability_runs: int | None = None
    # The sanity_similarity column: each map against the fully randomised model's.
    sanity: bool = False
    # The method (a name of REGISTRY) and, for one other than integrated gradients, every
    # keyword its function is called with besides model, image and target (checked).
    explainer: str = IG
    keywords: dict[str, Any] = field(default_factory=dict)
    # Rows ``result.rerun`` recomputed, with the options it changed ({row: {"steps": 64}}):
    # a chunk computed again (a lost file, an unfinished rerun) computes them so, not
    # undoing it.
    reruns: dict[int, dict[str, Any]] = field(default_factory=dict)
    _resolved: Any = field(default=None, repr=False)
    _randomised: Any = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        # Workers load their own model and open their own store.
        return {**self.__dict__, "_resolved": None, "_randomised": None, "_store": None}

    @property
    def resolved_model(self) -> Any:
        if self._resolved is None:
            self._resolved = resolve_model(self.model)
        return self._resolved

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_path)
        return self._store

    def target_of(self, item: Item) -> int | None:
        if self.targets == "predicted":
            return None
        if isinstance(self.targets, str):  # "label"
            if item.label is None:
                raise ValueError(
                    f"targets: 'label' needs a label for every image; image {item.index} "
                    f"({item.source}) has none"
                )
            return item.label
        if item.index >= len(self.targets):
            raise ValueError(
                f"targets: {len(self.targets)} class indices given, but there are more images"
            )
        return self.targets[item.index]

    def explain(self, items: list[Item]) -> list[IGResult | AttributionResult]:
        """The chunk's results, for the classes ``targets`` chooses."""
        targets = [self.target_of(item) for item in items]
        if self.explainer == IG:
            return list(self._explain(items)[1])
        return self._each(self.resolved_model, items, targets)

    def _explain(self, items: list[Item]) -> tuple[list[PreparedInput], list[IGResult]]:
        # Messages name an image by its index in the dataset, not its place in the chunk.
        names = [f"images[{item.index}]" for item in items]
        prepared = engine.prepare_batch(
            self.resolved_model, [item.image for item in items], self.options, names=names
        )
        targets = [self.target_of(item) for item in items]
        return prepared, engine.run_batch(prepared, self.options, targets, names=names)

    def _each(
        self, model: Any, items: list[Item], targets: Sequence[int | None]
    ) -> list[IGResult | AttributionResult]:
        """Another method's results, one call of its function per image (Grad-CAM and
        occlusion take one image; occlusion batches its windows)."""
        function = REGISTRY[self.explainer].function
        return [
            function(model, item.image, target=target, **self.keywords)
            for item, target in zip(items, targets, strict=True)
        ]

    def compute(self, items: list[Item]) -> list[Explained]:
        """The chunk's results, curves, stability scores and sanity similarities: the work,
        before anything is stored. Rows a rerun changed are computed with its options."""
        # The whole chunk first, as it was first computed: its other rows come out bit for
        # bit as they did (a batch of other images rounds differently). The rerun rows are
        # computed twice: reruns are few.
        explained = {e.item.index: e for e in self._compute(items)}
        groups: dict[str, list[Item]] = {}
        for item in items:
            if item.index in self.reruns:
                key = json.dumps(self.reruns[item.index], sort_keys=True)
                groups.setdefault(key, []).append(item)
        for key, members in groups.items():
            changed = dataclasses.replace(
                self, options=self.options.replace(**json.loads(key)), reruns={}
            )
            explained.update((e.item.index, e) for e in changed._compute(members))
        return [explained[item.index] for item in items]

    def _compute(self, items: list[Item]) -> list[Explained]:
        results: list[IGResult | AttributionResult]
        if self.explainer == IG:
            prepared, integrated = self._explain(items)
            scores = self.stability(items, prepared, integrated)
            results = list(integrated)
        else:
            results = self.explain(items)
            scores = self.method_stability(items, results)
        similarities = self.sanity_similarities(items, results)
        return [
            Explained(
                item,
                result,
                self.resolved_model,
                self.options.preprocess,
                self.curves(item, result),
                stability,
                sanity_similarity=similarity,
            )
            for item, result, stability, similarity in zip(
                items, results, scores, similarities, strict=True
            )
        ]

    def sanity_similarities(
        self, items: list[Item], results: Sequence[IGResult | AttributionResult]
    ) -> list[float | None]:
        """Per image, the Spearman rank correlation of its absolute map with the map of the
        model with every trainable layer random (``igw.sanity_check``'s last step)."""
        if not self.sanity:
            return [None] * len(items)
        from ..sanity import randomised_model, similarities

        if self._randomised is None:
            self._randomised = randomised_model(self.resolved_model)
        targets = [result.target for result in results]
        random: Sequence[IGResult | AttributionResult]
        if self.explainer == IG:
            names = [f"images[{item.index}]" for item in items]
            prepared = engine.prepare_batch(
                self._randomised, [item.image for item in items], self.options, names=names
            )
            random = engine.run_batch(prepared, self.options, targets, names=names)
        else:
            random = self._each(self._randomised, items, targets)
        return [
            similarities(result.attributions, other.attributions)[0]
            for result, other in zip(results, random, strict=True)
        ]

    def method_stability(
        self, items: list[Item], results: Sequence[IGResult | AttributionResult]
    ) -> list[StabilityScores | None]:
        """Another method's stability scores, when the run asks for them: per image,
        ``igw.stability(model, image, method=explainer, draws=..., seed=seed, ...)`` with
        the run's parameters, for the explained class."""
        if self.stability_runs is None:
            return [None] * len(results)
        from ..stability import stability

        reserved = ("preprocess", "precision", "seed")
        parameters = {k: v for k, v in self.keywords.items() if k not in reserved}
        scores: list[StabilityScores | None] = []
        for item, result in zip(items, results, strict=True):
            drawn = stability(
                self.resolved_model,
                item.image,
                method=self.explainer,
                draws=self.stability_runs,
                seed=self.options.seed,
                parameters=parameters,
                target=result.target,
                preprocess=self.options.preprocess,
                precision=self.options.precision,
            )
            scores.append(StabilityScores(drawn.rank_correlation, drawn.top_share))
        return scores

    def stability(
        self, items: list[Item], prepared: list[PreparedInput], results: list[IGResult]
    ) -> list[StabilityScores | None]:
        """Each image's stability scores, when the run asks for them: ``igw.stability``'s
        draws (draw ``k`` from a uniform-noise baseline with seed ``seed + k``), with the
        run's steps, rule and tolerance, for the explained class, the chunk's images
        sharing model calls."""
        if self.stability_runs is None:
            return [None] * len(results)
        names = [f"images[{item.index}]" for item in items]
        targets = [result.target for result in results]
        seed = self.options.seed
        draws = [
            engine.run_batch(
                prepared,
                self.options.replace(
                    baseline="uniform", runs=1, seed=None if seed is None else seed + k
                ),
                targets,
                names=names,
            )
            for k in range(self.stability_runs)
        ]
        scores: list[StabilityScores | None] = []
        for image in range(len(results)):
            saliency = channel_sums(np.stack([draw[image].attributions for draw in draws]))
            scores.append(StabilityScores(rank_correlation(saliency), top_share(saliency)))
        return scores

    def store_chunk(self, explained: list[Explained]) -> Any:
        """Write a computed chunk's arrays; return its table rows (with their checksums)."""
        items = [e.item for e in explained]
        size = self.layout.chunk_size
        if items[0].index % size == 0:
            # A chunk written from its first row (again) loses its table file first: an
            # interruption then leaves it to compute, never old checksums over new rows.
            # (Rows added to a partly filled chunk leave its stored rows and file alone.)
            self.store.uncommit(items[0].index // size)
        sums = self.store.write_arrays(
            self.layout, items[0].index, self.arrays(items, [e.result for e in explained])
        )
        rows = table_rows(explained, columns_for(self.has_masks, self.layout.columns))
        rows[CHECKSUMS] = sums
        return rows

    def run_chunk(self, items: list[Item]) -> Any:
        """Compute, store the arrays of, and return the table rows of one chunk."""
        return self.store_chunk(self.compute(items))

    def curves(
        self, item: Item, result: IGResult | AttributionResult
    ) -> InsertionDeletionResult | None:
        """The image's insertion and deletion curves, when the run asks for them."""
        if self.curve_steps is None:
            return None
        options = self.options
        return insertion_deletion(
            self.resolved_model,
            item.image,
            result,
            steps=self.curve_steps,
            preprocess=options.preprocess,
            batch_size=options.batch_size,
            pixel_range=options.pixel_range,
            precision=options.precision,
        )

    def arrays(
        self, items: list[Item], results: Sequence[IGResult | AttributionResult]
    ) -> dict[str, np.ndarray]:
        """The store's array rows for these images (those its layout holds)."""
        layout = self.layout
        points = layout.path_points
        factor = thumbnail_factor(*layout.image_shape[:2])
        specs = layout.array_specs()
        values: dict[str, list[Any]] = {name: [] for name in specs}
        for item, result in zip(items, results, strict=True):
            assert item.image is not None  # only skipped items have none
            small_rgb, small_maps = thumbnail(item.image, result.attributions, factor)
            row = {
                "inputs": item.image,
                "scores": result.scores,
                "points_used": result.points_used,
                "elapsed_s": result.elapsed_s,
                "thumbnails": small_rgb,
                "thumbnail_maps": small_maps,
            }
            maps = {"attributions": result.attributions}
            if isinstance(result, IGResult):
                alphas = np.full(points, np.nan)
                alphas[: len(result.path_alphas)] = result.path_alphas
                path_scores = np.full((layout.runs, points), np.nan)
                path_scores[:, : result.path_scores.shape[1]] = result.path_scores
                row.update(
                    path_alphas=alphas,
                    path_scores=path_scores,
                    baseline_scores=result.baseline_scores,
                    steps=result.steps,
                )
                maps["gradients"] = result.gradients
            for name in layout.maps:
                row[name], scale = encode_map(maps[name], layout.maps_dtype)
                if layout.maps_dtype == "float16":
                    row[f"{name}_scale"] = scale
            for name in specs:
                values[name].append(row[name])
        return {name: np.stack([np.asarray(v) for v in rows]) for name, rows in values.items()}
