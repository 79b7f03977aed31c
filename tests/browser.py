"""Shared helpers for the headless-browser tests (and the browser benchmark).

- ``launch_chromium``: Debian's Chromium driven by Playwright, headless;
- ``jupyter_server``: a JupyterLab or Notebook 7 server from this venv on a
  free port, with a random token, a temporary root folder and its own
  settings, stopped on exit; ``open_notebook`` and ``run_all_cells`` drive it
  the same way in both front ends;
- ``marimo_app``: a marimo notebook served as an app (``marimo run``), offline;
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
XDG_KINDS = ("CONFIG", "CACHE", "DATA", "STATE")

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
class FrontEnd:
    """How to start one Jupyter front end and where it opens a notebook."""

    name: str
    module: str  # run as ``python -m module``
    app: str  # the traitlets class that takes the settings options
    notebook_path: str  # URL path of a notebook, ``{name}`` replaced
    kernel_idle: str  # a Playwright selector that matches once the kernel is connected and idle
    extra_options: tuple[str, ...] = ()

    def options(self, settings: Path, workspaces: Path) -> list[str]:
        return [
            f"--{self.app}.user_settings_dir={settings}",
            f"--{self.app}.workspaces_dir={workspaces}",
            *self.extra_options,
        ]


JUPYTERLAB = FrontEnd(
    name="JupyterLab",
    module="jupyterlab",
    app="LabApp",
    notebook_path="lab/tree/{name}",
    # The status bar says "Idle" once the kernel is connected (the toolbar's
    # indicator already says idle while it is still initialising).
    kernel_idle=r"text=/\| Idle$/",
    extra_options=("--LabApp.extension_manager=readonly",),
)
NOTEBOOK7 = FrontEnd(
    name="Notebook 7",
    module="notebook",
    app="JupyterNotebookApp",
    notebook_path="notebooks/{name}",
    # No status bar; the toolbar's indicator goes "connecting" -> "idle".
    kernel_idle='.jp-Notebook-ExecutionIndicator[data-status="idle"]',
)
FRONT_ENDS = {"lab": JUPYTERLAB, "notebook": NOTEBOOK7}


@dataclass(frozen=True)
class JupyterServer:
    """A running Jupyter server: its front end, where it serves and the folder it serves."""

    front_end: FrontEnd
    base_url: str
    token: str
    root: Path

    def url(self, path: str) -> str:
        """The URL of ``path`` (e.g. ``api/status``) with the token."""
        return f"{self.base_url}/{path}?token={self.token}"

    def notebook_url(self, name: str) -> str:
        """The URL that opens notebook ``name`` (relative to ``root``) in this front end."""
        return self.url(self.front_end.notebook_path.format(name=name))


@contextmanager
def _serving(
    what: str, command: list[str], *, cwd: Path, env: dict[str, str], log: Path, ready_url: str
) -> Iterator[None]:
    """Run ``command`` until the block ends; enter once ``ready_url`` answers 200."""
    with log.open("w") as output:
        # A session of its own, so that stopping it also stops its kernels.
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited at start:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} did not start in {SERVER_START_TIMEOUT_S} s:\n{log.read_text()}"
                )
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield
    finally:
        _stop_session(process)


def _checkout_env(**extra: str) -> dict[str, str]:
    """This environment, with this checkout first on the kernel's import path."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


@contextmanager
def jupyter_server(workdir: Path, front_end: str = "lab") -> Iterator[JupyterServer]:
    """Run a Jupyter front end (``"lab"`` or ``"notebook"``) serving ``workdir / "root"``.

    Everything else the server writes (settings, workspaces, runtime files)
    stays in ``workdir``. The kernel imports ``ig_widget`` from this checkout
    (PYTHONPATH). The server and its kernels are stopped when the block ends.
    Open a notebook with ``open_notebook`` and run it with ``run_all_cells``.

    Examples
    --------
    >>> with jupyter_server(tmp_path, "notebook") as server:  # doctest: +SKIP
    ...     write_notebook(server.root / "demo.ipynb", ["1 + 1"])
    ...     open_notebook(page, server, "demo.ipynb")
    ...     run_all_cells(page)
    """
    spec = FRONT_ENDS[front_end]
    root = workdir / "root"
    settings = workdir / "settings"
    root.mkdir(parents=True, exist_ok=True)
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    server = JupyterServer(spec, f"http://127.0.0.1:{free_port()}", secrets.token_hex(16), root)
    env = _checkout_env(
        JUPYTER_CONFIG_DIR=str(workdir / "config"),
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        IPYTHONDIR=str(workdir / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
    )
    command = [
        sys.executable,
        "-m",
        spec.module,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={server.base_url.rsplit(':', 1)[1]}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.token={server.token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        *spec.options(settings, workdir / "workspaces"),
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = workdir / f"{front_end}.log"
    ready = server.url("api/status")
    with _serving(spec.name, command, cwd=root, env=env, log=log, ready_url=ready):
        yield server


@contextmanager
def marimo_app(workdir: Path, notebook: Path) -> Iterator[str]:
    """Serve a marimo notebook as an app (``marimo run``, headless); yields its URL.

    The notebook runs at once, in a kernel that imports this checkout. marimo's
    configuration, cache and state go to ``workdir`` (its XDG folders), and it
    does not look for updates, so the test stays offline and leaves no trace.

    Examples
    --------
    >>> with marimo_app(tmp_path, Path("notebooks/quickstart_marimo.py")) as url:  # doctest: +SKIP
    ...     page.goto(url)
    """
    port = free_port()
    env = _checkout_env(
        **{f"XDG_{kind}_HOME": str(workdir / kind.lower()) for kind in XDG_KINDS},
        MARIMO_SKIP_UPDATE_CHECK="1",
    )
    command = [sys.executable, "-m", "marimo", "run", str(notebook), "--headless"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-token"]
    url = f"http://127.0.0.1:{port}/"
    with _serving(
        "marimo", command, cwd=workdir, env=env, log=workdir / "marimo.log", ready_url=url
    ):
        yield url


def open_notebook(page: Any, server: JupyterServer, name: str, timeout_ms: int = 90_000) -> None:
    """Open notebook ``name`` on ``page`` and wait until its kernel is connected and idle.

    Accepts the front end's "Select Kernel" dialog when it asks. Both front
    ends can show "idle" before the page has connected to a kernel (a click
    on "Run All Cells" then does nothing), so this also waits for the server
    to see the page's connection to the notebook's kernel.

    Examples
    --------
    >>> open_notebook(page, server, "widget.ipynb")  # doctest: +SKIP
    """
    page.goto(server.notebook_url(name))
    idle = page.locator(server.front_end.kernel_idle)
    select_kernel = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    idle.or_(select_kernel).first.wait_for(timeout=timeout_ms)
    if select_kernel.count():
        select_kernel.click()
    deadline = time.monotonic() + timeout_ms / 1000
    while not _kernel_connected(server, name):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: no kernel connected in {timeout_ms} ms")
        time.sleep(0.25)
    idle.first.wait_for(timeout=timeout_ms)


def _kernel_connected(server: JupyterServer, name: str) -> bool:
    """Whether the kernel of notebook ``name`` has a client connected and is idle."""
    with urllib.request.urlopen(server.url("api/sessions"), timeout=5) as response:
        sessions = json.load(response)
    return any(
        session["path"] == name
        and session["kernel"]["connections"] > 0
        and session["kernel"]["execution_state"] == "idle"
        for session in sessions
    )


def run_all_cells(page: Any) -> None:
    """Run every cell of the open notebook from the Run menu (same in both front ends).

    Examples
    --------
    >>> run_all_cells(page)  # doctest: +SKIP
    """
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_text("Run All Cells", exact=True).click()


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


_TIME_REDRAWS = """async ([repeats, slider, positions]) => {
    const input = document.querySelector(`.igw input.igw-${slider}`);
    const times = [];
    for (let i = 0; i < repeats; i++) {
        input.value = String(positions[i % positions.length]);
        const start = performance.now();
        input.dispatchEvent(new Event("input"));
        // The view draws in a microtask after the change; awaiting one
        // resolves after it, before the browser paints.
        await Promise.resolve();
        times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
}"""


def measure_redraw_ms(
    page: Any,
    repeats: int = 41,
    slider: str = "clip-above",
    positions: tuple[float, ...] = (90.0, 99.5),
) -> float:
    """Median time (ms) to redraw the Normal and Integrated gradients panels.

    Moves the widget's ``slider`` (``"clip-above"`` or ``"clip-below"``) on
    ``page`` between ``positions`` and times each redraw (renderer, canvas
    upload, colour keys and descriptions) inside the page.

    Examples
    --------
    >>> page.goto(Path("ig.html").resolve().as_uri())  # doctest: +SKIP
    >>> measure_redraw_ms(page)  # doctest: +SKIP
    4.2
    """
    return float(page.evaluate(_TIME_REDRAWS, [repeats, slider, list(positions)]))


_LOW_CONTRAST = """(root) => {
    // Colours as Chromium writes them: rgb()/rgba() in 0..255, color(srgb ...) in 0..1.
    const parse = (text) => {
        let match = text.match(/^rgba?\\((.+)\\)$/);
        let scale = 1;
        if (!match) {
            match = text.match(/^color\\(srgb (.+)\\)$/);
            scale = 255;
        }
        if (!match) throw new Error(`unread colour ${text}`);
        const parts = match[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        const alpha = parts.length > 3 ? parts[3] : 1;
        return [parts[0] * scale, parts[1] * scale, parts[2] * scale, alpha];
    };
    const over = (top, bottom) => {
        const a = top[3];
        return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
    };
    const up = (node) => node.parentElement ?? node.parentNode?.host ?? null;
    const luminance = (c) => {
        const [r, g, b] = c.slice(0, 3).map((v) => {
            const s = v / 255;
            return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const canvas = () => {
        const scheme = getComputedStyle(document.documentElement).colorScheme;
        const page = parse(getComputedStyle(document.body).backgroundColor);
        if (page[3] === 1) return page;
        const html = parse(getComputedStyle(document.documentElement).backgroundColor);
        if (html[3] === 1) return html;
        return scheme.includes("dark") ? [18, 18, 18, 1] : [255, 255, 255, 1];
    };
    const background = (element) => {
        const layers = [];
        for (let node = element; node && node.nodeType === 1; node = up(node)) {
            const colour = parse(getComputedStyle(node).backgroundColor);
            if (colour[3] > 0) layers.push(colour);
            if (colour[3] === 1) break;
        }
        let result = layers.length && layers.at(-1)[3] === 1 ? layers.pop() : canvas();
        while (layers.length) result = over(layers.pop(), result);
        return result;
    };
    const opacity = (element) => {
        let value = 1;
        for (let node = element; node && node.nodeType === 1; node = up(node)) {
            value *= Number(getComputedStyle(node).opacity);
        }
        return value;
    };
    const check = (element, text) => {
        if (!element.checkVisibility() || element.closest(":disabled, option")) return null;
        const style = getComputedStyle(element);
        const svg = element instanceof SVGElement;
        const ink = parse(svg ? style.fill : style.color);
        ink[3] *= opacity(element);
        const back = background(svg ? element.closest("svg") ?? element : element);
        const fore = over(ink, back);
        const [l1, l2] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
        const ratio = (l1 + 0.05) / (l2 + 0.05);
        if (ratio >= 4.5) return null;
        return {
            text: text.slice(0, 40),
            ratio: Math.round(ratio * 100) / 100,
            colour: svg ? style.fill : style.color,
            background: `rgb(${back.slice(0, 3).map(Math.round)})`,
            element: `${element.tagName}.${element.getAttribute("class")}`,
        };
    };
    const found = [];
    let texts = 0;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.data.trim() === "") continue;
        texts += 1;
        const problem = check(node.parentElement, node.data);
        if (problem) found.push(problem);
    }
    // What a select or a number box shows is its value, not a text node.
    for (const control of root.querySelectorAll("select, input[type=number], input[type=text]")) {
        texts += 1;
        const problem = check(control, control.value);
        if (problem) found.push(problem);
    }
    return { texts, found };
}"""


def low_contrast_texts(locator: Any) -> tuple[int, list[dict[str, Any]]]:
    """Texts under ``locator`` whose contrast with what is behind them is below 4.5:1 (WCAG AA).

    Every visible text node (SVG text by its fill) and every select's and text or
    number box's shown value, blended over the backgrounds behind it and with its
    opacities; disabled controls are left out, as WCAG does. Returns how many texts
    were checked and each that fails, with its ratio and colours.

    Examples
    --------
    >>> checked, failing = low_contrast_texts(page.locator(".igw"))  # doctest: +SKIP
    """
    result = locator.evaluate(_LOW_CONTRAST)
    return result["texts"], result["found"]
