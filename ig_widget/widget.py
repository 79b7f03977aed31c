"""``IGWidget``: the three-panel Integrated Gradients view as a Jupyter widget.

The kernel side validates options, runs the engine (blocking on construction
and in ``compute()``, in a background thread when the browser asks) and sends
the browser the display image and, per panel, the positive and negative
channel-mean maps as binary buffers. The browser redraws every display-option
change itself from those maps (``js/src/render.ts``); the display options
still sync back here, so ``to_png`` and ``to_html`` show what the user sees.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets
from anywidget._util import try_file_contents

from . import engine, export
from .baselines import BASELINES, single_baseline
from .engine import ComputationCancelled, IGResult, PreparedInput
from .options import IGOptions, check_model, check_target
from .quadrature import METHODS
from .render import (
    POLARITIES,
    RENDER_DEFAULTS,
    STYLES,
    channel_maps,
    display_image,
    validate_render_options,
)
from .validation import as_image, check_choice, check_int

STATIC = Path(__file__).parent / "static"
CUSTOM_BASELINE = "custom"
COMPUTE_OPTIONS = ("steps", "baseline", "runs", "method")
# Everything the browser may change; any other key it sends is refused.
FRONT_END_OPTIONS = (*RENDER_DEFAULTS, *COMPUTE_OPTIONS, "target")
MAP_BUFFERS = ("gradient_positive", "gradient_negative", "ig_positive", "ig_negative")
# One result update (RGB image + four float32 maps) stays under this many
# bytes; larger images are averaged down for display only.
MAX_UPDATE_BYTES = 8 * 1024**2
BYTES_PER_DISPLAY_PIXEL = 3 + 4 * len(MAP_BUFFERS)
# Progress updates (and chances to cancel) the widget asks the engine for per
# computation; the engine keeps its batches within its own rule either way.
PROGRESS_UPDATES = 10


def display_factor(height: int, width: int) -> int:
    """Smallest integer reduction that keeps one result update under ``MAX_UPDATE_BYTES``.

    Examples
    --------
    >>> display_factor(299, 299), display_factor(2000, 2000)
    (1, 4)
    """
    factor = 1
    while (
        math.ceil(height / factor) * math.ceil(width / factor) * BYTES_PER_DISPLAY_PIXEL
        > MAX_UPDATE_BYTES
    ):
        factor += 1
    return factor


def block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of an (H, W) or (H, W, C) array.

    Blocks at the bottom and right edges may be smaller; each is averaged
    over the pixels it has, so the result is an area resampling.

    Examples
    --------
    >>> block_mean(np.arange(9.0).reshape(3, 3), 2).tolist()
    [[2.0, 3.5], [6.5, 8.0]]
    """
    if factor == 1:
        return array.astype(np.float32)
    height, width = array.shape[:2]
    rows = np.arange(0, height, factor)
    cols = np.arange(0, width, factor)
    sums = np.add.reduceat(np.add.reduceat(array.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(rows, append=height), np.diff(cols, append=width))
    if array.ndim == 3:
        counts = counts[:, :, None]
    return (sums / counts).astype(np.float32)


def _check_class_names(class_names: Any) -> list[str] | None:
    """The names as a list of strings that the browser and ``to_html`` can carry."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"class_names: expected a list of strings, one per class, "
            f"got {type(class_names).__name__}"
        )
    names = list(class_names)
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(
                f"class_names[{index}]: expected a string, got {type(name).__name__} {name!r}"
            )
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"class_names[{index}]: expected text that UTF-8 can encode, got {name!r} "
                f"(a lone surrogate at position {exc.start})"
            ) from exc
    return names


def _check_class_count(names: list[str] | None, classes: int) -> None:
    if names is not None and len(names) != classes:
        raise ValueError(
            f"class_names: expected {classes} names (the model's number of classes), "
            f"got {len(names)}"
        )


@functools.cache
def _front_end_file(name: str) -> Any:
    """anywidget's live view of a built front-end file (``str()`` gives its text).

    anywidget's own rule decides whether it watches the file for hot reload
    (``ANYWIDGET_HMR=1``, the package outside site-packages, ``watchfiles``
    installed); then its ``changed`` signal carries the new text.
    """
    return try_file_contents(STATIC / name)


def _describe(error: BaseException) -> str:
    text = str(error) or "(no message)"
    return f"{type(error).__name__}: {text}"


class _Checked(traitlets.TraitType):
    """Mixin for a synced option: an assignment passes the widget's checks first.

    A bad value (``None`` included) gets the project's message, naming the
    option and what was expected, and the trait's own type then holds the
    normalised value. While traitlets holds notifications (construction, a
    state update from the browser) the widget has checked every value
    already, and only the type check runs.
    """

    def validate(self, obj: Any, value: Any) -> Any:
        if not obj._cross_validation_lock:
            value = obj._checked_options({self.name: value})[self.name]
        return super().validate(obj, value)  # type: ignore[misc]


class _Choice(_Checked, traitlets.Enum):
    """One of a fixed set of strings."""


class _Number(_Checked, traitlets.Float):
    """A finite float."""


class _Integer(_Checked, traitlets.Int):
    """An int."""


class _Flag(_Checked, traitlets.Bool):
    """True or False."""


class _Color(_Checked, traitlets.Tuple):
    """Three ints (R, G, B) in 0..255."""


class _Steps(_Checked, traitlets.Union):
    """An int, or "auto"."""


@dataclass(frozen=True)
class _Image:
    """The explained image: raw pixels for the engine, its picture, the picture's display copy."""

    pixels: np.ndarray
    rgb: np.ndarray
    factor: int
    shown_rgb: np.ndarray

    @classmethod
    def of(cls, image: Any) -> _Image:
        """Check and convert ``image`` (as ``igw.integrated_gradients`` takes it)."""
        pixels = as_image(image)
        rgb = display_image(image)
        factor = display_factor(*pixels.shape[:2])
        shown_rgb = np.rint(block_mean(rgb, factor)).astype(np.uint8)
        return cls(pixels, rgb, factor, shown_rgb)

    def traits(self) -> dict[str, Any]:
        return {
            "image_size": list(self.pixels.shape[:2]),
            "display_size": list(self.shown_rgb.shape[:2]),
            "image_rgb": self.shown_rgb.tobytes(),
        }


@dataclass(frozen=True)
class _Shown:
    """A result as the widget shows it, with the image it explains.

    ``maps`` are the full-resolution channel maps (for ``to_png``),
    ``shown_maps`` the display-size ones the browser gets, ``traits`` the
    synced values that show the image and result.
    """

    image: _Image
    result: IGResult
    request: dict[str, Any]
    maps: dict[str, tuple[np.ndarray, np.ndarray]]
    shown_maps: dict[str, tuple[np.ndarray, np.ndarray]]
    traits: dict[str, Any]


class IGWidget(anywidget.AnyWidget):
    """Integrated Gradients of an image classifier, with live display controls.

    Shows three panels (Input, Normal gradients, Integrated gradients), the
    top-k classes to choose the explained one from, the completeness error
    and the score along the integration path. Display options redraw in the
    browser at once; compute options apply with the Compute button (or
    ``compute()``); choosing a class recomputes in the background with a
    progress bar and a Cancel button.

    Parameters
    ----------
    model : Keras model or callable
        Maps a float32 batch (N, H, W, C) to class scores (N, K).
    image : array, PIL image or path
        One image in raw pixel units, as for ``igw.integrated_gradients``.
    preprocess : callable, optional
        Applied to each batch inside the differentiated computation.
    class_names : sequence of str, optional
        One name per class (K names); class indices are shown otherwise.
    target : int, optional
        Class to explain; default the top predicted class.
    steps, baseline, runs, method
        As for ``igw.integrated_gradients``. An array ``baseline`` shows as
        ``"custom"`` in the ``baseline`` trait.
    top_k : int
        Number of top-scoring classes offered in the class menu.
    **render_options
        Display options, as for ``igw.render``.

    Examples
    --------
    >>> w = IGWidget(model, image, class_names=names, clip_above_percentile=99)  # doctest: +SKIP
    >>> w  # doctest: +SKIP
    >>> w.result.delta, w.to_png("ig.png")  # doctest: +SKIP
    """

    # Declared as traits, not given as Paths: for a Path anywidget connects
    # each new widget to the file's watcher through a closure that is never
    # disconnected, so no widget was ever freed. Here each widget listens
    # through a bound method, which the signal holds by weak reference.
    _esm = traitlets.Unicode().tag(sync=True)
    _css = traitlets.Unicode().tag(sync=True)

    # Display options, as igw.render's.
    style = _Choice(STYLES, RENDER_DEFAULTS["style"]).tag(sync=True)
    polarity = _Choice(POLARITIES, RENDER_DEFAULTS["polarity"]).tag(sync=True)
    clip_above_percentile = _Number(RENDER_DEFAULTS["clip_above_percentile"]).tag(sync=True)
    clip_below_percentile = _Number(RENDER_DEFAULTS["clip_below_percentile"]).tag(sync=True)
    morphological_cleanup = _Flag(RENDER_DEFAULTS["morphological_cleanup"]).tag(sync=True)
    structure = _Integer(RENDER_DEFAULTS["structure"]).tag(sync=True)
    outlines = _Flag(RENDER_DEFAULTS["outlines"]).tag(sync=True)
    outlines_component_percentage = _Number(RENDER_DEFAULTS["outlines_component_percentage"]).tag(
        sync=True
    )
    overlay = _Flag(RENDER_DEFAULTS["overlay"]).tag(sync=True)
    # None: the style's own colour.
    positive_color = _Color(
        traitlets.Int(),
        traitlets.Int(),
        traitlets.Int(),
        default_value=RENDER_DEFAULTS["positive_color"],
        allow_none=True,
    ).tag(sync=True)
    negative_color = _Color(
        traitlets.Int(),
        traitlets.Int(),
        traitlets.Int(),
        default_value=RENDER_DEFAULTS["negative_color"],
        allow_none=True,
    ).tag(sync=True)

    # Compute options: they take effect on the next computation.
    steps = _Steps([traitlets.Int(), traitlets.Enum(["auto"])], default_value=50).tag(sync=True)
    baseline = _Choice((*BASELINES, CUSTOM_BASELINE), "black").tag(sync=True)
    runs = _Integer(1).tag(sync=True)
    method = _Choice(METHODS, "trapezoid").tag(sync=True)
    target = _Integer(0).tag(sync=True)
    baseline_choices = traitlets.List(traitlets.Unicode(), list(BASELINES)).tag(sync=True)
    method_choices = traitlets.List(traitlets.Unicode(), list(METHODS)).tag(sync=True)

    # The shown result. classes: [index, label, score] for the top-k classes
    # (and the target, if not among them), best first.
    classes = traitlets.List(traitlets.List()).tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)
    path = traitlets.Dict().tag(sync=True)
    image_size = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    display_size = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    image_rgb = traitlets.Bytes(b"").tag(sync=True)
    gradient_positive = traitlets.Bytes(b"").tag(sync=True)
    gradient_negative = traitlets.Bytes(b"").tag(sync=True)
    ig_positive = traitlets.Bytes(b"").tag(sync=True)
    ig_negative = traitlets.Bytes(b"").tag(sync=True)

    # Status.
    computing = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    stale = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        model: Any,
        image: Any,
        *,
        preprocess: Callable[[Any], Any] | None = None,
        class_names: Sequence[str] | None = None,
        target: int | None = None,
        steps: int | str = 50,
        baseline: str | np.ndarray = "black",
        runs: int = 1,
        method: str = "trapezoid",
        top_k: int = 5,
        **render_options: Any,
    ) -> None:
        # First, so that close() (ipywidgets calls it on collection) works
        # on a widget whose construction failed.
        self._cancel = threading.Event()
        if not (STATIC / "widget.js").is_file():
            raise RuntimeError(
                f"IGWidget: the front end is not built ({STATIC / 'widget.js'} is missing); "
                "run `npm ci && npm run build` in the repository, or install a wheel"
            )
        check_model(model)
        display_options = validate_render_options(**render_options)
        self._top_k = check_int("top_k", top_k, low=1)
        shown_image = _Image.of(image)
        pixels = shown_image.pixels
        self._custom_baseline: np.ndarray | None = None
        if not isinstance(baseline, str):
            single_baseline(pixels, baseline)  # raises on a shape that does not fit
            self._custom_baseline = np.array(baseline, dtype=np.float32)
            baseline = CUSTOM_BASELINE
        self._model = model
        self._preprocess = preprocess
        compute_options = self._checked_compute_options(
            {"steps": steps, "baseline": baseline, "runs": runs, "method": method}
        )
        target = check_target(target)
        self._class_names = _check_class_names(class_names)
        # The engine's one forward pass at the image: the class count comes
        # from it, and every computation on this image reuses it.
        self._prepared = engine.prepare(model, pixels, self._engine_options(compute_options, None))
        _check_class_count(self._class_names, self._prepared.classes)
        if target is not None:
            self._prepared.target_index(target)

        self._sync_lock = threading.RLock()
        self._worker: threading.Thread | None = None
        # The picture for viewers without a kernel: (result, display options, base64 PNG).
        self._fallback: tuple[IGResult, tuple, str] | None = None
        result = self._run_engine(self._prepared, compute_options, target, progress=None)
        request = {**compute_options, "target": result.target}
        self._shown = self._shown_state(shown_image, result, request)
        script, style = _front_end_file("widget.js"), _front_end_file("widget.css")
        super().__init__(
            _esm=str(script),
            _css=str(style),
            **display_options,
            **compute_options,
            target=result.target,
            **self._shown.traits,
        )
        self.on_msg(self._handle_front_end_message)
        script.changed.connect(self._reload_script)
        style.changed.connect(self._reload_style)

    def _reload_script(self, text: str) -> None:
        self._esm = text

    def _reload_style(self, text: str) -> None:
        self._css = text

    def close(self) -> None:
        """Close the views and stop a background computation after its current batch.

        Examples
        --------
        >>> w.close()  # doctest: +SKIP
        """
        self._cancel.set()
        super().close()

    # -- validation ---------------------------------------------------------

    def _engine_options(self, options: dict[str, Any], target: Any) -> IGOptions:
        """The engine's description of the computation the compute options ask for."""
        baseline = options["baseline"]
        if isinstance(baseline, str) and baseline == CUSTOM_BASELINE:
            baseline = self._custom_baseline
        return IGOptions(
            target=target,
            baseline=baseline,
            steps=options["steps"],
            runs=options["runs"],
            method=options["method"],
            preprocess=self._preprocess,
        )

    def _checked_compute_options(self, options: dict[str, Any]) -> dict[str, Any]:
        # The trait holds a baseline's name ("custom" for the array given at construction).
        allowed = (*BASELINES, CUSTOM_BASELINE) if self._custom_baseline is not None else BASELINES
        baseline = check_choice("baseline", options["baseline"], allowed)
        checked = self._engine_options({**options, "baseline": baseline}, None)
        return {
            "steps": checked.steps,
            "baseline": baseline,
            "runs": checked.runs,
            "method": checked.method,
        }

    def _checked_options(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate ``changes`` together with the other current options; return all, normalised."""
        current = {name: getattr(self, name) for name in FRONT_END_OPTIONS}
        merged = {**current, **changes}
        checked = validate_render_options(**{name: merged[name] for name in RENDER_DEFAULTS})
        checked.update(self._checked_compute_options(merged))
        if merged["target"] is None:
            raise TypeError("target: expected an integer, got None")
        checked["target"] = self._prepared.target_index(merged["target"])
        return checked

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Apply a state update from the browser, refusing invalid or read-only values.

        A refused update leaves the previous values, sends them back to the
        browser and shows the reason in the widget.
        """
        with self._sync_lock:
            refused = [name for name in sync_data if name not in FRONT_END_OPTIONS]
            accepted = {name: sync_data[name] for name in sync_data if name in FRONT_END_OPTIONS}
            problem = ""
            if refused:
                problem = f"{refused[0]}: cannot be changed from the browser"
            if "target" in accepted and self.computing:
                problem = "target: a computation is running; cancel it before choosing a class"
                refused += list(accepted)
                accepted = {}
            if accepted:
                try:
                    normalised = self._checked_options(accepted)
                except (TypeError, ValueError) as exc:
                    problem = str(exc)
                    refused += list(accepted)
                    accepted = {}
                else:
                    accepted = {name: normalised[name] for name in accepted}
            previous_target = self.target
            super().set_state(accepted)
            self.error = problem
            if refused:
                self.send_state(refused)
        if "target" in accepted and accepted["target"] != previous_target:
            self._start_background()

    # -- computing ----------------------------------------------------------

    def _run_engine(
        self,
        prepared: PreparedInput,
        options: dict[str, Any],
        target: int | None,
        progress: Callable[[int, int], bool] | None,
    ) -> IGResult:
        return engine.run(
            prepared,
            self._engine_options(options, target),
            progress=progress,
            progress_updates=PROGRESS_UPDATES,
        )

    def _request(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in COMPUTE_OPTIONS}, "target": self.target}

    @traitlets.observe(*COMPUTE_OPTIONS, "target")
    def _mark_stale(self, _change: dict[str, Any]) -> None:
        self.stale = self._request() != self._shown.request

    def _report_progress(self, done: int, total: int) -> bool:
        with self._sync_lock:
            self.progress = [done, total]
        return not self._cancel.is_set()

    def _compute(
        self, *, background: bool, image: _Image | None = None, top_class: bool = False
    ) -> IGResult | None:
        """Run one computation and show its result; every way out clears ``computing``.

        ``image``: a new image to explain instead of the shown one; with
        ``top_class`` the engine explains its top class instead of ``target``.
        """
        image = self._shown.image if image is None else image
        request = self._request()
        options = {name: request[name] for name in COMPUTE_OPTIONS}
        target = None if top_class else request["target"]
        with self._sync_lock:
            self.error = ""
            self.notice = ""
            self.progress = [0, 0]
            self.computing = True
        try:
            prepared = (
                self._prepared
                if image is self._shown.image
                else engine.prepare(self._model, image.pixels, self._engine_options(options, None))
            )
            result = self._run_engine(prepared, options, target, self._report_progress)
            request = {**options, "target": result.target}
            with self._sync_lock:
                self._show(self._shown_state(image, result, request))
                self._prepared = prepared
                if top_class:
                    self.target = result.target
                self.stale = self._request() != request
            return result
        except BaseException as exc:
            self._report_failure(exc)
            if isinstance(exc, ComputationCancelled) or (background and isinstance(exc, Exception)):
                return None
            raise
        finally:
            with self._sync_lock:
                self.computing = False

    def _report_failure(self, error: BaseException) -> None:
        with self._sync_lock:
            # The class menu shows the explained class, so it goes back with
            # the result; edited compute options stay, marked stale.
            self.target = self.result.target
            if isinstance(error, ComputationCancelled):
                self.notice = "Cancelled; the panels show the previous result."
            elif isinstance(error, KeyboardInterrupt):
                self.notice = "Interrupted; the panels show the previous result."
            else:
                self.error = _describe(error)

    @property
    def image(self) -> np.ndarray:
        """The explained image, float32 (H, W, C) in raw pixel units (read-only).

        Assigning an image (anything ``igw.integrated_gradients`` takes, of
        any size the model takes) explains it at once, as ``set_image``.

        Examples
        --------
        >>> w.image = other_image  # doctest: +SKIP
        >>> w.image.shape  # doctest: +SKIP
        (96, 96, 3)
        """
        view = self._shown.image.pixels.view()
        view.flags.writeable = False
        return view

    @image.setter
    def image(self, image: Any) -> None:
        self.set_image(image)

    def set_image(self, image: Any, *, target: int | None = None) -> IGResult | None:
        """Explain another image with the current options, blocking; show it with its result.

        Parameters
        ----------
        image : array, PIL image or path
            As for ``igw.integrated_gradients``; its size may differ from the
            shown one's.
        target : int, optional
            Class to explain; default the new image's top predicted class.

        Returns
        -------
        IGResult, or None if the computation was cancelled from the browser.

        Raises
        ------
        TypeError, ValueError
            For an image that cannot be used (naming ``image``), or when the
            model or engine fails on it; the previous image and result stay.

        Examples
        --------
        >>> w.set_image(igw.demo.images()[0][3], target=2).target  # doctest: +SKIP
        2
        """
        new = _Image.of(image)
        if target is not None:
            # The same model: the class count of the shown image's forward pass holds.
            target = self._prepared.target_index(target)
        if self._custom_baseline is not None and self.baseline == CUSTOM_BASELINE:
            try:
                single_baseline(new.pixels, self._custom_baseline)
            except ValueError as exc:
                raise ValueError(
                    f"image: shape {new.pixels.shape} does not fit the custom baseline ({exc}); "
                    "choose another baseline first"
                ) from exc
        self.wait()
        self._cancel.clear()
        if target is not None:
            self.target = target
        return self._compute(background=False, image=new, top_class=target is None)

    def compute(self) -> IGResult | None:
        """Recompute with the current compute options and target, blocking.

        Waits for a background computation to finish first. Errors from the
        model or engine are raised (and shown in the widget); the previous
        result stays.

        Returns
        -------
        IGResult, or None if the computation was cancelled from the browser.

        Examples
        --------
        >>> w.steps = 100  # doctest: +SKIP
        >>> w.compute().delta  # doctest: +SKIP
        """
        self.wait()
        self._cancel.clear()
        return self._compute(background=False)

    def _start_background(self) -> None:
        if self.computing:
            return
        # Set here, not in the thread, so that the browser sees the
        # computation start at once and a second request is ignored.
        self.computing = True
        self._cancel.clear()
        self._worker = threading.Thread(
            target=self._compute, kwargs={"background": True}, name="ig-widget-compute"
        )
        self._worker.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background computation ends; False if ``timeout`` passed first.

        Examples
        --------
        >>> w.wait(timeout=60)  # doctest: +SKIP
        True
        """
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            if worker.is_alive():
                return False
        return True

    def cancel(self, wait: bool = True) -> None:
        """Stop a background computation after its current batch; the previous result stays.

        Examples
        --------
        >>> w.cancel()  # doctest: +SKIP
        """
        self._cancel.set()
        if wait:
            self.wait()

    def _handle_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "compute":
            self._start_background()
        elif kind == "cancel":
            self.cancel(wait=False)

    # -- state for the browser ----------------------------------------------

    def _label(self, index: int) -> str:
        return self._class_names[index] if self._class_names is not None else f"class {index}"

    @property
    def result(self) -> IGResult:
        """The shown result (the latest that completed)."""
        return self._shown.result

    def _shown_state(self, image: _Image, result: IGResult, request: dict[str, Any]) -> _Shown:
        """How ``image`` and its ``result`` (for ``request``) are shown; changes nothing."""
        maps = {
            "gradient": channel_maps(result.gradients),
            "ig": channel_maps(result.attributions),
        }
        scores = result.scores
        ranked = [int(i) for i in np.argsort(-scores, kind="stable")[: self._top_k]]
        if result.target not in ranked:
            ranked.append(result.target)
        # What the browser gets: the maps averaged down to the display size.
        shown_maps = {
            panel: (block_mean(positive, image.factor), block_mean(negative, image.factor))
            for panel, (positive, negative) in maps.items()
        }
        buffers = {
            f"{panel}_{sign}": values.tobytes()
            for panel, pair in shown_maps.items()
            for sign, values in zip(("positive", "negative"), pair, strict=True)
        }
        path_scores = np.asarray(result.path_scores, np.float64)
        traits = {
            **image.traits(),
            "classes": [[i, self._label(i), float(scores[i])] for i in ranked],
            "summary": {
                "target": result.target,
                "label": self._label(result.target),
                "score": result.score,
                "predicted": ranked[0],
                "predicted_label": self._label(ranked[0]),
                "predicted_score": float(scores[ranked[0]]),
                "delta": float(result.delta),
                "steps": result.steps,
                "method": result.method,
                "runs": result.runs,
                "points_used": result.points_used,
                "elapsed_s": float(result.elapsed_s),
                "display_factor": image.factor,
            },
            "path": {
                "alphas": [float(a) for a in result.path_alphas],
                "mean": path_scores.mean(axis=0).tolist(),
                "low": path_scores.min(axis=0).tolist(),
                "high": path_scores.max(axis=0).tolist(),
                "baseline_score": float(np.mean(result.baseline_scores)),
                "score": result.score,
            },
            **buffers,
            "progress": [result.points_used, result.points_used],
        }
        return _Shown(image, result, request, maps, shown_maps, traits)

    def _show(self, shown: _Shown) -> None:
        """Make ``shown`` the displayed result; if that fails, the previous one stays everywhere."""
        previous = self._shown
        self._shown = shown
        try:
            with self.hold_sync():
                for name, value in shown.traits.items():
                    setattr(self, name, value)
        except BaseException:
            self._shown = previous
            with contextlib.suppress(Exception), self.hold_sync():
                for name, value in previous.traits.items():
                    setattr(self, name, value)
            raise

    # -- snapshots ------------------------------------------------------------

    def render_options(self) -> dict[str, Any]:
        """The current display options, as keyword arguments for ``igw.render``.

        Examples
        --------
        >>> igw.render(image, w.result.attributions, **w.render_options())  # doctest: +SKIP
        """
        return {name: getattr(self, name) for name in RENDER_DEFAULTS}

    def _png(self, full_resolution: bool = True) -> bytes:
        summary = self.summary
        heading = (
            f"Predicted: {summary['predicted_label']} ({summary['predicted_score']:.4g})   "
            f"Explained: {summary['label']} ({summary['score']:.4g})   "
            f"completeness error {100 * summary['delta']:.2f}%"
        )
        rgb, maps = (
            (self._shown.image.rgb, self._shown.maps)
            if full_resolution
            else (self._shown.image.shown_rgb, self._shown.shown_maps)
        )
        return export.panels_png(rgb, maps, self.render_options(), heading)

    def to_png(self, path: str | Path) -> Path:
        """Write the three panels, as currently displayed, to one PNG file.

        Panels are drawn at the image's full resolution with the current
        display options. ``path`` must end in ``.png``; the file is replaced
        atomically (see ``export.write_file``: a failed write keeps the old
        file, a symbolic link's target is written), and nothing else is.

        Examples
        --------
        >>> w.to_png("ig.png")  # doctest: +SKIP
        PosixPath('ig.png')
        """
        return export.write_file(path, self._png, export.PNG_SUFFIXES)

    def to_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML page with the widget's current view.

        The page holds the front end, its styles and the shown data; it opens
        offline (also from a ``file://`` URL), its display controls work and
        its compute controls are disabled. ``path`` must end in ``.html`` or
        ``.htm``; it is written as ``to_png`` writes.

        Examples
        --------
        >>> w.to_html("ig.html")  # doctest: +SKIP
        PosixPath('ig.html')
        """
        return export.write_file(path, self._html, export.HTML_SUFFIXES)

    def _html(self) -> bytes:
        own = [name for name in IGWidget.class_own_traits(sync=True) if not name.startswith("_")]
        state = self.get_state(key=own)
        binary = {name: state.pop(name) for name in ("image_rgb", *MAP_BUFFERS)}
        # The page shows the result, not the session's passing messages.
        state.update(error="", notice="", computing=False)
        return export.standalone_html(state, binary, STATIC).encode("utf-8")

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        # Viewers without a kernel (GitHub, nbviewer) show this picture: the
        # panels at the size the browser shows them, built once per result
        # and display options (a full-resolution one is megabytes of base64
        # in the notebook file for large images).
        options = tuple(self.render_options().items())
        if self._fallback is None or self._fallback[:2] != (self.result, options):
            encoded = base64.b64encode(self._png(full_resolution=False)).decode("ascii")
            self._fallback = (self.result, options, encoded)
        return {**data, "image/png": self._fallback[2]}, metadata
