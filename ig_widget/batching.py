"""How many points go through the model in one call: one rule for every caller.

The automatic batch is bounded twice:

- by **memory** (``batch_size_for``): a quarter of the free memory over the
  measured cost of one point, at most 256 points;
- by **measured benefit** (``BatchTuner``): the batch doubles from 16 points
  up to the memory limit, and is then fixed at the smallest size within 3 %
  of the best per point; it is searched again when the time per point of
  the fixed size rises by half. Each size is judged by the fastest of 3
  calls, so that calls slowed by other work on the machine do not decide,
  and every size is measured before the choice: a size's three calls still
  vary by 10 % and more when the machine is busy for a while, and stopping at
  the first size that gained less than 5 % left the demo model at 16 points
  (23 % slower per point than at 128) in 1 of 5 fresh processes
  (benchmarks/README.md, "Dataset"). On a CPU the time is this process's CPU time
  (``time.process_time``, every thread's), which other processes' load
  hardly moves, where the wall clock of the same calls doubles when another
  process takes a core; on a GPU it is the wall clock. Calls that trace or
  compile are not measured. Bigger batches
  past that point only cost memory (MobileNetV2 at 224x224 on a 2-core CPU
  is no faster at 256 points than at 64 and holds 4.5 GB more).

Automatic batches are whole blocks of ``BLOCK`` points, and the points left
over at the end (fewer than a block) go with the last batch's whole blocks
(a batch of their own only when there are fewer than a block in all, or the
memory limit is under two blocks), so every point lands in the same kind of
batch and place in it whatever size the tuner picks: ``ig_widget.points``
sums each block separately, and the model computes a point the same way in
any batch of whole blocks, at the end of any batch of whole blocks and a
part, and in any batch smaller than a block. (TensorFlow's oneDNN kernels on
the CPU work on blocks of 16 images from the start of the batch: a point's
gradient in a batch of 8 or 24 differs in the last bits from the same
point's in a batch of 16, 32 or 64, measured on the demo model and
MobileNetV2; the last 4 of 52 points are the same in a batch of 52 and of
20, and differ alone, measured on the demo model.) Results are then the same
bit for bit whatever the tuner chose. One image's 52 integrated-gradients
points are then one call of 52 where the tuner says 64, not 48 and 4: a
second call costs its fixed overhead again.

Both are kept per backend, image shape and kind of call (gradients or forward
passes only), so every later computation on the same model and shape starts
from what was learnt, and a compiled backend sees the same few batch shapes.
Backends that compile one program per shape (``static_shapes``, JAX) get batch
shapes from a short list of buckets (``bucket``), the last batch padded.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import GradientBackend

# Share of free memory the engine may use, the fixed budget where free memory
# is unknown (GPUs under TensorFlow), and the cap beyond which larger batches
# have never paid off.
MEMORY_SHARE = 0.25
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
MAX_BATCH = 256
# Automatic batches are whole blocks of this many points (see the module docstring).
BLOCK = 16
# The tuner's first batch; the measured calls per size (the fastest one counts,
# so that calls slowed by other work on the machine do not decide); the sizes
# this close to the best per point, of which the smallest is chosen, since
# bigger batches past the best only cost memory (on the demo model at 96x96,
# CPU time per point is 1.23, 1.05, 1.02, 1.00 and 1.01 times the best at 16 to
# 256 points); and the rise in time per point of the fixed size that starts the
# search again.
FIRST_BATCH = BLOCK
SAMPLES_PER_SIZE = 3
NEAR_BEST = 1.03
REVISE_AFTER = 1.5
# The smallest batch shape a static-shape backend compiles (padding a tiny
# last batch up to it costs less than another program).
SMALLEST_BUCKET = 8


def batch_size_for(backend: GradientBackend, model: Any, image: np.ndarray) -> int:
    """Largest batch the memory rule allows for ``model`` at ``image``'s shape.

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
      ``16 * pixels`` covers the point, its direction, its gradient and the sums.

    A quarter leaves room for the model, the framework and other programs; an
    out-of-memory error on a GPU still halves the batch (on the CPU the
    operating system may kill the process instead, hence the margins). With
    TensorFlow and 24 GiB free, a 1024x1024 image through Xception gets
    batches of 4 (about 1 GiB per point measured), and a 299x299 image
    batches of 49. ``BatchTuner`` then stops below this bound where larger
    batches are not faster.

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
    per_point = backend.activation_bytes * activation_values(model, image) + 16 * image.size
    return int(min(MAX_BATCH, max(1, budget // per_point)))


def activation_values(model: Any, image: np.ndarray) -> int:
    """Float values one image produces through the model's layers (see ``batch_size_for``).

    Examples
    --------
    >>> activation_values(lambda x: x, np.zeros((4, 4, 3)))  # no layers: 64 per input value
    3072
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
        # An unknown (None) spatial size is taken as the image's longer side:
        # an overestimate for downsampled layers, which only costs speed.
        total += math.prod(d if d is not None else max(image.shape[:2]) for d in shape[1:])
    return max(total, image.size)


def whole_blocks(size: int) -> int:
    """``size`` rounded down to whole blocks of ``BLOCK`` points; smaller sizes stay.

    Examples
    --------
    >>> [whole_blocks(n) for n in (5, 16, 49, 256)]
    [5, 16, 48, 256]
    """
    return size - size % BLOCK if size >= BLOCK else size


def bucket(size: int, limit: int) -> int:
    """The batch shape a static-shape backend compiles for ``size`` points under ``limit``:
    the next power of two (at least 8), or ``limit`` itself.

    Examples
    --------
    >>> [bucket(n, 52) for n in (1, 9, 33, 52)]
    [8, 16, 52, 52]
    """
    return min(limit, max(SMALLEST_BUCKET, 1 << (size - 1).bit_length()))


def bucket_below(size: int, limit: int) -> int:
    """The largest bucket (see ``bucket``) that holds at most ``size`` points.

    Examples
    --------
    >>> [bucket_below(n, 52) for n in (1, 9, 33, 60)]
    [1, 8, 32, 52]
    """
    if size >= limit:
        return limit
    return 1 << (size.bit_length() - 1)


class BatchTuner:
    """The automatic batch for one backend, image shape and kind of call.

    ``size`` is the batch to use now. Report every call with ``record``; the
    tuner measures each size's time per point (the fastest of
    ``SAMPLES_PER_SIZE`` calls), doubles ``size`` up to ``limit``, then
    fixes the smallest size within ``NEAR_BEST`` of the best (also when an
    out-of-memory error lowers the limit during the search). A fixed size
    keeps being measured: when its time per point rises past
    ``REVISE_AFTER`` times what it was when chosen (other work on the
    machine, memory pressure), the search starts again. The first call
    (which traces a compiled program) and, for ``static_shapes`` backends,
    the first call of every size (a new compilation) are not measured.
    Thread-safe.

    Examples
    --------
    >>> tuner = BatchTuner(limit=64, static_shapes=False)
    >>> calls = [(16, 9.0)] + [(16, 1.6)] * 3 + [(32, 3.15)] * 3 + [(64, 6.3)] * 3
    >>> for size, seconds in calls:
    ...     tuner.record(size, seconds)
    >>> tuner.size, tuner.fixed  # 32 and 64 points gain under 3 % per point: 16
    (16, True)
    """

    def __init__(
        self,
        limit: int,
        static_shapes: bool,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.limit = limit
        self._static = static_shapes
        # What the calls reported to ``record`` are timed with (see ``clock_for``).
        self.clock = clock
        self._measured_sizes: set[int] = set()
        self._warm = False
        self._lock = threading.Lock()
        self._start()

    def _start(self) -> None:
        self.size = min(self.limit, FIRST_BATCH)
        self.fixed = self.size >= self.limit
        self._samples: list[float] = []
        # Time per point of each size measured in this search.
        self._per_point: dict[int, float] = {}
        self._best_size = self.size
        self._best_per_point = math.inf

    def record(self, size: int, seconds: float) -> None:
        """Account one call of ``size`` points that took ``seconds``."""
        with self._lock:
            first_of_size = size not in self._measured_sizes
            self._measured_sizes.add(size)
            if not self._warm or (self._static and first_of_size):
                self._warm = True
                return
            if size != self.size:
                return
            self._samples.append(seconds / size)
            if len(self._samples) < SAMPLES_PER_SIZE:
                return
            per_point = min(self._samples)
            self._samples = []
            if self.fixed:
                if per_point > REVISE_AFTER * self._best_per_point:
                    self._start()
                elif self._best_size == size:
                    self._best_per_point = min(self._best_per_point, per_point)
                return
            self._per_point[size] = per_point
            if size < self.limit:
                self.size = min(self.limit, 2 * size)
                return
            self._fix()

    def _fix(self) -> None:
        """Fix the smallest size measured (up to the limit) within ``NEAR_BEST`` of the
        fastest; the limit itself if none was measured."""
        measured = {s: t for s, t in self._per_point.items() if s <= self.limit}
        if measured:
            fastest = min(measured.values())
            self._best_size = min(s for s, t in measured.items() if t <= NEAR_BEST * fastest)
            self._best_per_point = measured[self._best_size]
        else:
            # Its first measurement as the fixed size becomes the reference.
            self._best_size, self._best_per_point = self.limit, math.inf
        self.size, self.fixed = self._best_size, True

    def out_of_memory(self, size: int) -> None:
        """A call of ``size`` points ran out of memory: never try that many again."""
        with self._lock:
            self.limit = max(1, min(self.limit, size // 2))
            if self.size > self.limit:
                self._fix()


def clock_for(backend: GradientBackend) -> Callable[[], float]:
    """How the tuner times ``backend``'s calls: this process's CPU time where the model
    runs on the CPU, the wall clock elsewhere (a GPU's work is not CPU time).

    Examples
    --------
    >>> import keras
    >>> from ig_widget.backends import backend_for
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    >>> clock_for(backend_for(model, None)) is time.process_time  # no GPU here
    True
    """
    return time.process_time if backend.runs_on_cpu() else time.perf_counter


# Per backend (dropped with it) and (image shape, kind of call).
_tuners: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], BatchTuner]] = (
    weakref.WeakKeyDictionary()
)
_tuners_lock = threading.Lock()


def tuner_for(backend: GradientBackend, model: Any, image: np.ndarray, kind: str) -> BatchTuner:
    """The ``BatchTuner`` of ``backend`` for ``image``'s shape and ``kind``
    ("gradients" or "forward"), created with the memory rule's limit at first use.

    Examples
    --------
    >>> import keras
    >>> from ig_widget.backends import backend_for
    >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten()])
    >>> backend = backend_for(model, None)
    >>> tuner = tuner_for(backend, model, np.zeros((8, 8, 3)), "gradients")
    >>> tuner is tuner_for(backend, model, np.ones((8, 8, 3)), "gradients")
    True
    """
    key = (tuple(image.shape), kind)
    with _tuners_lock:
        per_backend = _tuners.setdefault(backend, {})
        if key not in per_backend:
            limit = whole_blocks(batch_size_for(backend, model, image))
            per_backend[key] = BatchTuner(
                limit, getattr(backend, "static_shapes", False), clock_for(backend)
            )
        return per_backend[key]


class BatchPlan:
    """The batches of one evaluation of ``total`` points.

    With an explicit ``batch_size`` every batch has that size (halved on an
    out-of-memory error); otherwise the ``tuner`` decides and learns.
    ``progress_updates`` asks for at least that many batches (progress calls),
    never for larger ones. For ``static_shapes`` backends full batches are
    buckets and ``padded`` rounds a last, smaller one up to its bucket. The
    tuner's batches are whole blocks of ``BLOCK`` points, the last one with
    the points left over, fewer than a block (see the module docstring).

    Examples
    --------
    >>> plan = BatchPlan(total=103, batch_size=64, progress_updates=10)
    >>> plan.next_size(103)  # 103 // 10 points per batch: at least 10 progress calls
    10
    """

    def __init__(
        self,
        total: int,
        *,
        batch_size: int | None = None,
        tuner: BatchTuner | None = None,
        progress_updates: int | None = None,
        static_shapes: bool = False,
    ) -> None:
        self.tuner = tuner
        if tuner is not None and batch_size is None:
            self.limit = tuner.limit
        elif tuner is None and batch_size is not None:
            self.limit = batch_size
        else:
            raise ValueError("batch_size: give either a batch size or a tuner")
        self._granularity = max(1, total // progress_updates) if progress_updates else self.limit
        self._static = static_shapes

    def next_size(self, remaining: int) -> int:
        """Points in the next batch, given ``remaining`` points."""
        full = self.limit if self.tuner is None else min(self.limit, self.tuner.size)
        full = min(full, self._granularity)
        if self._static:
            full = bucket_below(full, self.limit)
        size = max(1, min(full, remaining))
        if self.tuner is None:
            return size
        # Whole blocks, the last partial block with the last whole ones (see the
        # module docstring).
        size = whole_blocks(size)
        rest = remaining - size
        if size >= BLOCK and rest < BLOCK and self.limit >= 2 * BLOCK:
            # Over the limit, the last whole block waits to go with the rest.
            size = size - BLOCK if size + rest > self.limit else size + rest
        return size

    def padded(self, size: int) -> int:
        """The batch shape ``size`` points are sent as (see ``bucket``)."""
        return bucket(size, self.limit) if self._static else size

    def clock(self) -> float:
        """Now, on the clock the tuner's calls are timed with (see ``clock_for``)."""
        return self.tuner.clock() if self.tuner is not None else time.perf_counter()

    def record(self, size: int, seconds: float) -> None:
        if self.tuner is not None:
            self.tuner.record(size, seconds)

    def out_of_memory(self, size: int) -> None:
        """Halve below ``size``; ``MemoryError`` naming ``batch_size`` at one point."""
        if size <= 1:
            raise MemoryError(
                "batch_size: out of memory even for one point at a time; "
                "use a smaller image or a smaller model"
            )
        self.limit = max(1, min(self.limit, size // 2))
        if self.tuner is not None:
            self.tuner.out_of_memory(size)
