"""The framework-specific part of the engine: one small class per framework.

A backend wraps a model (and an optional preprocess function) and offers two
operations on NumPy arrays; everything else in the engine is framework-free:

- ``predict(batch)`` -> the model's output for a batch, as NumPy (the engine checks it is (N, K));
- ``gradient_sums(image, baselines, run_index, alphas, weights, target)`` ->
  (per-baseline weighted gradient sums (R, H, W, C), scores of the points (B, K)).
  Point ``b`` is ``baselines[run_index[b]] + alphas[b] * (image - baselines[run_index[b]])``
  and the gradient of its target score is multiplied by ``weights[b]`` and
  summed into row ``run_index[b]``. This one compiled call serves integrated
  gradients (many points) and plain gradients (one point at alpha = 1).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class GradientBackend(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> Any: ...

    def gradient_sums(
        self,
        image: np.ndarray,
        baselines: np.ndarray,
        run_index: np.ndarray,
        alphas: np.ndarray,
        weights: np.ndarray,
        target: int,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def is_out_of_memory(self, error: BaseException) -> bool: ...

    def free_memory_bytes(self) -> int | None: ...


# Compiled programs are cached per model so that recomputing (a new target, a
# new image of the same shape) reuses the traced function instead of retracing.
_cache: weakref.WeakKeyDictionary[Any, dict[Any, GradientBackend]] = weakref.WeakKeyDictionary()


def framework_of(model: Any) -> str:
    """Name the framework that differentiates ``model``.

    A ``torch.nn.Module`` uses PyTorch; a Keras model uses the active Keras
    backend; any other callable is taken to be TensorFlow-differentiable.
    """
    module = type(model).__module__
    if module.startswith("torch") or any(
        c.__module__.startswith("torch.nn") for c in type(model).__mro__
    ):
        return "torch"
    if any(c.__module__.startswith("keras") for c in type(model).__mro__):
        import keras

        return keras.backend.backend()
    return "tensorflow"


def backend_for(model: Any, preprocess: Callable[[Any], Any] | None) -> GradientBackend:
    """Return the (cached) backend that computes gradients of ``model``."""
    framework = framework_of(model)
    try:
        per_model = _cache.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        per_model = {}
    key = (framework, preprocess)
    if key not in per_model:
        per_model[key] = _make_backend(framework, model, preprocess)
    return per_model[key]


def _make_backend(
    framework: str, model: Any, preprocess: Callable[[Any], Any] | None
) -> GradientBackend:
    if framework == "tensorflow":
        from .tensorflow import TensorFlowBackend

        return TensorFlowBackend(model, preprocess)
    if framework == "jax":
        from .jax import JaxBackend

        return JaxBackend(model, preprocess)
    if framework == "torch":
        from .torch import TorchBackend

        return TorchBackend(model, preprocess)
    raise ValueError(f"model: unsupported Keras backend {framework!r}")


def available_ram_bytes() -> int | None:
    """Memory the OS reports as available, or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None
