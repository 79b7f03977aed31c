"""Integration rules along the straight path from baseline (alpha=0) to image (alpha=1).

Each rule is a set of points ``alphas`` in [0, 1] and weights that sum to 1, so
that ``sum(weights * g(alphas))`` approximates the integral of ``g`` over [0, 1].
"""

from __future__ import annotations

import numpy as np

METHODS = ("trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre")
# steps="auto" refines nested grids, which only these rules have.
AUTO_STEPS_METHODS = ("trapezoid",)


def integration_points(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and weights of an integration rule with ``steps`` intervals.

    Parameters
    ----------
    method : str
        One of ``METHODS``. ``"trapezoid"`` evaluates ``steps + 1`` points (as
        the reference does); the Riemann rules and ``"gausslegendre"``
        evaluate ``steps`` points.
    steps : int
        Number of intervals (Gauss-Legendre: number of nodes), >= 1.

    Returns
    -------
    alphas, weights : ndarray of float64
        Ascending alphas in [0, 1]; weights sum to 1.

    Examples
    --------
    >>> alphas, weights = integration_points("trapezoid", 2)
    >>> alphas.tolist(), weights.tolist()
    ([0.0, 0.5, 1.0], [0.25, 0.5, 0.25])
    """
    n = steps
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, n + 1)
        weights = np.full(n + 1, 1.0 / n)
        weights[[0, -1]] = 0.5 / n
    elif method == "riemann_left":
        alphas, weights = np.arange(n) / n, np.full(n, 1.0 / n)
    elif method == "riemann_right":
        alphas, weights = np.arange(1, n + 1) / n, np.full(n, 1.0 / n)
    elif method == "riemann_middle":
        alphas, weights = (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
    elif method == "gausslegendre":
        nodes, node_weights = np.polynomial.legendre.leggauss(n)
        alphas, weights = (nodes + 1.0) / 2.0, node_weights / 2.0
    else:
        raise ValueError(f"method: expected one of {', '.join(map(repr, METHODS))}, got {method!r}")
    return alphas, weights


def trapezoid_refinement(intervals: int) -> np.ndarray:
    """Alphas that refine a ``intervals``-interval trapezoid grid to ``2 * intervals``.

    These are the midpoints of the current grid; each gets weight 1 in the
    unnormalised trapezoid sum, so every earlier evaluation is reused.

    Examples
    --------
    >>> trapezoid_refinement(2).tolist()
    [0.25, 0.75]
    """
    return (np.arange(intervals) + 0.5) / intervals
