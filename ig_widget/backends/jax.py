"""JAX backend: ``jax.jit`` over a Keras model's ``stateless_call`` and ``jax.vjp``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import available_ram_bytes, is_keras_model, keras_precision


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
        self._program = jax.jit(self._gradient_sums, static_argnames="n_segments")

    def _variables(self) -> tuple[list[Any], list[Any]]:
        return (
            [v.value for v in self._model.trainable_variables],
            [v.value for v in self._model.non_trainable_variables],
        )

    def _scores(self, trainable: list[Any], non_trainable: list[Any], batch: Any) -> Any:
        if self._preprocess is not None:
            batch = self._preprocess(batch)
        # Runs while tracing only, so the policy switch is compiled in.
        with keras_precision(self._model, self._precision):
            output, _ = self._model.stateless_call(trainable, non_trainable, batch, training=False)
        return output

    def _gradient_sums(
        self,
        trainable: list[Any],
        non_trainable: list[Any],
        starts: Any,
        ends: Any,
        start_index: Any,
        end_index: Any,
        alphas: Any,
        weights: Any,
        directional: Any,
        targets: Any,
        segments: Any,
        n_segments: int,
    ) -> tuple[Any, Any]:
        origins = starts[start_index]
        directions = ends[end_index] - origins
        points = origins + alphas[:, None, None, None] * directions

        def target_scores(points: Any) -> tuple[Any, Any]:
            scores = self._scores(trainable, non_trainable, points).astype(jnp.float32)
            return jnp.take_along_axis(scores, targets[:, None], axis=1)[:, 0], scores

        _, pullback, scores = jax.vjp(target_scores, points, has_aux=True)
        # The weights are the cotangent of the target scores, so the backward
        # pass returns already-weighted gradients.
        (grads,) = pullback(weights)
        along = directional[:, None, None, None] > 0
        contributions = jnp.where(along, grads * directions, grads)
        sums = jax.ops.segment_sum(contributions, segments, num_segments=n_segments)
        return sums, scores

    def predict(self, batch: np.ndarray) -> Any:
        output = self._predict(*self._variables(), jnp.asarray(batch, jnp.float32))
        return jax.tree_util.tree_map(np.asarray, output)

    def gradient_sums(
        self,
        starts: np.ndarray,
        ends: np.ndarray,
        start_index: np.ndarray,
        end_index: np.ndarray,
        alphas: np.ndarray,
        weights: np.ndarray,
        directional: np.ndarray,
        targets: np.ndarray,
        segments: np.ndarray,
        n_segments: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        sums, scores = self._program(
            *self._variables(),
            jnp.asarray(starts, jnp.float32),
            jnp.asarray(ends, jnp.float32),
            jnp.asarray(start_index, jnp.int32),
            jnp.asarray(end_index, jnp.int32),
            jnp.asarray(alphas, jnp.float32),
            jnp.asarray(weights, jnp.float32),
            jnp.asarray(directional, jnp.float32),
            jnp.asarray(targets, jnp.int32),
            jnp.asarray(segments, jnp.int32),
            n_segments=int(n_segments),
        )
        return np.asarray(sums), np.asarray(scores)

    def is_out_of_memory(self, error: BaseException) -> bool:
        # XLA reports exhausted device memory as a RuntimeError subclass whose
        # name changed across jax versions; its status code has not.
        return isinstance(error, MemoryError) or (
            isinstance(error, RuntimeError) and "RESOURCE_EXHAUSTED" in str(error)
        )

    def free_memory_bytes(self) -> int | None:
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform != "cpu" else None
        if stats and "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return available_ram_bytes()
