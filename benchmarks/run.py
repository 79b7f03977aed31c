"""The benchmark table: ``python -m benchmarks.run`` (``make bench``).

Sections, each printed as a Markdown table:

- speed: loop / engine / floor seconds, ratios and peak memory for a small CNN
  (128x128), MobileNetV2 (224x224) and Xception (299x299), weights=None,
  51 points with 1 and 2 uniform baselines (``benchmarks.speed``);
- memory: the automatic batch for a 1024x1024 image through Xception
  (``benchmarks.memory``);
- batching: the widget against the engine on one computation, the tuned batch
  against a fixed 64 on MobileNetV2, 10,000 uniform baselines
  (``benchmarks.batching``);
- steps: points for ``delta <= 1%`` on the demo model, fixed grids against
  ``steps="auto"`` (``benchmarks.steps``);
- render: ``igw.render`` and the browser redraw (``benchmarks.bench_render``);
- methods: each attribution method and the insertion/deletion curves against
  PAIR saliency (TensorFlow), Captum and Quantus (PyTorch) on MobileNetV2
  (``benchmarks.methods``);
- dataset: ``explain_dataset`` against the per-image loop, the floor and Ray,
  and its peak memory at 1,000 and 10,000 streamed images
  (``benchmarks.dataset``).

Every measurement runs in its own process: Keras fixes its backend at import
(``--backends tensorflow jax torch`` runs each in turn) and peak memory must
belong to one measurement. ``--quick`` runs a short version (small sizes, one
repeat, 10 images, no 1024x1024 run); ``--cpu`` hides any GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Repeats per model: enough for a stable median where a run is cheap.
REPEATS = {"small_cnn": 9, "mobilenetv2": 5, "xception": 3}
QUICK_SIZES = {"small_cnn": 64, "mobilenetv2": 96, "xception": 71}
SECTIONS = ("speed", "memory", "batching", "steps", "render", "methods", "dataset")
METHODS = ("loop", "engine", "floor")


def _worker(module: str, args: list[str], backend: str, cpu: bool) -> list[dict[str, Any]]:
    """Run ``python -m module args`` with ``KERAS_BACKEND=backend``; return its ROW lines."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT)}
    if cpu:
        env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
    command = [sys.executable, "-m", module, *args]
    print(f"# KERAS_BACKEND={backend} {' '.join(command[1:])}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {args} failed:\n{done.stderr[-4000:]}")
    rows = [json.loads(line[4:]) for line in done.stdout.splitlines() if line.startswith("ROW ")]
    for row in rows:
        print(f"# {json.dumps(row)}", file=sys.stderr, flush=True)
    return rows


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _mib(value: float | None, running_max: bool = False) -> str:
    if value is None:
        return "-"
    return f"≤ {value:,.0f}" if running_max else f"{value:,.0f}"


def _best(row: dict[str, Any], slow: str, fast: str) -> float:
    """Ratio of the fastest repeats: less sensitive to other programs on a shared machine."""
    return min(row[f"{slow}_all_s"]) / min(row[f"{fast}_all_s"])


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table with ``header`` cells over ``rows`` of cells."""
    lines = ["| " + " | ".join(str(cell) for cell in line) + " |" for line in [header, *rows]]
    lines.insert(1, "|" + "---|" * len(header))
    return "\n".join(lines)


def speed_table(rows: list[dict[str, Any]]) -> str:
    header = ["backend", "precision", "device", "model", "size", "baselines", "points", "batch"]
    header += [f"{m} s" for m in METHODS]
    header += ["engine/floor (best of)", "loop/engine (best of)", "peak MiB loop / engine / floor"]
    return markdown_table(
        header,
        [
            [
                *(r[key] for key in ("backend", "precision", "device", "model", "size")),
                *(r[key] for key in ("baselines", "points", "batch")),
                *(_seconds(r[f"{m}_s"]) for m in METHODS),
                f"{r['engine_s'] / r['floor_s']:.2f} ({_best(r, 'engine', 'floor'):.2f})",
                f"{r['loop_s'] / r['engine_s']:.1f} ({_best(r, 'loop', 'engine'):.1f})",
                " / ".join(_mib(r[f"{m}_peak_mib"], r["peak_is_running_max"]) for m in METHODS),
            ]
            for r in rows
        ],
    )


def memory_table(rows: list[dict[str, Any]]) -> str:
    header = ["backend", "image", "free GiB", "activations (M values)", "batch (rule)"]
    header += ["batch (old rule)", "s/point, batch 1", "s/point, rule"]
    header += ["peak GiB, batch 1", "peak GiB, rule"]
    return markdown_table(
        header,
        [
            [
                r["backend"],
                f"{r['size']}x{r['size']}",
                "-" if r["free_gib"] is None else f"{r['free_gib']:.1f}",
                f"{r['activation_values_m']:.0f}",
                r["batch"],
                r["old_rule_batch"],
                f"{r['one_s_per_point']:.1f}",
                f"{r['auto_s_per_point']:.1f}",
                f"{r['one_peak_gib']:.2f}",
                f"{r['auto_peak_gib']:.2f}",
            ]
            for r in rows
        ],
    )


def batching_table(rows: list[dict[str, Any]]) -> str:
    header = ["case", "model", "size", "points", "batch (tuned / limit)", "seconds", "peak MiB"]
    return markdown_table(
        header,
        [
            [
                r["case"],
                r["model"],
                f"{r['size']}x{r['size']}",
                f"{r['points']:,}",
                f"{r['batch']} / {r['batch_limit']}" if "batch" in r else "-",
                _seconds(r["seconds"]),
                f"{r['peak_mib']:,.0f}",
            ]
            for r in rows
        ],
    )


def steps_table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    cells = [
        [
            f"{method}, one grid for all images",
            rows[method]["points"],
            f"steps={rows[method]['steps']}, worst delta {rows[method]['worst_delta']:.4f}",
        ]
        for method in ("trapezoid", "gausslegendre")
    ]
    fixed = rows["trapezoid"]["points"]
    for name in ("auto", "auto_raised_cap"):
        auto = rows[name]
        ratio = "" if not fixed else f"; {auto['points'] / fixed:.2f} of the fixed trapezoid grid"
        cells.append(
            [
                f"auto, cap {auto['cap']} intervals, per image (mean)",
                f"{auto['points']:.1f}",
                f"min {auto['points_min']}, max {auto['points_max']}, "
                f"{auto['reached']}/{result['images']} reached the tolerance, "
                f"worst delta {auto['worst_delta']:.4f}{ratio}",
            ]
        )
    title = f"Demo model, {result['images']} images, tolerance {result['tolerance']:.0%}:"
    return title + "\n\n" + markdown_table(["rule", "points", "notes"], cells)


def dataset_tables(quick: bool, cpu: bool) -> str:
    """explain_dataset against the per-image loop, the floor and Ray; peak memory in N."""
    runs = [("demo", "64"), ("small_cnn", "128"), ("mobilenet_v2", "8")]
    rows = [
        _worker(
            "benchmarks.dataset",
            ["speed", "--model", name, "--images", "16" if quick else count, "--ray-workers", "2"],
            "tensorflow",
            cpu,
        )[0]
        for name, count in runs
    ]

    def ratio(row: dict[str, Any], name: str) -> str:
        if f"{name} cpu" not in row:
            return "-"
        return f"{row[f'{name} cpu']['median']:.2f} ({row[f'{name} wall']['median']:.2f})"

    speed = markdown_table(
        [
            *("model", "size", "images x rounds", "local/loop", "local/floor"),
            *("loop/floor per image", "ray/local", "tuner", "floor batch", "load average"),
        ],
        [
            [
                r["model"],
                r["size"],
                f"{r['images']} x {r['rounds']}",
                ratio(r, "local/loop"),
                ratio(r, "local/floor"),
                ratio(r, "loop/floor_per_image"),
                ratio(r, "ray/local"),
                ", ".join(str(t[0]) if t else "-" for t in r["tuner"]),
                ", ".join(map(str, r["floor_batch"])),
                f"{r['load_average_start']:.1f} / {r['load_average_end']:.1f}",
            ]
            for r in rows
        ],
    )
    speed = "CPU-time ratios, median of the rounds (wall-time ratio in brackets):\n\n" + speed
    counts = ("64", "256") if quick else ("1000", "10000")
    memory = [
        _worker("benchmarks.dataset", ["memory", "--images", n], "tensorflow", cpu)[0]
        for n in counts
    ]
    peaks = markdown_table(
        ["images (streamed)", "peak MiB", "seconds"],
        [[f"{r['images']:,}", f"{r['peak_mib']:,.0f}", f"{r['seconds']:.0f}"] for r in memory],
    )
    return speed + "\n\n" + peaks


def render_table() -> str:
    try:
        from benchmarks import bench_render
    except ImportError as exc:
        return f"(renderer benchmark not available: {exc})"
    try:
        rows = bench_render.run()
    except Exception as exc:  # a missing browser or bundler must not cost the other sections
        return f"(renderer benchmark failed: {type(exc).__name__}: {exc})"
    return markdown_table(
        ["display", "ms", "notes"],
        [[row["name"], f"{row['milliseconds']:.2f}", row["notes"]] for row in rows],
    )


def methods_table(rows: list[dict[str, Any]]) -> str:
    header = ["method", "peer", "backend", "model", "size", "batch", "evaluations"]
    header += ["ours s", "peer s", "ours/peer (best of)"]
    return markdown_table(
        header,
        [
            [
                *(r[key] for key in ("method", "peer", "backend", "model", "size", "batch")),
                r["evaluations"],
                _seconds(r["ours_s"]),
                _seconds(r["peer_s"]),
                f"{r['ours_s'] / r['peer_s']:.2f} ({_best(r, 'ours', 'peer'):.2f})",
            ]
            for r in rows
        ],
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.1f} at the start"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ig-widget benchmark table")
    parser.add_argument("--quick", action="store_true", help="a short run: small sizes, 1 repeat")
    parser.add_argument("--cpu", action="store_true", help="hide GPUs from the measurements")
    parser.add_argument("--backends", nargs="+", default=["tensorflow"])
    parser.add_argument("--precisions", nargs="+", default=["float32"])
    parser.add_argument("--models", nargs="+", default=list(REPEATS))
    parser.add_argument("--size", type=int, help="image size for every model")
    parser.add_argument("--repeats", type=int, help="repeats per measurement")
    parser.add_argument("--baselines", nargs="+", default=["1", "2"], help="uniform baselines")
    parser.add_argument("--steps", type=int, help="intervals per path (default 50)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--output", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)

    parts: list[str] = []

    def emit(part: str) -> None:
        # Each section is printed (and written) as soon as it is measured, so a
        # long run that fails late still leaves what it measured.
        parts.append(part)
        print(part + "\n", flush=True)
        if args.output:
            args.output.write_text("\n\n".join(parts) + "\n")

    emit(
        f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {machine()}"
        + (" (--quick)" if args.quick else "")
    )
    failures: list[str] = []
    if "speed" in args.sections:
        rows = []
        for backend in args.backends:
            for precision in args.precisions:
                for model in args.models:
                    size = args.size or (QUICK_SIZES[model] if args.quick else None)
                    repeats = args.repeats or (1 if args.quick else REPEATS[model])
                    options = ["--model", model, "--precision", precision]
                    options += ["--baselines", *args.baselines]
                    options += ["--repeats", str(repeats)]
                    options += ["--size", str(size)] if size else []
                    options += ["--steps", str(args.steps)] if args.steps else []
                    try:
                        rows += _worker("benchmarks.speed", options, backend, args.cpu)
                    except RuntimeError as exc:
                        # One failed configuration (out of memory, say) keeps the others.
                        reason = str(exc).strip().splitlines()[-1]
                        failures.append(f"- {backend} {precision} {model}: {reason}")
                        print(exc, file=sys.stderr, flush=True)
        emit("\n".join([speed_table(rows), *(["", "Failed:", *failures] if failures else [])]))
    if "memory" in args.sections and not args.quick:
        emit(memory_table(_worker("benchmarks.memory", [], args.backends[0], args.cpu)))
    if "batching" in args.sections and not args.quick:
        rows = []
        for case in ("engine", "widget", "auto", "fixed64", "many_runs"):
            rows += _worker("benchmarks.batching", ["--case", case], args.backends[0], args.cpu)
        emit(batching_table(rows))
    if "steps" in args.sections:
        images = ["--images", "10"] if args.quick else []
        emit(steps_table(_worker("benchmarks.steps", images, args.backends[0], args.cpu)[0]))
    if "render" in args.sections:
        emit(render_table())
    if "methods" in args.sections:
        model = "small_cnn" if args.quick else "mobilenetv2"
        options = ["--model", model, "--repeats", str(args.repeats or (1 if args.quick else 3))]
        options += ["--size", str(args.size or 64)] if args.quick or args.size else []
        rows = []
        for backend in ("tensorflow", "torch"):
            rows += _worker("benchmarks.methods", options, backend, args.cpu)
        emit(methods_table(rows))
    if "dataset" in args.sections:
        emit(dataset_tables(args.quick, args.cpu))
    if failures:
        raise SystemExit(f"{len(failures)} speed configuration(s) failed; see above")


if __name__ == "__main__":
    main()
