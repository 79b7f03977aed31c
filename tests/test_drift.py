"""igw.compare_datasets: exact drift columns on stores with known maps, streamed chunk by chunk."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

import ig_widget as igw
from ig_widget.dataset.drift import rank_correlation, top_iou, top_pixels
from ig_widget.dataset.result import DatasetResult

from .models import linear_model, tiny_cnn

SIZE = 16
COUNT = 9
CHUNK = 4


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (COUNT, SIZE, SIZE, 3)).astype(np.uint8)
    masks = np.zeros((COUNT, SIZE, SIZE), bool)
    masks[:, :8] = True
    return images, rng.integers(0, 4, COUNT), masks


def explain(model, data, store, **options):
    images, labels, masks = data
    options = {"labels": labels, "masks": masks, "steps": 4, "chunk_size": CHUNK, **options}
    return igw.explain_dataset(model, images, store=store, progress=False, **options)


@pytest.fixture(scope="module")
def stores(data, tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    first = explain(tiny_cnn(SIZE, seed=5), data, root / "a")
    # Another model, its maps in float16 and in chunks of another size.
    second = explain(tiny_cnn(SIZE, seed=6), data, root / "b", maps_dtype="float16", chunk_size=3)
    return first, second


def test_identical_stores_agree_completely(stores, tmp_path):
    first, _ = stores
    copy = first.save(tmp_path / "copy")
    table = igw.compare_datasets(first, copy.path).table
    assert len(table) == COUNT and table.index.tolist() == list(range(COUNT))
    assert (table["rank_correlation"] == 1.0).all()
    assert (table["top_iou"] == 1.0).all()
    assert not table["prediction_changed"].any()
    assert (table["score_change"] == 0).all() and (table["mask_share_change"] == 0).all()
    assert (table["source"] == first.table["source"]).all()


def test_rank_correlation_and_iou_match_a_direct_computation(stores):
    first, second = stores
    comparison = igw.compare_datasets(first, second, names=("seed 5", "seed 6"))
    table = comparison.table
    for image in range(COUNT):
        map_a = first[image].attributions.sum(axis=2, dtype=np.float64).ravel()
        map_b = second[image].attributions.sum(axis=2, dtype=np.float64).ravel()
        expected = spearmanr(map_a, map_b).statistic
        assert table.loc[image, "rank_correlation"] == pytest.approx(expected, abs=1e-12)
        # The top 5 % of 256 pixels: the 13 largest values (no ties in these maps).
        top_a = set(np.argsort(map_a)[-13:])
        top_b = set(np.argsort(map_b)[-13:])
        assert table.loc[image, "top_iou"] == len(top_a & top_b) / len(top_a | top_b)
    assert (table["rank_correlation"] < 1).all()
    predicted_a, predicted_b = first.table["predicted"], second.table["predicted"]
    assert table["prediction_changed"].tolist() == (predicted_a != predicted_b).tolist()
    assert np.allclose(table["score_change"], second.table["score"] - first.table["score"])
    assert np.allclose(
        table["mask_share_change"], second.table["mask_share"] - first.table["mask_share"]
    )


def test_a_hand_made_pair_has_the_known_top_pixel_overlap(tmp_path):
    # F(x) = x . w: with a black baseline, IG is exactly w * x, so the maps are the weights.
    images = np.ones((2, 10, 10, 3), np.float32)
    shape = (10, 10, 3, 2)

    def weights(top):
        w = np.zeros(shape, np.float32)
        w[..., 0, 0] = np.linspace(0.01, 0.02, 100).reshape(10, 10)
        w[..., 0, 0].flat[top] = 1.0  # pixels counted row by row
        return w

    results = [
        igw.explain_dataset(
            linear_model(weights(top)),
            images,
            baseline="black",
            steps=2,
            store=tmp_path / name,
            progress=False,
        )
        for name, top in (("a", [0, 1, 2, 3, 4]), ("b", [3, 4, 5, 6, 7]))
    ]
    table = igw.compare_datasets(*results).table
    # The top 5 % of 100 pixels: 5 each, 2 shared, 8 in all.
    assert table["top_iou"].tolist() == [0.25, 0.25]
    assert not table["prediction_changed"].any()


def test_streams_a_chunk_at_a_time(stores, monkeypatch):
    first, second = stores
    reads = []
    original = DatasetResult.read_rows

    def recorded(self, name, rows):
        reads.append(len(rows))
        return original(self, name, rows)

    monkeypatch.setattr(DatasetResult, "read_rows", recorded)
    igw.compare_datasets(first, second)
    assert reads and max(reads) <= CHUNK
    assert sum(reads) == 2 * COUNT


def test_other_images_are_refused_before_any_map_is_read(stores, data, tmp_path, monkeypatch):
    first, _ = stores
    images, labels, masks = data
    model = tiny_cnn(SIZE, seed=5)
    fewer = explain(model, (images[:5], labels[:5], masks[:5]), tmp_path / "fewer")
    other = explain(model, (255 - images, labels, masks), tmp_path / "other")
    rng = np.random.default_rng(2)
    bigger = igw.explain_dataset(
        tiny_cnn(SIZE + 4, seed=5),
        rng.integers(0, 256, (COUNT, SIZE + 4, SIZE + 4, 3)).astype(np.uint8),
        steps=4,
        store=tmp_path / "bigger",
        progress=False,
    )

    def no_reads(self, name, rows):
        raise AssertionError("a map was read")

    monkeypatch.setattr(DatasetResult, "read_rows", no_reads)
    with pytest.raises(
        ValueError, match=r"^b: expected a store of the same images as a; a holds 9"
    ):
        igw.compare_datasets(first, fewer)
    with pytest.raises(ValueError, match=r"^b: expected the same images as a; image 0 differs"):
        igw.compare_datasets(first, other)
    with pytest.raises(ValueError, match=r"^b: expected the same image shape as a, \(16, 16, 3\)"):
        igw.compare_datasets(first, bigger)
    with pytest.raises(TypeError, match=r"^a: expected a DatasetResult or a store path, got int"):
        igw.compare_datasets(3, first)
    with pytest.raises(ValueError, match=r"^names: expected two different non-empty names"):
        igw.compare_datasets(first, first, names=("x", "x"))
    with pytest.raises(ValueError, match=r"^top_share: expected a number in \[0.0, 1.0\]"):
        igw.compare_datasets(first, first, top_share=2)


def test_top_pixels_count_and_ties():
    assert np.count_nonzero(top_pixels(np.arange(100.0), 0.05)) == 5
    assert top_pixels(np.zeros(4), 0.5).tolist() == [True, True, False, False]
    assert top_iou(np.arange(4.0), np.arange(4.0), 0.5) == 1.0
    assert np.isnan(rank_correlation(np.ones(4), np.arange(4.0)))


def test_report_section_names_the_stores_and_lists_the_most_changed(stores):
    first, second = stores
    comparison = igw.compare_datasets(first, second, names=("before", "after"))
    section = comparison.report_section()
    table = comparison.table
    assert section.title == "What changed between 'before' and 'after'"
    changed = int(table["prediction_changed"].sum())
    assert section.summary[0] == "'after' compared with 'before' over the same 9 images."
    assert section.summary[1].startswith(f"{changed:,} of 9 images")
    assert f"median {table['rank_correlation'].median():.3g}" in section.summary[2]
    assert "inside the mask" in section.summary[3]
    [worst] = section.tables
    assert worst.columns[:4] == ("image", "source", "predicted (before)", "predicted (after)")
    assert [row[0] for row in worst.rows] == table.sort_values("rank_correlation").index[
        :9
    ].tolist()
    assert worst.rows[0][4] == table["rank_correlation"].min()
    # The three that changed most as pictures: the thumbnail, a's and b's IG pictures.
    assert len(section.pictures) == 3
    first_image = int(worst.rows[0][0])
    assert section.pictures[0].caption.startswith(f"Image #{first_image}: rank correlation")
    assert section.pictures[0].caption.endswith(f"source array[{first_image}]")
    from PIL import Image

    picture = Image.open(io.BytesIO(section.pictures[0].png))
    assert picture.format == "PNG" and picture.width > 3 * SIZE


def test_stores_without_checksums_are_compared_pixel_by_pixel(stores, data, tmp_path):
    # A store written before checksums existed: the images are compared as they stream.
    first, _ = stores
    images, labels, masks = data
    other = explain(tiny_cnn(SIZE, seed=5), (255 - images, labels, masks), tmp_path / "other")
    old_first, old_other = igw.open_dataset(first.path), igw.open_dataset(other.path)
    old_first._checksums = old_other._checksums = None
    with pytest.raises(ValueError, match=r"^b: expected the same images as a; image 0 differs$"):
        igw.compare_datasets(old_first, old_other)
    same = igw.compare_datasets(old_first, first).table
    assert (same["rank_correlation"] == 1.0).all() and (same["top_iou"] == 1.0).all()


def test_a_missing_chunk_of_either_store_raises_never_zeros(stores, tmp_path):
    first, second = stores
    damaged = first.save(tmp_path / "damaged")
    (Path(damaged.path) / "arrays.zarr" / "attributions" / "c" / "1" / "0" / "0" / "0").unlink()
    file = "arrays.zarr/attributions/c/1/0/0/0"
    with pytest.raises(ValueError, match=f"row 4 of 'attributions': its chunk file '{file}' is"):
        igw.compare_datasets(second, damaged.path)


def test_the_audit_report_shows_the_comparison(stores, tmp_path):
    first, second = stores
    comparison = igw.compare_datasets(first, second, names=("before", "<b>after</b>"))
    page = first.report(tmp_path / "audit.html", sections=[comparison]).read_text()
    section = comparison.report_section()
    assert html.escape(section.title) in page
    assert html.escape(section.summary[1]) in page
    assert "<b>after</b>" not in page
    assert page.count("data:image/png;base64,") >= len(section.pictures)
