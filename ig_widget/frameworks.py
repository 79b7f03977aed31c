"""The optional deep-learning frameworks, and one clear error when one is missing.

The core package (engine, renderer, widget, demo images) needs none of them:
a model brings its own framework. Each framework is an extra of the package
(``pip install 'ig-widget[torch]'``), and Keras comes with every one of them.
What needs which:

- a Keras model: Keras and the backend it runs on (TensorFlow, PyTorch or JAX);
- a ``torch.nn.Module``: PyTorch;
- any other callable: TensorFlow, which differentiates it;
- ``igw.demo.model()`` and ``igw.keras_application``: Keras with any backend;
- ``igw.demo.train``: Keras on TensorFlow.

It also keeps TensorFlow's start-up lines out of notebooks
(``quiet_tensorflow_startup``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    # Only for types: importlib.abc imports importlib.resources, tempfile and
    # shutil, a sixth of `import ig_widget` beyond NumPy. The import system
    # needs the methods, not the base classes.
    from importlib.abc import Loader

# The extra that installs each framework; Keras is in every extra, and the
# TensorFlow one is the default backend Keras looks for.
EXTRAS = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax", "keras": "tensorflow"}
NAMES = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX", "keras": "Keras"}


def install_command(extra: str) -> str:
    """The pip command that installs this package with ``extra``: every message that names one.

    Examples
    --------
    >>> install_command(EXTRAS["keras"])
    "pip install 'ig-widget[tensorflow]'"
    """
    return f"pip install 'ig-widget[{extra}]'"


def import_framework(framework: str, needed_by: str) -> ModuleType:
    """Import ``framework`` (tensorflow, torch, jax or keras), or say which extra installs it.

    Parameters
    ----------
    framework : str
        A key of ``EXTRAS``.
    needed_by : str
        What needs it, the start of the message (``"demo.model"``).

    Raises
    ------
    ModuleNotFoundError
        When the framework, or the backend Keras is set to, is not
        installed: one message naming the extra to install. Other import
        errors (a broken installation) pass through unchanged.

    Examples
    --------
    >>> import_framework("keras", "demo.model").__name__
    'keras'
    """
    try:
        return importlib.import_module(framework)
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in EXTRAS:
            raise
        if missing == "keras":
            message = (
                f"{needed_by} needs Keras; {install_command(EXTRAS['keras'])} "
                "(or the torch or jax extra, with KERAS_BACKEND set to that framework)"
            )
        elif missing != framework:
            message = (
                f"{needed_by} needs Keras' backend {NAMES[missing]}, which is not installed; "
                f"{install_command(EXTRAS[missing])}, or set KERAS_BACKEND to an installed "
                "backend before Keras is imported"
            )
        else:
            message = f"{needed_by} needs {NAMES[framework]}; {install_command(EXTRAS[framework])}"
        raise ModuleNotFoundError(message, name=missing) from None


# A line of Abseil/glog-style C++ logging at level I, W or E ("I0000 00:00:17.5
# 123 cudart_stub.cc:31] ..."), or Abseil's notice that it logs to stderr.
_STARTUP_LOG_LINE = re.compile(
    r"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)


@contextmanager
def c_log_lines_filtered() -> Iterator[None]:
    """Drop the C++ log lines (levels I, W, E) written to file descriptor 2 inside the block.

    Everything else written there passes through, after the block. Python's
    own ``sys.stderr`` is not touched.

    Examples
    --------
    >>> with c_log_lines_filtered():
    ...     _ = os.write(2, b"I0000 00:00:1.5 42 cudart_stub.cc:31] no GPU\\n")
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            kept = [line for line in lines if not _STARTUP_LOG_LINE.fullmatch(line.rstrip())]
            if kept:
                os.write(2, "".join(kept).encode())


class _FilteredLoader:
    """Runs a module's loader with C++ log lines filtered; the module keeps its own loader."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with c_log_lines_filtered():
            self.loader.exec_module(module)


class _QuietTensorFlowImport:
    """Finds ``tensorflow`` once, with the usual finders; it loads through ``_FilteredLoader``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            # The loader protocol (create_module, exec_module) without importlib.abc's base class.
            spec.loader = cast("Loader", _FilteredLoader(spec.loader))
        return spec


def quiet_tensorflow_startup() -> None:
    """Keep TensorFlow's start-up log lines out of notebooks, unless the user chose a log level.

    TensorFlow prints a dozen C++ log lines when it loads (CUDA probing, CPU
    features, oneDNN), which a notebook shows in red above the widget. Unless
    ``TF_CPP_MIN_LOG_LEVEL`` is set already, this sets it to ``"3"`` (errors
    are raised as Python exceptions anyway) and, for the lines that some of
    its libraries write before reading it, drops C++ log lines while
    TensorFlow is imported (by anyone, once). ``import ig_widget`` calls it;
    set ``TF_CPP_MIN_LOG_LEVEL=0`` to see every line.

    Examples
    --------
    >>> quiet_tensorflow_startup()
    >>> "TF_CPP_MIN_LOG_LEVEL" in os.environ
    True
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())
