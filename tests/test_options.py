"""IGOptions: the one validated description of a computation."""

from __future__ import annotations

import numpy as np
import pytest

from ig_widget.options import IGOptions, check_model, check_target

BAD_OPTIONS = [
    ({"steps": 0}, ValueError, r"steps: expected an integer >= 1, got 0"),
    ({"steps": 10_001}, ValueError, r"steps: expected an integer <= 10000"),
    ({"steps": np.array([10])}, TypeError, r"steps: expected an integer, got ndarray"),
    ({"steps": None}, TypeError, r"steps: expected an integer, got NoneType"),
    ({"steps": "auto", "method": "riemann_left"}, ValueError, r"steps: 'auto' .* trapezoid"),
    ({"method": "simpson"}, ValueError, r"method: expected one of 'trapezoid'"),
    ({"baseline": "grey"}, ValueError, r"baseline: expected one of 'black'"),
    ({"baseline": None}, TypeError, r"baseline: expected one of .* or an array, got None"),
    ({"baseline": np.full((2, 2, 3), np.nan)}, ValueError, r"baseline: contains NaN"),
    ({"baseline": np.full((2, 2, 3), "x")}, TypeError, r"baseline: expected an array of real"),
    ({"runs": 0}, ValueError, r"runs: expected an integer >= 1"),
    ({"runs": 2.0}, TypeError, r"runs: expected an integer"),
    ({"preprocess": "scale"}, TypeError, r"preprocess: expected a callable or None"),
    ({"precision": "float16"}, ValueError, r"precision: expected one of 'float32', 'bfloat16'"),
    ({"batch_size": 0}, ValueError, r"batch_size: expected an integer >= 1"),
    ({"seed": -1}, ValueError, r"seed: expected an integer >= 0"),
    ({"tolerance": -0.1}, ValueError, r"tolerance: expected a number in \[0.0, None\]"),
    ({"pixel_range": (0, 255, 1)}, ValueError, r"pixel_range: expected \(darkest, brightest\)"),
    ({"pixel_range": 255}, ValueError, r"pixel_range: expected \(darkest, brightest\)"),
    ({"pixel_range": (255, 0)}, ValueError, r"pixel_range: .*darkest < brightest, got \(255, 0\)"),
    ({"pixel_range": (0, float("inf"))}, ValueError, r"pixel_range: expected a finite number"),
    ({"target": -1}, ValueError, r"target: expected an integer >= 0"),
    ({"target": 1.0}, TypeError, r"target: expected an integer"),
    ({"target": np.array([1, 2])}, ValueError, r"target: expected one class index"),
    ({"target": np.array(1.0)}, TypeError, r"target: expected an integer, got a float64"),
]


@pytest.mark.parametrize(("kwargs", "error", "pattern"), BAD_OPTIONS)
def test_bad_options_name_the_parameter(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        IGOptions(**kwargs)
    # replace() checks the same rules.
    with pytest.raises(error, match=pattern):
        IGOptions().replace(**kwargs)


def test_options_are_normalised_and_immutable():
    options = IGOptions(steps=np.int64(8), runs=np.int32(3), pixel_range=[0, 1], tolerance=1)
    assert (options.steps, options.runs, options.pixel_range, options.tolerance) == (
        8,
        3,
        (0.0, 1.0),
        1.0,
    )
    assert type(options.steps) is int and type(options.runs) is int
    with pytest.raises(AttributeError):
        options.steps = 9  # type: ignore[misc]
    baseline = np.zeros((2, 2, 3), np.uint8)
    with_array = options.replace(baseline=baseline)
    assert with_array.baseline.dtype == np.float32 and not with_array.baseline.flags.writeable
    baseline[0, 0, 0] = 9  # the caller's array stays theirs
    assert with_array.baseline[0, 0, 0] == 0


def test_replace_validates_the_combination_and_refuses_unknown_names():
    auto = IGOptions(steps="auto")
    with pytest.raises(ValueError, match="steps: 'auto'"):
        auto.replace(method="gausslegendre")
    assert auto.replace(steps=10, method="gausslegendre").method == "gausslegendre"
    with pytest.raises(TypeError, match=r"stepz: not an option of a computation; expected target"):
        auto.replace(stepz=3)


def test_distinct_runs_only_for_uniform_noise():
    assert IGOptions(baseline="uniform", runs=5).distinct_runs == 5
    for baseline in ("black", "white", "blur", np.zeros((1, 1, 3))):
        assert IGOptions(baseline=baseline, runs=5).distinct_runs == 1


def test_equality_compares_values_and_arrays():
    first = IGOptions(baseline=np.ones((2, 2, 3)), steps=10)
    assert first == IGOptions(baseline=np.ones((2, 2, 3), np.float32), steps=10)
    assert first != first.replace(baseline=np.zeros((2, 2, 3)))
    assert first != first.replace(baseline="black")
    assert IGOptions() == IGOptions() and IGOptions() != IGOptions(steps=51)


def _tensors(value):
    import jax.numpy as jnp
    import tensorflow as tf
    import torch

    return [
        np.int64(value),
        np.array(value),
        np.array([value]),
        np.array([[value]], np.int32),
        tf.constant(value),
        tf.constant([value]),
        torch.tensor(value),
        torch.tensor([value]),
        jnp.asarray(value),
        jnp.asarray([value]),
    ]


def test_target_accepts_zero_d_and_one_element_arrays_and_tensors():
    for value in _tensors(3):
        assert check_target(value) == 3, type(value)
        assert IGOptions(target=value).target == 3


def test_model_check_is_one_rule():
    for model in (None, "model.keras", 3):
        with pytest.raises(TypeError, match="model: expected a Keras model or callable"):
            check_model(model)
