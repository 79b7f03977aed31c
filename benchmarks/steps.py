"""Points needed for a completeness error of at most 1%: fixed grids against ``steps="auto"``.

On the demo model (``igw.demo.model()``) over 50 generated shape images, each
explained for its predicted class from a black baseline:

- trapezoid: the smallest number of intervals whose grid reaches
  ``delta <= tolerance`` on every image (one grid must serve all images, since
  a user cannot know in advance which image needs how many), points = n + 1;
- Gauss-Legendre: likewise, points = n;
- auto: ``steps="auto"`` per image, points used averaged over the images,
  with the engine's cap of 512 intervals and, for a like-for-like comparison
  with fixed grids that need more, with the cap raised to 4096.

The search climbs a ladder of grid sizes, then bisects between the last
failing and the first passing rung down to a step of about 3%, checking the
hardest images first so that a failing grid is usually rejected after one
image. (The error is not monotone in the number of points, so this finds a
small grid that works, not necessarily the smallest.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import numpy as np

import ig_widget as igw
from ig_widget import engine

TOLERANCE = 0.01
IMAGES = 50
# make_shapes seed for the images; the demo's training never used it.
SEED = 11
LADDER = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
RAISED_CAP = 4096


def _delta(model: Any, image: np.ndarray, method: str, steps: int) -> float:
    return igw.integrated_gradients(model, image, steps=steps, method=method).delta


def smallest_common_grid(
    model: Any, images: np.ndarray, method: str, tolerance: float = TOLERANCE
) -> tuple[int | None, float]:
    """Smallest ``steps`` whose ``method`` grid gives ``delta <= tolerance`` on all images.

    Returns the steps (None if no rung up to 4096 works) and the largest delta
    over the images at that grid.
    """
    hardest = list(range(len(images)))

    def passes(steps: int) -> bool:
        for position, index in enumerate(hardest):
            if _delta(model, images[index], method, steps) > tolerance:
                # Move the failing image to the front: it is likely to fail
                # the next grid too.
                hardest.insert(0, hardest.pop(position))
                return False
        return True

    failing = 0
    for rung in LADDER:
        if passes(rung):
            while rung - failing > max(1, rung // 32):
                middle = (failing + rung) // 2
                if passes(middle):
                    rung = middle
                else:
                    failing = middle
            return rung, max(_delta(model, image, method, rung) for image in images)
        failing = rung
    return None, float("nan")


def compare(
    model: Any, images: np.ndarray, tolerance: float = TOLERANCE
) -> dict[str, dict[str, Any]]:
    """Points per image for the three ways, as a dict of rows."""
    rows: dict[str, dict[str, Any]] = {}
    for method, extra in (("trapezoid", 1), ("gausslegendre", 0)):
        steps, worst = smallest_common_grid(model, images, method, tolerance)
        print(f"# {method}: steps={steps}, worst delta {worst:.4f}", file=sys.stderr, flush=True)
        rows[method] = {
            "steps": steps,
            "points": None if steps is None else steps + extra,
            "worst_delta": worst,
        }
    default_cap = engine.AUTO_MAX_INTERVALS
    for name, cap in (("auto", default_cap), ("auto_raised_cap", RAISED_CAP)):
        engine.AUTO_MAX_INTERVALS = cap
        try:
            auto = [
                igw.integrated_gradients(model, image, steps="auto", tolerance=tolerance)
                for image in images
            ]
        finally:
            engine.AUTO_MAX_INTERVALS = default_cap
        points = [res.points_used for res in auto]
        rows[name] = {
            "cap": cap,
            "points": statistics.mean(points),
            "points_min": min(points),
            "points_max": max(points),
            "worst_delta": max(res.delta for res in auto),
            "reached": int(sum(res.delta <= tolerance for res in auto)),
            "per_image": points,
        }
    return rows


def run(images: int = IMAGES) -> dict[str, Any]:
    """The comparison on the demo model, with what it ran on."""
    model = igw.demo.model()
    generated, _, _ = igw.demo.make_shapes(images, seed=SEED)
    return {"images": images, "tolerance": TOLERANCE, "rows": compare(model, generated)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=IMAGES)
    args = parser.parse_args(argv)
    print("ROW " + json.dumps(run(args.images)), flush=True)


if __name__ == "__main__":
    main()
