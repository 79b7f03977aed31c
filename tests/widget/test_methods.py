"""The method menu and compare mode: each method's map is the package's function's,
the compared method beside it, the insertion/deletion curves, the checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget.render import channel_maps
from ig_widget.widget.methods import CURVE_STEPS, TITLES

from .support import NAMES, message_from_the_browser, sent_maps

SMOOTHGRAD = {"samples": 4, "seed": 2}


def test_another_method_in_the_third_panel_is_that_function_s_map(cnn, image):
    w = igw.IGWidget(
        cnn, image, explainer="smoothgrad", explainer_options={"smoothgrad": SMOOTHGRAD}
    )
    expected = igw.smoothgrad(cnn, image, target=w.target, **SMOOTHGRAD)
    assert isinstance(w.result, igw.AttributionResult) and w.result.explainer == "smoothgrad"
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-5, atol=1e-9)
    maps = sent_maps(w)
    np.testing.assert_allclose(
        maps["explainer_positive"], channel_maps(expected.attributions)[0], rtol=1e-5, atol=1e-12
    )
    # The gradient panel still shows the plain gradient; no compare panel.
    gradient = igw.gradients(cnn, image, target=w.target)
    np.testing.assert_allclose(maps["gradient_positive"], channel_maps(gradient)[0], rtol=1e-5)
    assert "compare_positive" not in maps and w.compared is None
    summary = w.summary
    assert summary["explainer_title"] == "SmoothGrad" and summary["delta"] is None
    # Its curves replace the path plot.
    [curve] = w.curves
    curves = igw.insertion_deletion(cnn, image, expected, steps=CURVE_STEPS)
    assert curve["title"] == "SmoothGrad"
    np.testing.assert_allclose(curve["deletion"], curves.deletion, rtol=1e-5, atol=1e-7)
    assert curve["insertion_auc"] == pytest.approx(curves.insertion_auc, rel=1e-5)


def test_compare_mode_computes_both_methods_with_their_curves(cnn, image, tmp_path):
    w = igw.IGWidget(cnn, image, steps=8, compare="blur_ig", class_names=NAMES)
    assert isinstance(w.result, igw.IGResult) and w.compared.explainer == "blur_ig"
    # The widget's steps are the path methods' steps.
    assert w.compared.parameters["steps"] == 8
    expected = igw.blur_ig(cnn, image, target=w.target, steps=8)
    np.testing.assert_allclose(w.compared.attributions, expected.attributions, rtol=1e-5)
    maps = sent_maps(w)
    np.testing.assert_allclose(
        maps["compare_negative"], channel_maps(expected.attributions)[1], rtol=1e-5, atol=1e-12
    )
    assert [c["title"] for c in w.curves] == ["Integrated gradients", "Blur IG"]
    assert w.summary["points_used"] == w.result.points_used + w.compared.points_used
    # The PNG shows what the browser does: input and the two methods side by side.
    png = Image.open(w.to_png(tmp_path / "compare.png"))
    one = Image.open(igw.IGWidget(cnn, image, steps=8).to_png(tmp_path / "one.png"))
    assert png.size == one.size  # three panels in both
    # Back to one method: the compare panel empties and the path returns.
    w.compare = ""
    assert w.stale
    w.compute()
    assert w.compared is None and w.curves == [] and w.compare_positive == b""
    assert w.path["alphas"] and not w.stale


def test_the_menus_from_the_browser_apply_with_compute(cnn, image):
    w = igw.IGWidget(cnn, image, steps=8, explainer_options={"xrai": {"min_pixel_diff": 1}})
    accepted = w.set_state({"explainer": "xrai", "compare": "integrated_gradients"})
    assert accepted == {"explainer": "xrai", "compare": "integrated_gradients"}
    assert w.stale and isinstance(w.result, igw.IGResult)
    message_from_the_browser(w, "compute")
    assert w.wait(timeout=120)
    assert isinstance(w.result, igw.XRAIResult) and isinstance(w.compared, igw.IGResult)
    assert w.summary["explainer"] == "xrai" and not w.stale and w.error == ""
    # The progress says which of the four computations it counts, each in its own points.
    updates = [state for _, state, _ in w.comm.updates()]
    assert [u["progress_stage"] for u in updates if "progress_stage" in u] == [
        "1 of 4: XRAI",
        "2 of 4: Integrated gradients",
        "3 of 4: XRAI: insertion and deletion",
        "4 of 4: Integrated gradients: insertion and deletion",
    ]
    completed = [p for p in (u["progress"] for u in updates if "progress" in u) if p[0] == p[1]]
    # A curve stage ends at its 2 * CURVE_STEPS - 1 forward passes; the result at its points.
    assert [2 * CURVE_STEPS - 1] * 2 in completed
    assert completed[-1] == [w.summary["points_used"]] * 2
    # The offered methods, by title; Expected Gradients needs references.
    assert [name for name, _ in w.explainer_choices] == [
        "integrated_gradients", "smoothgrad", "blur_ig", "guided_ig", "xrai", "gradcam",
        "guided_gradcam", "occlusion",
    ]  # fmt: skip
    assert all(title == TITLES[name] for name, title in w.explainer_choices)


def test_expected_gradients_is_offered_with_references(cnn, image):
    references = np.stack([image * 0.5, image[::-1]])
    options = {"expected_gradients": {"references": references, "samples": 8, "seed": 1}}
    w = igw.IGWidget(cnn, image, explainer="expected_gradients", explainer_options=options)
    expected = igw.expected_gradients(cnn, image, target=w.target, **options["expected_gradients"])
    np.testing.assert_allclose(w.result.attributions, expected.attributions, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"explainer": "lime"}, ValueError, "explainer: expected one of 'integrated_gradients'"),
        ({"compare": "integrated_gradients"}, ValueError, "compare: expected another method"),
        ({"explainer": "expected_gradients"}, ValueError, "explainer: expected one of"),
        ({"explainer_options": {"lime": {}}}, ValueError, "explainer_options: expected keys"),
        ({"explainer_options": {"smoothgrad": {"sampels": 3}}}, TypeError,
         r"explainer_options\['smoothgrad'\]: smoothgrad takes no parameter 'sampels'"),
        ({"explainer_options": {"smoothgrad": {"target": 3}}}, ValueError,
         "'target' is set by the widget"),
        ({"explainer_options": [1]}, TypeError, "explainer_options: expected a dict"),
        # The widget's own controls: the map would disagree with what they show.
        ({"explainer_options": {"guided_ig": {"steps": 3}}}, ValueError,
         r"\['guided_ig'\]: 'steps' is the widget's own control for guided_ig: give steps="),
        ({"explainer_options": {"occlusion": {"baseline": "white"}}}, ValueError,
         "'baseline' is the widget's own control for occlusion"),
    ],
)  # fmt: skip
def test_bad_methods_are_refused_before_the_model_runs(image, kwargs, error, pattern):
    from ..models import CountingModel, tiny_cnn

    model = CountingModel(tiny_cnn(16))
    with pytest.raises(error, match=pattern):
        igw.IGWidget(model, image, **kwargs)
    assert model.calls == 0


def test_a_refused_menu_choice_keeps_the_shown_methods(w):
    accepted = w.set_state({"compare": "integrated_gradients"})
    assert accepted == {} and w.compare == "" and w.error.startswith("compare: expected another")
    with pytest.raises(ValueError, match="explainer: expected one of"):
        w.explainer = "expected_gradients"
    assert w.explainer == "integrated_gradients"


def test_a_failing_method_keeps_the_previous_result(cnn, image):
    w = igw.IGWidget(cnn, image, steps=8, explainer_options={"blur_ig": {"max_sigma": -1.0}})
    before = w.result
    w.explainer = "blur_ig"
    with pytest.raises(ValueError, match="max_sigma: expected a number in"):
        w.compute()
    assert w.result is before and w.error.startswith("ValueError: max_sigma")
    assert not w.computing


@pytest.mark.parametrize("compared", ["gradcam", "guided_gradcam", "occlusion"])
def test_gradcam_and_occlusion_in_compare_mode_are_their_functions_maps(cnn, image, compared):
    w = igw.IGWidget(cnn, image, steps=8, compare=compared, baseline="white")
    expected = igw.EXPLAINERS[compared](cnn, image, target=w.target)
    if compared == "occlusion":  # it takes the widget's baseline
        expected = igw.occlusion(cnn, image, target=w.target, baseline="white")
        assert w.compared.parameters["baseline"] == "white"
    assert w.compared.explainer == compared
    np.testing.assert_allclose(w.compared.attributions, expected.attributions, rtol=1e-5)
    maps = sent_maps(w)
    np.testing.assert_allclose(
        maps["compare_positive"], channel_maps(expected.attributions)[0], rtol=1e-5, atol=1e-12
    )
    assert [c["title"] for c in w.curves] == ["Integrated gradients", TITLES[compared]]
    curves = igw.insertion_deletion(cnn, image, expected, steps=CURVE_STEPS)
    np.testing.assert_allclose(w.curves[1]["insertion"], curves.insertion, rtol=1e-5, atol=1e-7)
