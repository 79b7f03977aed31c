"""Grad-CAM and occlusion against pytorch-grad-cam and Captum on one PyTorch model.

The model is a plain ``torch.nn.Module`` (five 3x3 convolutions with ReLUs,
channels-first, built here with a fixed seed: no download), the image raw
0..255 pixels (N, H, W, C) for ours, which permute and scale in
``preprocess``, and the same pixels channels-first for the peers, whose
forward function does the same scaling. Each row times ours and the peer
interleaved after an untimed warm-up of both (``methods.compare``):
medians, and the ratio of the fastest runs.

- Grad-CAM: ``igw.gradcam`` against Captum's ``LayerGradCam`` followed by
  ``LayerAttribution.interpolate`` (bilinear) and against pytorch-grad-cam's
  ``GradCAM`` (where it imports), all at the last convolution;
- occlusion: ``igw.occlusion`` against Captum's ``Occlusion``, the same
  window, stride and batch (Captum's ``perturbations_per_eval``).

``python -m benchmarks.gradcam --size 64 --repeats 5`` (``--methods gradcam`` for
Grad-CAM's rows only).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

import ig_widget as igw

from .methods import compare


def model_and_image(size: int) -> tuple[Any, np.ndarray]:
    import torch

    torch.manual_seed(0)
    layers: list[Any] = []
    channels = 3
    for width in (32, 64, 64, 128, 128):
        layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU()]
        if width != 128 or channels != 128:
            layers.append(torch.nn.MaxPool2d(2))
        channels = width
    model = torch.nn.Sequential(
        *layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(128, 10)
    ).eval()
    image = np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)
    return model, image


def channels_first(batch: Any) -> Any:
    return batch.permute(0, 3, 1, 2) / 127.5 - 1


def cases(size: int, batch: int, window: int, stride: int) -> dict[str, Any]:
    import torch
    from captum.attr import LayerAttribution, LayerGradCam, Occlusion

    model, image = model_and_image(size)
    layer_name = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)][-1]
    layer = dict(model.named_modules())[layer_name]
    tensor = torch.tensor(np.moveaxis(image, -1, 0)[None].copy())
    forward = lambda x: model(x / 127.5 - 1)  # noqa: E731
    target = int(model(channels_first(torch.tensor(image[None]))).argmax())
    windows = (int(np.ceil((size - window) / stride)) + 1) ** 2

    def captum_gradcam() -> Any:
        cam = LayerGradCam(forward, layer).attribute(tensor, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, (size, size), interpolate_mode="bilinear")

    rows: dict[str, Any] = {
        "Grad-CAM|Captum": (
            1,
            lambda: igw.gradcam(
                model, image, layer=layer_name, target=target, preprocess=channels_first
            ),
            captum_gradcam,
        ),
        "occlusion|Captum": (
            windows,
            lambda: igw.occlusion(
                model, image, window=window, stride=stride, target=target,
                preprocess=channels_first, batch_size=batch,
            ),
            lambda: Occlusion(forward).attribute(
                tensor, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                baselines=0.0, target=target, perturbations_per_eval=batch,
            ),
        ),
    }  # fmt: skip
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except Exception as error:  # an import that fails for any reason leaves its row out
        rows["Grad-CAM|pytorch-grad-cam"] = f"not measured: import failed ({error})"
        return rows

    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Any) -> Any:
            return self.model(x / 127.5 - 1)

    wrapped = Scaled().eval()
    cam = GradCAM(model=wrapped, target_layers=[layer])
    rows["Grad-CAM|pytorch-grad-cam"] = (
        1,
        rows["Grad-CAM|Captum"][1],
        lambda: cam(input_tensor=tensor, targets=[ClassifierOutputTarget(target)]),
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--stride", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--methods",
        choices=["all", "gradcam", "occlusion"],
        default="all",
        help="the rows to time (Grad-CAM's are fast: many repeats cost seconds)",
    )
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()}")
    print("| method | peer | evaluations | ours s | peer s | ours/peer |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name, case in cases(args.size, args.batch, args.window, args.stride).items():
        method, peer = name.split("|")
        if args.methods != "all" and method.lower().replace("-", "") != args.methods:
            continue
        if isinstance(case, str):
            print(f"| {method} | {peer} | - | - | - | {case} |")
            results[name] = case
            continue
        evaluations, ours, theirs = case
        timing = compare(ours, theirs, args.repeats)
        ratio = timing["ours_s"] / timing["peer_s"]
        fastest = min(timing["ours_all_s"]) / min(timing["peer_all_s"])
        print(
            f"| {method} | {peer} | {evaluations} | {timing['ours_s']:.4f} | "
            f"{timing['peer_s']:.4f} | {ratio:.2f} ({fastest:.2f}) |"
        )
        results[name] = timing
    print(f"load average at the end: {os.getloadavg()}")
    print(json.dumps({"settings": vars(args)}))


if __name__ == "__main__":
    main()
