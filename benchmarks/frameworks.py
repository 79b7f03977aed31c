"""What the speed benchmark needs from each Keras backend, besides the engine itself.

- ``loop``: the Keras example's way, one interpolated image per eager
  forward/backward pass, trapezoid rule over the stacked gradients;
- ``floor``: one compiled batched gradient call over points already on the
  device, with no integrated-gradients bookkeeping (the physical limit the
  engine is held to);
- ``sync`` (wait for the device) and device memory counters where the
  framework keeps them.

Only the module of the active Keras backend is imported, so this runs where
TensorFlow is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ig_widget.backends import keras_precision
from ig_widget.quadrature import integration_points


class Framework:
    """Interface; one subclass per Keras backend."""

    name = ""
    # True where the device-memory peak cannot be reset between measurements.
    peak_is_running_max = False

    def device(self) -> str:
        raise NotImplementedError

    def put(self, array: np.ndarray) -> Any:
        raise NotImplementedError

    def sync(self, value: Any) -> None:
        raise NotImplementedError

    def point_gradient(self, model: Any, preprocess: Any, point: Any, target: int) -> Any:
        """Gradient of one point's target score, eagerly (the loop's unit of work)."""
        raise NotImplementedError

    def floor(self, model: Any, preprocess: Any, precision: str) -> Callable[[Any, int], Any]:
        raise NotImplementedError

    def reset_peak(self) -> None:
        """Start a new device-memory peak (no-op on the CPU)."""

    def peak_bytes(self) -> int | None:
        """Device-memory peak since ``reset_peak``, or None on the CPU."""
        return None

    def loop(
        self,
        model: Any,
        preprocess: Any,
        image: np.ndarray,
        baselines: np.ndarray,
        target: int,
        steps: int,
        precision: str,
    ) -> np.ndarray:
        """Integrated gradients one point at a time, as the Keras example computes them."""
        alphas, _ = integration_points("trapezoid", steps)
        total = np.zeros(image.shape, np.float64)
        for start in baselines:
            grads = []
            for alpha in alphas:
                point = self.put((start + alpha * (image - start))[None].astype(np.float32))
                with keras_precision(model, precision):
                    grads.append(np.asarray(self.point_gradient(model, preprocess, point, target)))
            stacked = np.concatenate(grads).astype(np.float64)
            total += (image - start) * ((stacked[:-1] + stacked[1:]) / 2).mean(axis=0)
        return total / len(baselines)


class TensorFlow(Framework):
    name = "tensorflow"

    def __init__(self) -> None:
        import tensorflow as tf

        self.tf = tf

    def device(self) -> str:
        gpus = self.tf.config.list_logical_devices("GPU")
        return gpus[0].name if gpus else "CPU"

    def put(self, array: np.ndarray) -> Any:
        return self.tf.constant(array)

    def sync(self, value: Any) -> None:
        # Fetch one number that depends on every value: copying a whole batch
        # of gradients to the host would charge the floor for a transfer the
        # engine never makes.
        if isinstance(value, self.tf.Tensor):
            value = self.tf.reduce_sum(value)
        np.asarray(value)

    def reset_peak(self) -> None:
        if self.tf.config.list_logical_devices("GPU"):
            self.tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_bytes(self) -> int | None:
        if not self.tf.config.list_logical_devices("GPU"):
            return None
        return int(self.tf.config.experimental.get_memory_info("GPU:0")["peak"])

    def point_gradient(self, model: Any, preprocess: Any, point: Any, target: int) -> Any:
        with self.tf.GradientTape() as tape:
            tape.watch(point)
            score = model(_apply(preprocess, point), training=False)[:, target]
        return tape.gradient(score, point)

    def floor(self, model: Any, preprocess: Any, precision: str) -> Callable[[Any, int], Any]:
        tf = self.tf

        @tf.function(reduce_retracing=True)
        def gradients(points, target):
            with keras_precision(model, precision), tf.GradientTape() as tape:
                tape.watch(points)
                scores = model(_apply(preprocess, points), training=False)
                total = tf.reduce_sum(tf.cast(tf.gather(scores, target, axis=1), tf.float32))
            return tape.gradient(total, points)

        return lambda points, target: gradients(points, tf.constant(target))


class Jax(Framework):
    name = "jax"
    peak_is_running_max = True

    def __init__(self) -> None:
        import jax

        self.jax = jax

    def device(self) -> str:
        return str(self.jax.devices()[0].device_kind)

    def put(self, array: np.ndarray) -> Any:
        return self.jax.device_put(array)

    def sync(self, value: Any) -> None:
        self.jax.block_until_ready(value)

    @staticmethod
    def _variables(model: Any) -> tuple[list[Any], list[Any]]:
        return (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )

    def point_gradient(self, model: Any, preprocess: Any, point: Any, target: int) -> Any:
        trainable, non_trainable = self._variables(model)

        def score(p):
            out, _ = model.stateless_call(
                trainable, non_trainable, _apply(preprocess, p), training=False
            )
            return out[0, target].astype("float32")

        # Not jitted: every operation is dispatched on its own, like eager mode.
        return self.jax.grad(score)(point)

    def floor(self, model: Any, preprocess: Any, precision: str) -> Callable[[Any, int], Any]:
        jax = self.jax

        def total(trainable, non_trainable, points, target):
            with keras_precision(model, precision):
                out, _ = model.stateless_call(
                    trainable, non_trainable, _apply(preprocess, points), training=False
                )
            return out[:, target].astype("float32").sum()

        program = jax.jit(jax.grad(total, argnums=2))
        return lambda points, target: program(*self._variables(model), points, target)

    def peak_bytes(self) -> int | None:
        stats = self.jax.devices()[0].memory_stats()
        return int(stats["peak_bytes_in_use"]) if stats else None


class Torch(Framework):
    name = "torch"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.cuda = torch.cuda.is_available()

    def device(self) -> str:
        return self.torch.cuda.get_device_name() if self.cuda else "CPU"

    def put(self, array: np.ndarray) -> Any:
        return self.torch.as_tensor(array, device="cuda" if self.cuda else "cpu")

    def sync(self, value: Any) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def point_gradient(self, model: Any, preprocess: Any, point: Any, target: int) -> Any:
        point = point.requires_grad_(True)
        # clone(): Keras' preprocess_input works in place, not allowed on a leaf.
        score = model(_apply(preprocess, point.clone()), training=False)[:, target].float()
        (grad,) = self.torch.autograd.grad(score.sum(), point)
        return grad.cpu()

    def floor(self, model: Any, preprocess: Any, precision: str) -> Callable[[Any, int], Any]:
        torch = self.torch

        def gradients(points, target):
            points = points.detach().requires_grad_(True)
            with keras_precision(model, precision):
                scores = model(_apply(preprocess, points.clone()), training=False)
            (grad,) = torch.autograd.grad(scores[:, target].float().sum(), points)
            return grad

        return gradients

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak_bytes(self) -> int | None:
        return int(self.torch.cuda.max_memory_allocated()) if self.cuda else None


def _apply(preprocess: Any, batch: Any) -> Any:
    return batch if preprocess is None else preprocess(batch)


def active() -> Framework:
    """The helper for the Keras backend this process runs."""
    frameworks = {"tensorflow": TensorFlow, "jax": Jax, "torch": Torch}
    return frameworks[keras.backend.backend()]()
