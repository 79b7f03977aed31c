"""``DatasetResult``: a dataset's attributions, read from its store on demand."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..engine import IGResult
from ..explainers import REGISTRY, AttributionResult
from ..validation import check_number
from .columns import columns_for
from .store import (
    CHECKSUMS,
    IG,
    IG_ONLY,
    MAPS,
    Layout,
    Store,
    decode_map,
    parse_checksums,
    timestamp,
)

# The completeness error above which a row counts as not converged in the summary line.
CONVERGED_DELTA = 0.05
# What a rerun may change: how finely the path is sampled, nothing that changes
# what is integrated (baseline, target, precision), so a recomputed row answers
# the same question as its neighbours.
RERUN_OPTIONS = ("steps", "tolerance", "batch_size")
# Images the audit report lists per column, by default.
WORST_COUNT = 12
# Bytes of decoded thumbnail chunks kept for a Gallery (DatasetResult._thumbnail_chunk):
# a Gallery sorted by a column asks for images from all over the store, and decoding a
# chunk for each of them cost its kernel 2.8 to 3.6 CPU s per 600 thumbnails of 32 px
# with four chunks kept (benchmarks/README.md). 256 MiB holds 2,600 images of 96 px.
THUMBNAIL_CACHE_BYTES = 256 * 1024**2


class DatasetResult:
    """The results of ``explain_dataset``, backed by its store.

    ``table`` is a pandas DataFrame with one row per stored image (indexed by
    the image's position in the dataset); ``result[i]`` is image ``i``'s
    ``IGResult`` (another method's store: its ``AttributionResult``), its
    maps read from the store when asked for. A result of an interrupted run
    holds the images done so far (``complete`` is False).

    Examples
    --------
    >>> result = igw.open_dataset("audit.store")  # doctest: +SKIP
    >>> result.table.sort_values("delta").tail()  # doctest: +SKIP
    >>> result[12].attributions.shape  # doctest: +SKIP
    (96, 96, 3)
    """

    def __init__(self, path: str | os.PathLike, verify: bool = False) -> None:
        self._store = Store(os.fspath(path))
        if not self._store.exists():
            raise ValueError(f"path: no ig-widget dataset store at '{os.fspath(path)}'")
        self._manifest = self._store.manifest()
        layout = self._manifest.get("layout")
        self._layout = None if layout is None else Layout.from_json(layout)
        options = self._manifest["options"]
        self._columns = columns_for(
            bool(options["masks"]),
            None if self._layout is None else self._layout.columns,
            has_curves=bool(options.get("insertion_deletion_steps")),
            has_stability=bool(options.get("stability")),
            has_sanity=bool(options.get("sanity_check")),
            has_completeness=options.get("explainer", IG) == IG,
        )
        table = self._store.read_table(
            self._columns, None if self._layout is None else self._layout.chunk_size
        )
        # Per row, each array's checksum as written; None: a store written before them.
        self._checksums: dict[int, dict[str, str]] | None = None
        if CHECKSUMS in table:
            self._checksums = {
                int(row): parse_checksums(text) for row, text in table[CHECKSUMS].items()
            }
        self._table = table.drop(columns=[CHECKSUMS], errors="ignore")
        self._thumbnail_chunks: OrderedDict[int, tuple[dict[int, int], tuple[np.ndarray, ...]]]
        self._thumbnail_chunks = OrderedDict()
        if verify:
            self.verify()

    def verify(self) -> None:
        """Read every stored row of every array and check it; raise listing every bad row.

        Examples
        --------
        >>> igw.open_dataset("audit.store").verify()  # doctest: +SKIP
        """
        if self._layout is None:
            return
        problems = self._store.verify(self._layout, self._checksums)
        baseline = self._store.baseline_problem(self._manifest["options"])
        if baseline is not None:
            problems.append(baseline)
        pending = self._manifest.get("rerun_pending")
        if pending:
            problems.append(f"a rerun did not finish: {_unfinished(pending)}")
        if problems:
            raise ValueError(
                f"store: '{self.path}' is damaged: {len(problems)} "
                + ("problem" if len(problems) == 1 else "problems")
                + ":\n  "
                + "\n  ".join(problems)
                + "\nexplain_dataset with the same images and this store= computes the chunks "
                "whose files are missing again and finishes a rerun (remove a changed chunk "
                "file to have it computed again)"
            )

    @property
    def explainer(self) -> str:
        """The method whose maps the store holds (a name of ``igw.EXPLAINERS``)."""
        return str(self._manifest["options"].get("explainer", IG))

    @property
    def parameters(self) -> dict[str, Any]:
        """The method's parameters as it ran (its defaults filled in), as the store records
        them (an array as its fingerprint)."""
        described = self._manifest.get("explainer")
        if isinstance(described, dict) and isinstance(described.get("parameters"), dict):
            return dict(described["parameters"])
        return dict(self._manifest["options"].get("parameters") or {})

    @property
    def arrays(self) -> tuple[str, ...]:
        """The arrays the store holds per image (``read_rows``' and ``iter_arrays``' names)."""
        return () if self._layout is None else tuple(sorted(self._layout.array_specs()))

    def _check_array(self, name: str) -> None:
        """Refuse, naming the method, an array its store does not hold (never read as 0)."""
        if self._layout is not None and name in IG_ONLY and name not in self._layout.array_specs():
            title = REGISTRY[self.explainer].title
            what = "no plain gradients" if name == "gradients" else f"no {name}"
            raise ValueError(
                f"{name}: {title} stores {what} (they are integrated gradients'); this store "
                f"holds {', '.join(self.arrays)}"
            )

    def _read(self, name: str, row: int) -> np.ndarray:
        """One verified row of an array: a missing or changed chunk raises, never reads as 0."""
        self._check_array(name)
        sums = None if self._checksums is None else self._checksums.get(row, {})
        return self._store.read_row(self._layout, name, row, sums)

    def read_rows(self, name: str, rows: list[int]) -> np.ndarray:
        """Some rows of one stored array, checked; each store chunk is read once.

        ``rows`` are image indices in the table, ascending. A map array
        (``attributions``, ``gradients``) comes back as float32 whatever the
        store keeps. Reading a few rows at a time keeps memory flat over a
        dataset of any size (``igw.compare_datasets`` streams this way).

        Examples
        --------
        >>> result.read_rows("attributions", [0, 1, 2]).shape  # doctest: +SKIP
        (3, 96, 96, 3)
        """
        self._check_array(name)
        rows = [self._row(row) for row in rows]
        if rows != sorted(set(rows)):
            raise ValueError(f"rows: expected ascending image indices, got {rows[:8]!r}")
        if not rows:
            raise ValueError("rows: expected at least one image index")
        assert self._layout is not None  # a store with rows has a layout
        size = self._layout.chunk_size
        parts = []
        for chunk in sorted({row // size for row in rows}):
            mine = [row for row in rows if row // size == chunk]
            values = self._store.read_rows(self._layout, name, mine, self._checksums)
            if name in MAPS and self._layout.maps_dtype == "float16":
                scales = self._store.read_rows(self._layout, f"{name}_scale", mine, self._checksums)
                values = np.stack(
                    [decode_map(v, float(scale)) for v, scale in zip(values, scales, strict=True)]
                )
            parts.append(values)
        return np.concatenate(parts)

    def _chunks(
        self, names: tuple[str, ...], rows: list[int] | None = None
    ) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        """The stored rows (or ``rows``, sorted) one chunk at a time: their image indices and
        those rows of each array in ``names``, every row checked (memory: one chunk)."""
        if self._layout is None:
            return
        size = self._layout.chunk_size
        index = self._table.index if rows is None else np.array(rows, np.int64)
        for chunk in sorted({int(row) // size for row in index}):
            rows = [int(row) for row in index[(index // size) == chunk]]
            yield rows, {name: self.read_rows(name, rows) for name in names}

    @property
    def path(self) -> str:
        """Where the store is."""
        return self._store.path

    @property
    def complete(self) -> bool:
        """Whether every image of the dataset is stored."""
        return bool(self._manifest.get("complete"))

    @property
    def options(self) -> dict[str, Any]:
        """The computation's options, as recorded in the store."""
        return dict(self._manifest["options"])

    @property
    def table(self) -> Any:
        """One row per image: source, label, predicted, target, score, delta, ... (a copy)."""
        return self._table.copy()

    def __len__(self) -> int:
        return len(self._table)

    def __iter__(self) -> Any:
        return (self[int(index)] for index in self._table.index)

    def _row(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an image index (int), got {type(index).__name__}")
        index = int(index)
        if index < 0 and self.complete:
            index += len(self)
        if index not in self._table.index:
            raise IndexError(
                f"index: image {index} is not in the store "
                f"({len(self)} images stored{'' if self.complete else ', incomplete'})"
            )
        return index

    def image(self, index: int) -> np.ndarray:
        """Image ``index`` as the engine saw it: float32 (H, W, C), raw pixel units."""
        return self._read("inputs", self._row(index))

    def __getitem__(self, index: int) -> IGResult | AttributionResult:
        row = self._row(index)
        pending = self._manifest.get("rerun_pending")
        if pending and row in pending["rows"]:
            raise ValueError(
                f"index: image {row} was being recomputed by a rerun that did not finish; its "
                f"maps and its table row may disagree: {_unfinished(pending)}"
            )
        read = self._read
        assert self._layout is not None  # a store with rows has a layout
        maps = {}
        for name in self._layout.maps:
            scale = 1.0
            if self._layout.maps_dtype == "float16":
                scale = float(read(f"{name}_scale", row))
            maps[name] = decode_map(read(name, row), scale)
        table_row = self._table.loc[row]
        if self.explainer != IG:
            return AttributionResult(
                attributions=maps["attributions"],
                explainer=self.explainer,
                parameters=self.parameters,
                target=int(table_row["target"]),
                scores=read("scores", row),
                points_used=int(read("points_used", row)),
                elapsed_s=float(read("elapsed_s", row)),
            )
        alphas = read("path_alphas", row)
        points = int(np.count_nonzero(~np.isnan(alphas)))
        options = self._manifest["options"]
        return IGResult(
            attributions=maps["attributions"],
            gradients=maps["gradients"],
            target=int(table_row["target"]),
            scores=read("scores", row),
            path_alphas=alphas[:points],
            path_scores=read("path_scores", row)[:, :points],
            baseline_scores=read("baseline_scores", row),
            delta=float(table_row["delta"]),
            steps=int(read("steps", row)),
            method=options["method"],
            runs=int(options["runs"]),
            points_used=int(read("points_used", row)),
            elapsed_s=float(read("elapsed_s", row)),
        )

    def iter_arrays(
        self, names: tuple[str, ...] = ("attributions",), indices: Any = None
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Image by image, the stored arrays ``names`` (maps decoded to float32), verified.

        Each store chunk is read once and every row of it checked against
        its checksum (reading row by row would decode a whole chunk per
        row), so a pass over the store holds one chunk in memory.

        Parameters
        ----------
        names : tuple of str
            Arrays of the store: "attributions", "gradients", "inputs", ...
        indices : iterable of int, optional
            The images, in any order (yielded in image order); all by default.

        Examples
        --------
        >>> for index, arrays in result.iter_arrays(("inputs", "attributions")):  # doctest: +SKIP
        ...     total += arrays["attributions"]
        """
        rows = None if indices is None else sorted({self._row(i) for i in indices})
        for members, block in self._chunks(names, rows):
            for offset, row in enumerate(members):
                yield row, {name: block[name][offset] for name in names}

    @property
    def thumbnail_shape(self) -> tuple[int, int]:
        """(height, width) of the gallery's thumbnails."""
        return (0, 0) if self._layout is None else self._layout.thumbnail_shape

    def baseline(self) -> np.ndarray | None:
        """The array baseline the dataset was explained from, or None for a named one.

        Checked against the fingerprint the store recorded: a lost or changed
        baseline raises, never reads back as zeros.
        """
        problem = self._store.baseline_problem(self._manifest["options"])
        if problem is not None:
            raise ValueError(
                f"store: '{self.path}': {problem}; the store is damaged (explain_dataset with "
                "the same baseline and this store= writes it again)"
            )
        if not self._store.has_baseline():
            return None
        return self._store.read("baseline", slice(None))

    def thumbnails(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Reduced display images (n, h, w, 3) and channel maps (n, 2, h, w) for the gallery."""
        rows = [self._row(index) for index in indices]
        assert self._layout is not None  # a store with rows has a layout
        size = self._layout.chunk_size
        # Each chunk the request touches decoded (or found) once, however its rows are spread.
        chunks = {number: self._thumbnail_chunk(number) for number in {row // size for row in rows}}
        pictures: list[np.ndarray] = []
        maps: list[np.ndarray] = []
        for row in rows:
            where, chunk = chunks[row // size]
            sums = None if self._checksums is None else self._checksums.get(row, {})
            for name, values, kept in zip(
                ("thumbnails", "thumbnail_maps"), chunk, (pictures, maps), strict=True
            ):
                # Each row checked as it is served: a bad row fails alone, not its chunk.
                self._store.check_row(self._layout, name, row, values[where[row]], sums)
                kept.append(values[where[row]])
        return np.stack(pictures), np.stack(maps)

    def _thumbnail_chunk(self, chunk: int) -> tuple[dict[int, int], tuple[np.ndarray, ...]]:
        """Store chunk ``chunk``'s thumbnails and maps, unchecked, and each row's place in them.

        Decoded chunks are kept, the least recently used dropped first, up to
        THUMBNAIL_CACHE_BYTES: a Gallery scrolls back and forth over the same
        images, in an order of its own.
        """
        cached = self._thumbnail_chunks.pop(chunk, None)
        if cached is None:
            assert self._layout is not None  # a store with rows has a layout
            size = self._layout.chunk_size
            index = self._table.index
            rows = index[(index >= chunk * size) & (index < (chunk + 1) * size)]
            rows = sorted(int(row) for row in rows)
            cached = (
                {row: i for i, row in enumerate(rows)},
                tuple(
                    self._store.read_rows(self._layout, name, rows, None)
                    for name in ("thumbnails", "thumbnail_maps")
                ),
            )
        self._thumbnail_chunks[chunk] = cached
        chunks = self._thumbnail_chunks
        kept = sum(array.nbytes for _, arrays in chunks.values() for array in arrays)
        while kept > THUMBNAIL_CACHE_BYTES and len(chunks) > 1:
            _, (_, arrays) = chunks.popitem(last=False)
            kept -= sum(array.nbytes for array in arrays)
        return cached

    def save(self, path: str | os.PathLike) -> DatasetResult:
        """Copy the store to ``path`` (a new folder or URI) and return the copy.

        Examples
        --------
        >>> kept = result.save("audits/shapes")  # doctest: +SKIP
        """
        target = Store(check_store_path("path", path))
        if target.fs.exists(target.root):
            raise ValueError(f"path: '{os.fspath(path)}' exists; give a new folder")
        if type(target.fs) is type(self._store.fs):
            self._store.fs.copy(self._store.root, target.root, recursive=True)
        else:
            import fsspec.generic

            fsspec.generic.rsync(self._store.path, target.path)
        return DatasetResult(target.path)

    def report(
        self,
        path: str | os.PathLike,
        *,
        sections: Sequence[Any] = (),
        class_names: Sequence[str] | None = None,
        worst_by: Any = None,
        worst: int = WORST_COUNT,
        **render_options: Any,
    ) -> Path:
        """Write an audit report: one self-contained HTML page that opens offline.

        The page says what was run (the recorded options, the versions of
        ig-widget, Python and the frameworks, the model's digest), shows the
        completeness error's distribution and a summary of each per-image
        measure (insertion and deletion areas, mask share, where stored), the
        worst images by each column of ``worst_by`` (the store's thumbnails:
        the image and its map), the mean map of each class (read from the
        store one chunk at a time), and one section per finding in
        ``sections``. It has no script and loads nothing: styles inline,
        pictures as data URIs; its size does not grow with the number of
        images. Every name from the model or the user is shown as text.

        Parameters
        ----------
        path : str or path
            The ``.html`` file to write (replaced atomically).
        sections : sequence
            Findings to add, each a ``ReportSection`` or an object with a
            ``report_section()`` method (``igw.compare_datasets``,
            ``igw.cluster_maps``, ``igw.sanity_check``, ...).
        class_names : sequence of str, optional
            One name per class, for the label, predicted and target columns.
        worst_by : column, (column, "high" or "low"), or a list of them
            The columns to list the worst images by; "high": the largest
            values are the worst. A name alone: ``delta``, ``deletion_auc``
            and other columns largest first; ``insertion_auc``,
            ``mask_share``, ``score`` and ``correct`` smallest first. By
            default ``delta`` and the stored faithfulness columns.
        worst : int
            Images listed per column (1 to 100).
        **render_options
            Display options for the maps, as for ``igw.render``.

        Returns
        -------
        Path
            ``path``.

        Examples
        --------
        >>> result.report("audit.html", worst_by=["delta", "mask_share"])  # doctest: +SKIP
        """
        from .report import write_report

        return write_report(
            self,
            path,
            sections=sections,
            class_names=class_names,
            worst_by=worst_by,
            worst=worst,
            **render_options,
        )

    def convergence_summary(self, limit: float = CONVERGED_DELTA) -> str | None:
        """A line counting the rows whose completeness error ``delta`` exceeds ``limit``.

        None when there are none. The line says how to recompute them.

        Examples
        --------
        >>> result.convergence_summary()  # doctest: +SKIP
        '27 of 1,200 images have completeness error above 5 %: ...'
        """
        limit = check_number("limit", limit, low=0.0)
        if "delta" not in self._table:
            return None  # a method without completeness
        rows = self._table["delta"] > limit
        above = int(rows.sum())
        if not above:
            return None
        line = f"{above:,} of {len(self):,} images have completeness error above {100 * limit:g} %"
        most = None if self._layout is None else self._layout.path_points - 1
        if (
            "steps" in self._table
            and most is not None
            and (self._table["steps"][rows] >= most).all()
        ):
            # A rerun cannot sample these paths more finely than the store holds.
            return (
                f"{line}, already at the {most} steps this store holds: their score changes "
                "too sharply along the path; a new store with more steps (up to 10,000) or "
                "another baseline may converge"
            )
        return (
            f"{line}: result.rerun(model, where=result.table.delta > {limit:g}, steps=...) "
            f'recomputes them with more steps (up to {most}; the "steps" column records '
            "each row's)"
        )

    def rerun(
        self,
        model: Any,
        where: Any,
        *,
        preprocess: Any = None,
        masks: Any = None,
        **options: Any,
    ) -> DatasetResult:
        """Recompute some rows in the store with more steps (or a smaller tolerance).

        Everything else is the stored computation's: the images (read from
        the store), the baseline, the target of each row, the method, runs,
        seed and precision. Each recomputed row's table row and maps are
        replaced; its ``steps`` column says how many intervals it now has,
        and the manifest lists every rerun (rows and options) under
        ``"reruns"``. While a rerun writes, the manifest names its rows
        (``"rerun_pending"``): if it is interrupted, reading those rows
        raises until they are recomputed (the same rerun again, or
        ``explain_dataset`` resuming the store), rather than mixing old and new;
        until then another rerun is refused unless it recomputes all those rows.
        A rerun on a result opened before the store changed reads the store
        anew; one that touches a chunk whose file is lost is refused (a resume
        computes it again first).

        Parameters
        ----------
        model
            The model the store was computed with, given as it was given to
            ``explain_dataset`` (the store keeps its identity, not the model;
            another model is refused).
        where : boolean Series or array over the table, or image indices
            The rows to recompute, e.g. ``result.table.delta > 0.05``.
        preprocess : callable, optional
            The run's preprocess function, when it had one (checked against
            the identity the store records).
        masks : optional
            With a store that has mask columns: the run's masks, one per image,
            indexed as the images (``mask_share`` is recomputed).
        **options
            ``steps`` (an int, or "auto"), ``tolerance``, ``batch_size``.

        Returns
        -------
        DatasetResult
            The store reopened, the new rows in its table.

        Examples
        --------
        >>> result = result.rerun(model, result.table.delta > 0.05, steps=512)  # doctest: +SKIP
        """
        unknown = sorted(set(options) - set(RERUN_OPTIONS))
        if unknown:
            raise TypeError(
                f"{unknown[0]}: not an option a rerun changes; expected {', '.join(RERUN_OPTIONS)} "
                "(a rerun keeps what is integrated, only how finely)"
            )
        # The store as it is now: this result may have been read before another rerun or a
        # resume changed it, and writing its table and checksums back would undo that.
        return DatasetResult(self.path)._rerun(model, where, preprocess, masks, options)

    def _rerun(
        self, model: Any, where: Any, preprocess: Any, masks: Any, options: dict[str, Any]
    ) -> DatasetResult:
        """``rerun`` on a result just read from its store."""
        from .columns import table_rows
        from .compute import Computation, path_points, resolve_model
        from .explain import check_rerun_identities, options_from_record

        if self._layout is None:
            raise ValueError(f"store: '{self.path}' holds no image yet; nothing to rerun")
        if self.explainer != IG:
            raise ValueError(
                f"rerun: this store holds {REGISTRY[self.explainer].title} maps, which have no "
                "steps to refine and no completeness error to converge; a rerun recomputes "
                "integrated gradients' rows with more steps (explain_dataset with another "
                "store recomputes every row)"
            )
        recorded = self._manifest["options"]
        check_rerun_identities(self.path, recorded, model, preprocess)
        if recorded["masks"] and masks is None:
            raise ValueError(
                "masks: the store has mask columns; give the run's masks (one per image) so "
                "that mask_share is recomputed"
            )
        computation_options = options_from_record(recorded, self.baseline(), preprocess).replace(
            **options
        )
        if path_points(computation_options) > self._layout.path_points:
            raise ValueError(
                f"steps: this store's path arrays hold {self._layout.path_points} points, so a "
                f"rerun may use at most {self._layout.path_points - 1} steps; got "
                f"{computation_options.steps!r}"
            )
        rows = self._rows_where(where)
        if not rows:
            return self
        pending = self._manifest.get("rerun_pending")
        if pending and not set(pending["rows"]) <= set(rows):
            # Its record would be replaced: rows of it left half written, and forgotten.
            raise ValueError(f"rerun: {_unfinished(pending)} first (or rerun all of its rows)")
        size = self._layout.chunk_size
        touched = {row // size for row in rows}
        lost = self._store.lost_chunks(
            self._layout,
            {
                number: int(count)
                for number, count in (self._table.index // size).value_counts().items()
                if number in touched
            },
        )
        if lost:
            # Writing rows into a lost chunk file would make its other rows zeros, unseen.
            files = sorted(file for chunk_files in lost.values() for file in chunk_files)
            raise ValueError(
                f"store: '{self.path}': the chunk files {files} are missing; explain_dataset "
                "resuming the store computes them again first"
            )
        import pandas as pd

        from .sources import Item

        table = self._table
        items = [
            Item(
                index=row,
                source=str(table.loc[row, "source"]),
                # Checked: a lost chunk file would give a black image, explained as one.
                image=self._read("inputs", row),
                label=None if pd.isna(table.loc[row, "label"]) else int(table.loc[row, "label"]),
                mask=None if masks is None else np.asarray(masks[row], dtype=bool),
            )
            for row in rows
        ]
        computation = Computation(
            model=model,
            options=computation_options,
            targets=[int(t) for t in table["target"].reindex(range(max(rows) + 1), fill_value=0)],
            store_path=self._store.path,
            layout=self._layout,
            has_masks=bool(recorded["masks"]),
            curve_steps=recorded.get("insertion_deletion_steps"),
            stability_runs=recorded.get("stability"),
            sanity=bool(recorded.get("sanity_check")),
        )
        computation._resolved = resolve_model(model)
        record = {
            "rows": rows,
            # As JSON keeps them (a NumPy integer is not JSON).
            "options": {
                name: value.item() if isinstance(value, np.generic) else value
                for name, value in sorted(options.items())
            },
            "date": timestamp(),
        }
        chunk_size = self._layout.chunk_size
        columns = columns_for(bool(recorded["masks"]), self._layout.columns)
        # Every row's checksums again as the table stores them ("name:crc;..."),
        # the recomputed rows' replaced by those of their new arrays.
        sums = (
            None
            if self._checksums is None
            else {
                row: ";".join(f"{name}:{crc}" for name, crc in values.items())
                for row, values in self._checksums.items()
            }
        )
        with self._store.lock():
            if self._store.manifest() != self._manifest:
                raise ValueError(
                    f"store: '{self.path}' changed since this rerun read it (another process "
                    "wrote it); nothing was written: run the rerun again"
                )
            self._store.write_manifest({**self._manifest, "rerun_pending": record})
            new_rows = []
            for start in range(0, len(items), chunk_size):
                explained = computation.compute(items[start : start + chunk_size])
                batch = [e.item for e in explained]
                arrays = computation.arrays(batch, [e.result for e in explained])
                for offset, item in enumerate(batch):
                    written = self._store.write_arrays(
                        self._layout,
                        item.index,
                        {name: values[offset : offset + 1] for name, values in arrays.items()},
                    )
                    if sums is not None:
                        sums[item.index] = written[0]
                new_rows.append(table_rows(explained, columns))
            replaced = pd.concat(new_rows)
            for chunk in sorted({row // chunk_size for row in rows}):
                part = table[table.index // chunk_size == chunk].copy()
                mine = replaced[replaced.index // chunk_size == chunk]
                part.loc[mine.index, mine.columns] = mine
                if sums is not None:
                    part[CHECKSUMS] = [sums[int(row)] for row in part.index]
                self._store.write_rows(chunk, part)
            self._store.write_manifest(with_rerun_recorded(self._manifest, record))
        return DatasetResult(self.path)

    def _rows_where(self, where: Any) -> list[int]:
        """Image indices from a boolean mask over the table or a list of indices."""
        values = np.asarray(where)
        index = getattr(where, "index", None)  # a list's is a method
        if values.dtype == bool and index is not None and not callable(index):
            # A boolean Series is taken by its labels, which must be the table's (a Series of
            # an older table, or with its index reset, is refused, not read by position).
            labels = list(index)
            if values.ndim != 1 or sorted(map(str, labels)) != sorted(
                map(str, self._table.index.tolist())
            ):
                raise ValueError(
                    f"where: a boolean Series over the table's {len(self._table)} rows (its "
                    "index the table's image indices, as result.table gives them), got one "
                    f"of shape {values.shape} over other labels"
                )
            return sorted(int(row) for row, keep in zip(labels, values, strict=True) if keep)
        if values.dtype == bool:
            if values.shape != (len(self._table),):
                raise ValueError(
                    f"where: expected {len(self._table)} booleans (one per table row), "
                    f"got shape {values.shape}"
                )
            return [int(index) for index in self._table.index[values]]
        if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
            raise TypeError(
                "where: expected a boolean mask over the table (e.g. result.table.delta > 0.05) "
                f"or image indices, got {values.dtype} of shape {values.shape}"
            )
        return sorted({self._row(int(index)) for index in values})

    def __repr__(self) -> str:
        state = "complete" if self.complete else "incomplete"
        return f"DatasetResult({len(self)} images, {state}, store='{self.path}')"


def check_store_path(name: str, path: Any) -> str:
    """A store's path or URI as a string: non-empty (raises naming ``name``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path or URI, got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name}: expected a non-empty path or URI, got {text!r}")
    return text


def as_dataset_result(name: str, value: Any) -> DatasetResult:
    """``value`` as given when it is a DatasetResult, the store at it when it is a
    path; anything else raises naming the parameter ``name``."""
    if isinstance(value, (str, os.PathLike)):
        return DatasetResult(check_store_path(name, value))
    if not isinstance(value, DatasetResult):
        raise TypeError(
            f"{name}: expected a DatasetResult or a store path, got {type(value).__name__}"
        )
    return value


def open_dataset(path: str | os.PathLike, verify: bool = False) -> DatasetResult:
    """Open a store written by ``explain_dataset`` (complete or not).

    Every row read is checked against the checksum written with it; with
    ``verify=True`` the whole store is read and checked now, and a damaged
    store raises a ValueError listing every bad row (the row, the array and
    the chunk file).

    Examples
    --------
    >>> result = igw.open_dataset("audit.store", verify=True)  # doctest: +SKIP
    """
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"verify: expected True or False, got {type(verify).__name__}")
    return DatasetResult(check_store_path("path", path), verify=bool(verify))


def with_rerun_recorded(manifest: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` with a rerun that finished listed under ``"reruns"`` (and no longer
    ``"rerun_pending"``)."""
    done = {key: value for key, value in manifest.items() if key != "rerun_pending"}
    return {**done, "reruns": [*manifest.get("reruns", []), record]}


def _unfinished(pending: dict[str, Any]) -> str:
    """How to finish an interrupted rerun (the manifest's ``rerun_pending``)."""
    return (
        f"finish the rerun of images {pending['rows']}: result.rerun(model, "
        f"where={pending['rows']}, **{pending['options']!r}) (with preprocess= and masks= "
        "as the run had them), or explain_dataset resuming the store"
    )
