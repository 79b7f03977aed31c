"""The model-randomisation sanity check (``igw.sanity_check``): exact maps on models whose
randomised weights are known, the similarities against SciPy and scikit-image, the
user's model untouched, on Keras (TensorFlow, JAX, PyTorch) and PyTorch models."""

from __future__ import annotations

import io

import keras
import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

import ig_widget as igw
from ig_widget.engine import ComputationCancelled
from ig_widget.render import render
from ig_widget.sanity import SanityCheck, sanity_check, ssim

from .keras_backends import run_per_backend
from .models import random_image, tiny_cnn

SIZE = 8


def drawn(weights: np.ndarray, seed: int, step: int) -> np.ndarray:
    """The documented rule, written out: normal draws with the array's mean and spread."""
    rng = np.random.default_rng([seed, step])
    return rng.normal(weights.mean(), weights.std(), weights.shape).astype(np.float32)


def two_dense(size: int = SIZE, hidden: int = 5, classes: int = 3) -> keras.Model:
    """F(x) = flatten(x) @ W1 @ W2: integrated gradients from black are x * (W1 @ W2)[:, t]."""
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, use_bias=False, name="hidden"),
            keras.layers.Dense(classes, use_bias=False, name="logits"),
        ]
    )
    rng = np.random.default_rng(3)
    model.set_weights(
        [
            rng.normal(0.2, 0.05, (size * size * 3, hidden)).astype(np.float32),
            rng.normal(0.0, 1.0, (hidden, classes)).astype(np.float32),
        ]
    )
    return model


def top_down(model: keras.Model) -> tuple[str, ...]:
    """The names of the layers with weights, output first (Keras numbers repeated names)."""
    return tuple(layer.name for layer in model.layers if layer.weights)[::-1]


def expected_similarities(original: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """Spearman (SciPy) of absolute and signed channel sums, SSIM (scikit-image) of the
    absolute maps scaled to [0, 1]."""
    absolute = [np.abs(m).sum(axis=2) for m in (original, other)]
    signed = [m.sum(axis=2) for m in (original, other)]
    scaled = [a / a.max() for a in absolute]
    return (
        spearmanr(absolute[0].ravel(), absolute[1].ravel()).statistic,
        spearmanr(signed[0].ravel(), signed[1].ravel()).statistic,
        structural_similarity(scaled[0], scaled[1], data_range=1.0),
    )


def test_a_linear_model_gives_the_maps_of_its_known_random_weights():
    model = two_dense()
    w1, w2 = model.get_weights()
    image = random_image(SIZE)
    check = sanity_check(model, image, seed=7, options={"steps": 3})

    target = int(np.argmax(image.reshape(-1) @ w1 @ w2))
    assert check.target == target
    assert check.layers == ("logits", "hidden")  # from the output down
    r2 = drawn(w2, 7, 1)
    r1 = drawn(w1, 7, 2)
    products = [w1 @ w2, w1 @ r2, r1 @ r2]
    expected = np.stack([image * p[:, target].reshape(image.shape) for p in products])
    np.testing.assert_allclose(check.maps, expected, rtol=2e-5, atol=1e-3)

    for step in range(3):
        want = expected_similarities(expected[0], expected[step])
        got = (check.spearman_abs[step], check.spearman[step], check.ssim[step])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert check.spearman_abs[0] == check.spearman[0] == check.ssim[0] == 1.0
    assert check.final_similarity == check.spearman_abs[-1] < 0.9


def test_the_first_step_is_the_original_map_and_the_model_is_untouched():
    model = tiny_cnn(size=16)
    before = [w.copy() for w in model.get_weights()]
    image = random_image(16)
    original = igw.integrated_gradients(model, image, steps=8, target=2)
    check = sanity_check(model, image, target=2, options={"steps": 8})

    np.testing.assert_array_equal(check.maps[0], original.attributions)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    # The model still computes what it did.
    np.testing.assert_array_equal(
        igw.integrated_gradients(model, image, steps=8, target=2).attributions,
        original.attributions,
    )
    assert check.layers == top_down(model)
    assert check.maps.shape == (4, 16, 16, 3) and check.target == 2
    # Each step changes the map: no two steps' maps are the same.
    flat = check.maps.reshape(4, -1)
    assert all(not np.array_equal(flat[i], flat[j]) for i in range(4) for j in range(i))


def test_layers_picks_the_top_ones_or_named_ones_in_model_order():
    model = tiny_cnn(size=16)
    image = random_image(16)
    dense, _, first_conv = top_down(model)
    top = sanity_check(model, image, layers=1, options={"steps": 4})
    assert top.layers == (dense,) and top.maps.shape[0] == 2
    named = sanity_check(model, image, layers=[first_conv, dense], options={"steps": 4})
    assert named.layers == (dense, first_conv)
    # The same seed draws the same weights for the same step: the top step agrees.
    np.testing.assert_array_equal(named.maps[:2], top.maps)


def test_any_registry_method_is_checked_with_its_own_options_and_the_seed():
    model = tiny_cnn(size=16)
    image = random_image(16)
    check = sanity_check(model, image, "smoothgrad", layers=1, seed=4, options={"samples": 3})
    assert check.method == "smoothgrad"
    reference = igw.smoothgrad(model, image, samples=3, seed=4, target=check.target)
    np.testing.assert_array_equal(check.maps[0], reference.attributions)
    rule = sanity_check(model, image, layers=1, options={"steps": 4, "method": "gausslegendre"})
    np.testing.assert_array_equal(
        rule.maps[0],
        igw.integrated_gradients(model, image, steps=4, method="gausslegendre").attributions,
    )
    blur = sanity_check(model, image, "blur_ig", layers=1, options={"steps": 4})
    np.testing.assert_array_equal(
        blur.maps[0], igw.blur_ig(model, image, steps=4, target=blur.target).attributions
    )


def test_progress_covers_the_cascade_and_false_cancels():
    model = tiny_cnn(size=16)
    image = random_image(16)
    calls: list[tuple[int, int]] = []
    sanity_check(model, image, progress=lambda d, t: calls.append((d, t)), options={"steps": 4})
    dones = [d for d, _ in calls]
    assert dones == sorted(dones) and calls[-1][0] == calls[-1][1]
    assert len({t for _, t in calls}) == 1
    seen: list[int] = []

    def stop_in_second_step(done: int, total: int) -> bool:
        seen.append(done)
        return done <= total // 4

    with pytest.raises(ComputationCancelled):
        sanity_check(model, image, progress=stop_in_second_step, options={"steps": 4})
    assert max(seen) < calls[-1][1]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "nope"}, ValueError, "method: expected one of 'integrated_gradients'"),
        ({"options": {"samples": 3}}, TypeError, "samples: not an option of integrated_gradients"),
        ({"layers": 0}, ValueError, "layers: expected an integer >= 1, got 0"),
        ({"layers": 5}, ValueError, "layers: expected an integer <= 3, got 5"),
        ({"layers": ["x"]}, ValueError, "layers: expected None, a count or names"),
        ({"seed": -1}, ValueError, "seed: expected an integer >= 0, got -1"),
        ({"progress": 3}, TypeError, "progress"),
        ({"image": np.zeros((2, 2, 2, 2, 2))}, ValueError, "image"),
    ],
)
def test_bad_input_is_refused_before_the_model_is_copied(monkeypatch, kwargs, error, message):
    from ig_widget import sanity

    copies = []
    monkeypatch.setattr(sanity, "model_copy", lambda model: copies.append(model))
    arguments = {"model": tiny_cnn(size=16), "image": random_image(16), **kwargs}
    if "layers" in kwargs:
        monkeypatch.undo()
    with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[")):
        sanity_check(**arguments)
    assert not copies


def test_a_plain_callable_is_refused_naming_what_is_needed():
    with pytest.raises(
        TypeError, match=r"needs a Keras model or a torch\.nn\.Module, got function"
    ):
        sanity_check(lambda x: x, random_image(4))


def test_ssim_agrees_with_scikit_image():
    rng = np.random.default_rng(0)
    for shape in ((16, 16), (9, 23), (7, 7), (5, 6)):
        a = rng.uniform(0, 1, shape)
        b = np.clip(a + rng.normal(0, 0.3, shape), 0, 1)
        window = min(7, *(s if s % 2 else s - 1 for s in shape))
        want = structural_similarity(a, b, data_range=1.0, win_size=window)
        assert ssim(a, b) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_the_report_section_shows_each_step_rendered_with_its_similarities():
    model = two_dense()
    image = random_image(SIZE)
    check = sanity_check(model, image, options={"steps": 3})
    section = check.report_section()
    assert [p.caption.split(":")[0] for p in section.pictures] == ["original", "logits", "hidden"]
    assert "Spearman 1.00 (signed 1.00), SSIM 1.00" in section.pictures[0].caption
    assert f"Spearman {check.spearman_abs[2]:.2f}" in section.pictures[2].caption
    for index, picture in enumerate(section.pictures):
        decoded = np.asarray(Image.open(io.BytesIO(picture.png)))
        np.testing.assert_array_equal(decoded, render(image, check.maps[index]))
    (table,) = section.tables
    assert [row[0] for row in table.rows] == ["original", "logits", "hidden"]
    assert table.rows[2][1:] == (check.spearman_abs[2], check.spearman[2], check.ssim[2])


def test_public_api():
    assert igw.sanity_check is sanity_check and igw.SanityCheck is SanityCheck


# --- PyTorch ------------------------------------------------------------------------------


def test_a_torch_linear_model_gives_the_maps_of_its_known_random_weights():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(SIZE * SIZE * 3, 4, bias=False),
        torch.nn.Linear(4, 3, bias=False),
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = random_image(SIZE)
    check = sanity_check(model, image, seed=2, options={"steps": 2})

    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert check.layers == ("2 (Linear)", "1 (Linear)")
    # Torch weights are (out, in): F(x) = x @ W1.T @ W2.T.
    w1, w2 = (model[i].weight.detach().numpy() for i in (1, 2))
    r2, r1 = drawn(w2, 2, 1), drawn(w1, 2, 2)
    products = [(w2 @ w1).T, (r2 @ w1).T, (r2 @ r1).T]
    target = check.target
    assert target == int(np.argmax(image.reshape(-1) @ products[0]))
    expected = np.stack([image * p[:, target].reshape(image.shape) for p in products])
    np.testing.assert_allclose(check.maps, expected, rtol=2e-5, atol=1e-3)
    for step in range(3):
        want = expected_similarities(expected[0], expected[step])
        got = (check.spearman_abs[step], check.spearman[step], check.ssim[step])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


def test_a_torch_model_with_a_preprocess_is_copied_not_changed():
    import torch

    from .models import channels_first, torch_cnn

    model = torch_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    image = random_image(16)
    check = sanity_check(model, image, preprocess=channels_first, options={"steps": 4})
    assert check.layers == ("7 (Linear)", "3 (Conv2d)", "0 (Conv2d)")
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    original = igw.integrated_gradients(model, image, steps=4, preprocess=channels_first)
    np.testing.assert_array_equal(check.maps[0], original.attributions)


# --- Keras backends ---------------------------------------------------------------------

CHILD = """
import sys
import numpy as np
import ig_widget as igw
from tests.models import random_image, seeded_weights, tiny_cnn

model = tiny_cnn(size=16)
weights = seeded_weights(model)
model.set_weights(weights)
options = {"steps": 6, "method": "gausslegendre"}
check = igw.sanity_check(model, random_image(16), target=1, seed=3, options=options)
unchanged = all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
np.savez(sys.argv[1], maps=check.maps, spearman_abs=check.spearman_abs, spearman=check.spearman,
         ssim=check.ssim, layers=np.array(check.layers), unchanged=unchanged,
         tensorflow_loaded="tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_every_keras_backend_gives_the_same_cascade_and_keeps_the_model(tmp_path):
    results = run_per_backend(CHILD, tmp_path)
    reference = results["tensorflow"]
    assert [str(name)[:4] for name in reference["layers"]] == ["dens", "conv", "conv"]
    for name in ("jax", "torch"):
        other = results[name]
        assert bool(other["unchanged"]) and not other["tensorflow_loaded"]
        assert list(other["layers"]) == list(reference["layers"])
        scale = np.abs(reference["maps"]).max()
        np.testing.assert_allclose(other["maps"], reference["maps"], rtol=1e-4, atol=1e-4 * scale)
        for column in ("spearman_abs", "spearman", "ssim"):
            np.testing.assert_allclose(other[column], reference[column], atol=1e-3)
    assert bool(reference["unchanged"])


# --- explain_dataset(sanity_check=True) ---------------------------------------------------


def test_the_dataset_column_is_the_similarity_after_full_randomisation(tmp_path):
    import json

    model = tiny_cnn(size=16, seed=3)
    images = np.stack([random_image(16, seed=s) for s in range(4)])
    store = tmp_path / "store"
    common = dict(steps=4, chunk_size=3, progress=False)
    result = igw.explain_dataset(model, images, store=store, sanity_check=True, **common)
    table = result.table
    assert table.columns[-1] == "sanity_similarity"
    for index, image in enumerate(images):
        check = sanity_check(
            model,
            image,
            target=int(table.loc[index, "target"]),
            options={"steps": 4, "baseline": "blur"},
        )
        # The batch path gives the single call's maps to float32 rounding.
        assert table.loc[index, "sanity_similarity"] == pytest.approx(
            check.final_similarity, abs=1e-4
        )
    manifest = json.loads((store / "ig-dataset.json").read_text())
    assert manifest["options"]["sanity_check"] is True
    assert igw.open_dataset(store).table.equals(table)
    # Another computation: a resume without the column is refused, naming it.
    with pytest.raises(ValueError, match=r"store: .* sanity_check=True, this one has"):
        igw.explain_dataset(model, images, store=store, **common)
    # Without it, no column and nothing recorded.
    plain = igw.explain_dataset(model, images, store=tmp_path / "plain", **common)
    assert "sanity_similarity" not in plain.table.columns
    manifest = json.loads((tmp_path / "plain" / "ig-dataset.json").read_text())
    assert "sanity_check" not in manifest["options"]


def test_the_audit_report_shows_the_check(tmp_path):
    import base64
    import html

    model = tiny_cnn(size=16, seed=3)
    images = np.stack([random_image(16, seed=s) for s in range(2)])
    result = igw.explain_dataset(model, images, steps=4, store=tmp_path / "s", progress=False)
    check = sanity_check(model, images[0], options={"steps": 4})
    page = result.report(tmp_path / "audit.html", sections=(check,)).read_text()
    assert "Sanity check: model randomisation" in page
    section = check.report_section()
    for picture in section.pictures:
        assert html.escape(picture.caption) in page
        assert base64.b64encode(picture.png).decode("ascii") in page


def test_the_dataset_column_refuses_what_it_cannot_randomise(tmp_path):
    from .models import linear_model

    images = np.stack([random_image(4, seed=s) for s in range(2)])
    with pytest.raises(TypeError, match="sanity_check: expected True or False, got 'yes'"):
        igw.explain_dataset(tiny_cnn(16), images, sanity_check="yes", progress=False)
    store = tmp_path / "linear"
    weights = np.ones((4 * 4 * 3, 2), np.float32)
    with pytest.raises(TypeError, match="needs a Keras model or a torch"):
        igw.explain_dataset(
            linear_model(weights), images, store=store, sanity_check=True, progress=False
        )
    assert not (store / "ig-dataset.json").exists()


@pytest.mark.slow
def test_ray_workers_compute_the_column_the_local_executor_does(tmp_path):
    import ray

    from .ray_local import start_local_ray

    model = tiny_cnn(size=16, seed=3)
    images = np.stack([random_image(16, seed=s) for s in range(4)])
    common = dict(steps=4, chunk_size=2, progress=False, sanity_check=True)
    local = igw.explain_dataset(model, images, store=tmp_path / "local", **common)
    start_local_ray(2)
    try:
        on_ray = igw.explain_dataset(
            model, images, store=tmp_path / "ray", executor=igw.RayExecutor(workers=2), **common
        )
    finally:
        ray.shutdown()
    # Another process may sum in another order: float32 rounding only.
    np.testing.assert_allclose(
        on_ray.table["sanity_similarity"], local.table["sanity_similarity"], atol=1e-4
    )
    assert local.table["sanity_similarity"].notna().all()
