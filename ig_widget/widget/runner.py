"""Computations for the widget: one at a time, blocking or in a background thread.

The widget hands ``Runner.run`` (blocking) or ``Runner.start`` (a thread) a
job: a function of a progress callback that computes and shows a result.
The runner keeps the status traits true on every way out, so the widget can
never be left computing: ``computing`` is set before the job and cleared
after it whatever happens (result, error, cancel, close, a failure in the
thread); progress goes to ``progress``; a cancel or a failure is described in
``notice`` or ``error``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ..engine import ComputationCancelled
from .state import WidgetState

Result = TypeVar("Result")
ProgressCallback = Callable[[int, int], bool]
THREAD_NAME = "ig-widget-compute"


def describe(error: BaseException) -> str:
    """One line for the view: the exception's type and message.

    Examples
    --------
    >>> describe(ValueError("steps: expected an integer >= 1, got 0"))
    'ValueError: steps: expected an integer >= 1, got 0'
    """
    text = str(error) or "(no message)"
    return f"{type(error).__name__}: {text}"


class Runner:
    """Runs the widget's computations and keeps its status traits.

    Parameters
    ----------
    state : WidgetState
        The widget whose ``computing``, ``progress``, ``error`` and
        ``notice`` this runner sets.
    """

    def __init__(self, state: WidgetState) -> None:
        self._state = state
        self._cancel = threading.Event()
        self._worker: threading.Thread | None = None

    def run(
        self,
        job: Callable[[ProgressCallback], Result],
        on_failure: Callable[[], None],
        *,
        background: bool = False,
    ) -> Result | None:
        """Run ``job`` with a progress callback; None if it was cancelled.

        On any failure ``on_failure`` restores what the job changed, the view
        says what happened, and the exception is raised again, except a
        cancel, and anything in a background thread (the view is the only
        place to report it there).
        """
        state = self._state
        with state.sync_lock:
            state.error = ""
            state.notice = ""
            state.progress = [0, 0]
            state.computing = True
        try:
            return job(self._report)
        except BaseException as exc:
            with state.sync_lock:
                on_failure()
                if isinstance(exc, ComputationCancelled):
                    state.notice = "Cancelled; the panels show the previous result."
                elif isinstance(exc, KeyboardInterrupt):
                    state.notice = "Interrupted; the panels show the previous result."
                else:
                    state.error = describe(exc)
            if isinstance(exc, ComputationCancelled) or (background and isinstance(exc, Exception)):
                return None
            raise
        finally:
            with state.sync_lock:
                state.computing = False

    def start(
        self, job: Callable[[ProgressCallback], object], on_failure: Callable[[], None]
    ) -> None:
        """Run ``job`` in a background thread, unless a computation is running."""
        if self._state.computing:
            return
        # Set here, not in the thread, so that the browser sees the
        # computation start at once and a second request is ignored.
        self._state.computing = True
        self._cancel.clear()
        self._worker = threading.Thread(
            target=self.run, args=(job, on_failure), kwargs={"background": True}, name=THREAD_NAME
        )
        self._worker.start()

    def run_after_background(
        self, job: Callable[[ProgressCallback], Result], on_failure: Callable[[], None]
    ) -> Result | None:
        """Wait for a background computation, then ``run`` ``job`` blocking."""
        self.wait()
        self._cancel.clear()
        return self.run(job, on_failure)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background computation ends; False if ``timeout`` passed first."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                return False
        return True

    def cancel(self, wait: bool = True) -> None:
        """Stop the computation after its current batch (the engine asks between batches)."""
        self._cancel.set()
        if wait:
            self.wait()

    def _report(self, done: int, total: int) -> bool:
        with self._state.sync_lock:
            self._state.progress = [done, total]
        return not self._cancel.is_set()
