"""Where the frames of a traced scroll went (a trace from ``gallery_scroll.py --trace``).

Reads a Chromium trace (JSON) and prints, for the renderer that ran the
scroll: the frame intervals (between ``FireAnimationFrame`` events), each
thread's busy time (wall and CPU: a wall time well over the CPU time is a
thread waiting for a core), and the main thread's self time by event name,
over the whole scroll and over the frames longer than ``--long`` ms.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.trace_frames /tmp/t.gallery.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

Event = dict[str, Any]


def load(path: Path) -> list[Event]:
    data = json.loads(path.read_text())
    events: list[Event] = data["traceEvents"] if isinstance(data, dict) else data
    return events


def thread_names(events: list[Event]) -> dict[tuple[int, int], str]:
    return {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }


def self_times(spans: list[Event]) -> tuple[Counter[str], Counter[str]]:
    """Self wall and CPU time (ms) by name of nested complete events on one thread."""
    wall: Counter[str] = Counter()
    cpu: Counter[str] = Counter()
    stack: list[Event] = []
    for span in sorted(spans, key=lambda e: (e["ts"], -e["dur"])):
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= span["ts"]:
            stack.pop()
        if stack:
            wall[stack[-1]["name"]] -= span["dur"] / 1000
            cpu[stack[-1]["name"]] -= span.get("tdur", 0) / 1000
        wall[span["name"]] += span["dur"] / 1000
        cpu[span["name"]] += span.get("tdur", 0) / 1000
        stack.append(span)
    return wall, cpu


def busy(spans: list[Event]) -> tuple[float, float]:
    """Wall and CPU time (ms) covered by the outermost events of one thread."""
    wall = cpu = 0.0
    end = -1.0
    for span in sorted(spans, key=lambda e: (e["ts"], -e["dur"])):
        if span["ts"] >= end:
            wall += span["dur"] / 1000
            cpu += span.get("tdur", 0) / 1000
            end = span["ts"] + span["dur"]
    return wall, cpu


def table(title: str, wall: Counter[str], cpu: Counter[str], top: int) -> None:
    print(f"\n{title}\n| event | self wall (ms) | self CPU (ms) |\n|---|---|---|")
    for name, ms in wall.most_common(top):
        print(f"| {name} | {ms:.1f} | {cpu[name]:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--long", type=float, default=40.0, help="a long frame (ms)")
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    events = load(args.trace)
    names = thread_names(events)
    frames = [e for e in events if e.get("name") == "FireAnimationFrame" and e.get("ph") == "X"]
    main_thread = Counter((e["pid"], e["tid"]) for e in frames).most_common(1)[0][0]
    # Callbacks of one frame run back to back: the first of each frame counts.
    times: list[float] = []
    for ts in sorted(e["ts"] for e in frames if (e["pid"], e["tid"]) == main_thread):
        if not times or ts - times[-1] > 4000:
            times.append(ts)
    start, end = times[0], times[-1]
    intervals = np.diff(times) / 1000
    print(f"{args.trace.name}: {len(times)} animation frames over {(end - start) / 1000:.0f} ms")
    print(
        f"frame interval p50 {np.median(intervals):.1f} ms, p95 {np.percentile(intervals, 95):.1f}"
        f" ms, {int((intervals > args.long).sum())} over {args.long:g} ms"
    )
    spans: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and "dur" in e and start <= e["ts"] <= end:
            spans[(e["pid"], e["tid"])].append(e)
    print("\nbusy threads during the scroll")
    print("| process/thread | wall (ms) | CPU (ms) |\n|---|---|---|")
    load_by_thread = {key: busy(items) for key, items in spans.items()}
    for key, (wall, cpu) in sorted(load_by_thread.items(), key=lambda kv: -kv[1][0])[:10]:
        mark = " (scroll's main)" if key == main_thread else ""
        print(f"| {key[0]}/{names.get(key, key[1])}{mark} | {wall:.0f} | {cpu:.0f} |")
    table("main thread, whole scroll", *self_times(spans[main_thread]), args.top)
    long_windows = [(a, b) for a, b in itertools.pairwise(times) if (b - a) / 1000 > args.long]
    in_long = [e for e in spans[main_thread] if any(a <= e["ts"] < b for a, b in long_windows)]
    title = f"main thread, in the {len(long_windows)} frames over {args.long:g} ms"
    table(title, *self_times(in_long), args.top)
    for (pid, tid), items in spans.items():
        if (pid, tid) != main_thread and pid == main_thread[0]:
            wall, cpu = self_times(items)
            if sum(wall.values()) > 50:
                table(f"{names.get((pid, tid), tid)} (same renderer)", wall, cpu, 8)


if __name__ == "__main__":
    main()
