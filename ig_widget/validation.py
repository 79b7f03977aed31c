"""Early checks and conversions for user input.

Every public entry point funnels its arguments through these helpers so that a
bad value fails at once, with a message that names the parameter and says what
was expected, before a model is called.
"""

from __future__ import annotations

import numbers
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# 16-bit images are mapped onto the 8-bit scale (65535 -> 255) so that every
# image the package sees is in the same raw pixel units.
UINT16_TO_UINT8 = 255.0 / 65535.0


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``.

    Examples
    --------
    >>> check_int("steps", 50, low=1)
    50
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name}: expected an integer <= {high}, got {value}")
    return value


def check_number(
    name: str, value: Any, *, low: float | None = None, high: float | None = None
) -> float:
    """Return ``value`` as a finite float in ``[low, high]``, or raise naming ``name``.

    Examples
    --------
    >>> check_number("clip_above_percentile", 99, low=0, high=100)
    99.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: expected a number in [{low}, {high}], got {value}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, or raise naming ``name``.

    Examples
    --------
    >>> check_choice("polarity", "positive", ("positive", "negative"))
    'positive'
    """
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
    return value


def to_numpy(value: Any, name: str = "image", expected: str = "an array") -> np.ndarray:
    """``value`` as a NumPy array: arrays, lists, and tensors of TensorFlow, JAX and
    PyTorch (a tensor that requires grad is detached, one on a GPU copied over).

    Examples
    --------
    >>> to_numpy([[1, 2]]).shape
    (1, 2)
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        return np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__}") from exc


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the calling function point at
    the first frame outside this package: the user's line.

    Examples
    --------
    >>> caller_stacklevel() >= 1
    True
    """
    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package + os.sep
    ):
        frame = frame.f_back
        level += 1
    return level


def _read_image_file(path: str | os.PathLike, name: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except FileNotFoundError as exc:
        raise ValueError(f"{name}: no image file at '{os.fspath(path)}'") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{name}: cannot read '{os.fspath(path)}' as an image ({exc})") from exc


def _pil_to_array(img: Any) -> np.ndarray:
    # Palette, alpha and CMYK modes become RGB (alpha is dropped, not blended);
    # greyscale stays one channel; 16/32-bit greyscale keeps its values.
    if img.mode in ("L", "F", "I", "I;16", "I;16B", "I;16L"):
        array = np.asarray(img)
        if img.mode.startswith("I;16"):
            array = array.astype(np.uint16)
        return array
    return np.asarray(img.convert("RGB"))


def as_image(image: Any, name: str = "image") -> np.ndarray:
    """Convert an image-like value to a float32 array of shape (H, W, C).

    Accepted: an array (H, W), (H, W, C) or (1, H, W, C) of numbers; a PIL
    image; a path to an image file. Pixel values are taken as raw units
    (typically 0..255). Conversions, all documented in the README:

    - (H, W) greyscale becomes (H, W, 1); a leading batch axis of 1 is dropped;
    - uint16 data is rescaled to 0..255 (65535 -> 255);
    - files and PIL images in palette, RGBA or CMYK mode become RGB (alpha is
      dropped). Arrays with 4 channels are kept as they are.

    Examples
    --------
    >>> as_image(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 1)
    """
    if isinstance(image, (str, os.PathLike)):
        image = _read_image_file(image, name)
    if type(image).__module__.startswith("PIL."):
        image = _pil_to_array(image)
    array = to_numpy(image, name, expected="an array, PIL image or file path")
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(
            f"{name}: expected real numbers (uint8, uint16 or float pixels), "
            f"got dtype {array.dtype}"
        )
    if array.size == 0:
        raise ValueError(f"{name}: expected a non-empty image, got shape {array.shape}")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    elif array.ndim == 4 and name == "image":
        raise ValueError(
            f"image: expected one image, got a batch of {array.shape[0]} of shape "
            f"{array.shape[1:]}; use igw.integrated_gradients_batch for several images"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ValueError(
            f"{name}: expected one image of shape (H, W), (H, W, C) or (1, H, W, C), "
            f"got shape {array.shape}"
        )
    if array.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"{name}: expected 1, 3 or 4 channels in the last axis, got shape {array.shape}"
        )
    if array.dtype == np.uint16:
        out = array.astype(np.float32) * np.float32(UINT16_TO_UINT8)
    else:
        out = array.astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name}: contains NaN or infinite pixel values")
    return out


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def cannot_write(name: str, path: str, error: OSError) -> str:
    """The message for a path that cannot be written, naming the parameter and the OS's reason.

    Examples
    --------
    >>> cannot_write("path", "/x.png", PermissionError(13, "Permission denied"))
    "path: cannot write '/x.png': Permission denied"
    """
    return f"{name}: cannot write '{path}': {error.strerror or error}"


def check_path_for_writing(
    path: str | os.PathLike, name: str = "path", suffixes: Sequence[str] = ()
) -> Path:
    """Return the file that writing ``path`` replaces, or raise naming ``name``.

    ``path`` must name a regular file (existing or not) in an existing
    folder, ending in one of ``suffixes`` (any case) when they are given. A
    symbolic link is followed: the file it points to is the one written, and
    the link stays, as with any program that opens the link to write. Nothing
    is opened, so a named pipe or device is refused without blocking.

    Examples
    --------
    >>> check_path_for_writing("ig.png", suffixes=(".png",)).name
    'ig.png'
    >>> check_path_for_writing("ig.jpg", suffixes=(".png",))
    Traceback (most recent call last):
    ...
    ValueError: path: expected a file name ending in '.png', got 'ig.jpg'
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(path).__name__}")
    text = os.fsdecode(path)
    if text.endswith(("/", os.sep)) or Path(text).name in ("", ".", ".."):
        raise ValueError(f"{name}: '{text}' names a folder; expected a file path")
    target = Path(os.path.realpath(text))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a symlink loop, a folder that cannot be searched
        raise ValueError(cannot_write(name, text, exc)) from exc
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((kind for test, kind in _FILE_KINDS if test(mode)), "not a regular file")
        raise ValueError(f"{name}: '{text}' is {kind}; expected a regular file path")
    if suffixes and Path(text).suffix.lower() not in suffixes:
        expected = " or ".join(repr(suffix) for suffix in suffixes)
        raise ValueError(f"{name}: expected a file name ending in {expected}, got '{text}'")
    if not Path(text).parent.is_dir():
        raise ValueError(f"{name}: folder '{Path(text).parent}' does not exist")
    if not target.parent.is_dir():
        raise ValueError(
            f"{name}: '{text}' is a symbolic link into folder '{target.parent}', "
            "which does not exist"
        )
    return target
