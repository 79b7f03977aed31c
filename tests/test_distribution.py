"""The package as users get it: the sdist, a wheel built from that sdist with no
Node on the PATH, and that wheel installed into a fresh virtual environment
without the development tools, where the demo runs."""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import ig_widget as igw

from .test_package import DEV_TOOLS, requirement_name

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# The built front end: what the build hook makes sure exists.
STATIC = PYPROJECT["tool"]["hatch"]["build"]["hooks"]["jupyter-builder"]["ensured-targets"]
# The smoke environment runs the demo model on Keras' JAX backend: JAX's wheels
# are a fifth of TensorFlow's, and it needs no pin (torch would need one to
# stay off a several-GB CUDA build).
SMOKE_EXTRA = "jax"

SMOKE_SCRIPT = """\
import json, sys
import ig_widget as igw

loaded_by_import = sorted({"tensorflow", "torch", "jax", "keras", "scipy"} & set(sys.modules))
images, _ = igw.demo.images()
widget = igw.IGWidget(igw.demo.model(), images[0], class_names=igw.demo.class_names, steps=8)
page = widget.to_html("demo.html").read_text()
try:
    igw.integrated_gradients(lambda batch: batch, images[0])
    error = None
except ModuleNotFoundError as exc:
    error = str(exc)
print(json.dumps({
    "file": igw.__file__,
    "loaded_by_import": loaded_by_import,
    "predicted": widget.result.target,
    "page_bytes": len(page),
    "page_has_maps": "igw-data" in page,
    "plain_callable_error": error,
}))
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel that ``python -m build`` makes from it, with npm hidden."""
    missing = [path for path in STATIC if not (REPO / path).exists()]
    assert not missing, f"build the front end first (npm run build): {missing}"
    out = tmp_path_factory.mktemp("dist")
    # Only this interpreter's folder on the PATH: no node, no npm.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    assert shutil.which("npm", path=env["PATH"]) is None
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def _one(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def test_the_sdist_carries_the_built_front_end(dist):
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert set(STATIC) <= names
    assert {"LICENSE", "pyproject.toml", "package.json", "package-lock.json"} <= names
    assert "js/src/widget.ts" in names
    assert not any(
        name.startswith(("node_modules/", ".venv/", "tests/artifacts/")) for name in names
    )


def test_the_wheel_holds_the_package_and_its_data_only(dist):
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(
            wheel.read(f"ig_widget-{igw.__version__}.dist-info/METADATA").decode()
        )
    package = {name for name in names if not name.startswith("ig_widget-")}
    sources = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "ig_widget").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    # Everything in the package folder (code, front end, model, photos and their
    # licence notes), nothing else: no tests, notebooks, benchmarks or JS sources.
    assert package == sources
    assert set(STATIC) <= package
    assert {
        "ig_widget/py.typed",
        "ig_widget/demo/shapes_cnn.keras",
        "ig_widget/demo/shapes_vit.keras",
        "ig_widget/demo/photos/chelsea.jpg",
        "ig_widget/demo/photos/LICENSES.md",
    } <= package
    licences = f"ig_widget-{igw.__version__}.dist-info/licenses/"
    assert {licences + "LICENSE", licences + "ig_widget/demo/photos/LICENSES.md"} <= names

    assert metadata["Version"] == igw.__version__
    assert metadata["License-Expression"] == "MIT"
    assert "Framework :: Jupyter :: JupyterLab" in metadata.get_all("Classifier")
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(metadata.get_all("Provides-Extra")) == set(extras)
    core = [req for req in metadata.get_all("Requires-Dist") if "extra ==" not in req]
    assert not any(req.startswith(("tensorflow", "torch", "jax", "keras")) for req in core)
    assert not {requirement_name(req) for req in core} & DEV_TOOLS


@pytest.fixture(scope="module")
def fresh_env(dist, tmp_path_factory) -> Path:
    """A new virtual environment with the wheel and its jax extra, and nothing else."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    wheel = _one(dist, "*.whl")
    # This environment's pip installs into the new one (no pip bootstrap there);
    # wheels come from pip's cache and the local indexes where configured.
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(python), "install"),
            *("--quiet", "--no-compile", f"{wheel}[{SMOKE_EXTRA}]"),
        ],
        check=True,
        capture_output=True,
    )
    return python


def test_the_installed_wheel_runs_the_demo_without_dev_tools(fresh_env, tmp_path):
    (tmp_path / "smoke.py").write_text(SMOKE_SCRIPT)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    out = subprocess.run(
        [str(fresh_env), "smoke.py"],
        cwd=tmp_path,
        env={**env, "KERAS_BACKEND": SMOKE_EXTRA},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    # The installed copy, not this checkout.
    assert Path(report["file"]).is_relative_to(fresh_env.parent.parent)
    assert report["loaded_by_import"] == []
    assert 0 <= report["predicted"] < len(igw.demo.class_names)
    assert report["page_has_maps"] and report["page_bytes"] > 10_000
    assert report["plain_callable_error"] == (
        "model: differentiating a plain callable needs TensorFlow; "
        "pip install 'ig-widget[tensorflow]'"
    )
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(fresh_env), "list", "--format=json"],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert not installed & (DEV_TOOLS | {"tensorflow", "torch"})
    assert {"ig-widget", "jax", "keras", "anywidget"} <= installed
