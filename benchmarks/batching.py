"""The one batching rule, measured: widget against engine, the tuned batch against a fixed one.

Each case runs in a fresh process (``benchmarks.run`` starts one per case), so
that its peak resident memory belongs to it alone:

- ``engine`` / ``widget``: the same computation (the bundled demo model, a
  96x96 image, ``steps=200``, ``runs=20`` uniform baselines: 4,020 points)
  through ``igw.integrated_gradients`` and through ``IGWidget.compute()``;
- ``auto`` / ``fixed64``: MobileNetV2 (weights=None) at 224x224, ``steps=200``
  (202 points), with the automatic batch (memory rule and tuner) and with
  ``batch_size=64``;
- ``many_runs``: ``runs=10000`` uniform baselines (``steps=1``, 20,001 points)
  on the demo model, against the 10000 x image bytes they would take at once.

After an untimed warm-up (tracing, and for ``auto`` the tuner settling on its
batch), each case times ``repeats`` runs and reports the median seconds and
the largest peak above the resident memory before the run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import ig_widget as igw
from ig_widget.backends import backend_for
from ig_widget.batching import tuner_for

from .speed import PeakMemory, _status_bytes

CASES = ("engine", "widget", "auto", "fixed64", "many_runs")


def _peak_above_start(action: Callable[[], Any]) -> tuple[float, float]:
    """Seconds and peak resident bytes above the start of one run of ``action``."""
    from .frameworks import active

    start = _status_bytes("VmRSS") or 0
    with PeakMemory(active()) as peak:
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
    assert peak.mib is not None
    return seconds, peak.mib * 2**20 - start


def _demo_case(case: str) -> tuple[Callable[[], Any], dict[str, Any]]:
    model = igw.demo.model()
    image = igw.demo.images()[0][0]
    if case == "many_runs":
        options: dict[str, Any] = {"steps": 1, "runs": 10_000, "baseline": "uniform"}
    else:
        options = {"steps": 200, "runs": 20, "baseline": "uniform"}
    info = {
        "model": "demo CNN",
        "size": image.shape[0],
        "points": options["runs"] * (options["steps"] + 1),
        "runs_times_image_mib": options["runs"] * image.size * 4 / 2**20,
    }
    if case == "widget":
        widget = igw.IGWidget(model, image, steps=4)
        for name, value in options.items():
            setattr(widget, name, value)
        return widget.compute, info
    return lambda: igw.integrated_gradients(model, image, **options), info


def _mobilenet_case(case: str) -> tuple[Callable[[], Any], dict[str, Any]]:
    import keras

    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    image = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    batch_size = 64 if case == "fixed64" else None
    info = {"model": "MobileNetV2", "size": 224, "points": 202}

    def compute() -> Any:
        return igw.integrated_gradients(
            model, image, steps=200, preprocess=preprocess, batch_size=batch_size
        )

    if case == "auto":
        tuner = tuner_for(backend_for(model, preprocess), model, image, "gradients")
        info["tuner"] = tuner
    return compute, info


def run(case: str, repeats: int) -> dict[str, Any]:
    """One ROW: median seconds and the largest peak above the start over ``repeats`` runs."""
    compute, info = _mobilenet_case(case) if case in ("auto", "fixed64") else _demo_case(case)
    tuner = info.pop("tuner", None)
    compute()  # traces, and starts the tuner
    for _ in range(10):
        if tuner is None or tuner.fixed:
            break
        compute()
    seconds, peaks = [], []
    for _ in range(repeats):
        elapsed, peak = _peak_above_start(compute)
        seconds.append(elapsed)
        peaks.append(peak)
    row = {
        "case": case,
        **info,
        "seconds": statistics.median(seconds),
        "all_seconds": seconds,
        "peak_mib": max(peaks) / 2**20,
    }
    if tuner is not None:
        row.update(batch=tuner.size, batch_limit=tuner.limit, batch_fixed=tuner.fixed)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("ROW " + json.dumps(run(args.case, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
