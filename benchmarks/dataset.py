"""Dataset rows: images/s of explain_dataset against a per-image loop and the floor; peak memory.

``speed``: on the bundled demo model and its generated 96x96 images, and on
an untrained small CNN with 32x32 shapes (steps=50, black baseline, the
predicted class), images per second of

- **loop**: one ``igw.integrated_gradients`` call per image;
- **local**: ``igw.explain_dataset`` with the local executor, everything
  included (streaming, the store written as it goes, thumbnails, table);
- **floor**: one compiled batched gradient call per batch over the same points
  (each image's 51 path points and its own point), already in memory, with
  per-point targets and nothing else: the physical limit (the best of batches
  of 64, 128 and 256 points);
- **local at the floor's batch**: ``explain_dataset`` with ``batch_size`` set
  to the floor's best batch of the round, which separates the cost of the
  engine's batch choice (``engine_batch``, the tuner's) from everything else.

These four run in ``--rounds`` interleaved rounds on the first
``--round-images`` images (loop, local, floor, local at the floor's batch,
loop, ...), so that a change of load on a shared machine hits them alike; the
row keeps each round's rate and the best. Once each, on all ``--images``:
``local_all`` (the local executor, labels given) and **ray**, a local Ray
with 2 worker actors (Ray started before timing; the actors' start-up, model
loading and tracing are included).

``memory``: the peak resident memory of one process that explains ``--count``
images streamed from a generator (so the input does not grow with the count)
with the local executor: flat in the count is the goal.

Run through ``python -m benchmarks.run --sections dataset``; alone:
``python -m benchmarks.dataset speed --images 1000``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import ig_widget as igw

STEPS = 50
CHUNK = 32


MODELS = ("demo", "small_cnn")


def model_and_images(name: str, count: int, seed: int = 11) -> tuple[Any, np.ndarray, np.ndarray]:
    """The demo model on its 96x96 images, or an untrained small CNN on 32x32 shapes."""
    if name == "demo":
        images, labels, _ = igw.demo.make_shapes(count, seed=seed)
        return igw.demo.model(), images, labels
    from .speed import small_cnn

    images, labels, _ = igw.demo.make_shapes(count, seed=seed, size=32)
    return small_cnn(32, classes=6), images, labels


def streamed_images(count: int, seed: int = 11, block: int = 256) -> Iterator[tuple[Any, int]]:
    """``count`` demo images as (image, label) pairs, generated ``block`` at a time."""
    for start in range(0, count, block):
        images, labels, _ = igw.demo.make_shapes(min(block, count - start), seed=seed + start)
        yield from zip(images, labels.tolist(), strict=True)


def _peak_mib() -> float:
    with open("/proc/self/status") as status:
        found = re.search(r"VmHWM:\s+(\d+) kB", status.read())
    assert found is not None
    return int(found.group(1)) / 1024


def floor_seconds(model: Any, images: np.ndarray, targets: np.ndarray, batch: int) -> float:
    """Seconds of the batched gradient alone over every image's path points and own point."""
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def gradients(points: Any, chosen: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(points)
            scores = model(points, training=False)
            total = tf.reduce_sum(tf.gather(scores, chosen, axis=1, batch_dims=1))
        return tape.gradient(total, points)

    alphas = np.append(np.linspace(0, 1, STEPS + 1), 1.0).astype(np.float32)
    elapsed = 0.0
    for start in range(0, len(images), CHUNK):
        part = images[start : start + CHUNK].astype(np.float32)
        # Black baseline: the point at alpha is alpha * image.
        points = (alphas[None, :, None, None, None] * part[:, None]).reshape(-1, *part.shape[1:])
        chosen = np.repeat(targets[start : start + CHUNK], len(alphas)).astype(np.int32)
        tensors = [
            (tf.constant(points[i : i + batch]), tf.constant(chosen[i : i + batch]))
            for i in range(0, len(points), batch)
        ]
        gradients(*tensors[0])  # traced before timing, for the full and the last batch
        gradients(*tensors[-1])
        began = time.perf_counter()
        for batch_points, batch_targets in tensors:
            gradients(batch_points, batch_targets).numpy()
        elapsed += time.perf_counter() - began
    return elapsed


def engine_batch(shape: tuple[int, ...]) -> int | None:
    """The gradient batch the engine's tuner uses for images of ``shape`` (None if unused)."""
    from ig_widget import batching

    for tuners in batching._tuners.values():
        tuner = tuners.get((shape, "gradients"))
        if tuner is not None:
            return tuner.size
    return None


def _rate(images: int, run: Any) -> float:
    began = time.perf_counter()
    run()
    return images / (time.perf_counter() - began)


def speed(
    name: str, count: int, round_images: int, rounds: int, ray_workers: int
) -> dict[str, Any]:
    model, images, labels = model_and_images(name, count)
    row: dict[str, Any] = {
        "model": name,
        "size": images.shape[1],
        "images": count,
        "steps": STEPS,
        "chunk": CHUNK,
        "round_images": round_images,
        "rounds": rounds,
        "load_average_start": os.getloadavg()[0],
    }
    sample = images[:round_images]
    # Warm-up (tracing) for every path, untimed.
    igw.integrated_gradients(model, images[0], steps=STEPS)
    with tempfile.TemporaryDirectory() as folder:
        stores = iter(range(10**6))

        def local(batch: int | None = None, part: np.ndarray = sample) -> Any:
            return igw.explain_dataset(
                model,
                part,
                steps=STEPS,
                batch_size=batch,
                store=f"{folder}/{next(stores)}",
                progress=False,
            )

        local(part=images[:CHUNK])
        row["local_all_images_per_s"] = _rate(
            count,
            lambda: igw.explain_dataset(
                model, images, labels=labels, steps=STEPS, store=f"{folder}/all", progress=False
            ),
        )
        row["engine_batch"] = engine_batch(images.shape[1:])
        targets = igw.open_dataset(f"{folder}/all").table["target"].to_numpy()[:round_images]

        # Interleaved rounds on the same images, so that a change of load hits all alike.
        rates: dict[str, list[float]] = {
            "loop": [], "local": [], "floor": [], "local_at_floor_batch": [], "floor_batch": []
        }  # fmt: skip
        for _ in range(rounds):
            rates["loop"].append(
                _rate(
                    round_images,
                    lambda: [igw.integrated_gradients(model, i, steps=STEPS) for i in sample],
                )
            )
            rates["local"].append(_rate(round_images, local))
            floors = {
                batch: round_images / floor_seconds(model, sample, targets, batch)
                for batch in (64, 128, 256)
            }
            best = max(floors, key=floors.__getitem__)
            rates["floor"].append(floors[best])
            rates["floor_batch"].append(best)
            rates["local_at_floor_batch"].append(
                _rate(round_images, functools.partial(local, best))
            )
        for name_, values in rates.items():
            if name_ != "floor_batch":
                row[f"{name_}_images_per_s"] = max(values)
                row[f"{name_}_all_rounds"] = [round(v, 3) for v in values]
        row["floor_batch"] = max(set(rates["floor_batch"]), key=rates["floor_batch"].count)
        if ray_workers:
            import ray

            from tests.ray_local import start_local_ray

            started = time.perf_counter()
            start_local_ray(ray_workers)
            row["ray_start_s"] = time.perf_counter() - started
            row["ray_images_per_s"] = _rate(
                count,
                lambda: igw.explain_dataset(
                    model,
                    images,
                    labels=labels,
                    steps=STEPS,
                    store=f"{folder}/ray",
                    progress=False,
                    executor=igw.RayExecutor(workers=ray_workers),
                ),
            )
            row["ray_workers"] = ray_workers
            ray.shutdown()
    row["load_average_end"] = os.getloadavg()[0]
    return row


def memory(count: int) -> dict[str, Any]:
    model = igw.demo.model()
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        igw.explain_dataset(
            model, streamed_images(count), steps=STEPS, store=f"{folder}/s", progress=False
        )
        seconds = time.perf_counter() - began
    return {"images": count, "peak_mib": _peak_mib(), "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("speed", "memory"))
    parser.add_argument("--model", choices=MODELS, default="demo")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--round-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray-workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.part == "speed":
        sample = min(args.round_images, args.images)
        row = speed(args.model, args.images, sample, args.rounds, args.ray_workers)
    else:
        row = memory(args.images)
    print("ROW " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
