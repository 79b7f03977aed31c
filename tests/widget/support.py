"""Helpers for the widget tests: a comm that records what the browser would get, a model
that can be made to block or fail, and readers of the sent state."""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf
from comm.base_comm import BaseComm

from ig_widget import widget

NAMES = ["cat", "dog", "bird", "fish"]


HOSTILE = "</script><script>alert(1)</script>"


class RecordingComm(BaseComm):
    """A comm that keeps what the widget would send to the browser."""

    def __init__(self, **kwargs):
        self.messages = []
        self.refuse = None  # a binary trait whose updates fail to send, as a broken link would
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        sent = [path[0] for path in (data or {}).get("buffer_paths", [])]
        if self.refuse in sent:
            raise OSError(f"the link to the browser broke while sending {self.refuse}")
        self.messages.append((msg_type, data, list(buffers or [])))

    def updates(self):
        """(method, state with binary traits put back, buffers) of each state message."""
        found = []
        for msg_type, data, buffers in self.messages:
            if msg_type == "comm_msg" and data.get("method") in ("update", "echo_update"):
                state = dict(data["state"])
                for path, buffer in zip(data.get("buffer_paths", []), buffers, strict=True):
                    state[path[0]] = buffer
                found.append((data["method"], state, buffers))
        return found


class GatedModel:
    """A tiny CNN that can be made to fail, or to block inside a call.

    The gate is a stateful numpy_function, so it runs (and can block or
    raise) on every execution of a traced program, not only while tracing.
    """

    def __init__(self, base):
        self.base = base
        self.block = False
        self.fail = None
        self.entered = threading.Event()
        self.release = threading.Event()

    def _gate(self, _):
        if self.fail is not None:
            raise self.fail
        if self.block:
            self.entered.set()
            self.release.wait(30)
        return np.int32(0)

    def __call__(self, batch):
        passed = tf.numpy_function(self._gate, [tf.shape(batch)[0]], tf.int32, stateful=True)
        with tf.control_dependencies([passed]):
            batch = tf.identity(batch)
        return self.base(batch)


def sent_maps(w):
    """The float32 maps the browser was sent, as (H, W) arrays (the compare panel's
    only in compare mode)."""
    height, width = w.display_size
    return {
        name: np.frombuffer(getattr(w, name), np.float32).reshape(height, width)
        for name in widget.MAP_BUFFERS
        if getattr(w, name)
    }


def message_from_the_browser(w, kind):
    """What the view's Compute and Cancel buttons send."""
    w._handle_msg(
        {"content": {"data": {"method": "custom", "content": {"type": kind}}}, "buffers": []}
    )


def shown_traits(w):
    """The synced values that show the result."""
    return {name: getattr(w, name) for name in ("summary", "path", "classes", *widget.MAP_BUFFERS)}
