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

Two more tell the engine how large a batch may be: ``free_memory_bytes()`` and
the ``activation_bytes`` attribute (see ``ig_widget.engine.batch_size_for``).

``precision="bfloat16"`` runs the model's arithmetic in bfloat16 while the
points, the gradients handed back and their sums stay float32.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

PRECISIONS = ("float32", "bfloat16")


class GradientBackend(Protocol):
    name: str
    # Peak bytes one activation value of one point costs in a backward pass,
    # measured on Xception (benchmarks/README.md, "Memory").
    activation_bytes: float

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


def is_keras_model(model: Any) -> bool:
    """Whether ``model`` is a Keras layer or model (of any Keras backend)."""
    return any(c.__module__.startswith("keras") for c in type(model).__mro__)


@contextmanager
def keras_precision(model: Any, precision: str) -> Iterator[None]:
    """Run a Keras model's layers in ``precision`` while the context is open.

    ``"bfloat16"`` switches every layer to Keras' ``mixed_bfloat16`` policy:
    variables stay float32 and are cast on use, arithmetic runs in bfloat16.
    The original policies come back on exit. Compiled backends (TensorFlow,
    JAX) open it only while tracing; PyTorch opens it around every call, so a
    model must not be used from another thread meanwhile.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> with keras_precision(model, "bfloat16"):
    ...     "bfloat16" in str(model(np.ones((1, 2))).dtype)
    True
    """
    if precision == "float32":
        yield
        return
    layers = model._flatten_layers(include_self=True)
    saved = [layer.dtype_policy for layer in layers]
    for layer in layers:
        layer.dtype_policy = "mixed_bfloat16"
    try:
        yield
    finally:
        for layer, policy in zip(layers, saved, strict=True):
            layer.dtype_policy = policy


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
    if is_keras_model(model):
        import keras

        return keras.backend.backend()
    return "tensorflow"


def backend_for(
    model: Any, preprocess: Callable[[Any], Any] | None, precision: str = "float32"
) -> GradientBackend:
    """Return the (cached) backend that computes gradients of ``model``.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((1, 1, 3)), keras.layers.Flatten()])
    >>> backend_for(model, None).name == keras.backend.backend()
    True
    """
    framework = framework_of(model)
    if precision != "float32" and framework != "torch" and not is_keras_model(model):
        raise ValueError(
            f"precision: {precision!r} needs a Keras model or a torch.nn.Module "
            "(a plain callable has no layers to switch); use precision='float32'"
        )
    try:
        per_model = _cache.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        per_model = {}
    key = (framework, preprocess, precision)
    if key not in per_model:
        per_model[key] = _make_backend(framework, model, preprocess, precision)
    return per_model[key]


def _make_backend(
    framework: str, model: Any, preprocess: Callable[[Any], Any] | None, precision: str
) -> GradientBackend:
    if framework == "tensorflow":
        from .tensorflow import TensorFlowBackend

        return TensorFlowBackend(model, preprocess, precision)
    if framework == "jax":
        from .jax import JaxBackend

        return JaxBackend(model, preprocess, precision)
    if framework == "torch":
        from .torch import TorchBackend

        return TorchBackend(model, preprocess, precision)
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
