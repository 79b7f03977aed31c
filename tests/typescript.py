"""TypeScript generated from the Python side: the synced state's types and the constants.

Run as ``python -m tests.typescript js/src/generated.ts``. The browser code
imports from that file instead of copying: the render options and the
renderer's constants (``ig_widget.render``), the compute rules the controls
follow (which baselines are random, which rules take ``steps="auto"``), and
``WidgetState``, one entry per synced trait of ``IGWidget`` with its type
read from the trait (or from its ``ts`` metadata, a Python annotation, for
lists and dicts). ``tests/test_typescript.py`` fails when the committed file
is not what this module writes, so neither side can change alone.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import traitlets

render = importlib.import_module("ig_widget.render")

OUTPUT = Path(__file__).resolve().parent.parent / "js" / "src" / "generated.ts"
HEADER = (
    "// Generated from the Python package by `python -m tests.typescript js/src/generated.ts`;\n"
    "// do not edit. tests/test_typescript.py fails when it is out of date.\n"
)
# Compute rules the controls follow, from the modules that own them.
RULE_CONSTANTS = {
    ("ig_widget.baselines", "RANDOM_BASELINES"): "Baselines that differ between runs.",
    ("ig_widget.quadrature", "AUTO_STEPS_METHODS"): 'Integration rules that take steps "auto".',
    ("ig_widget.options", "MAX_STEPS"): "Most steps (and runs) a computation takes.",
    ("ig_widget.widget.shown", "MAP_BUFFERS"): "The binary traits holding channel maps (float32).",
    ("ig_widget.widget.options", "TRAIT_OF_OPTION"): "Render options whose trait has another name.",
    ("ig_widget.widget.options", "DISPLAY_TRAITS"): "The traits of the render options, in order.",
    ("ig_widget.widget.methods", "STEPS_METHODS"): "Attribution methods that take the steps.",
    ("ig_widget.widget.methods", "BASELINE_METHODS"): "Attribution methods that take the baseline.",
    ("ig_widget.widget.methods", "QUADRATURE_METHODS"): "Attribution methods that take the rule.",
    ("ig_widget.widget.methods", "STABILITY_STAGE"): "How the progress names stability runs.",
    ("ig_widget.widget.methods", "STABILITY_METHODS"): "Methods the Stability button runs.",
    ("ig_widget.widget.shown", "SANITY_STAGE"): "The progress line of a sanity check starts so.",
}
# The renderer's constants the browser needs, with what they are for.
RENDER_CONSTANTS = {
    "STYLES": "Picture styles, the default first.",
    "POLARITIES": "Which signs a picture draws.",
    "STYLE_COLORS": "Each style's colours, used where an option colour is null.",
    "MAX_STRUCTURE": "Largest cleanup window.",
    "MAX_PATCH": "Largest patch side of the patch view.",
    "BINARIZE_THRESHOLD": "Strength above which a pixel belongs to an outlined region.",
    "MAX_OUTLINED_COMPONENTS": "At most this many regions are outlined.",
    "OVERLAY_WEIGHT": "keras style: the share of the colour added to the image.",
    "LUMA_WEIGHTS": "heatmap style: the grey image's weights of red, green and blue.",
    "OPAQUE_STRENGTH": "heatmap style: a pixel is opaque from this strength on.",
    "DEEPEN": "heatmap style: at full strength the colour is darkened by this fraction.",
    "DARK_GROUND": "heatmap style: on a ground of lower mean luma the colours lighten.",
    "LIGHTEN": "heatmap style, dark ground: at full strength the colour goes this far to white.",
    "KEY_STOPS": "The colour key samples this many strengths from 0 to 1.",
    "KEY_BACKGROUND": "The colour key is drawn over this grey when no ground is given.",
    "TOP_PIXELS_PERCENT": "A panel's concentration: the share held by this % of the pixels.",
    "MEANINGS": "What each sign's colour says about the score.",
    "COLOUR_NAMES": "A key's name for each style colour (by hex code).",
    "UNNAMED_COLOUR": "A key's name for any other colour.",
    "AMOUNTS": "What a sign's total is called in a key: the score's rise or fall.",
}


def _literal(value: Any) -> str:
    """``value`` (JSON-like; tuples as arrays) as a TypeScript literal, identifier keys bare."""
    if isinstance(value, dict):
        items = ", ".join(
            f"{key if key.isidentifier() else json.dumps(key)}: {_literal(item)}"
            for key, item in value.items()
        )
        return f"{{ {items} }}"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_literal(item) for item in value)}]"
    return json.dumps(value, ensure_ascii=False)


def _union(choices: tuple[str, ...]) -> str:
    return " | ".join(_literal(choice) for choice in choices)


def _option_type(name: str, default: Any) -> str:
    if name == "style":
        return "Style"
    if name == "polarity":
        return "Polarity"
    if name.endswith("_color"):
        return "Color | null"
    if isinstance(default, bool):
        return "boolean"
    if isinstance(default, (int, float)):
        return "number"
    raise TypeError(f"{name}: no TypeScript type for a render option like {default!r}")


def _constant(module: Any, name: str) -> str:
    value = getattr(module, name)
    suffix = " as const" if isinstance(value, (dict, list, tuple)) else ""
    return f"export const {name} = {_literal(value)}{suffix};"


def _annotation(annotation: Any, interfaces: dict[str, str]) -> str:
    """A Python type annotation as TypeScript; TypedDicts become named interfaces."""
    if annotation is type(None) or annotation is None:
        return "null"
    if annotation is bool:
        return "boolean"
    if annotation in (int, float):
        return "number"
    if annotation is str:
        return "string"
    if typing.is_typeddict(annotation):
        name = annotation.__name__
        if name not in interfaces:
            interfaces[name] = ""  # reserves the name against recursion
            doc = (annotation.__doc__ or "").strip().splitlines()[0]
            fields = [
                f"  {field}: {_annotation(hint, interfaces)};"
                for field, hint in typing.get_type_hints(annotation).items()
            ]
            interfaces[name] = (
                f"/** {doc} */\nexport interface {name} {{\n" + "\n".join(fields) + "\n}"
            )
        return name
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(_literal(argument) for argument in arguments)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_annotation(argument, interfaces) for argument in arguments)
    if origin is list:
        item = _annotation(arguments[0], interfaces)
        return f"{item}[]" if item.isidentifier() or item.startswith("[") else f"({item})[]"
    if origin is tuple:
        return f"[{', '.join(_annotation(argument, interfaces) for argument in arguments)}]"
    raise TypeError(f"no TypeScript type for the annotation {annotation!r}")


def _trait_type(trait: traitlets.TraitType, interfaces: dict[str, str]) -> str:
    """The TypeScript type of a synced trait's value, from its class or its ``ts`` metadata."""
    if "ts" in trait.metadata:
        text = _annotation(trait.metadata["ts"], interfaces)
    elif isinstance(trait, traitlets.Enum):
        text = " | ".join(_literal(value) for value in trait.values)
    elif isinstance(trait, (traitlets.Float, traitlets.Int)):
        text = "number"
    elif isinstance(trait, traitlets.Bool):
        text = "boolean"
    elif isinstance(trait, traitlets.Unicode):
        text = "string"
    elif isinstance(trait, traitlets.Bytes):
        text = "Binary"
    elif isinstance(trait, traitlets.Union):
        text = " | ".join(_trait_type(member, interfaces) for member in trait.trait_types)
    elif isinstance(trait, traitlets.Tuple):
        text = f"[{', '.join(_trait_type(item, interfaces) for item in trait._traits)}]"
    elif isinstance(trait, traitlets.List) and trait._trait is not None:
        item = _trait_type(trait._trait, interfaces)
        if trait._minlen == trait._maxlen:
            text = f"[{', '.join([item] * trait._minlen)}]"
        else:
            text = f"{item}[]"
    else:
        raise TypeError(
            f"{trait.name}: no TypeScript type for a {type(trait).__name__} trait; "
            "give its value's Python type as metadata: .tag(sync=True, ts=...)"
        )
    return f"{text} | null" if trait.allow_none and "null" not in text else text


def _widget_state(interfaces: dict[str, str]) -> list[str]:
    widget = importlib.import_module("ig_widget.widget").IGWidget
    # The traits are declared on the synced-state class IGWidget derives from.
    lines = [
        "/** IGWidget's synced traits (Python names and value types). */",
        "export interface WidgetState {",
        "  [key: string]: unknown;",
    ]
    own = widget.class_traits(sync=True)
    inherited = importlib.import_module("anywidget").AnyWidget.class_traits(sync=True)
    for name, trait in sorted(own.items()):
        if name not in inherited and not name.startswith("_"):
            lines.append(f"  {name}: {_trait_type(trait, interfaces)};")
    lines.append("}")
    return lines


def typescript() -> str:
    """The text of ``js/src/generated.ts``.

    Examples
    --------
    >>> "export const RENDER_DEFAULTS: RenderOptions" in typescript()
    True
    """
    lines = [
        HEADER,
        "export type Color = [number, number, number];",
        "/** A binary trait as the widget model holds it. */",
        "export type Binary = DataView | ArrayBuffer | ArrayBufferView;",
    ]
    lines.append(f"export type Style = {_union(render.STYLES)};")
    lines.append(f"export type Polarity = {_union(render.POLARITIES)};")
    lines.append("\n/** Display options, as igw.render's keywords. */")
    lines.append("export interface RenderOptions {")
    lines += [
        f"  {name}: {_option_type(name, default)};"
        for name, default in render.RENDER_DEFAULTS.items()
    ]
    lines.append("}\n")
    lines.append("/** igw.render's defaults. Copy before changing. */")
    lines.append(
        f"export const RENDER_DEFAULTS: RenderOptions = {_literal(render.RENDER_DEFAULTS)};"
    )
    for name, purpose in RENDER_CONSTANTS.items():
        lines.append(f"\n/** {purpose} */")
        lines.append(_constant(render, name))
    for (module, name), purpose in RULE_CONSTANTS.items():
        lines.append(f"\n/** {purpose} ({module}) */")
        lines.append(_constant(importlib.import_module(module), name))
    interfaces: dict[str, str] = {}
    state = _widget_state(interfaces)
    lines += ["", "\n\n".join(interfaces.values()), "", *state]
    return "\n".join(lines) + "\n"


def write(path: str | Path = OUTPUT) -> Path:
    """Write ``typescript()`` to ``path`` and return the path.

    Examples
    --------
    From the shell: ``python -m tests.typescript js/src/generated.ts``.
    """
    target = Path(path)
    target.write_text(typescript(), encoding="utf-8")
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.typescript js/src/generated.ts")
    print(f"wrote {write(sys.argv[1])}")
