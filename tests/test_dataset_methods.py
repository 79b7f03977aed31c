"""explain_dataset with a method other than integrated gradients (Grad-CAM, occlusion): each
image's map is the method's single-image result, the store holds what the method produces and
nothing else, records the method and its parameters, and every consumer reads it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

import ig_widget as igw
from ig_widget.explainers import AttributionResult

from .models import convolution_names, random_dataset, tiny_cnn
from .ray_local import start_local_ray

SIZE = 16
COUNT = 7
CHUNK = 3


@pytest.fixture(scope="module")
def model():
    return tiny_cnn(SIZE, seed=3)


@pytest.fixture(scope="module")
def layer(model):
    return convolution_names(model)[-1]  # Grad-CAM's default layer


@pytest.fixture(scope="module")
def data():
    return random_dataset(COUNT, SIZE)


@pytest.fixture(scope="module")
def cams(model, data, tmp_path_factory):
    images, labels, masks = data
    return igw.explain_dataset(
        model,
        images,
        labels=labels,
        masks=masks,
        explainer="gradcam",
        chunk_size=CHUNK,
        insertion_deletion_steps=4,
        store=tmp_path_factory.mktemp("gradcam") / "store",
        progress=False,
    )


# A linear model with known occlusion drops: class 0 scores sum(W * x), class 1 minus that.
WEIGHTS = np.random.default_rng(5).normal(size=(4, 4, 3)).astype(np.float32)


def linear(x):
    total = tf.reduce_sum(tf.cast(x, tf.float32) * WEIGHTS, axis=[1, 2, 3])
    return tf.stack([total, -total], axis=1)


def test_occlusion_of_a_linear_model_is_each_images_occlusion_exactly(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (5, 4, 4, 3)).astype(np.float32)
    result = igw.explain_dataset(
        linear,
        images,
        explainer="occlusion",
        parameters={"window": 2, "stride": 2},
        targets=[0, 1, 0, 1, 0],
        chunk_size=2,
        store=tmp_path / "store",
        progress=False,
    )
    for index, image in enumerate(images):
        target = index % 2
        single = igw.occlusion(linear, image, window=2, stride=2, target=target)
        stored = result[index]
        assert isinstance(stored, AttributionResult) and stored.explainer == "occlusion"
        np.testing.assert_array_equal(stored.attributions, single.attributions)
        # The known answer: each 2 x 2 window's drop, sum(W * x) over it (black baseline),
        # on every pixel and channel it covers.
        product = (WEIGHTS * image).astype(np.float64) * (1 if target == 0 else -1)
        drops = product.reshape(2, 2, 2, 2, 3).sum(axis=(1, 3, 4))
        expected = np.repeat(np.repeat(drops, 2, axis=0), 2, axis=1)
        np.testing.assert_allclose(stored.attributions, expected[..., None].repeat(3, 2), 1e-5)
    assert result.table["target"].tolist() == [0, 1, 0, 1, 0]
    assert result.parameters == {"window": [2, 2], "stride": [2, 2], "baseline": "black"}


def test_gradcam_maps_equal_each_images_gradcam(model, layer, data, cams):
    images, _, _ = data
    assert len(cams) == COUNT and cams.complete
    for index, image in enumerate(images):
        single = igw.gradcam(model, image)
        stored = cams[index]
        assert stored.attributions.shape == (SIZE, SIZE, 1)  # the method's shape, one channel
        np.testing.assert_allclose(stored.attributions, single.attributions, rtol=1e-5, atol=1e-7)
        assert stored.target == single.target == cams.table.loc[index, "predicted"]
        np.testing.assert_allclose(stored.scores, single.scores, rtol=1e-6)
        assert stored.parameters == {"layer": layer}


def test_the_store_lists_what_it_holds_and_nothing_else(cams, layer, data):
    _, _, masks = data
    manifest = json.loads(_manifest(cams.path))
    arrays = ["attributions", "elapsed_s", "inputs", "points_used", "scores"]
    arrays += ["thumbnail_maps", "thumbnails"]
    assert manifest["arrays"] == arrays
    assert cams.arrays == tuple(arrays)
    assert manifest["explainer"] == {
        "name": "gradcam",
        "title": "Grad-CAM",
        "parameters": {"layer": layer},
    }
    assert manifest["options"]["explainer"] == "gradcam"
    assert manifest["options"]["parameters"] == {}
    # No option Grad-CAM does not take is recorded as if it had been used.
    for name in ("steps", "baseline", "runs", "method", "seed", "tolerance"):
        assert name not in manifest["options"]
    # The columns that do not apply are absent, not NaN.
    assert "delta" not in cams.table and "steps" not in cams.table
    assert list(cams.table.columns) == [
        "source", "label", "predicted", "target", "score", "correct", "mask_share",
        "mask_area", "ground_truth_coverage", "saliency_coverage", "mask_iou",
        "insertion_auc", "deletion_auc",
    ]  # fmt: skip
    # Those that apply to any map are computed from the method's map.
    for index in range(COUNT):
        positive = np.maximum(cams[index].attributions.sum(axis=2, dtype=np.float64), 0)
        share = positive[masks[index]].sum() / positive.sum()
        assert cams.table.loc[index, "mask_share"] == pytest.approx(share, rel=1e-12)
    assert cams.convergence_summary() is None


def _manifest(path: str) -> str:
    with open(f"{path}/ig-dataset.json", encoding="utf-8") as handle:
        return handle.read()


def test_reading_an_array_the_method_does_not_produce_raises_naming_it(cams):
    message = "gradients: Grad-CAM stores no plain gradients"
    with pytest.raises(ValueError, match=message):
        cams.read_rows("gradients", [0, 1])
    with pytest.raises(ValueError, match=message):
        next(cams.iter_arrays(("gradients",)))
    with pytest.raises(ValueError, match="path_scores: Grad-CAM stores no path_scores"):
        cams.read_rows("path_scores", [0])
    # What it holds reads back, verified.
    assert cams.read_rows("attributions", [0, 1]).shape == (2, SIZE, SIZE, 1)
    cams.verify()


def test_options_the_method_does_not_take_are_refused_before_any_work(data, tmp_path):
    images, _, _ = data
    calls = []

    def counted(x):
        calls.append(1)
        return tf.zeros((tf.shape(x)[0], 4))

    store = tmp_path / "store"
    refusals = [
        (dict(explainer="gradcam", steps=8), ValueError, "steps: Grad-CAM takes no steps"),
        (dict(explainer="gradcam", baseline="black"), ValueError, "baseline: Grad-CAM takes no"),
        (dict(explainer="occlusion", tolerance=0.1), ValueError, "tolerance: Occlusion takes no"),
        (dict(explainer="gradcm"), ValueError, "explainer: expected one of"),
        (
            dict(explainer="gradcam", parameters={"window": 4}),
            TypeError,
            "parameters: gradcam takes no parameter 'window'",
        ),
        (
            dict(explainer="occlusion", parameters={"target": 1}),
            ValueError,
            "parameters: 'target' is set by explain_dataset",
        ),
        (
            dict(explainer="occlusion", parameters={"baseline": "white"}),
            ValueError,
            "parameters: 'baseline' is set by explain_dataset",
        ),
        (
            dict(parameters={"layer": "c"}),
            TypeError,
            "parameters: integrated_gradients takes no parameter 'layer'",
        ),
        (dict(explainer="gradcam", stability=2), ValueError, "stability: Grad-CAM takes no seed"),
    ]
    for options, error, message in refusals:
        with pytest.raises(error, match=message):
            igw.explain_dataset(counted, images, store=store, progress=False, **options)
    assert calls == [] and not store.exists()


def test_a_resume_with_another_method_or_parameters_is_refused(model, layer, data, cams):
    images, labels, masks = data
    same = dict(labels=labels, masks=masks, chunk_size=CHUNK, insertion_deletion_steps=4,
                store=cams.path, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="explainer='gradcam', this one has explainer='occlusion'"):
        igw.explain_dataset(model, images, explainer="occlusion", **same)
    with pytest.raises(ValueError, match="explainer='gradcam', this one has explainer='integrated"):
        igw.explain_dataset(model, images, **same)
    with pytest.raises(
        ValueError, match=r"parameters\['layer'\]=not given, this one has parameters\['layer'\]="
    ):
        igw.explain_dataset(model, images, explainer="gradcam", parameters={"layer": layer}, **same)
    # The same computation resumes: nothing is recomputed, nothing changes.
    before = cams.read_rows("attributions", list(range(COUNT)))
    again = igw.explain_dataset(model, images, explainer="gradcam", **same)
    np.testing.assert_array_equal(again.read_rows("attributions", list(range(COUNT))), before)


def test_an_interrupted_occlusion_run_resumes_to_the_uninterrupted_store(model, data, tmp_path):
    images, _, _ = data
    options = dict(explainer="occlusion", parameters={"window": 4}, chunk_size=2)
    whole = igw.explain_dataset(model, images, store=tmp_path / "whole", progress=False, **options)
    with pytest.raises(igw.ComputationCancelled):
        igw.explain_dataset(
            model, images, store=tmp_path / "cut", progress=lambda done, total: done < 4, **options
        )
    resumed = igw.explain_dataset(model, images, store=tmp_path / "cut", progress=False, **options)
    rows = list(range(COUNT))
    np.testing.assert_array_equal(
        resumed.read_rows("attributions", rows), whole.read_rows("attributions", rows)
    )
    with pytest.raises(ValueError, match=r"parameters\['window'\]=4, this one has .*=8"):
        igw.explain_dataset(
            model, images, store=tmp_path / "cut", progress=False,
            **{**options, "parameters": {"window": 8}},
        )  # fmt: skip


def test_a_store_written_before_explainer_was_recorded_resumes_as_integrated_gradients(
    model, data, tmp_path
):
    images, _, _ = data
    options = dict(steps=4, chunk_size=CHUNK, store=tmp_path / "store", progress=False)
    igw.explain_dataset(model, images[:3], **options)
    path = tmp_path / "store" / "ig-dataset.json"
    manifest = json.loads(path.read_text())
    for name in ("explainer", "parameters"):
        del manifest["options"][name]
    path.write_text(json.dumps(manifest))
    resumed = igw.explain_dataset(model, images, **options)
    assert len(resumed) == COUNT and resumed.explainer == "integrated_gradients"
    assert "delta" in resumed.table and "gradients" in resumed.arrays


def test_rerun_of_a_gradcam_store_says_it_has_nothing_to_refine(model, cams):
    with pytest.raises(ValueError, match="rerun: this store holds Grad-CAM maps, which have no"):
        cams.rerun(model, [0], steps=8)


def test_compare_an_integrated_gradients_store_with_a_gradcam_store(model, data, cams, tmp_path):
    images, labels, masks = data
    ig = igw.explain_dataset(
        model, images, labels=labels, masks=masks, steps=4, chunk_size=CHUNK,
        store=tmp_path / "ig", progress=False,
    )  # fmt: skip
    drift = igw.compare_datasets(ig, cams, names=("IG", "Grad-CAM"))
    for index in range(COUNT):
        map_a = ig[index].attributions.sum(axis=2, dtype=np.float64)
        map_b = cams[index].attributions.sum(axis=2, dtype=np.float64)
        expected = spearmanr(map_a.ravel(), map_b.ravel()).statistic
        assert drift.table.loc[index, "rank_correlation"] == pytest.approx(expected, abs=1e-12)
    assert not drift.table["prediction_changed"].any()
    assert drift.report_section().title


def test_cluster_maps_and_the_report_of_a_gradcam_store(cams, tmp_path):
    clusters = igw.cluster_maps(cams, k=2)
    assert clusters.mean_maps.shape[1:] == (SIZE, SIZE, 1)
    for number in range(len(clusters.summary)):
        members = clusters.table.index[clusters.table["cluster"] == number].tolist()
        expected = cams.read_rows("attributions", sorted(members)).mean(axis=0, dtype=np.float64)
        np.testing.assert_allclose(clusters.mean_maps[number], expected, rtol=1e-5, atol=1e-9)
    page = cams.report(tmp_path / "audit.html", sections=[clusters]).read_text()
    assert "image and Grad-CAM map (the store" in page
    assert "Completeness error (delta" not in page
    assert "Grad-CAM has no completeness error" in page
    assert "integrated gradients (" not in page


def test_the_gallery_of_a_gradcam_store_shows_the_input_and_its_map(cams):
    gallery = igw.Gallery(cams)
    assert gallery.sort_by == "score"
    sent = []
    gallery.send = lambda content, buffers=None: sent.append(content)
    gallery._send_thumbnails([0, 1])
    assert all("delta" not in caption for caption in sent[0]["captions"])
    view = gallery.open_image(2)
    assert view.explainer == "gradcam"
    assert [title for title, _ in view._shown.panels()] == ["Grad-CAM"]
    assert view.summary["gradients"] is False and view.summary["explainer_title"] == "Grad-CAM"
    np.testing.assert_array_equal(view.result.attributions, cams[2].attributions)
    gallery.close()
    # A stored map is shown as its own method's, never as another's.
    with pytest.raises(ValueError, match="result: a stored result shows its method; give expl"):
        igw.IGWidget(None, cams.image(0), result=cams[0])


@pytest.fixture(scope="module")
def local_ray():
    import ray

    start_local_ray(2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_writes_the_occlusion_store_the_local_executor_writes(model, data, local_ray, tmp_path):
    images, labels, masks = data
    options = dict(labels=labels, masks=masks, explainer="occlusion", parameters={"window": 4},
                   chunk_size=2, progress=False)  # fmt: skip
    local = igw.explain_dataset(model, images, store=tmp_path / "local", **options)
    on_ray = igw.explain_dataset(
        model, images, store=tmp_path / "ray", executor=igw.RayExecutor(workers=2), **options
    )
    pd.testing.assert_frame_equal(on_ray.table, local.table)
    rows = list(range(COUNT))
    np.testing.assert_allclose(
        on_ray.read_rows("attributions", rows),
        local.read_rows("attributions", rows),
        rtol=1e-5,
        atol=1e-8,
    )
    assert on_ray.arrays == local.arrays and "gradients" not in on_ray.arrays


def test_stability_and_sanity_columns_of_an_occlusion_store(model, data, tmp_path):
    from ig_widget.sanity import randomised_model, similarities

    images = data[0][:3]
    result = igw.explain_dataset(
        model, images, explainer="occlusion", parameters={"window": 4}, baseline="uniform",
        seed=7, stability=2, sanity_check=True, store=tmp_path / "store", progress=False,
    )  # fmt: skip
    random = randomised_model(model)
    for index, image in enumerate(images):
        target = int(result.table.loc[index, "target"])
        drawn = igw.stability(
            model, image, method="occlusion", draws=2, seed=7, target=target,
            parameters={"window": 4, "baseline": "uniform"},
        )  # fmt: skip
        row = result.table.loc[index]
        assert row["stability_rank_correlation"] == pytest.approx(drawn.rank_correlation, 1e-12)
        assert row["stability_top_share"] == pytest.approx(drawn.top_share, 1e-12)
        other = igw.occlusion(random, image, window=4, baseline="uniform", seed=7, target=target)
        expected = similarities(result[index].attributions, other.attributions)[0]
        assert row["sanity_similarity"] == pytest.approx(expected, abs=1e-6)
