"""Guided IG's adaptive path (Kapishnikov et al. 2021, "Guided Integrated Gradients:
an Adaptive Path Method for Removing Noise"), as NumPy arithmetic.

The path starts at the baseline. At each of ``steps`` steps, given the
gradient at the current point, the features with the smallest absolute
gradient (a ``fraction`` of them) move towards the input until the L1
distance to the input has shrunk by ``1 / steps`` of the total; no feature
strays more than ``max_dist`` (in alpha, relative to the straight line) from
the straight path. The attribution of a feature is the sum of its moves times
the gradient at the point where the move was decided.

The arithmetic repeats PAIR saliency's ``guided_ig_impl`` operation for
operation (float64 throughout, the same comparisons), so the same gradients
give the same path and attributions; only the gradients come from the
engine's batched evaluator, one point per step.
"""

from __future__ import annotations

import math

import numpy as np

# PAIR's tolerance for "the step's L1 target is reached".
EPSILON = 1e-9


class GuidedPath:
    """The state of one Guided IG path: call ``advance(gradient_at(point))`` ``steps`` times.

    Examples
    --------
    A linear score ``w . x``: the path ends at the input and the attributions
    sum to the score's change (they are ``w * (x - x')`` whatever the path).

    >>> w = np.array([1.0, -2.0, 0.5, 3.0])
    >>> path = GuidedPath(np.array([4.0, 1.0, 2.0, 3.0]), np.zeros(4), steps=10)
    >>> for _ in range(10):
    ...     path.advance(w)
    >>> path.point.tolist(), path.attributions.tolist()
    ([4.0, 1.0, 2.0, 3.0], [4.0, -2.0, 1.0, 9.0])
    """

    def __init__(
        self,
        image: np.ndarray,
        baseline: np.ndarray,
        *,
        steps: int,
        fraction: float = 0.25,
        max_dist: float = 0.02,
    ) -> None:
        self.image = np.asarray(image, np.float64)
        self.baseline = np.asarray(baseline, np.float64)
        self.steps = steps
        self.fraction = fraction
        self.max_dist = max_dist
        self.point = self.baseline.copy()
        self.attributions = np.zeros_like(self.image)
        self.step = 0
        self._total_difference = self.image - self.baseline
        self._l1_total = float(np.abs(self._total_difference).sum())

    def _at(self, alpha: float) -> np.ndarray:
        return self.baseline + self._total_difference * alpha

    def _alphas(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(
                self._total_difference != 0,
                (self.point - self.baseline) / self._total_difference,
                np.nan,
            )

    def advance(self, gradient: np.ndarray) -> None:
        """Take the next step, given the gradient at ``self.point``."""
        self.step += 1
        if self._l1_total == 0:  # the input is the baseline: nothing to attribute
            return
        gradient = np.asarray(gradient, np.float64)
        ranked = gradient.copy()
        alpha = self.step / self.steps
        alpha_min = max(alpha - self.max_dist, 0.0)
        alpha_max = min(alpha + self.max_dist, 1.0)
        x_min, x_max = self._at(alpha_min), self._at(alpha_max)
        l1_target = self._l1_total * (1 - self.step / self.steps)
        x = self.point
        gamma = math.inf
        while gamma > 1.0:
            x_old = x.copy()
            alphas = self._alphas()
            alphas[np.isnan(alphas)] = alpha_max
            behind = alphas < alpha_min
            x[behind] = x_min[behind]
            l1_current = float(np.abs(x - self.image).sum())
            if math.isclose(l1_target, l1_current, rel_tol=EPSILON, abs_tol=EPSILON):
                self.attributions += (x - x_old) * gradient
                break
            # Features already at the step's upper bound are not selected.
            ranked[x == x_max] = np.inf
            magnitude = np.abs(ranked)
            threshold = np.quantile(magnitude, self.fraction, method="lower")
            selected = (magnitude <= threshold) & (ranked != np.inf)
            l1_selected = float((np.abs(x - x_max) * selected).sum())
            gamma = (l1_current - l1_target) / l1_selected if l1_selected > 0 else math.inf
            if gamma > 1.0:
                x[selected] = x_max[selected]
            else:
                moved = x + (x_max - x) * gamma
                x[selected] = moved[selected]
            self.attributions += (x - x_old) * gradient
