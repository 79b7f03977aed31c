"""The figure ``plot`` returns: a matplotlib ``Figure`` that notebooks show as a picture."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


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
