"""TensorFlow backend: a ``tf.function`` over a ``GradientTape``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from . import (
    NOT_DIFFERENTIABLE,
    ChooseScore,
    LayerGradients,
    LayerWatch,
    available_ram_bytes,
    keras_precision,
    only_activation,
    region_scores_shape,
)


@tf.custom_gradient
def guided_relu(x: tf.Tensor) -> Any:
    """ReLU whose backward pass lets through only positive gradients at positive inputs
    (guided backpropagation, Springenberg et al. 2015)."""

    def backward(upstream: tf.Tensor) -> tf.Tensor:
        return tf.where((x > 0) & (upstream > 0), upstream, tf.zeros_like(upstream))

    return tf.nn.relu(x), backward


def _call_model(model: Any, batch: tf.Tensor) -> tf.Tensor:
    # Keras layers such as Dropout and BatchNormalization must run in inference mode.
    if hasattr(model, "layers"):
        return model(batch, training=False)
    return model(batch)


class TensorFlowBackend:
    """Gradients of a Keras model (TensorFlow backend) or any TF-differentiable callable."""

    name = "tensorflow"
    activation_bytes = 2.0
    static_shapes = False

    def __init__(
        self, model: Any, preprocess: Callable[[Any], Any] | None, precision: str = "float32"
    ) -> None:
        self._model = model
        self._preprocess = preprocess
        self._precision = precision
        # One traced program per image shape; batch size and target are
        # dynamic so that neither causes a retrace.
        # Keyed by image shape, the shape of the region that reduces a score map
        # (None: none; a region of another shape is a new signature, checked
        # again) and the number of weighted columns per point (1 or 2).
        self._programs: dict[tuple[tuple[int, ...], tuple[int, ...] | None, int], Any] = {}
        self._predictors: dict[tuple[tuple[int, ...], tuple[int, ...] | None], Any] = {}

    def _scores(self, batch: tf.Tensor, region: tf.Tensor | None = None) -> tf.Tensor:
        if self._preprocess is not None:
            batch = self._preprocess(batch)
        # Inside a tf.function this runs once, while tracing: the bfloat16
        # casts are then part of the compiled program.
        with keras_precision(self._model, self._precision):
            output = _call_model(self._model, batch)
        if region is None:
            return output
        region_scores_shape(tuple(output.shape), tuple(region.shape))
        return tf.einsum("nhwc,hw->nc", tf.cast(output, tf.float32), region)

    def predict(self, batch: np.ndarray, region: np.ndarray | None = None) -> Any:
        # The first call for an image shape runs eagerly, so that a failing
        # model reports its own error rather than a traced one; later calls are
        # traced, since an eager call of a deep Keras model costs more in Python
        # dispatch (0.2 s for MobileNetV2) than a small model's gradient batch.
        shape = tuple(batch.shape[1:])
        tensor = tf.convert_to_tensor(batch, tf.float32)
        key = (shape, None if region is None else region.shape)
        args = [tensor] if region is None else [tensor, tf.constant(region, tf.float32)]
        if key in self._predictors:
            output = self._predictors[key](*args)
        else:
            output = self._scores(*args)
            spec = [tf.TensorSpec([None, *shape], tf.float32)]
            if region is not None:
                spec.append(tf.TensorSpec(region.shape, tf.float32))
            self._predictors[key] = tf.function(self._scores, input_signature=spec)
        # Keep the output's structure (tuple, dict) so the engine can say what is wrong with it.
        return tf.nest.map_structure(np.asarray, output)

    def _program(self, shape: tuple[int, ...], region: np.ndarray | None, columns: int) -> Any:
        key = (shape, None if region is None else region.shape, columns)
        if key in self._programs:
            return self._programs[key]

        def program(
            rows: tf.Tensor,
            directional: tf.Tensor,
            index: tf.Tensor,
            values: tf.Tensor,
            group_lines: tf.Tensor,
            *region: tf.Tensor,
        ) -> tuple[tf.Tensor, tf.Tensor]:
            lines = tf.shape(directional)[0]
            origins = rows[:lines]
            directions = rows[lines:] - origins
            line_of = index[:, 0]
            alphas = tf.reshape(values[:, 0], [-1, 1, 1, 1])
            points = tf.gather(origins, line_of) + alphas * tf.gather(directions, line_of)
            with tf.GradientTape() as tape:
                tape.watch(points)
                scores = tf.cast(self._scores(points, *region), tf.float32)
                # Weighted here, so no per-point gradient is kept.
                target_scores = values[:, 1] * tf.gather(scores, index[:, 1], axis=1, batch_dims=1)
                if columns == 2:
                    second = tf.gather(scores, index[:, 3], axis=1, batch_dims=1)
                    target_scores += values[:, 2] * second
            grads = tape.gradient(target_scores, points)
            if grads is None:
                raise ValueError(NOT_DIFFERENTIABLE)
            sums = tf.math.segment_sum(grads, index[:, 2])
            # Each group's sum times its line's direction, once per group.
            factors = tf.where(directional[:, None, None, None] > 0, directions, 1.0)
            return sums * tf.gather(factors, group_lines), scores

        signature = [
            tf.TensorSpec([None, *shape], tf.float32),
            tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None, 2 + columns], tf.int32),
            tf.TensorSpec([None, 1 + columns], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ]
        if region is not None:
            signature.append(tf.TensorSpec(region.shape, tf.float32))
        self._programs[key] = tf.function(program, input_signature=signature)
        return self._programs[key]

    def gradient_sums(
        self,
        rows: np.ndarray,
        directional: np.ndarray,
        index: np.ndarray,
        values: np.ndarray,
        group_lines: np.ndarray,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        program = self._program(tuple(rows.shape[1:]), region, index.shape[1] - 2)
        extra = [] if region is None else [region]
        sums, scores = program(rows, directional, index, values, group_lines, *extra)
        return sums.numpy(), scores.numpy()

    def layer_gradients(
        self, image: np.ndarray, choose: ChooseScore, watch: LayerWatch, guided: bool
    ) -> LayerGradients:
        # Eager: one image, one pass; a traced program would be kept per layer for no gain.
        batch = tf.convert_to_tensor(image[None], tf.float32)
        seen: list[tf.Tensor] = []

        def tap(output: tf.Tensor) -> tf.Tensor:
            tape.watch(output)
            seen.append(output)
            return output

        with tf.GradientTape() as tape:
            tape.watch(batch)
            with watch(tap, guided_relu if guided else None):
                output = self._scores(batch)
        raw = tf.nest.map_structure(np.asarray, output)
        cotangent = tf.constant(choose(raw), tf.float32)
        activation = only_activation(seen)
        scores = tf.cast(output, tf.float32)
        wanted = [activation, batch] if guided else [activation]
        grads = tape.gradient(scores, wanted, output_gradients=cotangent)
        if any(grad is None for grad in grads):
            raise ValueError(NOT_DIFFERENTIABLE)
        return (
            np.asarray(raw),
            activation.numpy()[0].astype(np.float32),
            grads[0].numpy()[0].astype(np.float32),
            grads[1].numpy()[0] if guided else None,
        )

    def is_out_of_memory(self, error: BaseException) -> bool:
        return isinstance(error, (tf.errors.ResourceExhaustedError, MemoryError))

    def runs_on_cpu(self) -> bool:
        return not tf.config.list_logical_devices("GPU")

    def free_memory_bytes(self) -> int | None:
        # TensorFlow does not report a GPU's free memory; the engine then falls
        # back to its fixed budget and relies on the out-of-memory retry.
        if tf.config.list_logical_devices("GPU"):
            return None
        return available_ram_bytes()
