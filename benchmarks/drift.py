"""``igw.compare_datasets`` against ``igw.explain_dataset`` on the same stored demo images.

Issue 24's goal: comparing two stores of N images takes at most 20 % of the
time ``explain_dataset`` took to write one of them. On ``--images`` generated
96x96 demo images, the demo model explains them twice with
``explain_dataset``'s defaults (``steps="auto"``, the blurred baseline; then
the black baseline), each into its own store (``explain a``, ``explain b``,
everything included); then the two stores are opened (``open``: their
tables and checksums, one row per image) and ``compare_datasets(a, b)``
reads their maps a chunk at a time and compares every image (``compare``).
Each of the last two has the peak of Python's traced allocations during it
(``tracemalloc``, which covers NumPy's arrays). Each is timed in wall-clock
and CPU seconds (``time.process_time``: every thread of this process; on a
shared, loaded machine the CPU ratio is the one to read). The ratios are
``compare`` over the mean of the two explains, measured in one run.

``python -m benchmarks.drift --images 100 300`` (one measurement per count)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import ig_widget as igw


def measure(count: int, folder: Path) -> dict[str, Any]:
    """Seconds of two explains and one comparison of ``count`` demo images, and the ratio."""
    images, labels, masks = igw.demo.make_shapes(count, seed=11)
    model = igw.demo.model()
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    stores = {}
    for name, baseline in (("a", "blur"), ("b", "black")):
        stores[name] = folder / f"{name}.store"
        start, start_cpu = time.perf_counter(), time.process_time()
        igw.explain_dataset(
            model,
            images,
            labels=labels,
            masks=masks,
            baseline=baseline,
            store=stores[name],
            progress=False,
        )
        seconds[f"explain {name}"] = time.perf_counter() - start
        cpu[f"explain {name}"] = time.process_time() - start_cpu
    peaks = {}
    tracemalloc.start()
    opened = [igw.open_dataset(stores[name]) for name in ("a", "b")]
    peaks["open"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    start, start_cpu = time.perf_counter(), time.process_time()
    comparison = igw.compare_datasets(*opened)
    seconds["compare"] = time.perf_counter() - start
    cpu["compare"] = time.process_time() - start_cpu
    peaks["compare"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    def ratio(times: dict[str, float]) -> float:
        return round(times["compare"] / ((times["explain a"] + times["explain b"]) / 2), 4)

    return {
        "images": count,
        "wall seconds": {name: round(value, 3) for name, value in seconds.items()},
        "cpu seconds": {name: round(value, 3) for name, value in cpu.items()},
        "compare / explain (wall)": ratio(seconds),
        "compare / explain (cpu)": ratio(cpu),
        "compare ms per image": round(1000 * seconds["compare"] / count, 3),
        "open peak traced MB": round(peaks["open"] / 2**20, 1),
        "compare peak traced MB": round(peaks["compare"] / 2**20, 1),
        "median rank correlation": round(float(comparison.table["rank_correlation"].median()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[200])
    args = parser.parse_args()
    for count in args.images:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(measure(count, Path(folder)), indent=2), flush=True)


if __name__ == "__main__":
    main()
