"""Test vectors for the browser renderer: inputs and the Python renderer's output.

Run as ``python -m tests.js_vectors OUTDIR``. Writes ``OUTDIR/vectors.bin``
and ``OUTDIR/index.json``; ``js/tests/render.test.ts`` replays every case
through ``renderMaps`` and compares it with the expected pixels.

Layout of ``index.json``::

    {"inputs": {name: {"width", "height", "image": [offset, bytes],
                       "positive": [offset, bytes], "negative": [offset, bytes]}},
     "cases": [{"input": name, "options": {...}, "expected": [offset, bytes]}],
     "keys": [{"input": name, "options": {...}, "ground": luma or null,
               "entries": [colour_key entry + "labels"]}],
     "regions": [{"input": name, "mask_width", "mask_height", "mask": [offset, bytes],
                  "expected": [offset, bytes]}]}

``image`` and ``expected`` are RGB uint8 (H, W, 3); a region's ``mask`` is
uint8 0/1 (mask_height, mask_width), its ``expected`` from ``outline_region``;
``positive`` and
``negative`` are little-endian float32 (H, W). Every block starts at a
multiple of 8 bytes so the reader can view it without copying.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ig_widget.render import (
    POLARITIES,
    STYLES,
    channel_maps,
    colour_key,
    ground_luma,
    key_labels,
    outline_region,
    render_maps,
)

CLIP_PAIRS = ((99.9, 0.0), (99.0, 0.0), (95.0, 28.0), (90.0, 10.0), (100.0, 0.0), (50.0, 49.5))
CLEANUP = (None, 2, 3, 4)
PATCHES = (1, 2, 4, 7, 64)


def _smooth_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    noise = ndimage.gaussian_filter(rng.normal(size=(height, width, 3)), (1.5, 1.5, 0))
    return (0.95 * noise / np.abs(noise).max()).astype(np.float32)


def _quantised_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    # Few distinct values: ties in the sort, flat plateaus for the morphology
    # and many equal-sized components for the outline ranking.
    return (rng.integers(-3, 4, size=(height, width, 3)) / 4).astype(np.float32)


def _synthetic_photo(size: int) -> np.ndarray:
    """A bright disk on a colour gradient: something for a CNN to react to."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    disk = ((x - 0.6) ** 2 + (y - 0.4) ** 2) < 0.08
    image = np.stack([200 * x, 120 + 60 * y, 80 * (1 - x)], axis=2)
    image[disk] = (250, 230, 40)
    return image.astype(np.float32)


def _tiny_model_maps(size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, integrated gradients and plain gradients from a tiny Keras CNN."""
    import ig_widget
    from tests.models import tiny_cnn

    image = _synthetic_photo(size)
    result = ig_widget.integrated_gradients(tiny_cnn(size=size), image, steps=32)
    return image.astype(np.uint8), result.attributions, result.gradients


def _inputs(with_model: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Display image (uint8 RGB) and attributions (H, W, 3) per input name."""
    rng = np.random.default_rng(7)

    def photo(height: int, width: int) -> np.ndarray:
        return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)

    spike = np.ones((40, 40, 3), np.float32)
    spike[11, 17] = 5.0  # below the 0.1 % share: both thresholds land on 1
    single = np.zeros((10, 10, 3), np.float32)
    single[4, 6] = (0.5, -0.2, 0.3)
    inputs = {
        "smooth_24x24": (photo(24, 24), _smooth_map(rng, 24, 24)),
        "smooth_17x40": (photo(17, 40), _smooth_map(rng, 17, 40)),
        "column_30x1": (photo(30, 1), _smooth_map(rng, 30, 1)),
        "row_1x23": (photo(1, 23), _smooth_map(rng, 1, 23)),
        "speckle_32x32": (
            photo(32, 32),
            rng.uniform(-0.99, 0.99, size=(32, 32, 3)).astype(np.float32),
        ),
        "quantised_20x28": (photo(20, 28), _quantised_map(rng, 20, 28)),
        "zeros_12x9": (photo(12, 9), np.zeros((12, 9, 3), np.float32)),
        "single_pixel_10x10": (photo(10, 10), single),
        "constant_8x8": (photo(8, 8), np.full((8, 8, 3), 0.25, np.float32)),
        "spike_40x40": (photo(40, 40), spike),
        # Mean luma below DARK_GROUND: the heatmap lightens its strong end.
        "dark_smooth_24x24": (photo(24, 24) // 5, _smooth_map(rng, 24, 24)),
    }
    if with_model:
        image, integrated, plain = _tiny_model_maps()
        inputs["tiny_cnn_ig_32x32"] = (image, integrated)
        inputs["tiny_cnn_gradients_32x32"] = (image, plain)
    return inputs


def _option_sets() -> list[dict[str, Any]]:
    sets = []
    for style, polarity, (above, below), cleanup, outlines, overlay in itertools.product(
        STYLES, ("positive", "negative", "both"), CLIP_PAIRS, CLEANUP, (False, True), (False, True)
    ):
        sets.append(
            {
                "style": style,
                "polarity": polarity,
                "clip_above_percentile": above,
                "clip_below_percentile": below,
                "morphological_cleanup": cleanup is not None,
                "structure": cleanup or 3,
                "outlines": outlines,
                "overlay": overlay,
            }
        )
    # Colours that share channels (their contributions add and saturate) and
    # the component share at its extremes.
    for style, percentage, overlay in itertools.product(STYLES, (0.0, 50.0, 100.0), (False, True)):
        sets.append(
            {
                "style": style,
                "polarity": "both",
                "outlines": True,
                "outlines_component_percentage": percentage,
                "overlay": overlay,
                "positive_color": (255, 200, 0),
                "negative_color": (90, 128, 255),
            }
        )
    # The patch view: squares that divide the input, squares cut by its edges,
    # one square larger than it, with the steps after it (cleanup, outlines).
    for style, polarity, patch in itertools.product(STYLES, POLARITIES, PATCHES):
        sets.append({"style": style, "polarity": polarity, "patch": patch})
    for style, patch in itertools.product(STYLES, (4, 7)):
        sets.append(
            {
                "style": style,
                "polarity": "both",
                "patch": patch,
                "morphological_cleanup": True,
                "outlines": True,
                "clip_above_percentile": 95.0,
            }
        )
    for style, structure in itertools.product(STYLES, (1, 5, 9)):
        sets.append(
            {
                "style": style,
                "polarity": "both",
                "morphological_cleanup": True,
                "structure": structure,
            }
        )
    return sets


def _key_option_sets() -> list[dict[str, Any]]:
    return [
        {
            "style": style,
            "polarity": polarity,
            "clip_above_percentile": above,
            "clip_below_percentile": below,
            "overlay": overlay,
        }
        for style, polarity, (above, below), overlay in itertools.product(
            STYLES, ("positive", "negative", "both"), CLIP_PAIRS, (False, True)
        )
    ] + [
        {"polarity": "both", "positive_color": (10, 20, 30), "negative_color": (200, 100, 0)},
        *({"polarity": "both", "patch": patch} for patch in PATCHES),
    ]


def _region_masks(rng: np.random.Generator, height: int, width: int) -> list[np.ndarray]:
    """Region masks smaller than, as large as and larger than the picture (a score map
    coarser or finer than it), with holes and borders on the image's edges."""
    masks = []
    for mask_height, mask_width in (
        (max(1, height // 4), max(1, width // 3)),
        (height, width),
        (2 * height + 1, 3 * width),
    ):
        blob = ndimage.gaussian_filter(rng.normal(size=(mask_height, mask_width)), 1.0)
        masks.append(blob > 0)
        masks.append(np.ones((mask_height, mask_width), dtype=bool))
    return masks


class _Blob:
    """Appends arrays to one byte string, each at an 8-byte boundary."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, array: np.ndarray) -> list[int]:
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        padding = -self.size % 8
        self.chunks.append(b"\0" * padding + data)
        self.size += padding
        where = [self.size, len(data)]
        self.size += len(data)
        return where


def write_vectors(outdir: str | Path, *, with_model: bool = True) -> dict[str, Any]:
    """Write ``vectors.bin`` and ``index.json`` into ``outdir``; return the index.

    ``with_model=False`` leaves out the two inputs that need TensorFlow.

    Examples
    --------
    From the shell: ``python -m tests.js_vectors js/tests/vectors``.
    """
    target = Path(outdir)
    target.mkdir(parents=True, exist_ok=True)
    blob = _Blob()
    index: dict[str, Any] = {"inputs": {}, "cases": [], "keys": [], "regions": []}
    rng = np.random.default_rng(25)
    option_sets = _option_sets()
    for name, (image, attributions) in _inputs(with_model).items():
        positive, negative = channel_maps(attributions)
        index["inputs"][name] = {
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "image": blob.add(image),
            "positive": blob.add(positive),
            "negative": blob.add(negative),
        }
        for options in option_sets:
            expected = render_maps(image, positive, negative, **options)
            index["cases"].append(
                {"input": name, "options": options, "expected": blob.add(expected)}
            )
        for options in _key_option_sets():
            # The picture's ground, as the widget passes it (None: the default grey).
            for ground in (None, ground_luma(image, True)):
                entries = [
                    {**entry, "labels": key_labels(entry)}
                    for entry in colour_key(positive, negative, ground=ground, **options)
                ]
                index["keys"].append(
                    {"input": name, "options": options, "ground": ground, "entries": entries}
                )
        for mask in _region_masks(rng, *image.shape[:2]):
            index["regions"].append(
                {
                    "input": name,
                    "mask_width": int(mask.shape[1]),
                    "mask_height": int(mask.shape[0]),
                    "mask": blob.add(mask.astype(np.uint8)),
                    "expected": blob.add(outline_region(image, mask)),
                }
            )
    (target / "vectors.bin").write_bytes(b"".join(blob.chunks))
    (target / "index.json").write_text(json.dumps(index))
    return index


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.js_vectors OUTDIR")
    written = write_vectors(sys.argv[1])
    print(f"{len(written['cases'])} cases from {len(written['inputs'])} inputs in {sys.argv[1]}")
