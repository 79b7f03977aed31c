"""What the browser is sent for one image and its result, built without side effects.

The browser gets the image and, per panel, the positive and negative
channel-mean maps as binary buffers, averaged down when one update would
exceed ``MAX_UPDATE_BYTES``; full resolution stays here for ``to_png``.
``shown_result`` turns an engine result into those buffers and the synced
values that describe it (top classes, summary, the score along the path).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from ..engine import IGResult, PreparedInput
from ..render import block_mean, channel_maps, display_image
from ..validation import as_image

PANELS = ("gradient", "ig")
MAP_BUFFERS = tuple(f"{panel}_{sign}" for panel in PANELS for sign in ("positive", "negative"))
# One result update (RGB image + four float32 maps) stays under this many
# bytes; larger images are averaged down for display only.
MAX_UPDATE_BYTES = 8 * 1024**2
BYTES_PER_DISPLAY_PIXEL = 3 + 4 * len(MAP_BUFFERS)

Maps = dict[str, tuple[np.ndarray, np.ndarray]]
# [index, label, score] of a class in the class menu.
ClassEntry = tuple[int, str, float]


class Summary(TypedDict):
    """The shown result in brief (the ``summary`` trait)."""

    target: int
    label: str
    score: float
    predicted: int
    predicted_label: str
    predicted_score: float
    delta: float
    steps: int
    method: str
    runs: int
    points_used: int
    elapsed_s: float
    display_factor: int


class PathData(TypedDict):
    """The target score along the path (the ``path`` trait), mean and range over the runs."""

    alphas: list[float]
    mean: list[float]
    low: list[float]
    high: list[float]
    baseline_score: float
    score: float


def display_factor(height: int, width: int) -> int:
    """Smallest integer reduction that keeps one result update under ``MAX_UPDATE_BYTES``.

    Examples
    --------
    >>> display_factor(299, 299), display_factor(2000, 2000)
    (1, 4)
    """
    factor = 1
    while (
        math.ceil(height / factor) * math.ceil(width / factor) * BYTES_PER_DISPLAY_PIXEL
        > MAX_UPDATE_BYTES
    ):
        factor += 1
    return factor


@dataclass(frozen=True)
class ShownImage:
    """The explained image: raw pixels for the engine, its picture, the picture's display copy.

    Examples
    --------
    >>> shown = ShownImage.of(np.zeros((4, 6), np.uint8))
    >>> shown.pixels.shape, shown.rgb.shape, shown.traits()["display_size"]
    ((4, 6, 1), (4, 6, 3), [4, 6])
    """

    pixels: np.ndarray
    rgb: np.ndarray
    factor: int
    shown_rgb: np.ndarray

    @classmethod
    def of(cls, image: Any) -> ShownImage:
        """Check and convert ``image`` (as ``igw.integrated_gradients`` takes it)."""
        pixels = as_image(image)
        rgb = display_image(image)
        factor = display_factor(*pixels.shape[:2])
        shown_rgb = np.rint(block_mean(rgb, factor)).astype(np.uint8)
        return cls(pixels, rgb, factor, shown_rgb)

    def traits(self) -> dict[str, Any]:
        """The synced values that show the image."""
        return {
            "image_size": list(self.pixels.shape[:2]),
            "display_size": list(self.shown_rgb.shape[:2]),
            "image_rgb": self.shown_rgb.tobytes(),
        }


@dataclass(frozen=True)
class ShownResult:
    """A result as the widget shows it, with the image it explains.

    ``prepared`` is the engine's prepared input of the image (its one forward
    pass, reused by every computation on it; None for a stored result shown
    without a model), ``request`` the compute options
    and target the result was computed for,
    ``maps`` the full-resolution channel maps (for ``to_png``),
    ``shown_maps`` the display-size ones the browser gets, ``traits`` the
    synced values that show the image and result.
    """

    image: ShownImage
    prepared: PreparedInput | None
    result: IGResult
    request: dict[str, Any]
    maps: Maps
    shown_maps: Maps
    traits: dict[str, Any]


def shown_result(
    image: ShownImage,
    prepared: PreparedInput | None,
    result: IGResult,
    request: dict[str, Any],
    label: Callable[[int], str],
    top_k: int,
) -> ShownResult:
    """How ``image`` and its ``result`` (for ``request``) are shown, naming classes with ``label``.

    ``classes`` lists ``[index, label, score]`` for the ``top_k`` classes, best
    first, and the explained class after them if it is not among them.
    """
    maps = {
        "gradient": channel_maps(result.gradients),
        "ig": channel_maps(result.attributions),
    }
    shown_maps = {
        panel: (block_mean(positive, image.factor), block_mean(negative, image.factor))
        for panel, (positive, negative) in maps.items()
    }
    buffers = {
        f"{panel}_{sign}": values.tobytes()
        for panel, pair in shown_maps.items()
        for sign, values in zip(("positive", "negative"), pair, strict=True)
    }
    scores = result.scores
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")[:top_k]]
    if result.target not in ranked:
        ranked.append(result.target)
    path_scores = np.asarray(result.path_scores, np.float64)
    traits = {
        **image.traits(),
        "classes": [[i, label(i), float(scores[i])] for i in ranked],
        "summary": Summary(
            target=result.target,
            label=label(result.target),
            score=result.score,
            predicted=ranked[0],
            predicted_label=label(ranked[0]),
            predicted_score=float(scores[ranked[0]]),
            delta=float(result.delta),
            steps=result.steps,
            method=result.method,
            runs=result.runs,
            points_used=result.points_used,
            elapsed_s=float(result.elapsed_s),
            display_factor=image.factor,
        ),
        "path": PathData(
            alphas=[float(a) for a in result.path_alphas],
            mean=path_scores.mean(axis=0).tolist(),
            low=path_scores.min(axis=0).tolist(),
            high=path_scores.max(axis=0).tolist(),
            baseline_score=float(np.mean(result.baseline_scores)),
            score=result.score,
        ),
        **buffers,
        "progress": [result.points_used, result.points_used],
    }
    return ShownResult(image, prepared, result, request, maps, shown_maps, traits)
