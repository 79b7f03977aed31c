"""PyTorch backend: ``torch.autograd`` on Keras models (torch backend) and ``torch.nn.Module``."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from . import (
    NOT_DIFFERENTIABLE,
    ChooseScore,
    LayerGradients,
    LayerWatch,
    available_ram_bytes,
    is_keras_model,
    keras_precision,
    model_lock,
    only_activation,
    region_scores_shape,
)


def _device_of(model: Any) -> torch.device:
    tensors = itertools.chain(model.parameters(), model.buffers())
    first = next(tensors, None)
    return first.device if first is not None else torch.device("cpu")


def _to_numpy(output: Any) -> Any:
    # Structures pass through untouched so that the engine can name them.
    if not isinstance(output, torch.Tensor):
        return output
    output = output.detach().cpu()
    return (output.float() if output.dtype == torch.bfloat16 else output).numpy()


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward pass lets through only positive gradients at positive inputs
    (guided backpropagation, Springenberg et al. 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, upstream: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return upstream * ((x > 0) & (upstream > 0)).to(upstream.dtype)


def guided_relu(x: torch.Tensor) -> torch.Tensor:
    """``_GuidedReLU`` as a function."""
    return _GuidedReLU.apply(x)


class TorchBackend:
    """Gradients of a Keras model on Keras' torch backend, or of a plain ``torch.nn.Module``.

    The model runs on its own device (that of its first parameter), in
    inference mode (``eval()`` for a Module, restored afterwards;
    ``training=False`` for Keras), one call at a time per model across
    threads, so that no call sees another's mode switch. A plain Module receives the batch as
    (N, H, W, C) like every model here; for a channels-first network, permute
    in ``preprocess``, which runs inside the differentiated computation.
    """

    name = "torch"
    activation_bytes = 10.0
    static_shapes = False

    def __init__(
        self, model: Any, preprocess: Callable[[Any], Any] | None, precision: str = "float32"
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self._model = model
        self._preprocess = preprocess
        self._precision = precision
        self._keras = is_keras_model(model)
        self.device = _device_of(model)
        # Held for every call: the eval/train switch (or Keras' precision
        # switch) and the call must not interleave with another thread's.
        self._lock = model_lock(model)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        if self._keras:
            with keras_precision(self._model, self._precision):
                yield
            return
        was_training = self._model.training
        self._model.eval()
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if self._precision == "bfloat16"
            else contextlib.nullcontext()
        )
        try:
            with autocast:
                yield
        finally:
            self._model.train(was_training)

    def _scores(self, batch: torch.Tensor, region: np.ndarray | None = None) -> Any:
        if self._preprocess is not None:
            # Keras' preprocess_input divides in place, which autograd forbids
            # on the leaf tensor the gradient is taken with respect to.
            batch = self._preprocess(batch.clone())
        with self._inference():
            output = self._model(batch, training=False) if self._keras else self._model(batch)
        if region is None:
            return output
        region_scores_shape(tuple(output.shape), region.shape)
        return torch.einsum("nhwc,hw->nc", output.float(), self._tensor(region))

    def _tensor(self, array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=self.device)

    def predict(self, batch: np.ndarray, region: np.ndarray | None = None) -> Any:
        with self._lock, torch.no_grad():
            return _to_numpy(self._scores(self._tensor(batch), region))

    def gradient_sums(
        self,
        rows: np.ndarray,
        directional: np.ndarray,
        index: np.ndarray,
        values: np.ndarray,
        group_lines: np.ndarray,
        region: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        lines = len(directional)
        with self._lock, torch.enable_grad():
            line_rows = self._tensor(rows)
            origins = line_rows[:lines]
            directions = line_rows[lines:] - origins
            index_t = self._tensor(index, torch.long)
            values_t = self._tensor(values)
            line_of = index_t[:, 0]
            points = origins[line_of] + values_t[:, 0, None, None, None] * directions[line_of]
            points.requires_grad_(True)
            scores = self._scores(points, region).float()
            if not scores.requires_grad:
                raise ValueError(NOT_DIFFERENTIABLE)
            # Weighted here (one column, or two for a contrast), so no
            # per-point gradient is kept.
            target_scores = (scores.gather(1, index_t[:, 1::2]) * values_t[:, 1:]).sum(1)
            (grads,) = torch.autograd.grad(
                target_scores,
                points,
                grad_outputs=torch.ones_like(target_scores),
                allow_unused=True,
            )
        if grads is None:
            raise ValueError(NOT_DIFFERENTIABLE)
        sums = torch.zeros((len(group_lines), *rows.shape[1:]), device=self.device)
        sums.index_add_(0, index_t[:, 2], grads)
        # Each group's sum times its line's direction, once per group.
        factors = torch.where(self._tensor(directional)[:, None, None, None] > 0, directions, 1.0)
        sums *= factors[self._tensor(group_lines, torch.long)]
        return _to_numpy(sums), _to_numpy(scores)

    def layer_gradients(
        self, image: np.ndarray, choose: ChooseScore, watch: LayerWatch, guided: bool
    ) -> LayerGradients:
        seen: list[torch.Tensor] = []

        def tap(output: torch.Tensor) -> torch.Tensor:
            seen.append(output)
            return output

        with self._lock, torch.enable_grad():
            # Requiring the input's gradient keeps the graph when the weights are frozen.
            batch = self._tensor(image[None]).requires_grad_(True)
            with watch(tap, guided_relu if guided else None):
                output = self._scores(batch)
            raw = _to_numpy(output)
            cotangent = torch.as_tensor(choose(raw), dtype=torch.float32, device=output.device)
            activation = only_activation(seen)
            if not activation.requires_grad:
                raise ValueError(NOT_DIFFERENTIABLE)
            score = (output.float() * cotangent).sum()
            wanted = [activation, batch] if guided else [activation]
            grads = torch.autograd.grad(score, wanted, allow_unused=True)
        if any(grad is None for grad in grads):
            raise ValueError(NOT_DIFFERENTIABLE)
        return (
            np.asarray(raw),
            _to_numpy(activation)[0].astype(np.float32),
            _to_numpy(grads[0])[0].astype(np.float32),
            _to_numpy(grads[1])[0] if guided else None,
        )

    def is_out_of_memory(self, error: BaseException) -> bool:
        if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
            return True
        # A failed CPU allocation is a plain RuntimeError.
        return isinstance(error, RuntimeError) and "can't allocate memory" in str(error)

    def runs_on_cpu(self) -> bool:
        return bool(self.device.type == "cpu")

    def free_memory_bytes(self) -> int | None:
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            # Blocks torch's caching allocator holds but does not use are free to us too.
            cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(
                self.device
            )
            return int(free + cached)
        return available_ram_bytes()
