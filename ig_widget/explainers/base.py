"""What every explainer shares: its result, its input checks and its one forward pass.

An explainer is one small function (``smoothgrad``, ``blur_ig``, ...) that
checks its own parameters, calls ``start`` (the shared options checked, the
model run once at the image, the target resolved), builds the points it
needs and runs them through the engine's point-set evaluator
(``ig_widget.points``), which owns batching, progress, cancellation,
out-of-memory halving and the checks on the model's output. Adding a method
means writing its points and its arithmetic, nothing else.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..engine import (
    ExplainsTarget,
    IGResult,
    PreparedInput,
    prepare,
    region_map_shape,
)
from ..options import IGOptions, Region, check_callable
from ..points import ProgressCallback
from ..validation import check_number


@dataclass(frozen=True, eq=False)
class AttributionResult(ExplainsTarget):
    """What one attribution method computed, in the same terms as ``IGResult``.

    Attributes
    ----------
    attributions : ndarray, float32, the image's shape (H, W, C)
        The attribution map, in raw pixel units where the method has them
        (XRAI: one channel, the value of each pixel's region).
    explainer : str
        The method: ``"smoothgrad"``, ``"expected_gradients"``, ``"blur_ig"``,
        ``"guided_ig"``, ``"xrai"``, ``"gradcam"``, ``"guided_gradcam"`` or
        ``"occlusion"``.
    parameters : dict
        The method's parameters as used (defaults filled in).
    target : int
        The explained class.
    scores : ndarray, (K,)
        Model output at the image.
    points_used : int
        Gradient evaluations (model forward and backward passes, one per point;
        occlusion: forward passes).
    elapsed_s : float
        Wall time of the computation.
    against : int or None
        For a contrastive target ``(target, against)``: the class contrasted
        against, the explained score being ``score(target) - score(against)``.
    region : Region or None
        For a region target: the region of the score map (see ``IGResult``).
    map_shape : tuple of int or None
        For a region target: the (H', W') of the model's score map.
    """

    attributions: np.ndarray
    explainer: str
    parameters: Mapping[str, Any]
    target: int
    scores: np.ndarray
    points_used: int
    elapsed_s: float
    against: int | None = None
    region: Region | None = None
    map_shape: tuple[int, int] | None = None


@dataclass
class Started:
    """An explainer's checked input: the prepared image, the options, the target
    (an index of ``PreparedInput.target_index``: a class or a contrast)."""

    prepared: PreparedInput
    options: IGOptions
    target: int
    progress: ProgressCallback | None
    began: float = field(default_factory=time.perf_counter)

    @property
    def image(self) -> np.ndarray:
        return self.prepared.image

    def result(
        self,
        attributions: np.ndarray,
        explainer: str,
        parameters: Mapping[str, Any],
        points_used: int,
        result_type: type[AttributionResult] = AttributionResult,
        **extra: Any,
    ) -> Any:
        """The result, timed from the start of the checks."""
        target, against = self.prepared.classifier.split(self.target)
        return result_type(
            attributions=np.asarray(attributions, np.float32),
            explainer=explainer,
            parameters=dict(parameters),
            target=target,
            against=against,
            region=self.options.target if isinstance(self.options.target, Region) else None,
            map_shape=region_map_shape(self.prepared.classifier.region),
            scores=self.prepared.scores,
            points_used=int(points_used),
            elapsed_s=time.perf_counter() - self.began,
            **extra,
        )


def start(model: Any, image: Any, options: IGOptions, progress: ProgressCallback | None) -> Started:
    """Run the model once at the image and resolve the target.

    ``options`` (an ``IGOptions``: the options explainers share with
    ``integrated_gradients`` have its names and messages) is built, and
    every parameter of the method checked, before: this is the first heavy
    step.
    """
    began = time.perf_counter()
    check_callable("progress", progress)
    prepared = prepare(model, image, options)
    return Started(prepared, options, prepared.target_index(options.target), progress, began)


def check_fraction(name: str, value: Any, *, open_low: bool = False) -> float:
    """A number in [0, 1] (``open_low``: in (0, 1]), or raise naming ``name``.

    Examples
    --------
    >>> check_fraction("noise", 0.15)
    0.15
    >>> check_fraction("fraction", 0.0, open_low=True)
    Traceback (most recent call last):
    ...
    ValueError: fraction: expected a number in (0, 1], got 0.0
    """
    value = check_number(name, value, low=0.0, high=1.0)
    if open_low and value == 0.0:
        raise ValueError(f"{name}: expected a number in (0, 1], got {value}")
    return value


# The widget's compute options a method may take from it (``Method.widget_options``).
WidgetOption = Literal["steps", "baseline", "seed", "method"]


class Explainer(Protocol):
    """An attribution method's function: the keywords every caller (the widget,
    ``DatasetResult``, loops over ``EXPLAINERS``) passes to any method.

    Method-specific parameters (``steps``, ``samples``, ...) are keyword
    arguments with defaults beyond these; ``Method`` checks at import that a
    method takes each widget option it declares.
    """

    def __call__(
        self,
        model: Any,
        image: Any,
        *,
        target: Any = ...,
        preprocess: Callable[[Any], Any] | None = ...,
        progress: ProgressCallback | None = ...,
        precision: str = ...,
    ) -> AttributionResult | IGResult: ...


@dataclass(frozen=True)
class Method:
    """One attribution method, declared once (``ig_widget.explainers.REGISTRY``).

    Attributes
    ----------
    name : str
        The method's name: the widget's ``explainer`` value, ``EXPLAINERS``' key.
    function : Explainer
        Its function.
    title : str
        Its label in the widget's menus, panel titles and curves.
    widget_options : tuple of str
        The widget's compute options passed to it (``"steps"``,
        ``"baseline"``, ``"seed"``, ``"method"``: the quadrature rule); it
        ignores the others and keeps its own defaults for them.
    requires : tuple of str
        Parameters it cannot run without (Expected Gradients'
        ``references``): the widget's menus offer it once
        ``explainer_options`` gives them.
    """

    name: str
    function: Explainer
    title: str
    widget_options: tuple[WidgetOption, ...] = ()
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        taken = self.parameters()
        missing = [name for name in self.widget_options + self.requires if name not in taken]
        if missing:
            raise TypeError(f"{self.name}: takes no parameter {missing[0]!r} it declares")

    def parameters(self) -> Mapping[str, inspect.Parameter]:
        """The function's parameters by name."""
        return inspect.signature(self.function).parameters
