"""Attribution methods besides integrated gradients, on the same batched backends.

One small function per method, as in PAIR saliency, each returning an
``AttributionResult`` (attributions, the method and its parameters, target,
scores, points used, elapsed time), each with ``progress`` and cancellation,
each checking its input before the model runs:

- ``smoothgrad``: SmoothGrad, SmoothGrad-squared and VarGrad of gradients or
  of integrated gradients;
- ``expected_gradients``: integrated gradients over baselines drawn from reference images;
- ``blur_ig``: integrated gradients along a blur path;
- ``guided_ig``: integrated gradients along an adaptive path;
- ``xrai``: attributions summed into ranked image regions.

``EXPLAINERS`` maps each name (and ``"integrated_gradients"``) to its
function, for menus and loops over methods.
"""

from __future__ import annotations

from ..engine import integrated_gradients
from .base import AttributionResult, Explainer
from .blur_ig import blur_ig
from .expected_gradients import expected_gradients
from .guided_ig import guided_ig
from .smoothgrad import smoothgrad
from .xrai import XRAIResult, xrai

EXPLAINERS: dict[str, Explainer] = {
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "expected_gradients": expected_gradients,
    "blur_ig": blur_ig,
    "guided_ig": guided_ig,
    "xrai": xrai,
}

__all__ = [
    "EXPLAINERS",
    "AttributionResult",
    "XRAIResult",
    "blur_ig",
    "expected_gradients",
    "guided_ig",
    "smoothgrad",
    "xrai",
]
