"""The widget's sanity check: the Sanity check button runs ``igw.sanity_check`` of the shown
result in the background (progress, cancel), and the browser gets its strip."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import ig_widget as igw
from ig_widget.render import block_mean, channel_maps
from ig_widget.widget.shown import SANITY_THUMBNAIL

from ..models import channels_first, random_image, torch_cnn
from .support import NAMES, message_from_the_browser


def test_the_button_shows_the_check_of_the_shown_result(w, cnn, image):
    updates_before = len(w.comm.messages)
    message_from_the_browser(w, "sanity")
    assert w.wait(timeout=120)
    assert w.error == "" and not w.computing and w.progress_stage == ""
    expected = igw.sanity_check(cnn, image, target=w.target, options={"steps": 8})
    data = w.sanity
    assert [step["label"] for step in data["steps"]] == ["original", *expected.layers]
    assert data["label"] == NAMES[w.target] and data["explainer_title"] == "Integrated gradients"
    # Float sums in other batches (the widget asks for progress updates) differ in the last bits.
    for step, index in zip(data["steps"], range(len(expected.steps)), strict=True):
        assert step["spearman_abs"] == pytest.approx(expected.spearman_abs[index], abs=1e-6)
        assert step["ssim"] == pytest.approx(expected.ssim[index], abs=1e-6)
    # The first picture is the shown panel's map.
    np.testing.assert_allclose(expected.maps[0], w.result.attributions, rtol=1e-5, atol=1e-8)
    height, width = data["size"]
    assert (height, width) == (16, 16)  # under SANITY_THUMBNAIL: full size
    sent = np.frombuffer(w.sanity_maps, np.float32).reshape(-1, 2, height, width)
    for index, attributions in enumerate(expected.maps):
        np.testing.assert_allclose(
            sent[index], np.stack(channel_maps(attributions)), rtol=1e-5, atol=1e-8
        )
    assert len(w.sanity_rgb) == height * width * 3
    assert len(w.comm.messages) > updates_before


def test_the_blocking_call_returns_the_check_and_a_new_image_clears_it(w, image):
    check = w.sanity_check(layers=1, seed=5)
    assert check is not None and len(check.layers) == 1 and check.seed == 5
    assert len(w.sanity["steps"]) == 2
    w.set_image(random_image(16, seed=9))
    assert w.sanity["steps"] == [] and w.sanity_maps == b""


def test_large_images_are_sent_as_thumbnails(cnn):
    import keras

    model = keras.Sequential(
        [keras.Input((300, 260, 3)), keras.layers.Conv2D(2, 3), keras.layers.GlobalMaxPooling2D()]
    )
    big = random_image(300)[:, :260]
    w = igw.IGWidget(model, big, steps=2)
    check = w.sanity_check()
    assert check is not None
    factor = int(np.ceil(300 / SANITY_THUMBNAIL))
    height, width = w.sanity["size"]
    assert (height, width) == (100, 87) and factor == 3
    sent = np.frombuffer(w.sanity_maps, np.float32).reshape(-1, 2, height, width)
    positive, _ = channel_maps(check.maps[1])
    np.testing.assert_array_equal(sent[1, 0], block_mean(positive, factor))


# A gate outside the module, so that the check's deep copy of the module shares it.
GATE = {"block": False, "entered": threading.Event(), "release": threading.Event()}


class GatedTorch(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch_cnn()

    def forward(self, batch):
        if GATE["block"]:
            GATE["entered"].set()
            GATE["release"].wait(30)
        return self.net(batch)


def test_cancel_stops_the_check_and_the_view_keeps_what_it_showed():
    model = GatedTorch()
    w = igw.IGWidget(model, random_image(16), preprocess=channels_first, steps=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    GATE["block"] = True
    try:
        message_from_the_browser(w, "sanity")
        assert GATE["entered"].wait(30) and w.computing
        assert w.progress_stage == "Sanity check of Integrated gradients"
        message_from_the_browser(w, "cancel")
    finally:
        GATE["block"] = False
        GATE["release"].set()
    assert w.wait(timeout=60)
    assert not w.computing and "Cancelled" in w.notice and w.error == ""
    assert w.sanity["steps"] == []
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    # It runs again afterwards, to the end.
    GATE["release"].clear()
    message_from_the_browser(w, "sanity")
    assert w.wait(timeout=120) and w.error == ""
    assert [s["label"] for s in w.sanity["steps"]][:2] == ["original", "net.7 (Linear)"]
