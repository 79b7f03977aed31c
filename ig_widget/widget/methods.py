"""The widget's method menu and compare mode: which attribution methods it offers,
how its compute options reach each method, and the insertion/deletion curves.

The third panel shows the ``explainer`` trait's method; with ``compare`` set,
a second method's map is shown beside it with the same display options, and
both get their insertion and deletion curves (``igw.insertion_deletion``).
Every method is the package's own function (``igw.EXPLAINERS``), called with
the widget's model, preprocess and target; the widget's ``steps`` is the
path methods' steps, its ``baseline`` Guided IG's (and integrated
gradients'); everything else is each method's default, or what
``explainer_options`` gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import numpy as np

from ..engine import IGResult
from ..explainers import EXPLAINERS, REGISTRY, AttributionResult
from ..faithfulness import InsertionDeletionResult, insertion_deletion
from ..options import IGOptions, Target

IG = "integrated_gradients"
# The compare menu's "off".
NO_COMPARE = ""
# Read from the one registry (ig_widget.explainers.REGISTRY).
TITLES = {name: method.title for name, method in REGISTRY.items()}
EXPLAINER_NAMES = tuple(REGISTRY)


def _taking(option: str) -> tuple[str, ...]:
    return tuple(name for name, method in REGISTRY.items() if option in method.widget_options)


def _taking_parameter(parameter: str) -> tuple[str, ...]:
    return tuple(name for name, method in REGISTRY.items() if parameter in method.parameters())


# Methods whose steps are the widget's steps (the path methods), those whose
# baseline is the widget's, and those whose quadrature rule is the widget's
# ``method``; the others keep their own (the browser greys those controls).
STEPS_METHODS = _taking("steps")
BASELINE_METHODS = _taking("baseline")
QUADRATURE_METHODS = _taking("method")
# Steps of the insertion and deletion curves: 39 forward passes per method.
CURVE_STEPS = 20
# Methods the Stability button runs (igw.stability's draws vary the seed); the
# browser greys the button for the others.
STABILITY_METHODS = _taking_parameter("seed")
# The progress stage of the Stability button's runs: "Stability: 5 runs of SmoothGrad".
STABILITY_STAGE = "Stability"
# What the widget passes itself; explainer_options cannot set these.
SET_BY_WIDGET = ("model", "image", "target", "preprocess", "progress")

Method = IGResult | AttributionResult


class Curve(TypedDict):
    """One method's insertion and deletion curves (an entry of the ``curves`` trait)."""

    explainer: str
    title: str
    fractions: list[float]
    insertion: list[float]
    deletion: list[float]
    insertion_auc: float
    deletion_auc: float


def check_explainer_options(value: Any) -> dict[str, dict[str, Any]]:
    """``{method: {parameter: value}}``, every name a parameter the method takes.

    The values are checked by the method itself when it runs (its messages
    name the parameter).

    Examples
    --------
    >>> check_explainer_options({"smoothgrad": {"samples": 50}})
    {'smoothgrad': {'samples': 50}}
    >>> check_explainer_options({"smoothgrad": {"sampels": 50}})
    Traceback (most recent call last):
    ...
    TypeError: explainer_options['smoothgrad']: smoothgrad takes no parameter 'sampels'
    >>> check_explainer_options({"guided_ig": {"steps": 3}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: explainer_options['guided_ig']: 'steps' is the widget's own control ...
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            "explainer_options: expected a dict of method name to parameters, "
            f"got {type(value).__name__}"
        )
    checked: dict[str, dict[str, Any]] = {}
    for name, parameters in value.items():
        if name not in EXPLAINERS:
            allowed = ", ".join(map(repr, EXPLAINER_NAMES))
            raise ValueError(f"explainer_options: expected keys among {allowed}, got {name!r}")
        where = f"explainer_options[{name!r}]"
        if not isinstance(parameters, Mapping):
            raise TypeError(
                f"{where}: expected a dict of parameters, got {type(parameters).__name__}"
            )
        accepted = REGISTRY[name].parameters()
        for parameter in parameters:
            if parameter in SET_BY_WIDGET:
                raise ValueError(f"{where}: {parameter!r} is set by the widget")
            if parameter in REGISTRY[name].widget_options:
                # Else the map would be computed with one value while the control shows another.
                raise ValueError(
                    f"{where}: {parameter!r} is the widget's own control for {name}: "
                    f"give {parameter}=... to the widget (or set w.{parameter})"
                )
            if parameter not in accepted:
                raise TypeError(f"{where}: {name} takes no parameter {parameter!r}")
        checked[name] = dict(parameters)
    return checked


def offered(explainer_options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The methods the menus offer: those whose required parameters (Expected
    Gradients' ``references``) ``explainer_options`` gives.

    Examples
    --------
    >>> "expected_gradients" in offered({}), "expected_gradients" in offered(
    ...     {"expected_gradients": {"references": [0]}})
    (False, True)
    """
    return [
        name
        for name, method in REGISTRY.items()
        if all(parameter in explainer_options.get(name, {}) for parameter in method.requires)
    ]


def run_method(
    name: str,
    model: Any,
    image: np.ndarray,
    options: IGOptions,
    target: Target,
    explainer_options: Mapping[str, Mapping[str, Any]],
    progress: Callable[[int, int], Any] | None,
) -> AttributionResult:
    """One method other than integrated gradients, as the widget's options ask for it."""
    result = REGISTRY[name].function(
        model,
        image,
        target=target,
        preprocess=options.preprocess,
        precision=options.precision,
        progress=progress,
        **method_settings(name, options, explainer_options),
    )
    if not isinstance(result, AttributionResult):
        raise TypeError(f"{name}: expected an AttributionResult, got {type(result).__name__}")
    return result


def method_settings(
    name: str, options: IGOptions, explainer_options: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The parameters the widget passes method ``name`` besides model, image and target:
    the compute options it takes (``steps="auto"`` only to integrated gradients), then
    what ``explainer_options`` gives it.

    Examples
    --------
    >>> method_settings("blur_ig", IGOptions(steps=8), {"blur_ig": {"max_sigma": 20}})
    {'steps': 8, 'max_sigma': 20}
    """
    settings: dict[str, Any] = {
        option: getattr(options, option)
        for option in REGISTRY[name].widget_options
        if not (option == "steps" and options.steps == "auto" and name != IG)
    }
    settings.update(explainer_options.get(name, {}))
    return settings


def stability_parameters(
    name: str, options: IGOptions, explainer_options: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The parameters of the stability runs of ``name`` (``igw.stability``'s draws):
    the method's settings but its seed and baseline, which the draws vary.

    Examples
    --------
    >>> stability_parameters(IG, IGOptions(steps=16, baseline="white"), {})
    {'steps': 16, 'method': 'trapezoid'}
    """
    settings = method_settings(name, options, explainer_options)
    return {key: value for key, value in settings.items() if key not in ("seed", "baseline")}


def curve(
    model: Any,
    image: np.ndarray,
    result: Method,
    name: str,
    options: IGOptions,
    progress: Callable[[int, int], Any] | None,
) -> Curve:
    """``result``'s insertion and deletion curves (``CURVE_STEPS``, blurred substrate) as shown."""
    pixels = image.shape[0] * image.shape[1]
    curves: InsertionDeletionResult = insertion_deletion(
        model,
        image,
        result,
        steps=min(CURVE_STEPS, pixels),
        preprocess=options.preprocess,
        precision=options.precision,
        progress=progress,
    )
    return Curve(
        explainer=name,
        title=TITLES[name],
        fractions=curves.fractions.tolist(),
        insertion=curves.insertion.tolist(),
        deletion=curves.deletion.tolist(),
        insertion_auc=curves.insertion_auc,
        deletion_auc=curves.deletion_auc,
    )


class Stages:
    """Several computations under one progress display: each reports its own points
    (the ``progress`` trait), and ``announce`` says which one runs ("2 of 4: Blur IG");
    a single computation is announced as ``""``.

    Examples
    --------
    >>> seen = []
    >>> stages = Stages(lambda done, total: seen.append((done, total)), seen.append,
    ...                 ["SmoothGrad", "SmoothGrad: insertion and deletion"])
    >>> stages.next()(5, 10); stages.next()(1, 39); seen
    ['1 of 2: SmoothGrad', (5, 10), '2 of 2: SmoothGrad: insertion and deletion', (1, 39)]
    """

    def __init__(
        self,
        progress: Callable[[int, int], Any],
        announce: Callable[[str], None],
        labels: list[str],
    ) -> None:
        self.progress = progress
        self.announce = announce
        self.labels = labels
        self.started = 0

    def next(self) -> Callable[[int, int], Any]:
        """Announce the next computation; its progress callback."""
        self.started += 1
        count = len(self.labels)
        self.announce(
            "" if count == 1 else f"{self.started} of {count}: {self.labels[self.started - 1]}"
        )
        return self.progress
