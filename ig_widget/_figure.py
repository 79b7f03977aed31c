"""The figure ``plot`` returns: a matplotlib ``Figure`` that notebooks show as a picture,
and the colour key drawn under its attribution panels."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .render import KeyEntry

KEY_LABEL = "colour key"
# Height of one key bar and the gap under the panel and between bars, as
# fractions of the panel's height.
KEY_BAR_HEIGHT = 0.04
KEY_GAP = 0.1
KEY_ROW_HEIGHT = 0.27


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


def draw_key(axes: Axes, entries: list[KeyEntry]) -> list[Axes]:
    """Colour bars under ``axes``, one per entry, with their meaning and end values.

    Each bar is an inset axes labelled ``KEY_LABEL``; its ticks are the
    attribution values at the two ends and the share of the total they
    stand for.
    """
    from .render import key_labels

    bars = []
    for row, entry in enumerate(entries):
        labels = key_labels(entry)
        top = -KEY_GAP - row * KEY_ROW_HEIGHT
        bar = axes.inset_axes((0.0, top - KEY_BAR_HEIGHT, 1.0, KEY_BAR_HEIGHT))
        bar.set_label(KEY_LABEL)
        colours = np.asarray(entry["colors"], np.uint8)[None]
        bar.imshow(colours, aspect="auto", interpolation="nearest", extent=(0, 1, 0, 1))
        bar.set_yticks([])
        bar.set_xticks(
            [0, 1],
            [
                f"{labels['low']}\n{labels['low_share']}",
                f"{labels['high']}\n{labels['high_share']}",
            ],
            fontsize="small",
        )
        bar.get_xticklabels()[0].set_horizontalalignment("left")
        bar.get_xticklabels()[1].set_horizontalalignment("right")
        # parse_math=False: values such as "2.06e-5" are text.
        bar.set_title(
            f"{entry['polarity']}: {labels['meaning']}", fontsize="small", pad=3, parse_math=False
        )
        bars.append(bar)
    return bars
