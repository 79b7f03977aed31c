"""Small pieces several explainers use: baselines, their names in a result, given attributions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..baselines import single_baseline
from ..options import IGOptions
from ..points import UniformRows
from ..validation import to_numpy


def baseline_row(image: np.ndarray, options: IGOptions) -> np.ndarray:
    """The one baseline ``options.baseline`` gives for ``image`` (float32, the image's shape).

    ``"uniform"`` is the first run ``integrated_gradients`` would draw with
    ``options.seed``.

    Examples
    --------
    >>> baseline_row(np.zeros((1, 1, 3), np.float32), IGOptions(baseline="white")).ravel().tolist()
    [255.0, 255.0, 255.0]
    """
    if isinstance(options.baseline, str) and options.baseline == "uniform":
        rows = UniformRows(1, image.shape, options.pixel_range, options.seed)
        return rows.take(np.zeros(1, np.int64))[0]
    return single_baseline(image, options.baseline, pixel_range=options.pixel_range)


def baseline_name(baseline: str | np.ndarray) -> str:
    """How a result names its baseline: the kind, or ``"array"`` for one given as an array.

    Examples
    --------
    >>> baseline_name("blur"), baseline_name(np.zeros(3))
    ('blur', 'array')
    """
    return baseline if isinstance(baseline, str) else "array"


def check_attributions(value: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """Attributions for an image of ``image_shape`` as float32 (H, W, C'), or raise naming
    ``attributions``.

    Accepts an array (H, W) or (H, W, C) (C' is C, or 1 for one map per
    pixel), or a result with an ``attributions`` field (``IGResult``,
    ``AttributionResult``).

    Examples
    --------
    >>> check_attributions(np.ones((2, 3)), (2, 3, 3)).shape
    (2, 3, 1)
    """
    if hasattr(value, "attributions") and not isinstance(value, np.ndarray):
        value = value.attributions
    array = to_numpy(value, name="attributions")
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"attributions: expected an array of real numbers, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    height, width, channels = image_shape
    if array.ndim != 3 or array.shape[:2] != (height, width) or array.shape[2] not in (1, channels):
        raise ValueError(
            f"attributions: expected an array of shape {(height, width)} or "
            f"{(height, width, channels)} for an image of shape {tuple(image_shape)}, "
            f"got {array.shape}"
        )
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("attributions: contains NaN or infinite values; expected finite numbers")
    return array


def baseline_rows(
    baselines: Sequence[str | np.ndarray], image: np.ndarray, options: IGOptions
) -> np.ndarray:
    """One row per entry of ``baselines`` (each as ``integrated_gradients``'s ``baseline``),
    or raise naming ``baselines[i]``.

    Examples
    --------
    >>> baseline_rows(["black", "white"], np.zeros((1, 1, 1), np.float32), IGOptions())[:, 0, 0, 0]
    array([  0., 255.], dtype=float32)
    """
    if isinstance(baselines, (str, bytes)) or not isinstance(baselines, Sequence):
        raise TypeError(
            "baselines: expected a sequence of baselines such as ('black', 'white'), "
            f"got {type(baselines).__name__}"
        )
    if len(baselines) == 0:
        raise ValueError("baselines: expected at least one baseline, got none")
    rows = []
    for number, baseline in enumerate(baselines):
        try:
            rows.append(baseline_row(image, options.replace(baseline=baseline)))
        except (TypeError, ValueError) as exc:
            message = str(exc).removeprefix("baseline:")
            raise type(exc)(f"baselines[{number}]:{message}") from None
    return np.stack(rows)
