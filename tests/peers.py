"""What the peer libraries need to run on this environment's NumPy 2 (tests and benchmarks)."""

from __future__ import annotations

from typing import Any

import numpy as np


class NumPy2Quantile:
    """NumPy, with ``quantile``'s ``interpolation=`` spelled ``method=`` (NumPy 2 dropped the
    old name; PAIR saliency 0.2.1's Guided IG still uses it). Put in place of the ``np`` of
    ``saliency.core.guided_ig``.

    Examples
    --------
    >>> float(NumPy2Quantile().quantile(np.arange(10.0), 0.25, interpolation="lower"))
    2.0
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def quantile(values: Any, q: Any, interpolation: str = "linear", **kwargs: Any) -> Any:
        return np.quantile(values, q, method=interpolation, **kwargs)
