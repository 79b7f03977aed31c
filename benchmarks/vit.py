"""Integrated gradients on the demo ViT against the demo CNN, with their FLOPs.

Both bundled demo models (``igw.demo.model("cnn")`` and ``igw.demo.model("vit")``)
take the same 96 x 96 images; the ViT was sized to about the CNN's FLOPs.
FLOPs are XLA's count of one forward pass on one image (``cost_analysis``
of the compiled JAX program, in a child process with Keras on JAX: it counts
convolutions, matrix products and the attention's einsums alike). The IG
runs (``steps``, the same batch size for both) are interleaved (CNN, ViT,
CNN, ...) after an untimed warm-up of each, on the TensorFlow backend; the
table gives medians and the ratio of the fastest runs.

Run: ``python -m benchmarks.vit [--steps 50] [--repeats 5] [--batch 51]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

FLOPS_CHILD = """
import json
import jax
import jax.numpy as jnp
import ig_widget as igw

counts = {}
for name in ("cnn", "vit"):
    model = igw.demo.model(name)
    compiled = jax.jit(lambda x: model(x)).lower(jnp.zeros((1, 96, 96, 3), jnp.float32)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    counts[name] = float(cost["flops"])
print(json.dumps(counts))
"""


def forward_flops() -> dict[str, float]:
    """XLA's FLOPs of one forward pass on one image, per demo model."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", FLOPS_CHILD], env=env, capture_output=True, text=True, check=True
    )
    counts: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def time_ig(steps: int, repeats: int, batch: int) -> dict[str, list[float]]:
    """Seconds per IG run on each demo model, interleaved after a warm-up."""
    import ig_widget as igw

    images, _ = igw.demo.images()
    image = images[0]
    models = {name: igw.demo.model(name) for name in ("cnn", "vit")}

    def run(name: str) -> float:
        started = time.perf_counter()
        igw.integrated_gradients(models[name], image, steps=steps, batch_size=batch)
        return time.perf_counter() - started

    for name in models:
        run(name)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name in models:
            seconds[name].append(run(name))
    return seconds


def table(flops: dict[str, float], seconds: dict[str, list[float]], steps: int) -> str:
    """The Markdown table of one run."""
    fastest = {name: min(runs) for name, runs in seconds.items()}
    rows = [
        f"| model | forward GFLOPs (1 image) | IG, {steps + 1} points: median s | fastest s |",
        "|---|---|---|---|",
    ]
    for name in ("cnn", "vit"):
        rows.append(
            f"| {name} | {flops[name] / 1e9:.4f} | {statistics.median(seconds[name]):.3f} "
            f"| {fastest[name]:.3f} |"
        )
    rows.append(
        f"| vit / cnn | {flops['vit'] / flops['cnn']:.2f} | "
        f"{statistics.median(seconds['vit']) / statistics.median(seconds['cnn']):.2f} "
        f"| {fastest['vit'] / fastest['cnn']:.2f} |"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=51)
    args = parser.parse_args(argv)
    flops = forward_flops()
    seconds = time_ig(args.steps, args.repeats, args.batch)
    print(table(flops, seconds, args.steps))
    return {"flops": flops, "seconds": seconds, "load": os.getloadavg(), "cpus": os.cpu_count()}


if __name__ == "__main__":
    summary = main()
    print(f"load average {np.round(summary['load'], 1).tolist()} on {summary['cpus']} CPUs")
