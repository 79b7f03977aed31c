"""Baselines: the reference images that integrated gradients starts from."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BASELINES = ("black", "white", "uniform", "blur")

# A Gaussian this wide (relative to the image's longer side) leaves only the
# colour layout and removes the edges and textures a classifier keys on.
BLUR_SIGMA_FRACTION = 0.1


def make_baselines(
    image: np.ndarray,
    baseline: str | np.ndarray,
    runs: int,
    *,
    seed: int | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Build ``runs`` baselines for ``image`` (H, W, C).

    Parameters
    ----------
    image : ndarray
        The float32 image, raw pixel units.
    baseline : {"black", "white", "uniform", "blur"} or ndarray
        ``"uniform"`` draws independent noise over ``pixel_range`` for every
        run (reproducible with ``seed``); the others are deterministic, so
        their runs are identical. An array must have the image's shape (or
        broadcast to it, e.g. one value per channel).
    runs : int
        Number of baselines.

    Returns
    -------
    ndarray, float32, shape (runs, H, W, C)

    Examples
    --------
    >>> make_baselines(np.ones((2, 2, 3), np.float32), "white", 1)[0, 0, 0].tolist()
    [255.0, 255.0, 255.0]
    """
    low, high = pixel_range
    if isinstance(baseline, str):
        if baseline == "black":
            single = np.full_like(image, low)
        elif baseline == "white":
            single = np.full_like(image, high)
        elif baseline == "blur":
            sigma = BLUR_SIGMA_FRACTION * max(image.shape[:2])
            single = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")
        elif baseline == "uniform":
            rng = np.random.default_rng(seed)
            noise = rng.uniform(low, high, size=(runs, *image.shape))
            return noise.astype(np.float32)
        else:
            allowed = ", ".join(map(repr, BASELINES))
            raise ValueError(f"baseline: expected one of {allowed} or an array, got {baseline!r}")
        return np.repeat(single[None].astype(np.float32), runs, axis=0)
    from .validation import as_image

    array = np.asarray(baseline)
    if array.ndim == 2 and image.shape[2] == 1:
        array = array[:, :, None]
    try:
        array = np.broadcast_to(array, image.shape)
    except ValueError:
        raise ValueError(
            f"baseline: expected an array of the image's shape {image.shape} "
            f"(or one that broadcasts to it), got {array.shape}"
        ) from None
    single = as_image(array, name="baseline")
    return np.repeat(single[None], runs, axis=0)
