"""The figure ``plot`` returns: a matplotlib ``Figure`` that notebooks show as a picture,
its three panels placed to fit the image, and the colour key drawn under its
attribution panels."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .render import KeyEntry

KEY_LABEL = "colour key"
# The layout at the default width, in inches: the side margins and the gap
# between panels, the figure title and a panel title above them, and the gap
# under a panel. One key entry under a panel takes KEY_ROW: its meaning
# (KEY_TEXT), its bar (KEY_BAR) and two lines of end labels. A figure of
# another size is this layout scaled, text included.
DEFAULT_WIDTH = 15.0
SIDE = 0.3
GAP = 0.4
TITLES = {True: 0.85, False: 0.45}  # with a figure title, without
HEADING_TOP = 0.12  # the figure title's top under the figure's top edge
HEADING_LINE = 0.25
BELOW = 0.15
KEY_ROW = 1.5
KEY_BAR = 0.2
KEY_TEXT = 0.27
FONT_SIZE = 11
MIN_FONT_SIZE = 8
TITLE_SIZE = 13
POINTS_PER_INCH = 72


class NotebookFigure(Figure):
    """A ``Figure`` that Jupyter shows as a PNG even where no pyplot backend is active.

    ``plot`` builds its figure without pyplot so that it works headless, and
    IPython only knows how to show a bare ``Figure`` once a backend such as
    ``%matplotlib inline`` has registered itself; otherwise a notebook prints
    ``<Figure size 1500x800 with 3 Axes>``. Where a backend is registered, its
    formatter takes precedence and this method is not used.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def panels_figure(
    panels: dict[str, tuple[np.ndarray, list[KeyEntry] | None]],
    heading: str,
    figsize: tuple[float, float] | None,
    class_name: str | None = None,
) -> NotebookFigure:
    """Pictures side by side under their titles, each with its colour key (if any) under it.

    ``panels`` maps a title to its picture (H, W, 3; all one size) and key;
    the keys' texts name ``class_name``, when given.
    Without ``figsize`` the figure is ``DEFAULT_WIDTH`` inches wide and as
    tall as the panels, titles and keys need, so that a saved figure has no
    empty band. With ``figsize`` the same layout is scaled to fit in it, text
    included, and centred.
    """
    count = len(panels)
    pictures = [picture for picture, _ in panels.values()]
    height, width = pictures[0].shape[:2]
    key_rows = max((len(key) for _, key in panels.values() if key is not None), default=0)
    # A heading's further lines (the note of a falling score) each take HEADING_LINE.
    top = TITLES[bool(heading)] + heading.count("\n") * HEADING_LINE
    below = BELOW + key_rows * KEY_ROW
    panel_w = (DEFAULT_WIDTH - 2 * SIDE - (count - 1) * GAP) / count
    panel_h = panel_w * height / width
    natural = (DEFAULT_WIDTH, top + panel_h + below)
    size = natural if figsize is None else figsize
    scale = min(size[0] / natural[0], size[1] / natural[1])
    figure = NotebookFigure(figsize=size)
    # Where the layout starts in the figure, in inches (matplotlib's origin is bottom left).
    left = (size[0] - scale * natural[0]) / 2 + scale * SIDE
    bottom = (size[1] + scale * natural[1]) / 2 - scale * (top + panel_h)
    entries = [entry for _, key in panels.values() for entry in key or []]
    font = scale * key_font(panel_w, entries)
    for index, (title, (picture, key)) in enumerate(panels.items()):
        axes = figure.add_axes(
            (
                (left + scale * index * (panel_w + GAP)) / size[0],
                bottom / size[1],
                scale * panel_w / size[0],
                scale * panel_h / size[1],
            )
        )
        axes.imshow(picture, interpolation="nearest")
        axes.set_title(title, fontsize=scale * TITLE_SIZE)
        axes.set_axis_off()
        if key is not None:
            _draw_key(axes, key, scale * panel_h, scale, font, class_name)
    if heading:
        # parse_math=False: a class name with "$" is text, not TeX.
        figure.suptitle(
            heading,
            fontsize=scale * TITLE_SIZE,
            y=(size[1] + scale * natural[1]) / 2 / size[1] - scale * HEADING_TOP / size[1],
            va="top",
            parse_math=False,
        )
    return figure


def _sentences(labels: dict[str, str]) -> str:
    """The key's sentences under its bar: the shares of its two ends and the concentration."""
    return f"{labels['low_share']}\n{labels['high_share']}\n{labels['top']}"


def key_font(panel_width: float, entries: list[KeyEntry]) -> float:
    """The key's font size: up to ``FONT_SIZE``, so that both end values fit side by side
    and each sentence fits in the panel's width.

    ``panel_width`` is in inches, at the default width. Measured in
    matplotlib's default font; never below ``MIN_FONT_SIZE``.
    """
    from matplotlib.textpath import TextPath

    from .render import key_labels

    def width(text: str) -> float:
        return max(TextPath((0, 0), line, size=1).get_extents().width for line in text.split("\n"))

    needed = []
    for entry in entries:
        labels = key_labels(entry)
        needed.append(max(width(labels["low"]) + width(labels["high"]), width(_sentences(labels))))
    room = (panel_width - GAP) * POINTS_PER_INCH
    return max(MIN_FONT_SIZE, min(FONT_SIZE, room / max(needed, default=1.0)))


def _draw_key(
    axes: Axes,
    entries: list[KeyEntry],
    panel_height: float,
    scale: float,
    fontsize: float,
    class_name: str | None = None,
) -> None:
    """Colour bars under ``axes``, one per entry, with their meaning and end values.

    Each bar is an inset axes labelled ``KEY_LABEL``: its title says what
    the colour means, its ticks are the attribution values at the two ends,
    and its x label the key's sentences (``_sentences``). ``panel_height``
    is the panel's height in inches.
    """
    from .render import key_labels

    # Inset axes are placed in fractions of the panel; the key's rows are in inches.
    unit = scale / panel_height
    for row, entry in enumerate(entries):
        labels = key_labels(entry, class_name)
        top = -(BELOW + KEY_TEXT + row * KEY_ROW) * unit
        bar = axes.inset_axes((0.0, top - KEY_BAR * unit, 1.0, KEY_BAR * unit))
        bar.set_label(KEY_LABEL)
        colours = np.asarray(entry["colors"], np.uint8)[None]
        bar.imshow(colours, aspect="auto", interpolation="nearest", extent=(0, 1, 0, 1))
        bar.set_yticks([])
        bar.set_xticks([0, 1], [labels["low"], labels["high"]], fontsize=fontsize)
        bar.set_xlabel(_sentences(labels), fontsize=fontsize, loc="left", parse_math=False)
        bar.tick_params(length=3 * scale, pad=2 * scale)
        bar.get_xticklabels()[0].set_horizontalalignment("left")
        bar.get_xticklabels()[1].set_horizontalalignment("right")
        # parse_math=False: values such as "2.06e-5" are text.
        bar.set_title(
            labels["meaning"],
            fontsize=fontsize,
            loc="left",
            pad=4 * scale,
            parse_math=False,
        )
