"""What one integrated-gradients computation is: its options, validated once.

``IGOptions`` is the single description of a computation that
``integrated_gradients``, ``integrated_gradients_batch`` and the widget all
build and pass around. Every rule about the options lives here, once: the
ranges, "``steps='auto'`` needs ``method='trapezoid'``", which baselines give
distinct runs, what a model and a target may be. Rules that need the image or
the model's output (a baseline array's shape, the target's upper bound) are
checked when the engine prepares the input (``ig_widget.engine.prepare``).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .backends import PRECISIONS
from .baselines import BASELINES, RANDOM_BASELINES
from .quadrature import AUTO_STEPS_METHODS, METHODS
from .validation import check_choice, check_int, check_number, to_numpy

MAX_STEPS = 10_000


def check_model(model: Any) -> Any:
    """Return ``model`` if the engine can call it, or raise naming ``model``.

    Examples
    --------
    >>> check_model("model.keras")
    Traceback (most recent call last):
    ...
    TypeError: model: expected a Keras model or callable, got str
    """
    if model is None or not callable(model):
        raise TypeError(f"model: expected a Keras model or callable, got {type(model).__name__}")
    return model


def check_callable(name: str, value: Any) -> Any:
    """Return ``value`` if it is callable or None, or raise naming ``name``.

    Examples
    --------
    >>> check_callable("preprocess", None) is None
    True
    """
    if value is not None and not callable(value):
        raise TypeError(f"{name}: expected a callable or None, got {type(value).__name__}")
    return value


REDUCTIONS = ("sum", "mean")


@dataclasses.dataclass(frozen=True, eq=False)
class Region:
    """A region target for a segmentation model: one class's scores summed (or
    averaged) over a region of the model's score map.

    The model returns a score map (N, H', W', classes); the explained score
    is ``reduce`` of ``scores[:, region, class_]`` over the map's cells in
    the region. Give the region as a boolean ``mask``, of the score map's
    shape (H', W') or of the image's (H, W), or as a ``box``
    ``(top, left, bottom, right)`` of image pixels, bottom and right
    excluded. On a score map coarser (or finer) than the image, a cell is in
    the region when its centre, in image pixels, lies on a pixel of the box
    or the mask (``weights``). Validated at construction.

    Examples
    --------
    >>> region = Region(class_=2, box=(0, 1, 2, 3), reduce="mean")
    >>> region.weights((3, 4), (3, 4)).tolist()
    [[0.0, 0.25, 0.25, 0.0], [0.0, 0.25, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]]
    >>> Region(class_=0, box=(0, 0, 4, 3)).weights((2, 2), (8, 8)).tolist()  # cells of 4 px
    [[1.0, 0.0], [0.0, 0.0]]
    >>> Region(class_=0, box=(2, 0, 1, 3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: box: expected (top, left, bottom, right) with top < bottom ..., got (2, 0, 1, 3)
    """

    class_: int | str
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    reduce: str = "sum"

    def __post_init__(self) -> None:
        check_choice("reduce", self.reduce, REDUCTIONS)
        if (self.mask is None) == (self.box is None):
            raise ValueError(
                "target: a Region needs one of mask= or box=, got "
                + ("neither" if self.mask is None else "both")
            )
        if isinstance(self.class_, str):
            if not self.class_:
                raise ValueError("class_: expected a class index or name, got ''")
        else:
            object.__setattr__(self, "class_", _class_index("class_", self.class_, None))
        if self.mask is not None:
            mask = to_numpy(self.mask, name="mask")
            if mask.dtype != bool or mask.ndim != 2:
                raise TypeError(
                    f"mask: expected a boolean array (H, W), got {mask.dtype} of shape {mask.shape}"
                )
            if not mask.any():
                raise ValueError("mask: expected at least one pixel in the region, got none")
            mask = mask.copy()
            mask.flags.writeable = False
            object.__setattr__(self, "mask", mask)
        else:
            box = self.box
            if isinstance(box, (str, bytes)) or not isinstance(box, Sequence) or len(box) != 4:
                raise ValueError(f"box: expected (top, left, bottom, right), got {box!r}")
            top, left, bottom, right = (check_int("box", value, low=0) for value in box)
            if not (top < bottom and left < right):
                raise ValueError(
                    "box: expected (top, left, bottom, right) with top < bottom and "
                    f"left < right, got {tuple(box)!r}"
                )
            object.__setattr__(self, "box", (top, left, bottom, right))

    def named(self, class_names: Sequence[str] | None) -> Region:
        """This region with its class as an index (a name looked up in ``class_names``)."""
        if isinstance(self.class_, int):
            return self
        index = _class_index("class_", self.class_, class_names)
        return dataclasses.replace(self, class_=index)

    def box_pixels(self, image_shape: tuple[int, int]) -> np.ndarray:
        """The box as a boolean mask of the image's ``image_shape`` (H, W)."""
        assert self.box is not None
        top, left, bottom, right = self.box
        if bottom > image_shape[0] or right > image_shape[1]:
            raise ValueError(
                f"box: expected a box inside the image {tuple(image_shape)}, got {self.box}"
            )
        inside = np.zeros(image_shape, bool)
        inside[top:bottom, left:right] = True
        return inside

    def weights(self, map_shape: tuple[int, int], image_shape: tuple[int, int]) -> np.ndarray:
        """Each score-map cell's weight in the explained score, float32 ``map_shape``
        (H', W'): 1 inside the region for ``"sum"``, 1 / its cells for ``"mean"``.

        A mask of the map's shape is used as it is. A box, or a mask of the
        image's shape ``image_shape`` (H, W), takes the cells whose centre lies
        on one of its pixels: cell (i, j) has its centre at image pixel
        ``((2 i + 1) H // (2 H'), (2 j + 1) W // (2 W'))`` (so on a map of the
        image's size, the box or mask itself). A region that holds no cell's
        centre is refused, naming ``target``.
        """
        map_shape = (int(map_shape[0]), int(map_shape[1]))
        image_shape = (int(image_shape[0]), int(image_shape[1]))
        if self.mask is not None and self.mask.shape == map_shape:
            inside = self.mask
        else:
            if self.mask is None:
                pixels = self.box_pixels(image_shape)
            elif self.mask.shape == image_shape:
                pixels = self.mask
            else:
                raise ValueError(
                    f"mask: expected the score map's shape {map_shape} or the image's "
                    f"{image_shape}, got {self.mask.shape}"
                )
            rows = (2 * np.arange(map_shape[0]) + 1) * image_shape[0] // (2 * map_shape[0])
            columns = (2 * np.arange(map_shape[1]) + 1) * image_shape[1] // (2 * map_shape[1])
            inside = pixels[np.ix_(rows, columns)]
            if not inside.any():
                raise ValueError(
                    f"target: the region holds no cell centre of the {map_shape[0]} x "
                    f"{map_shape[1]} score map (the image is {image_shape[0]} x "
                    f"{image_shape[1]} pixels); expected a region over at least one centre"
                )
        weights = inside.astype(np.float32)
        return weights / weights.sum() if self.reduce == "mean" else weights

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Region):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None
            and other.mask is not None
            and np.array_equal(self.mask, other.mask)
        )
        return same_mask and (self.class_, self.box, self.reduce) == (
            other.class_,
            other.box,
            other.reduce,
        )

    __hash__ = None  # type: ignore[assignment]


# A checked target: a class index, a contrast (class, against class), a region
# of a score map, or None (the top class).
Target = int | tuple[int, int] | Region | None


def _class_index(name: str, value: Any, class_names: Sequence[str] | None) -> int:
    """One class as an index: an integer (array or tensor) or, given ``class_names``, a name."""
    if isinstance(value, str):
        if class_names is None:
            raise ValueError(
                f"{name}: a class name ({value!r}) needs class_names=[...]; or give class indices"
            )
        if value not in class_names:
            allowed = ", ".join(map(repr, class_names))
            raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
        return list(class_names).index(value)
    if not isinstance(value, numbers.Number) and hasattr(value, "__array__"):
        array = to_numpy(value)
        if array.size != 1:
            raise ValueError(
                f"{name}: expected one class index, got an array of shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"{name}: expected an integer, got a {array.dtype} array {array!r}")
        value = array.reshape(()).item()
    return check_int(name, value, low=0)


def check_target(target: Any, class_names: Sequence[str] | None = None) -> Target:
    """A class index, a contrast or None, from what a user may give as ``target``.

    One class: an int, a NumPy integer, a 0-d or one-element integer array
    or tensor (NumPy, TensorFlow, PyTorch, JAX), or a name in
    ``class_names``. A contrast, "why ``a`` and not ``b``": a tuple ``(a,
    b)`` of two different classes, each given as one class is; it explains
    ``score(a) - score(b)``. The upper bound of an index depends on the
    model and is checked by ``PreparedInput.target_index``.

    Examples
    --------
    >>> check_target(np.array([3])), check_target(None)
    (3, None)
    >>> check_target(("star", 0), class_names=["circle", "star"])
    (1, 0)
    >>> check_target((1, 1))
    Traceback (most recent call last):
    ...
    ValueError: target: expected two different classes (class, against class), got (1, 1)
    """
    if target is None:
        return None
    if isinstance(target, Region):
        return target.named(class_names)
    if isinstance(target, (tuple, list)):
        if len(target) != 2:
            raise ValueError(
                "target: expected one class or a pair (class, against class), "
                f"got a {type(target).__name__} of {len(target)}"
            )
        first = _class_index("target", target[0], class_names)
        against = _class_index("target", target[1], class_names)
        if first == against:
            raise ValueError(
                "target: expected two different classes (class, against class), "
                f"got ({target[0]!r}, {target[1]!r})"
            )
        return first, against
    return _class_index("target", target, class_names)


def check_class_names(class_names: Any) -> list[str] | None:
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


def _check_steps(steps: Any, method: str) -> int | Literal["auto"]:
    if isinstance(steps, str) and steps == "auto":
        if method not in AUTO_STEPS_METHODS:
            raise ValueError(
                f"steps: 'auto' refines nested trapezoid grids and needs method='trapezoid', "
                f"got method={method!r}"
            )
        return "auto"
    return check_int("steps", steps, low=1, high=MAX_STEPS)


def _check_baseline(baseline: Any) -> str | np.ndarray:
    if isinstance(baseline, str):
        return check_choice("baseline", baseline, BASELINES)
    if baseline is None:
        raise TypeError(
            f"baseline: expected one of {', '.join(map(repr, BASELINES))} or an array, got None"
        )
    array = to_numpy(baseline, name="baseline")
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise TypeError(f"baseline: expected an array of real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("baseline: contains NaN or infinite pixel values")
    # The options are immutable; so is the array they hold.
    array.flags.writeable = False
    return array


def _check_pixel_range(pixel_range: Any) -> tuple[float, float]:
    if (
        isinstance(pixel_range, (str, bytes))
        or not isinstance(pixel_range, Sequence)
        or len(pixel_range) != 2
    ):
        raise ValueError(
            f"pixel_range: expected (darkest, brightest), two numbers, got {pixel_range!r}"
        )
    low, high = (check_number("pixel_range", value) for value in pixel_range)
    if not low < high:
        raise ValueError(
            f"pixel_range: expected (darkest, brightest) with darkest < brightest, "
            f"got ({low:g}, {high:g})"
        )
    return low, high


@dataclasses.dataclass(frozen=True, eq=False)
class IGOptions:
    """The options of one integrated-gradients computation, validated at construction.

    Every field is as documented for ``igw.integrated_gradients``. Building an
    ``IGOptions`` (or ``replace``-ing fields) raises ``TypeError`` or
    ``ValueError`` naming the parameter, before any model is called; fields
    are normalised (``steps`` and ``runs`` to ``int``, ``pixel_range`` to two
    floats, an array ``baseline`` to a read-only float32 array).

    Examples
    --------
    >>> options = IGOptions(steps=20, baseline="uniform", runs=4, seed=0)
    >>> options.distinct_runs, options.replace(baseline="black").distinct_runs
    (4, 1)
    >>> options.replace(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps: expected an integer >= 1, got 0
    """

    target: Target | str | tuple[Any, Any] = None
    baseline: str | np.ndarray = "black"
    steps: int | Literal["auto"] = 50
    runs: int = 1
    method: str = "trapezoid"
    preprocess: Callable[[Any], Any] | None = None
    precision: str = "float32"
    batch_size: int | None = None
    seed: int | None = None
    tolerance: float = 0.01
    pixel_range: tuple[float, float] = (0.0, 255.0)
    class_names: Sequence[str] | None = None

    def __post_init__(self) -> None:
        method = check_choice("method", self.method, METHODS)
        names = check_class_names(self.class_names)
        class_names = None if names is None else tuple(names)
        checked = {
            "class_names": class_names,
            "target": check_target(self.target, class_names),
            "baseline": _check_baseline(self.baseline),
            "steps": _check_steps(self.steps, method),
            "runs": check_int("runs", self.runs, low=1, high=MAX_STEPS),
            "method": method,
            "preprocess": check_callable("preprocess", self.preprocess),
            "precision": check_choice("precision", self.precision, PRECISIONS),
            "batch_size": None
            if self.batch_size is None
            else check_int("batch_size", self.batch_size, low=1),
            "seed": None if self.seed is None else check_int("seed", self.seed, low=0),
            "tolerance": check_number("tolerance", self.tolerance, low=0.0),
            "pixel_range": _check_pixel_range(self.pixel_range),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> IGOptions:
        """A copy with ``changes`` applied and everything validated again.

        Examples
        --------
        >>> IGOptions().replace(steps=8).steps
        8
        """
        unknown = sorted(set(changes) - {field.name for field in dataclasses.fields(self)})
        if unknown:
            allowed = ", ".join(field.name for field in dataclasses.fields(self))
            raise TypeError(f"{unknown[0]}: not an option of a computation; expected {allowed}")
        return dataclasses.replace(self, **changes)

    @property
    def distinct_runs(self) -> int:
        """Baselines that differ: ``runs`` for ``"uniform"`` noise (the only random
        baseline), 1 for the others, whose runs are identical and computed once."""
        random = isinstance(self.baseline, str) and self.baseline in RANDOM_BASELINES
        return self.runs if random else 1

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IGOptions):
            return NotImplemented
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
                if not (
                    isinstance(mine, np.ndarray)
                    and isinstance(theirs, np.ndarray)
                    and np.array_equal(mine, theirs)
                ):
                    return False
            elif mine is not theirs and mine != theirs:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]
