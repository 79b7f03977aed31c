"""Pictures and pages of what the widget shows: ``to_png``, ``to_html``, the notebook fallback.

``export`` draws and writes; this module says what to draw: the shown image
and maps (full resolution for ``to_png``, display size for the fallback PNG
that viewers without a kernel show) under a heading from the summary, and
the synced state for the standalone page.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from .. import export
from ..render import format_percent
from .frontend import STATIC
from .shown import MAP_BUFFERS, ShownResult


def heading(summary: dict[str, Any]) -> str:
    """The line above the panels: predicted and explained class, completeness error
    (integrated gradients only).

    Examples
    --------
    >>> heading({"predicted_label": "cat", "predicted_score": 0.9, "label": "cat",
    ...          "against": 3, "against_label": "dog", "score": 0.7, "delta": 0.004})
    'Predicted: cat (0.9)   Explained: cat − dog (0.7)   completeness error 0.4 %'
    """
    explained = summary["label"]
    if summary["against"] is not None:
        explained = f"{explained} − {summary['against_label']}"
    if summary.get("region"):
        explained = f"{explained}, {summary['region']}"
    line = (
        f"Predicted: {summary['predicted_label']} ({summary['predicted_score']:.4g})   "
        f"Explained: {explained} ({summary['score']:.4g})"
    )
    if summary["delta"] is None:
        return line
    return f"{line}   completeness error {format_percent(100 * summary['delta'])}"


def panels_png(
    shown: ShownResult, render_options: dict[str, Any], *, full_resolution: bool = True
) -> bytes:
    """The three panels of ``shown`` as PNG bytes, at full resolution or at display size."""
    rgb = shown.image.rgb if full_resolution else shown.image.shown_rgb
    height, width = shown.traits["region_size"]
    region = (
        np.frombuffer(shown.traits["region_mask"], np.uint8).reshape(height, width) > 0
        if shown.traits["region_mask"]
        else None
    )
    return export.panels_png(
        rgb,
        shown.panels(full_resolution),
        render_options,
        heading(shown.traits["summary"]),
        region,
    )


class FallbackPng:
    """The picture for viewers without a kernel (GitHub, nbviewer), built once per result.

    The panels at the size the browser shows them: a full-resolution picture
    was megabytes of base64 in the notebook file for large images (48 MB at
    2048 x 2048), rebuilt on every display.
    """

    def __init__(self) -> None:
        self._key: tuple[object, tuple[tuple[str, Any], ...]] | None = None
        self._encoded = ""

    def base64(self, shown: ShownResult, render_options: dict[str, Any]) -> str:
        """The base64 PNG for ``shown`` drawn with ``render_options``, from the cache if it can."""
        key = (shown.explanation, tuple(render_options.items()))
        if key != self._key:
            png = panels_png(shown, render_options, full_resolution=False)
            self._encoded = base64.b64encode(png).decode("ascii")
            self._key = key
        return self._encoded


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Hidden everywhere but where the output before it holds a widget view no manager
# rendered (no .igw inside): nbconvert's pages (lab and classic templates) of a
# notebook saved with its widget state, opened without the network. Where a
# manager draws the widget, or where outputs live apart (VS Code, Colab), it stays
# hidden; an HTML sanitizer that drops the <style> keeps the inline display:none.
_STATIC_STYLE = (
    ".igw-static{display:none}"
    + ",".join(
        f"{area}:has(script[type='{WIDGET_VIEW}']):not(:has(.igw))+{area} .igw-static"
        for area in (".jp-OutputArea-child", ".output_area")
    )
    + "{display:block!important;max-width:100%}"
)


def static_html(picture: str, heading_text: str) -> str:
    """The fallback output shown next to the widget on static pages (see ``_STATIC_STYLE``).

    ``picture`` is the base64 PNG of the panels; ``heading_text`` becomes its
    alternative text, escaped.

    Examples
    --------
    >>> static_html("iVBOR", "<b>").endswith('alt="&lt;b&gt;" src="data:image/png;base64,iVBOR">')
    True
    """
    return (
        f"<style>{_STATIC_STYLE}</style>"
        f'<img class="igw-static" style="display:none" alt="{html.escape(heading_text)}" '
        f'src="data:image/png;base64,{picture}">'
    )


def page(state: dict[str, Any]) -> bytes:
    """The standalone HTML page for the synced ``state`` (binary traits included).

    The page shows the result, not the session's passing messages, and its
    compute controls are disabled.
    """
    state = dict(state)
    binary = {
        name: state.pop(name)
        for name in (
            "image_rgb",
            *MAP_BUFFERS,
            "stability_spread",
            "sanity_rgb",
            "sanity_maps",
            "region_mask",
        )
    }
    state.update(error="", notice="", computing=False)
    return export.standalone_html(state, binary, STATIC).encode("utf-8")
