"""Clustering the stored maps against computing them: ``cluster_maps`` over ``explain_dataset``.

On the bundled demo model and ``--images`` of its generated 96x96 shapes
(steps=50, black baseline, the predicted class, chunks of 32, as the dataset
section), in one process and one run: the seconds of ``explain_dataset``
writing the store, then of ``igw.cluster_maps`` on that store (both passes
over the store included, and the spectral clustering of every class), and
their ratio. Also the largest rise of Python's traced allocations during the
clustering (``tracemalloc``, in a second, untimed call; NumPy's arrays
included), against the bytes of the store's attribution maps, to show that
the maps are streamed rather than held.

``python -m benchmarks.clusters --images 300``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc

import ig_widget as igw

from .dataset import CHUNK, STEPS, model_and_images


def measure(count: int) -> dict[str, float]:
    """Seconds of explain_dataset and of cluster_maps on the same ``count`` images."""
    model, images, labels = model_and_images("demo", count)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = igw.explain_dataset(
            model,
            images,
            labels=labels,
            steps=STEPS,
            baseline="black",
            chunk_size=CHUNK,
            store=f"{folder}/store",
            progress=False,
        )
        explain = time.perf_counter() - start
        start = time.perf_counter()
        clusters = igw.cluster_maps(result)
        cluster = time.perf_counter() - start
        # Again, traced (tracing slows allocations: not in the timing).
        tracemalloc.start()
        igw.cluster_maps(result)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "images": count,
        "explain_s": explain,
        "cluster_s": cluster,
        "ratio": cluster / explain,
        "clusters": len(clusters),
        "cluster_peak_mib": peak / 2**20,
        "maps_mib": images[0].size * 4 * count / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    args = parser.parse_args()
    row = measure(args.images)
    print(json.dumps(row))
    print(
        f"{row['images']} demo images: explain_dataset {row['explain_s']:.1f} s, cluster_maps "
        f"{row['cluster_s']:.2f} s ({100 * row['ratio']:.1f} %), {row['clusters']} clusters; "
        f"clustering's traced peak {row['cluster_peak_mib']:.1f} MiB for "
        f"{row['maps_mib']:.1f} MiB of maps"
    )


if __name__ == "__main__":
    main()
