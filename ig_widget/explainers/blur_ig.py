"""Blur IG (Xu et al. 2020, "Attribution in Scale and Space").

Integrated gradients along a path of ever stronger Gaussian blur instead of
a straight line from a baseline: from the image (sigma 0) to the image
blurred with ``max_sigma``. With ``B(sigma)`` the blurred image, the path
integral is approximated as PAIR saliency does, a left Riemann sum over
``steps`` sigmas, the path's direction by a finite difference:

    A = -sum_i (sigma_{i+1} - sigma_i) * dF/dx(B(sigma_i))
                                     * (B(sigma_i + grad_step) - B(sigma_i)) / grad_step

so that ``sum(A)`` approaches ``F(x) - F(B(max_sigma))``. In the engine's
terms each step is one directional point at alpha 0 on the line from
``B(sigma_i)`` to ``B(sigma_i + grad_step)``, weighted
``-(sigma_{i+1} - sigma_i) / grad_step``; the blurred rows are made per
batch, so no more than a batch of them is held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..options import IGOptions
from ..points import PointSet, ProgressCallback, evaluate_points
from ..validation import as_image, check_int, check_number
from .base import AttributionResult, start

MAX_STEPS = 10_000
# The widest blur, in multiples of the image's larger side. At 4 sides the
# zero-padded blur of a white image is under 1 % of its brightness (0.99 %,
# measured at 16x16 and 224x224), so wider ones only add work: scipy's kernel
# has 8 * sigma + 1 taps, tens of GB at sigma 1e9.
MAX_SIGMA_PER_SIDE = 4


def blur_sigmas(max_sigma: float, steps: int, sqrt: bool = False) -> np.ndarray:
    """The ``steps + 1`` blur widths of the path, from 0 to ``max_sigma``.

    Evenly spaced, or (``sqrt``) evenly spaced in sigma squared, which puts
    more steps at the small widths where fine detail disappears. (PAIR
    saliency's ``sqrt=True`` takes ``sqrt(i / steps * max_sigma)``, which
    ends at ``sqrt(max_sigma)``; its ``max_sigma=s**2`` is this function's
    ``max_sigma=s``.)

    Examples
    --------
    >>> blur_sigmas(10.0, 4).tolist()
    [0.0, 2.5, 5.0, 7.5, 10.0]
    >>> blur_sigmas(2.0, 4, sqrt=True).round(4).tolist()
    [0.0, 1.0, 1.4142, 1.7321, 2.0]
    """
    fractions = np.arange(steps + 1, dtype=np.float64) / steps
    return max_sigma * np.sqrt(fractions) if sqrt else fractions * max_sigma


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` (H, W, C) blurred per channel with width ``sigma``, zero-padded.

    The padding is PAIR saliency's (``mode="constant"``): the path fades the
    borders towards black, as in the paper's reference code.

    Examples
    --------
    >>> gaussian_blur(np.ones((3, 3, 1), np.float32), 0.0).ravel().tolist() == [1.0] * 9
    True
    """
    from scipy import ndimage

    if sigma == 0:
        return image
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0), mode="constant")


class BlurRows:
    """Rows ``gaussian_blur(image, widths[i])``, computed when a batch asks for them.

    Examples
    --------
    >>> rows = BlurRows(np.ones((4, 4, 1), np.float32), np.array([0.0, 1.0]))
    >>> len(rows), rows.take(np.array([1])).shape
    (2, (1, 4, 4, 1))
    """

    def __init__(self, image: np.ndarray, widths: np.ndarray) -> None:
        self.image = image
        self.widths = widths
        self.shape = tuple(image.shape)

    def __len__(self) -> int:
        return len(self.widths)

    def take(self, indices: np.ndarray) -> np.ndarray:
        return np.stack([gaussian_blur(self.image, self.widths[i]) for i in indices]).astype(
            np.float32
        )


def blur_ig(
    model: Any,
    image: Any,
    *,
    max_sigma: float = 50.0,
    steps: int = 100,
    grad_step: float = 0.01,
    sqrt: bool = False,
    target: Any = None,
    preprocess: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
    precision: str = "float32",
    class_names: Sequence[str] | None = None,
) -> AttributionResult:
    """Blur IG of ``model``'s ``target`` score at ``image``.

    Parameters
    ----------
    model, image, target, preprocess, batch_size, progress, precision, class_names
        As for ``integrated_gradients``.
    max_sigma : float
        Width (pixels) of the strongest blur, where the path ends; PAIR
        saliency's default 50 suits images of a few hundred pixels. At most
        4 times the image's larger side (``MAX_SIGMA_PER_SIDE``), where even
        a white image is blurred to under 1 % of its brightness.
    steps : int
        Riemann steps along the path (one gradient evaluation each).
    grad_step : float
        Sigma increment of the finite difference that gives the path's direction.
    sqrt : bool
        Space the sigmas evenly in sigma squared (``blur_sigmas``).

    Returns
    -------
    AttributionResult
        ``explainer="blur_ig"``; ``parameters`` holds ``max_sigma``,
        ``steps``, ``grad_step`` and ``sqrt``.

    Examples
    --------
    A linear model: the attributions sum to the score's change from the
    fully blurred image to the image.

    >>> import tensorflow as tf
    >>> w = tf.constant(np.linspace(-1, 1, 48, dtype=np.float32).reshape(48, 1))
    >>> model = lambda x: tf.reshape(x, (-1, 48)) @ w
    >>> image = np.arange(48, dtype=np.float32).reshape(4, 4, 3)
    >>> res = blur_ig(model, image, max_sigma=4.0, steps=200)
    >>> change = res.score - float(model(gaussian_blur(image, 4.0)[None])[0, 0])
    >>> bool(abs(res.attributions.sum() - change) < 1e-2 * abs(change))
    True
    """
    max_sigma = check_number("max_sigma", max_sigma)
    converted = as_image(image)
    side = max(converted.shape[:2])
    if not 0 < max_sigma <= MAX_SIGMA_PER_SIDE * side:
        raise ValueError(
            f"max_sigma: expected a number in (0, {MAX_SIGMA_PER_SIDE * side}] "
            f"({MAX_SIGMA_PER_SIDE} times the image's larger side, {side} pixels), "
            f"got {max_sigma:g}"
        )
    steps = check_int("steps", steps, low=1, high=MAX_STEPS)
    grad_step = check_number("grad_step", grad_step, low=0.0)
    if grad_step == 0:
        raise ValueError("grad_step: expected a number > 0, got 0.0")
    if not isinstance(sqrt, (bool, np.bool_)):
        raise TypeError(f"sqrt: expected True or False, got {type(sqrt).__name__} {sqrt!r}")
    options = IGOptions(
        target=target,
        preprocess=preprocess,
        batch_size=batch_size,
        precision=precision,
        class_names=class_names,
    )
    started = start(model, converted, options, progress)
    sigmas = blur_sigmas(max_sigma, steps, bool(sqrt))
    index = np.arange(steps)
    points = PointSet(
        BlurRows(started.image, sigmas[:-1]),
        BlurRows(started.image, sigmas[:-1] + grad_step),
        index,
        index,
        np.zeros(steps),
        -np.diff(sigmas) / grad_step,
        np.ones(steps),
        np.full(steps, started.target),
        np.zeros(steps, np.int64),
        n_segments=1,
        labels=[f"blur sigma {sigma:.6g}" for sigma in sigmas[:-1]],
    )
    sums, _ = evaluate_points(
        started.prepared.classifier,
        points,
        batch_size=started.options.batch_size,
        progress=progress,
    )
    assert sums is not None
    parameters = {
        "max_sigma": max_sigma,
        "steps": steps,
        "grad_step": grad_step,
        "sqrt": bool(sqrt),
    }
    return started.result(sums[0], "blur_ig", parameters, steps)
