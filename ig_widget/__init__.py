"""ig-widget: Integrated Gradients for image classifiers, as a live Jupyter widget.

The engine (``integrated_gradients``, ``integrated_gradients_batch``,
``gradients``, ``IGOptions``), the other attribution methods (``smoothgrad``,
``expected_gradients``, ``blur_ig``, ``guided_ig``, ``xrai``), the
faithfulness curves (``insertion_deletion``), the stability of a map over
several runs (``stability``) and the renderer (``render``,
``plot``): importing the package loads only NumPy. SciPy, matplotlib, the
model's framework, the widget stack (anywidget, ipywidgets) and the demo load
on first use, so the engine runs in plain scripts and on machines without
Jupyter.

TensorFlow's C++ start-up lines (CUDA probing, CPU features, oneDNN) would
print above every widget: unless ``TF_CPP_MIN_LOG_LEVEL`` is set already,
importing the package keeps them out (``frameworks.quiet_tensorflow_startup``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .engine import (
    ComputationCancelled,
    IGResult,
    gradients,
    integrated_gradients,
    integrated_gradients_batch,
)
from .explainers import (
    EXPLAINERS,
    AttributionResult,
    XRAIResult,
    blur_ig,
    expected_gradients,
    gradcam,
    guided_gradcam,
    guided_ig,
    occlusion,
    smoothgrad,
    xrai,
)
from .faithfulness import InsertionDeletionResult, insertion_deletion
from .frameworks import quiet_tensorflow_startup
from .options import IGOptions, Region

# Imported eagerly: a lazy ``render`` attribute would be replaced by the
# ``ig_widget.render`` submodule as soon as anything imports that module.
from .render import plot, render
from .stability import StabilityResult, stability

# Before anything (the package or the user) imports TensorFlow.
quiet_tensorflow_startup()

__version__ = "0.1.0"

_LAZY = {
    "IGWidget": ("ig_widget.widget", "IGWidget"),
    "keras_application": ("ig_widget.applications", "keras_application"),
    "demo": ("ig_widget.demo", None),
    "explain_dataset": ("ig_widget.dataset", "explain_dataset"),
    "open_dataset": ("ig_widget.dataset", "open_dataset"),
    "DatasetResult": ("ig_widget.dataset", "DatasetResult"),
    "ModelFactory": ("ig_widget.dataset", "ModelFactory"),
    "RayExecutor": ("ig_widget.dataset.ray_executor", "RayExecutor"),
    "Gallery": ("ig_widget.dataset.gallery", "Gallery"),
    "cluster_maps": ("ig_widget.dataset.clusters", "cluster_maps"),
    "MapClusters": ("ig_widget.dataset.clusters", "MapClusters"),
    "shared_interest": ("ig_widget.dataset.clusters", "shared_interest"),
    "compare_datasets": ("ig_widget.dataset.drift", "compare_datasets"),
    "DatasetComparison": ("ig_widget.dataset.drift", "DatasetComparison"),
    "sanity_check": ("ig_widget.sanity", "sanity_check"),
    "SanityCheck": ("ig_widget.sanity", "SanityCheck"),
}

__all__ = [
    "EXPLAINERS",
    "AttributionResult",
    "ComputationCancelled",
    "DatasetComparison",
    "DatasetResult",
    "Gallery",
    "IGOptions",
    "IGResult",
    "IGWidget",
    "InsertionDeletionResult",
    "MapClusters",
    "ModelFactory",
    "RayExecutor",
    "Region",
    "SanityCheck",
    "StabilityResult",
    "XRAIResult",
    "blur_ig",
    "cluster_maps",
    "compare_datasets",
    "demo",
    "expected_gradients",
    "explain_dataset",
    "gradcam",
    "gradients",
    "guided_gradcam",
    "guided_ig",
    "insertion_deletion",
    "integrated_gradients",
    "integrated_gradients_batch",
    "keras_application",
    "occlusion",
    "open_dataset",
    "plot",
    "render",
    "sanity_check",
    "shared_interest",
    "smoothgrad",
    "stability",
    "xrai",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ig_widget' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
