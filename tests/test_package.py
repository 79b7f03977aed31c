"""Package-level promises: light import, lazy exports, packaging metadata."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import ig_widget as igw

PACKAGE_MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(igw.__path__, prefix="ig_widget.")
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_import_does_not_load_the_widget_stack_or_a_framework():
    loaded = _modules_after("import ig_widget")
    assert not {"anywidget", "ipywidgets", "tensorflow", "torch", "jax"} & loaded


def test_engine_and_renderer_run_without_the_widget_stack():
    loaded = _modules_after(
        "import numpy as np, ig_widget as igw; "
        "m = lambda x: __import__('tensorflow').reshape(x, (-1, 3)); "
        "r = igw.integrated_gradients(m, np.ones((1, 1, 3)), steps=2); "
        "igw.render(np.ones((1, 1, 3)), r.attributions)"
    )
    assert "tensorflow" in loaded
    assert not {"anywidget", "ipywidgets"} & loaded


def test_lazy_exports_resolve_and_unknown_names_fail():
    assert callable(igw.render) and callable(igw.plot)
    assert set(igw.__all__) <= set(dir(igw))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        igw.nope  # noqa: B018


@pytest.mark.parametrize("name", PACKAGE_MODULES)
def test_docstring_examples_hold(name):
    # import_module, not attribute access: the package's function `render`
    # shadows the submodule of that name.
    module = importlib.import_module(name)
    failures, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
