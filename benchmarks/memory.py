"""``batch_size=None`` on a large image: a 1024x1024 image through Xception (weights=None).

Runs the engine with ``batch_size=1``, then with the automatic batch, on a few
path points (after an untimed warm-up of both), and reports the batch the
memory rule chose, the process's peak resident memory and the seconds per
point of each. Run in a fresh process (``python -m benchmarks.memory``) so
that the peak belongs to this work alone; ``benchmarks.run`` does that.
"""

from __future__ import annotations

import json
import time
from typing import Any

import keras
import numpy as np

import ig_widget as igw
from ig_widget.backends import backend_for
from ig_widget.batching import MEMORY_SHARE, activation_values, tuner_for

from .frameworks import active
from .speed import PeakMemory

SIZE = 1024
# Intervals: steps + 1 path points, the last of them the image's own point.
STEPS = 7
# The estimate before this rule: 12 bytes per activation value.
OLD_BYTES_PER_VALUE = 12


def run(size: int = SIZE, steps: int = STEPS) -> dict[str, Any]:
    """Chosen batch, peak memory and seconds per point, batch 1 against the automatic batch."""
    framework = active()
    model = keras.applications.Xception(weights=None, input_shape=(size, size, 3))
    preprocess = keras.applications.xception.preprocess_input
    image = np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)
    backend = backend_for(model, preprocess)
    free = backend.free_memory_bytes()
    values = activation_values(model, image)
    row: dict[str, Any] = {
        "backend": framework.name,
        "size": size,
        "free_gib": None if free is None else free / 2**30,
        "activation_values_m": values / 1e6,
        # The memory rule's limit, which the engine keeps for this shape.
        "batch": tuner_for(backend, model, image, "gradients").limit,
        "old_rule_batch": None
        if free is None
        else max(1, int(free * MEMORY_SHARE // (OLD_BYTES_PER_VALUE * values))),
    }
    points = steps + 1
    # Warm-up outside the timings: the first predict runs eagerly and the
    # second is traced, and each batch shape is compiled once (JAX compiles
    # per shape; steps=1 gives 2 points, the automatic batch's size here).
    igw.gradients(model, image, preprocess=preprocess)
    for batch_size in (1, None):
        igw.integrated_gradients(
            model, image, steps=1, preprocess=preprocess, batch_size=batch_size
        )
    # Batch 1 before the larger automatic batch, so that each peak is measured
    # on top of less.
    for label, batch_size in (("one", 1), ("auto", None)):
        with PeakMemory(framework) as peak:
            started = time.perf_counter()
            igw.integrated_gradients(
                model, image, steps=steps, preprocess=preprocess, batch_size=batch_size
            )
            row[f"{label}_s_per_point"] = (time.perf_counter() - started) / points
        row[f"{label}_peak_gib"] = None if peak.mib is None else peak.mib / 1024
    return row


if __name__ == "__main__":
    print("ROW " + json.dumps(run()), flush=True)
