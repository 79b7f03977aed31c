"""Fixtures of the widget tests: every widget's comm records instead of sending."""

from __future__ import annotations

import comm
import pytest

import ig_widget as igw

from ..models import random_image, tiny_cnn
from .support import NAMES, GatedModel, RecordingComm


@pytest.fixture(autouse=True)
def recording_comms(monkeypatch):
    monkeypatch.setattr(comm, "create_comm", lambda **kwargs: RecordingComm(**kwargs))


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn(16)


@pytest.fixture(scope="module")
def image():
    return random_image(16)


@pytest.fixture
def w(cnn, image):
    return igw.IGWidget(cnn, image, class_names=NAMES, steps=8, top_k=3)


@pytest.fixture
def gated(image):
    model = GatedModel(tiny_cnn(16, seed=3))
    w = igw.IGWidget(model, image, class_names=NAMES, steps=30)
    return model, w
