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
        thumbnail_maps          (N, 2, h, w) float32, the map's positive and negative
                                channel means, reduced

New arrays' chunks are compressed with Blosc (LZ4, byte shuffle); a store
created before keeps Zarr's default (Zstandard), since each array's metadata
names its codec.

A store of another method than integrated gradients (``Layout.explainer``)
holds its ``attributions`` at the method's shape (Grad-CAM: (N, H, W, 1)) and
none of what only integrated gradients produces (``IG_ONLY``: gradients and
the path's arrays); the manifest's ``"arrays"`` lists what a store holds.

Images are grouped in chunks of ``chunk_size`` consecutive indices; one
writer computes and writes a whole chunk: its arrays first, then its Parquet
file, which is written under a temporary name and renamed, so a chunk's table
file exists only when everything of the chunk is stored. Resuming skips the
chunks that have one, unless an array's chunk file of theirs has gone
(``lost_chunks``): those are computed again. An interruption loses at most
the chunks in flight.

Trust: the manifest records what defines the computation (see
``explain.py``); every chunk's table rows carry ``_checksums``, a CRC-32 of
each array row as written, and every read of a row is checked against it,
so that a missing or changed chunk file raises (naming the store, the row
and the file) instead of reading back as zeros. Writes check the arrays'
shapes before and after (Zarr crops out-of-range writes without a word).
One writer at a time: ``Store.lock`` holds an exclusive lock (``filelock``,
released by the system when its process dies) on a local store.

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

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import time
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frameworks import install_command
from ..render import block_mean, channel_maps, display_image
from .columns import Column
from .identity import fingerprint

FORMAT = "ig-widget dataset"
VERSION = 2
MANIFEST = "ig-dataset.json"
TABLE = "table"
ARRAYS = "arrays.zarr"
# The writer's lock and who holds it (files inside the store, not part of its data).
LOCK = ".ig-dataset.lock"
HOLDER = ".ig-dataset.holder"
# The table's column of per-row checksums (not shown in DatasetResult.table).
CHECKSUMS = "_checksums"
# Bounds on what a manifest may claim, checked before anything is allocated.
MAX_IMAGE_VALUES = 2**31
MAX_CLASSES = 10**7
MAX_PATH_POINTS = 10**5
MAX_RUNS = 10**4
MAX_CHUNK_SIZE = 4096
MAPS = ("attributions", "gradients")
IG = "integrated_gradients"
# What only integrated gradients stores: the plain gradients and the path's arrays.
IG_ONLY = ("gradients", "path_alphas", "path_scores", "baseline_scores", "steps")
MAPS_DTYPES = ("float32", "float16")
# Thumbnails are the image reduced by an integer factor to at most this side.
THUMBNAIL_SIDE = 96
# An array of unknown length grows by doubling, from this many chunks.
INITIAL_CHUNKS = 4


def timestamp() -> str:
    """The local time as the store's metadata writes it (ISO 8601 with the offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def thumbnail_factor(height: int, width: int) -> int:
    """Integer reduction that brings the longer side to at most ``THUMBNAIL_SIDE``.

    Examples
    --------
    >>> thumbnail_factor(96, 96), thumbnail_factor(299, 299)
    (1, 4)
    """
    return max(1, math.ceil(max(height, width) / THUMBNAIL_SIDE))


def thumbnail(image: np.ndarray, attributions: np.ndarray, factor: int) -> tuple[np.ndarray, ...]:
    """The gallery's picture of one image: reduced display RGB and the map's channel maps.

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
    """The filesystem and the root within it of a store's path or URI."""
    try:
        import fsspec
    except ImportError as exc:
        raise missing_dependency(exc) from exc
    if path.startswith("file:"):
        # fsspec keeps a file: URI's %-escapes (Path.as_uri() writes a space as %20) and
        # reads its host as a folder: decoded here as RFC 8089 says.
        parts = urllib.parse.urlsplit(path)
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"store: '{path}': a file: URI names a folder of this machine (file:///path "
                f"or file://localhost/path), not of the host '{parts.netloc}'"
            )
        path = urllib.request.url2pathname(parts.path)
    fs, root = fsspec.core.url_to_fs(path)
    if "file" in _protocols(fs):
        # The folder the system reads: "new/.." names the folder above once "new" exists,
        # so a run that made "new" would otherwise write (or clean up) where it did not look.
        root = os.path.realpath(root)
    return fs, root


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
    # The method of ``ig_widget.explainers.REGISTRY`` whose maps the store holds.
    explainer: str = IG
    # Channels of a map (Grad-CAM's: 1); None: the image's.
    map_channels: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: Any) -> Layout:
        """The layout a manifest records, every value checked (raises ValueError)."""

        def count(name: str, high: int) -> int:
            value = values.get(name) if isinstance(values, dict) else None
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ValueError(f"layout.{name}: expected an integer 1..{high}, got {value!r}")
            return value

        if not isinstance(values, dict):
            raise ValueError(f"layout: expected an object, got {type(values).__name__}")
        shape = values.get("image_shape")
        if (
            not isinstance(shape, list)
            or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
            or math.prod(shape) > MAX_IMAGE_VALUES
        ):
            raise ValueError(f"layout.image_shape: expected 3 positive integers, got {shape!r}")
        columns = values.get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ValueError(f"layout.columns: expected a list of names, got {columns!r}")
        if values.get("maps_dtype") not in MAPS_DTYPES:
            raise ValueError(
                f"layout.maps_dtype: expected one of {MAPS_DTYPES}, "
                f"got {values.get('maps_dtype')!r}"
            )
        from ..explainers import REGISTRY

        explainer = values.get("explainer", IG)
        if explainer not in REGISTRY:
            raise ValueError(
                f"layout.explainer: expected one of {tuple(REGISTRY)}, got {explainer!r}"
            )
        channels = values.get("map_channels")
        if channels is not None and (
            isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels
        ):
            raise ValueError(f"layout.map_channels: expected an integer >= 1, got {channels!r}")
        return cls(
            explainer=explainer,
            map_channels=channels,
            image_shape=(shape[0], shape[1], shape[2]),
            classes=count("classes", MAX_CLASSES),
            runs=count("runs", MAX_RUNS),
            path_points=count("path_points", MAX_PATH_POINTS),
            chunk_size=count("chunk_size", MAX_CHUNK_SIZE),
            maps_dtype=values["maps_dtype"],
            columns=tuple(columns),
        )

    @property
    def thumbnail_shape(self) -> tuple[int, int]:
        height, width = self.image_shape[:2]
        factor = thumbnail_factor(height, width)
        return math.ceil(height / factor), math.ceil(width / factor)

    @property
    def maps(self) -> tuple[str, ...]:
        """The map arrays stored: integrated gradients' attributions and gradients, another
        method's attributions only."""
        return MAPS if self.explainer == IG else MAPS[:1]

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """One map's shape: the image's, or its height and width with ``map_channels``."""
        height, width, channels = self.image_shape
        return height, width, channels if self.map_channels is None else self.map_channels

    def array_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Per-image shape and dtype of every array the store holds."""
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
        for name in self.maps:
            specs[name] = (self.map_shape, self.maps_dtype)
            if self.maps_dtype == "float16":
                specs[f"{name}_scale"] = ((), "float32")
        if self.explainer != IG:
            for name in IG_ONLY:
                specs.pop(name, None)
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


def checksum(row: np.ndarray) -> str:
    """CRC-32 of one array row's bytes, as the table records it.

    Examples
    --------
    >>> checksum(np.zeros(2, np.float32))
    '6522df69'
    """
    return f"{zlib.crc32(np.ascontiguousarray(row).tobytes()):08x}"


def parse_checksums(text: Any) -> dict[str, str]:
    """``{array name: checksum}`` from a row's ``_checksums`` value ("name:crc;...")."""
    if not isinstance(text, str):
        return {}
    return dict(part.split(":", 1) for part in text.split(";") if ":" in part)


_PART = re.compile(r"chunk-(\d{6,})\.parquet")


class Store:
    """One dataset store at ``path`` (see the module docstring for the layout)."""

    def __init__(self, path: str) -> None:
        self.path = str(path).rstrip("/") or str(path)
        self.fs, self.root = _filesystem(self.path)
        self._group: Any = None

    @property
    def local(self) -> bool:
        """Whether the store is a folder on this machine (then it is locked while written)."""
        return "file" in _protocols(self.fs)

    def _error(self, file: str, what: str) -> ValueError:
        return ValueError(f"store: '{self.path}': the file '{file}' {what}")

    def _corrupt(self, file: str, exc: BaseException) -> ValueError:
        return self._error(file, f"is unreadable or corrupt ({type(exc).__name__}: {exc})")

    # -- the manifest --------------------------------------------------------

    def exists(self) -> bool:
        return self.fs.exists(f"{self.root}/{MANIFEST}")

    def is_empty(self) -> bool:
        """Whether nothing but (perhaps) the writer's lock is at the store's path."""
        if not self.fs.exists(self.root):
            return True
        names = {
            path.rstrip("/").rsplit("/", 1)[-1] for path in self.fs.ls(self.root, detail=False)
        }
        return not names - {LOCK, HOLDER}

    def manifest(self) -> dict[str, Any]:
        """The manifest, every field the store's reading depends on checked."""
        try:
            with self.fs.open(f"{self.root}/{MANIFEST}", "r", encoding="utf-8") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
            raise self._corrupt(MANIFEST, exc) from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ValueError(f"store: '{self.path}' is not an ig-widget dataset store")
        version = manifest.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise self._error(MANIFEST, f"has no format version (got {version!r})")
        if version > VERSION:
            raise ValueError(
                f"store: '{self.path}' was written by a newer ig-widget "
                f"(format version {manifest['version']}); upgrade ig-widget to read it"
            )
        if not isinstance(manifest.get("options"), dict):
            raise self._error(MANIFEST, "has no 'options' object")
        for name in ("count", "length"):
            value = manifest.get(name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise self._error(MANIFEST, f"has {name}={value!r}; expected an integer >= 0")
        if manifest.get("layout") is not None:
            try:
                Layout.from_json(manifest["layout"])
            except ValueError as exc:
                raise self._error(MANIFEST, f"has an invalid layout: {exc}") from exc
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

    def refuse_links(self) -> None:
        """Raise if anything inside a local store is a symbolic link (a write could leave it)."""
        if not self.local or not os.path.isdir(self.root):
            return
        for folder, folders, files in os.walk(self.root):
            for name in folders + files:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    raise ValueError(
                        f"store: '{self.path}' holds a symbolic link, "
                        f"'{os.path.relpath(path, self.root)}'; a store's files must be inside it "
                        "(copy the store without links, or give a new store)"
                    )

    # -- the writer's lock -----------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's writer lock; another writer is refused, naming the holder.

        The lock is the system's (``filelock``: ``fcntl.flock``), released when
        its process ends, however it ends: a killed run leaves no stale lock.
        Object-store URIs have no such lock; one writer at a time is then the
        user's to ensure.
        """
        if not self.local:
            yield
            return
        try:
            from filelock import FileLock, Timeout
        except ImportError as exc:
            raise missing_dependency(exc) from exc
        self.fs.makedirs(self.root, exist_ok=True)
        lock = FileLock(os.path.join(self.root, LOCK), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise ValueError(
                f"store: '{self.path}' is being written by another run ({self._holder()}); "
                "wait for it to end, or give another store"
            ) from None
        holder = os.path.join(self.root, HOLDER)
        try:
            with open(holder, "w", encoding="utf-8") as handle:
                json.dump(
                    {
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "since": timestamp(),
                    },
                    handle,
                )
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(holder)
            lock.release()

    def _holder(self) -> str:
        try:
            with open(os.path.join(self.root, HOLDER), encoding="utf-8") as handle:
                holder = json.load(handle)
            return f"process {holder['pid']} on {holder['host']}, since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder not yet recorded"

    # -- arrays ----------------------------------------------------------------

    @property
    def _arrays_location(self) -> str:
        # A local store by its folder: Zarr opens a file:// URI with fsspec, which does
        # not create the folders its files go in.
        return f"{self.root if self.local else self.path}/{ARRAYS}"

    def _arrays(self) -> Any:
        if self._group is None:
            try:
                import zarr
            except ImportError as exc:
                raise missing_dependency(exc) from exc
            try:
                self._group = zarr.open_group(self._arrays_location, mode="a")
            except Exception as exc:
                raise self._corrupt(f"{ARRAYS}/zarr.json", exc) from exc
        return self._group

    def _array(self, name: str) -> Any:
        """One array, its metadata read afresh from the store."""
        group = self._arrays()
        try:
            return group[name]
        except KeyError as exc:
            raise self._error(f"{ARRAYS}/{name}/zarr.json", "is missing") from exc
        except Exception as exc:
            raise self._corrupt(f"{ARRAYS}/{name}/zarr.json", exc) from exc

    def create_arrays(self, layout: Layout, length: int | None) -> None:
        """Create every array, ``length`` images long (or a few chunks, grown later)."""
        self.fs.makedirs(f"{self.root}/{TABLE}", exist_ok=True)
        rows = length if length is not None else INITIAL_CHUNKS * layout.chunk_size
        group = self._arrays()
        from zarr.codecs import BloscCodec  # zarr is there: _arrays opened the group

        for name, (shape, dtype) in layout.array_specs().items():
            group.create_array(
                name,
                shape=(rows, *shape),
                # One Zarr chunk per store chunk: written whole by one writer.
                # (Sharding single images wrote 10 to 25 times slower.)
                chunks=(layout.chunk_size, *shape),
                dtype=dtype,
                fill_value=0,
                # Zarr's default, Zstandard at level 3, took 45 ms of CPU per chunk of
                # 32 demo images (2 % of explain_dataset's CPU time); LZ4 with byte
                # shuffle takes 9 ms for 5 % more bytes (the maps are high-entropy
                # floats: 0.95 of their size either way). A store keeps the codec it was
                # created with: readers decode what each array's metadata names.
                compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
                overwrite=True,
            )

    def check_arrays(self, layout: Layout, max_rows: int) -> None:
        """Check the arrays against ``layout`` before any resize; repair an interrupted growth.

        A resize that stopped half way leaves some arrays longer than others:
        they are all brought to the longest (never beyond ``max_rows``, what
        the run could have reserved).
        """
        rows = {}
        for name, (shape, dtype) in layout.array_specs().items():
            array = self._array(name)
            length = array.shape[0] if array.shape else -1
            if (
                tuple(array.shape[1:]) != shape
                or str(array.dtype) != dtype
                or tuple(array.chunks) != (layout.chunk_size, *shape)
                or not 0 <= length <= max_rows
            ):
                raise self._error(
                    f"{ARRAYS}/{name}/zarr.json",
                    f"describes {array.dtype} {tuple(array.shape)} in chunks of "
                    f"{tuple(array.chunks)}; the manifest's layout needs {dtype} (rows, "
                    f"*{shape}) with at most {max_rows} rows, in chunks of "
                    f"{(layout.chunk_size, *shape)}",
                )
            rows[name] = length
        self.resize(layout, max(rows.values()), only_if_shorter=True)

    def resize(self, layout: Layout, rows: int, only_if_shorter: bool = False) -> None:
        """Bring every array to ``rows`` rows, each checked afterwards."""
        for name, (shape, _) in layout.array_specs().items():
            length = self._array(name).shape[0]
            if length != rows and not (only_if_shorter and length > rows):
                self._array(name).resize((rows, *shape))
            if self._array(name).shape[0] < rows:
                raise self._error(f"{ARRAYS}/{name}/zarr.json", f"did not grow to {rows} rows")

    def has_baseline(self) -> bool:
        """Whether the store keeps an array baseline (its metadata file is there)."""
        return bool(self.fs.exists(f"{self.root}/{ARRAYS}/baseline/zarr.json"))

    def write_baseline(self, baseline: np.ndarray) -> None:
        """Keep an array baseline, so that a live view can use it again."""
        folder = f"{self.root}/{ARRAYS}/baseline"
        if self.fs.exists(folder):  # written anew, even over a corrupt metadata file
            self.fs.rm(folder, recursive=True)
        self._arrays().create_array("baseline", shape=baseline.shape, dtype="float32")[...] = (
            baseline
        )

    def baseline_problem(self, options: dict[str, Any]) -> str | None:
        """What is wrong with the stored array baseline of integrated gradients, against
        the fingerprint its recorded ``options`` hold; None when it is right or named."""
        recorded = options.get("baseline")
        if options.get("explainer", IG) != IG or not isinstance(recorded, dict):
            return None
        if not self.has_baseline():
            return f"the file '{ARRAYS}/baseline/zarr.json' is missing"
        try:
            stored = self.read("baseline", slice(None))
        except Exception as exc:
            return (
                f"the array baseline '{ARRAYS}/baseline' is unreadable or corrupt "
                f"({type(exc).__name__}: {exc})"
            )
        if fingerprint(stored) != recorded:
            # Zarr reads a missing chunk file as zeros.
            return (
                f"the array baseline '{ARRAYS}/baseline' does not match the one the store "
                f"recorded (sha256 {recorded.get('sha256')}, shape {recorded.get('array')})"
            )
        return None

    def rows_needed(self, layout: Layout, stop: int) -> int | None:
        """The rows to grow the arrays to (by doubling) so that rows below ``stop`` exist.

        None when they do. Only the process that feeds the work grows the
        arrays, before handing out a chunk that needs the rows; Zarr (3.1.3
        on) replaces metadata atomically, so a writer reading it meanwhile sees
        the old or the new length, never a half-written file. An interruption
        between two arrays is repaired on resume (``check_arrays``).
        """
        rows = min(self._array(name).shape[0] for name in layout.array_specs())
        if stop <= rows:
            return None
        rows = max(stop, 2 * rows)
        return math.ceil(rows / layout.chunk_size) * layout.chunk_size

    def trim(self, layout: Layout, length: int) -> None:
        """Cut the arrays to ``length`` images once the count is known (rows past every chunk)."""
        self.resize(layout, length)

    def _fits(self, array: Any, name: str, start: int, count: int, shape: tuple[int, ...]) -> None:
        if tuple(array.shape[1:]) != shape or array.shape[0] < start + count:
            raise self._error(
                f"{ARRAYS}/{name}/zarr.json",
                f"describes shape {tuple(array.shape)}: rows {start}..{start + count - 1} of "
                f"shape {shape} do not fit (was the store changed during this run?)",
            )

    def write_arrays(self, layout: Layout, start: int, values: dict[str, np.ndarray]) -> list[str]:
        """Write rows ``start .. start + len`` of every array (one chunk); their checksums.

        The arrays' shapes are checked before and after each write: Zarr drops
        or crops rows outside an array without an error. Returns one
        ``_checksums`` value per row.
        """
        specs = layout.array_specs()
        if set(values) != set(specs):
            raise ValueError(f"store: expected rows of {sorted(specs)}, got {sorted(values)}")
        count = len(values["inputs"])
        rows_of: dict[str, np.ndarray] = {}
        for name in sorted(specs):
            shape, dtype = specs[name]
            rows = np.ascontiguousarray(values[name], dtype=dtype)
            if rows.shape != (count, *shape):
                raise ValueError(
                    f"store: rows of '{name}' have shape {rows.shape}; the store's layout "
                    f"needs {(count, *shape)}"
                )
            rows_of[name] = rows
        # One round trip to Zarr's event loop for the chunk's arrays, not three
        # per array: 26 ms of CPU per chunk of 32 small images against 39 ms
        # (benchmarks/README.md, "Dataset").
        from zarr.core.sync import sync

        sync(self._write_chunk(start, rows_of, specs))
        sums: list[list[str]] = [[] for _ in range(count)]
        for name, rows in rows_of.items():
            for row, value in zip(sums, rows, strict=True):
                row.append(f"{name}:{checksum(value)}")
        return [";".join(row) for row in sums]

    async def _write_chunk(
        self,
        start: int,
        rows_of: dict[str, np.ndarray],
        specs: dict[str, tuple[tuple[int, ...], str]],
    ) -> None:
        import zarr.api.asynchronous as zarr_async

        try:
            group = await zarr_async.open_group(store=self._arrays_location, mode="r+")
        except Exception as exc:
            raise self._corrupt(f"{ARRAYS}/zarr.json", exc) from exc

        async def checked(name: str, count: int) -> Any:
            try:
                array = await group.getitem(name)
            except KeyError as exc:
                raise self._error(f"{ARRAYS}/{name}/zarr.json", "is missing") from exc
            except Exception as exc:
                raise self._corrupt(f"{ARRAYS}/{name}/zarr.json", exc) from exc
            self._fits(array, name, start, count, specs[name][0])
            return array

        async def all_of(steps: list[Any]) -> list[Any]:
            # Every step runs to its end; the first failure in name order is raised,
            # so the error names the same array whichever finished first.
            results = await asyncio.gather(*steps, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return results

        names = list(rows_of)
        count = len(rows_of[names[0]])
        arrays = await all_of([checked(name, count) for name in names])
        await all_of(
            [
                array.setitem(slice(start, start + count), rows_of[name])
                for array, name in zip(arrays, names, strict=True)
            ]
        )
        # Read afresh: an array cut while the rows were written drops them silently.
        await all_of([checked(name, count) for name in names])

    def chunk_file(self, layout: Layout, name: str, row: int) -> str:
        """The Zarr chunk file that holds ``row`` of array ``name``, relative to the store."""
        shape, _ = layout.array_specs()[name]
        return f"{ARRAYS}/{name}/c/{row // layout.chunk_size}" + "/0" * len(shape)

    def _bad_row(self, layout: Layout, name: str, row: int) -> str:
        file = self.chunk_file(layout, name, row)
        path = f"{self.root}/{file}"
        if self.fs.isdir(path):
            what = "is a folder, not a file"
        elif not self.fs.exists(path):
            what = "is missing"
        else:
            what = "does not match the checksum written with it"
        return f"row {row} of '{name}': its chunk file '{file}' {what}"

    def lost_chunks(self, layout: Layout, stored: dict[int, int]) -> dict[int, list[str]]:
        """Committed chunks whose array chunk files have gone: ``{chunk: [files]}``.

        Zarr writes no file for a chunk all of its fill value (0), so a missing
        file is a loss only where the rows' checksums are not those of zeros.
        The files present are not read (``verify`` reads every row); a store
        without checksums is not checked.

        Parameters
        ----------
        layout : Layout
        stored : dict of int to int
            Rows stored per committed chunk (``stored_rows``).
        """
        specs = layout.array_specs()
        present = {file for name in specs for file in self._files(f"{ARRAYS}/{name}/c")}
        zeros = {name: checksum(np.zeros(shape, dtype)) for name, (shape, dtype) in specs.items()}
        lost: dict[int, list[str]] = {}
        for chunk, rows in sorted(stored.items()):
            start = chunk * layout.chunk_size
            files_of = {name: self.chunk_file(layout, name, start) for name in specs}
            gone = [(name, file) for name, file in files_of.items() if file not in present]
            for _, file in gone:
                if self.fs.isdir(f"{self.root}/{file}"):
                    raise self._error(file, "is a folder where a chunk file belongs")
            if not gone:
                continue
            sums = self._part_checksums(chunk)
            if sums is None:
                continue
            files = [
                file
                for name, file in gone
                if any(
                    sums.get(row, {}).get(name) != zeros[name] for row in range(start, start + rows)
                )
            ]
            if files:
                lost[chunk] = files
        return lost

    def _files(self, folder: str) -> set[str]:
        """Every file under ``folder`` (relative to the store), relative to the store."""
        if self.local:
            # os.walk lists a local folder 2.3 times as fast as fsspec's find (24,000 files).
            start = len(self.root) + 1
            return {
                f"{parent[start:]}/{name}".replace(os.sep, "/")
                for parent, _, names in os.walk(os.path.join(self.root, folder))
                for name in names
            }
        top = f"{self.root}/{folder}"
        if not self.fs.exists(top):
            return set()
        return {path.rstrip("/")[len(self.root) + 1 :] for path in self.fs.find(top)}

    def read_row(
        self, layout: Layout | None, name: str, row: int, checksums: dict[str, str] | None
    ) -> np.ndarray:
        """One row of an array, checked against its checksum (None: a store without them)."""
        file = f"{ARRAYS}/{name}" if layout is None else self.chunk_file(layout, name, row)
        try:
            value = np.asarray(self._array(name)[row])
        except ValueError:
            raise
        except Exception as exc:
            raise self._corrupt(file, exc) from exc
        if layout is not None:
            self.check_row(layout, name, row, value, checksums)
        return value

    def check_row(
        self,
        layout: Layout,
        name: str,
        row: int,
        value: np.ndarray,
        checksums: dict[str, str] | None,
    ) -> None:
        """Raise unless ``value`` (row ``row`` of ``name``) has the checksum written with it."""
        if checksums is not None and checksum(value) != checksums.get(name):
            raise ValueError(
                f"store: '{self.path}': {self._bad_row(layout, name, row)}; the store is "
                "damaged (igw.open_dataset(path, verify=True) lists every bad row)"
            )

    def read_rows(
        self,
        layout: Layout,
        name: str,
        rows: list[int],
        checksums: dict[int, dict[str, str]] | None,
    ) -> np.ndarray:
        """Rows of one array read in one slice (rows of one chunk), each checked as ``read_row``."""
        start = rows[0]
        try:
            values = np.asarray(self._array(name)[start : rows[-1] + 1])
        except ValueError:
            raise
        except Exception as exc:
            raise self._corrupt(self.chunk_file(layout, name, start), exc) from exc
        picked = values[[row - start for row in rows]]
        for row, value in zip(rows, picked, strict=True):
            self.check_row(
                layout, name, row, value, None if checksums is None else checksums.get(row, {})
            )
        return picked

    def read(self, name: str, index: int | slice) -> np.ndarray:
        """Rows of one array, unchecked (an array baseline; tests)."""
        return np.asarray(self._array(name)[index])

    def verify(self, layout: Layout, sums: dict[int, dict[str, str]] | None) -> list[str]:
        """Every bad row: each array row read and checked against its checksum (``sums``)."""
        self.refuse_links()
        if sums is None:
            return ["the table has no checksums (written before store format 2)"]
        problems = []
        size = layout.chunk_size
        chunks: dict[int, list[int]] = {}
        for row in sorted(sums):
            chunks.setdefault(row // size, []).append(row)
        for name in layout.array_specs():
            array = self._array(name)
            for number, rows in chunks.items():
                start = number * size
                try:
                    values = np.asarray(array[start : rows[-1] + 1])
                except Exception as exc:
                    file = self.chunk_file(layout, name, start)
                    problems.append(f"rows {rows[0]}..{rows[-1]} of '{name}': '{file}' is "
                                    f"unreadable ({type(exc).__name__}: {exc})")  # fmt: skip
                    continue
                for row in rows:
                    if row - start >= len(values):
                        problems.append(
                            f"row {row} of '{name}': beyond the array's {array.shape[0]} rows"
                        )
                    elif checksum(values[row - start]) != sums[row].get(name):
                        problems.append(self._bad_row(layout, name, row))
        return problems

    # -- the table ---------------------------------------------------------------

    def _part(self, chunk: int) -> str:
        return f"{self.root}/{TABLE}/chunk-{chunk:06d}.parquet"

    def _part_name(self, chunk: int) -> str:
        return f"{TABLE}/chunk-{chunk:06d}.parquet"

    def uncommit(self, chunk: int) -> None:
        """Remove a chunk's table file, if it has one: the chunk is no longer stored."""
        if self.fs.exists(self._part(chunk)):
            self.fs.rm_file(self._part(chunk))

    def done_chunks(self) -> set[int]:
        """Chunks whose table file exists: everything of them is stored."""
        if not self.fs.exists(f"{self.root}/{TABLE}"):
            return set()
        done = set()
        for path in self.fs.ls(f"{self.root}/{TABLE}", detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.endswith(".partial"):  # a write that did not finish
                continue
            match = _PART.fullmatch(name)
            if match is None:
                raise self._error(f"{TABLE}/{name}", "is not a chunk's table file")
            done.add(int(match.group(1)))
        return done

    def stored_rows(self) -> dict[int, int]:
        """Rows stored per committed chunk (from the Parquet files' metadata)."""
        import pyarrow.parquet as pq

        rows = {}
        for chunk in sorted(self.done_chunks()):
            try:
                with self.fs.open(self._part(chunk), "rb") as handle:
                    rows[chunk] = pq.ParquetFile(handle).metadata.num_rows
            except Exception as exc:
                raise self._corrupt(self._part_name(chunk), exc) from exc
        return rows

    def write_rows(self, chunk: int, rows: Any) -> None:
        """Commit one chunk: its table rows (a pandas DataFrame), written atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pandas(rows, preserve_index=True), sink)
        self._write_atomic(self._part(chunk), sink.getvalue().to_pybytes())

    def read_table(self, columns: tuple[Column, ...], chunk_size: int | None = None) -> Any:
        """The whole table (a pandas DataFrame indexed by image), sorted by image.

        With ``chunk_size``, each file's rows are checked to be its chunk's images.
        """
        import pandas as pd

        tables = [self.read_part(chunk, chunk_size) for chunk in sorted(self.done_chunks())]
        if not tables:
            return empty_table(columns)
        return pd.concat(tables).sort_index()

    def read_part(self, chunk: int, chunk_size: int | None) -> Any:
        """One chunk's table rows; with ``chunk_size``, checked to be its chunk's images."""
        import pandas as pd
        import pyarrow.parquet as pq

        name = self._part_name(chunk)
        try:
            with self.fs.open(self._part(chunk), "rb") as handle:
                table = pq.read_table(handle).to_pandas()
        except Exception as exc:
            raise self._corrupt(name, exc) from exc
        index = table.index
        if chunk_size is not None and (
            index.name != "image"
            or not pd.api.types.is_integer_dtype(index)
            or not index.is_unique
            or (
                len(index)
                and not chunk * chunk_size <= index.min() <= index.max() < (chunk + 1) * chunk_size
            )
        ):
            raise self._error(name, f"does not hold the rows of chunk {chunk}")
        return table

    def _part_checksums(self, chunk: int) -> dict[int, dict[str, str]] | None:
        """Each row's checksums in one chunk's table file (None: written without them)."""
        import pyarrow.parquet as pq

        try:
            # Two columns read by Arrow: a third of the time of the whole file by pandas.
            with self.fs.open(self._part(chunk), "rb") as handle:
                file = pq.ParquetFile(handle)
                if CHECKSUMS not in file.schema_arrow.names:
                    return None
                table = file.read(columns=["image", CHECKSUMS])
        except Exception as exc:
            raise self._corrupt(self._part_name(chunk), exc) from exc
        rows = table.column("image").to_pylist()
        texts = table.column(CHECKSUMS).to_pylist()
        return {int(row): parse_checksums(text) for row, text in zip(rows, texts, strict=True)}


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def empty_table(columns: tuple[Column, ...]) -> Any:
    """A table with no rows and the given columns, with their dtypes."""
    import pandas as pd

    table = pd.DataFrame(
        {column.name: pd.Series([], dtype=column.dtype) for column in columns},
        index=pd.Index([], dtype="int64", name="image"),
    )
    return table
