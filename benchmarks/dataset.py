"""Dataset rows: explain_dataset against a per-image loop, the floor and Ray; peak memory.

``speed``: on the bundled demo model and its generated 96x96 images, an
untrained small CNN on 32x32 shapes, or MobileNetV2 at 224x224
(``keras.applications``, random weights, nothing downloaded) on the same
shapes (steps=50, black baseline, the predicted class), the wall-clock and
CPU time (``time.process_time``: every thread of this process) of

- **loop**: one ``igw.integrated_gradients`` call per image;
- **local**: ``igw.explain_dataset`` with the local executor, everything
  included (streaming, the store written as it goes, thumbnails, table);
- **floor**: one compiled batched gradient call per batch over the same points
  (each image's 51 path points and its own point), already in memory, with
  nothing else: the physical limit (the best of ``FLOOR_BATCHES``; the
  Keras backend's own gradient, ``benchmarks.frameworks``);
- **floor per image**: the same, one call per image over its 52 points (what
  a single ``integrated_gradients`` call is held to);
- **ray** (``--ray-workers`` > 0): ``explain_dataset`` on a local Ray with
  that many worker actors, started before the rounds (each run's actors load
  and trace the model inside the timing; their CPU time is not this
  process's, so only wall time is kept).

They run in ``--rounds`` interleaved rounds on the same ``--images`` images
(loop, local, floor, floor per image, ray, loop, ...), so that a change of
load on a shared machine hits them alike; the row keeps every round's
seconds and the ratios of each round, and the batches the engine's tuner
used (``tuner``: its size, whether it is fixed).

``memory``: the peak resident memory of one process that explains ``--count``
images streamed from a generator (so the input does not grow with the count)
with the local executor: flat in the count is the goal.

Run through ``python -m benchmarks.run --sections dataset``; alone:
``python -m benchmarks.dataset speed --model demo --images 64``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import ig_widget as igw

STEPS = 50
# Every contender starts from the same baseline: explain_dataset's own default is "blur",
# whose Gaussian filter (scipy, 0.3 CPU s for 128 demo images) the loop and floor never run.
BASELINE = "black"
CHUNK = 32
MODELS = ("demo", "small_cnn", "mobilenet_v2")
FLOOR_BATCHES = {"demo": (64, 128), "small_cnn": (64, 128, 256), "mobilenet_v2": (32, 64)}


def model_and_images(
    name: str, count: int, seed: int = 11, size: int | None = None
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The model and ``count`` generated shapes at its size (``size`` overrides MobileNetV2's)."""
    if name == "demo":
        images, labels, _ = igw.demo.make_shapes(count, seed=seed)
        return igw.demo.model(), images, labels
    if name == "small_cnn":
        from .speed import small_cnn

        images, labels, _ = igw.demo.make_shapes(count, seed=seed, size=32)
        return small_cnn(32, classes=6), images, labels
    import keras

    size = size or 224
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), weights=None)
    images, labels, _ = igw.demo.make_shapes(count, seed=seed, size=size)
    return model, images, labels


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


def path_points(images: np.ndarray) -> np.ndarray:
    """Every image's 51 path points from black and the image itself, image by image."""
    alphas = np.append(np.linspace(0, 1, STEPS + 1), 1.0).astype(np.float32)
    part = images.astype(np.float32)
    return (alphas[None, :, None, None, None] * part[:, None]).reshape(-1, *part.shape[1:])


class Floor:
    """The floor's compiled gradient (``benchmarks.frameworks``) over points in memory."""

    def __init__(self, model: Any) -> None:
        from .frameworks import active

        self.framework = active()
        self.gradients = self.framework.floor(model, None, "float32")
        self.traced: set[int] = set()

    def run(self, points: np.ndarray, batch: int) -> None:
        """Gradients of ``points`` in batches of ``batch`` (tracing new batch shapes first)."""
        framework = self.framework
        batches = [framework.put(points[i : i + batch]) for i in range(0, len(points), batch)]
        for tensor in (batches[0], batches[-1]):
            if len(tensor) not in self.traced:
                self.traced.add(len(tensor))
                framework.sync(self.gradients(tensor, 0))
        for tensor in batches:
            framework.sync(self.gradients(tensor, 0))


def engine_tuner(shape: tuple[int, ...]) -> tuple[int, bool] | None:
    """The engine's gradient tuner for images of ``shape``: (size, fixed), or None if unused."""
    from ig_widget import batching

    for tuners in batching._tuners.values():
        tuner = tuners.get((tuple(shape), "gradients"))
        if tuner is not None:
            return tuner.size, tuner.fixed
    return None


def _timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(
    name: str, count: int, rounds: int, ray_workers: int, size: int | None = None
) -> dict[str, Any]:
    model, images, _ = model_and_images(name, count, size=size)
    row: dict[str, Any] = {
        "model": name,
        "size": images.shape[1],
        "images": count,
        "steps": STEPS,
        "chunk": CHUNK,
        "rounds": rounds,
        "load_average_start": os.getloadavg()[0],
    }
    # Warm-up (tracing) of the engine's paths, untimed.
    igw.integrated_gradients(model, images[0], steps=STEPS, baseline=BASELINE)
    floor = Floor(model)
    points = path_points(images)
    per_image = len(points) // count
    # The floor's tracing, untimed: otherwise the first round's floor includes it.
    for batch in (*FLOOR_BATCHES[name], per_image):
        last = len(points) % batch or batch  # the rounds' first and last batch shapes
        floor.run(np.concatenate([points[:batch], points[len(points) - last :]]), batch)
    if ray_workers:
        from tests.ray_local import start_local_ray

        started = time.perf_counter()
        start_local_ray(ray_workers)
        row["ray_start_s"] = time.perf_counter() - started
        row["ray_workers"] = ray_workers
    with tempfile.TemporaryDirectory() as folder:
        stores = iter(range(10**6))

        def local(executor: Any = "local") -> Any:
            return igw.explain_dataset(
                model,
                images,
                steps=STEPS,
                baseline=BASELINE,
                store=f"{folder}/{next(stores)}",
                progress=False,
                chunk_size=CHUNK,
                executor=executor,
            )

        local()  # warm-up: the store path and the chunk's batch shapes
        timings: dict[str, list[tuple[float, float]]] = {}
        floor_batches, tuner = [], []
        for _ in range(rounds):
            measured = {
                "loop": _timed(
                    lambda: [
                        igw.integrated_gradients(model, i, steps=STEPS, baseline=BASELINE)
                        for i in images
                    ]
                ),
                "local": _timed(local),
            }
            tuner.append(engine_tuner(images.shape[1:]))
            floors = {
                batch: _timed(functools.partial(floor.run, points, batch))
                for batch in FLOOR_BATCHES[name]
            }
            best = min(floors, key=lambda b: floors[b][1])
            floor_batches.append(best)
            measured["floor"] = floors[best]
            measured["floor_per_image"] = _timed(lambda: floor.run(points, per_image))
            if ray_workers:
                measured["ray"] = _timed(lambda: local(igw.RayExecutor(workers=ray_workers)))
            for key, value in measured.items():
                timings.setdefault(key, []).append(value)
    if ray_workers:
        import ray

        ray.shutdown()
    for key, values in timings.items():
        row[f"{key}_wall_s"] = [round(wall, 3) for wall, _ in values]
        row[f"{key}_cpu_s"] = [round(cpu, 3) for _, cpu in values]
    for ratio, (top, bottom) in {
        "local/loop": ("local", "loop"),
        "local/floor": ("local", "floor"),
        "loop/floor_per_image": ("loop", "floor_per_image"),
        "ray/local": ("ray", "local"),
    }.items():
        if top not in timings:
            continue
        for kind, column in (("wall", 0), ("cpu", 1)):
            per_round = [
                t[column] / b[column] for t, b in zip(timings[top], timings[bottom], strict=True)
            ]
            row[f"{ratio} {kind}"] = {
                "median": round(statistics.median(per_round), 3),
                "rounds": [round(r, 3) for r in per_round],
            }
    row["floor_batch"] = floor_batches
    row["tuner"] = tuner
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
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=None, help="MobileNetV2's input size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray-workers", type=int, default=0)
    args = parser.parse_args(argv)
    if args.part == "speed":
        row = speed(args.model, args.images, args.rounds, args.ray_workers, args.size)
    else:
        row = memory(args.images)
    print("ROW " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
