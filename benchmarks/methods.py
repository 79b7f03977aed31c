"""Attribution methods against the peer libraries, on the same model and image.

On the TensorFlow backend each method is timed against PAIR saliency (its
``call_model_function`` a compiled ``tf.function`` gradient over a batch, the
fastest way to feed it); on the PyTorch backend against Captum (the same
Keras model is a ``torch.nn.Module`` there) and, for the insertion and
deletion curves, Quantus. Every peer gets the same batch size as ours
(``--batch``) where it takes one, and the same number of model evaluations.
Runs are interleaved (ours, peer, ours, ...) after an untimed warm-up of
both; the rows give medians and the ratio of the fastest runs.

Run through ``python -m benchmarks.run --sections methods``; alone:
``KERAS_BACKEND=torch python -m benchmarks.methods --model mobilenetv2``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

import ig_widget as igw

from .speed import build

# Evaluations per method: enough to be representative, few enough for a 2-core CPU.
SETTINGS = {
    "samples": 16,  # SmoothGrad of gradients
    "ig_samples": 4,  # SmoothGrad of integrated gradients ...
    "ig_steps": 15,  # ... with this many intervals (16 points each)
    "eg_samples": 64,
    "blur_steps": 32,
    "guided_steps": 32,
    "xrai_steps": 15,  # two paths of 16 points
    "curve_steps": 48,  # 95 forward passes (Quantus: 96)
}


def scaled(batch: Any) -> Any:
    """Raw 0..255 pixels to MobileNetV2's -1..1 (no in-place operation: autograd-safe)."""
    return batch / 127.5 - 1


def timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def compare(ours: Callable[[], Any], peer: Callable[[], Any], repeats: int) -> dict[str, Any]:
    ours(), peer()  # warm-up: tracing, compilation, allocator
    mine, theirs = [], []
    for _ in range(repeats):
        mine.append(timed(ours))
        theirs.append(timed(peer))
    return {
        "ours_s": statistics.median(mine),
        "peer_s": statistics.median(theirs),
        "ours_all_s": mine,
        "peer_all_s": theirs,
    }


def pair_cases(model: Any, image: np.ndarray, target: int, batch: int) -> dict[str, Any]:
    import tensorflow as tf
    from saliency import core as pair
    from saliency.core import guided_ig

    from tests.peers import NumPy2Quantile

    guided_ig.np = NumPy2Quantile()  # type: ignore[assignment]
    shape = image.shape

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)])
    def gradients(points: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(points)
            scores = model(scaled(points), training=False)[:, target]
        return tape.gradient(scores, points)

    def call_model(points, call_model_args=None, expected_keys=None):
        return {pair.INPUT_OUTPUT_GRADIENTS: gradients(tf.constant(points, tf.float32)).numpy()}

    s = SETTINGS
    common = {"target": target, "preprocess": scaled, "batch_size": batch}
    return {
        "smoothgrad": (
            s["samples"],
            lambda: igw.smoothgrad(model, image, samples=s["samples"], **common),
            lambda: pair.GradientSaliency().GetSmoothedMask(
                image, call_model, nsamples=s["samples"], magnitude=False
            ),
        ),
        "smoothgrad of IG": (
            s["ig_samples"] * (s["ig_steps"] + 1),
            lambda: igw.smoothgrad(
                model,
                image,
                of="integrated_gradients",
                samples=s["ig_samples"],
                steps=s["ig_steps"],
                **common,
            ),
            lambda: pair.IntegratedGradients().GetSmoothedMask(
                image,
                call_model,
                nsamples=s["ig_samples"],
                magnitude=False,
                x_steps=s["ig_steps"] + 1,
                x_baseline=np.zeros_like(image),
                batch_size=batch,
            ),
        ),
        "Blur IG": (
            s["blur_steps"],
            lambda: igw.blur_ig(model, image, steps=s["blur_steps"], **common),
            lambda: pair.BlurIG().GetMask(
                image, call_model, steps=s["blur_steps"], batch_size=batch
            ),
        ),
        "Guided IG": (
            s["guided_steps"],
            lambda: igw.guided_ig(
                model, image, steps=s["guided_steps"], target=target, preprocess=scaled
            ),
            lambda: pair.GuidedIG().GetMask(
                image, call_model, x_steps=s["guided_steps"], x_baseline=np.zeros_like(image)
            ),
        ),
        "XRAI": (
            2 * (s["xrai_steps"] + 1),
            lambda: igw.xrai(model, image, steps=s["xrai_steps"], **common),
            lambda: pair.XRAI().GetMask(
                image,
                call_model,
                batch_size=batch,
                baselines=[np.zeros_like(image), np.full_like(image, 255.0)],
                extra_parameters=pair.XRAIParameters(steps=s["xrai_steps"] + 1),
            ),
        ),
    }


def captum_cases(model: Any, image: np.ndarray, target: int, batch: int) -> dict[str, Any]:
    import torch
    from captum.attr import GradientShap, IntegratedGradients, NoiseTunnel, Saliency

    forward = lambda batch_: model(scaled(batch_), training=False)  # noqa: E731
    tensor = torch.tensor(image[None])
    references = np.stack([np.random.default_rng(i).uniform(0, 255, image.shape) for i in range(8)])
    reference_tensor = torch.tensor(references.astype(np.float32))
    s = SETTINGS
    common = {"target": target, "preprocess": scaled, "batch_size": batch}
    return {
        "smoothgrad": (
            s["samples"],
            lambda: igw.smoothgrad(model, image, samples=s["samples"], **common),
            lambda: NoiseTunnel(Saliency(forward)).attribute(
                tensor,
                nt_samples=s["samples"],
                nt_samples_batch_size=batch,
                stdevs=0.15 * 255,
                target=target,
                abs=False,
            ),
        ),
        "smoothgrad of IG": (
            s["ig_samples"] * (s["ig_steps"] + 1),
            lambda: igw.smoothgrad(
                model,
                image,
                of="integrated_gradients",
                samples=s["ig_samples"],
                steps=s["ig_steps"],
                **common,
            ),
            lambda: NoiseTunnel(IntegratedGradients(forward)).attribute(
                tensor,
                nt_samples=s["ig_samples"],
                nt_samples_batch_size=1,
                stdevs=0.15 * 255,
                target=target,
                baselines=0.0,
                n_steps=s["ig_steps"] + 1,
                method="riemann_trapezoid",
                internal_batch_size=batch,
            ),
        ),
        "Expected Gradients": (
            s["eg_samples"],
            lambda: igw.expected_gradients(
                model, image, references=references, samples=s["eg_samples"], seed=0, **common
            ),
            lambda: GradientShap(forward).attribute(
                tensor, reference_tensor, n_samples=s["eg_samples"], stdevs=0.0, target=target
            ),
        ),
    }


def quantus_case(model: Any, image: np.ndarray, target: int, batch: int) -> dict[str, Any]:
    import quantus
    import torch

    steps = SETTINGS["curve_steps"]
    pixels = image.shape[0] * image.shape[1]
    attributions = np.random.default_rng(0).normal(size=image.shape).astype(np.float32)
    substrate = igw.baselines.single_baseline(image, "blur")
    saliency = np.broadcast_to(attributions.sum(axis=2)[None, None], (1, 3, *image.shape[:2]))

    class ChannelsFirst(torch.nn.Module):
        """The model as Quantus calls it: channels-first raw pixels."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch_: Any) -> Any:
            return self.model(scaled(batch_.permute(0, 2, 3, 1)), training=False)

    wrapped = ChannelsFirst().eval()

    def replace_from(source: np.ndarray) -> Callable[..., np.ndarray]:
        flat = np.moveaxis(source, -1, 0).reshape(1, -1)

        def perturb(arr: np.ndarray, indices: np.ndarray, **_kwargs: Any) -> np.ndarray:
            out = arr.copy()
            rows = np.arange(len(arr))[:, None]
            out[rows, indices] = flat[rows, indices]
            return out

        return perturb

    def curve(start: np.ndarray, source: np.ndarray) -> Any:
        # Quantus changes single values, a number that divides H * W per step:
        # 3 * pixels / steps of them make as many forward passes as ours.
        metric = quantus.PixelFlipping(
            features_in_step=3 * pixels // steps, abs=False, normalise=False,
            disable_warnings=True,
            perturb_func=replace_from(source),
        )  # fmt: skip
        return metric(
            model=wrapped, x_batch=np.moveaxis(start, -1, 0)[None].copy(),
            y_batch=np.array([target]), a_batch=saliency, device="cpu", channel_first=True,
            softmax=False, batch_size=batch,
        )  # fmt: skip

    return {
        "insertion/deletion": (
            2 * steps - 1,
            lambda: igw.insertion_deletion(
                model,
                image,
                attributions,
                steps=steps,
                target=target,
                preprocess=scaled,
                batch_size=batch,
            ),
            lambda: (curve(image, substrate), curve(substrate, image)),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="mobilenetv2")
    parser.add_argument("--size", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--only", nargs="*", help="method names to run (default all)")
    args = parser.parse_args()
    model, _, size = build(args.model, args.size)
    image = np.random.default_rng(1).uniform(0, 255, (size, size, 3)).astype(np.float32)
    target = 1
    backend = keras.backend.backend()
    if backend == "tensorflow":
        cases = {"PAIR saliency": pair_cases(model, image, target, args.batch)}
    elif backend == "torch":
        cases = {
            "Captum": captum_cases(model, image, target, args.batch),
            "Quantus": quantus_case(model, image, target, args.batch),
        }
    else:
        raise SystemExit(f"no peer library runs on the {backend} backend")
    for peer, methods in cases.items():
        for method, (evaluations, ours, theirs) in methods.items():
            if args.only and method not in args.only:
                continue
            row = {
                "backend": backend,
                "model": args.model,
                "size": size,
                "batch": args.batch,
                "method": method,
                "peer": peer,
                "evaluations": evaluations,
                **compare(ours, theirs, args.repeats),
            }
            print("ROW " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
