"""The bundled demo: a small shapes classifier, example images and photographs.

Everything here works offline. ``model()`` is a small CNN trained on the
procedurally generated shapes of :func:`make_shapes` (six classes, see
``class_names``); it takes raw pixels 0..255 of shape (96, 96, 3) and returns
softmax probabilities, so it needs no preprocess function::

    import ig_widget as igw
    images, labels = igw.demo.images()
    result = igw.integrated_gradients(igw.demo.model(), images[0])

``photo(name)`` returns one of a few openly licensed photographs (see
``photos/LICENSES.md``) for ImageNet models such as
``igw.keras_application("xception")``.

Importing this package is light: TensorFlow loads only when ``model()`` is called.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from ..validation import check_choice, check_int
from .shapes import class_names, make_shapes

__all__ = ["class_names", "images", "make_shapes", "model", "photo", "photo_names"]

MODEL_PATH = Path(__file__).with_name("shapes_cnn.keras")
PHOTO_DIR = Path(__file__).with_name("photos")
photo_names: tuple[str, ...] = ("chelsea", "coffee", "rocket")
# The examples from images() come from this seed, which training never used.
EXAMPLES_SEED = 7


@functools.cache
def model() -> Any:
    """The bundled shapes classifier, loaded once and then shared.

    A Keras model from (N, 96, 96, 3) raw pixels 0..255 to (N, 6) softmax
    probabilities over ``class_names``; the logits are the output of
    ``model().layers[-2]``. It is loaded in Keras' safe mode. Every call
    returns the same object: to change weights, work on a copy made with
    ``keras.models.clone_model`` and ``set_weights``.

    Examples
    --------
    >>> m = model()
    >>> m.output_shape
    (None, 6)
    """
    import keras

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


def photo(name: str, size: int | None = None) -> np.ndarray:
    """A bundled photograph as uint8 RGB.

    Parameters
    ----------
    name : str
        One of ``photo_names``: "chelsea" (a cat), "coffee" (an espresso cup),
        "rocket" (a rocket on its launch pad).
    size : int, optional
        If given, the central square is cut out and resized to (size, size),
        the input of an ImageNet model. Otherwise the stored photo, 299 pixels
        on its longer side.

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> photo("chelsea", size=224).shape
    (224, 224, 3)
    """
    name = check_choice("name", name, photo_names)
    if size is not None:
        size = check_int("size", size, low=1, high=4096)
    from PIL import Image

    with Image.open(PHOTO_DIR / f"{name}.jpg") as img:
        img = img.convert("RGB")
        if size is not None:
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.resize(
                (size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side)
            )
        return np.asarray(img).copy()
