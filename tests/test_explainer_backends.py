"""Every attribution method and the insertion/deletion curves on the three Keras
backends (TensorFlow, JAX, PyTorch): the same numbers from the same weights.

Each backend runs in its own subprocess (``tests.keras_backends``); JAX and
PyTorch with the ``tensorflow`` import blocked.
"""

from __future__ import annotations

import numpy as np
import pytest

from .keras_backends import run_per_backend

# What each backend's subprocess computes and saves: small settings, the same
# seeds, so that every backend evaluates the same points. No point is a flat
# image: there max-pooling has ties everywhere, and TensorFlow and PyTorch
# route the gradient to different (equally valid) maxima, which sends Guided
# IG on different paths; a uniform baseline and Gauss-Legendre nodes avoid them.
CHILD = """
import sys
import numpy as np
import ig_widget as igw
from ig_widget.backends import backend_for
from tests.models import random_image, seeded_weights, tiny_cnn

model = tiny_cnn(size=32)
model.set_weights(seeded_weights(model))
image = random_image(size=32)
references = np.stack([random_image(size=32, seed=s) * 0.5 for s in range(3)])
common = {"target": 1, "batch_size": 7}
results = {
    "smoothgrad": igw.smoothgrad(model, image, samples=6, seed=0, **common),
    "vargrad_ig": igw.smoothgrad(
        model, image, of="integrated_gradients", kind="vargrad", samples=3, steps=6, seed=0,
        **common,
    ),
    "expected_gradients": igw.expected_gradients(
        model, image, references=references, samples=12, seed=0, **common
    ),
    "blur_ig": igw.blur_ig(model, image, max_sigma=6.0, steps=12, **common),
    "guided_ig": igw.guided_ig(model, image, steps=12, target=1, baseline="uniform", seed=0),
    "xrai": igw.xrai(model, image, steps=8, method="gausslegendre", **common),
    "gradcam": igw.gradcam(model, image, target=1),
    "guided_gradcam": igw.guided_gradcam(model, image, target=1),
    "occlusion": igw.occlusion(model, image, window=6, stride=4, **common),
}
curves = igw.insertion_deletion(model, image, results["smoothgrad"], steps=16, batch_size=7)
np.savez(
    sys.argv[1],
    backend=backend_for(model, None).name,
    ranks=results["xrai"].ranks,
    insertion=curves.insertion,
    deletion=curves.deletion,
    tensorflow_loaded="tensorflow" in sys.modules,
    **{name: result.attributions for name, result in results.items()},
)
"""
METHODS = (
    "smoothgrad",
    "vargrad_ig",
    "expected_gradients",
    "blur_ig",
    "guided_ig",
    "xrai",
    "gradcam",
    "guided_gradcam",
    "occlusion",
)


@pytest.fixture(scope="module")
def per_backend(tmp_path_factory):
    return run_per_backend(CHILD, tmp_path_factory.mktemp("explainers"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_every_method_gives_the_same_attributions_on_every_backend(per_backend, name):
    reference, other = per_backend["tensorflow"], per_backend[name]
    assert str(other["backend"]) == name and str(reference["backend"]) == "tensorflow"
    for method in METHODS:
        scale = np.abs(reference[method]).max()
        assert scale > 0, method
        np.testing.assert_allclose(
            other[method], reference[method], rtol=1e-4, atol=1e-4 * scale, err_msg=method
        )
    np.testing.assert_array_equal(other["ranks"], reference["ranks"])
    for curve in ("insertion", "deletion"):
        np.testing.assert_allclose(other[curve], reference[curve], rtol=1e-4, atol=1e-5)
    assert not other["tensorflow_loaded"]


# Counts from 1 to 1000 that the JAX child runs each method with: before segment
# counts and whole sources were bucketed, nearly each one compiled a new program.
COUNTS = [1, 2, 3, 5, 7, 9, 16, 23, 37, 50, 64, 99, 128, 200, 255, 1000]
PROGRAMS_CHILD = f"""
import sys
import numpy as np
import ig_widget as igw
from ig_widget.backends import backend_for
from tests.models import random_image, tiny_cnn

COUNTS = {COUNTS!r}
image = random_image()
references = np.stack([random_image(seed=s) for s in range(12)])
of_ig = {{"of": "integrated_gradients", "steps": 4}}
methods = {{
    "smoothgrad samples": lambda model, n: igw.smoothgrad(model, image, samples=n, seed=0),
    "vargrad samples": lambda model, n: igw.smoothgrad(
        model, image, kind="vargrad", samples=n, seed=0
    ),
    "smoothgrad_sq of IG samples": lambda model, n: igw.smoothgrad(
        model, image, kind="smoothgrad_sq", samples=n, seed=0, **of_ig
    ),
    "smoothgrad of IG steps": lambda model, n: igw.smoothgrad(
        model, image, of="integrated_gradients", samples=2, steps=n, seed=0
    ),
    "blur_ig steps": lambda model, n: igw.blur_ig(model, image, max_sigma=8.0, steps=n),
    "expected_gradients samples": lambda model, n: igw.expected_gradients(
        model, image, references=references, samples=n, seed=0
    ),
}}
programs = {{}}
for name, method in methods.items():
    model = tiny_cnn(seed=5)
    for count in COUNTS:
        method(model, count)
    programs[name] = backend_for(model, None)._program._cache_size()
np.savez(sys.argv[1], **programs)
"""


@pytest.mark.slow
def test_jax_compiles_a_few_programs_for_any_count_of_samples_or_steps(tmp_path):
    programs = run_per_backend(PROGRAMS_CHILD, tmp_path, backends=("jax",))["jax"]
    # Buckets of 8, 16, ..., 256 points (the memory limit of a 16x16 CNN), as for IG.
    counts = {name: int(count) for name, count in programs.items()}
    assert len(counts) == 6 and all(1 <= count <= 6 for count in counts.values()), counts
