"""igw.keras_application: the registry, name checking and the offline failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import ig_widget as igw
from ig_widget.applications import APPLICATIONS, DOWNLOAD_STALL_S, keras_cache_dir

REPO = Path(__file__).resolve().parents[1]
# mean BGR pixel that "caffe"-style preprocessing subtracts (ResNet50)
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        igw.keras_application("vgg19")
    message = str(error.value)
    assert message.startswith("name:")
    for name in ("xception", "mobilenet_v2", "resnet50"):
        assert repr(name) in message


def test_name_must_be_a_string():
    with pytest.raises(ValueError, match="name: expected one of"):
        igw.keras_application(None)


def test_cache_dir_follows_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("KERAS_HOME")
    assert keras_cache_dir() == Path.home() / ".keras" / "models"


@pytest.mark.parametrize("name", ["xception", "mobilenet_v2", "resnet50"])
def test_registered_preprocess_matches_its_formula_and_is_differentiable(name):
    _, module_name, _ = APPLICATIONS[name]
    preprocess = getattr(keras.applications, module_name).preprocess_input
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, 3, 3)).astype(np.float32)
    if name == "resnet50":
        expected = pixels[..., ::-1] - CAFFE_MEAN_BGR
    else:
        expected = pixels / 127.5 - 1.0
    x = tf.constant(pixels)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = preprocess(x)
        total = tf.reduce_sum(out)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-4)
    slope = 1.0 if name == "resnet50" else 1 / 127.5
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), slope, rtol=1e-6)


def test_registered_input_size_is_the_models():
    # Built without weights (no download): the declared input must match the registry.
    _, _, size = APPLICATIONS["mobilenet_v2"]
    model = keras.applications.MobileNetV2(weights=None)
    assert model.input_shape == (None, size, size, 3)
    assert model.output_shape == (None, 1000)


@pytest.mark.slow
def test_offline_failure_is_one_clear_error_within_seconds(tmp_path):
    # This machine cannot reach Keras' download hosts, and an empty KERAS_HOME
    # holds no cached weights: the call must fail with our message well before a
    # stalled download would be given up (DOWNLOAD_STALL_S), not retry or hang.
    script = textwrap.dedent(
        """
        import json, time
        import keras.applications  # imported before the clock: under load it takes seconds
        import ig_widget as igw
        from ig_widget.applications import WeightsUnavailableError
        started = time.perf_counter()
        try:
            igw.keras_application("mobilenet_v2")
        except WeightsUnavailableError as error:
            print(json.dumps({
                "message": str(error),
                "is_runtime_error": isinstance(error, RuntimeError),
                "cause": type(error.__cause__).__name__,
                "seconds": time.perf_counter() - started,
            }))
        """
    )
    env = {**os.environ, "KERAS_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    message = report["message"]
    assert report["is_runtime_error"]
    assert report["cause"] != "NoneType"
    assert "'mobilenet_v2' could not be loaded" in message
    assert str(tmp_path / "models") in message
    assert "igw.demo.model()" in message
    assert "URL fetch failure" in message
    assert report["seconds"] < DOWNLOAD_STALL_S, report
    # Keras removes a failed partial download: nothing half-written stays behind.
    models_dir = tmp_path / "models"
    assert not models_dir.exists() or not any(models_dir.iterdir())
    assert "Traceback" not in completed.stderr
