"""Dataset rows: images/s of explain_dataset against a per-image loop and the floor; peak memory.

``speed``: on the bundled demo model and its generated 96x96 images, and on
an untrained small CNN with 32x32 shapes (steps=50, black baseline, the
predicted class), images per second of

- **loop**: one ``igw.integrated_gradients`` call per image (on the first
  ``--loop-images`` images: its rate does not depend on the count);
- **local**: ``igw.explain_dataset`` with the local executor, everything
  included (streaming, the store written as it goes, thumbnails, table);
- **ray**: the same on a local Ray with 2 worker actors (Ray started before
  timing; the actors' start-up, model loading and tracing are included);
- **floor**: one compiled batched gradient call per batch over the same points
  (each image's 51 path points and its own point), already in memory, with
  per-point targets and nothing else: the physical limit.

``memory``: the peak resident memory of one process that explains ``--count``
images streamed from a generator (so the input does not grow with the count)
with the local executor: flat in the count is the goal.

Run through ``python -m benchmarks.run --sections dataset``; alone:
``python -m benchmarks.dataset speed --images 1000``.
"""

from __future__ import annotations

import argparse
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
        gradients(*tensors[0])  # traced before timing
        began = time.perf_counter()
        for batch_points, batch_targets in tensors:
            gradients(batch_points, batch_targets).numpy()
        elapsed += time.perf_counter() - began
    return elapsed


def speed(name: str, count: int, loop_images: int, ray_workers: int) -> dict[str, Any]:
    model, images, labels = model_and_images(name, count)
    row: dict[str, Any] = {
        "model": name,
        "size": images.shape[1],
        "images": count,
        "steps": STEPS,
        "chunk": CHUNK,
        "load_average_start": os.getloadavg()[0],
    }
    # Warm-up (tracing) for every path, untimed.
    igw.integrated_gradients(model, images[0], steps=STEPS)
    with tempfile.TemporaryDirectory() as folder:
        igw.explain_dataset(
            model, images[:CHUNK], steps=STEPS, store=f"{folder}/warm", progress=False
        )
        began = time.perf_counter()
        for image in images[:loop_images]:
            igw.integrated_gradients(model, image, steps=STEPS)
        row["loop_images_per_s"] = loop_images / (time.perf_counter() - began)

        began = time.perf_counter()
        result = igw.explain_dataset(
            model, images, labels=labels, steps=STEPS, store=f"{folder}/local", progress=False
        )
        row["local_images_per_s"] = count / (time.perf_counter() - began)
        targets = result.table["target"].to_numpy()

        row["floor_images_per_s"] = max(
            count / floor_seconds(model, images, targets, batch) for batch in (64, 128, 256)
        )
        if ray_workers:
            import ray

            from tests.ray_local import start_local_ray

            started = time.perf_counter()
            start_local_ray(ray_workers)
            row["ray_start_s"] = time.perf_counter() - started
            began = time.perf_counter()
            igw.explain_dataset(
                model,
                images,
                labels=labels,
                steps=STEPS,
                store=f"{folder}/ray",
                progress=False,
                executor=igw.RayExecutor(workers=ray_workers),
            )
            row["ray_images_per_s"] = count / (time.perf_counter() - began)
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
    parser.add_argument("--loop-images", type=int, default=200)
    parser.add_argument("--ray-workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.part == "speed":
        loop_images = min(args.loop_images, args.images)
        row = speed(args.model, args.images, loop_images, args.ray_workers)
    else:
        row = memory(args.images)
    print("ROW " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
