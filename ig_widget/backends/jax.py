"""JAX backend: ``jax.jit`` over a Keras model's ``stateless_call`` and ``jax.vjp``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import (
    ChooseScore,
    LayerGradients,
    LayerWatch,
    available_ram_bytes,
    is_keras_model,
    keras_precision,
    only_activation,
    region_scores_shape,
)


@jax.custom_vjp
def guided_relu(x: Any) -> Any:
    """ReLU whose backward pass lets through only positive gradients at positive inputs
    (guided backpropagation, Springenberg et al. 2015)."""
    return jnp.maximum(x, 0)


def _guided_forward(x: Any) -> tuple[Any, Any]:
    return jnp.maximum(x, 0), x


def _guided_backward(x: Any, upstream: Any) -> tuple[Any]:
    return (jnp.where((x > 0) & (upstream > 0), upstream, 0).astype(upstream.dtype),)


guided_relu.defvjp(_guided_forward, _guided_backward)


class JaxBackend:
    """Gradients of a Keras model running on Keras' JAX backend.

    The model's variables are passed into the compiled program as arguments
    (not baked in as constants), so retraining the model is seen at once and
    the program stays small. XLA compiles once per input shape, so the engine
    sends a few bucketed batch shapes (``static_shapes``).
    """

    name = "jax"
    activation_bytes = 4.0
    static_shapes = True

    def __init__(
        self, model: Any, preprocess: Callable[[Any], Any] | None, precision: str = "float32"
    ) -> None:
        if not is_keras_model(model):
            raise TypeError(
                f"model: the JAX backend differentiates Keras models, got {type(model).__name__}"
            )
        self._model = model
        self._preprocess = preprocess
        self._precision = precision
        self._predict = jax.jit(self._scores)
        self._program = jax.jit(self._gradient_sums)

    def _variables(self) -> tuple[list[Any], list[Any]]:
        return (
            [v.value for v in self._model.trainable_variables],
            [v.value for v in self._model.non_trainable_variables],
        )

    def _scores(
        self, trainable: list[Any], non_trainable: list[Any], batch: Any, region: Any = None
    ) -> Any:
        if self._preprocess is not None:
            batch = self._preprocess(batch)
        # Runs while tracing only, so the policy switch is compiled in.
        with keras_precision(self._model, self._precision):
            output, _ = self._model.stateless_call(trainable, non_trainable, batch, training=False)
        if region is None:
            return output
        region_scores_shape(tuple(output.shape), tuple(region.shape))
        return jnp.einsum("nhwc,hw->nc", output.astype(jnp.float32), region)

    def _gradient_sums(
        self,
        trainable: list[Any],
        non_trainable: list[Any],
        rows: Any,
        directional: Any,
        index: Any,
        values: Any,
        group_lines: Any,
        region: Any,
    ) -> tuple[Any, Any]:
        lines = directional.shape[0]
        origins = rows[:lines]
        directions = rows[lines:] - origins
        line_of = index[:, 0]
        points = origins[line_of] + values[:, 0, None, None, None] * directions[line_of]

        def target_scores(points: Any) -> tuple[Any, Any]:
            scores = self._scores(trainable, non_trainable, points, region).astype(jnp.float32)
            return jnp.take_along_axis(scores, index[:, 1::2], axis=1), scores

        _, pullback, scores = jax.vjp(target_scores, points, has_aux=True)
        # The weights are the cotangent of the target columns (one, or two for
        # a contrast), so the backward pass returns already-weighted gradients.
        (grads,) = pullback(values[:, 1:])
        sums = jax.ops.segment_sum(
            grads, index[:, 2], num_segments=group_lines.shape[0], indices_are_sorted=True
        )
        # Each group's sum times its line's direction, once per group.
        factors = jnp.where(directional[:, None, None, None] > 0, directions, 1.0)
        return sums * factors[group_lines], scores

    def predict(self, batch: np.ndarray, region: np.ndarray | None = None) -> Any:
        output = self._predict(*self._variables(), jnp.asarray(batch, jnp.float32), region)
        return jax.tree_util.tree_map(np.asarray, output)

    def gradient_sums(
        self,
        rows: np.ndarray,
        directional: np.ndarray,
        index: np.ndarray,
        values: np.ndarray,
        group_lines: np.ndarray,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        sums, scores = self._program(
            *self._variables(), rows, directional, index, values, group_lines, region
        )
        return np.asarray(sums), np.asarray(scores)

    def layer_gradients(
        self, image: np.ndarray, choose: ChooseScore, watch: LayerWatch, guided: bool
    ) -> LayerGradients:
        trainable, non_trainable = self._variables()
        batch = jnp.asarray(image[None], jnp.float32)
        relu = guided_relu if guided else None

        def scores(offset: Any, batch: Any) -> tuple[Any, Any]:
            seen: list[Any] = []

            def tap(output: Any) -> Any:
                seen.append(output)
                # JAX differentiates function arguments only: the layer's
                # output plus a zero argument has that argument's gradient.
                return output if offset is None else output + offset

            with watch(tap, relu):
                output = self._scores(trainable, non_trainable, batch)
            return output, only_activation(seen)

        # The layer's output shape, from tracing only (no computation).
        shape = jax.eval_shape(scores, None, batch)[1]
        offset = jnp.zeros(shape.shape, jnp.float32)
        output, pullback, activation = jax.vjp(scores, offset, batch, has_aux=True)
        raw = jax.tree_util.tree_map(np.asarray, output)
        cotangent = jnp.asarray(choose(raw), dtype=output.dtype)
        layer_grad, input_grad = pullback(cotangent)
        return (
            np.asarray(raw),
            np.asarray(activation, np.float32)[0],
            np.asarray(layer_grad, np.float32)[0],
            np.asarray(input_grad)[0] if guided else None,
        )

    def is_out_of_memory(self, error: BaseException) -> bool:
        # XLA reports exhausted device memory as a RuntimeError subclass whose
        # name changed across jax versions; its status code has not.
        return isinstance(error, MemoryError) or (
            isinstance(error, RuntimeError) and "RESOURCE_EXHAUSTED" in str(error)
        )

    def runs_on_cpu(self) -> bool:
        return bool(jax.devices()[0].platform == "cpu")

    def free_memory_bytes(self) -> int | None:
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return available_ram_bytes()
