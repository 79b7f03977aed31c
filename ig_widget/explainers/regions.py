"""XRAI's regions: over-segmentation at several scales, and ranking by attribution density.

The NumPy half of XRAI (Kapishnikov et al. 2019, "XRAI: Better Attributions
Through Regions"), as in PAIR saliency's ``saliency.core.xrai``:

- ``felzenszwalb_regions``: the image rescaled to [-1, 1] and resized to
  224x224, Felzenszwalb's graph segmentation at six scales (50 ... 1200,
  sigma 0.8, segments of at least 150 pixels), each segment resized back
  and dilated by a disk of radius 5, so that regions overlap and cover
  edges;
- ``rank_regions``: the greedy ranking. Starting from nothing, repeatedly
  add the region whose not-yet-covered pixels have the highest mean
  attribution; regions that would add fewer than ``min_pixel_diff`` new
  pixels are dropped. Each pixel gets the gain of the region that first
  covered it.

PAIR recomputes every region's gain over the whole image at every step
(regions x steps x pixels). Here the regions are a sparse pixel-by-region
matrix and each region's remaining sum and count are updated only by the
pixels just covered; the covered sets are disjoint, so the whole ranking
costs one pass over the regions' pixels plus regions x steps for the
choice. The choices are PAIR's: the first region of highest gain, in the
same order (gains in float64 instead of PAIR's float32 means, so two
regions whose gains differ only by float32 rounding may be taken in the
other order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..frameworks import install_command

# PAIR saliency's segmentation constants (saliency/core/xrai.py), which its
# parameters were tuned with.
FELZENSZWALB_SCALES = (50, 100, 150, 250, 500, 1200)
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_SIZE = (224, 224)
FELZENSZWALB_MIN_SEGMENT = 150
DILATION_RADIUS = 5
MIN_PIXEL_DIFF = 50


def require_scikit_image() -> None:
    """Raise ``ModuleNotFoundError`` naming the extra when scikit-image is missing.

    Examples
    --------
    >>> require_scikit_image()  # installed here
    """
    try:
        import skimage  # noqa: F401
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"xrai: the default segmentation needs scikit-image; {install_command('xrai')} "
            "(or pass segments=...)",
            name="skimage",
        ) from error


def felzenszwalb_regions(image: np.ndarray, dilation_radius: int = DILATION_RADIUS) -> np.ndarray:
    """XRAI's candidate regions of ``image`` (H, W, C): boolean masks (R, H, W).

    Examples
    --------
    >>> image = np.zeros((32, 32, 3), np.float32)
    >>> image[8:24, 8:24] = 255
    >>> regions = felzenszwalb_regions(image)
    >>> regions.shape[1:], bool(regions.any(axis=0).all())
    ((32, 32), True)
    """
    from skimage import segmentation
    from skimage.morphology import dilation, disk
    from skimage.transform import resize

    height, width = image.shape[:2]
    low, high = float(np.min(image)), float(np.max(image))
    if high == low:  # a flat image has one region (PAIR divides by zero here)
        return np.ones((1, height, width), bool)
    scaled = (image - low) / (high - low) * 2.0 - 1.0
    scaled = resize(
        scaled, FELZENSZWALB_SIZE, order=3, mode="constant", preserve_range=True, anti_aliasing=True
    )
    masks: list[np.ndarray] = []
    for scale in FELZENSZWALB_SCALES:
        labels = segmentation.felzenszwalb(
            scaled, scale=scale, sigma=FELZENSZWALB_SIGMA, min_size=FELZENSZWALB_MIN_SEGMENT
        )
        labels = resize(
            labels,
            (height, width),
            order=0,
            preserve_range=True,
            mode="constant",
            anti_aliasing=False,
        ).astype(int)
        masks.extend(labels == label for label in range(labels.min(), labels.max() + 1))
    regions = np.stack(masks)
    if dilation_radius:
        footprint = disk(dilation_radius)
        for region in regions:
            # Dilation reaches at most the radius beyond the region's bounding
            # box: dilating that window alone gives the same mask, much faster.
            rows, cols = np.nonzero(region)
            if rows.size == 0:
                continue
            window = (
                slice(max(rows.min() - dilation_radius, 0), rows.max() + dilation_radius + 1),
                slice(max(cols.min() - dilation_radius, 0), cols.max() + dilation_radius + 1),
            )
            region[window] = dilation(region[window], footprint=footprint)
    return regions


def rank_regions(
    pixel_attributions: np.ndarray,
    regions: np.ndarray | Sequence[np.ndarray],
    *,
    area_threshold: float = 1.0,
    min_pixel_diff: int = MIN_PIXEL_DIFF,
) -> tuple[np.ndarray, np.ndarray]:
    """XRAI's greedy ranking of ``regions`` by the density of ``pixel_attributions``.

    Parameters
    ----------
    pixel_attributions : ndarray (H, W)
        One value per pixel (XRAI takes the maximum over the channels).
    regions : ndarray (R, H, W) of bool, or a sequence of (H, W) masks
        Candidate regions, in the order ties are broken (the first wins).
    area_threshold : float
        Stop once this share of the image is covered; the rest becomes one
        last region.
    min_pixel_diff : int
        Regions adding fewer new pixels than this are dropped.

    Returns
    -------
    values : ndarray, float64 (H, W)
        Each pixel's value: the mean attribution over the new pixels of the
        region that covered it (the mean over the pixels no region covered,
        for those).
    ranks : ndarray, int (H, W)
        The rank of each pixel's region by that value, 1 = most attributed.

    Examples
    --------
    >>> attributions = np.zeros((4, 4)); attributions[:, 2:] = 1.0
    >>> left = np.zeros((4, 4), bool); left[:, :2] = True
    >>> values, ranks = rank_regions(attributions, [left, ~left], min_pixel_diff=1)
    >>> ranks[0].tolist(), values[0].tolist()
    ([2, 2, 1, 1], [0.0, 0.0, 1.0, 1.0])
    """
    from scipy import sparse

    attributions = np.asarray(pixel_attributions, np.float64)
    shape = attributions.shape
    flat = attributions.ravel()
    masks = np.asarray(regions, bool).reshape(len(regions), -1)
    # Pixel-by-region incidence: row slices give, for newly covered pixels,
    # how much of each region's remaining count and sum they take away.
    region_of, pixel_of = np.nonzero(masks)
    incidence = sparse.csr_matrix(
        (np.ones(region_of.size), (pixel_of, region_of)), shape=(flat.size, len(masks))
    )
    counts = masks.sum(axis=1).astype(np.int64)
    sums = np.asarray(incidence.T @ flat).ravel()
    active = np.ones(len(masks), bool)
    covered = np.zeros(flat.shape, bool)
    values = np.full(flat.shape, -np.inf)
    trace: list[tuple[np.ndarray, float]] = []
    area = 0.0
    while area <= area_threshold:
        active &= counts >= min_pixel_diff
        if not active.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            gains = np.where(active, sums / counts, -np.inf)
        best = int(np.argmax(gains))
        gain = float(gains[best])
        new = np.flatnonzero(masks[best] & ~covered)
        taken = incidence[new]
        counts -= np.asarray(taken.sum(axis=0), np.int64).ravel()
        sums -= np.asarray(taken.T @ flat[new]).ravel()
        covered[new] = True
        values[new] = gain
        trace.append((new, gain))
        active[best] = False
        area = float(covered.mean())
    rest = np.flatnonzero(~covered)
    if rest.size:
        values[rest] = flat[rest].mean()
    ranks = np.zeros(flat.shape, int)
    order = sorted(range(len(trace)), key=lambda i: -trace[i][1])
    for rank, index in enumerate(order, start=1):
        ranks[trace[index][0]] = rank
    if rest.size:
        ranks[rest] = len(trace) + 1
    return values.reshape(shape), ranks.reshape(shape)
