"""The framework-specific part of the engine: one small class per framework.

A backend wraps a model (and an optional preprocess function) and offers two
operations on NumPy arrays; everything else in the engine is framework-free:

- ``predict(batch)`` -> the model's output for a batch, as NumPy (the engine checks it is (N, K));
- ``gradient_sums(rows, directional, index, values, group_lines)`` ->
  (sums (G, H, W, C) float32, scores (B, K)), one compiled call over a batch of
  B points on L lines, summed into G groups::

      origin_l, direction_l = rows[l], rows[L + l] - rows[l]     (rows: L starts, then L ends)
      line, column, group[, column2] = index[b]; alpha, weight[, weight2] = values[b]
      point_b  = origin_line + alpha * direction_line
      target_b = weight * scores[b, column] (+ weight2 * scores[b, column2])
      sums[g]  = (sum over the points b of group g of grad_{point_b} target_b)
                 * (direction_{group_lines[g]} if directional[group_lines[g]] else 1)

  The groups ``index[:, 2]`` are nondecreasing (0, 0, 1, 2, 2, ...), so a
  backend may sum sorted segments; every group has a point, except the
  padding groups sent to a backend with ``static_shapes``.

  A second weighted column per point (``index`` (B, 4) and ``values`` (B, 3)
  instead of (B, 3) and (B, 2)) lets one point explain a difference of two
  scores (a contrastive target, ``ig_widget.points.Classifier.contrast``);
  the engine sends it only for a batch that holds one, and a single class in
  such a batch has ``weight2 = 0``.

Both take an optional ``region``: float32 weights (H', W') for a model that
returns a score map (N, H', W', K); its scores are then the weighted sums
``sum over h, w of region[h, w] * map[n, h, w, k]`` (N, K), inside the
differentiated computation (a region target, ``ig_widget.options.Region``).

  The weights enter the backward pass as the output gradients (cotangents),
  so nothing is kept per point, and each group's sum is multiplied by its
  line's direction once. This serves integrated gradients over many
  baselines (direction folded in), plain gradients (a non-directional point
  at alpha 0 on a line from the image), several images per call and
  per-point gradients (see ``ig_widget.points``).

Grad-CAM and Guided Grad-CAM (``ig_widget.explainers.gradcam``) use a third,
``layer_gradients(image, choose, watch, guided)``: one forward and one
backward pass at one image. The model's output at the image (as NumPy) goes
to ``choose``, which checks it and returns the ``column`` and ``sign`` of
the explained score; the call returns that output, the activation at a
chosen layer and the gradient of ``sign * output[column]`` with respect to
it (and, with ``guided``, with respect to the input, while ``watch`` routes
the model's ReLUs through the backend's ``guided_relu``). ``watch(tap,
relu)`` is a context manager made by the explainer: inside it the layer's
output ``out`` is replaced by ``tap(out)``, which the backend uses to keep
the tensor (TensorFlow, PyTorch) or to add a zero it differentiates with
respect to (JAX, whose transformations differentiate only function
arguments).

Three more tell the engine how large a batch may be: ``free_memory_bytes()``,
the ``activation_bytes`` attribute and ``runs_on_cpu()`` (whether the batch
tuner times calls in CPU time; see ``ig_widget.batching``); a backend
whose compiled programs are fixed to their input shapes sets
``static_shapes`` so that the engine sends it a few bucketed shapes.

``precision="bfloat16"`` runs the model's arithmetic in bfloat16 while the
points, the gradients handed back and their sums stay float32.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import numpy as np

from ..frameworks import import_framework
from ..validation import caller_stacklevel

PRECISIONS = ("float32", "bfloat16")
# What a backend raises when no gradient reaches the input (TensorFlow and PyTorch say None).
NOT_DIFFERENTIABLE = "model: its scores do not depend differentiably on the input image"
# ``choose(output) -> (column, sign)`` and ``watch(tap, relu)`` of ``layer_gradients``
# and what it returns: the output, the activation, its gradient, the input's gradient.
# Given the model's output at the image, the weights of its entries in the explained score
# (its cotangent: a class, a contrast of two, a region of a score map), of the output's shape.
ChooseScore = Callable[[Any], np.ndarray]
LayerGradients = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]
LayerWatch = Callable[
    [Callable[[Any], Any], Callable[[Any], Any] | None], AbstractContextManager[None]
]


def only_activation(seen: list[Any]) -> Any:
    """The one output a watched layer gave in a forward pass, or raise naming ``layer``."""
    if len(seen) != 1:
        raise ValueError(
            f"layer: the chosen layer ran {len(seen)} times in one forward pass; expected once "
            "(choose a layer the model calls exactly once)"
        )
    return seen[0]


class GradientBackend(Protocol):
    name: str
    # Peak bytes one activation value of one point costs in a backward pass,
    # measured on Xception (benchmarks/README.md, "Memory").
    activation_bytes: float
    # True where every new input shape compiles a new program (JAX).
    static_shapes: bool

    def predict(self, batch: np.ndarray, region: np.ndarray | None = None) -> Any: ...

    def gradient_sums(
        self,
        rows: np.ndarray,
        directional: np.ndarray,
        index: np.ndarray,
        values: np.ndarray,
        group_lines: np.ndarray,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def layer_gradients(
        self, image: np.ndarray, choose: ChooseScore, watch: LayerWatch, guided: bool
    ) -> LayerGradients: ...

    def is_out_of_memory(self, error: BaseException) -> bool: ...

    def runs_on_cpu(self) -> bool: ...

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
# A few per model (one per preprocess function and precision), least recently
# used dropped first, so that a preprocess recreated on every call cannot
# grow memory without bound.
BACKENDS_PER_MODEL = 4
_cache: weakref.WeakKeyDictionary[Any, OrderedDict[Any, GradientBackend]] = (
    weakref.WeakKeyDictionary()
)
_warned_models: weakref.WeakSet[Any] = weakref.WeakSet()
_cache_lock = threading.Lock()
_model_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_model_locks_lock = threading.Lock()


def model_lock(model: Any) -> threading.RLock:
    """One lock per model, held by backends that switch the model's state around a
    call (a Module's train/eval mode, Keras layers' dtype policies), so that
    two threads never see each other's switch.

    Examples
    --------
    >>> class Model: pass
    >>> model = Model()
    >>> model_lock(model) is model_lock(model)
    True
    """
    with _model_locks_lock:
        try:
            return _model_locks.setdefault(model, threading.RLock())
        except TypeError:  # not weak-referenceable: a lock of its own per call
            return threading.RLock()


def region_scores_shape(output_shape: tuple[Any, ...], region_shape: tuple[Any, ...]) -> None:
    """Raise naming ``target`` unless a score map of ``output_shape`` fits a region of
    ``region_shape`` (H', W')."""
    if len(output_shape) != 4 or tuple(output_shape[1:3]) != tuple(region_shape):
        raise ValueError(
            f"target: a Region of {tuple(region_shape)} needs a model that returns a score map "
            f"(N, {region_shape[0]}, {region_shape[1]}, classes), got output of shape "
            f"{tuple(output_shape)}"
        )


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
    key = (framework, preprocess, precision)
    with _cache_lock:
        try:
            per_model = _cache.setdefault(model, OrderedDict())
        except TypeError:  # not weak-referenceable: no caching
            per_model = OrderedDict()
        if key in per_model:
            per_model.move_to_end(key)
            return per_model[key]
        _warn_if_recreated(model, preprocess, per_model)
        backend = _make_backend(framework, model, preprocess, precision)
        per_model[key] = backend
        while len(per_model) > BACKENDS_PER_MODEL:
            per_model.popitem(last=False)
        return backend


def _warn_if_recreated(model: Any, preprocess: Any, per_model: OrderedDict) -> None:
    code = getattr(preprocess, "__code__", None)
    if code is None or model in _warned_models:
        return
    if any(
        key[1] is not preprocess and getattr(key[1], "__code__", None) is code for key in per_model
    ):
        try:
            _warned_models.add(model)
        except TypeError:
            pass
        warnings.warn(
            "preprocess: a new function with the same code as an earlier one (a lambda or "
            "inner function created on every call); its compiled program cannot be reused, "
            "so every call traces the model again. Define the preprocess function once and "
            "pass the same object",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )


def _make_backend(
    framework: str, model: Any, preprocess: Callable[[Any], Any] | None, precision: str
) -> GradientBackend:
    if framework == "tensorflow":
        # A Keras model on TensorFlow has it; a plain callable may not.
        import_framework("tensorflow", "model: differentiating a plain callable")
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
