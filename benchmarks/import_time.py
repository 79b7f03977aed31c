"""How long ``import ig_widget`` takes, against ``import numpy`` (its floor).

``python -m benchmarks.import_time [--repeats N]``: each import runs in a fresh
interpreter (so nothing is cached in ``sys.modules``), interleaved with the
floor so that a change in machine load hits both; prints a Markdown table of
medians and the heavy modules the import loaded. Both read compiled bytecode,
as an installed package does: a warm-up import fills a bytecode cache in a
temporary folder (``PYTHONPYCACHEPREFIX``), even where the environment sets
``PYTHONDONTWRITEBYTECODE``, which would time the compilation of every
module of a checkout instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "matplotlib", "PIL", "anywidget", "ipywidgets", "keras", "tensorflow")
HEAVY += ("torch", "jax")

_TIMED = """\
import json, sys, time
start = time.perf_counter()
import {module}
seconds = time.perf_counter() - start
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
print(json.dumps({{"seconds": seconds, "heavy": heavy}}))
"""


def importing_environment(pycache: str) -> dict[str, str]:
    """Environment variables for an import of this checkout that reads bytecode from ``pycache``.

    Examples
    --------
    >>> importing_environment("/tmp/cache")["PYTHONPYCACHEPREFIX"]
    '/tmp/cache'
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": pycache}


def time_import(module: str, env: dict[str, str]) -> dict:
    """Import ``module`` in a fresh interpreter with ``env``: seconds, heavy modules loaded.

    Examples
    --------
    >>> time_import("json", importing_environment("/tmp/cache"))["heavy"]  # doctest: +SKIP
    []
    """
    code = _TIMED.format(module=module, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"numpy": [], "ig_widget": []}
    heavy: list[str] = []
    with tempfile.TemporaryDirectory() as pycache:
        env = importing_environment(pycache)
        for module in runs:
            time_import(module, env)  # compiles into the cache
        for _ in range(args.repeats):
            for module, seconds in runs.items():
                row = time_import(module, env)
                seconds.append(row["seconds"])
                if module == "ig_widget":
                    heavy = row["heavy"]
    numpy_s = statistics.median(runs["numpy"])
    package_s = statistics.median(runs["ig_widget"])
    print(f"| import | median s ({args.repeats} runs) | heavy modules loaded |")
    print("|---|---|---|")
    print(f"| `numpy` (floor) | {numpy_s:.3f} | |")
    print(f"| `ig_widget` | {package_s:.3f} | {', '.join(heavy) or 'none'} |")
    print(f"| `ig_widget` beyond numpy | {package_s - numpy_s:.3f} | |")


if __name__ == "__main__":
    main()
