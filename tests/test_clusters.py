"""Shortcut discovery: clusters of a store's maps, and Shared Interest on a stored dataset.

The store is made with a linear model, whose attributions are known exactly
(weights * image, from a black baseline). Its weights are 10 times larger
on a corner: a model that reads a mark there when there is one. Class 0:
a square in the middle, half the images also with the corner mark; class
1: a square elsewhere, never marked. Each image has its own brightness and
background noise, so no two maps are alike.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget.dataset.clusters import SHARED_INTEREST_COLUMNS
from ig_widget.report_section import ReportSection
from tests.models import linear_model

SIZE = 32
COUNT = 40
CORNER = (slice(1, 5), slice(SIZE - 5, SIZE - 1))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 20, (COUNT, SIZE, SIZE, 3)).astype(np.float32)
    labels = np.arange(COUNT) % 2
    marked = (labels == 0) & ((np.arange(COUNT) // 2) % 2 == 0)
    for index in range(COUNT):
        top, left = (11, 11) if labels[index] == 0 else (14, 6)
        images[index, top : top + 10, left : left + 10] += rng.uniform(100, 200)
    images[marked, CORNER[0], CORNER[1]] = 255
    masks = np.zeros((COUNT, SIZE, SIZE), bool)
    masks[:, CORNER[0], CORNER[1]] = True
    return images, labels, marked, masks


@pytest.fixture(scope="module")
def weights():
    weights = np.ones((SIZE, SIZE, 3, 2), np.float32)
    weights[CORNER[0], CORNER[1]] = 10
    return weights


@pytest.fixture(scope="module")
def stored(data, weights, tmp_path_factory):
    images, labels, _, masks = data
    return igw.explain_dataset(
        linear_model(weights),
        images,
        labels=labels,
        targets="label",
        masks=masks,
        baseline="black",
        steps=2,
        chunk_size=7,
        store=tmp_path_factory.mktemp("clusters") / "store",
        progress=False,
    )


def test_the_marked_images_are_one_cluster_found_without_the_mask(stored, data, weights):
    images, labels, marked, _ = data
    clusters = igw.cluster_maps(stored)
    # Class 0 splits in two, the marked images exactly; class 1 stays whole.
    assert clusters.summary.to_dict("list") == {
        "class": [0, 0, 1],
        "size": [10, 10, 20],
        "k": [2, 2, 1],
    }
    groups = {c: set(clusters.members(c)) for c in range(3)}
    assert set(np.flatnonzero(marked)) in (groups[0], groups[1])
    assert groups[0] | groups[1] == set(np.flatnonzero(labels == 0))
    assert groups[2] == set(np.flatnonzero(labels == 1))
    assert clusters.table["class"].tolist() == labels.tolist()
    # Mean maps and images: the members' averages (IG of a linear model is weights * image).
    for cluster, members in groups.items():
        attributions = images[sorted(members)] * weights[..., clusters.summary["class"][cluster]]
        np.testing.assert_allclose(
            clusters.mean_maps[cluster], attributions.mean(axis=0), rtol=1e-5
        )
        np.testing.assert_allclose(
            clusters.mean_images[cluster], images[sorted(members)].mean(axis=0), rtol=1e-6
        )
    # The marked cluster's mean map puts most of its attribution on the corner.
    mark = next(c for c in groups if groups[c] == set(np.flatnonzero(marked)))
    positive = clusters.mean_maps[mark].sum(axis=2)
    assert positive[CORNER].sum() / positive.sum() > 0.5


def test_the_same_seed_gives_the_same_clusters(stored):
    first, second = igw.cluster_maps(stored, seed=3), igw.cluster_maps(stored, seed=3)
    assert first.table.equals(second.table) and first.summary.equals(second.summary)
    np.testing.assert_array_equal(first.mean_maps, second.mean_maps)


def test_k_overrides_the_eigengap_and_where_chooses_images(stored, data):
    _, labels, marked, _ = data
    one = igw.cluster_maps(stored, k=1)
    assert one.summary["size"].tolist() == [20, 20]
    three = igw.cluster_maps(stored, k=3)
    assert three.summary["k"].tolist() == [3] * 6 and three.summary["size"].sum() == COUNT
    # Clustered by label among the class-0 images only: the same two groups.
    zeros = igw.cluster_maps(stored.path, by="label", where=labels == 0)
    assert len(zeros.table) == 20
    assert {tuple(zeros.members(c)) for c in range(2)} == {
        tuple(np.flatnonzero(marked)),
        tuple(np.flatnonzero((labels == 0) & ~marked)),
    }


def test_bad_arguments_are_refused_by_name(stored):
    for options, message in [
        ({"by": "score"}, "by: expected one of"),
        ({"k": 0}, "k: expected an integer >= 1"),
        ({"size": 1}, "size: expected an integer >= 2"),
        ({"max_k": 0}, "max_k: expected an integer >= 1"),
        ({"where": []}, "where: expected at least one image"),
    ]:
        with pytest.raises(ValueError, match=message):
            igw.cluster_maps(stored, **options)
    with pytest.raises(TypeError, match="result: expected a DatasetResult"):
        igw.cluster_maps(42)
    with pytest.raises(ValueError, match="cluster: expected an integer"):
        igw.cluster_maps(stored).members(3)


def test_shared_interest_of_hand_made_maps():
    from ig_widget.dataset.columns import salient_region, shared_interest

    positive = np.zeros((4, 5))
    positive[0, :4] = [9, 8, 7, 6]
    positive[3, 4] = 5
    mask = np.zeros((4, 5), bool)
    mask[0, 2:] = True  # 3 pixels
    # Top 20 %: 4 pixels, (0,0..3); 2 of them in the mask.
    assert salient_region(positive, 0.2).sum() == 4
    assert shared_interest(positive, mask, 0.2) == (2 / 3, 2 / 4, 2 / 5)
    # Ties go in reading order; no pixel without positive attribution is salient.
    flat = np.ones((2, 2))
    assert salient_region(flat, 0.5).tolist() == [[True, True], [False, False]]
    assert salient_region(np.zeros((2, 2)), 0.5).sum() == 0
    gt, sc, iou = shared_interest(np.zeros((2, 2)), np.zeros((2, 2), bool), 0.5)
    assert np.isnan(gt) and np.isnan(sc) and np.isnan(iou)
    # 0.07 * 100 is 7.000000000000001: 7 pixels, not 8 (a mask of exactly those: all 1).
    ramp = np.arange(100.0).reshape(10, 10)
    assert salient_region(ramp, 0.07).sum() == 7
    assert shared_interest(ramp, ramp >= 93, 0.07) == (1.0, 1.0, 1.0)


def test_shared_interest_of_a_stored_dataset_equals_its_columns(stored, data, weights):
    images, labels, marked, masks = data
    table = stored.table
    computed = igw.shared_interest(stored, masks)
    for column in SHARED_INTEREST_COLUMNS:
        np.testing.assert_array_equal(computed[column].to_numpy(), table[column].to_numpy())
    # The corner holds 16 pixels, 5 % of 1,024 is 52: on a marked image the 48 brightest
    # attributions (the corner, 3 channels at weight 10) include all 16 of them.
    assert (table["ground_truth_coverage"][marked] == 1.0).all()
    assert (table["saliency_coverage"][marked] == 16 / 52).all()
    assert (table["mask_iou"][marked] == 16 / 52).all()
    # Every image against a plain implementation on its exact attributions.
    for index in range(COUNT):
        flat = (images[index] * weights[..., labels[index]]).sum(axis=2).ravel()
        top = sorted(range(flat.size), key=lambda p: (-flat[p], p))[:52]
        salient = {p for p in top if flat[p] > 0}
        truth = set(np.flatnonzero(masks[index].ravel()))
        both = len(salient & truth)
        assert table["ground_truth_coverage"][index] == pytest.approx(both / len(truth))
        assert table["saliency_coverage"][index] == pytest.approx(both / len(salient))
        assert table["mask_iou"][index] == pytest.approx(both / len(salient | truth))
    # Other masks give other values; a mask of the wrong shape is refused by name.
    squares = np.zeros_like(masks)
    squares[:, 11:21, 11:21] = True
    # Image 0 (marked): the top 10 % (103 pixels) are the corner's 16 and 87 of the square's 100.
    assert igw.shared_interest(stored, squares, share=0.1)["ground_truth_coverage"][0] == 0.87
    with pytest.raises(ValueError, match=r"masks\[0\]: expected shape \(32, 32\)"):
        igw.shared_interest(stored, masks[:, :8])
    with pytest.raises(ValueError, match="share: expected a number in"):
        igw.shared_interest(stored, masks, share=0)


def test_report_section_shows_each_cluster(stored):
    clusters = igw.cluster_maps(stored)
    section = clusters.report_section(class_names=["square", "other"])
    assert isinstance(section, ReportSection)
    [table] = section.tables
    assert table.columns == ("cluster", "class", "images", "share of class")
    assert table.rows == ((0, "square", 10, 0.5), (1, "square", 10, 0.5), (2, "other", 20, 1.0))
    assert "1 of 2 classes fall into more than one cluster: square." in section.summary
    assert len(section.pictures) == 3
    for picture in section.pictures:
        assert Image.open(io.BytesIO(picture.png)).format == "PNG"
    assert section.pictures[2].caption == "Cluster 2: other, 20 images"


def test_the_gallery_sorts_and_filters_by_cluster(stored, data):
    _, _, marked, _ = data
    clusters = igw.cluster_maps(stored)
    gallery = igw.Gallery(stored, clusters=clusters, sort_by="cluster", descending=False)
    assert ["cluster", "integer"] in gallery.columns
    assert gallery.clusters == [[0, 0, 10], [1, 0, 10], [2, 1, 20]]
    assert gallery.shown()["cluster"].tolist() == [0] * 10 + [1] * 10 + [2] * 20
    mark = 0 if clusters.members(0) == list(np.flatnonzero(marked)) else 1
    gallery.filters = [("cluster", "==", mark)]
    assert gallery.shown().index.tolist() == list(np.flatnonzero(marked))
    # The strip's pictures are the clusters' thumbnails, as the grid's are the images'.
    rgb, maps = clusters.thumbnails()
    assert gallery.cluster_rgb == rgb.tobytes() and gallery.cluster_maps == maps.tobytes()
    # Clusters of images of another store are refused by name.
    other = igw.cluster_maps(stored, where=[0, 1, 2, 3])
    with pytest.raises(TypeError, match="clusters: expected MapClusters"):
        igw.Gallery(stored, clusters=clusters.table)
    object.__setattr__(other, "path", "elsewhere")
    with pytest.raises(ValueError, match="clusters: computed from the store 'elsewhere'"):
        igw.Gallery(stored, clusters=other)


@pytest.mark.browser
@pytest.mark.slow
def test_the_gallery_shows_the_clusters_in_jupyterlab(chromium, stored, data, tmp_path, artifacts):
    from ig_widget.render import render_maps

    from .browser import canvas_pixels, jupyter_server, open_notebook, run_all_cells, write_notebook

    _, _, marked, _ = data
    clusters = igw.cluster_maps(stored)
    mark = 0 if clusters.members(0) == list(np.flatnonzero(marked)) else 1
    with jupyter_server(tmp_path) as server:
        write_notebook(
            server.root / "clusters.ipynb",
            [
                "import ig_widget as igw\n"
                f"result = igw.open_dataset({str(stored.path)!r})\n"
                "g = igw.Gallery(result, clusters=igw.cluster_maps(result), "
                "class_names=['<b>square</b>', 'other'], overlay=False)\ng"
            ],
        )
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        open_notebook(page, server, "clusters.ipynb")
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        run_all_cells(page)
        strip = page.locator(".igg-clusters .igg-cell")
        strip.nth(2).wait_for(timeout=120_000)
        assert strip.count() == 3
        assert (
            strip.nth(0).locator(".igg-title").text_content()
            == "Cluster 0 · \u2068<b>square</b>\u2069"
        )
        assert page.locator(".igg b").count() == 0
        # Each mean map is the renderer's picture of the cluster's mean attributions.
        rgb, maps = clusters.thumbnails()
        options = {"overlay": False}
        for number in range(3):
            drawn = canvas_pixels(strip.nth(number).locator("canvas.igg-picture"))
            expected = render_maps(rgb[number], maps[number, 0], maps[number, 1], **options)
            assert np.abs(drawn.astype(int) - expected).max() <= 1
        # Choosing the marked cluster shows its members only; choosing it again, all.
        strip.nth(mark).click()
        page.locator(".igg-count", has_text="10 of 40 images").wait_for()
        page.locator(".igg-scroller .igg-cell .igg-details:has-text('cluster')").first.wait_for()
        shown = page.locator(".igg-scroller .igg-cell:not([hidden])")
        images = {int(shown.nth(i).get_attribute("data-image")) for i in range(shown.count())}
        assert images == set(np.flatnonzero(marked).tolist())
        assert "igg-selected" in strip.nth(mark).get_attribute("class")
        page.wait_for_timeout(300)
        page.screenshot(path=artifacts / "gallery-clusters.png")
        strip.nth(mark).click()
        page.locator(".igg-count", has_text="40 of 40 images").wait_for()
        assert errors == []


def test_a_damaged_store_raises_instead_of_clustering_zeros(stored, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(stored.path, copy)
    (copy / "arrays.zarr" / "attributions" / "c" / "1" / "0" / "0" / "0").unlink()
    with pytest.raises(ValueError, match=r"row 7 of 'attributions': its chunk file .* is missing"):
        igw.cluster_maps(copy)


def test_float16_maps_give_the_same_clusters(stored, data, weights, tmp_path):
    images, labels, _, _ = data
    half = igw.explain_dataset(
        linear_model(weights),
        images,
        labels=labels,
        targets="label",
        baseline="black",
        steps=2,
        chunk_size=7,
        maps_dtype="float16",
        store=tmp_path / "half",
        progress=False,
    )
    full, halved = igw.cluster_maps(stored), igw.cluster_maps(half)
    assert halved.table.equals(full.table)
    np.testing.assert_allclose(halved.mean_maps, full.mean_maps, rtol=2**-10)


def test_large_classes_get_the_same_eigenvalues_from_lanczos():
    from scipy.sparse.csgraph import laplacian

    from ig_widget.dataset.clusters import DENSE_SPECTRUM, affinity, laplacian_eigenvalues

    features = np.random.default_rng(0).random((DENSE_SPECTRUM + 20, 16))
    features[:40] += 1.0  # a group of its own
    graph = affinity(features, 3)
    full = np.clip(np.linalg.eigvalsh(laplacian(graph, normed=True))[:9], 0, None)
    np.testing.assert_allclose(laplacian_eigenvalues(graph, 9), full, atol=1e-9)
    assert full[1] < 0.01 < 0.1 < full[2]  # the group is nearly cut off: two eigenvalues near 0


def test_the_audit_report_shows_the_clusters(stored, tmp_path):
    clusters = igw.cluster_maps(stored)
    page = stored.report(tmp_path / "audit.html", sections=[clusters]).read_text()
    assert "Clusters of the maps (shortcut discovery)" in page
    assert "Cluster 2: class 1, 20 images" in page and page.count("data:image/png") >= 3
