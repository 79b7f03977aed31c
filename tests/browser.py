"""Shared helpers for the headless-browser tests (and the browser benchmark).

- ``launch_chromium``: Debian's Chromium driven by Playwright, headless;
- ``jupyter_lab``: a JupyterLab server from this venv on a free port, with a
  random token, a temporary root folder and its own settings, stopped on exit;
- ``canvas_pixels`` and ``measure_redraw_ms``: reading what the widget drew.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVER_START_TIMEOUT_S = 90

# Settings that keep JupyterLab from reaching the network or popping up
# notices over the notebook during a test.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def launch_chromium(playwright: Any) -> Any:
    """Start headless Chromium; fail with the install command if it is missing.

    Examples
    --------
    >>> with sync_playwright() as p:  # doctest: +SKIP
    ...     browser = launch_chromium(p)
    """
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing; install it with `make browser`")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it serves and the folder it serves."""

    base_url: str
    token: str
    root: Path

    def url(self, path: str) -> str:
        """The URL of ``path`` (e.g. ``lab/tree/x.ipynb``) with the token."""
        return f"{self.base_url}/{path}?token={self.token}"


def _wait_until_serving(server: LabServer, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited at start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(
        f"JupyterLab did not start in {SERVER_START_TIMEOUT_S} s:\n{log.read_text()}"
    )


@contextmanager
def jupyter_lab(workdir: Path) -> Iterator[LabServer]:
    """Run JupyterLab serving ``workdir / "root"``; everything else it writes stays in ``workdir``.

    The kernel imports ``ig_widget`` from this checkout (PYTHONPATH). The
    server and its kernels are stopped when the block ends.

    Examples
    --------
    >>> with jupyter_lab(tmp_path) as lab:  # doctest: +SKIP
    ...     page.goto(lab.url("lab/tree/demo.ipynb"))
    """
    root = workdir / "root"
    settings = workdir / "settings"
    root.mkdir(parents=True, exist_ok=True)
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    server = LabServer(f"http://127.0.0.1:{free_port()}", secrets.token_hex(16), root)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(workdir / "config"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
        "IPYTHONDIR": str(workdir / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    log = workdir / "jupyterlab.log"
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={server.base_url.rsplit(':', 1)[1]}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={server.token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    with log.open("w") as output:
        # A session of its own, so that stopping it also stops its kernels.
        process = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(server, process, log)
        yield server
    finally:
        _stop_session(process)


def _stop_session(process: subprocess.Popen) -> None:
    """Stop the server and every process of its session (its kernels)."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signal_number)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            continue
        # The server is gone; give its kernels a moment to follow, then make sure.
        time.sleep(0.5)


def write_notebook(path: Path, sources: list[str]) -> Path:
    """Write a Python 3 notebook whose code cells are ``sources``.

    Examples
    --------
    >>> write_notebook(tmp_path / "x.ipynb", ["1 + 1"])  # doctest: +SKIP
    """
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, path)
    return path


def sample_image(size: int) -> np.ndarray:
    """A float32 RGB test picture: colour ramps with a bright square, so maps have structure.

    Examples
    --------
    >>> sample_image(32).shape
    (32, 32, 3)
    """
    rows, cols = np.mgrid[0:size, 0:size] * (256 // size)
    image = np.stack([cols, rows, np.full_like(cols, 96)], axis=-1).astype(np.float32)
    image[size // 3 : 2 * size // 3, 3 * size // 8 : 3 * size // 4] = (250, 220, 40)
    return image


_READ_CANVAS = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    return [canvas.width, canvas.height, Array.from(data)];
}"""


def canvas_pixels(locator: Any) -> np.ndarray:
    """The RGB pixels (H, W, 3) of a canvas element, as drawn.

    Examples
    --------
    >>> canvas_pixels(page.locator(".igw-canvas-2")).shape  # doctest: +SKIP
    (299, 299, 3)
    """
    width, height, data = locator.evaluate(_READ_CANVAS)
    return np.asarray(data, np.uint8).reshape(height, width, 4)[:, :, :3]


def is_blank(pixels: np.ndarray) -> bool:
    """True if every pixel has the same colour (nothing was drawn, or a flat fill)."""
    return bool(np.all(pixels == pixels[:1, :1]))


_TIME_REDRAWS = """async ([repeats]) => {
    const slider = document.querySelector(".igw input.igw-clip-above");
    const times = [];
    for (let i = 0; i < repeats; i++) {
        slider.value = String(i % 2 === 0 ? 90 : 99.5);
        const start = performance.now();
        slider.dispatchEvent(new Event("input"));
        // The view draws in a microtask after the change; awaiting one
        // resolves after it, before the browser paints.
        await Promise.resolve();
        times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
}"""


def measure_redraw_ms(page: Any, repeats: int = 41) -> float:
    """Median time (ms) to redraw the Normal and Integrated gradients panels.

    Moves the clip-above slider of the widget on ``page`` back and forth and
    times each redraw (renderer and canvas upload) inside the page.

    Examples
    --------
    >>> page.goto(Path("ig.html").resolve().as_uri())  # doctest: +SKIP
    >>> measure_redraw_ms(page)  # doctest: +SKIP
    4.2
    """
    return float(page.evaluate(_TIME_REDRAWS, [repeats]))
