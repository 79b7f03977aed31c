"""Running the same script under each Keras backend, each in its own subprocess.

Keras fixes its backend at import, so tests that compare backends run one
child process per backend (all at once) and compare what they saved. The JAX
and PyTorch children block the ``tensorflow`` import, as on a GPU machine that
has no TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
KERAS_BACKENDS = ("tensorflow", "jax", "torch")
# Makes `import tensorflow` fail as if it were not installed. It answers
# find_spec probes (torch._dynamo makes some) with a spec that has no origin,
# and fails at load. Putting None into sys.modules would not do: Keras takes
# the key's presence for a loaded TensorFlow.
BLOCK_TENSORFLOW = """
import importlib.machinery, sys
class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            return importlib.machinery.ModuleSpec(name, self)
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked)", name=spec.name)
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, BlockTensorFlow())
"""


def run_per_backend(
    code: str, folder: Path, timeout: float = 300, backends: tuple[str, ...] = KERAS_BACKENDS
) -> dict[str, dict[str, Any]]:
    """Run ``code`` once per Keras backend (of ``backends``), at the same time; each run
    saves an ``.npz`` at ``sys.argv[1]``. Returns the saved arrays by backend name."""
    children = {}
    for name in backends:
        script = (BLOCK_TENSORFLOW if name != "tensorflow" else "") + code
        env = {**os.environ, "KERAS_BACKEND": name, "PYTHONPATH": str(ROOT)}
        children[name] = subprocess.Popen(
            [sys.executable, "-c", script, str(folder / f"{name}.npz")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    results = {}
    for name, child in children.items():
        output, _ = child.communicate(timeout=timeout)
        assert child.returncode == 0, f"{name} subprocess failed:\n{output[-3000:]}"
        results[name] = dict(np.load(folder / f"{name}.npz"))
    return results
