"""Baselines: the reference images that integrated gradients starts from."""

from __future__ import annotations

import numpy as np

from .points import UniformRows

BASELINES = ("black", "white", "uniform", "blur")
# The baselines that differ from run to run; the others make every run the same.
RANDOM_BASELINES = ("uniform",)

# A Gaussian this wide (relative to the image's longer side) leaves only the
# colour layout and removes the edges and textures a classifier keys on.
BLUR_SIGMA_FRACTION = 0.1


def single_baseline(
    image: np.ndarray,
    baseline: str | np.ndarray,
    *,
    pixel_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """The one baseline of a deterministic kind (all but ``"uniform"``) for ``image``.

    Examples
    --------
    >>> single_baseline(np.ones((2, 2, 3), np.float32), "white")[0, 0].tolist()
    [255.0, 255.0, 255.0]
    """
    low, high = pixel_range
    if isinstance(baseline, str):
        if baseline == "black":
            return np.full_like(image, low, dtype=np.float32)
        if baseline == "white":
            return np.full_like(image, high, dtype=np.float32)
        if baseline == "blur":
            # scipy loads on first use: at module level it takes most of `import ig_widget`.
            from scipy import ndimage

            sigma = BLUR_SIGMA_FRACTION * max(image.shape[:2])
            blurred = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")
            return blurred.astype(np.float32)
        allowed = ", ".join(map(repr, BASELINES))
        raise ValueError(f"baseline: expected one of {allowed} or an array, got {baseline!r}")
    from .validation import as_image, to_numpy

    array = to_numpy(baseline, name="baseline")
    if array.ndim == 2 and image.shape[2] == 1:
        array = array[:, :, None]
    try:
        array = np.broadcast_to(array, image.shape)
    except ValueError:
        raise ValueError(
            f"baseline: expected an array of the image's shape {image.shape} "
            f"(or one that broadcasts to it), got {array.shape}"
        ) from None
    return as_image(array, name="baseline")


def make_baselines(
    image: np.ndarray,
    baseline: str | np.ndarray,
    runs: int,
    *,
    seed: int | None = None,
    pixel_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Build ``runs`` baselines for ``image`` (H, W, C), as the engine uses them.

    Parameters
    ----------
    image : ndarray
        The float32 image, raw pixel units.
    baseline : {"black", "white", "uniform", "blur"} or ndarray
        ``"uniform"`` draws independent noise over ``pixel_range`` for every
        run (reproducible with ``seed``; run ``i`` is row ``i`` of
        ``ig_widget.points.UniformRows``, whatever ``runs`` is); the others
        are deterministic, so their runs are identical. An array must have
        the image's shape (or broadcast to it, e.g. one value per channel).
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
    if isinstance(baseline, str) and baseline == "uniform":
        return UniformRows(runs, image.shape, pixel_range, seed).take(np.arange(runs))
    single = single_baseline(image, baseline, pixel_range=pixel_range)
    return np.repeat(single[None], runs, axis=0)
