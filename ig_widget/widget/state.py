"""The widget's synced state: typed traits, their checks, and the gate for browser updates.

Every trait the browser sees is declared here with its type. Options
(display, compute, target) are checked on every assignment with the
project's messages (``"polarity: expected one of ..."``): the trait types
below run the same checks for Python assignments that ``set_state`` runs for
the browser's. Values that show a result are set together by ``show``, which
puts the previous ones back if sending them fails.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import traitlets

from ..baselines import BASELINES
from ..quadrature import METHODS
from ..render import POLARITIES, RENDER_DEFAULTS, STYLES
from .frontend import FrontEnd
from .methods import EXPLAINER_NAMES, IG, NO_COMPARE, Curve
from .options import (
    CLASS_CHOICE,
    COMPUTE_OPTIONS,
    CUSTOM_BASELINE,
    DISPLAY_TRAITS,
    FRONT_END_OPTIONS,
    checked_display,
    render_options_of,
)
from .shown import (
    NO_SANITY,
    ClassEntry,
    PathData,
    SanityData,
    ShownResult,
    StabilityShown,
    Summary,
)

if TYPE_CHECKING:
    import anywidget

# Messages no front end of this package sends (a hand-made or foreign one)
# are ignored and reported here, not raised out of the comm handler.
logger = logging.getLogger("ig_widget.widget")


def ignore_message(widget: object, problem: str) -> None:
    """Log that ``widget`` ignored a message from the browser, and why.

    Examples
    --------
    >>> ignore_message(object(), "indices: expected a list")  # doctest: +SKIP
    """
    logger.warning("%s: ignored a message from the browser: %s", type(widget).__name__, problem)


def split_update(
    sync_data: dict[str, Any], allowed: Iterable[str]
) -> tuple[dict[str, Any], list[str], str]:
    """A browser update's names the browser may change, the others, and why those are refused.

    Examples
    --------
    >>> split_update({"polarity": "positive", "steps": 9}, ["polarity"])
    ({'polarity': 'positive'}, ['steps'], 'steps: cannot be changed from the browser')
    """
    allowed = set(allowed)
    accepted = {name: value for name, value in sync_data.items() if name in allowed}
    refused = [name for name in sync_data if name not in allowed]
    problem = f"{refused[0]}: cannot be changed from the browser" if refused else ""
    return accepted, refused, problem


def send_back(widget: anywidget.AnyWidget, refused: list[str]) -> None:
    """Send the browser the kept values of the ``refused`` names of a state update.

    A name that is no synced trait (``__class__`` in a hand-made message) has
    no value to send back: it is logged and ignored.
    """
    synced = widget.traits(sync=True)
    unknown = [name for name in refused if name not in synced]
    if unknown:
        ignore_message(widget, f"{unknown[0]!r} is not a synced value")
    if kept := [name for name in refused if name in synced]:
        widget.send_state(kept)


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
            value = obj.checked_options({self.name: value})[self.name]
        return super().validate(obj, value)  # type: ignore[misc]


class _Choice(_Checked, traitlets.Enum):
    """One of a fixed set of strings."""


class _Number(_Checked, traitlets.Float):
    """A finite float."""


class _Integer(_Checked, traitlets.Int):
    """An int."""


class _OptionalInteger(_Checked, traitlets.Int):
    """An int, or None."""

    def __init__(self) -> None:
        super().__init__(None, allow_none=True)


class _Flag(_Checked, traitlets.Bool):
    """True or False."""


class _Color(_Checked, traitlets.Tuple):
    """Three ints (R, G, B) in 0..255, or None for the style's colour."""

    def __init__(self, default: tuple[int, int, int] | None) -> None:
        channel = traitlets.Int()
        super().__init__(channel, channel, channel, default_value=default, allow_none=True)


class _Steps(_Checked, traitlets.Union):
    """An int, or "auto"."""


class DisplayOptions(traitlets.HasTraits):
    """igw.render's options as typed synced traits, checked on every assignment.

    Shared by every widget that draws pictures (``IGWidget``, ``Gallery``):
    each says what a valid change is in ``checked_options``, which the
    traits call first, so a bad value (``None`` included) is refused with
    the project's message naming the option.
    """

    # The browser redraws these itself.
    picture_style = _Choice(STYLES, RENDER_DEFAULTS["style"]).tag(sync=True)
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
    positive_color = _Color(RENDER_DEFAULTS["positive_color"]).tag(sync=True)
    negative_color = _Color(RENDER_DEFAULTS["negative_color"]).tag(sync=True)
    patch = _Integer(RENDER_DEFAULTS["patch"]).tag(sync=True)

    def checked_options(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The display options with ``changes``, checked by igw.render's rules; all, normalised.

        A widget with more options (``IGWidget``'s compute options) checks them too.
        """
        current = {trait: getattr(self, trait) for trait in DISPLAY_TRAITS}
        return checked_display({**current, **changes})

    def render_options(self) -> dict[str, Any]:
        """The current display options, as keyword arguments for ``igw.render``.

        Examples
        --------
        >>> igw.render(image, w.result.attributions, **w.render_options())  # doctest: +SKIP
        """
        return render_options_of({name: getattr(self, name) for name in DISPLAY_TRAITS})


class WidgetState(DisplayOptions, FrontEnd):
    """The traits shared with the browser, and the rules for changing them.

    What a valid option is depends on the computation (the model's classes,
    a custom baseline): the subclass says, in ``checked_options``.

    Parameters
    ----------
    **traits
        Initial trait values, already checked.
    """

    FRONT_END = ("widget.js", "widget.css")

    # Compute options: they take effect on the next computation.
    steps = _Steps([traitlets.Int(), traitlets.Enum(["auto"])], default_value=50).tag(sync=True)
    baseline = _Choice((*BASELINES, CUSTOM_BASELINE), "black").tag(sync=True)
    runs = _Integer(1).tag(sync=True)
    method = _Choice(METHODS, "trapezoid").tag(sync=True)
    target = _Integer(0).tag(sync=True)
    # The class the target is contrasted against ("why target and not against"); None: no contrast.
    against = _OptionalInteger().tag(sync=True)
    baseline_choices = traitlets.List(traitlets.Unicode(), list(BASELINES)).tag(sync=True)
    method_choices = traitlets.List(traitlets.Unicode(), list(METHODS)).tag(sync=True)
    # The attribution method of the third panel, and the one compared with it ("": off).
    explainer = _Choice(EXPLAINER_NAMES, IG).tag(sync=True)
    compare = _Choice((NO_COMPARE, *EXPLAINER_NAMES), NO_COMPARE).tag(sync=True)
    # [name, title] of the methods the menus offer.
    explainer_choices = traitlets.List(traitlets.List()).tag(sync=True, ts=list[tuple[str, str]])

    # The shown image and result (see shown.py). ts: the value's Python type,
    # for the browser's generated types (tests/typescript.py).
    classes = traitlets.List(traitlets.List()).tag(sync=True, ts=list[ClassEntry])
    summary = traitlets.Dict().tag(sync=True, ts=Summary)
    path = traitlets.Dict().tag(sync=True, ts=PathData)
    image_size = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    display_size = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    image_rgb = traitlets.Bytes(b"").tag(sync=True)
    gradient_positive = traitlets.Bytes(b"").tag(sync=True)
    gradient_negative = traitlets.Bytes(b"").tag(sync=True)
    explainer_positive = traitlets.Bytes(b"").tag(sync=True)
    explainer_negative = traitlets.Bytes(b"").tag(sync=True)
    compare_positive = traitlets.Bytes(b"").tag(sync=True)
    compare_negative = traitlets.Bytes(b"").tag(sync=True)
    # Insertion and deletion curves of the methods shown (none for IG alone).
    curves = traitlets.List(traitlets.Dict()).tag(sync=True, ts=list[Curve])
    # The shown method's spread over several runs, when asked for (None: not computed).
    stability_shown = traitlets.Dict(allow_none=True, default_value=None).tag(
        sync=True, ts=StabilityShown | None
    )
    stability_spread = traitlets.Bytes(b"").tag(sync=True)
    # A region target's region, outlined on the input (shown.region_traits): uint8 0/1
    # at region_size (the score map's, which may differ from the image's); b"" for none.
    region_mask = traitlets.Bytes(b"").tag(sync=True)
    region_size = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    # The sanity check shown under the panels (shown.sanity_traits; no steps: none).
    sanity = traitlets.Dict(NO_SANITY["sanity"]).tag(sync=True, ts=SanityData)
    sanity_rgb = traitlets.Bytes(b"").tag(sync=True)
    sanity_maps = traitlets.Bytes(b"").tag(sync=True)

    # Status. compute_enabled: False for a stored result shown without a model.
    compute_enabled = traitlets.Bool(True).tag(sync=True)
    computing = traitlets.Bool(False).tag(sync=True)
    progress = traitlets.List(traitlets.Int(), [0, 0], minlen=2, maxlen=2).tag(sync=True)
    # Which computation the progress counts when one Compute runs several
    # (methods, then their curves): "2 of 4: Blur IG"; "" for a single one.
    progress_stage = traitlets.Unicode("").tag(sync=True)
    stale = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **traits: Any) -> None:
        # Browser updates and the background thread change the state in turns.
        self.sync_lock = threading.RLock()
        super().__init__(**traits)

    def current_options(self) -> dict[str, Any]:
        """Every option the browser may change, as it is now."""
        return {name: getattr(self, name) for name in FRONT_END_OPTIONS}

    def set_state(self, sync_data: dict[str, Any]) -> dict[str, Any]:
        """Apply a state update from the browser, refusing invalid or read-only values.

        A refused update leaves the previous values, sends them back to the
        browser and shows the reason in the widget. Returns what was applied.
        """
        with self.sync_lock:
            accepted, refused, problem = split_update(sync_data, FRONT_END_OPTIONS)
            chosen = [name for name in CLASS_CHOICE if name in accepted]
            if self.computing and any(accepted[name] != getattr(self, name) for name in chosen):
                problem = (
                    f"{chosen[0]}: a computation is running; cancel it before choosing a class"
                )
                refused += list(accepted)
                accepted = {}
            if accepted:
                try:
                    normalised = self.checked_options(accepted)
                except (TypeError, ValueError) as exc:
                    problem = str(exc)
                    refused += list(accepted)
                    accepted = {}
                else:
                    accepted = {name: normalised[name] for name in accepted}
            super().set_state(accepted)
            self.error = problem
            send_back(self, refused)
        return accepted

    def request(self) -> dict[str, Any]:
        """The compute options and target a computation started now would use."""
        return {name: getattr(self, name) for name in (*COMPUTE_OPTIONS, *CLASS_CHOICE)}

    def show(self, shown: ShownResult, previous: ShownResult) -> None:
        """Set the values that show ``shown``; if that fails, put ``previous``'s back and raise."""
        try:
            with self.hold_sync():
                for name, value in shown.traits.items():
                    setattr(self, name, value)
        except BaseException:
            with contextlib.suppress(Exception), self.hold_sync():
                for name, value in previous.traits.items():
                    setattr(self, name, value)
            raise
