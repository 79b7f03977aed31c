"""What the browser is sent for one image and its result, built without side effects.

The browser gets the image and, per panel, the positive and negative
channel-mean maps as binary buffers, averaged down when one update would
exceed ``MAX_UPDATE_BYTES``; full resolution stays here for ``to_png``.
The panels are the plain gradient, the chosen method (``explainer``) and, in
compare mode, a second method (``compare``; empty buffers otherwise).
``shown_result`` turns an ``Explanation`` into those buffers and the synced
values that describe it (top classes, summary, the score along the path,
the insertion and deletion curves). ``stability_traits`` adds the spread of
the shown method over several runs (``igw.stability``), when the browser asks
for it; a new result clears it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from ..engine import IGResult, PreparedInput
from ..render import block_mean, channel_maps, display_image, falling_total_note
from ..stability import StabilityResult
from ..validation import as_image
from .methods import IG, NO_COMPARE, TITLES, Curve, Method

if TYPE_CHECKING:
    from ..sanity import SanityCheck

PANELS = ("gradient", "explainer", "compare")
MAP_BUFFERS = tuple(f"{panel}_{sign}" for panel in PANELS for sign in ("positive", "negative"))
# One result update (RGB image + four float32 maps) stays under this many
# bytes; larger images are averaged down for display only.
MAX_UPDATE_BYTES = 8 * 1024**2
BYTES_PER_DISPLAY_PIXEL = 3 + 4 * len(MAP_BUFFERS)

Maps = dict[str, tuple[np.ndarray, np.ndarray]]
# [index, label, score] of a class in the class menu.
ClassEntry = tuple[int, str, float]


# A model with at most this many classes has every class in the class menu.
ALL_CLASSES = 20


class Summary(TypedDict):
    """The shown result in brief (the ``summary`` trait)."""

    target: int
    label: str
    # The class the target is contrasted against (None, "": no contrast); the
    # score is then score(target) - score(against), and so is completeness.
    against: int | None
    against_label: str
    # For a region target, the region in words ("the sum over a region of 56
    # pixels", on a coarser map "the sum over 14 cells of the 8 x 8 score map (a box
    # of 56 pixels)"; "" for none): the score is the class's scores reduced over it.
    region: str
    score: float
    predicted: int
    predicted_label: str
    predicted_score: float
    explainer: str
    explainer_title: str
    compare: str
    compare_title: str
    # Integrated gradients' completeness error; None for the other methods.
    delta: float | None
    # Whether the plain gradient's panel has a map (a stored result of another method
    # has none: the view then shows the input and that method's map).
    gradients: bool
    # The sum of the shown attributions, and the sentence saying the score
    # falls when it is negative ("" otherwise; render.falling_total_note).
    total: float
    falling_note: str
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


class StabilityShown(TypedDict):
    """The shown method's stability over several runs (the ``stability_shown`` trait)."""

    explainer: str
    title: str
    runs: list[str]
    rank_correlation: float
    top_share: float
    top_percent: float
    points_used: int
    elapsed_s: float


def stability_traits(result: StabilityResult, image: ShownImage) -> dict[str, Any]:
    """The synced values that show ``result``: its summary, and its spread at display size
    (float32, as a map buffer).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> image = ShownImage.of(np.zeros((2, 2), np.uint8))
    >>> result = NS(method="smoothgrad", runs=("seed=0", "seed=1"), rank_correlation=0.5,
    ...             top_share=1.0, top_percent=5.0, points_used=4, elapsed_s=0.1,
    ...             spread=np.ones((2, 2)))
    >>> traits = stability_traits(result, image)
    >>> traits["stability_shown"]["title"], len(traits["stability_spread"])
    ('SmoothGrad', 16)
    """
    spread = block_mean(result.spread.astype(np.float32), image.factor)
    return {
        "stability_shown": StabilityShown(
            explainer=result.method,
            title=TITLES[result.method],
            runs=list(result.runs),
            rank_correlation=float(result.rank_correlation),
            top_share=float(result.top_share),
            top_percent=float(result.top_percent),
            points_used=int(result.points_used),
            elapsed_s=float(result.elapsed_s),
        ),
        "stability_spread": spread.astype(np.float32).tobytes(),
    }


def isolated(name: str) -> str:
    """``name`` (model or user text) wrapped so its direction reaches no text around it.

    The browser's ``isolate`` (js/src/format.ts) for a name Python puts into a
    sentence: First Strong Isolate ... Pop Directional Isolate, with one more
    opener for each stray closer in the name.

    Examples
    --------
    >>> isolated("cat") == "\u2068cat\u2069"
    True
    >>> isolated("a\u2069b") == "\u2068\u2068a\u2069b\u2069"
    True
    """
    depth = stray = 0
    for char in name:
        if char in "\u2066\u2067\u2068":
            depth += 1
        elif char == "\u2069":
            if depth:
                depth -= 1
            else:
                stray += 1
    return "\u2068" * (1 + stray) + name + "\u2069"


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


@dataclass(frozen=True, eq=False)
class Explanation:
    """What one computation of the widget produced.

    ``result`` is the ``explainer`` method's (an ``IGResult`` for integrated
    gradients), ``gradients`` the plain gradient at the image (None for a
    stored result of another method, which has none), ``compared``
    the ``compare`` method's result (None when compare is off), ``curves``
    the insertion and deletion curves of the methods shown (none for
    integrated gradients alone, whose panel shows the path instead).
    """

    result: Method
    gradients: np.ndarray | None
    explainer: str = IG
    compared: Method | None = None
    compare: str = NO_COMPARE
    curves: tuple[Curve, ...] = ()

    @property
    def points_used(self) -> int:
        return self.result.points_used + (self.compared.points_used if self.compared else 0)


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
    explanation: Explanation
    request: dict[str, Any]
    maps: Maps
    shown_maps: Maps
    traits: dict[str, Any]

    @property
    def result(self) -> Method:
        """The shown method's result."""
        return self.explanation.result

    def panels(
        self, full_resolution: bool = True
    ) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
        """The attribution panels shown now, titled, with their channel maps: the plain
        gradient and the method, or in compare mode the two methods side by side."""
        maps = self.maps if full_resolution else self.shown_maps
        summary = self.traits["summary"]
        method = (summary["explainer_title"], "explainer")
        titled = (
            [method, (summary["compare_title"], "compare")]
            if summary["compare"]
            else [("Normal gradients", "gradient"), method]
            if summary["gradients"]
            else [method]
        )
        return [(title, maps[panel]) for title, panel in titled]


def _path(result: Method) -> PathData:
    """The score along the path for integrated gradients; empty for the other methods."""
    if not isinstance(result, IGResult):
        return PathData(alphas=[], mean=[], low=[], high=[], baseline_score=0.0, score=result.score)
    path_scores = np.asarray(result.path_scores, np.float64)
    return PathData(
        alphas=[float(a) for a in result.path_alphas],
        mean=path_scores.mean(axis=0).tolist(),
        low=path_scores.min(axis=0).tolist(),
        high=path_scores.max(axis=0).tolist(),
        baseline_score=float(np.mean(result.baseline_scores)),
        score=result.score,
    )


def region_traits(result: Method, image: ShownImage) -> dict[str, Any]:
    """The synced values that outline ``result``'s region on the input (none: empty).

    A mask is sent at its own size (the score map's or the image's); a box as the
    mask of its rectangle in image pixels, whatever the score map's size. The
    browser scales it to the picture (``render.outline_region``'s rule).
    """
    region = result.region
    if region is None:
        return {"region_mask": b"", "region_size": [0, 0]}
    shape = image.pixels.shape[:2]
    inside = region.mask if region.mask is not None else region.box_pixels((shape[0], shape[1]))
    return {"region_mask": inside.astype(np.uint8).tobytes(), "region_size": list(inside.shape)}


def _region_words(result: Method) -> str:
    if result.region is None:
        return ""
    # describe_target's words after the class (a class name may hold ", the ").
    return "the " + result.explained.rpartition(", the ")[2]


def explained_words(result: Method, label: Callable[[int], str], region: bool = False) -> str:
    """What ``result`` explains, its classes named by ``label`` (each isolated): "cat",
    "cat and not dog"; with ``region``, a region target's words after it."""
    words = isolated(label(result.target))
    if result.against is not None:
        words = f"{words} and not {isolated(label(result.against))}"
    return f"{words}, {_region_words(result)}" if region and result.region is not None else words


def shown_result(
    image: ShownImage,
    prepared: PreparedInput | None,
    explanation: Explanation,
    request: dict[str, Any],
    label: Callable[[int], str],
    top_k: int,
) -> ShownResult:
    """How ``image`` and its ``explanation`` (for ``request``) are shown, naming classes
    with ``label``.

    ``classes`` lists ``[index, label, score]`` for the ``top_k`` classes (every
    class when there are at most ``ALL_CLASSES``), best first, and the
    explained class after them if it is not among them.
    """
    result = explanation.result
    maps = {"explainer": channel_maps(result.attributions)}
    if explanation.gradients is not None:
        maps["gradient"] = channel_maps(explanation.gradients)
    if explanation.compared is not None:
        maps["compare"] = channel_maps(explanation.compared.attributions)
    shown_maps = {
        panel: (block_mean(positive, image.factor), block_mean(negative, image.factor))
        for panel, (positive, negative) in maps.items()
    }
    buffers = {name: b"" for name in MAP_BUFFERS}
    buffers.update(
        {
            f"{panel}_{sign}": values.tobytes()
            for panel, pair in shown_maps.items()
            for sign, values in zip(("positive", "negative"), pair, strict=True)
        }
    )
    scores = result.scores
    listed = scores.size if scores.size <= ALL_CLASSES else top_k
    ranked = [int(i) for i in np.argsort(-scores, kind="stable")[:listed]]
    for explained in (result.target, result.against):
        if explained is not None and explained not in ranked:
            ranked.append(explained)
    compared = explanation.compared
    elapsed = result.elapsed_s + (compared.elapsed_s if compared is not None else 0.0)
    points = explanation.points_used
    total = float(np.sum(result.attributions, dtype=np.float64))
    subject = explained_words(result, label)
    traits = {
        **image.traits(),
        "classes": [[i, label(i), float(scores[i])] for i in ranked],
        "summary": Summary(
            target=result.target,
            label=label(result.target),
            against=result.against,
            against_label="" if result.against is None else label(result.against),
            region=_region_words(result),
            score=result.score,
            predicted=ranked[0],
            predicted_label=label(ranked[0]),
            predicted_score=float(scores[ranked[0]]),
            explainer=explanation.explainer,
            explainer_title=TITLES[explanation.explainer],
            compare=explanation.compare,
            compare_title=TITLES.get(explanation.compare, ""),
            delta=float(result.delta) if isinstance(result, IGResult) else None,
            gradients=explanation.gradients is not None,
            total=total,
            falling_note=falling_total_note(total, subject) or "",
            steps=(
                result.steps
                if isinstance(result, IGResult)
                else int(result.parameters.get("steps") or 0)
            ),
            method=result.method if isinstance(result, IGResult) else "",
            runs=result.runs if isinstance(result, IGResult) else 1,
            points_used=points,
            elapsed_s=float(elapsed),
            display_factor=image.factor,
        ),
        "path": _path(result),
        "curves": [dict(entry) for entry in explanation.curves],
        # The stability of another result does not describe this one.
        "stability_shown": None,
        "stability_spread": b"",
        **region_traits(result, image),
        **buffers,
        "progress": [points, points],
    }
    return ShownResult(image, prepared, explanation, request, maps, shown_maps, traits)


# The progress line while a sanity check runs starts with this (the panels
# then stay as they are: the view says so instead of "Computing ...").
SANITY_STAGE = "Sanity check"
# The sanity check's pictures are thumbnails: at most this many pixels on the
# longer side, whatever the image (a check of 40 layers sends 41 maps).
SANITY_THUMBNAIL = 128


class SanityStep(TypedDict):
    """One step of a sanity check as shown, with its map's similarities to the original.

    ``label`` is the layer randomised down to; a similarity is None where it
    is undefined (a constant map)."""

    label: str
    spearman_abs: float | None
    spearman: float | None
    ssim: float | None


class SanityData(TypedDict):
    """The sanity check shown (the ``sanity`` trait); no steps: none shown.

    ``size`` is the thumbnails' [height, width]; the ``sanity_rgb`` trait holds
    the image at that size, ``sanity_maps`` each step's positive then negative
    channel-mean map (float32).
    """

    explainer_title: str
    target: int
    label: str
    size: list[int]
    steps: list[SanityStep]


NO_SANITY: dict[str, Any] = {
    "sanity": SanityData(explainer_title="", target=0, label="", size=[0, 0], steps=[]),
    "sanity_rgb": b"",
    "sanity_maps": b"",
}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def sanity_traits(check: SanityCheck, image: ShownImage, label: str) -> dict[str, Any]:
    """The synced values that show ``check`` of ``image`` (its class named ``label``)."""
    height, width = image.pixels.shape[:2]
    factor = max(1, math.ceil(max(height, width) / SANITY_THUMBNAIL))
    rgb = np.rint(block_mean(image.rgb, factor)).astype(np.uint8)
    maps = b"".join(
        block_mean(values, factor).tobytes()
        for attributions in check.maps
        for values in channel_maps(attributions)
    )
    steps = [
        SanityStep(
            label=name,
            spearman_abs=_finite(check.spearman_abs[index]),
            spearman=_finite(check.spearman[index]),
            ssim=_finite(check.ssim[index]),
        )
        for index, name in enumerate(check.steps)
    ]
    data = SanityData(
        explainer_title=TITLES[check.method],
        target=check.target,
        label=label,
        size=list(rgb.shape[:2]),
        steps=steps,
    )
    return {"sanity": data, "sanity_rgb": rgb.tobytes(), "sanity_maps": maps}
