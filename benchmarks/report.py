"""The audit report against the ``explain_dataset`` run that made its store.

On the bundled demo model and ``--images`` generated demo images (steps=50,
the defaults otherwise, chunks of 32), or with ``--model tiny`` on random
16x16 images through a tiny CNN (steps=2, chunks of 256: a cheap store of
10,000 rows), each of ``--rounds`` rounds times

- **explain**: ``igw.explain_dataset`` into a new store;
- **report**: ``DatasetResult.report`` of that store (class names, the
  default columns, the worst 12 per column), the page written to a file;

wall-clock and CPU time (``time.process_time``), and their ratio within the
round. Then, untimed, the report's peak of Python-traced memory
(``tracemalloc``: NumPy's arrays included) and the page's size. A warm-up
explain and report run first (tracing, imports).

Alone: ``python -m benchmarks.report --images 64 --rounds 2``; it prints one
``ROW {json}`` line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
import tracemalloc
from typing import Any

import ig_widget as igw

STEPS = 50
CHUNK = 32
# --model tiny: random 16x16 images through tests.models.tiny_cnn, steps=2, chunks of 256
# (the Gallery's 10,000-image browser test): a cheap store of many rows.
TINY = 16


def _timed(run: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def model_and_images(name: str, count: int) -> tuple[Any, Any, Any, list[str], int, int]:
    """The model, images, labels, class names, steps and chunk size of a run."""
    if name == "demo":
        images, labels, _ = igw.demo.make_shapes(count, seed=11)
        return igw.demo.model(), images, labels, list(igw.demo.class_names), STEPS, CHUNK
    import numpy as np

    from tests.models import tiny_cnn

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, TINY, TINY, 3)).astype(np.uint8)
    labels = rng.integers(0, 4, count)
    return tiny_cnn(TINY, seed=2), images, labels, ["a", "b", "c", "d"], 2, 256


def measure(name: str, count: int, rounds: int) -> dict[str, Any]:
    model, images, labels, names, steps, chunk = model_and_images(name, count)
    row: dict[str, Any] = {
        "model": name,
        "images": count,
        "steps": steps,
        "rounds": rounds,
        "load_average_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as folder:
        stores = iter(range(10**6))

        def explain(part: Any = images, part_labels: Any = labels) -> igw.DatasetResult:
            return igw.explain_dataset(
                model,
                part,
                labels=part_labels,
                steps=steps,
                chunk_size=chunk,
                store=f"{folder}/{next(stores)}",
                progress=False,
            )

        def report(result: igw.DatasetResult) -> int:
            page = result.report(f"{folder}/audit.html", class_names=names)
            return page.stat().st_size

        report(explain(images[:chunk], labels[:chunk]))  # warm-up
        timings: dict[str, list[tuple[float, float]]] = {"explain": [], "report": []}
        result = None
        for _ in range(rounds):
            result, wall, cpu = _timed(explain)
            timings["explain"].append((wall, cpu))
            size, wall, cpu = _timed(functools.partial(report, result))
            timings["report"].append((wall, cpu))
        tracemalloc.start()
        report(result)
        row["report_peak_traced_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        row["page_bytes"] = size
    for key, values in timings.items():
        row[f"{key}_wall_s"] = [round(wall, 3) for wall, _ in values]
        row[f"{key}_cpu_s"] = [round(cpu, 3) for _, cpu in values]
    for kind, column in (("wall", 0), ("cpu", 1)):
        per_round = [
            r[column] / e[column]
            for r, e in zip(timings["report"], timings["explain"], strict=True)
        ]
        row[f"report/explain {kind}"] = {
            "median": round(statistics.median(per_round), 4),
            "rounds": [round(value, 4) for value in per_round],
        }
    row["load_average_end"] = os.getloadavg()[0]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("demo", "tiny"), default="demo")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    print("ROW " + json.dumps(measure(args.model, args.images, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
