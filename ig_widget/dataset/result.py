"""``DatasetResult``: a dataset's attributions, read from its store on demand."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..engine import IGResult
from .columns import columns_for
from .store import CHECKSUMS, MAPS, Layout, Store, decode_map, parse_checksums


class DatasetResult:
    """The results of ``explain_dataset``, backed by its store.

    ``table`` is a pandas DataFrame with one row per stored image (indexed by
    the image's position in the dataset); ``result[i]`` is image ``i``'s
    ``IGResult``, its maps read from the store when asked for. A result of
    an interrupted run holds the images done so far (``complete`` is False).

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
        if problems:
            raise ValueError(
                f"store: '{self.path}' is damaged: {len(problems)} bad rows:\n  "
                + "\n  ".join(problems)
            )

    def _read(self, name: str, row: int) -> np.ndarray:
        """One verified row of an array: a missing or changed chunk raises, never reads as 0."""
        sums = None if self._checksums is None else self._checksums.get(row, {})
        return self._store.read_row(self._layout, name, row, sums)

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

    def __getitem__(self, index: int) -> IGResult:
        row = self._row(index)
        read = self._read
        maps = {}
        for name in MAPS:
            scale = 1.0
            if self._layout is not None and self._layout.maps_dtype == "float16":
                scale = float(read(f"{name}_scale", row))
            maps[name] = decode_map(read(name, row), scale)
        alphas = read("path_alphas", row)
        points = int(np.count_nonzero(~np.isnan(alphas)))
        table_row = self._table.loc[row]
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

    @property
    def thumbnail_shape(self) -> tuple[int, int]:
        """(height, width) of the gallery's thumbnails."""
        return (0, 0) if self._layout is None else self._layout.thumbnail_shape

    def baseline(self) -> np.ndarray | None:
        """The array baseline the dataset was explained from, or None for a named one."""
        if "baseline" not in self._store.array_names():
            return None
        return self._store.read("baseline", slice(None))

    def thumbnails(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Reduced display images (n, h, w, 3) and IG channel maps (n, 2, h, w) for the gallery."""
        rows = [self._row(index) for index in indices]
        return (
            np.stack([self._read("thumbnails", row) for row in rows]),
            np.stack([self._read("thumbnail_maps", row) for row in rows]),
        )

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
