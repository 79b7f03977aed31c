"""Speed rows for one model on the Keras backend of this process.

For 51 points (steps=50, trapezoid; ``--steps`` changes it) and each number of
uniform baselines it times (a) the Keras example's eager per-point loop, (b)
the engine and (c) the floor, one compiled batched gradient call over the same
points (see ``benchmarks.frameworks``), interleaved so that a change in
machine load hits all three alike; medians of ``repeats`` runs after an
untimed warm-up. The engine does a little more than the floor: the plain
gradient at the image (one more point) and one forward pass for the score.
Peak memory is the largest over the timed runs of the process's peak resident
set (on the CPU) or of the framework's device-memory peak (on a GPU). JAX
cannot reset its device peak, so there each value is the process's peak so far
(``peak_is_running_max``; the table marks it with ≤).

Run through ``python -m benchmarks.run``, which starts one process per Keras
backend, precision and model; alone:
``KERAS_BACKEND=jax python -m benchmarks.speed --model xception``.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

import ig_widget as igw
from ig_widget.backends import backend_for
from ig_widget.baselines import make_baselines
from ig_widget.batching import tuner_for
from ig_widget.quadrature import integration_points

from .frameworks import Framework, active

STEPS = 50


def small_cnn(size: int = 128, classes: int = 10) -> keras.Model:
    """A small classifier of the kind people train themselves: three conv blocks."""
    keras.utils.set_random_seed(0)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Rescaling(1 / 127.5, offset=-1),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(classes),
        ]
    )


def build(name: str, size: int | None = None) -> tuple[keras.Model, Any, int]:
    """Model, preprocess function and input size for a benchmark model name."""
    apps = keras.applications
    if name == "small_cnn":
        size = size or 128
        return small_cnn(size), None, size
    if name == "mobilenetv2":
        size = size or 224
        model = apps.MobileNetV2(weights=None, input_shape=(size, size, 3))
        return model, apps.mobilenet_v2.preprocess_input, size
    if name == "xception":
        size = size or 299
        model = apps.Xception(weights=None, input_shape=(size, size, 3))
        return model, apps.xception.preprocess_input, size
    raise ValueError(f"model: expected small_cnn, mobilenetv2 or xception, got {name!r}")


def _status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            found = re.search(rf"{key}:\s+(\d+) kB", status.read())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


class PeakMemory:
    """Peak memory of what runs inside ``with``, in MiB: device memory if the
    framework counts it, else the process's peak resident set (Linux resets it
    through ``/proc/self/clear_refs``); None where neither can be measured."""

    def __init__(self, framework: Framework) -> None:
        self.framework = framework
        self.mib: float | None = None
        self._host_peak_reset = False

    def __enter__(self) -> PeakMemory:
        self.framework.reset_peak()
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")
            self._host_peak_reset = True
        except OSError:
            # Without the reset, VmHWM is the whole process's peak: not this one's.
            self._host_peak_reset = False
        return self

    def __exit__(self, *exc: object) -> None:
        peak = self.framework.peak_bytes()
        if peak is None and self._host_peak_reset:
            peak = _status_bytes("VmHWM")
        self.mib = None if peak is None else peak / 2**20


def _timed(action: Callable[[], Any], framework: Framework) -> float:
    started = time.perf_counter()
    framework.sync(action())
    return time.perf_counter() - started


def measure(
    name: str,
    *,
    size: int | None = None,
    baselines: tuple[int, ...] = (1, 2),
    repeats: int = 3,
    precision: str = "float32",
    steps: int = STEPS,
) -> list[dict[str, Any]]:
    """Rows of loop/engine/floor seconds and peak memory for one model."""
    framework = active()
    model, preprocess, size = build(name, size)
    image = np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)
    target = int(np.argmax(backend_for(model, preprocess, precision).predict(image[None])[0]))
    floor = framework.floor(model, preprocess, precision)
    alphas, _ = integration_points("trapezoid", steps)
    rows = []
    for runs in baselines:
        starts = make_baselines(image, "uniform", runs, seed=0)
        points = framework.put(
            (starts[:, None] + alphas[None, :, None, None, None] * (image - starts)[:, None])
            .reshape(-1, *image.shape)
            .astype(np.float32)
        )
        actions = {
            "loop": lambda s=starts, n=steps: framework.loop(
                model, preprocess, image, s, target, n, precision
            ),
            "engine": lambda r=runs: (
                igw.integrated_gradients(
                    model,
                    image,
                    target=target,
                    steps=steps,
                    runs=r,
                    baseline="uniform",
                    seed=0,
                    preprocess=preprocess,
                    precision=precision,
                ).attributions
            ),
            "floor": lambda p=points: floor(p, target),
        }
        # Warm-up (tracing, compilation, autotuning), untimed; the loop's needs
        # only a few points.
        short_loop = actions["loop"]
        warm = {**actions, "loop": lambda loop=short_loop, s=starts: loop(s, 2)}
        for action in warm.values():
            framework.sync(action())
        # The engine's warm-up includes finding its batch (the tuner measures
        # a few sizes, at most a dozen calls), as tracing is part of the others'.
        tuner = tuner_for(backend_for(model, preprocess, precision), model, image, "gradients")
        for _ in range(12):
            if tuner.fixed or tuner.size >= runs * len(alphas) + 1:
                break
            framework.sync(actions["engine"]())
        times: dict[str, list[float]] = {method: [] for method in actions}
        peaks: dict[str, list[float | None]] = {method: [] for method in actions}
        for _ in range(repeats):
            for method, action in actions.items():
                with PeakMemory(framework) as peak:
                    times[method].append(_timed(action, framework))
                peaks[method].append(peak.mib)
        median = {method: statistics.median(values) for method, values in times.items()}
        rows.append(
            {
                "backend": framework.name,
                "device": framework.device(),
                "precision": precision,
                "model": name,
                "size": size,
                "baselines": runs,
                "points": runs * len(alphas),
                # The engine's batch as the tuner settled it (the memory
                # rule's limit bounds it), for at most the points there are.
                "batch": min(tuner.size, runs * len(alphas) + 1),
                "batch_limit": tuner.limit,
                **{f"{method}_s": median[method] for method in actions},
                **{f"{method}_all_s": times[method] for method in actions},
                **{
                    f"{method}_peak_mib": None if None in values else max(values)
                    for method, values in peaks.items()
                },
                "peak_is_running_max": framework.peak_is_running_max
                and framework.peak_bytes() is not None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--baselines", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    for row in measure(
        args.model,
        size=args.size,
        baselines=tuple(args.baselines),
        repeats=args.repeats,
        precision=args.precision,
        steps=args.steps,
    ):
        print("ROW " + json.dumps(row), flush=True)
    # GPU machines may have no TensorFlow: the JAX and PyTorch paths must not need it.
    if keras.backend.backend() != "tensorflow" and "tensorflow" in sys.modules:
        raise RuntimeError("the benchmark imported tensorflow on a non-TensorFlow backend")


if __name__ == "__main__":
    main()
