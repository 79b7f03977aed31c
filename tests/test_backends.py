"""The JAX and PyTorch backends: parity with TensorFlow, plain torch.nn.Module models,
bfloat16, out-of-memory detection, the memory rule, and running without TensorFlow.

Each Keras backend runs in its own subprocess (``tests.keras_backends``) on the
same weights and image; the parent compares what they return.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import warnings
import weakref

import numpy as np
import pytest
import torch

import ig_widget as igw
from ig_widget import backends, batching
from ig_widget.backends import backend_for
from ig_widget.baselines import make_baselines
from ig_widget.quadrature import integration_points

from .keras_backends import BLOCK_TENSORFLOW, KERAS_BACKENDS, ROOT, run_per_backend
from .models import channels_first, random_image, torch_cnn

# steps from 1 to 1000 that the JAX child runs: before buckets, each gave new batch shapes.
STEP_SAMPLES = [1, 2, 3, 5, 7, 10, 16, 23, 37, 50, 64, 99, 128, 200, 255, 300, 511, 700, 999, 1000]
IG_ARGS = {"steps": 16, "runs": 2, "baseline": "uniform", "seed": 3, "target": 1, "batch_size": 5}
# Running Keras layers in bfloat16 (8 bits of mantissa) moves attributions by a
# few per cent of their norm on a small CNN; float32 differences are ~1e-6.
BF16_TOLERANCE = 0.05


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


# What each backend's subprocess computes and saves for the parent to compare.
# It is a script rather than a function here so that the subprocess does not
# import this module, and with it PyTorch, for nothing.
CHILD = f"""
import sys
import keras
import numpy as np
import ig_widget as igw
from ig_widget import batching
from ig_widget.backends import backend_for
from tests.models import plain_targets_both_ways, random_image, seeded_weights, tiny_cnn

IG_ARGS = {IG_ARGS!r}
STEP_SAMPLES = {STEP_SAMPLES!r}
model = tiny_cnn()
model.set_weights(seeded_weights(model))
image = random_image()
full = igw.integrated_gradients(model, image, **IG_ARGS)
half = igw.integrated_gradients(model, image, precision="bfloat16", **IG_ARGS)
# "1 and not 2": the difference of two classes' scores, in the same model calls.
contrast = igw.integrated_gradients(model, image, **{{**IG_ARGS, "target": (1, 2)}})
second = igw.integrated_gradients(model, image, **{{**IG_ARGS, "target": 2}})
# A region of a per-pixel linear score map (a 1x1 convolution): IG is known exactly.
segmenter = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 1, use_bias=False)])
segmenter.set_weights(seeded_weights(segmenter))
mask = np.zeros((16, 16), bool)
mask[3:9, 5:12] = True
region = igw.integrated_gradients(segmenter, image, steps=2, target=igw.Region(2, mask=mask))
policies = sorted({{layer.dtype_policy.name for layer in model._flatten_layers()}})
backend = backend_for(model, None)
compiled = {{}}
if keras.backend.backend() == "jax":
    # Same shapes, new image and target: the jitted program must not recompile.
    compiled["before"] = backend._program._cache_size()
    igw.integrated_gradients(model, image[::-1].copy(), **{{**IG_ARGS, "target": 2}})
    compiled["after"] = backend._program._cache_size()
    # Any steps from 1 to 1000, automatic batch: a few bucketed batch shapes.
    fresh = tiny_cnn(seed=5)
    for steps in STEP_SAMPLES:
        igw.integrated_gradients(fresh, image, steps=steps)
    compiled["any_steps"] = backend_for(fresh, None)._program._cache_size()
# Plain targets: the one-column program and the two-column one (second weight 0).
one, two, columns_sent = plain_targets_both_ways(model)
# The automatic batch at 16 and at 64 points: the same arrays, bit for bit.
automatic = {{**IG_ARGS, "batch_size": None, "steps": 60}}
tuner = batching.tuner_for(backend, model, image, "gradients")
tuned = []
for size in (16, 64):
    tuner.size, tuner.fixed = size, True
    tuned.append(igw.integrated_gradients(model, image, **automatic))
np.savez(
    sys.argv[1],
    tuned_attributions=np.stack([r.attributions for r in tuned]),
    tuned_gradients=np.stack([r.gradients for r in tuned]),
    one_column_sums=one[0],
    one_column_scores=one[1],
    two_column_sums=two[0],
    two_column_scores=two[1],
    columns_sent=columns_sent,
    backend=backend.name,
    attributions=full.attributions,
    gradients=full.gradients,
    scores=full.scores,
    path_scores=full.path_scores,
    baseline_scores=full.baseline_scores,
    delta=full.delta,
    half_attributions=half.attributions,
    contrast=contrast.attributions,
    region=region.attributions,
    region_expected=mask[..., None] * segmenter.get_weights()[0][0, 0, :, 2] * image,
    contrast_delta=contrast.delta,
    second=second.attributions,
    half_scores=half.scores,
    policies=policies,
    tensorflow_loaded="tensorflow" in sys.modules,
    **compiled,
)
"""


@pytest.fixture(scope="module")
def per_backend(tmp_path_factory):
    return run_per_backend(CHILD, tmp_path_factory.mktemp("backends"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_keras_backends_match_tensorflow(per_backend, name):
    reference, other = per_backend["tensorflow"], per_backend[name]
    assert str(other["backend"]) == name and str(reference["backend"]) == "tensorflow"
    for key in ("attributions", "gradients"):
        scale = np.abs(reference[key]).max()
        np.testing.assert_allclose(other[key], reference[key], rtol=1e-4, atol=1e-4 * scale)
    for key in ("scores", "path_scores", "baseline_scores"):
        np.testing.assert_allclose(other[key], reference[key], rtol=1e-4, atol=1e-5)
    assert float(other["delta"]) == pytest.approx(float(reference["delta"]), rel=1e-2, abs=1e-5)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_a_contrast_is_the_difference_of_the_two_classes_on_every_backend(per_backend, name):
    result = per_backend[name]
    expected = result["attributions"] - result["second"]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(result["contrast"], expected, rtol=1e-5, atol=1e-5 * scale)
    reference = per_backend["tensorflow"]["contrast"]
    np.testing.assert_allclose(result["contrast"], reference, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_a_region_target_has_the_exact_answer_on_every_backend(per_backend, name):
    result = per_backend[name]
    np.testing.assert_allclose(result["region"], result["region_expected"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_bfloat16_stays_close_to_float32(per_backend, name):
    result = per_backend[name]
    assert result["half_attributions"].dtype == np.float32
    error = _relative_error(result["half_attributions"], result["attributions"])
    assert 0 < error < BF16_TOLERANCE
    # The last layer really ran in bfloat16: its outputs are bfloat16 numbers.
    half_scores = result["half_scores"]
    assert not np.array_equal(half_scores, result["scores"])
    np.testing.assert_array_equal(half_scores.astype(_bfloat16()).astype(np.float64), half_scores)
    np.testing.assert_allclose(half_scores, result["scores"], rtol=0.02, atol=0.02)
    # Every layer's policy is back to float32 afterwards.
    assert list(result["policies"]) == ["float32"]


def _bfloat16() -> np.dtype:
    """NumPy's bfloat16 type (ml_dtypes ships with JAX and TensorFlow)."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_results_do_not_depend_on_the_automatic_batch(per_backend, name):
    result = per_backend[name]
    for key in ("tuned_attributions", "tuned_gradients"):
        np.testing.assert_array_equal(result[key][0], result[key][1])


@pytest.mark.parametrize("name", KERAS_BACKENDS)
def test_plain_targets_take_one_column_with_the_two_column_sums_bit_for_bit(per_backend, name):
    result = per_backend[name]
    assert int(result["columns_sent"]) == 1
    np.testing.assert_array_equal(result["one_column_sums"], result["two_column_sums"])
    np.testing.assert_array_equal(result["one_column_scores"], result["two_column_scores"])
    assert np.abs(result["one_column_sums"]).max() > 0


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_jax_and_torch_paths_never_import_tensorflow(per_backend, name):
    assert not per_backend[name]["tensorflow_loaded"]


def test_jax_does_not_recompile_for_a_new_image_or_target(per_backend):
    result = per_backend["jax"]
    # 32 path points and the image's own point, both paths' last: 7 batches of 5 (the
    # last padded), one program for plain targets and one for the contrast (two
    # weighted columns) run before.
    assert int(result["before"]) == 2
    assert int(result["after"]) == int(result["before"])


def test_jax_compiles_a_few_programs_for_any_steps(per_backend):
    # Buckets of 8, 16, ..., 256 points (the memory limit of a 16x16 CNN), nothing else.
    assert int(per_backend["jax"]["any_steps"]) <= 6


def test_without_tensorflow_plain_torch_module_and_import(tmp_path):
    code = BLOCK_TENSORFLOW + (
        "import numpy as np, torch, ig_widget as igw\n"
        "model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))\n"
        "res = igw.integrated_gradients(model, np.ones((2, 2, 3)), steps=4)\n"
        "assert res.attributions.shape == (2, 2, 3) and 'tensorflow' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


# --- plain torch.nn.Module models, in this process -------------------------------


def _torch_loop_ig(model, image, baselines, target, method, steps):
    """One point per forward/backward pass, written directly in PyTorch."""
    alphas, weights = integration_points(method, steps)
    total = np.zeros(image.shape, np.float64)
    for start in baselines:
        grad_sum = np.zeros(image.shape, np.float64)
        for alpha, weight in zip(alphas, weights, strict=True):
            point = torch.tensor((start + alpha * (image - start))[None].astype(np.float32))
            point.requires_grad_(True)
            model(channels_first(point))[0, target].backward()
            grad_sum += weight * point.grad.numpy()[0]
        total += (image - start) * grad_sum
    return total / len(baselines)


@pytest.mark.parametrize("method", ["trapezoid", "gausslegendre"])
def test_torch_module_matches_a_hand_written_loop(method):
    model, image = torch_cnn(), random_image()
    res = igw.integrated_gradients(
        model, image, method=method, preprocess=channels_first, **IG_ARGS
    )
    baselines = make_baselines(image, "uniform", 2, seed=3)
    expected = _torch_loop_ig(model, image, baselines, 1, method, 16)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(res.attributions, expected, rtol=1e-4, atol=1e-4 * scale)
    with torch.no_grad():
        scores = model(channels_first(torch.tensor(image[None])))[0].numpy()
    np.testing.assert_allclose(res.scores, scores, rtol=1e-5)
    point = torch.tensor(image[None], requires_grad=True)
    model(channels_first(point))[0, 1].backward()
    expected_gradient = point.grad.numpy()[0]
    np.testing.assert_allclose(
        res.gradients, expected_gradient, rtol=1e-5, atol=1e-5 * np.abs(expected_gradient).max()
    )
    assert backend_for(model, channels_first).device == torch.device("cpu")


def test_torch_module_completeness():
    # (From black, this network's score barely changes, which makes the relative
    # error meaningless; white gives a gap of 0.7.)
    res = igw.integrated_gradients(
        torch_cnn(), random_image(), steps=100, baseline="white", preprocess=channels_first
    )
    assert res.delta < 0.01
    assert abs(res.score - res.baseline_scores[0]) > 0.5


@pytest.mark.parametrize("method", ["trapezoid", "riemann_middle", "gausslegendre"])
def test_linear_torch_module_is_exact(method):
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 255, (6, 5, 3)).astype(np.float32)
    start = rng.uniform(0, 255, image.shape).astype(np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(image.size, 4))
    res = igw.integrated_gradients(model, image, target=2, baseline=start, steps=3, method=method)
    weights = model[1].weight.detach().numpy()[2].reshape(image.shape)
    expected = weights * (image - start)
    np.testing.assert_allclose(
        res.attributions, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()
    )
    np.testing.assert_allclose(res.gradients, weights, rtol=1e-6)


def test_torch_module_runs_in_eval_mode_and_keeps_its_mode():
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(48, 16),
        torch.nn.BatchNorm1d(16),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(16, 3),
    )
    model.train()
    image = random_image(size=4)
    first = igw.integrated_gradients(model, image, steps=8)
    second = igw.integrated_gradients(model, image, steps=8)
    np.testing.assert_array_equal(first.attributions, second.attributions)
    assert model.training and all(m.training for m in model.modules())
    with torch.no_grad():
        model.eval()
        expected = model(torch.tensor(image[None]))[0].numpy()
    np.testing.assert_allclose(first.scores, expected, rtol=1e-6)
    assert first.delta < 0.01


class _Pause(torch.nn.Module):
    """Sleeps in forward, as a large layer would take time: the other thread runs meanwhile."""

    def forward(self, x):
        time.sleep(0.005)
        return x


def test_one_module_in_train_mode_used_from_two_threads():
    torch.manual_seed(2)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(48, 64),
        _Pause(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(64, 3),
    )
    image = random_image(size=4)
    model.eval()
    reference = igw.integrated_gradients(model, image, steps=16, batch_size=2, target=1)
    model.train()
    results, failures = [], []

    def work():
        try:
            for _ in range(6):
                res = igw.integrated_gradients(model, image, steps=16, batch_size=2, target=1)
                results.append(res.attributions)
        except Exception as exc:  # reported below; a thread's exception is lost otherwise
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures and len(results) == 12
    for attributions in results:  # dropout never active during a computation
        np.testing.assert_allclose(attributions, reference.attributions, rtol=1e-6, atol=1e-9)
    assert model.training and all(module.training for module in model.modules())


def test_torch_module_bfloat16_uses_autocast_and_stays_close():
    model, image = torch_cnn(), random_image()
    full = igw.integrated_gradients(model, image, preprocess=channels_first, **IG_ARGS)
    half = igw.integrated_gradients(
        model, image, preprocess=channels_first, precision="bfloat16", **IG_ARGS
    )
    assert half.attributions.dtype == np.float32
    assert 0 < _relative_error(half.attributions, full.attributions) < BF16_TOLERANCE
    np.testing.assert_array_equal(half.scores.astype(_bfloat16()).astype(np.float64), half.scores)
    np.testing.assert_allclose(half.scores, full.scores, rtol=0.05, atol=0.05)


def test_torch_out_of_memory_is_detected_and_halves_the_batch():
    model, image = torch_cnn(), random_image()
    backend = backend_for(model, channels_first)
    try:
        torch.empty(2**46)
    except RuntimeError as exc:
        assert backend.is_out_of_memory(exc)
    else:
        pytest.fail("allocating 256 TiB did not fail")
    assert backend.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not backend.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))

    reference = igw.integrated_gradients(model, image, steps=30, preprocess=channels_first)
    original = backend.gradient_sums
    seen = []

    def flaky(starts, ends, start_index, *args):
        seen.append(len(start_index))
        if len(start_index) > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(starts, ends, start_index, *args)

    backend.gradient_sums = flaky
    try:
        res = igw.integrated_gradients(
            model, image, steps=30, batch_size=31, preprocess=channels_first
        )
    finally:
        del backend.gradient_sums
    assert seen[:3] == [31, 15, 7]
    np.testing.assert_allclose(res.attributions, reference.attributions, rtol=1e-5, atol=1e-9)


def test_jax_out_of_memory_is_detected():
    from ig_widget.backends.jax import JaxBackend

    backend = JaxBackend.__new__(JaxBackend)  # the check needs no model
    import jax.numpy as jnp

    try:
        jnp.ones(2**45).block_until_ready()
    except RuntimeError as exc:
        assert backend.is_out_of_memory(exc)
    else:
        pytest.fail("allocating 128 TiB did not fail")
    assert not backend.is_out_of_memory(RuntimeError("INVALID_ARGUMENT: shapes differ"))


def test_torch_models_that_cannot_be_differentiated_are_named():
    class Detached(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :3].detach()

    with pytest.raises(ValueError, match="model: its scores do not depend differentiably"):
        igw.integrated_gradients(Detached(), random_image(size=4), steps=2)

    class Labels(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1).argmax(1, keepdim=True)

    with pytest.raises(TypeError, match="cannot be differentiated"):
        igw.integrated_gradients(Labels(), random_image(size=4), steps=2)


# --- batch sizing ------------------------------------------------------------------


def test_memory_rule_for_a_1024_image_through_xception():
    import keras

    model = keras.applications.Xception(weights=None, input_shape=(1024, 1024, 3))
    image = np.zeros((1024, 1024, 3), np.float32)
    backend = backend_for(model, None)
    backend.free_memory_bytes = lambda: 24 * 1024**3
    try:
        # Measured peak: about 1 GiB per point (benchmarks/README.md); a
        # quarter of 24 GiB holds about 5 of them.
        assert 3 <= batching.batch_size_for(backend, model, image) <= 6
        small = np.zeros((299, 299, 3), np.float32)
        small_model = keras.applications.Xception(weights=None)
        assert 30 <= batching.batch_size_for(backend, small_model, small) <= 60
        backend.free_memory_bytes = lambda: 10 * 1024**2
        assert batching.batch_size_for(backend, model, image) == 1
        backend.free_memory_bytes = lambda: None
        # The fixed 2 GiB over 2 bytes x 63.0 M activations + 16 bytes x 268 203 pixel values.
        assert batching.batch_size_for(backend, small_model, small) == 16
    finally:
        del backend.free_memory_bytes


def test_memory_limit_is_chosen_once_per_model_and_image_shape(monkeypatch):
    import keras

    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    image = np.zeros((64, 64, 3), np.float32)
    backend = backend_for(model, None)
    free = [2 * 1024**3]
    monkeypatch.setattr(backend, "free_memory_bytes", lambda: free[0])
    first = batching.tuner_for(backend, model, image, "gradients")
    assert first.limit == batching.batch_size_for(backend, model, image) > 1
    # Free memory drifts between calls; a new limit would mean new batch
    # shapes (new compilations under JAX), so the first choice stands.
    free[0] = 1024**2
    assert batching.tuner_for(backend, model, image + 1, "gradients") is first
    # A new shape is sized from the memory free now.
    smaller = batching.tuner_for(backend, model, image[:32], "gradients")
    assert smaller.limit == batching.batch_size_for(backend, model, image[:32]) < first.limit


# --- the cache of compiled programs --------------------------------------------------


@pytest.mark.slow
def test_a_preprocess_recreated_per_call_warns_once_and_the_cache_stays_bounded():
    import tensorflow as tf

    weights = tf.constant(np.random.default_rng(0).normal(size=(48, 3)), tf.float32)

    def model(batch):
        return tf.reshape(batch, (-1, 48)) @ weights

    image = random_image(size=4)
    created = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(100):
            igw.gradients(model, image, preprocess=lambda x: x / 255.0)
            created.append(weakref.ref(next(reversed(backends._cache[model].values()))))
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    assert len(messages) == 1 and messages[0].startswith("preprocess: a new function")
    assert caught[0].filename == __file__  # points at the caller's line
    assert len(backends._cache[model]) == backends.BACKENDS_PER_MODEL
    gc.collect()
    # Evicted backends (and their traced programs) are freed, not just forgotten.
    assert sum(ref() is not None for ref in created) <= backends.BACKENDS_PER_MODEL
    # The same function object is reused without a warning or a new backend.
    scale = created[-1]()._preprocess
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            igw.gradients(model, image, preprocess=scale)
    assert created[-1]() is backend_for(model, scale)
