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
- ``xrai``: attributions summed into ranked image regions;
- ``gradcam`` and ``guided_gradcam``: a layer's activations weighted by their
  mean gradient (times guided backpropagation);
- ``occlusion``: the score's drop when a sliding window is replaced by a baseline.

``REGISTRY`` declares each method once (its function, label and the
widget's compute options it takes); the widget's menus, compare mode and
controls, ``EXPLAINERS`` (name to function, for loops over methods) and the
browser's ``generated.ts`` are read from it. Adding a method is one module
with its function and one entry here (docs/architecture.md shows an example).
"""

from __future__ import annotations

from ..engine import integrated_gradients
from .base import AttributionResult, Explainer, Method
from .blur_ig import blur_ig
from .expected_gradients import expected_gradients
from .gradcam import gradcam, guided_gradcam
from .guided_ig import guided_ig
from .occlusion import occlusion
from .smoothgrad import smoothgrad
from .xrai import XRAIResult, xrai

REGISTRY: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "integrated_gradients",
            integrated_gradients,
            "Integrated gradients",
            ("steps", "baseline", "seed", "method"),
        ),
        Method("smoothgrad", smoothgrad, "SmoothGrad"),
        Method(
            "expected_gradients",
            expected_gradients,
            "Expected gradients",
            requires=("references",),
        ),
        Method("blur_ig", blur_ig, "Blur IG", ("steps",)),
        Method("guided_ig", guided_ig, "Guided IG", ("steps", "baseline", "seed")),
        Method("xrai", xrai, "XRAI", ("steps", "method")),
        Method("gradcam", gradcam, "Grad-CAM"),
        Method("guided_gradcam", guided_gradcam, "Guided Grad-CAM"),
        Method("occlusion", occlusion, "Occlusion", ("baseline", "seed")),
    )
}
EXPLAINERS: dict[str, Explainer] = {name: method.function for name, method in REGISTRY.items()}

__all__ = [
    "EXPLAINERS",
    "REGISTRY",
    "AttributionResult",
    "Explainer",
    "Method",
    "XRAIResult",
    "blur_ig",
    "expected_gradients",
    "gradcam",
    "guided_gradcam",
    "guided_ig",
    "occlusion",
    "smoothgrad",
    "xrai",
]
