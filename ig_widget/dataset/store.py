"""The dataset store: a folder (or object-store prefix) written chunk by chunk.

Layout::

    STORE/
      ig-dataset.json           what was computed (options, image shape, classes), how far
      table/chunk-000000.parquet one Parquet file per chunk of images: the table's rows
      arrays.zarr/              Zarr v3 arrays, one row per image, one Zarr chunk per chunk:
        inputs                  (N, H, W, C) float32, the images as the engine saw them
        attributions, gradients (N, H, W, C) float32, or float16 with a per-image scale
        attributions_scale, gradients_scale   (N,) float32, with float16 only
        scores                  (N, K) float64, the model's output at each image
        path_alphas             (N, P) float64, path_scores (N, runs, P), baseline_scores (N, runs)
        steps, points_used, elapsed_s  (N,)
        thumbnails              (N, h, w, 3) uint8, the display image reduced for the gallery
        thumbnail_maps          (N, 2, h, w) float32, IG's positive and negative channel
                                means, reduced

Images are grouped in chunks of ``chunk_size`` consecutive indices; one
writer computes and writes a whole chunk: its arrays first, then its Parquet
file, which is written under a temporary name and renamed, so a chunk's table
file exists only when everything of the chunk is stored. Resuming skips the
chunks that have one; an interruption loses at most the chunks in flight.

Paths go through fsspec (a local folder, ``file://``, or an object-store URI
such as ``s3://bucket/prefix`` with the matching fsspec package installed),
so that workers on other machines can write the same store.

float16 maps (``maps_dtype="float16"``) halve the two largest arrays. Each
map is divided by its largest absolute value before rounding (stored in the
``*_scale`` arrays), so values cannot overflow; a stored value ``v`` then
differs from the float32 one by at most ``max(2**-11 * |v|, 2**-25 * scale)``:
0.05 % of itself, or 3e-8 of the image's largest value for values smaller
than 6e-5 of it (float16's subnormal range).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frameworks import install_command
from ..render import block_mean, channel_maps, display_image
from .columns import Column

FORMAT = "ig-widget dataset"
VERSION = 1
MANIFEST = "ig-dataset.json"
TABLE = "table"
ARRAYS = "arrays.zarr"
MAPS = ("attributions", "gradients")
MAPS_DTYPES = ("float32", "float16")
# Thumbnails are the image reduced by an integer factor to at most this side.
THUMBNAIL_SIDE = 96
# An array of unknown length grows by doubling, from this many chunks.
INITIAL_CHUNKS = 4


def thumbnail_factor(height: int, width: int) -> int:
    """Integer reduction that brings the longer side to at most ``THUMBNAIL_SIDE``.

    Examples
    --------
    >>> thumbnail_factor(96, 96), thumbnail_factor(299, 299)
    (1, 4)
    """
    return max(1, math.ceil(max(height, width) / THUMBNAIL_SIDE))


def thumbnail(image: np.ndarray, attributions: np.ndarray, factor: int) -> tuple[np.ndarray, ...]:
    """The gallery's picture of one image: reduced display RGB and IG channel maps.

    Examples
    --------
    >>> rgb, maps = thumbnail(np.zeros((4, 4, 3)), np.ones((4, 4, 3)), 2)
    >>> rgb.shape, maps.shape
    ((2, 2, 3), (2, 2, 2))
    """
    rgb = np.rint(block_mean(display_image(image), factor)).astype(np.uint8)
    maps = np.stack([block_mean(m, factor) for m in channel_maps(attributions)])
    return rgb, maps


def missing_dependency(error: ImportError, extra: str = "dataset") -> ImportError:
    """The one message for a missing optional dependency: which extra installs it."""
    return ImportError(
        f"{error.name or 'a dependency'} is missing: explaining datasets needs the "
        f"'{extra}' extra: {install_command(extra)}"
    )


def _filesystem(path: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as exc:
        raise missing_dependency(exc) from exc
    return fsspec.core.url_to_fs(path)


@dataclass(frozen=True)
class Layout:
    """What a store holds: fixed when it is created, checked when it is resumed."""

    image_shape: tuple[int, int, int]
    classes: int
    runs: int
    path_points: int
    chunk_size: int
    maps_dtype: str
    columns: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Layout:
        return cls(
            **{
                **values,
                "image_shape": tuple(values["image_shape"]),
                "columns": tuple(values["columns"]),
            }
        )

    @property
    def thumbnail_shape(self) -> tuple[int, int]:
        height, width = self.image_shape[:2]
        factor = thumbnail_factor(height, width)
        return math.ceil(height / factor), math.ceil(width / factor)

    def array_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per-image shape and dtype of every array."""
        image = self.image_shape
        small = self.thumbnail_shape
        specs: dict[str, tuple[tuple[int, ...], str]] = {
            "inputs": (image, "float32"),
            "scores": ((self.classes,), "float64"),
            "path_alphas": ((self.path_points,), "float64"),
            "path_scores": ((self.runs, self.path_points), "float64"),
            "baseline_scores": ((self.runs,), "float64"),
            "steps": ((), "int64"),
            "points_used": ((), "int64"),
            "elapsed_s": ((), "float64"),
            "thumbnails": ((*small, 3), "uint8"),
            "thumbnail_maps": ((2, *small), "float32"),
        }
        for name in MAPS:
            specs[name] = (image, self.maps_dtype)
            if self.maps_dtype == "float16":
                specs[f"{name}_scale"] = ((), "float32")
        return specs


def encode_map(values: np.ndarray, dtype: str) -> tuple[np.ndarray, float]:
    """A map as stored (float16 divided by its largest magnitude) and its scale.

    Examples
    --------
    >>> stored, scale = encode_map(np.array([2.0**17, -512.0], np.float32), "float16")
    >>> stored.dtype, decode_map(stored, scale).tolist()  # beyond float16's 65504
    (dtype('float16'), [131072.0, -512.0])
    """
    if dtype == "float32":
        return values.astype(np.float32), 1.0
    scale = float(np.max(np.abs(values))) or 1.0
    return (values.astype(np.float64) / scale).astype(np.float16), scale


def decode_map(stored: np.ndarray, scale: float) -> np.ndarray:
    """Inverse of ``encode_map``: float32 values."""
    if stored.dtype == np.float32:
        return stored
    return (stored.astype(np.float64) * scale).astype(np.float32)


class Store:
    """One dataset store at ``path`` (see the module docstring for the layout)."""

    def __init__(self, path: str) -> None:
        self.path = str(path).rstrip("/")
        self.fs, self.root = _filesystem(self.path)
        self._group: Any = None

    # -- the manifest --------------------------------------------------------

    def exists(self) -> bool:
        return self.fs.exists(f"{self.root}/{MANIFEST}")

    def manifest(self) -> dict[str, Any]:
        with self.fs.open(f"{self.root}/{MANIFEST}", "r") as handle:
            manifest = json.load(handle)
        if manifest.get("format") != FORMAT:
            raise ValueError(f"store: '{self.path}' is not an ig-widget dataset store")
        if manifest.get("version", 0) > VERSION:
            raise ValueError(
                f"store: '{self.path}' was written by a newer ig-widget "
                f"(format version {manifest['version']}); upgrade ig-widget to read it"
            )
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.fs.makedirs(self.root, exist_ok=True)
        self._write_atomic(
            f"{self.root}/{MANIFEST}",
            json.dumps({"format": FORMAT, "version": VERSION, **manifest}, indent=2).encode(),
        )

    def _write_atomic(self, path: str, data: bytes) -> None:
        temporary = f"{path}.{uuid.uuid4().hex}.partial"
        with self.fs.open(temporary, "wb") as handle:
            handle.write(data)
        self.fs.mv(temporary, path)

    # -- arrays ----------------------------------------------------------------

    def _arrays(self) -> Any:
        if self._group is None:
            try:
                import zarr
            except ImportError as exc:
                raise missing_dependency(exc) from exc
            self._group = zarr.open_group(f"{self.path}/{ARRAYS}", mode="a")
        return self._group

    def create_arrays(self, layout: Layout, length: int | None) -> None:
        """Create every array, ``length`` images long (or a few chunks, grown later)."""
        self.fs.makedirs(f"{self.root}/{TABLE}", exist_ok=True)
        rows = length if length is not None else INITIAL_CHUNKS * layout.chunk_size
        group = self._arrays()
        for name, (shape, dtype) in layout.array_specs().items():
            group.create_array(
                name,
                shape=(rows, *shape),
                # One Zarr chunk per store chunk: written whole by one writer.
                # (Sharding single images wrote 10 to 25 times slower.)
                chunks=(layout.chunk_size, *shape),
                dtype=dtype,
                fill_value=0,
                overwrite=True,
            )

    def write_baseline(self, baseline: np.ndarray) -> None:
        """Keep an array baseline, so that a live view can use it again."""
        self._arrays().create_array(
            "baseline", shape=baseline.shape, dtype="float32", overwrite=True
        )[...] = baseline

    def reserve(self, layout: Layout, stop: int) -> None:
        """Grow the arrays (by doubling) so that rows below ``stop`` exist.

        Only the process that feeds the work calls this, before handing out a
        chunk that needs the rows; Zarr writes metadata atomically, so writers
        that open the arrays afterwards see the new length.
        """
        group = self._arrays()
        rows = group["inputs"].shape[0]
        if stop <= rows:
            return
        rows = max(stop, 2 * rows)
        rows = math.ceil(rows / layout.chunk_size) * layout.chunk_size
        for name, (shape, _) in layout.array_specs().items():
            group[name].resize((rows, *shape))

    def trim(self, layout: Layout, length: int) -> None:
        """Cut the arrays to ``length`` images once the count is known."""
        group = self._arrays()
        for name, (shape, _) in layout.array_specs().items():
            if group[name].shape[0] != length:
                group[name].resize((length, *shape))

    def write_arrays(self, start: int, values: dict[str, np.ndarray]) -> None:
        """Write rows ``start .. start + len`` of each named array (one chunk)."""
        group = self._arrays()
        for name, rows in values.items():
            group[name][start : start + len(rows)] = rows

    def read(self, name: str, index: int | slice) -> np.ndarray:
        """Rows of one array."""
        return np.asarray(self._arrays()[name][index])

    def array_names(self) -> list[str]:
        return sorted(self._arrays().array_keys())

    # -- the table ---------------------------------------------------------------

    def _part(self, chunk: int) -> str:
        return f"{self.root}/{TABLE}/chunk-{chunk:06d}.parquet"

    def done_chunks(self) -> set[int]:
        """Chunks whose table file exists: everything of them is stored."""
        if not self.fs.exists(f"{self.root}/{TABLE}"):
            return set()
        names = (
            path.rsplit("/", 1)[-1] for path in self.fs.ls(f"{self.root}/{TABLE}", detail=False)
        )
        return {
            int(name[len("chunk-") : -len(".parquet")])
            for name in names
            if name.startswith("chunk-") and name.endswith(".parquet")
        }

    def done_images(self) -> int:
        """Images stored so far (the rows of the committed chunks)."""
        import pyarrow.parquet as pq

        total = 0
        for chunk in self.done_chunks():
            with self.fs.open(self._part(chunk), "rb") as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        return total

    def write_rows(self, chunk: int, rows: Any) -> None:
        """Commit one chunk: its table rows (a pandas DataFrame), written atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=True), sink)
        self._write_atomic(self._part(chunk), sink.getvalue().to_pybytes())

    def read_table(self, columns: tuple[Column, ...]) -> Any:
        """The whole table (a pandas DataFrame indexed by image), sorted by image."""
        import pandas as pd
        import pyarrow.parquet as pq

        parts = [self._part(chunk) for chunk in sorted(self.done_chunks())]
        if not parts:
            return empty_table(columns)
        tables = []
        for part in parts:
            with self.fs.open(part, "rb") as handle:
                tables.append(pq.read_table(handle).to_pandas())
        return pd.concat(tables).sort_index()


def empty_table(columns: tuple[Column, ...]) -> Any:
    """A table with no rows and the given columns, with their dtypes."""
    import pandas as pd

    table = pd.DataFrame(
        {column.name: pd.Series([], dtype=column.dtype) for column in columns},
        index=pd.Index([], dtype="int64", name="image"),
    )
    return table
