"""Package-level promises: light import, lazy exports, packaging metadata."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import tomllib
from itertools import chain
from pathlib import Path

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.frameworks import EXTRAS, c_log_lines_filtered

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# Tools for developing and testing the package; no user needs them.
DEV_TOOLS = {"pytest", "ruff", "mypy", "build", "jupyterlab", "notebook", "playwright"}


def requirement_name(requirement: str) -> str:
    """The distribution a requirement names: ``"keras>=3.0"`` -> ``"keras"``."""
    return re.split(r"[<>=!~\[; ]", requirement)[0]


PACKAGE_MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(igw.__path__, prefix="ig_widget.")
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, **env},
    )


def _modules_after(code: str) -> set[str]:
    out = _run(f"import sys; {code}; print(' '.join(sys.modules))")
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_import_does_not_load_the_widget_stack_or_a_framework():
    loaded = _modules_after("import ig_widget")
    assert not {"anywidget", "ipywidgets", "tensorflow", "torch", "jax"} & loaded


def test_import_does_not_load_scipy_or_matplotlib():
    # scipy alone took 0.39 s of 0.6 s; it loads when a picture needs it.
    loaded = _modules_after("import ig_widget")
    assert not {"scipy", "matplotlib", "PIL"} & loaded
    assert "scipy" in _modules_after(
        "import numpy as np, ig_widget as igw; "
        "igw.render(np.ones((4, 4, 3)), np.ones((4, 4, 3)), outlines=True)"
    )


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


def test_a_plain_callable_without_tensorflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # import tensorflow now fails
    expected = "model: differentiating a plain callable needs TensorFlow; " + (
        "pip install 'ig-widget[tensorflow]'"
    )
    with pytest.raises(ModuleNotFoundError, match=re.escape(expected)) as caught:
        igw.integrated_gradients(lambda batch: batch, np.ones((2, 2, 3)))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_the_demo_model_without_keras_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ModuleNotFoundError, match=r"^demo.model needs Keras; pip install 'ig-w"):
        igw.demo._load.__wrapped__("cnn")  # past the cache of loaded models


def test_keras_without_its_backend_names_the_backend_and_its_extra():
    out = _run(
        "import sys; sys.modules['jax'] = None\n"
        "from ig_widget.frameworks import import_framework\n"
        "import_framework('keras', 'keras_application')",
        KERAS_BACKEND="jax",
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: keras_application needs Keras' backend JAX, which is not "
        "installed; pip install 'ig-widget[jax]', or set KERAS_BACKEND to an installed "
        "backend before Keras is imported"
    )


def test_a_broken_framework_installation_is_reported_as_it_is(tmp_path):
    (tmp_path / "torch.py").write_text("import a_library_torch_lost\n")
    out = _run(
        "from ig_widget.frameworks import import_framework\nimport_framework('torch', 'model')",
        PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]),
    )
    assert out.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: No module named 'a_library_torch_lost'"
    )


def test_the_core_needs_no_framework_and_each_extra_brings_one():
    project = PYPROJECT["project"]
    frameworks = {"tensorflow", "torch", "jax", "keras"}
    core = {requirement_name(dep) for dep in project["dependencies"]}
    assert not core & frameworks
    extras = project["optional-dependencies"]
    for framework in ("tensorflow", "torch", "jax"):
        names = {requirement_name(dep) for dep in extras[framework]}
        assert names == {framework, "keras"}
    # No exact pin is published (the dev group may pin what CI installs).
    assert not any("==" in dep for deps in extras.values() for dep in deps)
    # The extras the missing-framework errors name exist.
    assert set(EXTRAS.values()) <= set(extras)


def test_dev_tools_are_a_dependency_group_not_a_published_extra():
    project = PYPROJECT["project"]
    assert DEV_TOOLS <= {requirement_name(dep) for dep in PYPROJECT["dependency-groups"]["dev"]}
    published = [*project["dependencies"], *chain(*project["optional-dependencies"].values())]
    assert not DEV_TOOLS & {requirement_name(dep) for dep in published}
    assert "dev" not in project["optional-dependencies"]


def test_the_all_extra_names_every_other_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["all"] == [f"ig-widget[{','.join(name for name in extras if name != 'all')}]"]


def test_the_version_is_written_once():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "ig_widget/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+|(a|b|rc)\d+)?", igw.__version__)
    assert "version" not in json.loads((REPO / "package.json").read_text())


GLOG_LINE = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ", re.MULTILINE)


def test_c_log_lines_are_dropped_and_other_output_is_kept(capfd):
    with c_log_lines_filtered():
        os.write(2, b"I0000 00:00:1796002817.758215    2561 cudart_stub.cc:31] no CUDA driver\n")
        os.write(2, b"E0000 00:00:1796002644.372685     697 cuda_platform.cc:52] no cuInit\n")
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are ")
        os.write(2, b"written to STDERR\nsomething else\n")
    assert capfd.readouterr().err == "something else\n"


@pytest.mark.slow
def test_tensorflow_starts_quietly_unless_a_log_level_is_chosen():
    code = "import ig_widget, tensorflow"
    unset = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    quiet, chosen = (
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**unset, "PYTHONPATH": path, **level},
        )
        for level in ({}, {"TF_CPP_MIN_LOG_LEVEL": "0"})
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    # With a level chosen, TensorFlow logs as it always does (here: CUDA and CPU probing).
    assert chosen.returncode == 0 and GLOG_LINE.search(chosen.stderr)


def test_the_lowest_versions_run_on_the_lowest_python_allowed():
    makefile = (REPO / "Makefile").read_text()
    lowest = re.search(r"^LOWEST_PYTHON := (\S+)$", makefile, re.M).group(1)
    assert PYPROJECT["project"]["requires-python"] == f">={lowest}"
    classifiers = PYPROJECT["project"]["classifiers"]
    versions = [c.rsplit(" ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert versions[0] == lowest


COLAB = """
import json, sys, types

import ig_widget as igw
from tests.models import random_image, tiny_cnn

# Colab's module as anywidget looks for it: its custom widget manager and its URL.
# (Only this module: "google" is TensorFlow's protobuf namespace, already imported.)
enabled = []
output = types.ModuleType("google.colab.output")
output.enable_custom_widget_manager = lambda: enabled.append(True)
output._widgets = types.SimpleNamespace(_installed_url="https://colab.test/manager.js")
sys.modules["google.colab"] = types.ModuleType("google.colab")
sys.modules["google.colab.output"] = output

widget = igw.IGWidget(tiny_cnn(), random_image(), steps=4)
data, metadata = widget._repr_mimebundle_()
print(json.dumps({"enabled": len(enabled), "mimes": sorted(data), "metadata": metadata}))
"""


def test_under_colab_the_widget_turns_on_colabs_widget_manager():
    # Colab shows third-party widgets only through its custom widget manager:
    # anywidget turns it on and names it in the output's metadata.
    out = _run(COLAB)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["enabled"] == 1
    view = "application/vnd.jupyter.widget-view+json"
    assert report["mimes"] == sorted(["image/png", view, "text/plain"])
    manager = {"custom_widget_manager": {"url": "https://colab.test/manager.js"}}
    assert report["metadata"] == {view: {"colab": manager}}
