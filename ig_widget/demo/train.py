"""Train the bundled demo models: ``python -m ig_widget.demo.train [--model vit]``.

Two architectures on the same data: ``cnn`` (the default, ``shapes_cnn.keras``)
and ``vit``, a small vision transformer (``shapes_vit.keras``, see
``ig_widget.demo.vit``). Each run is reproducible from its seed (TensorFlow's
deterministic ops are switched on); the CNN takes a few minutes on two CPU
cores, the ViT (three times the epochs) about 20 minutes. It writes the model next to
this file, where ``ig_widget.demo.model()`` loads it from.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..frameworks import import_framework
from ..validation import check_choice, check_int, check_path_for_writing
from .shapes import class_names, make_shapes

MODEL_PATH = Path(__file__).with_name("shapes_cnn.keras")
VIT_PATH = Path(__file__).with_name("shapes_vit.keras")
IMAGE_SIZE = 96
TRAIN_SEED = 1
# Images with this seed are used to report accuracy during training; the
# quality tests use other seeds, never seen here.
VALIDATION_SEED = 2
TRAIN_IMAGES = 12_000
EPOCHS = 4
# Small batches give more updates per image, which matters more than
# throughput on a CPU budget of a few minutes.
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
# Batch statistics settle within the few hundred steps of a short run.
BATCH_NORM_MOMENTUM = 0.9
# The ViT: the same recipe, more passes at a lower rate.
VIT_EPOCHS = 12
# A hybrid ViT: two of the CNN's blocks as the stem, then 2 x 2 patches of
# their 24 x 24 map, so each of the 144 tokens covers 8 x 8 pixels. Without the
# stem the same transformer stayed at chance (0.17) through 750 training steps.
VIT_STEM = (16, 32)
VIT_PATCH = 2
# An MLP of 64 (not the usual 4 x 48) keeps its FLOPs near the CNN's: XLA counts
# 28.4 M per image against the CNN's 25.3 M (benchmarks/vit.py).
VIT_MLP = 64
VIT_LEARNING_RATE = 2e-3
ARCHITECTURES = ("cnn", "vit")


def build_model(size: int = IMAGE_SIZE, classes: int = len(class_names)) -> Any:
    """The demo architecture: a small all-convolutional network ending in softmax.

    It takes raw pixels 0..255 (the rescaling is its first layer) and returns
    class probabilities. Its last layer is a separate ``Softmax`` layer, so the
    logits are the output of ``model.layers[-2]``. Each class score reads the
    strongest response of every feature anywhere in the image (global max
    pooling): the one small object, not the average over the clutter around
    it, decides, which also makes the network learn fast.

    Examples
    --------
    >>> build_model().output_shape
    (None, 6)
    """
    keras = import_framework("keras", "demo.build_model")
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Rescaling(1 / 255.0),
            *conv_block(16, 5, 2),
            *conv_block(32, 3, 2),
            *conv_block(64, 3, 2),
            *conv_block(64, 3, 1),
            layers.GlobalMaxPooling2D(),
            layers.Dense(classes, name="logits"),
            layers.Softmax(name="probabilities"),
        ],
        name="shapes_cnn",
    )


def conv_block(filters: int, kernel: int, stride: int) -> list[Any]:
    """Convolution (no bias), batch norm, ReLU: the CNN's block, also the ViT's stem."""
    import keras

    return [
        keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM),
        keras.layers.ReLU(),
    ]


def build(architecture: str) -> Any:
    """The demo architecture of that name: ``build_model()`` or the ViT's ``build_vit()``."""
    if architecture == "vit":
        from .vit import build_vit

        return build_vit(
            IMAGE_SIZE, stem=VIT_STEM, patch=VIT_PATCH, mlp=VIT_MLP, classes=len(class_names)
        )
    return build_model()


def train(
    *,
    seed: int = TRAIN_SEED,
    train_images: int = TRAIN_IMAGES,
    epochs: int | None = None,
    output: str | Path | None = None,
    verbose: int = 2,
    architecture: str = "cnn",
) -> dict[str, float]:
    """Train a demo model from scratch and save it to ``output``.

    For reproducibility this switches on TensorFlow's deterministic ops, for
    the rest of the process.

    Parameters
    ----------
    seed : int
        Seeds the training images and the weight initialisation.
    train_images, epochs : int
        Size of the generated training set and passes over it (by default
        ``EPOCHS`` for the CNN, ``VIT_EPOCHS`` for the ViT).
    output : path
        Where to write the ``.keras`` file (by default the bundled one).
    verbose : int
        Keras' ``fit`` verbosity.
    architecture : {"cnn", "vit"}

    Returns
    -------
    dict
        ``validation_accuracy`` and ``seconds`` (generation and training).

    Examples
    --------
    >>> train(train_images=120, epochs=1, output="/tmp/tiny.keras", verbose=0)  # doctest: +SKIP
    """
    architecture = check_choice("architecture", architecture, ARCHITECTURES)
    vit = architecture == "vit"
    seed = check_int("seed", seed, low=0)
    train_images = check_int("train_images", train_images, low=1)
    if epochs is None:
        epochs = VIT_EPOCHS if vit else EPOCHS
    epochs = check_int("epochs", epochs, low=1)
    if output is None:
        output = VIT_PATH if vit else MODEL_PATH
    output = check_path_for_writing(output, "output", suffixes=(".keras",))

    keras = import_framework("keras", "demo.train")
    tf = import_framework("tensorflow", "demo.train")
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    images, labels, _ = make_shapes(train_images, seed=seed, size=IMAGE_SIZE)
    val_images, val_labels, _ = make_shapes(1000, seed=VALIDATION_SEED, size=IMAGE_SIZE)

    model = build(architecture)
    steps = epochs * int(np.ceil(train_images / BATCH_SIZE))
    rate = VIT_LEARNING_RATE if vit else LEARNING_RATE
    schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        images.astype(np.float32),
        labels,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        validation_data=(val_images.astype(np.float32), val_labels),
        verbose=verbose,
    )
    _, accuracy = model.evaluate(val_images.astype(np.float32), val_labels, verbose=0)
    # A fresh, uncompiled copy leaves the optimizer state out of the file.
    inference_model = build(architecture)
    inference_model.set_weights(model.get_weights())
    inference_model.save(output)
    return {"validation_accuracy": float(accuracy), "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=TRAIN_SEED)
    parser.add_argument("--train-images", type=int, default=TRAIN_IMAGES)
    parser.add_argument("--model", choices=ARCHITECTURES, default="cnn")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    output = args.output or str(VIT_PATH if args.model == "vit" else MODEL_PATH)
    summary = train(
        seed=args.seed,
        train_images=args.train_images,
        epochs=args.epochs,
        output=output,
        architecture=args.model,
    )
    size_kb = Path(output).stat().st_size / 1024
    print(
        f"validation accuracy {summary['validation_accuracy']:.4f}, "
        f"{summary['seconds']:.0f} s, {size_kb:.0f} KB -> {output}"
    )


if __name__ == "__main__":
    main()
