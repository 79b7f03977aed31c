"""ImageNet classifiers from ``keras.applications``, ready for integrated gradients.

``keras_application(name)`` bundles what the reference example set up by hand:
the model with ImageNet weights, its preprocess function, the 1,000 class
names and the image size it takes. The weights and the class index are
downloaded once by Keras and cached (in ``$KERAS_HOME/models``, by default
``~/.keras/models``). Where they are neither cached nor downloadable, one
``WeightsUnavailableError`` says so and points at the offline demo model.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from .frameworks import import_framework
from .validation import check_choice

# name -> (constructor in keras.applications, module holding preprocess_input, image side)
APPLICATIONS: dict[str, tuple[str, str, int]] = {
    "xception": ("Xception", "xception", 299),
    "inception_v3": ("InceptionV3", "inception_v3", 299),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2", 224),
    "resnet50": ("ResNet50", "resnet50", 224),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet", 224),
}

CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
# A download that stalls this long on one read counts as failed, so an
# unreachable host cannot hang a notebook; a slow but live download goes on.
DOWNLOAD_STALL_S = 30.0


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights or class names could neither be found in the cache nor downloaded."""


class KerasApplication(NamedTuple):
    """An ImageNet classifier and what it takes to use it.

    Attributes
    ----------
    model : keras.Model
        Takes preprocessed images (N, input_size, input_size, 3), returns
        softmax probabilities (N, 1000).
    preprocess : callable
        Maps raw pixels 0..255 to the model's input; differentiable, so it can
        be passed as ``preprocess=`` to the engine and the widget.
    class_names : tuple of str
        The 1,000 ImageNet class names, e.g. ``"African_elephant"``.
    input_size : int
        Side of the square images the model takes.
    """

    model: Any
    preprocess: Callable[[Any], Any]
    class_names: tuple[str, ...]
    input_size: int


def keras_cache_dir() -> Path:
    """Folder where Keras caches downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``.

    Examples
    --------
    >>> keras_cache_dir().name
    'models'
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def keras_application(name: str) -> KerasApplication:
    """Load an ImageNet classifier from ``keras.applications`` with its weights.

    Parameters
    ----------
    name : str
        One of "xception" (the reference's model), "inception_v3",
        "mobilenet_v2", "resnet50", "efficientnet_b0".

    Returns
    -------
    KerasApplication
        ``(model, preprocess, class_names, input_size)``.

    Raises
    ------
    WeightsUnavailableError
        When the weights or class names are not cached and cannot be
        downloaded (for example offline); chained from Keras' error.

    Examples
    --------
    >>> import ig_widget as igw
    >>> app = igw.keras_application("xception")  # doctest: +SKIP
    >>> image = igw.demo.photo("chelsea", size=app.input_size)  # doctest: +SKIP
    >>> igw.IGWidget(app.model, image, preprocess=app.preprocess,
    ...              class_names=app.class_names)  # doctest: +SKIP
    """
    name = check_choice("name", name, tuple(APPLICATIONS))
    constructor_name, module_name, input_size = APPLICATIONS[name]

    keras = import_framework("keras", "keras_application")
    module = getattr(keras.applications, module_name)
    constructor = getattr(keras.applications, constructor_name)
    try:
        with _stall_timeout(DOWNLOAD_STALL_S):
            model = constructor(weights="imagenet")
            index_path = keras.utils.get_file(
                "imagenet_class_index.json",
                CLASS_INDEX_URL,
                cache_subdir="models",
                file_hash=CLASS_INDEX_MD5,
            )
    # Keras reports a failed download as a bare Exception and a damaged file
    # as OSError or ValueError; all of them mean the same thing to the user.
    except Exception as exc:
        raise WeightsUnavailableError(
            f"the ImageNet weights or class names for {name!r} could not be loaded; "
            f"Keras downloads them from the internet once and caches them in "
            f"'{keras_cache_dir()}'. Without network access, copy the files there, or use "
            f"the bundled offline model: igw.demo.model() with igw.demo.images(). "
            f"(Keras said: {exc})"
        ) from exc
    with open(index_path, encoding="utf-8") as index_file:
        index = json.load(index_file)
    class_names = tuple(index[str(i)][1] for i in range(len(index)))
    return KerasApplication(model, module.preprocess_input, class_names, input_size)


@contextmanager
def _stall_timeout(seconds: float) -> Iterator[None]:
    # Keras downloads with urllib, which waits forever on a silent socket
    # unless a default timeout is set.
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
