"""``executor="ray"``: the chunks of ``explain_dataset`` as a Ray Data pipeline.

The driver streams the dataset as ``explain_dataset`` does locally and feeds
its chunks, as they come, through a bounded queue into a Ray Data source;
``map_batches`` hands each chunk to one actor of a pool (one model per
actor, a GPU per actor where the cluster has them), which runs exactly the
local executor's ``Computation.run_chunk``: it computes the chunk through the
engine, writes the chunk's arrays to the store itself, and returns the
table rows, which the driver commits. The store must therefore be reachable
from every worker: a shared folder or an object-store URI.

The model reaches each actor by pickling (Keras models and torch Modules
pickle), or is built there: give ``model`` as the path of a saved ``.keras``
file on shared storage or as an ``igw.ModelFactory``.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..validation import check_number
from .store import missing_dependency

if TYPE_CHECKING:
    from .compute import Computation
    from .explain import _Progress, _Run

# Chunks waiting in the queue per worker: enough to keep every actor busy
# while the driver reads the next images, few enough to bound memory.
QUEUE_CHUNKS_PER_WORKER = 2
_END = "end"


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise missing_dependency(exc, "ray") from exc
    return ray


class _ChunkFailed(Exception):
    """A chunk's error on a worker and its cause, both carried to the driver.

    A pickled exception loses ``__cause__``; as arguments of this one both
    travel, so that the driver raises the error a local run raises (``model:
    ...``), chained to the model's own exception.
    """


def _portable(error: BaseException) -> BaseException:
    """``error`` itself when it pickles, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _chunk_failure(error: BaseException) -> _ChunkFailed | None:
    """The worker's ``_ChunkFailed`` inside what Ray raised (its task error, its causes)."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _ChunkFailed):
            return current
        pending += [getattr(current, "cause", None), current.__cause__, current.__context__]
    return None


class _ChunkWorker:
    """A Ray actor: one model, and the chunks Ray Data gives it, one at a time."""

    def __init__(self, computation: Computation) -> None:
        self.computation = computation
        computation.resolved_model  # load (or unpickle) the model once per actor  # noqa: B018

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        numbers, rows = [], []
        for number, payload in zip(batch["number"], batch["payload"], strict=True):
            items = pickle.loads(payload)
            try:
                rows.append(pickle.dumps(self.computation.run_chunk(items)))
            except Exception as exc:
                cause = None if exc.__cause__ is None else _portable(exc.__cause__)
                raise _ChunkFailed(_portable(exc), cause) from None
            numbers.append(int(number))
        return pd.DataFrame({"number": numbers, "rows": rows})


def _queue_source(queue: Any) -> Any:
    """A Ray Data source with one read task that yields the chunks the driver queues."""
    import pandas as pd
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def read() -> Any:
        while True:
            entry = queue.get()
            if entry == _END:
                return
            number, payload = entry
            yield pd.DataFrame({"number": [number], "payload": [payload]})

    class QueueSource(Datasource):
        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            metadata = BlockMetadata(
                num_rows=None, size_bytes=None, input_files=None, exec_stats=None
            )
            return [ReadTask(read, metadata)]

        def estimate_inmemory_data_size(self) -> None:
            return None

    return QueueSource()


@dataclass
class RayExecutor:
    """Run ``explain_dataset`` on Ray: a local Ray, or a cluster.

    Parameters
    ----------
    address : str, optional
        The cluster to connect to (``"ray://head:10001"``, ``"auto"``); by
        default an already initialised Ray, else ``RAY_ADDRESS``, else a
        local Ray started here.
    workers : int, optional
        Actors, each with its own model; default: one per GPU if the
        cluster has GPUs, else one per ``cpus_per_worker`` CPUs.
    gpus_per_worker : float, optional
        Default 1 where the cluster has GPUs, else 0.
    cpus_per_worker : float
        CPUs reserved for each actor.
    init : dict
        More keyword arguments for ``ray.init`` when this starts or
        connects Ray (for example ``{"num_cpus": 2}``).

    Examples
    --------
    >>> executor = RayExecutor(workers=2, init={"num_cpus": 2})
    >>> executor.cpus_per_worker
    1.0
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    init: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers is not None:
            from ..validation import check_int

            self.workers = check_int("workers", self.workers, low=1)
        if self.gpus_per_worker is not None:
            self.gpus_per_worker = check_number("gpus_per_worker", self.gpus_per_worker, low=0)
        self.cpus_per_worker = check_number("cpus_per_worker", self.cpus_per_worker, low=0)
        if not isinstance(self.init, dict):
            raise TypeError(f"init: expected a dict of ray.init arguments, got {self.init!r}")

    def _start(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, **{"log_to_driver": False, **self.init})
        return ray

    def _pool(self, ray: Any) -> tuple[int, float]:
        resources = ray.cluster_resources()
        gpus = self.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        workers = self.workers
        if workers is None:
            if gpus > 0:
                workers = max(1, int(resources.get("GPU", 0) // gpus))
            else:
                cpus = resources.get("CPU", 1)
                workers = max(1, int(cpus // max(self.cpus_per_worker, 1e-9)))
        return workers, gpus

    def run(self, run: _Run, bar: _Progress) -> None:
        """Compute the chunks ``run`` has pending on Ray, committing each as it returns."""
        pending = run.pending()
        first = next(pending, None)
        if first is None:
            return
        assert run.computation is not None
        ray = self._start()
        from ray.util.queue import Queue

        workers, gpus = self._pool(ray)
        queue = Queue(maxsize=QUEUE_CHUNKS_PER_WORKER * workers)
        stop = threading.Event()
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                for number, items in _chain(first, pending):
                    if stop.is_set():
                        break
                    queue.put((number, pickle.dumps(items, protocol=5)))
            except BaseException as exc:  # reported by the driver's loop
                failure.append(exc)
            finally:
                queue.put(_END)

        feeder = threading.Thread(target=feed, name="ig-dataset-feeder", daemon=True)
        dataset = _pipeline(ray, queue, run.computation, workers, self.cpus_per_worker, gpus)
        feeder.start()
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                for number, rows in zip(batch["number"], batch["rows"], strict=True):
                    if not bar.advance(run.commit(int(number), pickle.loads(rows))):
                        from ..points import CANCELLED, ComputationCancelled

                        raise ComputationCancelled(CANCELLED)
        except Exception as exc:
            failed = _chunk_failure(exc)
            if failed is None:
                raise
            error, cause = failed.args
            raise error from cause
        finally:
            stop.set()
            feeder.join(timeout=5)
            ray.kill(queue.actor)
        if failure:
            raise failure[0]


def _pipeline(
    ray: Any, queue: Any, computation: Computation, workers: int, cpus: float, gpus: float
) -> Any:
    """Queue -> read task -> map_batches over an actor pool -> table rows."""
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    saved = (
        context.target_max_block_size,
        context.enable_progress_bars,
        context.raise_original_map_exception,
    )
    # One block per chunk (Ray Data would otherwise join the small blocks of a
    # read task up to 128 MiB, and one actor would get them all); explain_dataset
    # draws its own progress bar. Ray Data copies the context into the dataset.
    context.target_max_block_size = 1
    context.enable_progress_bars = False
    # A worker's own exception (a _ChunkFailed), not Ray Data's "UDF failed" wrapper.
    context.raise_original_map_exception = True
    try:
        # The read task only waits on the queue: it takes no CPU from the actors.
        source = ray.data.read_datasource(_queue_source(queue), override_num_blocks=1, num_cpus=0)
        return source.map_batches(
            _ChunkWorker,
            fn_constructor_args=(computation,),
            batch_size=1,
            batch_format="pandas",
            compute=ActorPoolStrategy(size=workers),
            num_cpus=cpus,
            num_gpus=gpus,
        )
    finally:
        (
            context.target_max_block_size,
            context.enable_progress_bars,
            context.raise_original_map_exception,
        ) = saved


def _chain(first: Any, rest: Any) -> Any:
    yield first
    yield from rest
