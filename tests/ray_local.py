"""A local Ray that starts on a busy 2-core machine (the dataset tests and benchmark use it).

Every Ray helper process imports jsonschema, which imports the optional
``rfc3987_syntax`` when it is installed (the Jupyter stack installs it): that
builds an Earley parser at import, 6 s of CPU per process. On a busy 2-core
machine the raylet's fixed 15 s wait for its agents then runs out ("The
current node timed out during startup"). Ray's processes started here do
without that module (jsonschema skips the one format check that needs it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SHIM = 'raise ImportError("left out of Ray\'s processes: its import costs 6 s of CPU")\n'


def start_local_ray(num_cpus: int) -> None:
    """``ray.init`` a local Ray with ``num_cpus`` CPUs, its processes without rfc3987_syntax.

    Examples
    --------
    >>> start_local_ray(2)  # doctest: +SKIP
    """
    import ray

    shim = Path(tempfile.mkdtemp(prefix="ray-shim-"))
    (shim / "rfc3987_syntax").mkdir()
    (shim / "rfc3987_syntax" / "__init__.py").write_text(SHIM)
    saved = os.environ.get("PYTHONPATH")
    # Ray's processes inherit the environment of ray.init: set it for that call only.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), saved]))
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
