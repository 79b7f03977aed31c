"""Parity with the peer libraries, on the same models and inputs.

- PAIR saliency (``saliency.core``): SmoothGrad (same noise draws), Blur IG,
  Guided IG and XRAI (same attributions) on a Keras CNN, its gradients
  computed by a plain ``tf.GradientTape`` call, as PAIR's examples do;
- Captum's ``NoiseTunnel`` over ``Saliency`` and ``IntegratedGradients`` on a
  PyTorch CNN (same noise draws; and in distribution with independent
  draws), ``GradientShap`` (Expected Gradients) in distribution;
- Captum's ``LayerGradCam`` (resized by ``LayerAttribution.interpolate``),
  ``GuidedGradCam`` and ``Occlusion`` on the same PyTorch CNN;
- Quantus' ``PixelFlipping`` (deletion), and its loop with an inserting
  perturbation (insertion), against ``insertion_deletion``;
- pytorch-grad-cam's ``GradCAM`` on the same PyTorch CNN.

Deterministic algorithms are expected to agree to float32 rounding;
sampled ones to be no further from ours than our own runs with other seeds
are from each other. The peers are development requirements; two of their
calls need NumPy 2 spellings (PAIR's ``np.quantile(interpolation=)``,
Quantus' ``np.trapz``), given here.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
from captum.attr import (
    GradientShap,
    GuidedGradCam,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from saliency import core as pair

import ig_widget as igw
from ig_widget.baselines import single_baseline
from ig_widget.explainers.smoothgrad import NoisyRows

from .models import channels_first, random_image, tiny_cnn, torch_cnn
from .peers import NumPy2Quantile

TARGET = 1


def _max_relative(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest difference relative to the largest value of ``expected``."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def keras_cnn():
    return tiny_cnn(size=32)


@pytest.fixture(scope="module")
def image():
    picture = random_image(size=32)
    # The full 0..255 range, so that PAIR's noise scale (a share of the
    # image's own range) is ours (a share of the pixel range).
    picture[0, 0, 0], picture[0, 0, 1] = 0.0, 255.0
    return picture


def _pair_model(model):
    """PAIR's call_model_function for a Keras model: gradients by a plain GradientTape."""

    def call_model(batch, call_model_args=None, expected_keys=None):
        points = tf.convert_to_tensor(batch, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(points)
            scores = model(points)[:, call_model_args["target"]]
        return {pair.INPUT_OUTPUT_GRADIENTS: tape.gradient(scores, points).numpy()}

    return call_model


# --- PAIR saliency -------------------------------------------------------------------


@pytest.mark.parametrize("magnitude", [False, True])
def test_smoothgrad_matches_pair_with_the_same_noise(keras_cnn, image, monkeypatch, magnitude):
    samples, sigma = 8, 0.15 * 255
    kind = "smoothgrad_sq" if magnitude else "smoothgrad"
    ours = igw.smoothgrad(keras_cnn, image, kind=kind, samples=samples, seed=5, target=TARGET)
    draws = iter(NoisyRows(image, sigma, samples, seed=5).noise(i) for i in range(samples))

    def same_noise(loc, scale, size):
        assert loc == 0 and scale == pytest.approx(sigma) and size == image.shape
        return next(draws)

    monkeypatch.setattr(np.random, "normal", same_noise)
    theirs = pair.GradientSaliency().GetSmoothedMask(
        image, _pair_model(keras_cnn), {"target": TARGET}, nsamples=samples, magnitude=magnitude
    )
    monkeypatch.undo()
    error = _max_relative(ours.attributions, theirs)
    print(f"\nPAIR SmoothGrad ({kind}): max relative difference {error:.2e}")
    assert error < 1e-5


@pytest.mark.parametrize(("sqrt", "batch"), [(False, 7), (True, 1)])
def test_blur_ig_matches_pair(keras_cnn, image, sqrt, batch):
    # PAIR applies one step width to a whole batch: with sqrt spacing, only
    # batches of 1 are right. Its sqrt path ends at sqrt(max_sigma).
    settings = {"steps": 40, "grad_step": 0.01, "sqrt": sqrt}
    ours = igw.blur_ig(keras_cnn, image, target=TARGET, max_sigma=12.0, **settings)
    theirs = pair.BlurIG().GetMask(
        image,
        _pair_model(keras_cnn),
        {"target": TARGET},
        batch_size=batch,
        max_sigma=144.0 if sqrt else 12.0,
        **settings,
    )
    error = _max_relative(ours.attributions, theirs)
    print(f"\nPAIR Blur IG (sqrt={sqrt}): max relative difference {error:.2e}")
    assert error < 1e-4


@pytest.mark.parametrize("max_dist", [0.02, 0.1])
def test_guided_ig_matches_pair(keras_cnn, image, monkeypatch, max_dist):
    from saliency.core import guided_ig as pair_guided_ig

    monkeypatch.setattr(pair_guided_ig, "np", NumPy2Quantile())
    ours = igw.guided_ig(keras_cnn, image, target=TARGET, steps=40, max_dist=max_dist)
    theirs = pair.GuidedIG().GetMask(
        image,
        _pair_model(keras_cnn),
        {"target": TARGET},
        x_baseline=np.zeros_like(image),
        x_steps=40,
        fraction=0.25,
        max_dist=max_dist,
    )
    error = _max_relative(ours.attributions, theirs)
    print(f"\nPAIR Guided IG (max_dist={max_dist}): max relative difference {error:.2e}")
    assert error < 1e-4


def test_xrai_matches_pair_on_the_same_attributions(keras_cnn, image):
    base = igw.integrated_gradients(keras_cnn, image, target=TARGET, steps=32).attributions
    ours = igw.xrai(keras_cnn, image, attributions=base, target=TARGET)
    parameters = pair.XRAIParameters(return_xrai_segments=True)
    theirs = pair.XRAI().GetMaskWithDetails(
        image, _pair_model(keras_cnn), base_attribution=base, extra_parameters=parameters
    )
    np.testing.assert_array_equal(ours.ranks, theirs.segments)
    error = _max_relative(ours.attributions[..., 0], theirs.attribution_mask)
    print(
        f"\nPAIR XRAI: same ranks of {ours.ranks.max()} regions, "
        f"max relative difference {error:.2e}"
    )
    assert error < 1e-5
    assert ours.points_used == 0


# --- Captum --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch_model():
    return torch_cnn()


def _nchw(array: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.moveaxis(array, -1, 0)[None].copy())


def _nhwc(tensor: torch.Tensor) -> np.ndarray:
    return np.moveaxis(tensor.detach().numpy()[0], 0, -1)


def _captum_forward(model):
    return lambda batch: model(batch / 127.5 - 1)


CAPTUM_CASES = [
    ("gradients", "smoothgrad"),
    ("gradients", "smoothgrad_sq"),
    ("gradients", "vargrad"),
    ("integrated_gradients", "smoothgrad"),
    ("integrated_gradients", "vargrad"),
]


def _captum_noise_tunnel(model, image, of, kind, samples, sigma, steps):
    forward = _captum_forward(model)
    if of == "gradients":
        tunnel, extra = NoiseTunnel(Saliency(forward)), {"abs": False}
    else:
        # Gauss-Legendre: Captum's "riemann_trapezoid" weights sum to (n - 1) / n, not 1.
        tunnel = NoiseTunnel(IntegratedGradients(forward))
        extra = {"baselines": 0.0, "n_steps": steps, "method": "gausslegendre"}
    attributions = tunnel.attribute(
        _nchw(image), nt_type=kind, nt_samples=samples, stdevs=float(sigma), target=TARGET, **extra
    )
    return _nhwc(attributions)


@pytest.mark.parametrize(("of", "kind"), CAPTUM_CASES)
def test_smoothgrad_matches_captum_noise_tunnel_with_the_same_noise(
    torch_model, monkeypatch, of, kind
):
    image, samples, sigma, steps = random_image(), 6, 0.1 * 255, 8
    # Captum draws all copies' noise in one torch.normal call; draw it the same way.
    torch.manual_seed(21)
    noise = torch.normal(0, torch.tensor(sigma).repeat((samples, *_nchw(image).shape[1:])))
    per_copy = np.moveaxis(noise.numpy(), 1, -1).astype(np.float64)
    torch.manual_seed(21)
    theirs = _captum_noise_tunnel(torch_model, image, of, kind, samples, sigma, steps)
    monkeypatch.setattr(NoisyRows, "noise", lambda self, index: per_copy[index])
    ours = igw.smoothgrad(
        torch_model,
        image,
        of=of,
        kind=kind,
        samples=samples,
        noise=0.1,
        steps=steps,
        method="gausslegendre",
        target=TARGET,
        preprocess=channels_first,
    )
    error = _max_relative(ours.attributions, theirs)
    print(f"\nCaptum NoiseTunnel ({of}, {kind}): max relative difference {error:.2e}")
    assert error < 1e-4


def _relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_smoothgrad_matches_captum_in_distribution(torch_model):
    image, samples, sigma = random_image(), 64, 0.15 * 255

    def ours(seed):
        return igw.smoothgrad(
            torch_model, image, samples=samples, seed=seed, target=TARGET,
            preprocess=channels_first,
        ).attributions  # fmt: skip

    torch.manual_seed(0)
    theirs = [_captum_noise_tunnel(torch_model, image, "gradients", "smoothgrad", samples, sigma, 0)
              for _ in range(2)]  # fmt: skip
    mine = [ours(seed) for seed in range(4)]
    spread = np.mean([_relative_l2(mine[0], mine[1]), _relative_l2(mine[2], mine[3])])
    across = np.mean([_relative_l2(mine[i], theirs[i]) for i in range(2)])
    print(
        f"\nSmoothGrad vs Captum, independent noise: {across:.3f} (ours between seeds {spread:.3f})"
    )
    assert across < 1.5 * spread


def test_expected_gradients_matches_captum_gradient_shap_in_distribution(torch_model):
    image, samples = random_image(), 300
    references = np.stack([random_image(seed=s) for s in range(10, 16)])

    def ours(seed):
        return igw.expected_gradients(
            torch_model, image, references=references, samples=samples, seed=seed,
            target=TARGET, preprocess=channels_first,
        ).attributions  # fmt: skip

    shap = GradientShap(_captum_forward(torch_model))
    stacked = torch.tensor(np.moveaxis(references, -1, 1).copy())
    torch.manual_seed(0)
    theirs = [
        _nhwc(shap.attribute(_nchw(image), stacked, n_samples=samples, stdevs=0.0, target=TARGET))
        for _ in range(2)
    ]
    mine = [ours(seed) for seed in range(4)]
    spread = np.mean([_relative_l2(mine[0], mine[1]), _relative_l2(mine[2], mine[3])])
    across = np.mean([_relative_l2(mine[i], theirs[i]) for i in range(2)])
    print(f"\nExpected Gradients vs GradientShap: {across:.3f} (ours between seeds {spread:.3f})")
    assert across < 1.5 * spread


# --- Captum: Grad-CAM, Guided Grad-CAM, occlusion ------------------------------------


class _RawPixels(torch.nn.Module):
    """The torch CNN on raw channels-first pixels (Captum's guided backprop hooks its ReLUs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch / 127.5 - 1)


@pytest.mark.parametrize("layer", ["0", "3"])
def test_gradcam_matches_captum_layer_gradcam_resized_bilinearly(torch_model, layer):
    image = random_image(size=24)
    ours = igw.gradcam(torch_model, image, layer=layer, target=TARGET, preprocess=channels_first)
    wrapped = _RawPixels(torch_model).eval()
    cam = LayerGradCam(wrapped, dict(torch_model.named_modules())[layer]).attribute(
        _nchw(image), target=TARGET, relu_attributions=True
    )
    theirs = LayerAttribution.interpolate(cam, (24, 24), interpolate_mode="bilinear")
    theirs = theirs.detach()
    assert ours.parameters == {"layer": layer} and float(theirs.max()) > 0
    np.testing.assert_allclose(
        ours.attributions, _nhwc(theirs), rtol=1e-5, atol=1e-6 * float(theirs.max())
    )


def test_guided_gradcam_matches_captum(torch_model):
    image = random_image(size=24)
    ours = igw.guided_gradcam(torch_model, image, target=TARGET, preprocess=channels_first)
    wrapped = _RawPixels(torch_model).eval()
    theirs = _nhwc(
        GuidedGradCam(wrapped, torch_model[3]).attribute(
            _nchw(image), target=TARGET, interpolate_mode="bilinear"
        )
    )
    scale = np.abs(theirs).max()
    assert scale > 0
    np.testing.assert_allclose(ours.attributions, theirs, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(
    ("window", "stride", "baseline"), [(5, 3, "black"), (4, 4, "white"), (6, 2, "black")]
)
def test_occlusion_matches_captum(torch_model, window, stride, baseline):
    image = random_image(size=16)
    ours = igw.occlusion(
        torch_model, image, window=window, stride=stride, baseline=baseline,
        target=TARGET, preprocess=channels_first, batch_size=7,
    )  # fmt: skip
    theirs = Occlusion(_captum_forward(torch_model)).attribute(
        _nchw(image),
        sliding_window_shapes=(3, window, window),
        strides=(3, stride, stride),
        baselines=0.0 if baseline == "black" else 255.0,
        target=TARGET,
    )
    scale = float(theirs.abs().max())
    assert scale > 0
    np.testing.assert_allclose(ours.attributions, _nhwc(theirs), rtol=1e-4, atol=1e-5 * scale)


# --- Quantus -------------------------------------------------------------------------


class _GreyRawPixels(torch.nn.Module):
    """The torch CNN on raw channels-first grey pixels, as Quantus calls a model.

    Grey, because Quantus perturbs single values and steps through a number
    of them that divides H x W: with one channel, values are pixels.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch.repeat(1, 3, 1, 1) / 127.5 - 1)


def _replace_from(source: np.ndarray):
    """A Quantus perturbation that copies ``source``'s values at the given indices."""
    flat = source.reshape(1, -1)

    def perturb(arr, indices, **_kwargs):
        rows = np.arange(len(arr))[:, None]
        out = arr.copy()
        out[rows, indices] = flat[rows, indices]
        return out

    return perturb


def _quantus_curve(model, start, attributions, per_step, softmax, perturb=None):
    import quantus

    options = {"perturb_func": perturb} if perturb is not None else {"perturb_baseline": 0.0}
    metric = quantus.PixelFlipping(
        features_in_step=per_step, abs=False, normalise=False, disable_warnings=True, **options
    )
    saliency = attributions.sum(axis=-1)[None, None]
    curves = metric(
        model=model,
        x_batch=np.moveaxis(start, -1, 0)[None].copy(),
        y_batch=np.array([TARGET]),
        a_batch=saliency,
        device="cpu",
        channel_first=True,
        softmax=softmax,
    )
    return np.asarray(curves[0])


@pytest.mark.parametrize(("substrate", "softmax"), [("black", True), ("blur", False)])
def test_insertion_deletion_matches_quantus(torch_model, monkeypatch, substrate, softmax):
    from quantus.helpers.utils import calculate_auc

    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)
    image, steps = random_image(channels=1), 16
    attributions = np.random.default_rng(4).normal(size=image.shape).astype(np.float32)
    wrapped = _GreyRawPixels(torch_model).eval()
    ours = igw.insertion_deletion(
        wrapped, image, attributions, target=TARGET, steps=steps, baseline=substrate,
        softmax=softmax, preprocess=lambda batch: batch.permute(0, 3, 1, 2),
    )  # fmt: skip
    per_step = image.shape[0] * image.shape[1] // steps
    replaced = single_baseline(image, substrate)
    # Deletion: Quantus' own baseline replacement (black) or a copy from the blurred image.
    deletion = _quantus_curve(
        wrapped, image, attributions, per_step, softmax,
        None if substrate == "black" else _replace_from(np.moveaxis(replaced, -1, 0)),
    )  # fmt: skip
    # Insertion: Quantus' loop from the substrate, copying the image's pixels back.
    insertion = _quantus_curve(
        wrapped, replaced, attributions, per_step, softmax, _replace_from(np.moveaxis(image, -1, 0))
    )
    error = max(
        _max_relative(ours.deletion[1:], deletion), _max_relative(ours.insertion[1:], insertion)
    )
    auc = {
        "deletion": calculate_auc(np.r_[ours.deletion[0], deletion], dx=1 / steps),
        "insertion": calculate_auc(np.r_[ours.insertion[0], insertion], dx=1 / steps),
    }
    print(
        f"\nQuantus ({substrate}, softmax={softmax}): max relative difference of the curves "
        f"{error:.2e}, areas {ours.deletion_auc:.4f} / {ours.insertion_auc:.4f}"
    )
    assert error < 1e-5
    assert ours.deletion_auc == pytest.approx(auc["deletion"], rel=1e-5)
    assert ours.insertion_auc == pytest.approx(auc["insertion"], rel=1e-5)


# --- pytorch-grad-cam -----------------------------------------------------------------


@pytest.mark.parametrize(("layer", "size"), [("0", 24), ("3", 24), ("3", 19)])
def test_gradcam_matches_pytorch_grad_cam(torch_model, layer, size):
    """pytorch-grad-cam's ``GradCAM``: ReLU, min-max scaling to [0, 1], ``cv2.resize``.

    Min-max scaling is affine and bilinear weights sum to one, so its map is
    ours scaled to [0, 1] (its 1e-7 guard against a flat map aside).
    """
    image = random_image(size=size)
    ours = igw.gradcam(torch_model, image, layer=layer, target=TARGET, preprocess=channels_first)
    wrapped = _RawPixels(torch_model).eval()
    with GradCAM(wrapped, [dict(torch_model.named_modules())[layer]]) as cam:
        theirs = cam(_nchw(image), targets=[ClassifierOutputTarget(TARGET)])[0]
    mine = ours.attributions[..., 0]
    assert theirs.shape == mine.shape and mine.max() > mine.min()
    scaled = (mine - mine.min()) / (mine.max() - mine.min())
    np.testing.assert_allclose(scaled, theirs, rtol=0, atol=1e-6)


def test_gradcams_resize_is_opencvs_as_pytorch_grad_cam_uses_it():
    """pytorch-grad-cam scales its map with cv2.resize (INTER_LINEAR): ours is the same,
    down and to odd sizes too."""
    import cv2

    from ig_widget.explainers.gradcam import resize_bilinear

    values = np.random.default_rng(0).normal(size=(5, 7))
    for size in [(16, 9), (3, 4), (5, 7), (11, 2)]:
        theirs = cv2.resize(values, size[::-1], interpolation=cv2.INTER_LINEAR)
        np.testing.assert_allclose(
            resize_bilinear(values, size), theirs, rtol=1e-6, atol=1e-9, err_msg=str(size)
        )
