"""Attribution pictures: the Keras example's ``process_grads`` as vectorised array code.

The pipeline, per sign of the attributions:

1. ``channel_maps``: the channel mean of the positive part and of the
   magnitude of the negative part, two float32 (H, W) maps;
2. thresholds from the cumulative share of the sorted values: ``high`` is
   where the largest values reach ``100 - clip_above_percentile`` percent of
   the map's total, ``low`` where they reach ``100 - clip_below_percentile``;
3. the linear map ``(value - low) / (high - low)``, clipped to [0, 1];
4. optionally grey closing, then grey opening, with a flat
   ``structure`` x ``structure`` window;
5. optionally outlines: binarize (> 0.001), fill holes, label 8-connected
   components, keep the largest ones covering
   ``outlines_component_percentage`` percent of the area (at most three),
   and keep only their one-pixel border;
6. colour, and with ``overlay`` add ``0.8 * colour`` to the image, clipped
   to 0..255 and truncated to uint8 as the example does.

``js/src/render.ts`` repeats steps 2-6 in the browser; the two are kept
pixel-identical (tests/js_vectors.py generates the shared test cases), so any
change here needs the same change there.

Deliberate differences from the example:

- polarity takes the positive part ``max(a, 0)`` where the example clips to
  [0, 1]: our attributions are in raw pixel units and may exceed 1, which
  the clip would silently saturate;
- ``polarity="both"`` (our addition) draws the positive map in
  ``positive_color`` and the negative map in ``negative_color`` in one
  picture, each with its own thresholds; where both colour the same channel
  their contributions add;
- maps the example cannot handle render without errors or warnings: an
  all-zero map, equal thresholds (pixels strictly above the common threshold
  show at full strength, so a constant map shows nothing), and outlines with
  no component (nothing drawn). Nothing shown means the plain image with
  ``overlay`` and black without;
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
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from .validation import as_image, check_choice, check_int, check_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

POLARITIES = ("positive", "negative", "both")
RENDER_DEFAULTS: dict[str, Any] = {
    "polarity": "positive",
    "clip_above_percentile": 99.9,
    "clip_below_percentile": 0.0,
    "morphological_cleanup": False,
    "structure": 3,
    "outlines": False,
    "outlines_component_percentage": 90.0,
    "overlay": True,
    "positive_color": (0, 255, 0),
    "negative_color": (255, 0, 0),
}
# Windows beyond this only blur the map away, and cost time in the browser.
MAX_STRUCTURE = 64
BINARIZE_THRESHOLD = 0.001
MAX_OUTLINED_COMPONENTS = 3
OVERLAY_WEIGHT = 0.8
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_color(name: str, value: Any) -> tuple[int, int, int]:
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (Sequence, np.ndarray))
        or len(value) != 3
    ):
        raise TypeError(f"{name}: expected 3 integers (R, G, B) in 0..255, got {value!r}")
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
        ``structure``, bools, and colours as tuples of 3 ints.

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
    }
    if checked["clip_below_percentile"] >= checked["clip_above_percentile"]:
        raise ValueError(
            "clip_below_percentile: expected a value below clip_above_percentile "
            f"({checked['clip_above_percentile']}), got {checked['clip_below_percentile']}"
        )
    return checked


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
    return array


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


def _thresholds(values: np.ndarray, percentages: Sequence[float]) -> list[float]:
    """Value at which the largest entries reach each ``percentage`` of the map's total.

    Zeros add nothing to the running total, so only positive entries are
    sorted. Where no entry reaches the share (an all-zero map, or 100 percent,
    as the example special-cases) the map's minimum is used.
    """
    ordered = np.sort(values[values > 0])[::-1].astype(np.float64)
    cumulative = np.cumsum(ordered)
    # The running total's last entry, not np.sum: np.sum adds pairwise and
    # would round differently from the browser's sequential sum.
    share = 100.0 * cumulative / cumulative[-1] if ordered.size else cumulative
    minimum = float(values.min())
    found = []
    for percentage in percentages:
        index = int(np.searchsorted(share, percentage, side="left"))
        found.append(
            float(ordered[index]) if percentage < 100.0 and index < ordered.size else minimum
        )
    return found


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
    """Border of the largest filled components covering the share of the area (at most 3)."""
    labels, count = ndimage.label(_fill_holes(mask), structure=_EIGHT_CONNECTED)
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


def _strength(values: np.ndarray, options: dict[str, Any]) -> np.ndarray:
    """Colour strength in [0, 1] (float64) for one sign's map, steps 2-5."""
    high, low = _thresholds(
        values,
        (100.0 - options["clip_above_percentile"], 100.0 - options["clip_below_percentile"]),
    )
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
    ...                   np.zeros((2, 2), np.float32), overlay=False)
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
    layers = []
    if options["polarity"] in ("positive", "both"):
        layers.append((_strength(positive, options), options["positive_color"]))
    if options["polarity"] in ("negative", "both"):
        layers.append((_strength(negative, options), options["negative_color"]))
    rgb = np.empty(image.shape, np.uint8)
    # Plane by plane, skipping zero colour components: x + 0 * s == x exactly,
    # so this equals the browser's full per-pixel formula
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
    polarity: str = "positive",
    clip_above_percentile: float = 99.9,
    clip_below_percentile: float = 0.0,
    morphological_cleanup: bool = False,
    structure: int = 3,
    outlines: bool = False,
    outlines_component_percentage: float = 90.0,
    overlay: bool = True,
    positive_color: Sequence[int] = (0, 255, 0),
    negative_color: Sequence[int] = (255, 0, 0),
) -> np.ndarray:
    """Picture of an attribution map, as the Keras example's ``process_grads``.

    See the module docstring for the steps and where they differ from the
    example.

    Parameters
    ----------
    image : array, PIL image or path
        The explained image (see ``display_image`` for how it is shown).
    attributions : array (H, W, C) or (H, W)
        Integrated gradients or plain gradients for ``image``.
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
        Add the colour to the image (else draw it on black).
    positive_color, negative_color : 3 ints in 0..255

    Returns
    -------
    ndarray, uint8, (H, W, 3)

    Examples
    --------
    >>> attributions = np.zeros((8, 8, 3)); attributions[2, 3] = 0.5
    >>> rgb = render(np.zeros((8, 8, 3), np.uint8), attributions)
    >>> rgb[2, 3].tolist(), int(rgb.sum()) == 204
    ([0, 204, 0], True)
    """
    options = validate_render_options(
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
    figsize: tuple[float, float] = (15, 8),
    **render_options: Any,
) -> Figure:
    """Three panels side by side: Input, Normal gradients, Integrated gradients.

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
    figsize : (float, float)
        Width and height in inches.
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
    from ._figure import NotebookFigure

    options = validate_render_options(**render_options)
    if class_name is not None and not isinstance(class_name, str):
        raise TypeError(f"class_name: expected a string or None, got {type(class_name).__name__}")
    if score is not None:
        score = check_number("score", score)
    if (
        not isinstance(figsize, (Sequence, np.ndarray))
        or len(figsize) != 2
        or not all(isinstance(size, numbers.Real) and size > 0 for size in figsize)
    ):
        raise ValueError(f"figsize: expected (width, height) in inches, both > 0, got {figsize!r}")
    pixels, gradient_values = _checked_pair(image, gradients)
    _, ig_values = _checked_pair(image, attributions)
    panels = {
        "Input": pixels,
        "Normal gradients": render_maps(pixels, *channel_maps(gradient_values), **options),
        "Integrated gradients": render_maps(pixels, *channel_maps(ig_values), **options),
    }
    width, height = (float(size) for size in figsize)
    figure = NotebookFigure(figsize=(width, height))
    for axes, (title, picture) in zip(figure.subplots(1, 3), panels.items(), strict=True):
        axes.imshow(picture, interpolation="nearest")
        axes.set_title(title)
        axes.set_axis_off()
    heading = [] if class_name is None else [class_name]
    if score is not None:
        heading.append(f"score {score:.4g}")
    if heading:
        # parse_math=False: a class name with "$" is text, not TeX.
        figure.suptitle(" — ".join(heading), parse_math=False)
    return figure
