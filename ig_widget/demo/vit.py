"""A small vision transformer in Keras: the demo's second architecture.

``build_vit`` makes the classic ViT layout (Dosovitskiy et al. 2021) from
Keras' own layers: a strided convolution cuts the image into patches and
embeds each, ``PatchTokens`` adds a learned position embedding (and, if
asked, prepends a class token), pre-norm blocks of multi-head self-attention
and a GELU MLP follow, each with its residual connection, then a final layer
norm and the pooling. The demo model (``ig_widget.demo.model("vit")``) and
the tests' small ViTs are built here, so that both are the same code.

This module imports Keras: ``ig_widget.demo`` imports it only when a ViT is
built or loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from .train import conv_block

POOLINGS = ("class_token", "max", "mean")


@keras.saving.register_keras_serializable(package="ig_widget")
class PatchTokens(keras.layers.Layer):
    """Patch tokens plus a learned position embedding; optionally a class token first.

    Takes (N, tokens, dim); returns (N, tokens + 1, dim) with ``class_token``
    (the token's learned vector is position 0), else (N, tokens, dim).
    """

    def __init__(self, class_token: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.class_token = bool(class_token)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        tokens, dim = int(input_shape[1] or 0), int(input_shape[2] or 0)
        self.position = self.add_weight(
            shape=(tokens + int(self.class_token), dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position",
        )
        self.token = (
            self.add_weight(shape=(1, 1, dim), initializer="zeros", name="class_token")
            if self.class_token
            else None
        )

    def call(self, patches: Any) -> Any:
        ops = keras.ops
        if self.token is not None:
            first = ops.broadcast_to(
                ops.cast(self.token, patches.dtype), (ops.shape(patches)[0], 1, patches.shape[-1])
            )
            patches = ops.concatenate([first, patches], axis=1)
        return patches + ops.cast(self.position, patches.dtype)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        tokens = input_shape[1]
        if tokens is not None and self.class_token:
            tokens += 1
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "class_token": self.class_token}


@keras.saving.register_keras_serializable(package="ig_widget")
class ClassToken(keras.layers.Layer):
    """The first token of (N, tokens, dim): the class token's output, (N, dim)."""

    def call(self, tokens: Any) -> Any:
        return tokens[:, 0]

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], input_shape[2])


# What a saved ViT needs to load (also found through Keras' registry once imported).
CUSTOM_OBJECTS = {"ig_widget>PatchTokens": PatchTokens, "ig_widget>ClassToken": ClassToken}


def build_vit(
    size: int = 96,
    *,
    patch: int = 8,
    dim: int = 48,
    depth: int = 2,
    heads: int = 4,
    mlp: int = 192,
    classes: int = 6,
    pooling: str = "max",
    rescale: float | None = 1 / 255.0,
    stem: Sequence[int] = (),
    softmax: bool = True,
    name: str = "shapes_vit",
) -> Any:
    """A small ViT from (N, size, size, 3) pixels to class scores.

    Parameters
    ----------
    size : int
        Image side in pixels; a multiple of ``patch``.
    patch : int
        Patch side in pixels: the image is ``(size // patch) ** 2`` tokens.
    dim, depth, heads, mlp : int
        Token width, number of transformer blocks, attention heads per block
        (each ``dim // heads`` wide) and the MLP's hidden width.
    classes : int
    pooling : {"class_token", "max", "mean"}
        What the classifier reads: the class token's output, or the maximum
        or the mean over the patch tokens.
    rescale : float or None
        The first layer multiplies the pixels by this (None: no such layer,
        for a ``preprocess`` outside the model).
    stem : sequence of int
        Channels of 3 x 3, stride 2 convolution blocks (the demo CNN's:
        batch norm, ReLU) before the patch embedding, none by default. With k of them a token covers
        ``2 ** k * patch`` pixels square: the "hybrid" ViT of Dosovitskiy et
        al. (2021, section 3.1), a convolutional stem which makes a small ViT
        train far faster on little data (Xiao et al. 2021, "Early
        convolutions help transformers see better").
    softmax : bool
        End in a separate ``Softmax`` layer named "probabilities" after the
        "logits" layer (else the logits are the output).
    name : str

    Returns
    -------
    keras.Model

    Examples
    --------
    >>> build_vit().output_shape
    (None, 6)
    """
    stride = patch * 2 ** len(stem)
    if size % stride:
        raise ValueError(f"size: expected a multiple of {stride} (the token's side), got {size}")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling: expected one of {', '.join(POOLINGS)}, got {pooling!r}")
    layers = keras.layers
    inputs = keras.Input((size, size, 3))
    x = inputs if rescale is None else layers.Rescaling(rescale)(inputs)
    for channels in stem:
        for layer in conv_block(channels, 3, 2):
            x = layer(x)
    x = layers.Conv2D(dim, patch, strides=patch, name="patch_embedding")(x)
    x = layers.Reshape(((size // stride) ** 2, dim))(x)
    x = PatchTokens(class_token=pooling == "class_token", name="tokens")(x)
    for block in range(depth):
        mixed = layers.LayerNormalization(epsilon=1e-6, name=f"block{block}_norm1")(x)
        mixed = layers.MultiHeadAttention(heads, dim // heads, name=f"block{block}_attention")(
            mixed, mixed
        )
        x = layers.Add()([x, mixed])
        mixed = layers.LayerNormalization(epsilon=1e-6, name=f"block{block}_norm2")(x)
        mixed = layers.Dense(mlp, activation="gelu", name=f"block{block}_mlp1")(mixed)
        mixed = layers.Dense(dim, name=f"block{block}_mlp2")(mixed)
        x = layers.Add()([x, mixed])
    x = layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    if pooling == "class_token":
        x = ClassToken(name="class_token_output")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling1D()(x)
    else:
        x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(classes, name="logits")(x)
    if softmax:
        outputs = layers.Softmax(name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name=name)
