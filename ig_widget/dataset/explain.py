"""``explain_dataset``: attributions of a whole dataset (integrated gradients or another
method of ``ig_widget.explainers.REGISTRY``), stored as it goes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np

from .. import engine
from ..engine import ComputationCancelled
from ..explainers import REGISTRY
from ..options import IGOptions
from ..points import CANCELLED
from ..stability import MAX_RUNS, check_parameters
from ..validation import check_choice, check_int
from .columns import Explained, columns_for
from .compute import Computation, ModelFactory, check_targets, path_points, resolve_model
from .identity import digest, fingerprint, labels_identity, model_identity, software_versions
from .result import DatasetResult, check_store_path, with_rerun_recorded
from .sources import MAX_PIXELS, Item, carries_labels, chunks, known_length, stream
from .store import IG, INITIAL_CHUNKS, MAPS_DTYPES, Layout, Store, missing_dependency, timestamp

DEFAULT_CHUNK_SIZE = 32
EXECUTORS = ("local", "ray")
# explain_dataset's options that belong to a method: given to one whose function takes
# them, refused (when given) for one that does not. None: not given.
METHOD_OPTIONS = ("baseline", "steps", "runs", "method", "seed", "tolerance")
# Integrated gradients' values here for those not given (the others keep their own).
IG_DEFAULTS: dict[str, Any] = {
    "baseline": "blur",
    "steps": "auto",
    "runs": 1,
    "method": "trapezoid",
    "tolerance": 0.01,
}
# What explain_dataset passes a method itself: ``parameters`` cannot set it.
SET_BY_EXPLAIN_DATASET = (
    "model",
    "image",
    "target",
    "progress",
    "class_names",
    "preprocess",
    "precision",
    "batch_size",
    "pixel_range",
    *METHOD_OPTIONS,
)
# What a store written before ``explainer`` was recorded computed.
RECORDED_DEFAULTS: dict[str, Any] = {"explainer": IG, "parameters": {}}


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


def _parameter_record(value: Any) -> Any:
    """A method's parameter as a store records it: plain JSON, an array by its fingerprint,
    anything else by its stable identity."""
    if isinstance(value, tuple):
        return [_parameter_record(v) for v in value]
    if isinstance(value, (np.ndarray, list)) or hasattr(value, "__array__"):
        try:
            return fingerprint(np.asarray(value))
        except (TypeError, ValueError):
            pass
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return {"identity": digest(value)}


def method_keywords(
    explainer: str,
    given: dict[str, Any],
    parameters: Mapping[str, Any] | None,
    general: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keywords ``explainer``'s function is called with, and the method options it
    runs with (given or its defaults), or raise naming an option it does not take.

    ``given`` holds the ``METHOD_OPTIONS`` as the caller gave them (None: not
    given); ``general`` preprocess, precision, batch_size and pixel_range,
    passed where the function takes them. Every check runs before any work.
    """
    method = REGISTRY[explainer]
    taken = method.parameters()
    own = check_parameters(explainer, parameters, SET_BY_EXPLAIN_DATASET, "explain_dataset")
    for name, value in given.items():
        if value is not None and name not in taken:
            others = [p for p in taken if p not in (*SET_BY_EXPLAIN_DATASET, "image", "model")]
            listed = ", ".join(others) if others else "none"
            raise ValueError(
                f"{name}: {method.title} takes no {name}; leave it out (its own parameters, "
                f"given as parameters={{...}}: {listed})"
            )
    keywords = {name: value for name, value in general.items() if name in taken}
    keywords.update({name: value for name, value in given.items() if value is not None})
    keywords.update(own)
    used = {
        name: given[name] if given[name] is not None else taken[name].default
        for name in METHOD_OPTIONS
        if name in taken
    }
    return keywords, used


def _recorded_options(
    options: IGOptions,
    targets: Any,
    has_masks: bool,
    maps_dtype: str,
    chunk_size: int,
    curve_steps: int | None,
    identities: dict[str, str | None],
    stability_runs: int | None = None,
    sanity: bool = False,
    explainer: str = IG,
    parameters: Mapping[str, Any] | None = None,
    used: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a store records and compares on resume: everything that changes the results.

    For a method other than integrated gradients, ``used`` holds the method
    options it runs with (``method_keywords``): only those are recorded.
    """
    method_options = (
        {
            "baseline": options.baseline,
            "steps": options.steps,
            "runs": options.runs,
            "method": options.method,
            "seed": options.seed,
            "tolerance": options.tolerance,
        }
        if explainer == IG or used is None
        else used
    )
    recorded = {
        "explainer": explainer,
        "parameters": {name: _parameter_record(v) for name, v in (parameters or {}).items()},
        **{name: fingerprint(value) for name, value in method_options.items()},
        "precision": options.precision,
        "pixel_range": list(options.pixel_range),
        "targets": fingerprint(targets),
        "masks": has_masks,
        "maps_dtype": maps_dtype,
        "chunk_size": chunk_size,
        **identities,
    }
    # Recorded only when asked for, so that stores written before it resume.
    if curve_steps is not None:
        recorded["insertion_deletion_steps"] = curve_steps
    if stability_runs is not None:
        recorded["stability"] = stability_runs
    if sanity:
        recorded["sanity_check"] = True
    # As the manifest's JSON gives it back (tuples as lists), so that a resume compares alike.
    normalised: dict[str, Any] = json.loads(json.dumps(recorded))
    return normalised


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


def _identities(model: Any, preprocess: Any, labels: Any, targets: Any) -> dict[str, str | None]:
    """Stable identities of the model, ``preprocess`` and (when targets follow them) the labels."""
    identities = {"model": model_identity(model), "preprocess": digest(preprocess)}
    if targets == "label":
        # Labels carried by (image, label) pairs arrive with the images: "pairs".
        identities["labels"] = "pairs" if labels is None else labels_identity(labels)
    return identities


def _pixel_bound(model: Any, preprocess: Any) -> int:
    """The most pixels an image may have, read from a file's header before it is decoded.

    A model that declares its input size without a ``preprocess`` accepts
    exactly that size; otherwise ``MAX_PIXELS``.
    """
    shape = getattr(model, "input_shape", None)
    if preprocess is None and isinstance(shape, tuple) and len(shape) == 4:
        height, width = shape[1], shape[2]
        if isinstance(height, int) and isinstance(width, int):
            return height * width
    return MAX_PIXELS


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
            answer = self.callback(self.done, self.total)
            return not (isinstance(answer, (bool, np.bool_)) and not answer)
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
        max_pixels: int,
        explainer: str = IG,
        keywords: dict[str, Any] | None = None,
    ) -> None:
        self.explainer = explainer
        self.keywords = keywords or {}
        # The parameters the method ran with (defaults filled in), read from the first image.
        self.used_parameters: dict[str, Any] = {}
        self.model = model
        self.images = images
        self.labels = labels
        self.masks = masks
        self.options = options
        self.targets = targets
        self.store = store
        self.recorded = recorded
        self.length = length
        self.max_pixels = max_pixels
        self.chunk_size = recorded["chunk_size"]
        self.manifest: dict[str, Any] = store.manifest() if store.exists() else {}
        # Rows stored per committed chunk: a chunk short of chunk_size rows is
        # computed again when the input has more images for it.
        self.stored = store.stored_rows()
        self.computation: Computation | None = None
        self.resumed = False
        self.count = 0
        # Committed chunks to compute again: those whose array files have gone (lost:
        # {chunk: files}) and those of a rerun that did not finish (unfinished).
        self.redo: set[int] = set()
        self.lost: dict[int, list[str]] = {}
        self.unfinished: set[int] = set()
        self.rerun_to_finish: dict[str, Any] | None = None
        layout = self.manifest.get("layout")
        if layout is not None and self.stored:
            store.refuse_links()
            store.check_arrays(Layout.from_json(layout), self._max_rows())
            self.computation = self._computation(Layout.from_json(layout))
            self.resumed = True
            self._find_lost(self.computation.layout)
            self._find_unfinished_rerun()
            problem = store.baseline_problem(recorded)
            if problem is not None and isinstance(options.baseline, np.ndarray):
                # The resume's baseline is the recorded one (checked before): kept again.
                warnings.warn(f"store: '{store.path}': {problem}; written again", stacklevel=3)
                store.write_baseline(options.baseline)
        # With targets="label", the labels of the images stored, compared with the input's.
        self.stored_labels: dict[int, int | None] = {}
        if self.resumed and targets == "label":
            import pandas as pd

            table = store.read_table(columns_for(recorded["masks"]), self.chunk_size)
            self.stored_labels = {
                int(row): None if pd.isna(label) else int(label)
                for row, label in table["label"].items()
            }

    def _find_lost(self, layout: Layout) -> None:
        """Find the chunks whose array files have gone and warn; the store is incomplete
        until they are computed again."""
        self.lost = self.store.lost_chunks(layout, self.stored)
        if self.lost:
            self.redo.update(self.lost)
            self._save(complete=False)
            warnings.warn(
                f"store: '{self.store.path}': {self._describe(self.lost)} are missing; each "
                "chunk is computed again when the input holds all of its images (rows a rerun "
                "changed, with its options)",
                stacklevel=4,
            )

    def _find_unfinished_rerun(self) -> None:
        """Finish a rerun that was interrupted (its rows' maps and table rows may disagree):
        its chunks are computed again, its rows with its options."""
        pending = self.manifest.get("rerun_pending")
        if not pending:
            return
        self.rerun_to_finish = pending
        self.unfinished = {row // self.chunk_size for row in pending["rows"]} & self.stored.keys()
        self.redo.update(self.unfinished)
        self._save(complete=False)
        warnings.warn(
            f"store: '{self.store.path}': a rerun of images {pending['rows']} with "
            f"{pending['options']} did not finish; their chunks are computed again when the "
            "input holds all of their images, those images with its options",
            stacklevel=4,
        )

    def _describe(self, lost: dict[int, list[str]]) -> str:
        """Lost chunks' images and files, in words (the first few chunks)."""
        size = self.chunk_size
        shown = [
            f"images {number * size}..{number * size + self.stored[number] - 1} "
            f"({', '.join(repr(file) for file in files)})"
            for number, files in sorted(lost.items())[:_LOST_SHOWN]
        ]
        more = len(lost) - len(shown)
        return (
            "the array files of " + "; ".join(shown) + (f"; and {more} chunks more" if more else "")
        )

    @property
    def done(self) -> int:
        """The images stored, less those of the chunks to compute again."""
        return sum(rows for number, rows in self.stored.items() if number not in self.redo)

    def _max_rows(self) -> int:
        """The most rows the runs before could have reserved: a bound on an array's length."""
        size = self.chunk_size
        reach = max(
            self.manifest.get("reserved") or 0,
            self.manifest.get("length") or 0,
            INITIAL_CHUNKS * size,
            (max(self.stored, default=0) + 1) * size,
        )
        return math.ceil(reach / size) * size

    def _save(self, **changes: Any) -> None:
        self.manifest = {**self.manifest, **changes}
        self.store.write_manifest(self.manifest)

    def _computation(self, layout: Layout) -> Computation:
        return Computation(
            model=self.model,
            options=self.options,
            targets=self.targets,
            store_path=self.store.path,
            layout=layout,
            has_masks=self.recorded["masks"],
            curve_steps=self.recorded.get("insertion_deletion_steps"),
            stability_runs=self.recorded.get("stability"),
            sanity=bool(self.recorded.get("sanity_check")),
            explainer=self.explainer,
            keywords=self.keywords,
            # The last rerun of a row is the one it holds (an unfinished one: to finish).
            reruns={
                row: record["options"]
                for record in [
                    *(self.manifest.get("reruns") or []),
                    *filter(None, [self.manifest.get("rerun_pending")]),
                ]
                for row in record["rows"]
            },
        )

    def _layout(self, first: Item) -> tuple[Layout, Any]:
        """The layout the first image computed defines (its shape, the class count); the model."""
        assert first.image is not None
        curve_steps = self.recorded.get("insertion_deletion_steps")
        pixels = first.image.shape[0] * first.image.shape[1]
        if curve_steps is not None and curve_steps > pixels:
            raise ValueError(
                f"insertion_deletion_steps: expected an integer <= {pixels} (the images' "
                f"pixels), got {curve_steps}"
            )
        model = resolve_model(self.model)
        sanity = bool(self.recorded.get("sanity_check"))
        if sanity:
            from ..sanity import check_randomisable

            check_randomisable(model)
        integrated = self.explainer == IG
        channels = None
        if integrated:
            classes = engine.prepare(model, first.image, self.options).classes
        else:
            # The map's shape is the method's (Grad-CAM: one channel): read from the first
            # image's map, the one extra computation of a new store.
            probe = REGISTRY[self.explainer].function(
                model, first.image, target=None, **self.keywords
            )
            classes = len(probe.scores)
            channels = int(probe.attributions.shape[2])
            self.used_parameters = {
                name: _parameter_record(value)
                for name, value in getattr(probe, "parameters", {}).items()
            }
        layout = Layout(
            image_shape=(first.image.shape[0], first.image.shape[1], first.image.shape[2]),
            classes=classes,
            runs=self.options.runs if integrated else 1,
            path_points=path_points(self.options) if integrated else 1,
            chunk_size=self.chunk_size,
            maps_dtype=self.recorded["maps_dtype"],
            columns=tuple(
                c.name
                for c in columns_for(
                    self.recorded["masks"],
                    has_curves=bool(curve_steps),
                    has_stability=bool(self.recorded.get("stability")),
                    has_sanity=sanity,
                    has_completeness=integrated,
                )
            ),
            explainer=self.explainer,
            map_channels=channels,
        )
        return layout, model

    def _begin(self, first: Item) -> Computation:
        """Create the store: its manifest (only now, every option accepted) and its arrays."""
        layout, model = self._layout(first)
        rows = self.length if self.length is not None else INITIAL_CHUNKS * self.chunk_size
        method = REGISTRY[self.explainer]
        self.manifest = {
            "options": self.recorded,
            "explainer": {
                "name": method.name,
                "title": method.title,
                # As the method ran (its defaults filled in: Grad-CAM's layer).
                "parameters": self.used_parameters,
            },
            # The arrays the store holds: what the method produces, nothing else.
            "arrays": sorted(layout.array_specs()),
            "layout": layout.to_json(),
            "length": self.length,
            "reserved": rows,
            "count": None,
            "complete": False,
            "source": type(self.images).__name__,
            "created": timestamp(),
            "versions": software_versions(),
        }
        self.store.write_manifest(self.manifest)
        self.store.create_arrays(layout, rows)
        if isinstance(self.options.baseline, np.ndarray):
            self.store.write_baseline(self.options.baseline)
        computation = self._computation(layout)
        computation._resolved = model
        return computation

    def _check_resumed(self, first: Item, stored: Layout) -> None:
        """Refuse to continue a store with images or a model of another shape."""
        assert first.image is not None
        layout, model = self._layout(first)
        assert self.computation is not None
        self.computation._resolved = model
        for name, what in (("image_shape", "image shape"), ("classes", "class count")):
            if getattr(layout, name) != getattr(stored, name):
                raise ValueError(
                    f"store: '{self.store.path}' holds a computation with {what} "
                    f"{getattr(stored, name)}, this one has {getattr(layout, name)} "
                    f"(images[{first.index}]){_NEW_STORE}"
                )

    def pending(self) -> Iterator[tuple[int, list[Item]]]:
        """The chunks still to compute, in order; the arrays are grown to hold each first."""
        size = self.chunk_size
        full = {
            number
            for number, rows in self.stored.items()
            if rows >= size and number not in self.redo
        }
        layout = None if self.computation is None else self.computation.layout
        items = stream(
            self.images,
            labels=self.labels,
            masks=self.masks,
            skip=lambda index: index // size in full,
            shape=None if layout is None else layout.image_shape,
            max_pixels=self.max_pixels,
        )
        for chunk in chunks(items, size):
            number = chunk[0].index // size
            self.count = chunk[-1].index + 1
            self._check_labels(chunk)
            stored = self.stored.get(number, 0)
            # A chunk is computed again only whole: a shorter input never cuts stored rows.
            if stored >= len(chunk) and (number not in self.redo or stored > len(chunk)):
                continue
            if number not in self.redo:
                # A partly filled chunk the input grows: only its new images, its stored rows
                # left as they are (an interruption then loses none of them).
                chunk = chunk[stored:]
            if self.computation is None:
                self.computation = self._begin(chunk[0])
            elif self.manifest.get("complete"):
                # Until this run finishes, the store is not complete (a cancel keeps it so).
                self._save(complete=False)
            if self.resumed:
                self._check_resumed(chunk[0], self.computation.layout)
                self.resumed = False
            self._reserve(self.computation.layout, self.count)
            yield number, chunk

    def _check_labels(self, chunk: list[Item]) -> None:
        """Refuse labels (they choose the targets) other than those the stored images had."""
        for item in chunk:
            if item.index in self.stored_labels and self.stored_labels[item.index] != item.label:
                raise ValueError(
                    f"store: '{self.store.path}' holds image {item.index} explained for label "
                    f"{self.stored_labels[item.index]}, this input gives it label {item.label} "
                    f"(targets='label'){_NEW_STORE}"
                )

    def _reserve(self, layout: Layout, stop: int) -> None:
        """Grow the arrays (by doubling) to hold rows below ``stop``; the manifest first."""
        rows = self.store.rows_needed(layout, stop)
        if rows is not None:
            self._save(reserved=max(rows, self.manifest.get("reserved") or 0))
            self.store.resize(layout, rows)

    def commit(self, number: int, rows: Any) -> int:
        """Write a chunk's table rows: it is stored. Returns the images it added."""
        if number not in self.redo and self.stored.get(number):
            import pandas as pd

            rows = pd.concat([self.store.read_part(number, self.chunk_size), rows])
        self.store.write_rows(number, rows)
        # A chunk computed again counts whole: the progress started without it.
        added = len(rows) - (0 if number in self.redo else self.stored.get(number, 0))
        self.stored[number] = len(rows)
        self.redo.discard(number)
        self.lost.pop(number, None)
        self.unfinished.discard(number)
        return added

    def finish(self) -> None:
        """Record the count and whether every image up to it is stored; never cut a stored row."""
        if not self.manifest:
            return  # no image: nothing was created
        size = self.chunk_size
        end = max((number * size + rows for number, rows in self.stored.items()), default=0)
        # The count recorded before too: a chunk whose table file went with an interrupted
        # repair is not in `stored`, and its rows must not be trimmed away.
        count = max(self.count, end, self.manifest.get("count") or 0)
        if self.computation is not None:
            self.store.trim(self.computation.layout, count)
        if self.lost:
            warnings.warn(
                f"store: '{self.store.path}': {self._describe(self.lost)} are still missing: the "
                "input did not hold all of their images; resume with the whole input to compute "
                "them again",
                stacklevel=3,
            )
        absent = self._absent(count)
        if absent:
            warnings.warn(
                f"store: '{self.store.path}': images {', '.join(absent)} are not stored (their "
                "table file is missing, from a run that stopped); resume with the whole input "
                "to compute them",
                stacklevel=3,
            )
        pending = self.rerun_to_finish
        if pending is not None and self.unfinished:
            warnings.warn(
                f"store: '{self.store.path}': the rerun of images {pending['rows']} is still "
                "unfinished: the input did not hold all of their chunks' images",
                stacklevel=3,
            )
        self.record_finished_rerun()
        self._save(count=count, complete=sum(self.stored.values()) == count and not self.redo)

    def _absent(self, count: int) -> list[str]:
        """The rows below ``count`` no chunk's table holds, as ranges ("6..8")."""
        size = self.chunk_size
        ranges = []
        for number in range(math.ceil(count / size)):
            first = number * size + self.stored.get(number, 0)
            last = min(count, (number + 1) * size) - 1
            if first <= last:
                ranges.append(f"{first}..{last}")
        return ranges

    def record_finished_rerun(self) -> None:
        """Once every chunk of an interrupted rerun is stored again, record it as done
        (also when the run stops early: its rows then read again)."""
        pending = self.rerun_to_finish
        if pending is not None and not self.unfinished:
            self.rerun_to_finish = None
            self.manifest = with_rerun_recorded(self.manifest, pending)
            self.store.write_manifest(self.manifest)


# Lost chunks named in a warning; the rest are counted.
_LOST_SHOWN = 3
# How a refusal to resume ends: what to do instead.
_NEW_STORE = (
    "; resume with the same computation, or start a new store (another store= path, "
    "or none for a temporary folder)"
)
_IDENTITIES = {"model": "model", "preprocess": "preprocess", "labels": "labels"}


def _check_resumable(store: Store, recorded: dict[str, Any]) -> None:
    if not store.exists():
        if not store.is_empty():
            raise ValueError(
                f"store: '{store.path}' exists and is not an ig-widget dataset store; "
                "give a new path (or an empty folder)"
            )
        return
    stored = {**RECORDED_DEFAULTS, **store.manifest()["options"]}
    # Both sides' names: an option recorded only when used (insertion_deletion_steps) counts.
    for name in [*recorded, *(name for name in stored if name not in recorded)]:
        value = recorded.get(name)
        if name == "parameters":
            _check_parameters_resumed(store, stored[name], value or {})
        elif name in _IDENTITIES:
            if stored.get(name) is None or value is None:
                raise ValueError(
                    f"store: '{store.path}': the {name} of "
                    f"{'the stored' if stored.get(name) is None else 'this'} computation has no "
                    f"stable identity (a {name} that does not pickle, or a store written before "
                    f"identities were recorded), so a resume could mix two computations"
                    f"{_NEW_STORE}"
                )
            if stored[name] != value:
                raise ValueError(
                    f"store: '{store.path}' holds a computation with another {name} (identity "
                    f"{str(stored[name])[:17]}..., this one {str(value)[:17]}...){_NEW_STORE}"
                )
        elif stored.get(name) != value:
            raise ValueError(
                f"store: '{store.path}' holds a computation with {name}={stored.get(name)!r}, "
                f"this one has {name}={value!r}{_NEW_STORE}"
            )


def _check_parameters_resumed(store: Store, stored: Any, given: dict[str, Any]) -> None:
    """Refuse a resume whose method parameters differ from the store's, naming the first."""
    stored = stored if isinstance(stored, dict) else {}
    for name in [*given, *(name for name in stored if name not in given)]:
        if stored.get(name) != given.get(name):
            before, now = (repr(v[name]) if name in v else "not given" for v in (stored, given))
            raise ValueError(
                f"store: '{store.path}' holds a computation with parameters[{name!r}]={before}, "
                f"this one has parameters[{name!r}]={now}{_NEW_STORE}"
            )


def check_rerun_identities(path: str, stored: dict[str, Any], model: Any, preprocess: Any) -> None:
    """Refuse a rerun whose model or ``preprocess`` is not the one that made the store.

    A rerun replaces some rows: with another model they would sit beside the
    others as if one computation had made them all.
    """
    given = {"model": model_identity(model), "preprocess": digest(preprocess)}
    for name, value in given.items():
        if value is None or stored.get(name) != value:
            how = "as it was given to explain_dataset (the same path, factory or object)"
            raise ValueError(
                f"{name}: the store '{path}' was computed with another {name}"
                f"{' or one without a stable identity' if value is None else ''}; "
                f"give the {name} it was computed with, {how}"
            )


def explain_dataset(
    model: Any,
    images: Any,
    *,
    labels: Any = None,
    targets: Literal["predicted", "label"] | Any = "predicted",
    masks: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    explainer: str = IG,
    parameters: Mapping[str, Any] | None = None,
    baseline: str | np.ndarray | None = None,
    steps: int | Literal["auto"] | None = None,
    runs: int | None = None,
    method: str | None = None,
    batch_size: int | None = None,
    store: str | os.PathLike | None = None,
    executor: Any = "local",
    seed: int | None = None,
    progress: bool | Callable[[int, int | None], Any] = True,
    maps_dtype: str = "float32",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    tolerance: float | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    insertion_deletion_steps: int | None = None,
    stability: int | None = None,
    sanity_check: bool = False,
) -> DatasetResult:
    """Attributions of every image of a dataset, written to a store as it goes.

    Integrated gradients by default; ``explainer`` runs another method of
    ``igw.EXPLAINERS`` (Grad-CAM, occlusion, ...) instead.

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
        table gets ``mask_share``, the share of positive attribution inside it,
        ``mask_area``, and Shared Interest's ``ground_truth_coverage``,
        ``saliency_coverage`` and ``mask_iou`` (the top 5 % of pixels against
        the mask; see ``ig_widget.dataset.columns``).
    explainer : str
        The method: a name of ``igw.EXPLAINERS`` (``"integrated_gradients"``,
        ``"gradcam"``, ``"guided_gradcam"``, ``"occlusion"``, ...). A method
        other than integrated gradients stores its map at its own shape
        (Grad-CAM: one channel) and nothing it does not produce: no plain
        gradients, no path, no ``delta`` or ``steps`` columns (the manifest's
        ``"arrays"`` lists what is stored). Its images are explained one
        call of its function at a time (see ``ig_widget.dataset.compute``).
    parameters : dict, optional
        The method's own keywords, e.g. ``{"layer": "conv2d"}`` for Grad-CAM
        or ``{"window": 8, "stride": 4}`` for occlusion; each name is checked
        against the method's function before any work, each value by the
        method at the first image. The store records them: a resume with
        other parameters is refused.
    baseline, steps, runs, method, seed, tolerance
        The method's options, as for ``integrated_gradients``; given to a
        method whose function takes them (occlusion: ``baseline``, ``seed``);
        one given to a method that does not take it is refused before any
        work (``steps`` with Grad-CAM). Not given (None), a method keeps its
        own defaults, but integrated gradients gets these: a blurred baseline
        and ``steps="auto"`` (runs 1, the trapezoid rule, tolerance 0.01;
        refined per image until its completeness error ``delta`` is at most
        ``tolerance``), so that a whole dataset is converged without choosing
        a step count. On the bundled demo (1,200 images) every image ends
        within 1 %; the widget's single images keep the reference's black
        baseline and 50 steps. The rows still above 5 % (the cap of 512
        intervals) are counted in a line printed at the end (with the
        progress bar) and recomputed with ``result.rerun``.
    preprocess, batch_size, pixel_range, precision
        As for ``integrated_gradients`` (validated once, by
        ``igw.IGOptions``); every method gets those its function takes.
        For integrated gradients the points of a chunk's images share model
        calls (the engine's ``integrated_gradients_batch`` path), and every
        image gets the result a single ``integrated_gradients`` call with
        these options gives it, to float32 rounding.
    store : path or URI, optional
        Where the results go (see ``ig_widget.dataset.store``); a new
        temporary folder by default. Rerunning with the same store and options
        resumes: finished chunks are skipped (those whose array files were
        lost are computed again, with a warning); a store holding another
        computation (options, model, preprocess, image shape, class count,
        labels with targets="label") is refused, as is a second writer while
        one holds the store's lock. A shorter input never cuts stored rows.
    executor : "local", "ray" or RayExecutor
        ``"ray"`` runs the chunks on a Ray cluster (``ig-widget[ray]``).
    progress : bool or callable
        A progress bar (images/s, ETA), or ``progress(done, total)`` called
        after each chunk (``total`` None when unknown); returning ``False``
        stops with ``ComputationCancelled`` after storing what is computed (the chunk
        computed while the last one reported was stored included).
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
    stability : int, optional
        Adds the columns ``stability_rank_correlation`` and
        ``stability_top_share``: how far each image's map moves with the
        baseline. Each image is explained this many more times, draw ``k``
        from a uniform-noise baseline with seed ``seed + k`` (fresh noise when
        ``seed`` is None), with the run's steps, rule and tolerance, for the
        row's class; the columns are ``igw.stability``'s ``rank_correlation``
        and ``top_share`` of those maps (``igw.stability(model, image,
        method=explainer, draws=stability, seed=seed, target=...,
        parameters=...)``, which another method runs image by image; a method
        without a seed, such as Grad-CAM, is refused). Costs ``stability``
        times the work of the run.
    sanity_check : bool
        Adds the column ``sanity_similarity``: the Spearman rank correlation of
        each absolute map with the map of a copy of the model whose trainable
        layers are all re-initialised (``igw.sanity_check``'s last step, seed
        0; a Keras model or a torch Module), both maps of the run's method.
        Costs one more computation of every map.

    Returns
    -------
    DatasetResult

    Examples
    --------
    >>> images, labels = igw.demo.images()  # doctest: +SKIP
    >>> result = igw.explain_dataset(igw.demo.model(), images, labels=labels)  # doctest: +SKIP
    >>> result.table[["label", "predicted", "delta"]]  # doctest: +SKIP
    >>> cams = igw.explain_dataset(model, images, explainer="gradcam",
    ...                            parameters={"layer": "conv2d_1"})  # doctest: +SKIP
    """
    _require_dependencies()
    _check_model(model)
    explainer = check_choice("explainer", explainer, tuple(REGISTRY))
    given: dict[str, Any] = {
        "baseline": baseline,
        "steps": steps,
        "runs": runs,
        "method": method,
        "seed": seed,
        "tolerance": tolerance,
    }
    general: dict[str, Any] = {
        "preprocess": preprocess,
        "precision": precision,
        "batch_size": batch_size,
        "pixel_range": pixel_range,
    }
    used = None
    keywords: dict[str, Any] = {}
    if explainer == IG:
        check_parameters(IG, parameters, SET_BY_EXPLAIN_DATASET, "explain_dataset")
        given = {
            name: IG_DEFAULTS[name] if value is None and name in IG_DEFAULTS else value
            for name, value in given.items()
        }
        options = IGOptions(**given, **general)
    else:
        keywords, used = method_keywords(explainer, given, parameters, general)
        # The options the columns (insertion and deletion curves) and the seed of the
        # stability draws share; the method's own are in ``keywords``.
        options = IGOptions(seed=seed, **general)
        # The names are checked here; the method checks its values at the first image,
        # before the store is created.
        if stability is not None and "seed" not in REGISTRY[explainer].parameters():
            raise ValueError(
                f"stability: {REGISTRY[explainer].title} takes no seed, so its maps have no "
                "draws to compare (igw.stability's draws differ by their seed)"
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
    if stability is not None:
        stability = check_int("stability", stability, low=2, high=MAX_RUNS)
    if not isinstance(sanity_check, bool):
        raise TypeError(f"sanity_check: expected True or False, got {sanity_check!r}")
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
    chosen_path = None if store is None else check_store_path("store", store)
    if length == 0 and (chosen_path is None or not Store(chosen_path).exists()):
        raise ValueError(
            f"images: expected at least one image, got an empty {type(images).__name__}"
        )
    _check_counts(length, labels, masks)
    recorded = _recorded_options(
        options,
        checked_targets,
        masks is not None,
        maps_dtype,
        chunk_size,
        insertion_deletion_steps,
        _identities(model, preprocess, labels, checked_targets),
        stability,
        sanity_check,
        explainer,
        parameters,
        used,
    )
    path = tempfile.mkdtemp(prefix="ig-dataset-") if chosen_path is None else chosen_path
    target_store = Store(path)
    # What this call creates (the store's folder, any missing folder above it) goes again
    # if it stores no image.
    made = path if chosen_path is None else _first_missing(target_store)
    # Refused before the lock too, whose file would be left in a folder that is not a store.
    _check_resumable(target_store, recorded)
    with target_store.lock():
        try:
            _check_resumable(target_store, recorded)
            run = _Run(
                model,
                images,
                labels,
                masks,
                options,
                checked_targets,
                target_store,
                recorded,
                length,
                _pixel_bound(model, preprocess),
                explainer,
                keywords,
            )
            bar = _Progress(progress, length, run.done)
            try:
                try:
                    if executor == "local":
                        _run_local(run, bar)
                    else:
                        from .ray_executor import RayExecutor

                        (RayExecutor() if executor == "ray" else executor).run(run, bar)
                except BaseException:
                    # However the run stops, a rerun whose chunks are all stored again is done;
                    # if that cannot be written, the store keeps it unfinished, and the reason
                    # the run stopped is what the caller hears.
                    with contextlib.suppress(Exception):
                        run.record_finished_rerun()
                    raise
                run.finish()
            except KeyboardInterrupt as exc:
                raise KeyboardInterrupt(_kept(run, "interrupted", made)) from exc
            except ComputationCancelled as exc:
                raise ComputationCancelled(_kept(run, "cancelled", made)) from exc
            finally:
                bar.close()
        finally:
            # No image stored (none came, the first chunk failed, Ctrl+C): what this call
            # created goes, while it holds the lock, so never another writer's folder.
            if made is not None and not _holds_rows(target_store):
                _remove_made(target_store.root, made)
    if not target_store.exists():
        raise ValueError(
            f"images: expected at least one image, got none from the {type(images).__name__}"
        )
    result = DatasetResult(target_store.path)
    summary = result.convergence_summary()
    if summary and progress is True:
        print(summary)
    return result


def _check_counts(length: int | None, labels: Any, masks: Any) -> None:
    """Labels and masks, one per image: counts compared before any work where they are known."""
    if length is None:
        return
    counts = {"labels": None if callable(labels) else labels, "masks": masks}
    for name, values in counts.items():
        if values is None:
            continue
        given = known_length(values) if name == "masks" else _length(values)
        if given is not None and given != length:
            raise ValueError(f"{name}: expected {length} (one per image), got {given}")


def _length(values: Any) -> int | None:
    try:
        return len(values)
    except TypeError:
        return None


def _first_missing(store: Store) -> str | None:
    """The highest missing folder of a local store's path (None: its folder exists)."""
    if not store.local or os.path.exists(store.root):
        return None
    top, parent = store.root, os.path.dirname(store.root)
    while parent != top and not os.path.exists(parent):
        top, parent = parent, os.path.dirname(parent)
    return top


def _holds_rows(store: Store) -> bool:
    """Whether any chunk's table rows are stored (unsure: it does, and is kept)."""
    try:
        return bool(store.done_chunks())
    except Exception:
        return True


def _remove_made(root: str, top: str) -> None:
    """Remove the store folder ``root`` and the folders above it up to ``top``, which this
    call created: each only while empty, so nothing another process put there goes."""
    shutil.rmtree(root, ignore_errors=True)
    folder = os.path.dirname(root)
    while root != top and os.path.commonpath([folder, top]) == top:
        try:
            os.rmdir(folder)
        except OSError:
            return
        root, folder = folder, os.path.dirname(folder)


def _kept(run: _Run, what: str, made: str | None) -> str:
    # As the store holds it now (Ray's workers may have removed the table files of chunks
    # they were computing again), less the chunks whose files are lost.
    done = sum(rows for number, rows in run.store.stored_rows().items() if number not in run.lost)
    if done == 0 and made is not None:
        return f"explain_dataset {what} before any image was stored; nothing is kept"
    return (
        f"explain_dataset {what}; the {done} images done are kept in '{run.store.path}': "
        f"igw.open_dataset('{run.store.path}') opens them, and the same call with "
        f"store='{run.store.path}' resumes"
    )


class _Writer:
    """Stores computed chunks on a thread, while the caller computes the next one.

    The queue holds one chunk: at most two chunks' results are in memory. The
    caller waits for each chunk's commit one chunk later (``wait``), so its
    progress is reported in order and a writer's error is raised in the
    caller; ``close`` stores everything handed over before it returns, so an
    interruption or a cancel loses nothing that was computed and handed over.
    """

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.todo: queue.Queue[tuple[int, list[Explained]] | None] = queue.Queue(maxsize=1)
        self.done: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()
        self.failed = False
        self.thread = threading.Thread(target=self._work, name="ig-dataset-writer", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        while (entry := self.todo.get()) is not None:
            if self.failed:  # after a failure nothing more is written; the caller stops
                continue
            number, explained = entry
            try:
                assert self.run.computation is not None
                rows = self.run.computation.store_chunk(explained)
                self.done.put((self.run.commit(number, rows), None))
            except BaseException as exc:  # raised in the caller by wait()
                self.failed = True
                self.done.put((0, exc))

    def put(self, number: int, explained: list[Explained]) -> None:
        self.todo.put((number, explained))

    def wait(self) -> int:
        """The images the next handed-over chunk added, once it is committed."""
        count, error = self.done.get()
        if error is not None:
            raise error
        return count

    def close(self) -> None:
        self.todo.put(None)
        self.thread.join()


def _run_local(run: _Run, bar: _Progress) -> None:
    writer = _Writer(run)
    waiting = 0
    try:
        for number, chunk in run.pending():
            assert run.computation is not None
            # Chunk k is stored while chunk k + 1 is computed.
            writer.put(number, run.computation.compute(chunk))
            waiting += 1
            if waiting == 2:
                waiting -= 1
                _advance(bar, writer.wait())
        while waiting:
            waiting -= 1
            _advance(bar, writer.wait())
    finally:
        writer.close()


def _advance(bar: _Progress, count: int) -> None:
    if not bar.advance(count):
        raise ComputationCancelled(CANCELLED)
