"""The widget's Stability button: the shown method run several times by ``igw.stability``,
its spread sent as a display-size map with a summary, cleared by the next result."""

from __future__ import annotations

import numpy as np
import pytest

import ig_widget as igw
from ig_widget.render import block_mean
from ig_widget.widget import STABILITY_DRAWS

from .support import NAMES, message_from_the_browser


def sent_spread(w):
    height, width = w.display_size
    return np.frombuffer(w.stability_spread, np.float32).reshape(height, width)


def test_the_stability_message_shows_the_spread_of_the_shown_result(w, cnn, image):
    assert w.stability_shown is None and w.stability_spread == b""
    message_from_the_browser(w, "stability")
    assert w.wait(timeout=120)
    assert w.error == "" and not w.computing and w.progress_stage == ""
    expected = igw.stability(cnn, image, draws=STABILITY_DRAWS, target=w.result.target,
                             parameters={"steps": 8, "method": "trapezoid"})  # fmt: skip
    shown = w.stability_shown
    assert shown["explainer"] == "integrated_gradients"
    assert shown["title"] == "Integrated gradients"
    assert shown["runs"] == [f"seed={k}" for k in range(STABILITY_DRAWS)]
    assert shown["rank_correlation"] == pytest.approx(expected.rank_correlation, abs=1e-9)
    assert shown["top_share"] == expected.top_share and shown["top_percent"] == 5.0
    assert shown["points_used"] == expected.points_used == STABILITY_DRAWS * 9
    np.testing.assert_allclose(
        sent_spread(w), block_mean(expected.spread.astype(np.float32), 1), rtol=1e-5, atol=1e-6
    )
    assert w.progress == [STABILITY_DRAWS * 9] * 2  # the path points, the last the image's own
    # A new result is not the one measured: the spread goes.
    w.target = w.classes[1][0]
    w.compute()
    assert w.stability_shown is None and w.stability_spread == b""


def test_compute_stability_of_another_method_and_its_checks(cnn, image):
    w = igw.IGWidget(cnn, image, class_names=NAMES, steps=8, explainer="smoothgrad",
                     explainer_options={"smoothgrad": {"samples": 3}})  # fmt: skip
    result = w.compute_stability(draws=3)
    expected = igw.stability(cnn, image, method="smoothgrad", draws=3, target=w.result.target,
                             parameters={"samples": 3})  # fmt: skip
    np.testing.assert_array_equal(result.attributions, expected.attributions)
    assert w.stability_shown["title"] == "SmoothGrad" and len(w.stability_shown["runs"]) == 3
    np.testing.assert_allclose(sent_spread(w), result.spread, rtol=1e-6)
    with pytest.raises(ValueError, match="draws: expected an integer >= 2, got 1"):
        w.compute_stability(draws=1)
    w.explainer = "blur_ig"
    w.compute()
    with pytest.raises(ValueError, match="method: 'blur_ig' takes no seed"):
        w.compute_stability()
    assert "blur_ig" in w.error and w.stability_shown is None
    # The page written now carries no spread; after a stability run it does.
    w.explainer = "integrated_gradients"
    w.compute()
    w.compute_stability(draws=2)
    assert w.stability_shown is not None and len(w.stability_spread) > 0


def test_stability_and_the_sanity_check_explain_the_shown_contrast(cnn, image):
    """Both used to get the shown class alone: the contrast was dropped."""
    w = igw.IGWidget(cnn, image, class_names=NAMES, steps=8, target=1, against=2)
    assert w.result.explained == "class 1 and not class 2"
    drawn = w.compute_stability(draws=2)
    expected = igw.stability(cnn, image, draws=2, target=(1, 2),
                             parameters={"steps": 8, "method": "trapezoid"})  # fmt: skip
    assert drawn.explained == expected.explained == "class 1 and not class 2"
    np.testing.assert_array_equal(drawn.attributions, expected.attributions)
    check = w.sanity_check(layers=1)
    alone = igw.sanity_check(cnn, image, layers=1, target=(1, 2), options={"steps": 8})
    assert check.explained == "class 1 and not class 2"
    np.testing.assert_allclose(check.maps, alone.maps, rtol=1e-5, atol=1e-6)
    assert w.sanity["label"] == f"\u2068{NAMES[1]}\u2069 and not \u2068{NAMES[2]}\u2069"
