"""The built front end as the widgets' ``_esm`` and ``_css``, with hot reload in one place.

Every widget with a front end (``IGWidget`` through ``WidgetState``, ``Gallery``)
derives from ``FrontEnd`` and names its two built files in ``ig_widget/static``.
In development (``ANYWIDGET_HMR=1``, this package outside site-packages, and
``watchfiles`` installed: anywidget's conditions) a thread per file watches it
and puts the new text into every live widget that shows it, so that
``make dev`` reloads the open widgets. The watcher holds the widgets by weak
reference: a closed or dropped widget is freed as without it.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

STATIC = Path(__file__).resolve().parent.parent / "static"


def _watching(path: Path) -> bool:
    """Whether built files here are watched: anywidget's rule for its hot reload."""
    if os.environ.get("ANYWIDGET_HMR") != "1":
        return False
    if {"site-packages", "dist-packages"} & set(path.parts):
        return False
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return False
    return True


class BuiltFile:
    """One built front-end file: its text, and the widget traits that show it.

    Parameters
    ----------
    path : Path
        The file.
    watch : bool
        Watch it in a daemon thread and send each new text to the followers.
    """

    def __init__(self, path: Path, watch: bool) -> None:
        self.path = path
        self.text = path.read_text()
        self._followers: weakref.WeakKeyDictionary[traitlets.HasTraits, str] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if watch:
            self._thread = threading.Thread(
                target=self._watch, daemon=True, name=f"watch {path.name}"
            )
            self._thread.start()

    def follow(self, widget: traitlets.HasTraits, trait: str) -> None:
        """Set ``widget``'s ``trait`` to the file's text now and on each change."""
        with self._lock:
            self._followers[widget] = trait
        setattr(widget, trait, self.text)

    def changed(self, text: str) -> None:
        """The file now reads ``text``: show it in every live follower."""
        self.text = text
        with self._lock:
            followers = list(self._followers.items())
        for widget, trait in followers:
            setattr(widget, trait, text)

    def stop(self) -> None:
        """Stop watching the file (tests; a process's watchers otherwise live as long as it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        from watchfiles import watch

        for _changes in watch(self.path, stop_event=self._stop):
            if self.path.is_file():
                self.changed(self.path.read_text())


@functools.cache
def built_file(name: str) -> BuiltFile:
    """The built file ``name`` of ``ig_widget/static`` (one watcher per file per process)."""
    path = STATIC / name
    return BuiltFile(path, watch=_watching(path))


class FrontEnd(anywidget.AnyWidget):
    """An anywidget whose script and stylesheet are built files of ``ig_widget/static``.

    Subclasses name them in ``FRONT_END`` (script, stylesheet). Declared as
    traits, not given as Paths: for a Path anywidget connects each new widget
    to the file's watcher through a closure that is never disconnected, so no
    widget was ever freed.
    """

    FRONT_END: ClassVar[tuple[str, str]]
    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)

    def __init__(self, **traits: Any) -> None:
        script, sheet = (built_file(name) for name in self.FRONT_END)
        super().__init__(_esm=script.text, _css=sheet.text, **traits)
        script.follow(self, "_esm")
        sheet.follow(self, "_css")
