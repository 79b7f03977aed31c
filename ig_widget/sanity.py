"""The model-randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018).

An attribution method that explains the model should give a different map
once the model's weights are destroyed. ``sanity_check`` copies the model,
then re-initialises its trainable layers one more at a time from the output
down (cascading randomisation), computes the method's map after each step,
and measures how similar each map is to the original one: Spearman rank
correlation of the absolute and of the signed per-pixel maps, and the
structural similarity (SSIM) of the absolute maps. A map that stays similar
while the layers that decide the class are random shows the image's edges
rather than what the model uses.

The user's model is never touched: a Keras model is cloned
(``keras.models.clone_model`` with its weights set), a ``torch.nn.Module``
deep-copied, and only the copy is randomised.

Randomisation, the same on every framework and Keras backend: each trainable
weight array of a layer is replaced by independent normal draws with that
array's own mean and standard deviation (so activations keep their scale),
drawn in the layer's weight order from
``numpy.random.default_rng([seed, step])`` where ``step`` counts the
randomised layers from 1 at the top. A constant array (a fresh bias of
zeros) stays what it is.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends import framework_of, is_keras_model
from .explainers import REGISTRY
from .options import check_callable
from .points import ProgressCallback
from .report_section import Picture, ReportSection, Table
from .validation import as_image, check_choice, check_int

# Parameters sanity_check passes to the method itself.
_OWN = ("target", "preprocess", "progress", "precision")
# skimage.metrics.structural_similarity's defaults (Wang et al. 2004).
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True, eq=False)
class SanityCheck:
    """The maps of a cascading model randomisation and their similarity to the original.

    Attributes
    ----------
    method : str
        The checked method (a key of ``ig_widget.explainers.REGISTRY``).
    layers : tuple of str
        The randomised layers, top (output) first: step ``i`` has
        ``layers[:i]`` random.
    maps : ndarray, float32, (len(layers) + 1, H, W, C)
        The method's map at each step; ``maps[0]`` is the original model's.
    spearman_abs, spearman : ndarray, float64, (len(layers) + 1,)
        Spearman rank correlation of each step's per-pixel map with the
        original's: of the channel sums of absolute values, and of the signed
        channel sums. NaN where a map is constant.
    ssim : ndarray, float64, (len(layers) + 1,)
        Structural similarity of the absolute per-pixel maps, each scaled to
        [0, 1] by its maximum (``ssim``).
    target : int
        The explained class, the original model's, kept at every step.
    image : ndarray, float32, (H, W, C)
        The explained image (for pictures of the maps).
    seed : int
        The randomisation's seed.
    elapsed_s : float
        Wall time of the whole check.
    explained : str
        What every step explained, in words (``IGResult.explained``: a contrast or a
        region named).
    """

    method: str
    layers: tuple[str, ...]
    maps: np.ndarray
    spearman_abs: np.ndarray
    spearman: np.ndarray
    ssim: np.ndarray
    target: int
    image: np.ndarray
    seed: int
    elapsed_s: float
    explained: str

    @property
    def steps(self) -> tuple[str, ...]:
        """A label per map: ``"original"``, then each step's newly randomised layer."""
        return ("original", *self.layers)

    @property
    def final_similarity(self) -> float:
        """``spearman_abs`` after every listed layer is random (the dataset column)."""
        return float(self.spearman_abs[-1])

    def report_section(self) -> ReportSection:
        """The cascade as pictures (the project's renderer) with the similarities under each."""
        from .render import render

        title = REGISTRY[self.method].title
        pictures = []
        for index, label in enumerate(self.steps):
            rgb = render(self.image, self.maps[index])
            caption = f"{label}: {similarity_text(self, index)}"
            pictures.append(Picture(caption, _png(rgb)))
        rows = tuple(
            (
                label,
                float(self.spearman_abs[i]),
                float(self.spearman[i]),
                float(self.ssim[i]),
            )
            for i, label in enumerate(self.steps)
        )
        summary = (
            f"{title} for {self.explained}, with the model's trainable layers re-initialised "
            "one more at a time from the output down (Adebayo et al. 2018, cascading "
            f"randomisation, seed {self.seed}).",
            "A method that explains the model gives maps unlike the original once the "
            f"layers are random; after all {len(self.layers)} layers the rank correlation of "
            f"the absolute maps is {_number(self.final_similarity)}.",
        )
        table = Table(
            "Similarity of each step's map to the original",
            ("randomised down to", "Spearman (absolute)", "Spearman (signed)", "SSIM"),
            rows,
        )
        return ReportSection(
            "Sanity check: model randomisation", summary, (table,), tuple(pictures)
        )


def _number(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.2f}"


def similarity_text(check: SanityCheck, index: int) -> str:
    """The similarities of step ``index`` in one line (under its picture).

    Examples
    --------
    >>> ones = np.ones(2)
    >>> check = SanityCheck("integrated_gradients", ("dense",), np.zeros((2, 1, 1, 1)), ones,
    ...                     ones * 0.5, np.array([1.0, np.nan]), 0, np.zeros((1, 1, 1)), 0, 0.0,
    ...                     "class 0")
    >>> similarity_text(check, 1)
    'Spearman 1.00 (signed 0.50), SSIM n/a'
    """
    return (
        f"Spearman {_number(check.spearman_abs[index])} "
        f"(signed {_number(check.spearman[index])}), SSIM {_number(check.ssim[index])}"
    )


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


# --- similarity -------------------------------------------------------------------------


def pixel_maps(attributions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel absolute (sum of ``|a|`` over channels) and signed (sum of ``a``) maps.

    Examples
    --------
    >>> absolute, signed = pixel_maps(np.array([[[1.0, -3.0]]]))
    >>> float(absolute[0, 0]), float(signed[0, 0])
    (4.0, -2.0)
    """
    values = np.asarray(attributions, np.float64)
    if values.ndim == 2:
        values = values[:, :, None]
    return np.abs(values).sum(axis=2), values.sum(axis=2)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties share their mean rank); NaN if one is constant.

    Examples
    --------
    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
    """
    from scipy.stats import rankdata

    x, y = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    x -= x.mean()
    y -= y.mean()
    norm = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / norm) if norm > 0 else float("nan")


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity of two 2-D maps, as ``skimage.metrics.structural_similarity``
    with its defaults (Wang et al. 2004).

    Local means, variances and covariance over a uniform 7 x 7 window (the
    largest odd window that fits on smaller maps) with the sample-covariance
    correction, ``K1 = 0.01``, ``K2 = 0.03``; the mean is taken away from the
    border where the window would leave the map.

    Examples
    --------
    >>> ramp = np.linspace(0, 1, 64).reshape(8, 8)
    >>> ssim(ramp, ramp)
    1.0
    """
    from scipy.ndimage import uniform_filter

    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    window = min(SSIM_WINDOW, *(side if side % 2 else side - 1 for side in x.shape))
    if window < 1:
        return float("nan")
    count = window * window
    correction = count / (count - 1) if count > 1 else 1.0
    mean_x, mean_y = uniform_filter(x, window), uniform_filter(y, window)
    var_x = correction * (uniform_filter(x * x, window) - mean_x * mean_x)
    var_y = correction * (uniform_filter(y * y, window) - mean_y * mean_y)
    cov = correction * (uniform_filter(x * y, window) - mean_x * mean_y)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    local = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    pad = (window - 1) // 2
    inner = local[pad : local.shape[0] - pad, pad : local.shape[1] - pad]
    return float(inner.mean())


def _unit_scaled(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else values


def similarities(original: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """(Spearman of absolute maps, Spearman of signed maps, SSIM of unit-scaled absolute maps)."""
    absolute_a, signed_a = pixel_maps(original)
    absolute_b, signed_b = pixel_maps(other)
    return (
        spearman(absolute_a, absolute_b),
        spearman(signed_a, signed_b),
        ssim(_unit_scaled(absolute_a), _unit_scaled(absolute_b)),
    )


# --- randomisation ----------------------------------------------------------------------


@dataclass
class _Layer:
    """A layer of the copy that owns trainable weights, and how to read and write them."""

    name: str
    read: Callable[[], list[np.ndarray]]
    write: Callable[[list[np.ndarray]], None]


def _keras_layers(model: Any) -> Iterator[Any]:
    """Layers with trainable weights, input first; nested models are opened."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _keras_layers(layer)
        elif layer.trainable_weights:
            yield layer


def _keras_copy(model: Any) -> tuple[Any, list[_Layer]]:
    import keras

    try:
        clone = keras.models.clone_model(model)
    except Exception as error:
        raise TypeError(
            "model: sanity_check copies the model with keras.models.clone_model, which "
            f"failed ({type(error).__name__}: {error}); a subclassed model needs get_config"
        ) from error
    clone.set_weights(model.get_weights())

    def entry(layer: Any) -> _Layer:
        def write(values: list[np.ndarray]) -> None:
            for variable, value in zip(layer.trainable_weights, values, strict=True):
                variable.assign(value)

        return _Layer(
            layer.name,
            lambda: [np.asarray(v.numpy()) for v in layer.trainable_weights],
            write,
        )

    return clone, [entry(layer) for layer in _keras_layers(clone)]


def _torch_copy(model: Any) -> tuple[Any, list[_Layer]]:
    import torch

    clone = copy.deepcopy(model)

    def entry(name: str, module: Any) -> _Layer:
        parameters = [p for p in module.parameters(recurse=False) if p.requires_grad]

        def write(values: list[np.ndarray]) -> None:
            with torch.no_grad():
                for parameter, value in zip(parameters, values, strict=True):
                    parameter.copy_(torch.as_tensor(value, dtype=parameter.dtype))

        return _Layer(
            f"{name or 'model'} ({type(module).__name__})",
            lambda: [p.detach().cpu().float().numpy() for p in parameters],
            write,
        )

    return clone, [
        entry(name, module)
        for name, module in clone.named_modules()
        if any(p.requires_grad for p in module.parameters(recurse=False))
    ]


def check_randomisable(model: Any) -> None:
    """Raise unless ``model`` is a Keras model or a ``torch.nn.Module`` (it has layers to
    re-initialise)."""
    if not (is_keras_model(model) or framework_of(model) == "torch"):
        raise TypeError(
            "model: sanity_check re-initialises layers, so it needs a Keras model or a "
            f"torch.nn.Module, got {type(model).__name__}"
        )


def model_copy(model: Any) -> tuple[Any, list[_Layer]]:
    """A copy of ``model`` and its layers with trainable weights, top (output) first."""
    check_randomisable(model)
    # First: on Keras' PyTorch backend a Keras model is a torch.nn.Module too.
    clone, layers = _keras_copy(model) if is_keras_model(model) else _torch_copy(model)
    if not layers:
        raise ValueError("model: it has no layer with trainable weights to randomise")
    return clone, layers[::-1]


def random_weights(weights: Sequence[np.ndarray], seed: int, step: int) -> list[np.ndarray]:
    """New values for one layer's weights: normal draws with each array's mean and standard
    deviation, from ``numpy.random.default_rng([seed, step])`` in the weights' order.

    Examples
    --------
    >>> new = random_weights([np.array([1.0, 3.0]), np.zeros(3)], seed=0, step=1)
    >>> new[1].tolist()
    [0.0, 0.0, 0.0]
    """
    rng = np.random.default_rng([seed, step])
    drawn = []
    for array in weights:
        values = np.asarray(array, np.float64)
        draw = rng.normal(values.mean(), values.std(), values.shape)
        drawn.append(draw.astype(np.asarray(array).dtype))
    return drawn


def randomised_model(model: Any, seed: int = 0) -> Any:
    """A copy of ``model`` with every trainable layer re-initialised: the model of the
    cascade's last step (the weights depend on each layer alone, so it is the same).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> random = randomised_model(model)
    >>> random is not model and random.get_weights()[0].shape == (2, 1)
    True
    """
    clone, layers = model_copy(model)
    for step, layer in enumerate(layers, start=1):
        layer.write(random_weights(layer.read(), seed, step))
    return clone


def _chosen(layers: list[_Layer], choice: int | Sequence[str] | None) -> list[_Layer]:
    if choice is None:
        return layers
    if isinstance(choice, str) or not isinstance(choice, Sequence):
        count = check_int("layers", choice, low=1, high=len(layers))
        return layers[:count]
    names = [layer.name for layer in layers]
    unknown = [name for name in choice if name not in names]
    if unknown or not choice:
        known = ", ".join(repr(name) for name in names)
        raise ValueError(
            f"layers: expected None, a count or names of layers with trainable weights "
            f"({known}), got {list(choice)!r}"
        )
    return [layer for layer in layers if layer.name in choice]


# --- the check --------------------------------------------------------------------------


def check_method_options(method: str, options: Mapping[str, Any]) -> str:
    """``method`` as a registry name, with ``options`` among its parameters, or raise."""
    method = check_choice("method", method, tuple(REGISTRY))
    parameters = REGISTRY[method].parameters()
    for name in options:
        if name in _OWN or name not in parameters:
            allowed = ", ".join(p for p in parameters if p not in ("model", "image", *_OWN))
            raise TypeError(f"{name}: not an option of {method} (its options: {allowed})")
    return method


def sanity_check(
    model: Any,
    image: Any,
    method: str = "integrated_gradients",
    *,
    layers: int | Sequence[str] | None = None,
    seed: int = 0,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    progress: ProgressCallback | None = None,
    precision: str = "float32",
    options: Mapping[str, Any] | None = None,
) -> SanityCheck:
    """Cascading model randomisation: ``method``'s map as the layers become random, top first.

    Parameters
    ----------
    model : Keras model (any backend) or torch.nn.Module
        Not modified: a copy is randomised.
    image : array, PIL image or path
        One image, as for the method.
    method : str
        A key of ``ig_widget.explainers.REGISTRY`` (``"integrated_gradients"``,
        ``"smoothgrad"``, ...).
    layers : None, int or sequence of str
        The layers to randomise: every layer with trainable weights (None),
        the top ``n``, or these names (``SanityCheck.layers`` lists them);
        always in the model's order from the output down.
    seed : int
        Seed of the random weights; also the method's ``seed`` (its noise or
        baselines) unless given in ``options``, so that the steps differ by
        the weights alone.
    target : int, (int, int) or Region, optional
        Class explained at every step (a contrast or a region as for
        ``integrated_gradients``); default the original model's top class.
    preprocess, precision
        As for the method.
    progress : callable, optional
        ``progress(done, total)`` over the whole cascade; returning ``False``
        cancels with ``ComputationCancelled``.
    options : dict, optional
        The method's own parameters by name (``{"steps": 20}``,
        ``{"samples": 10}``; integrated gradients' ``method`` is its rule).

    Returns
    -------
    SanityCheck

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, use_bias=False, name="logits")])
    >>> check = sanity_check(model, np.ones((4, 4, 1)), options={"steps": 4})
    >>> check.layers, float(check.spearman_abs[0])
    (('logits',), 1.0)
    """
    began = time.perf_counter()
    options = {} if options is None else dict(options)
    method = check_method_options(method, options)
    seed = check_int("seed", seed, low=0)
    check_callable("progress", progress)
    pixels = as_image(image)
    if "seed" in REGISTRY[method].parameters() and options.get("seed") is None:
        # Then the method's noise or random baselines are the same at every step.
        options["seed"] = seed
    clone, all_layers = model_copy(model)
    chosen = _chosen(all_layers, layers)
    function = REGISTRY[method].function
    total_steps = len(chosen) + 1

    def step_progress(step: int) -> ProgressCallback | None:
        if progress is None:
            return None

        def report(done: int, total: int) -> Any:
            return progress(step * total + done, total_steps * total)

        return report

    def explain(step: int, target: Any) -> Any:
        return function(
            clone,
            pixels,
            target=target,
            preprocess=preprocess,
            progress=step_progress(step),
            precision=precision,
            **options,
        )

    original = explain(0, target)
    maps = [np.asarray(original.attributions, np.float32)]
    for step, layer in enumerate(chosen, start=1):
        layer.write(random_weights(layer.read(), seed, step))
        maps.append(np.asarray(explain(step, original.given_target).attributions, np.float32))
    rows = np.array([similarities(maps[0], other) for other in maps], np.float64)
    return SanityCheck(
        method=method,
        layers=tuple(layer.name for layer in chosen),
        maps=np.stack(maps),
        spearman_abs=rows[:, 0],
        spearman=rows[:, 1],
        ssim=rows[:, 2],
        target=int(original.target),
        image=pixels,
        seed=seed,
        elapsed_s=time.perf_counter() - began,
        explained=original.explained,
    )


__all__ = ["SanityCheck", "sanity_check"]
