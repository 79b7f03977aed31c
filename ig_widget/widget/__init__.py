"""``IGWidget``: the three-panel Integrated Gradients view as a Jupyter widget.

The kernel side checks options, asks the engine for computations (blocking
on construction, in ``compute()`` and ``set_image()``, in a background thread
when the browser asks) and sends the browser the display image and, per
panel, the positive and negative channel-mean maps as binary buffers. The
browser redraws every display-option change itself from those maps
(``js/src/render.ts``); the display options still sync back here, so
``to_png`` and ``to_html`` show what the user sees.

The parts, each in its module:

- ``state``: the synced traits, typed, with the checks every change passes
  (from Python or from the browser);
- ``runner``: one computation at a time, blocking or in a thread, with
  progress, cancel, and status traits that are right on every way out;
- ``shown``: what the browser is sent for an image and its result, built
  without side effects;
- ``snapshots``: ``to_png``, ``to_html`` and the notebook's fallback picture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .. import engine, export
from ..baselines import single_baseline
from ..engine import IGResult, PreparedInput
from ..explainers import AttributionResult
from ..options import IGOptions, Region, Target, check_class_names, check_model, check_target
from ..render import validate_render_options
from ..stability import StabilityResult, stability
from ..validation import check_int
from . import snapshots
from .frontend import STATIC
from .methods import (
    IG,
    NO_COMPARE,
    STABILITY_STAGE,
    TITLES,
    Method,
    Stages,
    check_explainer_options,
    curve,
    method_settings,
    offered,
    run_method,
    stability_parameters,
)
from .options import (
    CLASS_CHOICE,
    COMPUTE_OPTIONS,
    CUSTOM_BASELINE,
    FRONT_END_OPTIONS,
    NO_MODEL,
    check_against,
    check_class_count,
    checked_options,
    class_choice,
    compute_traits,
    display_traits,
    engine_options,
    method_traits,
)
from .runner import ProgressCallback, Runner
from .shown import (
    BYTES_PER_DISPLAY_PIXEL,
    MAP_BUFFERS,
    MAX_UPDATE_BYTES,
    NO_SANITY,
    SANITY_STAGE,
    Explanation,
    ShownImage,
    ShownResult,
    block_mean,
    display_factor,
    explained_words,
    sanity_traits,
    shown_result,
    stability_traits,
)
from .state import DisplayOptions, WidgetState, ignore_message

if TYPE_CHECKING:
    from ..sanity import SanityCheck

# Progress updates (and chances to cancel) the widget asks the engine for per
# computation; the engine keeps its batches within its own rule either way.
PROGRESS_UPDATES = 10
# Runs of the shown method when the browser asks for its stability.
STABILITY_DRAWS = 5

__all__ = [
    "BYTES_PER_DISPLAY_PIXEL",
    "FRONT_END_OPTIONS",
    "MAP_BUFFERS",
    "MAX_UPDATE_BYTES",
    "IGWidget",
    "block_mean",
    "display_factor",
]


class IGWidget(WidgetState):
    """Integrated Gradients of an image classifier, with live display controls.

    Shows three panels (Input, Normal gradients, Integrated gradients), the
    top-k classes to choose the explained one from, the completeness error
    and the score along the integration path. Display options redraw in the
    browser at once; compute options apply with the Compute button (or
    ``compute()``); choosing a class recomputes in the background with a
    progress bar and a Cancel button.

    Parameters
    ----------
    model : Keras model or callable, or None
        Maps a float32 batch (N, H, W, C) to class scores (N, K). None (with
        ``result``) shows a stored result: display options work, computing
        is off.
    image : array, PIL image or path
        One image in raw pixel units, as for ``igw.integrated_gradients``.
    preprocess : callable, optional
        Applied to each batch inside the differentiated computation.
    class_names : sequence of str, optional
        One name per class (K names); class indices are shown otherwise.
    target : int, str or Region, optional
        Class to explain (its index, or its name in ``class_names``); default
        the top predicted class. An
        ``igw.Region`` explains a segmentation model's score map (N, H', W', K)
        reduced over the region (``igw.integrated_gradients`` explains the
        same); the region is outlined on the input panel, and the class menu
        then picks the class whose scores in that region are explained (the
        menu's scores are the region's). The region itself is set from
        Python only (``w.region = igw.Region(...)``).
    against : int or str, optional
        A class (index or name) to contrast it with: the widget then explains
        ``score(target) - score(against)``, "why target and not against"
        (the "against" menu; None, the default, for no contrast).
    steps, baseline, runs, method
        As for ``igw.integrated_gradients``. An array ``baseline`` shows as
        ``"custom"`` in the ``baseline`` trait. ``steps`` is also the path
        methods' steps (Blur IG, Guided IG, XRAI), ``baseline`` Guided IG's.
    explainer : str
        The attribution method of the third panel: ``"integrated_gradients"``
        or another name of ``igw.EXPLAINERS`` (the method menu).
    compare : str
        A second method shown beside it with the same display options, both
        with their insertion and deletion curves; ``""`` (default) for none.
    explainer_options : dict, optional
        Parameters for the methods, by name:
        ``{"smoothgrad": {"samples": 50}, "expected_gradients": {"references": images}}``
        (Expected Gradients is offered only with ``references``).
    result : IGResult or AttributionResult, optional
        A result already computed for ``image`` (for example from a dataset
        store), shown at once instead of computing one; ``steps``, ``runs``,
        ``method``, ``target`` and ``against`` are then the result's (another
        ``target`` or ``against`` is refused). Another method's result
        (``explainer`` must be its method) has no plain gradient: the view
        shows the input and its map only, until a computation.
    top_k : int
        Number of top-scoring classes offered in the class menu of a model
        with more than ``ALL_CLASSES`` (20) classes; with fewer, every class
        is offered (best first), so that any can be chosen. Another class
        can always be set from Python (``w.target = 7``).
    **render_options
        Display options, as for ``igw.render``. Each is a trait of the same
        name, but ``style``, which is the trait ``picture_style`` (ipywidgets
        uses ``style`` itself); ``render_options()`` gives them back by
        ``igw.render``'s names.

    Examples
    --------
    >>> w = IGWidget(model, image, class_names=names, clip_above_percentile=99)  # doctest: +SKIP
    >>> w  # doctest: +SKIP
    >>> w.result.delta, w.to_png("ig.png")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        image: Any,
        *,
        preprocess: Callable[[Any], Any] | None = None,
        class_names: Sequence[str] | None = None,
        target: int | str | Region | None = None,
        against: int | str | None = None,
        steps: int | str = 50,
        baseline: str | np.ndarray = "black",
        runs: int = 1,
        method: str = "trapezoid",
        explainer: str = IG,
        compare: str = NO_COMPARE,
        explainer_options: dict[str, dict[str, Any]] | None = None,
        result: IGResult | AttributionResult | None = None,
        top_k: int = 5,
        **render_options: Any,
    ) -> None:
        # First, so that close() (ipywidgets calls it on collection) works
        # on a widget whose construction failed.
        self._runner = Runner(self)
        if not (STATIC / "widget.js").is_file():
            raise RuntimeError(
                f"IGWidget: the front end is not built ({STATIC / 'widget.js'} is missing); "
                "run `npm ci && npm run build` in the repository, or install a wheel"
            )
        if model is not None or result is None:
            check_model(model)
        display_options = validate_render_options(**render_options)
        self._top_k = check_int("top_k", top_k, low=1)
        self._explainer_options = check_explainer_options(explainer_options)
        self._offered = offered(self._explainer_options)
        methods = method_traits({"explainer": explainer, "compare": compare}, self._offered)
        shown_image = ShownImage.of(image)
        if isinstance(target, (tuple, list)):
            raise TypeError(
                "target: expected one class index (a contrast's second class is against=)"
            )
        self._class_names = check_class_names(class_names)
        target, against = self._indexed(target), self._indexed(against)
        self._region: Region | None = None
        if isinstance(target, Region):
            if against is not None:
                raise ValueError(
                    f"against: a region target explains one class, got against={against!r}"
                )
            self._region = target.named(self._class_names)
            assert isinstance(self._region.class_, int)  # named() looks names up
            target = self._region.class_
        if result is not None:
            if not isinstance(result, (IGResult, AttributionResult)):
                raise TypeError(
                    "result: expected an IGResult or an AttributionResult, "
                    f"got {type(result).__name__}"
                )
            # Another method's map may have one channel (Grad-CAM's).
            if result.attributions.shape[:2] != shown_image.pixels.shape[:2]:
                raise ValueError(
                    f"result: its attributions have shape {result.attributions.shape}, "
                    f"the image {shown_image.pixels.shape}; give the result computed for it"
                )
            stored = result.explainer if isinstance(result, AttributionResult) else IG
            if methods != {"explainer": stored, "compare": NO_COMPARE}:
                raise ValueError(
                    f"result: a stored result shows its method; give explainer={stored!r} "
                    "and no compare"
                )
            if isinstance(result, IGResult):
                steps, runs, method = result.steps, result.runs, result.method
            asked = {"target": target, "against": against}
            for name, value in asked.items():
                shown = getattr(result, name)
                if value is not None and check_target(value) != shown:
                    raise ValueError(
                        f"{name}: the result shows what it explains ({result.explained}), got "
                        f"{name}={value!r}; give none, and set w.target or w.against after "
                        "to compute another"
                    )
            given = result.given_target
            if self._region is None and isinstance(given, Region):
                # The result's region is the widget's: the next computation explains it too.
                self._region = given
            elif self._region is not None and self._region != given:
                raise ValueError(
                    f"target: the result shows what it explains ({result.explained}), got "
                    "another region; give none, and set w.region after to compute another"
                )
        self._custom_baseline: np.ndarray | None = None
        if not isinstance(baseline, str):
            single_baseline(shown_image.pixels, baseline)  # raises on a shape that does not fit
            self._custom_baseline = np.array(baseline, dtype=np.float32)
            baseline = CUSTOM_BASELINE
        self._model = model
        self._preprocess = preprocess
        requested = {"steps": steps, "baseline": baseline, "runs": runs, "method": method}
        compute_options = {**compute_traits(self._engine_options(requested), baseline), **methods}
        checked_target = check_target(target)
        assert checked_target is None or isinstance(checked_target, int)  # refused just above
        # The engine's one forward pass at the image: the class count comes
        # from it, and every computation on this image reuses it. A stored
        # result shown without a model brings its own scores.
        prepared = None
        if model is None:
            assert result is not None  # checked with the model above
            check_class_count(self._class_names, len(result.scores))
            against = result.against
        else:
            options = self._engine_options(compute_options)
            prepared = engine.prepare(model, shown_image.pixels, options)
            check_class_count(self._class_names, prepared.classes)
            if checked_target is not None or against is not None:
                # A contrast with the top class needs the top class first.
                checked_target = prepared.target_index(checked_target)
                against = check_against(against, checked_target, prepared.classes)

        self._fallback = snapshots.FallbackPng()
        if result is None:
            assert prepared is not None  # without a result there is a model
            choice = class_choice(checked_target, against)
            explanation = self._explain(prepared, compute_options, choice, progress=None)
        else:
            explanation = Explanation(
                result,
                result.gradients if isinstance(result, IGResult) else None,
                explainer=methods["explainer"],
            )
        request = {**compute_options, **self._class_request(explanation.result)}
        self._shown = self._shown_result(shown_image, prepared, explanation, request)
        super().__init__(
            **display_traits(display_options),
            **compute_options,
            explainer_choices=[[name, TITLES[name]] for name in self._offered],
            **self._class_request(explanation.result),
            compute_enabled=model is not None,
            **self._shown.traits,
        )
        self.on_msg(self._handle_front_end_message)

    # -- the shown result ------------------------------------------------------

    @property
    def result(self) -> IGResult | AttributionResult:
        """The shown result of the ``explainer`` method (the latest that completed):
        an ``IGResult`` for integrated gradients, an ``AttributionResult`` otherwise."""
        return self._shown.result

    @property
    def compared(self) -> IGResult | AttributionResult | None:
        """The shown result of the ``compare`` method; None when compare is off."""
        return self._shown.explanation.compared

    def _label(self, index: int) -> str:
        return self._class_names[index] if self._class_names is not None else f"class {index}"

    def _shown_result(
        self,
        image: ShownImage,
        prepared: PreparedInput | None,
        explanation: Explanation,
        request: dict[str, Any],
    ) -> ShownResult:
        return shown_result(image, prepared, explanation, request, self._label, self._top_k)

    def checked_options(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Check ``changes`` together with the other current options; return all, normalised."""
        named = {name: self._indexed(changes[name]) for name in CLASS_CHOICE if name in changes}
        return checked_options(
            self.current_options(),
            {**changes, **named},
            self._custom_baseline,
            self._shown.prepared,
            self._offered,
        )

    def _indexed(self, value: Any) -> Any:
        """A class given by its name in ``class_names`` as its index; anything else as is."""
        return check_target(value, self._class_names) if isinstance(value, str) else value

    @staticmethod
    def _class_request(result: IGResult | AttributionResult) -> dict[str, int | None]:
        """The class menus' values that ask for ``result``."""
        return {"target": result.target, "against": result.against}

    @traitlets.observe(*COMPUTE_OPTIONS, *CLASS_CHOICE)
    def _mark_stale(self, _change: dict[str, Any]) -> None:
        # Under the lock the background thread shows a result and sets stale
        # with: an option assigned meanwhile is compared again after it is
        # done, not overwritten by its comparison with the options before.
        with self.sync_lock:
            self.stale = self.request() != self._shown.request

    # -- computing ---------------------------------------------------------------

    def _engine_options(self, options: dict[str, Any], target: Target = None) -> IGOptions:
        return engine_options(
            options,
            self._custom_baseline,
            target=self._regional(target),
            preprocess=self._preprocess,
        )

    def _regional(self, target: Target) -> Target:
        """The engine's target for the class menus' ``target``: with a region target,
        that class's scores in the region."""
        region = self._region
        if region is None or isinstance(target, Region):
            return target
        if isinstance(target, tuple):
            raise ValueError(
                f"against: a region target explains one class, got against={target[1]}"
            )
        return region if target is None else dataclasses.replace(region, class_=target)

    @property
    def region(self) -> Region | None:
        """The shown result's region target, its class the class menu's (None: a class's
        score). Assigning one recomputes, blocking, with its class; one the model refuses
        (a mask not the score map's size, a box outside it) raises, and the widget keeps
        its region and result."""
        return self.result.region

    @region.setter
    def region(self, region: Region | None) -> None:
        if region is not None and not isinstance(region, Region):
            raise TypeError(f"region: expected an igw.Region or None, got {type(region).__name__}")
        if region is not None:
            region = region.named(self._class_names)
        previous = self._region
        self._region = region
        try:
            if region is not None:
                self.target, self.against = region.class_, None
            # The engine's one forward pass reduces the score map over the region,
            # so the image is prepared again (as a new image is).
            self._runner.run_after_background(self._job(self._shown.image), self._restore_target)
        except BaseException:
            self._region = previous
            raise

    def _explain(
        self,
        prepared: PreparedInput,
        options: dict[str, Any],
        target: Target,
        progress: ProgressCallback | None,
    ) -> Explanation:
        """The methods ``options`` ask for, on ``prepared``'s image, for ``target``
        (None: the top class; a pair: a contrast), with their curves where they are shown."""
        chosen = self._regional(
            class_choice(*prepared.classifier.split(prepared.target_index(target)))
        )
        engine_options = self._engine_options(options, chosen)
        names = [options["explainer"], *([options["compare"]] if options["compare"] else [])]
        with_curves = names != [IG]
        labels = [TITLES[name] for name in names]
        if with_curves:
            labels += [f"{TITLES[name]}: insertion and deletion" for name in names]
        stages = (
            Stages(progress, self._announce_stage, labels)
            if progress is not None
            else Stages(lambda done, total: None, lambda stage: None, labels)
        )
        pixels = prepared.image
        results: list[Method] = []
        for name in names:
            if name == IG:
                results.append(
                    engine.run(
                        prepared,
                        engine_options,
                        progress=stages.next(),
                        progress_updates=PROGRESS_UPDATES,
                    )
                )
            else:
                results.append(
                    run_method(
                        name,
                        self._model,
                        pixels,
                        engine_options,
                        chosen,
                        self._explainer_options,
                        stages.next(),
                    )
                )
        curves = tuple(
            curve(self._model, pixels, result, name, engine_options, stages.next())
            for name, result in zip(names, results, strict=True)
            if with_curves
        )
        first = results[0]
        gradients = (
            first.gradients
            if isinstance(first, IGResult)
            else engine.gradients(
                self._model,
                pixels,
                target=chosen,
                preprocess=self._preprocess,
                precision=engine_options.precision,
            )
        )
        return Explanation(
            result=first,
            gradients=gradients,
            explainer=names[0],
            compared=results[1] if len(results) > 1 else None,
            compare=options["compare"],
            curves=curves,
        )

    def _announce_stage(self, stage: str) -> None:
        with self.sync_lock:
            self.progress_stage = stage

    def _job(
        self, image: ShownImage | None = None, top_class: bool = False
    ) -> Callable[[ProgressCallback], IGResult | AttributionResult]:
        """The computation the options ask for now, and showing its result.

        ``image``: a new image to explain instead of the shown one; with
        ``top_class`` the engine explains its top class instead of ``target``.
        """
        shown_image = self._shown.image if image is None else image
        request = self.request()
        options = {name: request[name] for name in COMPUTE_OPTIONS}
        # A new image's top class is explained alone: the contrast was chosen for another.
        target = None if top_class else class_choice(request["target"], request["against"])

        def job(progress: ProgressCallback) -> IGResult | AttributionResult:
            if self._shown.prepared is None:
                raise ValueError(NO_MODEL)
            prepared = (
                self._shown.prepared
                if image is None
                else engine.prepare(self._model, shown_image.pixels, self._engine_options(options))
            )
            explanation = self._explain(prepared, options, target, progress)
            result = explanation.result
            done = {**options, **self._class_request(result)}
            shown = self._shown_result(shown_image, prepared, explanation, done)
            with self.sync_lock:
                previous, self._shown = self._shown, shown
                try:
                    self.show(self._shown, previous)
                except BaseException:
                    self._shown = previous
                    raise
                if top_class:
                    with self.hold_trait_notifications():
                        self.target, self.against = result.target, None
                if image is not None:
                    # The strip showed the previous image's check.
                    self._show_sanity(NO_SANITY)
                self.stale = self.request() != done
            return result

        return job

    def _restore_target(self) -> None:
        # The class menus show the explained classes, so they go back with the
        # result after a failure; edited compute options stay, marked stale.
        with self.hold_trait_notifications():
            self.target, self.against = self.result.target, self.result.against

    def compute(self) -> IGResult | AttributionResult | None:
        """Recompute with the current compute options and target, blocking.

        Waits for a background computation to finish first. Errors from the
        model or engine are raised (and shown in the widget); the previous
        result stays.

        Returns
        -------
        The ``explainer`` method's result (``IGResult`` for integrated
        gradients), or None if the computation was cancelled from the browser.

        Examples
        --------
        >>> w.steps = 100  # doctest: +SKIP
        >>> w.compute().delta  # doctest: +SKIP
        """
        return self._runner.run_after_background(self._job(), self._restore_target)

    def sanity_check(
        self, *, layers: int | Sequence[str] | None = None, seed: int = 0
    ) -> SanityCheck | None:
        """Run the model-randomisation sanity check of the shown method and class, blocking,
        and show it under the panels (the Sanity check button runs it in the background).

        ``igw.sanity_check`` on the shown image with the shown result's
        method, options and class; ``layers`` and ``seed`` as there. The
        model is not modified (a copy is randomised).

        Returns
        -------
        SanityCheck, or None if it was cancelled from the browser.

        Examples
        --------
        >>> w.sanity_check(layers=3).spearman_abs  # doctest: +SKIP
        """
        return self._runner.run_after_background(self._sanity_job(layers, seed), lambda: None)

    def _sanity_job(
        self, layers: int | Sequence[str] | None = None, seed: int = 0
    ) -> Callable[[ProgressCallback], SanityCheck]:
        from ..sanity import sanity_check

        shown = self._shown

        def job(progress: ProgressCallback) -> SanityCheck:
            if shown.prepared is None:
                raise ValueError(NO_MODEL)
            # The shown target whole: a contrast or a region explained at every step.
            target = shown.result.given_target
            options = self._engine_options(shown.request, target)
            name = shown.explanation.explainer
            settings = method_settings(name, options, self._explainer_options)
            self._announce_stage(f"{SANITY_STAGE} of {TITLES[name]}")
            try:
                check = sanity_check(
                    self._model,
                    shown.image.pixels,
                    name,
                    layers=layers,
                    seed=seed,
                    target=target,
                    preprocess=self._preprocess,
                    precision=options.precision,
                    progress=progress,
                    options=settings,
                )
            finally:
                # The next computation's note must not read as a sanity check.
                self._announce_stage("")
            label = (
                self._label(target)
                if isinstance(target, int)
                else explained_words(shown.result, self._label, region=True)
            )
            traits = sanity_traits(check, shown.image, label)
            with self.sync_lock:
                if self._shown.image is shown.image:
                    self._show_sanity(traits)
            return check

        return job

    def _show_sanity(self, traits: dict[str, Any]) -> None:
        with self.hold_sync():
            for name, value in traits.items():
                setattr(self, name, value)

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

    def set_image(
        self, image: Any, *, target: int | str | None = None
    ) -> IGResult | AttributionResult | None:
        """Explain another image with the current options, blocking; show it with its result.

        Parameters
        ----------
        image : array, PIL image or path
            As for ``igw.integrated_gradients``; its size may differ from the
            shown one's.
        target : int or str, optional
            Class to explain (index or name); default the new image's top predicted
            class.

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
        if self._shown.prepared is None:
            raise ValueError(NO_MODEL)
        new = ShownImage.of(image)
        if target is not None:
            # The same model: the shown image's forward pass knows its classes.
            target = self._shown.prepared.target_index(self._indexed(target))
        if self._custom_baseline is not None and self.baseline == CUSTOM_BASELINE:
            try:
                single_baseline(new.pixels, self._custom_baseline)
            except ValueError as exc:
                raise ValueError(
                    f"image: shape {new.pixels.shape} does not fit the custom baseline ({exc}); "
                    "choose another baseline first"
                ) from exc
        self._runner.wait()
        if target is not None:
            self.target = target
        job = self._job(new, top_class=target is None)
        return self._runner.run_after_background(job, self._restore_target)

    def set_state(self, sync_data: dict[str, Any]) -> dict[str, Any]:
        """Apply a state update from the browser; a newly chosen class is computed at once."""
        previous = {name: getattr(self, name) for name in CLASS_CHOICE}
        accepted = super().set_state(sync_data)
        if any(name in accepted and accepted[name] != previous[name] for name in CLASS_CHOICE):
            self._runner.start(self._job(), self._restore_target)
        return accepted

    def _handle_front_end_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "compute":
            self._runner.start(self._job(), self._restore_target)
        elif kind == "stability":
            self._runner.start(self._stability_job(STABILITY_DRAWS), lambda: None)
        elif kind == "sanity":
            self._runner.start(self._sanity_job(), lambda: None)
        elif kind == "cancel":
            self._runner.cancel(wait=False)
        else:
            ignore_message(
                self,
                "expected a 'compute', 'stability', 'sanity' or 'cancel' message, "
                f"got {content!r:.80}",
            )

    def _stability_job(self, draws: int) -> Callable[[ProgressCallback], StabilityResult]:
        """The shown method's stability for the shown result, and showing its spread."""
        shown = self._shown

        def job(progress: ProgressCallback) -> StabilityResult:
            if shown.prepared is None:
                raise ValueError(NO_MODEL)
            name = shown.explanation.explainer
            target = shown.result.given_target
            options = self._engine_options(
                {key: shown.request[key] for key in COMPUTE_OPTIONS}, target
            )
            self._announce_stage(f"{STABILITY_STAGE}: {draws} runs of {TITLES[name]}")
            try:
                result = stability(
                    self._model,
                    shown.image.pixels,
                    method=name,
                    draws=draws,
                    parameters=stability_parameters(name, options, self._explainer_options),
                    target=target,
                    preprocess=self._preprocess,
                    precision=options.precision,
                    progress=progress,
                )
            finally:
                # The busy note reads the stage: the next computation is not these runs.
                self._announce_stage("")
            with self.sync_lock, self.hold_sync():
                # A result shown meanwhile is not the one measured: it keeps no spread.
                if self._shown is shown:
                    for trait, value in stability_traits(result, shown.image).items():
                        setattr(self, trait, value)
            return result

        return job

    def compute_stability(self, draws: int = STABILITY_DRAWS) -> StabilityResult | None:
        """Run the shown method ``draws`` times (``igw.stability``) and show its spread.

        The runs differ by their seed: uniform-noise baselines for integrated
        gradients, Guided IG, occlusion and XRAI, the noise of SmoothGrad, the references drawn
        by Expected Gradients; the other options are the shown result's (Blur
        IG has no seed: the browser greys its button). The spread panel
        shows the per-pixel standard deviation, and its caption the mean rank
        correlation and the share of top pixels that stay top; a new result
        clears it. The browser's Stability button runs the same with 5 draws.

        Returns
        -------
        StabilityResult, or None if it was cancelled from the browser.

        Examples
        --------
        >>> w.compute_stability().rank_correlation  # doctest: +SKIP
        0.83
        """
        draws = check_int("draws", draws, low=2)
        return self._runner.run_after_background(self._stability_job(draws), lambda: None)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a background computation ends; False if ``timeout`` passed first.

        Examples
        --------
        >>> w.wait(timeout=60)  # doctest: +SKIP
        True
        """
        return self._runner.wait(timeout)

    def cancel(self, wait: bool = True) -> None:
        """Stop a background computation after its current batch; the previous result stays.

        Examples
        --------
        >>> w.cancel()  # doctest: +SKIP
        """
        self._runner.cancel(wait)

    def close(self) -> None:
        """Close the views and stop a background computation after its current batch.

        Examples
        --------
        >>> w.close()  # doctest: +SKIP
        """
        self._runner.cancel(wait=False)
        super().close()

    # -- snapshots -----------------------------------------------------------------

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
        return export.write_file(
            path,
            lambda: snapshots.panels_png(self._shown, self.render_options()),
            export.PNG_SUFFIXES,
        )

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
        # The view's own state: the display options (DisplayOptions) and the rest
        # (WidgetState), without anywidget's and ipywidgets' traits.
        synced = [
            name
            for owner in (DisplayOptions, WidgetState)
            for name in owner.class_own_traits(sync=True)
            if name[0] != "_"
        ]
        return export.write_file(
            path, lambda: snapshots.page(self.get_state(key=synced)), export.HTML_SUFFIXES
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        picture = self._fallback.base64(self._shown, self.render_options())
        return {**data, "image/png": picture}, metadata

    def _ipython_display_(self) -> None:
        # A notebook saved with its widget state (nbconvert --execute, nbclient) is
        # shown by nbconvert as the widget view alone, whose code comes from a CDN:
        # offline the page stayed blank, the PNG above unused. A second output holds
        # the panels, hidden unless that view was left unrendered (snapshots.static_html).
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if bundle is None:
            return
        data, metadata = bundle
        display(data, metadata=metadata, raw=True)
        text = snapshots.heading(self._shown.traits["summary"])
        display({"text/html": snapshots.static_html(data["image/png"], text)}, raw=True)
