"""Small models with known behaviour, shared by the test files.

Only ``linear_model`` needs TensorFlow, and it imports it itself, so that the
Keras models here also serve tests that run Keras on JAX or PyTorch with
TensorFlow blocked.
"""

from __future__ import annotations

import keras
import numpy as np


def linear_model(weights: np.ndarray):
    """F(x) = x.flatten() @ weights: IG is exactly weights * (x - x')."""
    import tensorflow as tf

    w = tf.constant(weights.reshape(-1, weights.shape[-1]), tf.float32)

    def model(batch):
        return tf.reshape(batch, (tf.shape(batch)[0], -1)) @ w

    return model


def tiny_cnn(
    size: int = 16, channels: int = 3, classes: int = 4, seed: int = 0, rescale: bool = True
) -> keras.Model:
    """A small nonlinear CNN returning logits, deterministic for a seed.

    Its output layer is initialised wide so that class scores differ by whole
    units: a near-constant model would make the relative completeness error
    meaningless. ``rescale=False`` leaves out the 0..255 -> -1..1 input scaling,
    for tests that pass it as ``preprocess``.
    """
    keras.utils.set_random_seed(seed)
    scaling = [keras.layers.Rescaling(1 / 127.5, offset=-1)] if rescale else []
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            *scaling,
            keras.layers.Conv2D(8, 3, activation="tanh"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                classes, kernel_initializer=keras.initializers.RandomNormal(stddev=3)
            ),
        ]
    )


def random_image(size: int = 16, channels: int = 3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (size, size, channels)).astype(np.float32)


def seeded_weights(model: keras.Model, seed: int = 0) -> list[np.ndarray]:
    """NumPy weights for ``model`` that do not depend on the Keras backend.

    Keras' initialisers draw different numbers on TensorFlow, JAX and PyTorch;
    these let the same network run on every backend. Kernels get a
    1/sqrt(fan-in) scale, the last one 3 times that (wide logits, as in
    ``tiny_cnn``); biases a small spread.
    """
    rng = np.random.default_rng(seed)
    shapes = [w.shape for w in model.get_weights()]
    weights = []
    for i, shape in enumerate(shapes):
        if len(shape) == 1:
            weights.append(rng.normal(0, 0.1, shape).astype(np.float32))
            continue
        scale = (3.0 if i == len(shapes) - 2 else 1.0) / np.sqrt(np.prod(shape[:-1]))
        weights.append(rng.normal(0, scale, shape).astype(np.float32))
    return weights


def torch_cnn(seed: int = 0):
    """A channels-first PyTorch CNN, as torchvision and Captum users have, with logits
    wide apart; it takes (N, C, H, W) in -1..1 (see ``channels_first``)."""
    import torch

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.Tanh(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    )
    with torch.no_grad():
        model[-1].weight.mul_(10)
    return model


def channels_first(batch):
    """The engine's ``preprocess`` for ``torch_cnn``: raw (N, H, W, C) to (N, C, H, W) in -1..1."""
    return batch.permute(0, 3, 1, 2) / 127.5 - 1


class CountingModel:
    """Wraps a model and counts batches, to prove validation happens first."""

    def __init__(self, model):
        self.model = model
        self.inputs = model.inputs  # so the engine can check the declared input shape
        self.calls = 0

    def __call__(self, batch):
        self.calls += 1
        return self.model(batch)


# The small ViTs: 16 x 16 images in 4 x 4 patches (16 tokens), two pre-norm
# blocks with GELU MLPs, a class token; the same layout in Keras and PyTorch,
# so that ``torch_vit_like`` copies a Keras ViT's weights exactly.
VIT = {"size": 16, "patch": 4, "dim": 16, "depth": 2, "heads": 2, "mlp": 32, "classes": 4}
# ImageNet's channel statistics, the preprocessing ViTs are usually trained with.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def keras_vit(seed: int = 0, pooling: str = "class_token") -> keras.Model:
    """A small Keras ViT on preprocessed input (see ``keras_normalise``), returning logits.

    Its head is initialised wide (as in ``tiny_cnn``) so that class scores
    differ by whole units.
    """
    from ig_widget.demo.vit import build_vit

    keras.utils.set_random_seed(seed)
    model = build_vit(
        VIT["size"],
        patch=VIT["patch"],
        dim=VIT["dim"],
        depth=VIT["depth"],
        heads=VIT["heads"],
        mlp=VIT["mlp"],
        classes=VIT["classes"],
        pooling=pooling,
        rescale=None,
        softmax=False,
        name="tiny_vit",
    )
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    # A trained ViT's position embedding and class token are not zero or tiny;
    # random ones of unit scale make every token's attention differ.
    tokens = model.get_layer("tokens")
    for variable in tokens.weights:
        index = [id(w) for w in model.weights].index(id(variable))
        weights[index] = rng.normal(0, 0.5, variable.shape).astype(np.float32)
    kernel = model.get_layer("logits").kernel
    index = [id(w) for w in model.weights].index(id(kernel))
    weights[index] = weights[index] * 10
    model.set_weights(weights)
    return model


def keras_normalise(batch):
    """``preprocess`` for ``keras_vit``: raw 0..255 pixels to ImageNet-normalised ones."""
    return (batch / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


def torch_normalise(batch):
    """``preprocess`` for ``torch_vit``: raw (N, H, W, C) 0..255 to normalised (N, C, H, W)."""
    import torch

    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    return (batch.permute(0, 3, 1, 2) / 255.0 - mean) / std


def torch_vit(pooling: str = "class_token"):
    """A channels-first PyTorch ViT of ``VIT``'s layout (random weights; see ``torch_vit_like``).

    ``torch.nn.TransformerEncoderLayer`` blocks (pre-norm, GELU), as a
    hand-written PyTorch ViT has them.
    """
    import torch

    class TinyViT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dim, tokens = VIT["dim"], (VIT["size"] // VIT["patch"]) ** 2
            self.pooling = pooling
            self.embed = torch.nn.Conv2d(3, dim, VIT["patch"], stride=VIT["patch"])
            self.class_token = torch.nn.Parameter(torch.zeros(1, 1, dim))
            extra = int(pooling == "class_token")
            self.position = torch.nn.Parameter(torch.randn(1, tokens + extra, dim) * 0.5)
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(
                    dim,
                    VIT["heads"],
                    VIT["mlp"],
                    dropout=0.0,
                    activation="gelu",
                    layer_norm_eps=1e-6,
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(VIT["depth"])
            )
            self.norm = torch.nn.LayerNorm(dim, eps=1e-6)
            self.head = torch.nn.Linear(dim, VIT["classes"])

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            tokens = self.embed(images).flatten(2).transpose(1, 2)
            if self.pooling == "class_token":
                first = self.class_token.expand(tokens.shape[0], -1, -1)
                tokens = torch.cat([first, tokens], dim=1)
            tokens = tokens + self.position
            for block in self.blocks:
                tokens = block(tokens)
            tokens = self.norm(tokens)
            pooled = tokens[:, 0] if self.pooling == "class_token" else tokens.mean(dim=1)
            return self.head(pooled)

    return TinyViT()


def torch_vit_like(model: keras.Model):
    """A ``torch_vit`` computing the same function as the Keras ``keras_vit`` ``model``."""
    import torch

    pooling = "class_token" if model.get_layer("tokens").class_token else "mean"
    vit = torch_vit(pooling)
    dim = VIT["dim"]

    def put(parameter: torch.Tensor, value: np.ndarray) -> None:
        with torch.no_grad():
            parameter.copy_(torch.tensor(np.ascontiguousarray(value), dtype=torch.float32))

    def numpy(variable) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(variable))

    embed = model.get_layer("patch_embedding")
    put(vit.embed.weight, numpy(embed.kernel).transpose(3, 2, 0, 1))
    put(vit.embed.bias, numpy(embed.bias))
    tokens = model.get_layer("tokens")
    put(vit.position, numpy(tokens.position)[None])
    if pooling == "class_token":
        put(vit.class_token, numpy(tokens.token))
    for index, block in enumerate(vit.blocks):
        for ours, theirs in (("norm1", block.norm1), ("norm2", block.norm2)):
            norm = model.get_layer(f"block{index}_{ours}")
            put(theirs.weight, numpy(norm.gamma))
            put(theirs.bias, numpy(norm.beta))
        attention = model.get_layer(f"block{index}_attention")
        # Keras keeps (dim, heads, key_dim) kernels per projection; PyTorch one
        # (3 dim, dim) matrix, rows grouped by head.
        projections = [
            attention.query_dense,
            attention.key_dense,
            attention.value_dense,
        ]
        put(
            block.self_attn.in_proj_weight,
            np.concatenate([numpy(p.kernel).reshape(dim, dim).T for p in projections]),
        )
        put(
            block.self_attn.in_proj_bias,
            np.concatenate([numpy(p.bias).reshape(dim) for p in projections]),
        )
        output = attention.output_dense
        put(block.self_attn.out_proj.weight, numpy(output.kernel).reshape(dim, dim).T)
        put(block.self_attn.out_proj.bias, numpy(output.bias))
        for ours, theirs in (("mlp1", block.linear1), ("mlp2", block.linear2)):
            dense = model.get_layer(f"block{index}_{ours}")
            put(theirs.weight, numpy(dense.kernel).T)
            put(theirs.bias, numpy(dense.bias))
    norm = model.get_layer("norm")
    put(vit.norm.weight, numpy(norm.gamma))
    put(vit.norm.bias, numpy(norm.beta))
    head = model.get_layer("logits")
    put(vit.head.weight, numpy(head.kernel).T)
    put(vit.head.bias, numpy(head.bias))
    return vit.eval()


# Small settings per method; a method added to the registry later runs with its defaults.
VIT_METHOD_SETTINGS = {
    "integrated_gradients": {"steps": 16},
    "smoothgrad": {"samples": 6, "seed": 0},
    "expected_gradients": {
        "references": np.stack([random_image(VIT["size"], seed=s) * 0.5 for s in range(3)]),
        "samples": 12,
        "seed": 0,
    },
    "blur_ig": {"max_sigma": 4.0, "steps": 12},
    "guided_ig": {"steps": 12, "baseline": "uniform", "seed": 0},
    "xrai": {"steps": 8, "method": "gausslegendre"},
}


def plain_targets_both_ways(model, preprocess=None, size: int = 16, seed: int = 0):
    """Gradient sums and scores of plain-target points, sent to ``model``'s backend as
    the engine sends them (one weighted column per point) and widened to two
    columns with a zero second weight (how a batch that also holds a contrast
    sends them): ((sums, scores), (sums, scores), index columns sent)."""
    from ig_widget.backends import backend_for
    from ig_widget.points import ArrayRows, Classifier, PointSet, _prepare_call

    rng = np.random.default_rng(seed)
    rows = rng.uniform(0, 255, (3, size, size, 3)).astype(np.float32)
    backend = backend_for(model, preprocess)
    classifier = Classifier(model=model, backend=backend, columns=4)
    count = 12
    points = PointSet(
        rows,
        rows,
        start_index=rng.integers(0, 3, count),
        end_index=rng.integers(0, 3, count),
        alphas=rng.uniform(0, 1, count),
        weights=rng.normal(size=count),
        directional=rng.integers(0, 2, count),
        targets=rng.integers(0, 4, count),
        segments=rng.integers(0, 5, count),
        n_segments=5,
    )
    static = getattr(backend, "static_shapes", False)
    call = _prepare_call(
        classifier, points.batch(0, count), 0, ArrayRows(rows), ArrayRows(rows), 5, 16, static
    )
    index = np.concatenate([call.index, call.index[:, 1:2]], axis=1)
    values = np.concatenate([call.values, np.zeros_like(call.values[:, :1])], axis=1)
    common = (call.rows, call.directional)
    one = backend.gradient_sums(*common, call.index, call.values, call.group_lines)
    two = backend.gradient_sums(*common, index, values, call.group_lines)
    return one, two, call.index.shape[1] - 2


def convolution_names(model) -> list[str]:
    """The names of a Keras model's Conv2D layers, in order (Keras numbers them per
    process, so a test reads them from the model rather than writing them down)."""
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def random_dataset(count: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` random images (size x size RGB), labels among 4 classes, and a mask
    of the same central square on each."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, 3)).astype(np.uint8)
    labels = rng.integers(0, 4, count)
    masks = np.zeros((count, size, size), bool)
    masks[:, 4:12, 4:12] = True
    return images, labels, masks
