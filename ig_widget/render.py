"""Attribution pictures: two styles over one pipeline, and their colour key.

The pipeline, per sign of the attributions:

1. ``channel_maps``: the channel mean of the positive part and of the
   magnitude of the negative part, two float32 (H, W) maps;
   with ``patch`` (a side in pixels, 0 for none), the patch view: each
   ``patch`` x ``patch`` square of the grid from the top-left corner (the
   tokens of a vision transformer with that patch size) gets the mean of
   ``positive - negative`` over its pixels (their signed attribution, the
   patch's sum over pixels and channels divided by its pixels and channels),
   and its pixels take that value's positive part into the positive map and
   its negative part into the negative one. Each map's total is then the
   total of the patches of that sign, in the channel-mean unit of step 1.
   Squares at the right and bottom edges may be smaller (means over the
   pixels they have);
2. thresholds from the cumulative share of the sorted values: ``high`` is
   where the largest values reach ``100 - clip_above_percentile`` percent of
   the map's total, ``low`` where they reach ``100 - clip_below_percentile``;
3. a strength in [0, 1] per pixel (the style decides how, see below);
4. optionally grey closing, then grey opening, with a flat
   ``structure`` x ``structure`` window;
5. optionally outlines: binarize (> 0.001), fill holes, label 8-connected
   components, keep the largest ones covering
   ``outlines_component_percentage`` percent of the area (at most three),
   and keep only their one-pixel border;
6. colour, as the style says.

Two styles:

- ``"heatmap"`` (the default): the image in grey (its luma, so colour in the
  picture means attribution and nothing else), and each attribution pixel in
  its polarity's colour (red-orange raises the score, blue lowers it; a pair
  that colour-blind readers can tell apart). The strength is the pixel's
  place on the *share* scale: 1 for the pixels holding the top
  ``100 - clip_above_percentile`` percent of the map's total, 0 from where
  the pixels reach ``100 - clip_below_percentile`` percent, linear in the
  share between. Attribution maps are heavy-tailed: on the value scale
  (the example's) a handful of pixels take the whole range and the rest is
  invisible, while on the share scale the colour shows where the bulk of the
  attribution lies. Opacity is ``min(1, strength / 0.5) ** 2``: the pixels
  holding the top half of the total are opaque, the scattered tail fades out.
  Towards the top the colour moves away from the ground, so that the
  strongest pixels are the most visible on any ground: on a light or mid
  ground it deepens (``colour * (1 - 0.5 * strength)``); on a dark one (black,
  without ``overlay``, or an image whose mean luma is below ``DARK_GROUND``,
  64) it lightens towards white from half strength on
  (``colour + 0.7 * max(0, 2 * strength - 1) * (255 - colour)``). Deepening
  on black made the strongest pixels the darkest: the 25-pixel corner mark of
  notebooks/finding_a_shortcut, holding 30 % of the attribution, showed as a
  dark patch among brighter speckles.
  Measured on the bundled demo (tests/test_picture.py), this puts a colour
  difference (CIEDE2000) of at least 15 more on the 5 % most-attributed
  pixels than on the least-attributed half, for every image and polarity,
  also with the images darkened to a quarter and washed out to light grey
  (29-53 and 36-59); the example's look reaches 3.5-20 there (median 8.7),
  often less than the plain gradients.
- ``"keras"``: the Keras example's ``GradVisualizer.process_grads`` step for
  step: strength linear in the value between the thresholds, and
  ``0.8 * colour`` added to the image in green (positive) or red (negative),
  clipped to 0..255 and truncated to uint8 as the example does.

The colours are options; ``None`` means the style's own (``STYLE_COLORS``).
``colour_key`` describes what the colours stand for: for each drawn sign, the
colours from strength 0 to 1 over the picture's ground (its mean grey, black
without overlay; black in the keras style, whose key shows the colour it
adds), and the values (and shares of the total) the ends stand for.

``js/src/render.ts`` repeats steps 2-6 in the browser; the two are kept
pixel-identical (tests/js_vectors.py generates the shared test cases), so any
change here needs the same change there.

Deliberate differences from the example (in both styles):

- polarity takes the positive part ``max(a, 0)`` where the example clips to
  [0, 1]: our attributions are in raw pixel units and may exceed 1, which
  the clip would silently saturate;
- ``polarity="both"`` (our addition) draws the positive map in
  ``positive_color`` and the negative map in ``negative_color`` in one
  picture, each with its own thresholds; in the keras style their
  contributions add where they colour the same channel, in the heatmap style
  the negative layer is blended over the positive one;
- maps the example cannot handle render without errors or warnings: an
  all-zero map, equal thresholds (pixels strictly above the common threshold
  show at full strength, so a constant map shows nothing), and outlines with
  no component (nothing drawn). Nothing shown means the plain image (the
  grey image in the heatmap style) with ``overlay`` and black without;
- outlines of a region that fills the whole image are not drawn: its border
  is the image's frame, which says nothing (with ``clip_below_percentile=0``
  every pixel is in the selection, and the example outlines the frame);
- the cleanup window is flat; the example passes ``np.ones`` as scipy's
  non-flat ``structure``, which adds and subtracts 1 and so differs only by
  rounding;
- threshold arithmetic runs in float64 (the example's float32 cumulative
  sum drifts on large maps).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

from .validation import as_image, check_choice, check_int, check_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLES = ("heatmap", "keras")
POLARITIES = ("positive", "negative", "both")
RENDER_DEFAULTS: dict[str, Any] = {
    "style": "heatmap",
    "polarity": "positive",
    "clip_above_percentile": 99.9,
    "clip_below_percentile": 0.0,
    "morphological_cleanup": False,
    "structure": 3,
    "outlines": False,
    "outlines_component_percentage": 90.0,
    "overlay": True,
    # None: the style's colours (STYLE_COLORS).
    "positive_color": None,
    "negative_color": None,
    # 0: per pixel; N: the patch view, N x N squares (see the module docstring).
    "patch": 0,
}
STYLE_COLORS: dict[str, dict[str, tuple[int, int, int]]] = {
    "heatmap": {"positive": (255, 48, 0), "negative": (33, 102, 172)},
    "keras": {"positive": (0, 255, 0), "negative": (255, 0, 0)},
}
# Windows beyond this only blur the map away, and cost time in the browser.
MAX_STRUCTURE = 64
# The largest patch side accepted (a square beyond the image is the whole image).
MAX_PATCH = 512
BINARIZE_THRESHOLD = 0.001
MAX_OUTLINED_COMPONENTS = 3
# keras style: the share of the colour added to the image.
OVERLAY_WEIGHT = 0.8
# heatmap style: the grey image is the luma (ITU-R BT.601, as PIL's "L"
# mode); a pixel is opaque from this strength on; at full strength its
# colour is darkened by this fraction.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
OPAQUE_STRENGTH = 0.5
DEEPEN = 0.5
# On a dark ground (black, or an image whose mean luma is below DARK_GROUND)
# the colour is lightened instead, towards white by up to LIGHTEN at full
# strength, so that the strongest pixels are the brightest.
DARK_GROUND = 64.0
LIGHTEN = 0.7
# The colour key: colours sampled at this many strengths from 0 to 1, drawn
# over this grey (the middle of the image range) or over black without overlay.
KEY_STOPS = 64
KEY_BACKGROUND = 128
# The concentration in a panel's description: the share of the total held by
# this percentage of the pixels, the strongest.
TOP_PIXELS_PERCENT = 5
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


class KeyEntry(TypedDict):
    """What one sign's colours stand for in a picture (see ``colour_key``)."""

    polarity: str
    color: tuple[int, int, int]
    colors: list[list[int]]
    low: float
    high: float
    low_share: float
    high_share: float
    total: float
    top_share: float


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_color(name: str, value: Any) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (Sequence, np.ndarray))
        or len(value) != 3
    ):
        raise TypeError(
            f"{name}: expected 3 integers (R, G, B) in 0..255, or None for the style's colour, "
            f"got {value!r}"
        )
    red, green, blue = (
        check_int(f"{name}[{index}]", channel, low=0, high=255)
        for index, channel in enumerate(value)
    )
    return red, green, blue


def validate_render_options(**options: Any) -> dict[str, Any]:
    """Check render options and return all of them, defaults filled in.

    Usable alone, e.g. on values coming from the browser. Every error names
    the option and the expected value.

    Parameters
    ----------
    **options
        Any subset of ``RENDER_DEFAULTS``' keys.

    Returns
    -------
    dict
        Every option, normalised: floats for percentages, int for
        ``structure``, bools, and colours as tuples of 3 ints (or None for
        the style's colours).

    Examples
    --------
    >>> validate_render_options(clip_above_percentile=99)["clip_above_percentile"]
    99.0
    """
    unknown = sorted(set(options) - set(RENDER_DEFAULTS))
    if unknown:
        raise TypeError(
            f"{unknown[0]}: not a render option; expected one of {', '.join(RENDER_DEFAULTS)}"
        )
    merged = {**RENDER_DEFAULTS, **options}
    checked: dict[str, Any] = {
        "style": check_choice("style", merged["style"], STYLES),
        "polarity": check_choice("polarity", merged["polarity"], POLARITIES),
        "clip_above_percentile": check_number(
            "clip_above_percentile", merged["clip_above_percentile"], low=0.0, high=100.0
        ),
        "clip_below_percentile": check_number(
            "clip_below_percentile", merged["clip_below_percentile"], low=0.0, high=100.0
        ),
        "morphological_cleanup": _check_bool(
            "morphological_cleanup", merged["morphological_cleanup"]
        ),
        "structure": check_int("structure", merged["structure"], low=1, high=MAX_STRUCTURE),
        "outlines": _check_bool("outlines", merged["outlines"]),
        "outlines_component_percentage": check_number(
            "outlines_component_percentage",
            merged["outlines_component_percentage"],
            low=0.0,
            high=100.0,
        ),
        "overlay": _check_bool("overlay", merged["overlay"]),
        "positive_color": _check_color("positive_color", merged["positive_color"]),
        "negative_color": _check_color("negative_color", merged["negative_color"]),
        "patch": check_int("patch", merged["patch"], low=0, high=MAX_PATCH),
    }
    if checked["clip_below_percentile"] >= checked["clip_above_percentile"]:
        raise ValueError(
            "clip_below_percentile: expected a value below clip_above_percentile "
            f"({checked['clip_above_percentile']}), got {checked['clip_below_percentile']}"
        )
    return checked


def polarity_colors(options: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """The colour each sign is drawn in: the option, or the style's own where it is None.

    Examples
    --------
    >>> polarity_colors(validate_render_options(style="keras", negative_color=(0, 0, 255)))
    {'positive': (0, 255, 0), 'negative': (0, 0, 255)}
    """
    own = STYLE_COLORS[options["style"]]
    return {
        sign: own[sign] if options[f"{sign}_color"] is None else options[f"{sign}_color"]
        for sign in ("positive", "negative")
    }


def _is_float_source(image: Any) -> bool:
    if isinstance(image, (str, os.PathLike)):
        return False
    if hasattr(image, "numpy") and not isinstance(image, np.ndarray):
        image = image.numpy()
    return bool(np.issubdtype(np.asarray(image).dtype, np.floating))


def _displayable(pixels: np.ndarray, float_source: bool) -> np.ndarray:
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    else:
        pixels = pixels[:, :, :3]
    if float_source and pixels.min() >= 0.0 and pixels.max() <= 1.0:
        pixels = pixels * np.float32(255.0)
    return np.rint(np.clip(pixels, 0.0, 255.0)).astype(np.uint8)


def display_image(image: Any) -> np.ndarray:
    """The image as the uint8 RGB picture the attributions are drawn on.

    Greyscale becomes grey RGB; a fourth channel is dropped. Integer images
    are in 0..255 (uint16 is rescaled, see ``as_image``). A float image whose
    values all lie in [0, 1] is taken as a 0..1 image and scaled by 255; any
    other float image is taken as 0..255 and clipped to it. Values are rounded
    to the nearest integer.

    Parameters
    ----------
    image : array, PIL image or path
        (H, W), (H, W, C) or (1, H, W, C) with 1, 3 or 4 channels.

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> display_image(np.full((2, 2), 0.5)).tolist()[0][0]
    [128, 128, 128]
    """
    return _displayable(as_image(image), _is_float_source(image))


def _as_attributions(value: Any, name: str = "attributions") -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {array.dtype}")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.size == 0:
        raise ValueError(
            f"{name}: expected a non-empty array of shape (H, W) or (H, W, C), got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite numbers")
    largest = float(np.max(np.abs(array)))
    if largest > float(np.finfo(np.float32).max):
        # The maps are float32 (what the browser draws from).
        raise ValueError(
            f"{name}: values up to {largest:.3g} exceed float32's range (3.4e38); "
            "rescale the map first"
        )
    return array


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of an (H, W) or (H, W, C) array.

    Blocks at the bottom and right edges may be smaller; each is averaged
    over the pixels it has, so the result is an area resampling.

    Examples
    --------
    >>> block_mean(np.arange(9.0).reshape(3, 3), 2).tolist()
    [[2.0, 3.5], [6.5, 8.0]]
    """
    if factor == 1:
        return array.astype(np.float32)
    height, width = array.shape[:2]
    rows = np.arange(0, height, factor)
    cols = np.arange(0, width, factor)
    sums = np.add.reduceat(np.add.reduceat(array.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(rows, append=height), np.diff(cols, append=width))
    if array.ndim == 3:
        counts = counts[:, :, None]
    return (sums / counts).astype(np.float32)


def channel_maps(attributions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative attribution maps, averaged over the channels.

    Parameters
    ----------
    attributions : array (H, W) or (H, W, C)
        Finite attribution values, any scale.

    Returns
    -------
    positive, negative : ndarray, float32, (H, W)
        Channel means of ``max(a, 0)`` and of ``max(-a, 0)``.

    Examples
    --------
    >>> pos, neg = channel_maps(np.array([[[3.0, -3.0, 6.0]]]))
    >>> float(pos[0, 0]), float(neg[0, 0])
    (3.0, 1.0)
    """
    values = _as_attributions(attributions)
    positive = np.zeros(values.shape[:2], np.float64)
    negative = np.zeros(values.shape[:2], np.float64)
    # One channel at a time: NumPy's mean over a short last axis is several
    # times slower than adding whole planes.
    for channel in range(values.shape[2]):
        plane = values[:, :, channel].astype(np.float64)
        positive += np.maximum(plane, 0.0)
        negative += np.maximum(-plane, 0.0)
    positive /= values.shape[2]
    negative /= values.shape[2]
    return positive.astype(np.float32), negative.astype(np.float32)


def patch_maps(positive: Any, negative: Any, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """The patch view of two channel maps: each ``patch`` x ``patch`` square's net value.

    A square's value is the mean of ``positive - negative`` over its pixels,
    added up in float64 in a fixed order (pixel offsets within the square in
    row-major order), so that the browser's copy gives the same float32
    numbers; its pixels take the value's positive part into the positive
    map and its negative part into the negative map. Squares at the right
    and bottom edges may be smaller.

    Parameters
    ----------
    positive, negative : ndarray, float32, (H, W)
        As from ``channel_maps``.
    patch : int
        The square's side in pixels, 1 or more.

    Returns
    -------
    positive, negative : ndarray, float32, (H, W)

    Examples
    --------
    >>> pos = np.array([[3.0, 0.0, 1.0], [1.0, 0.0, 0.0]], np.float32)
    >>> neg = np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 4.0]], np.float32)
    >>> [m.tolist() for m in patch_maps(pos, neg, 2)]
    [[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], [[0.0, 0.0, 1.5], [0.0, 0.0, 1.5]]]
    """
    patch = check_int("patch", patch, low=1, high=MAX_PATCH)
    positive = np.asarray(positive, np.float32)
    negative = np.asarray(negative, np.float32)
    height, width = positive.shape
    rows, cols = -(-height // patch), -(-width // patch)
    net = np.zeros((rows * patch, cols * patch))
    net[:height, :width] = positive.astype(np.float64) - negative.astype(np.float64)
    sums = np.zeros((rows, cols))
    for dy in range(patch):
        for dx in range(patch):
            sums += net[dy::patch, dx::patch]
    counts = np.outer(
        np.minimum(patch, height - patch * np.arange(rows)),
        np.minimum(patch, width - patch * np.arange(cols)),
    )
    means = (sums / counts).astype(np.float32)
    spread = np.repeat(np.repeat(means, patch, axis=0), patch, axis=1)[:height, :width]
    return np.maximum(spread, np.float32(0)), np.maximum(-spread, np.float32(0))


class _Scale:
    """A map's positive values, largest first, and the running share of its total they reach.

    Zeros add nothing to the total, so only positive entries are sorted.
    """

    def __init__(self, values: np.ndarray, *, with_places: bool = False) -> None:
        self.shape = values.shape
        self.minimum = float(values.min())
        flat = values.ravel()
        positive = np.flatnonzero(flat > 0)
        # with_places: sort positions rather than values, so that pixel_shares
        # knows each pixel's place among the sorted values.
        self.places: np.ndarray | None = None
        if with_places:
            self.places = positive[np.argsort(flat[positive])[::-1]]
            self.ordered = flat[self.places].astype(np.float64)
        else:
            self.ordered = np.sort(flat[positive])[::-1].astype(np.float64)
        cumulative = np.cumsum(self.ordered)
        # The running total's last entry, not np.sum: np.sum adds pairwise and
        # would round differently from the browser's sequential sum.
        self.total = float(cumulative[-1]) if self.ordered.size else 0.0
        self.share = 100.0 * cumulative / cumulative[-1] if self.ordered.size else cumulative

    def threshold(self, percentage: float) -> float:
        """Value at which the largest entries reach ``percentage`` of the total.

        Where no entry reaches it (an all-zero map, or 100 percent, as the
        example special-cases) the map's minimum is used.
        """
        index = int(np.searchsorted(self.share, percentage, side="left"))
        if percentage < 100.0 and index < self.ordered.size:
            return float(self.ordered[index])
        return self.minimum

    def share_above(self, values: np.ndarray, *, inclusive: bool) -> np.ndarray:
        """Percentage of the total held by the entries above each value (or equal, if inclusive).

        100 for values <= 0: every positive entry is above them.
        """
        values = np.asarray(values, np.float64)
        result = np.full(values.shape, 100.0)
        positive = values > 0
        side: Literal["left", "right"] = "left" if inclusive else "right"
        count = self.ordered.size - np.searchsorted(self.ordered[::-1], values[positive], side=side)
        result[positive] = np.where(count > 0, self.share[np.maximum(count, 1) - 1], 0.0)
        return result

    def pixel_shares(self) -> np.ndarray:
        """``share_above(values, inclusive=False)`` of the map's own pixels, from the sort.

        A pixel's entries above it are those before the first entry equal to
        it, largest first; no search is needed.
        """
        if self.places is None:
            raise RuntimeError("pixel_shares needs a _Scale made with_places=True")
        result = np.full(int(np.prod(self.shape)), 100.0)
        if self.ordered.size:
            ordered = self.ordered
            # Index of the first entry of each run of equal values, carried along the run.
            starts = np.r_[True, ordered[1:] != ordered[:-1]]
            first = np.maximum.accumulate(np.where(starts, np.arange(ordered.size), 0))
            result[self.places] = np.where(first > 0, self.share[np.maximum(first, 1) - 1], 0.0)
        return result.reshape(self.shape)


def _reflected_indices(length: int, before: int, after: int) -> np.ndarray:
    """Source index for positions -before .. length + after - 1 under scipy's "reflect" mode."""
    positions = np.mod(np.arange(-before, length + after), 2 * length)
    return np.where(positions >= length, 2 * length - 1 - positions, positions)


def _flat_window_extreme(values: np.ndarray, size: int, dilate: bool) -> np.ndarray:
    """Flat size x size grey dilation or erosion, equal to scipy.ndimage's.

    scipy centres even windows differently for the two: a dilation covers
    offsets -(size - 1) // 2 onwards, an erosion -(size // 2) onwards.
    """
    start = -((size - 1) // 2) if dilate else -(size // 2)
    extreme = np.maximum if dilate else np.minimum
    for axis in (0, 1):
        length = values.shape[axis]
        padded = np.take(values, _reflected_indices(length, -start, size - 1 + start), axis=axis)
        window = [slice(None), slice(None)]
        window[axis] = slice(0, length)
        result = padded[tuple(window)].copy()
        for offset in range(1, size):
            window[axis] = slice(offset, offset + length)
            extreme(result, padded[tuple(window)], out=result)
        values = result
    return values


def _cleanup(strength: np.ndarray, size: int) -> np.ndarray:
    """Grey closing then grey opening, as scipy's with a flat size x size footprint."""
    closed = _flat_window_extreme(_flat_window_extreme(strength, size, True), size, False)
    return _flat_window_extreme(_flat_window_extreme(closed, size, False), size, True)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """scipy's binary_fill_holes: background not 4-connected to the border becomes foreground."""
    # scipy loads on first use: at module level it takes most of `import ig_widget`.
    from scipy import ndimage

    background, _ = ndimage.label(~mask)
    edges = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    open_to_border = np.zeros(background.max() + 1, dtype=bool)
    open_to_border[edges] = True
    open_to_border[0] = False
    return ~open_to_border[background]


def _inner_border(region: np.ndarray) -> np.ndarray:
    """Pixels of ``region`` with a 4-neighbour outside it or outside the image.

    The same as ``region & ~scipy.ndimage.binary_erosion(region)``.
    """
    padded = np.pad(region, 1)
    interior = region & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~interior


def _outline(mask: np.ndarray, component_percentage: float) -> np.ndarray:
    """Border of the largest filled components covering the share of the area (at most 3).

    Nothing where the filled components are the whole image.
    """
    from scipy import ndimage

    filled = _fill_holes(mask)
    if filled.all():
        # One region that is the whole image: its border would be the frame.
        return np.zeros_like(mask)
    labels, count = ndimage.label(filled, structure=_EIGHT_CONNECTED)
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    # Stable, so equal sizes keep label order (first appearance in raster
    # order), as the example's stable sorted(reverse=True) does.
    order = np.argsort(-sizes, kind="stable")
    covered = np.cumsum(sizes[order])
    cutoff = component_percentage * covered[-1] / 100
    kept = min(int(np.searchsorted(covered, cutoff, side="left")) + 1, MAX_OUTLINED_COMPONENTS)
    keep = np.zeros(count + 1, dtype=bool)
    keep[order[:kept] + 1] = True
    return _inner_border(keep[labels])


# The region of a region target, outlined on the input: yellow, apart from
# both polarities' colours and from the keras style's green and red.
REGION_COLOR = (255, 221, 0)


def outline_region(image: np.ndarray, mask: Any) -> np.ndarray:
    """The picture ``image`` with the region ``mask`` outlined in ``REGION_COLOR``.

    ``mask`` may be smaller or larger than the picture (a mask on the model's
    score map, or a picture shown at a reduced size): picture pixel ``(y, x)``
    is inside when ``mask[y * Hm // H, x * Wm // W]`` is (nearest neighbour,
    integer arithmetic, so the browser's ``outlineRegion`` gives the same
    pixels). The outline is the region's one-pixel inner border (4-neighbours),
    as the attribution outlines, so it never covers a pixel outside the region.

    Examples
    --------
    >>> rgb = outline_region(np.zeros((4, 6, 3), np.uint8), np.array([[False, True]] * 2))
    >>> (rgb[..., 0] > 0).astype(int).tolist()
    [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 0, 1], [0, 0, 0, 1, 0, 1], [0, 0, 0, 1, 1, 1]]
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image: expected a uint8 array (H, W, 3) as from display_image, "
            f"got {image.dtype} {image.shape}"
        )
    region = np.asarray(mask)
    if region.dtype != bool or region.ndim != 2 or region.size == 0:
        raise TypeError(
            f"mask: expected a boolean array (H, W), got {region.dtype} of shape {region.shape}"
        )
    height, width = image.shape[:2]
    rows = np.arange(height) * region.shape[0] // height
    columns = np.arange(width) * region.shape[1] // width
    border = _inner_border(region[np.ix_(rows, columns)])
    outlined = image.copy()
    outlined[border] = REGION_COLOR
    return outlined


def _strength(values: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """Colour strength in [0, 1] (float64) for one sign's map, steps 2-5."""
    scale = _Scale(values, with_places=options["style"] == "heatmap")
    top, bottom = 100.0 - options["clip_above_percentile"], 100.0 - options["clip_below_percentile"]
    if options["style"] == "heatmap":
        strength = np.clip((bottom - scale.pixel_shares()) / (bottom - top), 0.0, 1.0)
    else:
        high, low = scale.threshold(top), scale.threshold(bottom)
        wide = values.astype(np.float64)
        if high > low:
            strength = np.clip((wide - low) / (high - low), 0.0, 1.0)
        else:
            strength = (wide > high).astype(np.float64)
    if options["morphological_cleanup"]:
        strength = _cleanup(strength, options["structure"])
    if options["outlines"]:
        border = _outline(strength > BINARIZE_THRESHOLD, options["outlines_component_percentage"])
        strength = border.astype(np.float64)
    return strength


def _check_map(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != shape:
        raise ValueError(
            f"{name}: expected shape {shape} (the image's height and width), got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name}: expected float32 values, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values; expected finite numbers")
    if array.size and array.min() < 0:
        raise ValueError(
            f"{name}: expected values >= 0 (a channel mean of max(a, 0), from channel_maps), "
            f"got {array.min()}"
        )
    return array.astype(np.float32, copy=False)


def render_maps(
    image: np.ndarray, positive: np.ndarray, negative: np.ndarray, **render_options: Any
) -> np.ndarray:
    """Draw precomputed channel maps on a display image.

    The browser renderer (``js/src/render.ts``) implements this same function
    and is tested against it.

    Parameters
    ----------
    image : ndarray, uint8, (H, W, 3)
        As returned by ``display_image``.
    positive, negative : ndarray, float32, (H, W)
        As returned by ``channel_maps``.
    **render_options
        As for ``render``.

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> rgb = render_maps(np.zeros((2, 2, 3), np.uint8), np.eye(2, dtype=np.float32),
    ...                   np.zeros((2, 2), np.float32), style="keras", overlay=False)
    >>> rgb[..., 1].tolist()
    [[255, 0], [0, 255]]
    """
    options = validate_render_options(**render_options)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image: expected a uint8 array (H, W, 3) as from display_image, "
            f"got {image.dtype} {image.shape}"
        )
    positive = _check_map("positive", positive, image.shape[:2])
    negative = _check_map("negative", negative, image.shape[:2])
    if options["patch"]:
        positive, negative = patch_maps(positive, negative, options["patch"])
    colors = polarity_colors(options)
    layers = [
        (_strength(values, options), colors[sign])
        for sign, values in (("positive", positive), ("negative", negative))
        if options["polarity"] in (sign, "both")
    ]
    return _compose(image, layers, options, is_dark(ground_luma(image, options["overlay"])))


Layer = tuple[np.ndarray, tuple[int, int, int]]


def ground_luma(image: np.ndarray, overlay: bool) -> float:
    """Mean luma of what a heatmap picture is drawn on: the grey image, or black (0).

    From exact integer channel sums, so that the browser's sum gives the same number.

    Examples
    --------
    >>> grey = np.full((2, 2, 3), 100, np.uint8)
    >>> ground_luma(grey, True), ground_luma(grey, False)
    (100.0, 0.0)
    """
    if not overlay:
        return 0.0
    sums = np.asarray(image).reshape(-1, 3).sum(axis=0, dtype=np.int64)
    red, green, blue = (float(value) for value in sums)
    pixels = image.shape[0] * image.shape[1]
    return (LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue) / pixels


def is_dark(ground: float) -> bool:
    """Whether a heatmap on this ground (a mean luma, see ``ground_luma``) lightens its colours."""
    return ground < DARK_GROUND


def _compose(
    image: np.ndarray, layers: list[Layer], options: dict[str, Any], dark: bool
) -> np.ndarray:
    """Colour (strength, colour) layers onto ``image`` (uint8 RGB) in the options' style.

    ``dark``: the heatmap's strong end lightens (else it deepens).
    """
    rgb = np.empty(image.shape, np.uint8)
    if options["style"] == "keras":
        # Plane by plane, skipping zero colour components: x + 0 * s == x
        # exactly, so this equals the browser's full per-pixel formula
        # (s_pos * c_pos + s_neg * c_neg) * 0.8 + image, clipped and truncated.
        for channel in range(3):
            colour = None
            for strength, colour_rgb in layers:
                if colour_rgb[channel]:
                    term = strength * float(colour_rgb[channel])
                    colour = term if colour is None else colour + term
            if colour is None:
                rgb[:, :, channel] = image[:, :, channel] if options["overlay"] else 0
                continue
            if options["overlay"]:
                colour *= OVERLAY_WEIGHT
                colour += image[:, :, channel]
            # Truncation, not rounding, as the example's astype(np.uint8).
            rgb[:, :, channel] = np.clip(colour, 0.0, 255.0, out=colour)
        return rgb
    if options["overlay"]:
        red, green, blue = (image[:, :, channel].astype(np.float64) for channel in range(3))
        grey = LUMA_WEIGHTS[0] * red + LUMA_WEIGHTS[1] * green + LUMA_WEIGHTS[2] * blue
    else:
        grey = np.zeros(image.shape[:2])
    blends: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int]]] = []
    for strength, colour_rgb in layers:
        ramp = np.minimum(strength / OPAQUE_STRENGTH, 1.0)
        if dark:
            # Towards white from half strength on: the strongest are the brightest.
            lift = LIGHTEN * np.maximum(2.0 * strength - 1.0, 0.0)
            blends.append((ramp * ramp, 1.0 - lift, lift * 255.0, colour_rgb))
        else:
            blends.append((ramp * ramp, 1.0 - DEEPEN * strength, np.zeros(()), colour_rgb))
    for channel in range(3):
        shown = grey.copy()
        for opacity, shade, lift, colour_rgb in blends:
            shown += opacity * (float(colour_rgb[channel]) * shade + lift - shown)
        # Rounded half up, as the browser's Math.floor(x + 0.5).
        rgb[:, :, channel] = np.floor(shown + 0.5)
    return rgb


def colour_key(
    positive: Any, negative: Any, *, ground: float | None = None, **render_options: Any
) -> list[KeyEntry]:
    """What the colours of a picture stand for, one entry per drawn sign.

    Parameters
    ----------
    positive, negative : ndarray, float32, (H, W)
        The picture's channel maps, as from ``channel_maps``.
    ground : float, optional
        The picture's ``ground_luma``: the heatmap key is drawn over this grey
        (rounded), with the colours the picture uses on it (lightening on a
        dark ground). None: ``KEY_BACKGROUND``. Without ``overlay`` the ground
        is black; the keras style's key is always over black, showing the
        colour it adds to the image.
    **render_options
        As for ``render``.

    Returns
    -------
    list of dict
        Per sign drawn (``"positive"``, ``"negative"``): ``color``, the
        sign's colour; ``colors``, ``KEY_STOPS`` RGB colours for strengths
        from 0 to 1, drawn over the ground; ``low`` and ``high``, the attribution magnitudes at
        strength 0 and 1 (the clip thresholds); ``low_share`` and
        ``high_share``, the percentage of the sign's total held by the
        pixels at least that strong; ``total``, the sign's total; and
        ``top_share``, the percentage of the total held by the strongest
        ``TOP_PIXELS_PERCENT`` percent of the pixels.

    Examples
    --------
    >>> values = np.array([[4.0, 3.0], [2.0, 1.0]], np.float32)
    >>> entry, = colour_key(values, np.zeros_like(values), clip_above_percentile=50.0)
    >>> entry["high"], entry["high_share"], entry["top_share"]
    (3.0, 70.0, 40.0)
    """
    options = validate_render_options(**render_options)
    positive = np.asarray(positive)
    positive = _check_map("positive", positive, positive.shape)
    negative = _check_map("negative", negative, positive.shape)
    if options["patch"]:
        positive, negative = patch_maps(positive, negative, options["patch"])
    colors = polarity_colors(options)
    strengths = np.arange(KEY_STOPS, dtype=np.float64)[None, :] / (KEY_STOPS - 1)
    grey = key_ground(ground, options)
    strip = np.full((1, KEY_STOPS, 3), int(np.floor(grey + 0.5)), np.uint8)
    dark = is_dark(grey)
    top_count = -(-positive.size * TOP_PIXELS_PERCENT // 100)
    entries: list[KeyEntry] = []
    for sign, values in (("positive", positive), ("negative", negative)):
        if options["polarity"] not in (sign, "both"):
            continue
        scale = _Scale(values)
        high = scale.threshold(100.0 - options["clip_above_percentile"])
        low = scale.threshold(100.0 - options["clip_below_percentile"])
        low_share, high_share = scale.share_above(np.array([low, high]), inclusive=True).tolist()
        top = float(scale.share[min(top_count, scale.ordered.size) - 1]) if scale.total else 0.0
        entries.append(
            {
                "polarity": sign,
                "color": colors[sign],
                "colors": _compose(strip, [(strengths, colors[sign])], options, dark)[0].tolist(),
                "low": low,
                "high": high,
                "low_share": low_share,
                "high_share": high_share,
                "total": scale.total,
                "top_share": top,
            }
        )
    return entries


def key_ground(ground: float | None, options: dict[str, Any]) -> float:
    """The grey a key is drawn over: black without overlay or in the keras style.

    Examples
    --------
    >>> key_ground(None, validate_render_options()), key_ground(30.2, validate_render_options())
    (128.0, 30.2)
    """
    if options["style"] == "keras" or not options["overlay"]:
        return 0.0
    return float(KEY_BACKGROUND) if ground is None else float(ground)


MEANINGS = {"positive": "raises the score", "negative": "lowers the score"}


def _three_digits(value: float) -> float:
    """``value`` rounded to three significant digits, exact halves away from zero.

    As JavaScript's ``toPrecision`` and ``toExponential`` round; Python's
    formatting rounds exact halves (31.25) to even, which gave texts one digit
    apart from the browser's.
    """
    exact = Decimal(value)
    if not exact:
        return 0.0
    magnitude = exact.adjusted()
    rounded = exact.quantize(Decimal(1).scaleb(magnitude - 2), rounding=ROUND_HALF_UP)
    if rounded.adjusted() > magnitude:  # 9.995 -> 10.0: three digits of the next decade
        rounded = exact.quantize(Decimal(1).scaleb(magnitude - 1), rounding=ROUND_HALF_UP)
    return float(rounded)


def format_number(value: float) -> str:
    """Three significant digits, in exponent form below 1e-3 or from 1e4 on.

    The same text as the browser's ``formatScore`` (``toPrecision(3)`` or
    ``toExponential(2)``), so that exports read as the widget does.

    Examples
    --------
    >>> format_number(0.5), format_number(-2.0636e-5), format_number(123456.0), format_number(0)
    ('0.500', '-2.06e-5', '1.23e+5', '0')
    >>> format_number(0.03125), format_number(-3.125e-6)
    ('0.0313', '-3.13e-6')
    """
    if value == 0:
        return "0"
    value = _three_digits(value)
    if 1e-3 <= abs(value) < 1e4:
        text = f"{value:#.3g}"
        return text[:-1] if text.endswith(".") else text
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def format_percent(value: float) -> str:
    """A percentage with up to three significant digits, as the browser writes it.

    Examples
    --------
    >>> format_percent(0.10031), format_percent(72.0), format_percent(100.0), format_percent(31.25)
    ('0.1 %', '72 %', '100 %', '31.3 %')
    """
    return f"{float(f'{_three_digits(value):.3g}'):g} %"


# Key texts in plain words. A colour's name (its hex code) where the styles'
# colours have one; any other colour is "coloured". What a sign's total is
# called: the score's rise (positive attribution) or fall (negative).
COLOUR_NAMES = {"#ff3000": "red", "#2166ac": "blue", "#00ff00": "green", "#ff0000": "red"}
UNNAMED_COLOUR = "coloured"
AMOUNTS = {"positive": "the rise", "negative": "the fall"}


def colour_name(color: Sequence[int]) -> str:
    """A colour's name in a key: "red", "blue", "green", or "coloured" for any other.

    Examples
    --------
    >>> colour_name((255, 48, 0)), colour_name((10, 20, 30))
    ('red', 'coloured')
    """
    red, green, blue = (int(channel) for channel in color)
    return COLOUR_NAMES.get(f"#{red:02x}{green:02x}{blue:02x}", UNNAMED_COLOUR)


def key_labels(entry: KeyEntry, class_name: str | None = None) -> dict[str, str]:
    """The texts of one key entry, in plain words a reader who does not know IG follows.

    - ``meaning``: what the colour says ("red: raises the score of 'star'");
    - ``low``, ``high``: the attribution values at the bar's two ends
      (negative values shown negative, as they are in the map);
    - ``low_share``: how much of the sign's total all the pixels in colour
      carry ("all red: 100 % of the rise");
    - ``high_share``: how much the pixels in the strongest colour carry
      ("strongest red: 0.667 % of the rise");
    - ``top``: the number that matters, how concentrated it is ("the
      strongest 5 % of pixels carry 32 % of the rise").

    Examples
    --------
    >>> values = np.array([[4.0, 3.0], [2.0, 1.0]], np.float32)
    >>> entry, = colour_key(np.zeros_like(values), values, polarity="negative",
    ...                     clip_above_percentile=50.0)
    >>> labels = key_labels(entry, "star")
    >>> labels["meaning"], labels["low"], labels["high"], labels["high_share"]
    ("blue: lowers the score of 'star'", '-1.00', '-3.00', 'strongest blue: 70 % of the fall')
    """
    sign = -1.0 if entry["polarity"] == "negative" else 1.0
    name = colour_name(entry["color"])
    amount = AMOUNTS[entry["polarity"]]
    of_class = "" if class_name is None else f" of '{class_name}'"
    return {
        "meaning": f"{name}: {MEANINGS[entry['polarity']]}{of_class}",
        "low": format_number(sign * entry["low"]) if entry["low"] > 0 else "0",
        "high": format_number(sign * entry["high"]),
        "low_share": f"all {name}: {format_percent(entry['low_share'])} of {amount}",
        "high_share": f"strongest {name}: {format_percent(entry['high_share'])} of {amount}",
        "top": (
            f"the strongest {TOP_PIXELS_PERCENT} % of pixels carry "
            f"{format_percent(entry['top_share'])} of {amount}"
        ),
    }


def falling_total_note(
    total: float, class_name: str | None = None, polarity: str | None = None
) -> str | None:
    """What a picture must say when the attributions add up to a negative total.

    Their total is the score's change from the baseline to the image: when
    it is negative the score falls, and a picture of the positive polarity
    shows only what held it up. None when the total is not negative. With
    ``polarity="positive"`` the sentence names the polarity that shows the fall.

    Examples
    --------
    >>> falling_total_note(-5.87e-4, "ring", "positive")  # doctest: +NORMALIZE_WHITESPACE
    "The score of 'ring' falls from the baseline to the image: the attributions add up to
    -5.87e-4. The positive colour shows only what raised it; polarity='negative' shows
    what lowered it."
    >>> falling_total_note(0.3) is None
    True
    """
    if not total < 0:
        return None
    which = "The score" if class_name is None else f"The score of '{class_name}'"
    note = (
        f"{which} falls from the baseline to the image: the attributions add up to "
        f"{format_number(total)}."
    )
    if polarity == "positive":
        note += (
            " The positive colour shows only what raised it; polarity='negative' shows "
            "what lowered it."
        )
    return note


def _checked_pair(image: Any, attributions: Any) -> tuple[np.ndarray, np.ndarray]:
    pixels = as_image(image)
    values = _as_attributions(attributions)
    if values.shape[:2] != pixels.shape[:2] or values.shape[2] not in (1, pixels.shape[2]):
        raise ValueError(
            f"attributions: expected the image's shape {pixels.shape} "
            f"(or {pixels.shape[:2]}), got {values.shape}"
        )
    return _displayable(pixels, _is_float_source(image)), values


def render(
    image: Any,
    attributions: Any,
    *,
    style: str = "heatmap",
    polarity: str = "positive",
    clip_above_percentile: float = 99.9,
    clip_below_percentile: float = 0.0,
    morphological_cleanup: bool = False,
    structure: int = 3,
    outlines: bool = False,
    outlines_component_percentage: float = 90.0,
    overlay: bool = True,
    positive_color: Sequence[int] | None = None,
    negative_color: Sequence[int] | None = None,
    patch: int = 0,
) -> np.ndarray:
    """Picture of an attribution map: a heat map over the grey image, or the Keras example's.

    See the module docstring for the steps, the two styles and where they
    differ from the example.

    Parameters
    ----------
    image : array, PIL image or path
        The explained image (see ``display_image`` for how it is shown).
    attributions : array (H, W, C) or (H, W)
        Integrated gradients or plain gradients for ``image``.
    style : {"heatmap", "keras"}
        "heatmap": the attributions in colour over the grey image, strength
        on the share scale; "keras": the Keras example's look (colour added
        to the image, strength linear in the value).
    polarity : {"positive", "negative", "both"}
        Which sign to draw; "both" draws each in its colour.
    clip_above_percentile, clip_below_percentile : float in [0, 100]
        Cumulative-share percentiles that map to full strength and to
        nothing; below must be less than above.
    morphological_cleanup : bool
        Grey closing then opening with a ``structure`` x ``structure`` window.
    structure : int in 1..64
    outlines : bool
        Draw only the border of the largest components.
    outlines_component_percentage : float in [0, 100]
        Share of the area the outlined components must cover (at most 3).
    overlay : bool
        Draw over the image (else on black).
    positive_color, negative_color : 3 ints in 0..255, or None
        None: the style's colours (``STYLE_COLORS``).
    patch : int in 0..512
        The patch view: with N, the attributions are summed over each N x N
        square of the grid from the top-left corner (a ViT's tokens for its
        patch size N) and each square is drawn in one colour, its net sign's;
        0 (the default) draws every pixel.

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> attributions = np.zeros((8, 8, 3)); attributions[2, 3] = 0.5
    >>> rgb = render(np.zeros((8, 8, 3), np.uint8), attributions, style="keras")
    >>> rgb[2, 3].tolist(), int(rgb.sum()) == 204
    ([0, 204, 0], True)
    >>> render(np.full((8, 8, 3), 100, np.uint8), attributions)[2, 3].tolist()
    [128, 24, 0]
    """
    options = validate_render_options(
        style=style,
        polarity=polarity,
        clip_above_percentile=clip_above_percentile,
        clip_below_percentile=clip_below_percentile,
        morphological_cleanup=morphological_cleanup,
        structure=structure,
        outlines=outlines,
        outlines_component_percentage=outlines_component_percentage,
        overlay=overlay,
        positive_color=positive_color,
        negative_color=negative_color,
        patch=patch,
    )
    pixels, values = _checked_pair(image, attributions)
    return render_maps(pixels, *channel_maps(values), **options)


def plot(
    image: Any,
    gradients: Any,
    attributions: Any,
    *,
    class_name: str | None = None,
    score: float | None = None,
    figsize: tuple[float, float] | None = None,
    **render_options: Any,
) -> Figure:
    """Three panels side by side: Input, Normal gradients, Integrated gradients, with colour keys.

    Under each attribution panel a colour bar per drawn sign says what the
    colour means and which attribution values (and shares of the total) its
    ends stand for. When the integrated gradients add up to a negative total
    (the class's score falls from the baseline to the image), a line under
    the title says so and which polarity shows it (``falling_total_note``).

    Returns the figure without showing it; it needs no pyplot state, so it
    works headless. A notebook shows it as a PNG when it is a cell's value,
    with or without ``%matplotlib inline``. Save it with ``fig.savefig("ig.png")``.

    Parameters
    ----------
    image : array, PIL image or path
    gradients, attributions : array (H, W, C) or (H, W)
        Plain gradients and integrated gradients for ``image``.
    class_name : str, optional
        Shown, as plain text, in the figure title.
    score : float, optional
        The model's score for the class, shown in the figure title.
    figsize : (float, float), optional
        Width and height in inches. By default 15 inches wide and as tall as
        the panels and their keys need (no empty bands when saved).
    **render_options
        As for ``render``, applied to both attribution panels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> image = np.zeros((8, 8, 3), np.uint8)
    >>> fig = plot(image, np.ones((8, 8, 3)), np.ones((8, 8, 3)), class_name="cat", score=0.9)
    >>> [ax.get_title() for ax in fig.axes]
    ['Input', 'Normal gradients', 'Integrated gradients']
    """
    from ._figure import panels_figure

    options = validate_render_options(**render_options)
    if class_name is not None and not isinstance(class_name, str):
        raise TypeError(f"class_name: expected a string or None, got {type(class_name).__name__}")
    if score is not None:
        score = check_number("score", score)
    if figsize is not None and (
        not isinstance(figsize, (Sequence, np.ndarray))
        or len(figsize) != 2
        or not all(
            isinstance(size, numbers.Real)
            and not isinstance(size, (bool, np.bool_))
            and 0 < size < np.inf
            for size in figsize
        )
    ):
        raise ValueError(
            f"figsize: expected (width, height) in inches, both finite and > 0, got {figsize!r}"
        )
    pixels, gradient_values = _checked_pair(image, gradients)
    _, ig_values = _checked_pair(image, attributions)
    gradient_maps, ig_maps = channel_maps(gradient_values), channel_maps(ig_values)
    ground = ground_luma(pixels, options["overlay"])
    panels = {
        "Input": (pixels, None),
        "Normal gradients": (
            render_maps(pixels, *gradient_maps, **options),
            colour_key(*gradient_maps, ground=ground, **options),
        ),
        "Integrated gradients": (
            render_maps(pixels, *ig_maps, **options),
            colour_key(*ig_maps, ground=ground, **options),
        ),
    }
    heading = [] if class_name is None else [class_name]
    if score is not None:
        heading.append(f"score {score:.4g}")
    title = " — ".join(heading)
    note = falling_total_note(
        float(ig_values.sum(dtype=np.float64)), class_name, options["polarity"]
    )
    if note is not None:
        title = f"{title}\n{note}" if title else note
    size = None if figsize is None else (float(figsize[0]), float(figsize[1]))
    return panels_figure(panels, title, size, class_name)
