"""Grad-CAM and Guided Grad-CAM: a layer's activations weighted by their mean gradient.

Grad-CAM (Selvaraju et al. 2017): for the chosen layer's activations
``A`` (h, w, K) and the gradient ``G`` of the target score with respect to
them, the map is ``ReLU(sum_k mean_ij(G[..., k]) * A[..., k])`` (h, w),
resized to the image by bilinear interpolation with half-pixel centres and
clamped edges (OpenCV's ``cv2.resize`` ``INTER_LINEAR``, which
pytorch-grad-cam uses, and ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)``, which Captum's ``LayerAttribution.interpolate``
uses). The map is kept in score units: pytorch-grad-cam rescales each map to
[0, 1] before resizing, which commutes with bilinear resizing (its weights
sum to one), so its map is this one rescaled.

Guided Grad-CAM multiplies that map (from plain gradients), per pixel, by guided backpropagation
(Springenberg et al. 2015): the gradient of the target score with respect to
the input pixels (through ``preprocess``) with every ReLU's backward pass
letting through only positive gradients at positive inputs. The ReLUs
replaced are, on a Keras model (any backend), the layers whose
``activation`` is ``keras.activations.relu`` (``Conv2D(..., activation="relu")``,
``Activation("relu")``) and ``keras.layers.ReLU`` layers with default
arguments; on a ``torch.nn.Module``, its ``torch.nn.ReLU`` modules (as
pytorch-grad-cam's ``GuidedBackpropReLUModel`` and Captum's
``GuidedBackprop`` do). A ReLU called as a function (``torch.relu``,
``keras.ops.relu``) cannot be reached and keeps its plain gradient.

The layer is chosen by name (``layer=``): a Keras layer's ``name`` or a
module's name in ``model.named_modules()``. The default is the last, in the
model's graph order (``layers_in_order``: a layer after the layers it
calls), of the 2-D convolutions (class name ``Conv...2D``, not transposed)
and of the token layers that finish before the last token-mixing layer
starts. Token-mixing layers are attention layers (class name containing
``Attention``) and transformer blocks (class name ending in ``Block`` or
``EncoderLayer``); token layers are those blocks and, after the first
token-mixing layer, a Keras functional graph's ``Add`` and normalisation
layers whose output is tokens (N, T, D) (a module's output shape is known
only when it runs, so a ``torch.nn.Module``'s norms are not token layers).
So a CNN gets its last convolution; a ViT, convolutional stem or not, the
input of its last attention (the block before it, or that block's first
norm), as pytorch-grad-cam advises (``model.blocks[-1].norm1``): a ViT that
reads its class token ignores the patch tokens after its last attention,
so their gradient there is zero and a map read after it would be blank; a
convolution after the last attention wins again.
A layer's output may be a feature map, (N, h, w, K) on Keras
(``channels_last``) or (N, K, h, w) on a ``torch.nn.Module`` (and Keras
``channels_first`` layers), or tokens (N, T, D) whose last ``h * w`` tokens
form an ``h x w`` grid: of square patches tiling the image, else of its
aspect or a square one for a model that resizes to a square (``token_grid``;
up to 16 leading class or register tokens are left out).
"""

from __future__ import annotations

import functools
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from ..backends import is_keras_model
from ..engine import checked_backend, map_shape_of, prepared_from, region_weights
from ..options import IGOptions, Region, check_callable, check_model
from ..points import ProgressCallback, checked_output, report_progress
from ..validation import as_image
from .base import AttributionResult, Started

# Names shown in an error for an unknown layer; a deep model has hundreds.
LAYERS_LISTED = 30
# Tokens before a layer's grid of patch tokens: a class token and registers (DINOv2 has 4).
MAX_LEADING_TOKENS = 16


def named_layers(model: Any) -> dict[str, Any]:
    """The model's layers by the name ``layer=`` takes, in call order as the model lists them.

    Raises a ``TypeError`` naming ``model`` for a model without layers (a plain callable).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> list(named_layers(model))
    ['c']
    """
    if is_keras_model(model):
        return {
            layer.name: layer
            for layer in model._flatten_layers(include_self=False)
            if type(layer).__name__ != "InputLayer"  # it holds the input; it never runs
        }
    if hasattr(model, "named_modules") and callable(model.named_modules):
        return {name: module for name, module in model.named_modules() if name}
    raise TypeError(
        "model: Grad-CAM needs a Keras model or a torch.nn.Module (a layer to read); "
        f"got {type(model).__name__}, which has no named layers"
    )


def _class_name(layer: Any) -> str:
    return type(layer).__name__.lower()


def _is_convolution(layer: Any) -> bool:
    return bool(re.search(r"conv.*2d", _class_name(layer))) and "transpose" not in _class_name(
        layer
    )


def _is_token_mixing(layer: Any) -> bool:
    name = _class_name(layer)
    return "attention" in name or name.endswith(("block", "encoderlayer"))


def _is_token_stream(layer: Any) -> bool:
    """A Keras functional graph's ``Add`` or normalisation layer whose output is tokens."""
    if _class_name(layer) != "add" and "normalization" not in _class_name(layer):
        return False
    try:  # a layer called once in a functional graph has a symbolic output
        return len(layer.output.shape) == 3
    except (AttributeError, ValueError):
        return False


def _keras_children(layer: Any) -> list[Any]:
    import keras

    # A functional model lists its layers in the order it runs them, a
    # Sequential in its order, any other layer in the order it assigned them.
    if isinstance(layer, keras.Model):
        children = list(layer.layers)
    else:
        children = list(layer._flatten_layers(include_self=False, recursive=False))
    return [child for child in children if type(child).__name__ != "InputLayer"]


def layers_in_order(model: Any) -> list[tuple[str, Any, int]]:
    """The model's named layers in graph order, each after the layers it calls.

    Each comes as ``(name, layer, first)``, ``first`` being the position in
    the list at which the layer starts (its first sublayer's; its own for a
    layer without any). A Keras functional model's layers come in the order
    it runs them (topological), a Sequential's in its order; a nested model
    or a layer with sublayers (a subclassed layer, a ``torch.nn.Module``)
    comes after its sublayers, which come in the order they were assigned:
    the order the usual models (keras_hub's, timm's, torchvision's) call them
    in. A Keras name used twice keeps its last layer, as ``named_layers`` does.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)), torch.nn.ReLU())
    >>> [(name, first) for name, _, first in layers_in_order(model)]
    [('0.0', 0), ('0', 0), ('1', 2)]
    """
    named = named_layers(model)
    ordered: list[tuple[str, Any, int]] = []
    keras_model = is_keras_model(model)

    def visit(prefix: str, layer: Any) -> None:
        first = len(ordered)
        if keras_model:
            for child in _keras_children(layer):
                visit(child.name, child)
        else:
            for name, child in layer.named_children():
                visit(f"{prefix}.{name}" if prefix else name, child)
        if prefix and named.get(prefix) is layer:
            ordered.append((prefix, layer, first))

    visit("", model)
    return ordered


def default_layer(model: Any) -> str:
    """The layer Grad-CAM reads by default (see the module docstring).

    Examples
    --------
    >>> import keras
    >>> tokens = keras.Input((4, 8))
    >>> mixed = keras.layers.MultiHeadAttention(2, 4, name="attention")(tokens, tokens)
    >>> grid = keras.layers.Reshape((2, 2, 8))(keras.layers.Add(name="residual")([tokens, mixed]))
    >>> default_layer(keras.Model(tokens, keras.layers.Conv2D(1, 1, name="last")(grid)))
    'last'
    """
    layers = layers_in_order(model)
    mixing = [index for index, (_, layer, _) in enumerate(layers) if _is_token_mixing(layer)]
    # The last token-mixing layer to start: the last attention, inside the last block.
    mixed_from = max((layers[index][2] for index in mixing), default=len(layers))
    keras_model = is_keras_model(model)

    def token_layer(index: int, layer: Any) -> bool:
        if _class_name(layer).endswith(("block", "encoderlayer")):
            return True
        return keras_model and bool(mixing) and index > mixing[0] and _is_token_stream(layer)

    chosen = [
        name
        for index, (name, layer, _) in enumerate(layers)
        if _is_convolution(layer) or (index < mixed_from and token_layer(index, layer))
    ]
    if not chosen:
        raise ValueError(
            "layer: the model has no 2-D convolution, nor a transformer block (class name "
            "ending in Block or EncoderLayer) or a Keras Add or normalisation layer on tokens "
            f"before its last attention, to default to; pass layer= one of "
            f"{_listed(named_layers(model))}"
        )
    return chosen[-1]


def _listed(layers: dict[str, Any]) -> str:
    names = list(layers)
    shown = ", ".join(map(repr, names[:LAYERS_LISTED]))
    return shown + (f", ... ({len(names)} layers)" if len(names) > LAYERS_LISTED else "")


def check_layer(model: Any, layer: str | None) -> tuple[str, Any]:
    """The layer's name and object, or raise naming ``layer`` with the candidates.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, name="c")])
    >>> check_layer(model, "d")
    Traceback (most recent call last):
    ...
    ValueError: layer: no layer named 'd' in the model; expected one of 'c'
    """
    layers = named_layers(model)
    if layer is None:
        layer = default_layer(model)
    if not isinstance(layer, str):
        raise TypeError(f"layer: expected a layer's name (str), got {type(layer).__name__}")
    if layer not in layers:
        raise ValueError(
            f"layer: no layer named {layer!r} in the model; expected one of {_listed(layers)}"
        )
    return layer, layers[layer]


def _is_plain_relu(layer: Any) -> bool:
    if type(layer).__name__ != "ReLU":
        return False
    # Keras' ReLU layer with a slope, cap or threshold is not a plain ReLU.
    return all(
        not getattr(layer, name, None) for name in ("negative_slope", "max_value", "threshold")
    )


def relu_layers(model: Any) -> list[Any]:
    """The model's ReLUs that guided backpropagation replaces (see the module docstring)."""
    if is_keras_model(model):
        import keras

        return [
            layer
            for layer in model._flatten_layers(include_self=False)
            if getattr(layer, "activation", None) is keras.activations.relu or _is_plain_relu(layer)
        ]
    import torch

    return [module for module in model.modules() if isinstance(module, torch.nn.ReLU)]


@contextmanager
def watching(
    model: Any, layer: Any, tap: Callable[[Any], Any], relu: Callable[[Any], Any] | None
) -> Iterator[None]:
    """Inside: ``layer``'s output ``out`` becomes ``tap(out)`` and, with ``relu``, the
    model's ReLUs (``relu_layers``) run ``relu``; everything is put back on exit.

    A Keras layer's ``call`` is replaced on the instance (Keras' ``__call__``
    looks it up there); a Module gets a forward hook.
    """
    with ExitStack() as stack:
        if is_keras_model(model):
            _replace_call(stack, layer, lambda call: lambda *a, **k: tap(call(*a, **k)))
        else:
            handle = layer.register_forward_hook(lambda _module, _inputs, output: tap(output))
            stack.callback(handle.remove)
        if relu is not None:
            _guide(stack, model, relu)
        yield


def _guide(stack: ExitStack, model: Any, relu: Callable[[Any], Any]) -> None:
    keras_model = is_keras_model(model)
    for each in relu_layers(model):
        if not keras_model:
            # An in-place ReLU has overwritten its input with its output,
            # which has the same sign: relu of it is the same.
            hook = each.register_forward_hook(lambda _m, inputs, _output: relu(inputs[0]))
            stack.callback(hook.remove)
        elif _is_plain_relu(each):
            _replace_call(stack, each, lambda _call: lambda x, *a, **k: relu(x))
        else:
            _replace_attribute(stack, each, "activation", relu)


def _replace_attribute(stack: ExitStack, owner: Any, name: str, value: Any) -> None:
    # Keras layers track what is set on them; these are set around it and removed again.
    had = name in vars(owner)
    saved = vars(owner).get(name)
    object.__setattr__(owner, name, value)
    if had:
        stack.callback(object.__setattr__, owner, name, saved)
    else:
        stack.callback(object.__delattr__, owner, name)


def _replace_call(stack: ExitStack, layer: Any, wrap: Callable[[Any], Any]) -> None:
    _replace_attribute(stack, layer, "call", wrap(layer.call))


def feature_map(
    activation: np.ndarray, channels_first: bool, image_shape: tuple[int, int]
) -> np.ndarray:
    """One image's layer output as (h, w, K), or raise naming ``layer``; tokens on their grid
    (``token_grid``).

    Examples
    --------
    >>> feature_map(np.zeros((5, 4)), False, (8, 8)).shape  # a class token and 2 x 2
    (2, 2, 4)
    """
    if activation.ndim == 3:
        return np.moveaxis(activation, 0, -1) if channels_first else activation
    if activation.ndim == 2:
        tokens = activation.shape[0]
        rows, columns = token_grid(tokens, image_shape)
        return activation[tokens - rows * columns :].reshape(rows, columns, -1)
    raise ValueError(
        "layer: expected its output to be a feature map (N, h, w, K) or tokens (N, T, D), "
        f"got shape {(1, *activation.shape)}"
    )


def token_grid(tokens: int, image_shape: tuple[int, int]) -> tuple[int, int]:
    """The (rows, columns) grid the last of ``tokens`` form, after at most
    ``MAX_LEADING_TOKENS`` (class and register tokens); or raise naming ``layer``.

    First the largest grid of square patches that tile the image exactly (a
    patch size dividing both sides: 3 x 5 patches of 8 px on 24 x 40); else the
    largest grid of the image's aspect (rounded: a stem that drops the last
    pixels) or the largest square (a model that resizes to a square), whichever
    leaves fewer tokens before it. Where a square would leave fewer (or as
    few) tokens than the grid read, the count cannot tell them apart: a
    warning names both.

    Examples
    --------
    >>> token_grid(197, (224, 224)), token_grid(33, (16, 32)), token_grid(197, (16, 32))
    ((14, 14), (4, 8), (14, 14))
    """
    height, width = image_shape

    def leading(grid: tuple[int, int]) -> int:
        return tokens - grid[0] * grid[1]

    side = math.isqrt(tokens)
    square = (side, side)
    tiles = [
        (height // size, width // size)
        for size in range(1, math.gcd(height, width) + 1)
        if height % size == 0 and width % size == 0
    ]
    exact = [grid for grid in tiles if 0 <= leading(grid) <= MAX_LEADING_TOKENS]
    fitting = [
        (rows, columns)
        for columns in range(1, tokens + 1)
        if (rows := max(1, round(columns * height / width))) * columns <= tokens
    ]
    if exact:
        grid = exact[0]
    elif fitting:
        grid = min((max(fitting, key=lambda grid: grid[0] * grid[1]), square), key=leading)
    else:
        grid = square
    if tokens < 1 or leading(grid) > MAX_LEADING_TOKENS:
        raise ValueError(
            f"layer: its {tokens} tokens form no grid of the image's aspect ({height} x "
            f"{width}) or a square one after at most {MAX_LEADING_TOKENS} leading tokens; "
            "choose a layer whose output is a feature map (N, h, w, K)"
        )
    if grid != square and leading(square) <= leading(grid):
        warnings.warn(
            f"layer: its {tokens} tokens could be a {grid[0]} x {grid[1]} grid (the image's "
            f"shape) or {side} x {side} (a model that resizes to a square); read as "
            f"{grid[0]} x {grid[1]}",
            stacklevel=4,
        )
    return grid


def resize_bilinear(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``values`` (h, w) resized to ``size`` (H, W): bilinear, half-pixel centres, clamped edges.

    Examples
    --------
    >>> resize_bilinear(np.array([[0.0, 1.0]]), (1, 4)).tolist()
    [[0.0, 0.25, 0.75, 1.0]]
    """
    rows = _interpolation_matrix(values.shape[0], size[0])
    columns = _interpolation_matrix(values.shape[1], size[1])
    return rows @ np.asarray(values, np.float64) @ columns.T


# A Grad-CAM call builds two; the same sizes come back image after image.
@functools.lru_cache(maxsize=32)
def _interpolation_matrix(source: int, target: int) -> np.ndarray:
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
    low = np.minimum(np.floor(position).astype(np.int64), source - 1)
    high = np.minimum(low + 1, source - 1)
    fraction = position - low
    matrix = np.zeros((target, source))
    np.add.at(matrix, (np.arange(target), low), 1.0 - fraction)
    np.add.at(matrix, (np.arange(target), high), fraction)
    matrix.flags.writeable = False  # shared by every call of these sizes
    return matrix


def _channels_first(model: Any, layer: Any) -> bool:
    if is_keras_model(model):
        return getattr(layer, "data_format", "channels_last") == "channels_first"
    return True


def _run(
    name: str,
    model: Any,
    image: Any,
    layer: str | None,
    options: IGOptions,
    progress: ProgressCallback | None,
) -> AttributionResult:
    began = time.perf_counter()
    check_model(model)
    layer_name, layer_object = check_layer(model, layer)
    if name == "guided_gradcam" and not relu_layers(model):
        raise ValueError(
            "model: Guided Grad-CAM found no ReLU to guide (a Keras layer with "
            "activation='relu', a keras.layers.ReLU or a torch.nn.ReLU module); a ReLU "
            "called as a function cannot be replaced, so its guided backpropagation would "
            "be the plain gradient"
        )
    check_callable("progress", progress)
    converted = as_image(image)
    backend = checked_backend(model, converted, options)
    started: list[Started] = []
    picked: list[np.ndarray] = []

    def choose(raw: Any) -> np.ndarray:
        # The model's output at the image serves as ``start``'s forward pass:
        # the target is resolved from it before the backward pass.
        map_shape = map_shape_of(raw) if isinstance(options.target, Region) else None
        region = region_weights(options, converted.shape[:2], map_shape)
        reduced = raw if region is None else np.einsum("nhwk,hw->nk", np.asarray(raw), region)
        output = checked_output(reduced, 1)
        [prepared] = prepared_from(model, backend, converted[None], output, options, region)
        started.append(
            Started(prepared, options, prepared.target_index(options.target), progress, began)
        )
        columns, signs = prepared.classifier.columns_and_signs(np.array([started[0].target]))
        weights = np.zeros(output.shape[1], np.float32)
        np.add.at(weights, columns[0], signs[0])
        cotangent = weights[None] if region is None else region[None, ..., None] * weights
        picked.append(cotangent.astype(np.float32))
        return picked[0]

    def watch(tap: Callable[[Any], Any], relu: Callable[[Any], Any] | None) -> Any:
        return watching(model, layer_object, tap, relu)

    _, activation, gradient, _ = backend.layer_gradients(converted, choose, watch, False)
    first = _channels_first(model, layer_object)
    activations = feature_map(activation, first, converted.shape[:2]).astype(np.float64)
    weights = feature_map(gradient, first, converted.shape[:2]).astype(np.float64).mean(axis=(0, 1))
    cam = np.maximum(activations @ weights, 0.0)
    attributions = resize_bilinear(cam, converted.shape[:2])[..., None]
    passes = 2 if name == "guided_gradcam" else 1
    report_progress(progress, 1, passes)
    if passes == 2:
        # A pass of its own: the map's layer gradient must not go through guided ReLUs.
        _, _, _, guided = backend.layer_gradients(converted, lambda _raw: picked[0], watch, True)
        assert guided is not None
        attributions = attributions * guided
        report_progress(progress, 2, passes)
    return started[0].result(attributions, name, {"layer": layer_name}, passes)


def gradcam(
    model: Any,
    image: Any,
    *,
    layer: str | None = None,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Grad-CAM of ``model``'s ``target`` score at ``image``, read at ``layer``.

    Parameters
    ----------
    model, image, target, preprocess, pixel_range, precision, class_names
        As for ``integrated_gradients``; ``model`` is a Keras model (on
        TensorFlow, JAX or PyTorch) or a ``torch.nn.Module``.
    layer : str, optional
        The layer's name (see the module docstring); default the last 2-D
        convolution or, if later, the last token layer (a transformer block,
        a Keras ViT's residual add or norm) before the last attention.
        An unknown name raises a ``ValueError`` listing the model's layers
        before the model runs.
    progress : callable, optional
        Called once, ``progress(1, 1)``, when the map is done (Guided
        Grad-CAM: after each of its two passes).

    Returns
    -------
    AttributionResult
        ``explainer="gradcam"``; ``attributions`` (H, W, 1), the map in
        score units (not rescaled to [0, 1]); ``parameters`` holds
        ``layer``; ``points_used`` 1 (one forward and backward pass).

    Examples
    --------
    A 1x1 convolution copying the image into two channels, averaged: class 0's
    gradient is 1/16 on channel 0, so the map is the image over 16.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1, name="c",
    ...     kernel_initializer="ones", use_bias=False), keras.layers.GlobalAveragePooling2D()])
    >>> image = np.arange(16.0).reshape(4, 4, 1)
    >>> res = gradcam(model, image, target=0)
    >>> res.parameters, bool(np.allclose(res.attributions[..., 0], image[..., 0] / 16))
    ({'layer': 'c'}, True)
    """
    options = IGOptions(
        target=target,
        preprocess=preprocess,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    return _run("gradcam", model, image, layer, options, progress)


def guided_gradcam(
    model: Any,
    image: Any,
    *,
    layer: str | None = None,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    progress: ProgressCallback | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Guided Grad-CAM: the Grad-CAM map times guided backpropagation, per pixel and channel.

    Parameters are those of ``gradcam``.

    Returns
    -------
    AttributionResult
        ``explainer="guided_gradcam"``; ``attributions`` (H, W, C), the
        Grad-CAM map (score units) times the guided gradient with respect to
        the input pixels; ``parameters`` holds ``layer``; ``points_used`` 2
        (a plain pass for the map, a guided one for the input's gradient).
    """
    options = IGOptions(
        target=target,
        preprocess=preprocess,
        pixel_range=pixel_range,
        precision=precision,
        class_names=class_names,
    )
    return _run("guided_gradcam", model, image, layer, options, progress)
