"""``explain_dataset``: integrated gradients over a whole dataset, stored as it goes."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

from .. import engine
from ..engine import ComputationCancelled
from ..options import IGOptions
from ..validation import check_choice, check_int
from .columns import columns_for
from .compute import Computation, ModelFactory, check_targets, path_points, resolve_model
from .result import DatasetResult
from .sources import Item, carries_labels, chunks, known_length, stream
from .store import MAPS_DTYPES, Layout, Store, missing_dependency

DEFAULT_CHUNK_SIZE = 32
EXECUTORS = ("local", "ray")


def _require_dependencies() -> None:
    try:
        import fsspec  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as exc:
        raise missing_dependency(exc) from exc


def _check_model(model: Any) -> None:
    if isinstance(model, (str, os.PathLike, ModelFactory)):
        return
    if model is None or not callable(model):
        raise TypeError(
            "model: expected a Keras model or callable, a path to a saved .keras model, "
            f"or an igw.ModelFactory, got {type(model).__name__}"
        )


def _fingerprint(value: Any) -> Any:
    """A JSON description of an option, for comparing a resumed run with the stored one."""
    if isinstance(value, (np.ndarray, list)):
        array = np.ascontiguousarray(value)
        digest = hashlib.sha256(array.tobytes()).hexdigest()[:16]
        return {"array": list(array.shape), "dtype": str(array.dtype), "sha256": digest}
    return value


def _recorded_options(
    options: IGOptions,
    targets: Any,
    has_masks: bool,
    maps_dtype: str,
    chunk_size: int,
    curve_steps: int | None,
) -> dict[str, Any]:
    """What a store records and compares on resume: everything that changes the results."""
    recorded = {
        "baseline": _fingerprint(options.baseline),
        "steps": options.steps,
        "runs": options.runs,
        "method": options.method,
        "seed": options.seed,
        "precision": options.precision,
        "pixel_range": list(options.pixel_range),
        "tolerance": options.tolerance,
        "targets": _fingerprint(targets),
        "masks": has_masks,
        "maps_dtype": maps_dtype,
        "chunk_size": chunk_size,
    }
    # Recorded only when asked for, so that stores written before it resume.
    if curve_steps is not None:
        recorded["insertion_deletion_steps"] = curve_steps
    return recorded


def options_from_record(
    recorded: dict[str, Any], baseline: np.ndarray | None, preprocess: Callable[[Any], Any] | None
) -> IGOptions:
    """The computation's options again, from what a store recorded (``_recorded_options``).

    ``baseline`` is the stored array baseline, None for a named one.
    """
    return IGOptions(
        baseline=recorded["baseline"] if baseline is None else baseline,
        steps=recorded["steps"],
        runs=recorded["runs"],
        method=recorded["method"],
        preprocess=preprocess,
        seed=recorded["seed"],
        tolerance=recorded["tolerance"],
        pixel_range=tuple(recorded["pixel_range"]),
        precision=recorded["precision"],
    )


class _Progress:
    """A tqdm bar (images/s, ETA) or a ``progress(done, total)`` callback."""

    def __init__(self, progress: Any, total: int | None, initial: int) -> None:
        self.done = initial
        self.total = total
        self.callback: Callable[[int, int | None], Any] | None = None
        self.bar: Any = None
        if callable(progress):
            self.callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm
            except ImportError as exc:
                raise missing_dependency(exc) from exc
            self.bar = tqdm(
                total=total, initial=initial, unit="image", desc="explain_dataset", smoothing=0.1
            )

    def advance(self, count: int) -> bool:
        """Count finished images; False when the callback asks to stop."""
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        if self.callback is not None:
            return self.callback(self.done, self.total) is not False
        return True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Run:
    """The driver's side of one run: the store, the chunks still to do, and commits."""

    def __init__(
        self,
        model: Any,
        images: Any,
        labels: Any,
        masks: Any,
        options: IGOptions,
        targets: str | list[int],
        store: Store,
        recorded: dict[str, Any],
        length: int | None,
    ) -> None:
        self.model = model
        self.images = images
        self.labels = labels
        self.masks = masks
        self.options = options
        self.targets = targets
        self.store = store
        self.recorded = recorded
        self.length = length
        self.chunk_size = recorded["chunk_size"]
        self.manifest: dict[str, Any] = store.manifest() if store.exists() else {}
        self.done = store.done_chunks()
        self.computation: Computation | None = None
        self.count = 0
        if self.manifest.get("layout"):
            self.computation = self._computation(Layout.from_json(self.manifest["layout"]))
        if not self.manifest:
            self.manifest = {
                "options": recorded,
                "layout": None,
                "length": length,
                "count": None,
                "complete": False,
                "source": type(images).__name__,
                "preprocess": getattr(options.preprocess, "__qualname__", None),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            store.write_manifest(self.manifest)

    def _computation(self, layout: Layout) -> Computation:
        return Computation(
            model=self.model,
            options=self.options,
            targets=self.targets,
            store_path=self.store.path,
            layout=layout,
            has_masks=self.recorded["masks"],
            curve_steps=self.recorded.get("insertion_deletion_steps"),
        )

    def _begin(self, first: Item) -> Computation:
        """Fix the layout from the first image computed: its shape and the class count."""
        assert first.image is not None
        curve_steps = self.recorded.get("insertion_deletion_steps")
        pixels = first.image.shape[0] * first.image.shape[1]
        if curve_steps is not None and curve_steps > pixels:
            raise ValueError(
                f"insertion_deletion_steps: expected an integer <= {pixels} (the images' "
                f"pixels), got {curve_steps}"
            )
        model = resolve_model(self.model)
        classes = engine.prepare(model, first.image, self.options).classes
        layout = Layout(
            image_shape=(first.image.shape[0], first.image.shape[1], first.image.shape[2]),
            classes=classes,
            runs=self.options.runs,
            path_points=path_points(self.options),
            chunk_size=self.chunk_size,
            maps_dtype=self.recorded["maps_dtype"],
            columns=tuple(
                c.name for c in columns_for(self.recorded["masks"], has_curves=bool(curve_steps))
            ),
        )
        self.store.create_arrays(layout, self.length)
        if isinstance(self.options.baseline, np.ndarray):
            self.store.write_baseline(self.options.baseline)
        self.manifest = {**self.manifest, "layout": layout.to_json()}
        self.store.write_manifest(self.manifest)
        computation = self._computation(layout)
        computation._resolved = model
        return computation

    def pending(self) -> Iterator[tuple[int, list[Item]]]:
        """The chunks still to compute, in order; the arrays are grown to hold each first."""
        items = stream(
            self.images,
            labels=self.labels,
            masks=self.masks,
            skip=lambda index: index // self.chunk_size in self.done,
        )
        for chunk in chunks(items, self.chunk_size):
            number = chunk[0].index // self.chunk_size
            self.count = chunk[-1].index + 1
            if number in self.done:
                continue
            if self.computation is None:
                self.computation = self._begin(chunk[0])
            self.store.reserve(self.computation.layout, self.count)
            yield number, chunk

    def commit(self, number: int, rows: Any) -> None:
        self.store.write_rows(number, rows)
        self.done.add(number)

    def finish(self) -> None:
        """Record the count and mark the store complete."""
        if self.computation is not None:
            self.store.trim(self.computation.layout, self.count)
        self.manifest = {**self.manifest, "count": self.count, "complete": True}
        self.store.write_manifest(self.manifest)


def _check_resumable(store: Store, recorded: dict[str, Any]) -> None:
    if not store.exists():
        if store.fs.exists(store.root) and store.fs.ls(store.root):
            raise ValueError(
                f"store: '{store.path}' exists and is not an ig-widget dataset store; "
                "give a new path (or an empty folder)"
            )
        return
    stored = store.manifest()["options"]
    # Both sides' names: an option recorded only when used (insertion_deletion_steps) counts.
    for name in [*recorded, *(name for name in stored if name not in recorded)]:
        value = recorded.get(name)
        if stored.get(name) != value:
            raise ValueError(
                f"store: '{store.path}' holds a computation with {name}={stored.get(name)!r}, "
                f"this one has {name}={value!r}; resume with the same options or give a new store"
            )


def explain_dataset(
    model: Any,
    images: Any,
    *,
    labels: Any = None,
    targets: Literal["predicted", "label"] | Any = "predicted",
    masks: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    baseline: str | np.ndarray = "blur",
    steps: int | Literal["auto"] = "auto",
    runs: int = 1,
    method: str = "trapezoid",
    batch_size: int | None = None,
    store: str | os.PathLike | None = None,
    executor: Any = "local",
    seed: int | None = None,
    progress: bool | Callable[[int, int | None], Any] = True,
    maps_dtype: str = "float32",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    tolerance: float = 0.01,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    insertion_deletion_steps: int | None = None,
) -> DatasetResult:
    """Integrated gradients of every image of a dataset, written to a store as it goes.

    Parameters
    ----------
    model : Keras model, torch.nn.Module, callable, path or ModelFactory
        As for ``integrated_gradients``; a path to a saved ``.keras`` model or
        an ``igw.ModelFactory`` is loaded where the work runs (each Ray worker).
    images
        An array (N, H, W, C); a sequence of arrays, PIL images or paths; a
        folder of image files (subfolders included, sorted by path); an
        iterable of images or ``(image, label)`` pairs, a ``tf.data.Dataset``
        or a torch ``DataLoader`` included (batches are split). Streamed: only
        a chunk of images is in memory at a time. All of one shape.
    labels : sequence, array or callable, optional
        One class per image, or a function of each image's ``source`` (a
        file's path, for example). Not with (image, label) pairs.
    targets : "predicted", "label" or sequence of int
        The class explained for each image.
    masks : optional
        One mask (H, W) per image, in any form accepted for ``images``: the
        table gets ``mask_share``, the share of positive attribution inside it.
    preprocess, baseline, steps, runs, method, batch_size, seed, tolerance, pixel_range, precision
        As for ``integrated_gradients`` (validated once, by ``igw.IGOptions``),
        except the defaults: a blurred baseline and ``steps="auto"`` (refined
        per image until its completeness error ``delta`` is at most
        ``tolerance``), so that a whole dataset is converged without choosing
        a step count. On the bundled demo (1,200 images) every image ends
        within 1 %; the widget's single images keep the reference's black
        baseline and 50 steps. The rows still above 5 % (the cap of 512
        intervals) are counted in a line printed at the end (with the
        progress bar) and recomputed with ``result.rerun``.
        The points of a chunk's images share model calls (the engine's
        ``integrated_gradients_batch`` path), and every image gets the result
        a single ``integrated_gradients`` call with these options gives it,
        to float32 rounding.
    store : path or URI, optional
        Where the results go (see ``ig_widget.dataset.store``); a new
        temporary folder by default. Rerunning with the same store and options
        resumes: finished chunks are skipped.
    executor : "local", "ray" or RayExecutor
        ``"ray"`` runs the chunks on a Ray cluster (``ig-widget[ray]``).
    progress : bool or callable
        A progress bar (images/s, ETA), or ``progress(done, total)`` called
        after each chunk (``total`` None when unknown); returning ``False``
        stops with ``ComputationCancelled`` after storing what is done.
    maps_dtype : {"float32", "float16"}
        How attributions and gradients are stored (float16: see the store's
        error bound).
    chunk_size : int
        Images per chunk: the unit of work, of storage and of resuming.
    insertion_deletion_steps : int, optional
        Adds the columns ``insertion_auc`` and ``deletion_auc``: the areas of
        each image's insertion and deletion curves (``igw.insertion_deletion``
        of its attributions, this many steps, blurred substrate) - a measure of
        how faithful each map is, to sort the gallery by. Costs
        ``2 * steps - 1`` forward passes per image (20 steps: about a quarter
        of the gradient work of ``steps=50``).

    Returns
    -------
    DatasetResult

    Examples
    --------
    >>> images, labels = igw.demo.images()  # doctest: +SKIP
    >>> result = igw.explain_dataset(igw.demo.model(), images, labels=labels)  # doctest: +SKIP
    >>> result.table[["label", "predicted", "delta"]]  # doctest: +SKIP
    """
    _require_dependencies()
    _check_model(model)
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
    length = known_length(images)
    checked_targets = check_targets(targets, length)
    if checked_targets == "label" and labels is None and not carries_labels(images):
        raise ValueError(
            "targets: 'label' needs labels: give labels=..., or images as (image, label) pairs"
        )
    maps_dtype = check_choice("maps_dtype", maps_dtype, MAPS_DTYPES)
    chunk_size = check_int("chunk_size", chunk_size, low=1, high=4096)
    if insertion_deletion_steps is not None:
        insertion_deletion_steps = check_int(
            "insertion_deletion_steps", insertion_deletion_steps, low=1
        )
    if isinstance(executor, str):
        check_choice("executor", executor, EXECUTORS)
    elif type(executor).__name__ != "RayExecutor":
        raise TypeError(
            "executor: expected 'local', 'ray' or an igw.RayExecutor, "
            f"got {type(executor).__name__}"
        )
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(
            f"progress: expected True, False or a callable, got {type(progress).__name__}"
        )
    if store is None:
        store = tempfile.mkdtemp(prefix="ig-dataset-")
    elif not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store: expected a path or URI, got {type(store).__name__}")
    target_store = Store(os.fspath(store))
    recorded = _recorded_options(
        options,
        checked_targets,
        masks is not None,
        maps_dtype,
        chunk_size,
        insertion_deletion_steps,
    )
    _check_resumable(target_store, recorded)

    run = _Run(
        model, images, labels, masks, options, checked_targets, target_store, recorded, length
    )
    bar = _Progress(progress, length, target_store.done_images())
    try:
        if executor == "local":
            _run_local(run, bar)
        else:
            from .ray_executor import RayExecutor

            (RayExecutor() if executor == "ray" else executor).run(run, bar)
        run.finish()
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(_kept(run, "interrupted")) from exc
    except ComputationCancelled as exc:
        raise ComputationCancelled(_kept(run, "cancelled")) from exc
    finally:
        bar.close()
    result = DatasetResult(target_store.path)
    summary = result.convergence_summary()
    if summary and progress is True:
        print(summary)
    return result


def _kept(run: _Run, what: str) -> str:
    done = run.store.done_images()
    return (
        f"explain_dataset {what}; the {done} images done are kept in '{run.store.path}': "
        f"igw.open_dataset('{run.store.path}') opens them, and the same call with "
        f"store='{run.store.path}' resumes"
    )


def _run_local(run: _Run, bar: _Progress) -> None:
    for number, chunk in run.pending():
        assert run.computation is not None
        run.commit(number, run.computation.run_chunk(chunk))
        if not bar.advance(len(chunk)):
            raise ComputationCancelled("cancelled by the progress callback")
