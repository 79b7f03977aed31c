"""The widget's options as the engine's, and the checks every option change passes.

The compute-option traits hold what the view shows (``baseline="custom"``
names the array given at construction); ``engine_options`` turns them into
the engine's ``IGOptions``, whose checks are the engine's own: no rule of a
computation is written again here. ``checked_options`` checks a change
together with all the other current options (display options by
``igw.render``'s rules, the target against the model's classes) and returns
them all, normalised, or raises with the project's message. Class names are
checked once, at construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..baselines import BASELINES
from ..engine import PreparedInput
from ..options import IGOptions, Target
from ..render import RENDER_DEFAULTS, validate_render_options
from ..validation import check_choice, check_int
from .methods import NO_COMPARE

# The baseline trait's value for the array given at construction.
CUSTOM_BASELINE = "custom"
NO_MODEL = "model: this view shows a stored result; give a model to recompute"
# The integration's options, then the methods shown (widget/methods.py).
IG_OPTIONS = ("steps", "baseline", "runs", "method")
COMPUTE_OPTIONS = (*IG_OPTIONS, "explainer", "compare")
# ipywidgets' views take a widget's ``style`` trait for a reference to a style
# widget, so the picture style travels as ``picture_style``; every other
# display option is a trait of igw.render's name.
TRAIT_OF_OPTION = {"style": "picture_style"}
DISPLAY_TRAITS = tuple(TRAIT_OF_OPTION.get(name, name) for name in RENDER_DEFAULTS)
# Everything the browser may change; any other key it sends is refused.
# The explained class and the class it is contrasted against (None: none).
CLASS_CHOICE = ("target", "against")
FRONT_END_OPTIONS = (*DISPLAY_TRAITS, *COMPUTE_OPTIONS, *CLASS_CHOICE)


def display_traits(render_options: dict[str, Any]) -> dict[str, Any]:
    """igw.render's options as the traits that hold them.

    Examples
    --------
    >>> display_traits({"style": "keras", "overlay": False})
    {'picture_style': 'keras', 'overlay': False}
    """
    return {TRAIT_OF_OPTION.get(name, name): value for name, value in render_options.items()}


def render_options_of(traits: dict[str, Any]) -> dict[str, Any]:
    """The display-option traits in ``traits`` (all of them) as igw.render's keyword arguments.

    Examples
    --------
    >>> traits = {"picture_style": "keras", **{name: None for name in DISPLAY_TRAITS[1:]}}
    >>> render_options_of({**traits, "runs": 2})["style"]
    'keras'
    """
    return {name: traits[TRAIT_OF_OPTION.get(name, name)] for name in RENDER_DEFAULTS}


def checked_display(traits: dict[str, Any]) -> dict[str, Any]:
    """The display-option traits in ``traits`` (all of them), checked by igw.render's rules.

    Returns them normalised; a bad value raises naming its trait.

    Examples
    --------
    >>> traits = display_traits(RENDER_DEFAULTS)
    >>> checked_display({**traits, "clip_above_percentile": 99})["clip_above_percentile"]
    99.0
    >>> checked_display({**traits, "picture_style": "x"})
    Traceback (most recent call last):
    ...
    ValueError: picture_style: expected one of 'heatmap', 'keras', got 'x'
    """
    try:
        return display_traits(validate_render_options(**render_options_of(traits)))
    except (TypeError, ValueError) as exc:
        # The message names the trait that holds the option.
        text = str(exc)
        for option, trait in TRAIT_OF_OPTION.items():
            if text.startswith(f"{option}:"):
                raise type(exc)(trait + text[len(option) :]) from None
        raise


def engine_options(
    options: dict[str, Any], custom_baseline: np.ndarray | None, **more: Any
) -> IGOptions:
    """The engine's description of the computation the compute options ask for.

    ``more``: further ``IGOptions`` fields (``target``, ``preprocess``).

    Examples
    --------
    >>> chosen = {"steps": 8, "baseline": "blur", "runs": 1, "method": "trapezoid"}
    >>> engine_options(chosen, None, target=2).target
    2
    >>> engine_options({**chosen, "baseline": "custom"}, None)
    Traceback (most recent call last):
    ...
    ValueError: baseline: expected one of 'black', 'white', 'uniform', 'blur', got 'custom'
    """
    allowed = (*BASELINES, CUSTOM_BASELINE) if custom_baseline is not None else BASELINES
    baseline: str | np.ndarray = check_choice("baseline", options["baseline"], allowed)
    if baseline == CUSTOM_BASELINE and custom_baseline is not None:
        baseline = custom_baseline
    return IGOptions(
        baseline=baseline,
        steps=options["steps"],
        runs=options["runs"],
        method=options["method"],
        **more,
    )


def compute_traits(options: IGOptions, baseline: str) -> dict[str, Any]:
    """The compute-option trait values that show ``options`` (``baseline``: the trait's name)."""
    return {
        "steps": options.steps,
        "baseline": baseline,
        "runs": options.runs,
        "method": options.method,
    }


def method_traits(options: dict[str, Any], offered: Sequence[str]) -> dict[str, Any]:
    """The ``explainer`` and ``compare`` traits of ``options``, checked against the
    methods ``offered`` (``compare`` may also be ``""``: off).

    Examples
    --------
    >>> method_traits({"explainer": "xrai", "compare": ""}, ["integrated_gradients", "xrai"])
    {'explainer': 'xrai', 'compare': ''}
    >>> method_traits({"explainer": "xrai", "compare": "xrai"}, ["xrai"])
    Traceback (most recent call last):
    ...
    ValueError: compare: expected another method than the explainer ('xrai') or '' (off), got 'xrai'
    """
    explainer = check_choice("explainer", options["explainer"], offered)
    compare = check_choice("compare", options["compare"], (NO_COMPARE, *offered))
    if compare == explainer:
        raise ValueError(
            f"compare: expected another method than the explainer ({explainer!r}) or '' (off), "
            f"got {compare!r}"
        )
    return {"explainer": explainer, "compare": compare}


def checked_options(
    current: dict[str, Any],
    changes: dict[str, Any],
    custom_baseline: np.ndarray | None,
    prepared: PreparedInput | None,
    offered: Sequence[str],
) -> dict[str, Any]:
    """``changes`` checked together with the ``current`` options; every option, normalised.

    ``prepared``: the engine's prepared input of the shown image, which knows
    the model's classes; None for a stored result shown without a model,
    whose compute options and target cannot change. ``offered``: the
    methods the menus offer.
    """
    merged = {**current, **changes}
    checked = checked_display(merged)
    if prepared is None:
        if any(merged[name] != current[name] for name in (*COMPUTE_OPTIONS, *CLASS_CHOICE)):
            raise ValueError(NO_MODEL)
        return {**checked, **{name: current[name] for name in (*COMPUTE_OPTIONS, *CLASS_CHOICE)}}
    checked.update(compute_traits(engine_options(merged, custom_baseline), merged["baseline"]))
    checked.update(method_traits(merged, offered))
    if merged["target"] is None:  # the engine would read None as "the top class"
        raise TypeError("target: expected an integer, got None")
    checked["target"] = prepared.target_index(merged["target"])
    checked["against"] = check_against(merged["against"], checked["target"], prepared.classes)
    return checked


def check_against(against: Any, target: int, classes: int) -> int | None:
    """The class to contrast ``target`` with (None: none), or raise naming ``against``.

    Examples
    --------
    >>> check_against(3, 3, 6)
    Traceback (most recent call last):
    ...
    ValueError: against: expected a class other than the explained one (3), got 3
    """
    if against is None:
        return None
    against = check_int("against", against, low=0, high=classes - 1)
    if against == target:
        raise ValueError(
            f"against: expected a class other than the explained one ({target}), got {against}"
        )
    return int(against)


def class_choice(target: int | None, against: int | None) -> Target:
    """The engine's target for the class menus: the class, or the contrast with ``against``.

    Examples
    --------
    >>> class_choice(3, None), class_choice(3, 0)
    (3, (3, 0))
    """
    return target if against is None or target is None else (target, against)


def check_class_count(names: list[str] | None, classes: int) -> None:
    """Raise naming ``class_names`` unless there is one name per class (or no names)."""
    if names is not None and len(names) != classes:
        raise ValueError(
            f"class_names: expected {classes} names (the model's number of classes), "
            f"got {len(names)}"
        )
