"""Streaming the images of a dataset: one image (with its label and mask) at a time.

``explain_dataset`` accepts many kinds of input; this module turns each into
one stream of ``Item`` (index, source, image, label, mask) without holding
the dataset in memory: an array is indexed image by image, files are read
when their turn comes, a ``tf.data.Dataset`` or a torch ``DataLoader`` is
iterated batch by batch and its batches split into images.

Images are converted by ``ig_widget.validation.as_image`` (the engine's own
conversion), so an image here is exactly what ``integrated_gradients`` would
see for the same input.
"""

from __future__ import annotations

import functools
import numbers
import operator
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..validation import as_image

# Images whose file header claims more pixels are refused before they are decoded (a
# small compressed file can decode to gigabytes), unless the model's input bounds them
# more tightly (see explain_dataset).
MAX_PIXELS = 2**26
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


@dataclass
class Item:
    """One image of a dataset, as the computation needs it.

    ``image`` is None for an image that is skipped (already in the store
    when a computation resumes): it is never read or converted.
    """

    index: int
    source: str
    image: np.ndarray | None
    label: int | None
    mask: np.ndarray | None


@dataclass
class _Raw:
    """One element of an input stream before conversion: its description and a loader."""

    source: str
    load: Callable[[], Any]
    label: Any = None


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (subfolders included), in sorted path order.

    Examples
    --------
    >>> image_files(Path("/nonexistent"))
    []
    """
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )


def _is_scalar(value: Any) -> bool:
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return True
    shape = getattr(value, "shape", None)
    return shape is not None and int(np.prod(shape)) == 1 and len(shape) <= 1


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        return value.numpy()
    return value


def _framework(images: Any) -> str | None:
    module = type(images).__module__
    if module.startswith("tensorflow") and hasattr(images, "as_numpy_iterator"):
        return "tf.data"
    if module.startswith("torch.utils.data") and hasattr(images, "batch_size"):
        return "DataLoader"
    return None


def known_length(images: Any) -> int | None:
    """Number of images, where it can be known without reading them; else None.

    Examples
    --------
    >>> known_length(np.zeros((5, 8, 8, 3))), known_length(iter([]))
    (5, None)
    """
    if isinstance(images, (str, os.PathLike)):
        return len(image_files(Path(images))) if Path(images).is_dir() else None
    kind = _framework(images)
    if kind == "tf.data":
        spec = images.element_spec
        spec = spec.get("image") if isinstance(spec, dict) else spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        cardinality = int(images.cardinality())
        # A batched dataset counts batches, not images.
        if cardinality < 0 or len(getattr(spec, "shape", ())) != 3:
            return None
        return cardinality
    if kind == "DataLoader":
        try:
            return len(images.dataset)
        except TypeError:
            return None
    if isinstance(images, np.ndarray) or hasattr(images, "shape"):
        return int(images.shape[0])
    if isinstance(images, Sequence):
        return len(images)
    return None


def carries_labels(images: Any) -> bool:
    """Whether elements of ``images`` can bring their own labels ((image, label) pairs).

    Examples
    --------
    >>> carries_labels(np.zeros((2, 4, 4, 3))), carries_labels(iter([]))
    (False, True)
    """
    if _framework(images) is not None:
        return True
    if isinstance(images, (str, os.PathLike, np.ndarray, Sequence)) or hasattr(images, "shape"):
        return False
    return isinstance(images, Iterable)


def _split(element: Any, name: str) -> tuple[Any, Any, bool]:
    """(image or batch, label or labels, has_label) from one element of an iterable."""
    if isinstance(element, dict):
        if "image" not in element:
            raise ValueError(
                f"{name}: dict elements need an 'image' key (and optionally 'label'), "
                f"got keys {sorted(element)}"
            )
        return element["image"], element.get("label"), "label" in element
    if isinstance(element, (tuple, list)) and len(element) == 2:
        first, second = element
        second = _to_numpy(second)
        batch = getattr(_to_numpy(first), "ndim", 0) == 4
        if second is None or _is_scalar(second) or (batch and np.ndim(second) == 1):
            return first, second, True
    return element, None, False


def _iterable_raws(images: Iterable[Any], kind: str, name: str) -> Iterator[_Raw]:
    """Elements of an iterable of images or (image, label) pairs, batches split."""
    index = 0
    for element in images:
        image, label, has_label = _split(element, name)
        image = _to_numpy(image)
        if getattr(image, "ndim", 0) == 4:
            labels = _to_numpy(label) if has_label and label is not None else None
            for row in range(image.shape[0]):
                yield _Raw(
                    f"{kind}[{index}]",
                    functools.partial(operator.getitem, image, row),
                    None if labels is None else labels[row],
                )
                index += 1
        else:
            yield _Raw(f"{kind}[{index}]", functools.partial(_same, image), label)
            index += 1


def _raws(images: Any, name: str) -> Iterator[_Raw]:
    """The raw elements of any accepted input, lazily."""
    if isinstance(images, (str, os.PathLike)):
        folder = Path(images)
        if not folder.is_dir():
            raise ValueError(
                f"{name}: expected a folder of image files, an array (N, H, W, C), a sequence "
                f"or an iterable of images, got the path '{os.fspath(images)}' which is not a "
                "folder (for one file, pass [path])"
            )
        files = image_files(folder)
        if not files:
            raise ValueError(
                f"{name}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in '{folder}'"
            )
        return (_Raw(str(path), functools.partial(_same, path)) for path in files)
    kind = _framework(images)
    if kind == "tf.data":
        return _iterable_raws(images.as_numpy_iterator(), kind, name)
    if kind == "DataLoader":
        return _iterable_raws(images, kind, name)
    if isinstance(images, np.ndarray) or (hasattr(images, "shape") and hasattr(images, "ndim")):
        if images.ndim != 4:
            raise ValueError(
                f"{name}: expected an array of images (N, H, W, C), got shape "
                f"{tuple(images.shape)}"
                + (
                    " (for greyscale, add a channel axis: images[..., None])"
                    if images.ndim == 3
                    else ""
                )
            )
        return (
            _Raw(f"array[{i}]", functools.partial(operator.getitem, images, i))
            for i in range(images.shape[0])
        )
    if isinstance(images, Sequence) and not isinstance(images, (str, bytes)):
        return (
            _Raw(_describe(images[i], i), functools.partial(operator.getitem, images, i))
            for i in range(len(images))
        )
    if isinstance(images, Iterable):
        return _iterable_raws(images, "iterable", name)
    raise TypeError(
        f"{name}: expected an array (N, H, W, C), a sequence of images, a folder, or an "
        f"iterable of images or (image, label) pairs, got {type(images).__name__}"
    )


def _same(value: Any) -> Any:
    return value


def _describe(element: Any, index: int) -> str:
    if isinstance(element, (str, os.PathLike)):
        return os.fspath(element)
    filename = getattr(element, "filename", "")  # a PIL image opened from a file
    return filename if isinstance(filename, str) and filename else f"sequence[{index}]"


def _check_label(value: Any, index: int) -> int | None:
    value = _to_numpy(value)
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ValueError(f"labels[{index}]: expected one class index, got shape {value.shape}")
        value = value.reshape(()).item()
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(
                f"labels[{index}]: expected an integer class index, got "
                f"{type(value).__name__} {value!r}"
            )
    if value < 0:
        raise ValueError(f"labels[{index}]: expected a class index >= 0, got {value}")
    return int(value)


def _mask(value: Any, index: int, shape: tuple[int, ...]) -> np.ndarray:
    value = _to_numpy(value)
    if getattr(value, "dtype", None) == np.bool_:
        value = value.view(np.uint8)
    mask = as_image(value, name=f"masks[{index}]")
    if mask.shape[2] != 1 or mask.shape[:2] != shape[:2]:
        raise ValueError(
            f"masks[{index}]: expected a mask of the image's size {shape[:2]} "
            f"(H, W) or (H, W, 1), got {mask.shape}"
        )
    return mask[:, :, 0] != 0


def stream(
    images: Any,
    *,
    labels: Any = None,
    masks: Any = None,
    skip: Callable[[int], bool] = lambda _index: False,
    shape: tuple[int, ...] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Iterator[Item]:
    """Yield the dataset's images one at a time, with labels and masks.

    Parameters
    ----------
    images
        An array (N, H, W, C); a sequence of arrays, PIL images or paths; a
        folder of image files (subfolders included, sorted by path); or an
        iterable of images or ``(image, label)`` pairs (dicts with "image" and
        "label" keys too), a ``tf.data.Dataset`` or torch ``DataLoader``
        included. Batches (4-D arrays or tensors) are split into images.
    labels : sequence, array or callable, optional
        One class index per image, or a function of the ``source`` string
        (for example of a file's path). Not allowed when the images come as
        ``(image, label)`` pairs.
    masks : optional
        One mask (H, W) per image, in any form accepted for ``images``;
        nonzero is inside.
    skip : callable
        ``skip(index)`` True: yield the item without reading its image or mask.
    shape : tuple, optional
        The shape every image must have (a store's, on resume); by default
        the first image's.
    max_pixels : int
        The most pixels an image file (or lazily opened PIL image) may claim
        in its header; its size is checked before it is decoded.

    Examples
    --------
    >>> [item.source for item in stream(np.zeros((2, 4, 4, 3), np.uint8))]
    ['array[0]', 'array[1]']
    """
    if getattr(masks, "ndim", None) == 3:
        masks = masks[..., None]  # a stack of (H, W) masks: a view, not a copy
    mask_raws = None if masks is None else _raws(masks, "masks")
    label_list = None if labels is None or callable(labels) else labels
    first_shape = shape
    for index, raw in enumerate(_raws(images, "images")):
        mask_raw = None if mask_raws is None else next(mask_raws, None)
        if mask_raws is not None and mask_raw is None:
            raise ValueError(f"masks: fewer masks than images (none for image {index})")
        label = raw.label
        if labels is not None:
            if raw.label is not None:
                raise ValueError(
                    "labels: the images come as (image, label) pairs already; leave labels=None"
                )
            if callable(labels):
                label = labels(raw.source)
            else:
                assert label_list is not None
                if index >= len(label_list):
                    raise ValueError(f"labels: fewer labels ({len(label_list)}) than images")
                label = label_list[index]
        if skip(index):
            yield Item(index, raw.source, None, _check_label(label, index), None)
            continue
        loaded = _to_numpy(raw.load())
        _check_header(loaded, index, first_shape, max_pixels, shape is not None)
        image = as_image(loaded, name=f"images[{index}]")
        if first_shape is None:
            first_shape = image.shape
        elif image.shape != first_shape:
            raise _other_shape(index, image.shape, first_shape, shape is not None)
        yield Item(
            index=index,
            source=raw.source,
            image=image,
            label=_check_label(label, index),
            mask=None if mask_raw is None else _mask(mask_raw.load(), index, image.shape),
        )
    if label_list is not None and first_shape is not None and len(label_list) > index + 1:
        raise ValueError(f"labels: more labels ({len(label_list)}) than images ({index + 1})")
    if mask_raws is not None and next(mask_raws, None) is not None:
        raise ValueError("masks: more masks than images")


def _other_shape(
    index: int, found: tuple[int, ...], expected: tuple[int, ...], stored: bool
) -> ValueError:
    return ValueError(
        f"images[{index}]: has shape {found}, "
        + (f"the store holds images of {expected}" if stored else f"the first image had {expected}")
        + "; all images of a dataset need one shape (resize them first, for example in "
        "a DataLoader transform or a tf.data map)"
    )


def _check_header(
    value: Any, index: int, shape: tuple[int, ...] | None, max_pixels: int, stored: bool
) -> None:
    """Refuse an image file whose header claims another size, or too many pixels, undecoded."""
    if isinstance(value, (str, os.PathLike)):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(value) as opened:  # reads the header only
                width, height = opened.size
        except (OSError, UnidentifiedImageError):
            return  # as_image gives the message for a file it cannot read
    elif type(value).__module__.startswith("PIL.") and hasattr(value, "size"):
        width, height = value.size  # an opened file is decoded only when its pixels are read
    else:
        return
    if shape is not None and (height, width) != tuple(shape[:2]):
        raise _other_shape(index, (height, width), tuple(shape[:2]), stored)
    if height * width > max_pixels:
        raise ValueError(
            f"images[{index}]: the file claims {width}x{height} pixels, more than the "
            f"{max_pixels} this dataset's images may have; it was not decoded (resize it, "
            "or check the file)"
        )


def chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive items grouped by ``index // size`` (the store's chunks).

    A chunk is handed on as soon as its last image is read: the next image is
    read only when the caller asks for the next chunk.

    Examples
    --------
    >>> [[item.index for item in chunk] for chunk in chunks(stream(np.zeros((5, 2, 2, 1))), 2)]
    [[0, 1], [2, 3], [4]]
    """
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if item.index % size == size - 1:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
