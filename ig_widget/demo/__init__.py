"""The bundled demo: a small shapes classifier, example images and photographs.

Everything here works offline. ``model()`` is a small CNN trained on the
procedurally generated shapes of :func:`make_shapes` (six classes, see
``class_names``); ``model("vit")`` a small vision transformer trained the same
way (``ig_widget.demo.vit``). Both take raw pixels 0..255 of shape
(96, 96, 3) and return softmax probabilities, so they need no preprocess
function::

    import ig_widget as igw
    images, labels = igw.demo.images()
    result = igw.integrated_gradients(igw.demo.model(), images[0])
    vit = igw.integrated_gradients(igw.demo.model("vit"), images[0])
    igw.render(images[0], vit.attributions, patch=igw.demo.VIT_TOKEN)

``photo(name)`` returns one of a few openly licensed photographs (see
``photos/LICENSES.md``) for ImageNet models such as
``igw.keras_application("xception")``.

Importing this package is light: TensorFlow loads only when ``model()`` is called.
"""

from __future__ import annotations

import functools
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ..frameworks import import_framework
from ..validation import check_choice
from .shapes import class_names, make_shapes

__all__ = [
    "MODELS",
    "VIT_TOKEN",
    "class_names",
    "images",
    "make_shapes",
    "model",
    "photo",
    "photo_names",
]

MODEL_PATH = Path(__file__).with_name("shapes_cnn.keras")
VIT_PATH = Path(__file__).with_name("shapes_vit.keras")
MODELS: tuple[str, ...] = ("cnn", "vit")
# The side in pixels of the square each of the demo ViT's tokens covers: its
# patch view is ``igw.render(..., patch=VIT_TOKEN)``.
VIT_TOKEN = 8
PHOTO_DIR = Path(__file__).with_name("photos")
photo_names: tuple[str, ...] = ("chelsea", "coffee", "rocket")
# The examples from images() come from this seed, which training never used.
EXAMPLES_SEED = 7


def model(name: str = "cnn") -> Any:
    """A bundled shapes classifier, loaded once and then shared.

    A Keras model from (N, 96, 96, 3) raw pixels 0..255 to (N, 6) softmax
    probabilities over ``class_names``; the logits are the output of
    ``model(name).layers[-2]``. It is loaded in Keras' safe mode. Every call
    returns the same object: to change weights, work on a copy made with
    ``keras.models.clone_model`` and ``set_weights``.

    Parameters
    ----------
    name : {"cnn", "vit"}
        "cnn": the all-convolutional network; "vit": a small hybrid vision
        transformer (two convolution blocks, then 144 tokens of 8 x 8 pixels,
        ``VIT_TOKEN``, through two self-attention blocks; see
        ``ig_widget.demo.vit``), of about the CNN's FLOPs.

    Examples
    --------
    >>> m = model()
    >>> m.output_shape
    (None, 6)
    >>> model("vit").output_shape
    (None, 6)
    """
    return _load(check_choice("name", name, MODELS))


@functools.cache
def _load(name: str) -> Any:
    keras = import_framework("keras", "demo.model")
    if name == "vit":
        from . import vit  # registers the ViT's layers with Keras

        return keras.saving.load_model(
            VIT_PATH, compile=False, safe_mode=True, custom_objects=vit.CUSTOM_OBJECTS
        )
    return keras.saving.load_model(MODEL_PATH, compile=False, safe_mode=True)


def images() -> tuple[np.ndarray, np.ndarray]:
    """One ready example image per class, in the order of ``class_names``.

    Returns
    -------
    images : ndarray, uint8, (6, 96, 96, 3)
    labels : ndarray, int64, (6,)
        ``labels[i] == i``.

    Examples
    --------
    >>> examples, labels = images()
    >>> [class_names[i] for i in labels][:3]
    ['circle', 'square', 'triangle']
    """
    generated, labels, _ = make_shapes(4 * len(class_names), seed=EXAMPLES_SEED)
    first = [int(np.flatnonzero(labels == label)[0]) for label in range(len(class_names))]
    return generated[first], labels[first]


def photo(name: str, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """A bundled photograph as uint8 RGB.

    Parameters
    ----------
    name : str
        One of ``photo_names``: "chelsea" (a cat), "coffee" (an espresso cup),
        "rocket" (a rocket on its launch pad).
    size : int or (int, int), optional
        ``(height, width)`` in pixels, or one int for a square (the input of
        an ImageNet model). The largest central region of that shape is cut
        out and resized, so nothing is stretched. Without it: the stored
        photo, 299 pixels on its longer side.

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> photo("chelsea", size=224).shape
    (224, 224, 3)
    >>> photo("rocket", size=(300, 200)).shape
    (300, 200, 3)
    """
    name = check_choice("name", name, photo_names)
    shape = None if size is None else _check_size(size)
    from PIL import Image

    with Image.open(PHOTO_DIR / f"{name}.jpg") as file:
        img = file.convert("RGB")
        if shape is not None:
            height, width = shape
            # The largest box of the requested aspect ratio, centred.
            scale = min(img.width / width, img.height / height)
            box_width, box_height = width * scale, height * scale
            left, top = (img.width - box_width) / 2, (img.height - box_height) / 2
            img = img.resize(
                (width, height),
                Image.Resampling.LANCZOS,
                box=(left, top, left + box_width, top + box_height),
            )
        return np.asarray(img).copy()


def _check_size(size: object) -> tuple[int, int]:
    expected = "an integer or a (height, width) pair of integers, each 1..4096"
    if isinstance(size, bool) or not isinstance(size, (numbers.Integral, tuple, list)):
        raise TypeError(f"size: expected {expected}, got {type(size).__name__} {size!r}")
    sides = [size, size] if isinstance(size, numbers.Integral) else list(size)
    if len(sides) != 2 or any(
        isinstance(side, bool) or not isinstance(side, numbers.Integral) for side in sides
    ):
        raise TypeError(f"size: expected {expected}, got {size!r}")
    height, width = (int(side) for side in sides)
    if not (1 <= height <= 4096 and 1 <= width <= 4096):
        raise ValueError(f"size: expected {expected}, got {size!r}")
    return height, width
