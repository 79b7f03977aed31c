"""The Gallery scrolled at a fixed speed over 10,000 images, in JupyterLab.

Builds a store of random images explained by a small CNN, opens a Gallery on
it in JupyterLab (headless Chromium, tests/browser.py), and scrolls its grid by
``--speed`` CSS pixels each animation frame for ``--frames`` frames, then a
plain scrolling box of the same size added to the same page the same way.
Prints, for both, the 95th-percentile frame time and its ratio, and for the
Gallery the visible cells still showing a placeholder 200 ms after the scroll
stops (the worst over the runs).

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.gallery_scroll --runs 3
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import ig_widget as igw
from tests.browser import (
    jupyter_server,
    launch_chromium,
    open_notebook,
    run_all_cells,
    write_notebook,
)
from tests.models import tiny_cnn

# Scrolls `el` by `speed` px a frame for `frames` frames; resolves with the
# frame intervals (ms) and, 200 ms after the last, the visible cells that
# still read "loading…" and those visible in all.
SCROLL = """async ([selector, speed, frames]) => {
    const el = document.querySelector(selector);
    const times = [];
    await new Promise((done) => {
        let left = frames;
        const step = (now) => {
            times.push(now);
            el.scrollTop += speed;
            if (--left > 0) requestAnimationFrame(step); else done();
        };
        requestAnimationFrame(step);
    });
    await new Promise((done) => setTimeout(done, 200));
    const view = el.getBoundingClientRect();
    const visible = [...el.querySelectorAll('.igg-cell:not([hidden])')].filter((cell) => {
        const box = cell.getBoundingClientRect();
        return box.bottom > view.top && box.top < view.bottom;
    });
    const requested = Number(el.closest('.igg')?.dataset.requested ?? 0);
    const placeholders = visible.filter(
        (cell) => cell.querySelector('.igg-details').textContent === 'loading…').length;
    return {
        intervals: times.slice(1).map((t, i) => t - times[i]),
        placeholders,
        visible: visible.length,
        requested,
    };
}"""

# A plain scrolling box the Gallery's size, rows of text, beside it on the page.
PLAIN_BOX = """() => {
    const grid = document.querySelector('.igg-scroller').getBoundingClientRect();
    const box = document.createElement('div');
    box.className = 'bench-plain';
    box.style.cssText = `overflow:auto;height:${grid.height}px;width:${grid.width}px`;
    const inner = document.createElement('div');
    for (let i = 0; i < 20000; i++) {
        const row = document.createElement('div');
        row.textContent = `row ${i}`;
        row.style.height = '40px';
        inner.append(row);
    }
    box.append(inner);
    document.querySelector('.igg').after(box);
}"""


# Enough to tell script, style, layout, paint, raster and GC apart in a trace.
TRACE_CATEGORIES = [
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "disabled-by-default-devtools.timeline.frame",
    "v8",
    "v8.execute",
    "blink",
    "cc",
    "gpu",
    "toplevel",
]


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """This benchmark's processes: each one's kind (Chromium's by --type) and CPU seconds so far."""
    seconds = {}
    for process in psutil.Process().children(recursive=True):
        try:
            command = " ".join(process.cmdline())
            times = process.cpu_times()
        except psutil.Error:
            continue
        if "ipykernel" in command:
            kind = "kernel"
        elif "jupyter" in command:
            kind = "Jupyter server"
        elif "--type=" in command:
            kind = "Chromium " + command.split("--type=")[1].split()[0]
        else:
            kind = "Chromium browser" if "chrom" in command else process.name()
        seconds[process.pid] = (kind, times.user + times.system)
    return seconds


def cpu_between(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> Counter[str]:
    """CPU seconds each kind of process used between two `cpu_by_process` (those in both)."""
    used: Counter[str] = Counter()
    for pid, (kind, seconds) in after.items():
        if pid in before:
            used[kind] += seconds - before[pid][1]
    return used


def scroll(
    browser: Any, page: Any, selector: str, args: argparse.Namespace, run: int, name: str
) -> dict[str, Any]:
    """Run SCROLL on `selector`, traced to TRACE.`name`.json on the first run if asked."""
    traced = args.trace is not None and run == 0
    if traced:
        path = args.trace.with_name(f"{args.trace.name}.{name}.json")
        browser.start_tracing(page=page, path=str(path), categories=TRACE_CATEGORIES)
    before = cpu_by_process()
    result: dict[str, Any] = page.evaluate(SCROLL, [selector, args.speed, args.frames])
    result["cpu"] = cpu_between(before, cpu_by_process())
    if traced:
        browser.stop_tracing()
    return result


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32, help="image side (px); thumbnails alike")
    parser.add_argument("--speed", type=int, default=120, help="CSS px scrolled per frame")
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument(
        "--trace",
        type=Path,
        help="write Chromium performance traces of the first run's two scrolls"
        " to TRACE.gallery.json and TRACE.plain.json (benchmarks/trace_frames.py reads them)",
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        rng = np.random.default_rng(0)
        store = Path(work) / "store"
        igw.explain_dataset(
            tiny_cnn(args.size, seed=2),
            rng.integers(0, 256, (args.count, args.size, args.size, 3)).astype(np.uint8),
            labels=rng.integers(0, 4, args.count),
            steps=2,
            chunk_size=256,
            store=store,
            progress=False,
        )
        with jupyter_server(Path(work)) as server, sync_playwright() as playwright:
            write_notebook(
                server.root / "gallery.ipynb",
                [f"import ig_widget as igw\nigw.Gallery(igw.open_dataset({str(store)!r}))"],
            )
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": args.width, "height": 1000})
            open_notebook(page, server, "gallery.ipynb")
            run_all_cells(page)
            page.locator(".igg-cell .igg-details:not(:text('loading…'))").first.wait_for(
                timeout=120_000
            )
            page.evaluate(PLAIN_BOX)
            gallery, plain, placeholders, requested = [], [], [], []
            cpu: dict[str, Counter[str]] = {"Gallery": Counter(), "plain box": Counter()}
            for run in range(args.runs):
                # Each run over images not shown before.
                start = run * 2 * args.speed * args.frames
                for selector in (".igg-scroller", ".bench-plain"):
                    page.locator(selector).evaluate(f"(el) => {{ el.scrollTop = {start}; }}")
                page.wait_for_timeout(1000)
                shown = scroll(browser, page, ".igg-scroller", args, run, "gallery")
                boxed = scroll(browser, page, ".bench-plain", args, run, "plain")
                cpu["Gallery"].update(shown["cpu"])
                cpu["plain box"].update(boxed["cpu"])
                gallery += shown["intervals"]
                plain += boxed["intervals"]
                placeholders.append(f"{shown['placeholders']} of {shown['visible']}")
                requested.append(shown["requested"])
            browser.close()
    print(f"{args.count} images of {args.size} px, {args.speed} px/frame, {args.runs} runs")
    print("| | p95 frame (ms) | median (ms) |")
    print("|---|---|---|")
    print(f"| Gallery | {p95(gallery):.1f} | {np.median(gallery):.1f} |")
    print(f"| plain box | {p95(plain):.1f} | {np.median(plain):.1f} |")
    print(f"p95 ratio: {p95(gallery) / p95(plain):.2f}")
    # At 60 Hz a frame is 16.7 ms: an interval past 25 ms missed at least one.
    late = [sum(interval > 25 for interval in times) for times in (gallery, plain)]
    print(f"frames that missed the display's refresh: Gallery {late[0]} of {len(gallery)}, "
          f"plain box {late[1]} of {len(plain)}")  # fmt: skip
    kinds = sorted(set(cpu["Gallery"]) | set(cpu["plain box"]), key=lambda k: -cpu["Gallery"][k])
    print("CPU seconds during the scrolls (all runs; includes the 200 ms after each):")
    print("| process | Gallery | plain box |\n|---|---|---|")
    for kind in kinds:
        print(f"| {kind} | {cpu['Gallery'][kind]:.2f} | {cpu['plain box'][kind]:.2f} |")
    print(f"thumbnails asked of the kernel so far, after each run: {requested}")
    print(f"placeholders visible 200 ms after the scroll stops: {', '.join(placeholders)}")


if __name__ == "__main__":
    main()
