"""TypeScript generated from the Python side: the renderer's constants and option types.

Run as ``python -m tests.typescript js/src/generated.ts``. The browser code
imports its constants and the option types from that file instead of
copying them; ``tests/test_typescript.py`` fails when the committed file is
not what this module writes, so neither side can change alone.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

render = importlib.import_module("ig_widget.render")

OUTPUT = Path(__file__).resolve().parent.parent / "js" / "src" / "generated.ts"
HEADER = (
    "// Generated from the Python package by `python -m tests.typescript js/src/generated.ts`;\n"
    "// do not edit. tests/test_typescript.py fails when it is out of date.\n"
)
# The renderer's constants the browser needs, with what they are for.
RENDER_CONSTANTS = {
    "STYLES": "Picture styles, the default first.",
    "POLARITIES": "Which signs a picture draws.",
    "STYLE_COLORS": "Each style's colours, used where an option colour is null.",
    "MAX_STRUCTURE": "Largest cleanup window.",
    "BINARIZE_THRESHOLD": "Strength above which a pixel belongs to an outlined region.",
    "MAX_OUTLINED_COMPONENTS": "At most this many regions are outlined.",
    "OVERLAY_WEIGHT": "keras style: the share of the colour added to the image.",
    "LUMA_WEIGHTS": "heatmap style: the grey image's weights of red, green and blue.",
    "OPAQUE_STRENGTH": "heatmap style: a pixel is opaque from this strength on.",
    "DEEPEN": "heatmap style: at full strength the colour is darkened by this fraction.",
    "KEY_STOPS": "The colour key samples this many strengths from 0 to 1.",
    "KEY_BACKGROUND": "The colour key is drawn over this grey (black without overlay).",
    "TOP_PIXELS_PERCENT": "A panel's concentration: the share held by this % of the pixels.",
    "MEANINGS": "What each sign's colour says about the score.",
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


def _constant(name: str) -> str:
    value = getattr(render, name)
    suffix = " as const" if isinstance(value, (dict, list, tuple)) else ""
    return f"export const {name} = {_literal(value)}{suffix};"


def typescript() -> str:
    """The text of ``js/src/generated.ts``.

    Examples
    --------
    >>> "export const RENDER_DEFAULTS: RenderOptions" in typescript()
    True
    """
    lines = [HEADER, "export type Color = [number, number, number];"]
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
        lines.append(_constant(name))
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
