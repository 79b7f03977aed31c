"""igw.explain_dataset, DatasetResult and the store: every input kind, resume, interruption."""

from __future__ import annotations

import json
import re
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import ig_widget as igw
from ig_widget.dataset.store import Store, decode_map, encode_map

from .models import random_dataset, tiny_cnn
from .ray_local import start_local_ray

SIZE = 16
STEPS = 4
COUNT = 7
CHUNK = 3


@pytest.fixture(scope="module")
def model():
    return tiny_cnn(SIZE, seed=3)


@pytest.fixture(scope="module")
def data():
    return random_dataset(COUNT, SIZE)


@pytest.fixture(scope="module")
def reference(model, data, tmp_path_factory):
    images, labels, masks = data
    store = tmp_path_factory.mktemp("reference") / "store"
    return igw.explain_dataset(
        model,
        images,
        labels=labels,
        masks=masks,
        steps=STEPS,
        chunk_size=CHUNK,
        store=store,
        progress=False,
    )


def assert_same_results(result, expected):
    assert len(result) == len(expected)
    columns = ["label", "predicted", "target", "score", "delta"]
    pd.testing.assert_frame_equal(result.table[columns], expected.table[columns], rtol=1e-5)
    for index in range(len(expected)):
        np.testing.assert_allclose(
            result[index].attributions, expected[index].attributions, rtol=1e-5, atol=1e-7
        )


def test_each_image_equals_a_single_integrated_gradients_call(model, data, reference):
    images, labels, masks = data
    table = reference.table
    assert list(table.columns) == [
        "source",
        "label",
        "predicted",
        "target",
        "score",
        "delta",
        "steps",
        "correct",
        "mask_share",
        "mask_area",
        "ground_truth_coverage",
        "saliency_coverage",
        "mask_iou",
    ]
    assert reference.complete and len(reference) == COUNT
    for index, image in enumerate(images):
        # A dataset's default baseline is the blurred image (a single call's is black).
        single = igw.integrated_gradients(model, image, steps=STEPS, baseline="blur")
        stored = reference[index]
        np.testing.assert_allclose(stored.attributions, single.attributions, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stored.gradients, single.gradients, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stored.path_scores, single.path_scores, rtol=1e-5)
        assert stored.target == single.target == table.loc[index, "target"]
        assert table.loc[index, "predicted"] == int(np.argmax(single.scores))
        assert table.loc[index, "score"] == pytest.approx(single.score, rel=1e-6)
        assert table.loc[index, "delta"] == pytest.approx(single.delta, rel=1e-4, abs=1e-7)
        assert table.loc[index, "label"] == labels[index]
        assert table.loc[index, "correct"] == (labels[index] == table.loc[index, "predicted"])
        positive = np.maximum(single.attributions.sum(axis=2), 0)
        share = positive[masks[index]].sum() / positive.sum()
        assert table.loc[index, "mask_share"] == pytest.approx(share, rel=1e-5)
        assert table.loc[index, "mask_area"] == pytest.approx(masks[index].mean())
        # Shared Interest: S, the top 5 % of the pixels by positive attribution.
        salient = np.zeros(positive.size, bool)
        salient[
            np.argsort(-positive.ravel(), kind="stable")[: int(np.ceil(0.05 * positive.size))]
        ] = 1
        salient = salient.reshape(positive.shape) & (positive > 0)
        both = (salient & masks[index]).sum()
        assert table.loc[index, "ground_truth_coverage"] == both / masks[index].sum()
        assert table.loc[index, "saliency_coverage"] == both / salient.sum()
        assert table.loc[index, "mask_iou"] == both / (salient | masks[index]).sum()
        assert (
            stored.steps == table.loc[index, "steps"] == STEPS
            and stored.method == "trapezoid"
            and stored.runs == 1
        )
        np.testing.assert_array_equal(reference.image(index), image.astype(np.float32))
    assert table["source"].tolist() == [f"array[{i}]" for i in range(COUNT)]


def test_insertion_and_deletion_areas_as_columns(model, data, tmp_path):
    images = data[0][:4]
    result = igw.explain_dataset(
        model, images, steps=STEPS, chunk_size=CHUNK, store=tmp_path / "s", progress=False,
        insertion_deletion_steps=8,
    )  # fmt: skip
    table = result.table
    assert list(table.columns[-2:]) == ["insertion_auc", "deletion_auc"]
    for index, image in enumerate(images):
        curves = igw.insertion_deletion(model, image, result[index], steps=8)
        assert table.loc[index, "insertion_auc"] == pytest.approx(curves.insertion_auc, rel=1e-5)
        assert table.loc[index, "deletion_auc"] == pytest.approx(curves.deletion_auc, rel=1e-5)
    reopened = igw.open_dataset(tmp_path / "s").table
    pd.testing.assert_frame_equal(reopened, table)
    with pytest.raises(ValueError, match=r"store: .* insertion_deletion_steps=8, this one has"):
        igw.explain_dataset(model, images, steps=STEPS, chunk_size=CHUNK, store=tmp_path / "s",
                            progress=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"insertion_deletion_steps: expected an integer <= 256"):
        igw.explain_dataset(model, images, steps=STEPS, store=tmp_path / "t", progress=False,
                            insertion_deletion_steps=300)  # fmt: skip


def test_stability_scores_as_columns_resume_and_rerun(model, data, tmp_path):
    images = data[0][:5]
    store = tmp_path / "s"
    options = dict(steps=STEPS, chunk_size=CHUNK, store=store, seed=2, stability=3)
    cut = lambda done, total: done < CHUNK  # noqa: E731
    with pytest.raises(igw.ComputationCancelled):
        igw.explain_dataset(model, images, progress=cut, **options)
    result = igw.explain_dataset(model, images, progress=False, **options)  # resumed
    table = result.table
    assert list(table.columns[-2:]) == ["stability_rank_correlation", "stability_top_share"]
    assert igw.open_dataset(store).options["stability"] == 3
    for index, image in enumerate(images):
        target = int(table.loc[index, "target"])
        single = igw.stability(model, image, draws=3, seed=2, target=target,
                               parameters={"steps": STEPS})  # fmt: skip
        assert table.loc[index, "stability_rank_correlation"] == pytest.approx(
            single.rank_correlation, abs=1e-6
        )
        assert table.loc[index, "stability_top_share"] == single.top_share
    assert table["stability_rank_correlation"].between(-1, 1).all()
    assert table["stability_rank_correlation"].nunique() > 1  # the images differ
    for other in (dict(stability=None), dict(stability=4)):
        with pytest.raises(ValueError, match=r"store: .* stability=3, this one has stability="):
            igw.explain_dataset(model, images, progress=False, **{**options, **other})
    # A rerun recomputes the scores with the rerun's steps.
    rerun = result.rerun(model, [1], steps=STEPS // 2).table
    single = igw.stability(model, images[1], draws=3, seed=2, target=int(table.loc[1, "target"]),
                           parameters={"steps": STEPS // 2})  # fmt: skip
    assert rerun.loc[1, "stability_rank_correlation"] == pytest.approx(
        single.rank_correlation, abs=1e-6
    )
    pd.testing.assert_frame_equal(rerun.drop(index=1), table.drop(index=1))
    with pytest.raises(ValueError, match="stability: expected an integer >= 2, got 1"):
        igw.explain_dataset(model, images, store=tmp_path / "t", progress=False, stability=1)
    assert not (tmp_path / "t").exists()


def test_every_input_kind_gives_the_same_results(model, data, reference, tmp_path):
    import tensorflow as tf
    import torch

    images, labels, masks = data
    folder = tmp_path / "images"
    for index, image in enumerate(images):
        # Subfolders are read too, in sorted path order.
        path = folder / f"part{index // 4}" / f"{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    pairs = [(image, int(label)) for image, label in zip(images, labels, strict=True)]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(labels)),
        batch_size=2,
    )
    inputs = {
        "list of arrays": (list(images), labels),
        "list of PIL images": ([Image.fromarray(image) for image in images], labels),
        "list of paths": (sorted(folder.rglob("*.png")), labels),
        "folder": (folder, labels),
        "generator of pairs": ((pair for pair in pairs), None),
        "tf.data batched": (tf.data.Dataset.from_tensor_slices((images, labels)).batch(3), None),
        "tf.data": (tf.data.Dataset.from_tensor_slices((images, labels)), None),
        "DataLoader": (loader, None),
    }
    for name, (source, given_labels) in inputs.items():
        result = igw.explain_dataset(
            model,
            source,
            labels=given_labels,
            masks=masks,
            steps=STEPS,
            chunk_size=CHUNK,
            store=tmp_path / name,
            progress=False,
        )
        assert result.complete, name
        assert_same_results(result, reference)
    sources = igw.open_dataset(tmp_path / "folder").table["source"].tolist()
    assert sources[0].endswith("part0/00.png") and sources[-1].endswith("part1/06.png")
    assert igw.open_dataset(tmp_path / "DataLoader").table["source"][4] == "DataLoader[4]"


def test_images_are_streamed_a_chunk_at_a_time(model, data, tmp_path):
    images, _, _ = data
    store = tmp_path / "store"
    stored_when_pulled = []

    def images_one_by_one():
        for index, image in enumerate(images):
            done = Store(str(store)).done_chunks() if store.exists() else set()
            stored_when_pulled.append((index, len(done)))
            yield image

    result = igw.explain_dataset(
        model, images_one_by_one(), steps=STEPS, chunk_size=CHUNK, store=store, progress=False
    )
    # Image i is read only once the chunks before its own are stored, but the one just
    # before, which the writer thread may still be storing while this chunk is computed.
    for index, done in stored_when_pulled:
        assert max(0, index // CHUNK - 1) <= done <= index // CHUNK, (index, done)
    assert len(result) == COUNT and result.complete
    # An input of unknown length: the arrays grew and were cut to the count.
    assert Store(str(store)).read("attributions", slice(None)).shape[0] == COUNT


def test_a_cancelled_run_keeps_its_chunks_and_resumes(model, data, reference, tmp_path):
    images, labels, masks = data
    store = tmp_path / "store"
    options = dict(labels=labels, masks=masks, steps=STEPS, chunk_size=CHUNK, store=store)
    # Told to stop after the first chunk: the second, computed while the first was
    # stored, is stored too (np.False_ stops as False does).
    stop = lambda done, total: np.bool_(done < CHUNK)  # noqa: E731
    with pytest.raises(igw.ComputationCancelled, match="the 6 images done are kept") as caught:
        igw.explain_dataset(model, images, progress=stop, **options)
    assert str(store) in str(caught.value)
    partial = igw.open_dataset(store)
    assert not partial.complete and len(partial) == 2 * CHUNK
    assert "incomplete" in repr(partial)
    with pytest.raises(IndexError, match="image 6 is not in the store"):
        partial[6]

    seen = []
    resumed = igw.explain_dataset(
        model, images, progress=lambda done, total: seen.append((done, total)), **options
    )
    # Only the chunk not stored was computed.
    assert seen == [(COUNT, COUNT)]
    assert resumed.complete
    assert_same_results(resumed, reference)


def test_ctrl_c_keeps_what_is_done(model, data, reference, tmp_path):
    images, labels, masks = data
    store = tmp_path / "store"
    options = dict(labels=labels, masks=masks, steps=STEPS, chunk_size=CHUNK, store=store)

    def interrupt(done, total):
        if done >= 2 * CHUNK:
            raise KeyboardInterrupt

    # Interrupted when the second chunk is reported: the third, computed meanwhile, is kept.
    with pytest.raises(KeyboardInterrupt, match="interrupted; the 7 images done are kept"):
        igw.explain_dataset(model, images, progress=interrupt, **options)
    interrupted = igw.open_dataset(store)
    assert len(interrupted) == COUNT and not interrupted.complete
    assert_same_results(igw.explain_dataset(model, images, progress=False, **options), reference)


def test_progress_bar_shows_images_per_second(model, data, tmp_path, capsys):
    images, _, _ = data
    igw.explain_dataset(model, images[:4], steps=STEPS, chunk_size=2, store=tmp_path / "s")
    err = capsys.readouterr().err
    # tqdm's line: done/total [elapsed<ETA, rate] (seconds per image below one image/s).
    line = r"explain_dataset: .*4/4 \[\d\d:\d\d<\d\d:\d\d, *[\d.]+(image/s|s/image)\]"
    assert re.search(line, err), err


def test_a_finished_store_reopens_and_saves(reference, tmp_path):
    reopened = igw.open_dataset(reference.path)
    assert_same_results(reopened, reference)
    copy = reopened.save(tmp_path / "copy")
    assert copy.path == str(tmp_path / "copy")
    assert_same_results(copy, reference)
    manifest = json.loads((tmp_path / "copy" / "ig-dataset.json").read_text())
    assert manifest["complete"] and manifest["count"] == COUNT
    assert manifest["options"]["steps"] == STEPS
    with pytest.raises(ValueError, match="exists; give a new folder"):
        reopened.save(tmp_path / "copy")
    # The store is plain Parquet and Zarr.
    parts = sorted((tmp_path / "copy" / "table").glob("chunk-*.parquet"))
    assert len(parts) == 3
    assert len(pd.read_parquet(parts[0])) == CHUNK
    import zarr

    arrays = zarr.open_group(str(tmp_path / "copy" / "arrays.zarr"), mode="r")
    assert arrays["attributions"].shape == (COUNT, SIZE, SIZE, 3)


def test_float16_maps_stay_within_the_documented_bound(model, data, reference, tmp_path):
    images, labels, masks = data
    half = igw.explain_dataset(
        model,
        images,
        labels=labels,
        masks=masks,
        steps=STEPS,
        chunk_size=CHUNK,
        store=tmp_path / "half",
        maps_dtype="float16",
        progress=False,
    )
    for index in range(COUNT):
        for name in ("attributions", "gradients"):
            exact = getattr(reference[index], name)
            stored = getattr(half[index], name)
            bound = np.maximum(2.0**-11 * np.abs(exact), 2.0**-25 * np.abs(exact).max())
            assert np.all(np.abs(stored - exact) <= bound * 1.0001), (index, name)
    # Values far beyond float16's range keep their relative precision.
    values = np.array([1e9, -3e7, 2.5, 0.0, 1e-3], np.float32)
    stored, scale = encode_map(values, "float16")
    assert stored.dtype == np.float16
    decoded = decode_map(stored, scale)
    assert np.all(np.abs(decoded - values) <= np.maximum(2.0**-11 * np.abs(values), 2.0**-25 * 1e9))


def test_bad_input_is_refused_before_any_work(model, data, tmp_path, monkeypatch):
    images = data[0]
    store = tmp_path / "s"
    cases = [
        (dict(steps=0), ValueError, "steps: expected an integer >= 1"),
        (dict(targets="best"), ValueError, "targets: expected one of 'predicted', 'label'"),
        (dict(targets=[1, 2]), ValueError, "targets: expected 7 class indices"),
        (dict(targets="label"), ValueError, "targets: 'label' needs labels"),
        (dict(maps_dtype="int8"), ValueError, "maps_dtype: expected one of"),
        (dict(executor="dask"), ValueError, "executor: expected one of 'local', 'ray'"),
        (dict(executor=object()), TypeError, "executor: expected 'local', 'ray' or"),
        (dict(chunk_size=0), ValueError, "chunk_size: expected an integer >= 1"),
        (dict(progress="yes"), TypeError, "progress: expected True, False or a callable"),
        (dict(store=3), TypeError, "store: expected a path or URI"),
        (dict(insertion_deletion_steps=0), ValueError, "insertion_deletion_steps: expected an"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            igw.explain_dataset(model, images, **{"store": store, "progress": False, **options})
        assert not store.exists(), options
    # No image: refused, nothing left behind, also by an empty iterator (found when it ends)
    # and by a first image the model fails on; the temporary folder of store=None too.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    (tmp_path / "temporary").mkdir()
    for empty, words in ((images[:0], "an empty ndarray"), ([], "an empty list"),
                         (iter([]), "none from the list_iterator")):  # fmt: skip
        for where in (store, None):
            with pytest.raises(
                ValueError, match=f"^images: expected at least one image, got {words}$"
            ):
                igw.explain_dataset(model, empty, store=where, progress=False)

    def failing(batch):
        raise RuntimeError("the model failed")

    with pytest.raises(ValueError, match=r"model: failed on a batch .* the model failed"):
        igw.explain_dataset(failing, images, store=store, progress=False)
    assert not store.exists() and not any((tmp_path / "temporary").glob("ig-dataset-*"))

    def fails_on_a_chunk(batch):  # the store is created from one image, then its first chunk
        import tensorflow as tf

        tf.debugging.assert_less(tf.shape(batch)[0], 2, message="out of memory")
        return model(batch)

    deep = tmp_path / "a" / "b" / "store"
    for where in (deep, None):
        with pytest.raises(ValueError, match="out of memory"):
            igw.explain_dataset(fails_on_a_chunk, images, store=where, steps=2, progress=False)
    # (TensorFlow's autograph writes its own files to the temporary folder.)
    assert not (tmp_path / "a").exists()
    assert not any((tmp_path / "temporary").glob("ig-dataset-*"))
    import torch

    class Interrupted(torch.nn.Module):  # Ctrl+C in the first chunk
        def forward(self, batch):
            if batch.shape[0] > 1:
                raise KeyboardInterrupt
            return batch.mean(dim=(1, 2))

    with pytest.raises(KeyboardInterrupt, match="before any image was stored; nothing is kept"):
        igw.explain_dataset(Interrupted(), images, store=deep, steps=2, progress=False)
    assert not (tmp_path / "a").exists()
    with pytest.raises(TypeError, match="model: expected a Keras model or callable"):
        igw.explain_dataset(None, images, store=store)
    with pytest.raises(ValueError, match=r"images: expected an array of images \(N, H, W, C\)"):
        igw.explain_dataset(model, images[0], store=store)
    with pytest.raises(ValueError, match="not a folder"):
        igw.explain_dataset(model, str(tmp_path / "missing.png"), store=store)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an ig-widget dataset store"):
        igw.explain_dataset(model, images, store=tmp_path / "other")
    assert [path.name for path in (tmp_path / "other").iterdir()] == ["notes.txt"]  # no lock
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_bad_images_labels_and_masks_name_the_image(model, data, tmp_path):
    images, labels, masks = data
    mixed = [images[0], images[1], np.zeros((8, 8, 3), np.uint8)]
    cases = [
        (dict(images=mixed), "images\\[2\\]: has shape \\(8, 8, 3\\), the first image had"),
        (dict(images=images, labels=labels[:3]), "labels: expected 7 \\(one per image\\), got 3"),
        (dict(images=images, labels=[*labels, 1]), "labels: expected 7 \\(one per image\\), got 8"),
        (dict(images=iter(images), labels=labels[:3]), "labels: fewer labels \\(3\\) than"),
        (dict(images=iter(images), labels=[*labels, 1]), "labels: more labels \\(8\\) than"),
        (dict(images=images, masks=masks[:, :8]), "masks\\[0\\]: expected a mask of the image's"),
        (dict(images=images, masks=masks[:2]), "masks: expected 7 \\(one per image\\), got 2"),
        (dict(images=iter(images), masks=masks[:2]), "masks: fewer masks than images"),
        (dict(images=images, labels=[-1] * COUNT), "labels\\[0\\]: expected a class index >= 0"),
    ]
    for number, (options, message) in enumerate(cases):
        with pytest.raises(ValueError, match=message):
            igw.explain_dataset(
                model, steps=STEPS, store=tmp_path / str(number), progress=False, **options
            )


def test_resuming_with_other_options_is_refused(model, data, reference):
    images, labels, masks = data
    with pytest.raises(ValueError, match="holds a computation with steps=4, this one has steps=5"):
        igw.explain_dataset(
            model, images, labels=labels, masks=masks, steps=5, store=reference.path
        )
    with pytest.raises(ValueError, match="holds a computation with masks=True"):
        igw.explain_dataset(model, images, labels=labels, steps=STEPS, store=reference.path)


def test_targets_label_and_explicit(model, data, tmp_path):
    images, labels, _ = data
    by_label = igw.explain_dataset(
        model,
        images,
        labels=labels,
        targets="label",
        steps=STEPS,
        store=tmp_path / "label",
        progress=False,
    )
    assert by_label.table["target"].tolist() == labels.tolist()
    chosen = [3, 2, 1, 0, 3, 2, 1]
    explicit = igw.explain_dataset(
        model, images, targets=chosen, steps=STEPS, store=tmp_path / "explicit", progress=False
    )
    assert explicit.table["target"].tolist() == chosen
    single = igw.integrated_gradients(model, images[1], target=2, steps=STEPS, baseline="blur")
    np.testing.assert_allclose(explicit[1].attributions, single.attributions, rtol=1e-5, atol=1e-7)
    pairs = ((image, None if i == 2 else 1) for i, image in enumerate(images))
    with pytest.raises(ValueError, match="image 2 \\(iterable\\[2\\]\\) has none"):
        igw.explain_dataset(
            model, pairs, targets="label", steps=STEPS, store=tmp_path / "p", progress=False
        )


def test_a_missing_dependency_names_the_extra(monkeypatch, model, data, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_zarr(name, *args, **kwargs):
        if name == "zarr" or name.startswith("zarr."):
            raise ImportError("No module named 'zarr'", name="zarr")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_zarr)
    with pytest.raises(ImportError, match=r"zarr is missing: .*pip install 'ig-widget\[dataset\]'"):
        igw.explain_dataset(model, data[0], store=tmp_path / "s")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module, shut down after it."""
    import ray

    start_local_ray(2)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_writes_the_store_the_local_executor_writes(model, data, local_ray, tmp_path):
    import zarr

    images, labels, masks = data
    # With the stability columns: the workers run the same uniform-noise draws.
    options = dict(labels=labels, masks=masks, steps=STEPS, chunk_size=2, progress=False,
                   seed=4, stability=2)  # fmt: skip
    local = igw.explain_dataset(model, images, store=tmp_path / "local", **options)
    on_ray = igw.explain_dataset(
        model,
        images,
        store=tmp_path / "ray",
        executor=igw.RayExecutor(workers=2),
        **options,
    )
    assert on_ray.complete
    pd.testing.assert_frame_equal(on_ray.table, local.table)
    expected = zarr.open_group(str(tmp_path / "local" / "arrays.zarr"), mode="r")
    written = zarr.open_group(str(tmp_path / "ray" / "arrays.zarr"), mode="r")
    assert sorted(written.array_keys()) == sorted(expected.array_keys())
    # A Ray worker is another process whose oneDNN kernels may sum in another order: float32
    # rounding (seen: 1.9e-9 on maps of 1e-4) is the only difference allowed.
    for name in expected.array_keys():
        if name != "elapsed_s":
            np.testing.assert_allclose(
                written[name][:], expected[name][:], rtol=1e-5, atol=1e-8, err_msg=name
            )
    manifests = [
        json.loads((tmp_path / name / "ig-dataset.json").read_text()) for name in ("local", "ray")
    ]
    for manifest in manifests:
        manifest.pop("created")
    assert manifests[0] == manifests[1]


def test_the_defaults_converge_on_the_demo_and_the_summary_counts_the_rest(capsys, tmp_path):
    images, labels, _ = igw.demo.make_shapes(24, seed=1)
    result = igw.explain_dataset(
        igw.demo.model(), images, labels=labels, store=tmp_path / "s", progress=False
    )
    assert result.options["baseline"] == "blur" and result.options["steps"] == "auto"
    table = result.table
    assert (table["delta"] <= 0.01).all(), table["delta"].max()
    # Each row records the intervals steps="auto" settled on.
    assert set(table["steps"]) <= {8, 16, 32, 64, 128, 256, 512}
    assert result.convergence_summary() is None
    above = int((table["delta"] > 0.001).sum())
    assert 0 < above < 24
    assert result.convergence_summary(0.001) == (
        f"{above} of 24 images have completeness error above 0.1 %: result.rerun(model, "
        "where=result.table.delta > 0.001, steps=...) recomputes them with more steps (up to "
        '512; the "steps" column records each row\'s)'
    )
    # No line without a bar (progress=False); with it, the line is printed at the end.
    assert capsys.readouterr().out == ""


def test_the_summary_line_is_printed_after_the_bar(model, data, tmp_path, capsys):
    images = data[0][:3]
    result = igw.explain_dataset(model, images, steps=2, store=tmp_path / "s", progress=True)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    above = int((result.table["delta"] > 0.05).sum())
    assert above > 0, result.table["delta"]
    assert line == result.convergence_summary()
    # steps=2 is all this store's paths hold: the line says a rerun cannot help.
    assert line == (
        f"{above} of 3 images have completeness error above 5 %, already at the 2 steps this "
        "store holds: their score changes too sharply along the path; a new store with more "
        "steps (up to 10,000) or another baseline may converge"
    )


def test_rerun_recomputes_the_chosen_rows_and_records_their_steps(model, data, tmp_path):
    images, labels, masks = data
    result = igw.explain_dataset(
        model, images, labels=labels, masks=masks, chunk_size=CHUNK, tolerance=10.0,
        store=tmp_path / "s", progress=False,
    )  # fmt: skip
    before = result.table
    assert (before["steps"] == 8).all()  # the loose tolerance stops at the first grid
    chosen = np.zeros(COUNT, bool)
    chosen[[1, 4, 5]] = True
    rerun = result.rerun(model, where=chosen, steps=64, masks=masks)
    table = rerun.table
    assert table["steps"].tolist() == [64 if c else 8 for c in chosen]
    for index, image in enumerate(images):
        expected = igw.integrated_gradients(
            model, image, baseline="blur", steps=64 if chosen[index] else 8
        )
        stored = rerun[index]
        np.testing.assert_allclose(stored.attributions, expected.attributions, rtol=1e-5, atol=1e-7)
        assert stored.steps == table.loc[index, "steps"]
        assert table.loc[index, "delta"] == pytest.approx(expected.delta, rel=1e-4, abs=1e-7)
        positive = np.maximum(expected.attributions.sum(axis=2), 0)
        share = positive[masks[index]].sum() / positive.sum()
        assert table.loc[index, "mask_share"] == pytest.approx(share, rel=1e-5)
    unchanged = ~chosen
    pd.testing.assert_frame_equal(table[unchanged], before[unchanged])
    assert table.dtypes.equals(before.dtypes)
    manifest = json.loads((tmp_path / "s" / "ig-dataset.json").read_text())
    assert manifest["reruns"][0]["rows"] == [1, 4, 5]
    assert manifest["reruns"][0]["options"] == {"steps": 64}
    assert "rerun_pending" not in manifest
    # Every array row, recomputed or not, matches the checksum the table holds for it.
    igw.open_dataset(tmp_path / "s", verify=True)
    # The store's own options are unchanged: resuming the run still matches.
    igw.explain_dataset(
        model, images, labels=labels, masks=masks, chunk_size=CHUNK, tolerance=10.0,
        store=tmp_path / "s", progress=False,
    )  # fmt: skip
    with pytest.raises(TypeError, match="baseline: not an option a rerun changes"):
        rerun.rerun(model, where=chosen, baseline="black")
    with pytest.raises(ValueError, match="masks: the store has mask columns"):
        rerun.rerun(model, where=chosen, steps=16)
    with pytest.raises(ValueError, match=r"where: expected 7 booleans"):
        rerun.rerun(model, where=chosen[:3], steps=16, masks=masks)
    fixed = igw.explain_dataset(model, images[:2], steps=STEPS, store=tmp_path / "f",
                                progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="steps: this store's path arrays hold 5 points"):
        fixed.rerun(model, where=[0], steps=16)


def test_rerun_refuses_another_model_or_preprocess_than_the_stores(model, data, tmp_path):
    """A rerun mixing another computation into the store's rows is refused before any work."""
    images = data[0][:2]
    result = igw.explain_dataset(model, images, steps=STEPS, store=tmp_path / "s", progress=False)
    retrained = tiny_cnn(images.shape[1], seed=1)
    with pytest.raises(ValueError, match=r"model: the store .* was computed with another model"):
        result.rerun(retrained, where=[0], steps=2)
    with pytest.raises(ValueError, match=r"preprocess: the store .* was computed with another"):
        result.rerun(model, where=[0], steps=2, preprocess=lambda x: x / 255)
    stored = result.table
    assert result.rerun(model, where=[0], steps=2).table["steps"].tolist() == [2, STEPS]
    assert stored["steps"].tolist() == [STEPS, STEPS]


def single_image_model(x):
    """A model that raises on a batch of more than one image (when TensorFlow traces it)."""
    import tensorflow as tf

    if x.shape[0] != 1:
        raise RuntimeError(f"one image at a time, got a batch of {x.shape[0]}")
    return tf.reduce_mean(x, axis=(1, 2))


@pytest.mark.slow
def test_a_workers_model_error_arrives_as_locally(data, local_ray, tmp_path):
    images = data[0]
    errors = []
    for executor in ("local", igw.RayExecutor(workers=1)):
        with pytest.raises(ValueError, match=r"(?s)^model: .*one image at a time") as caught:
            igw.explain_dataset(
                single_image_model, images, steps=STEPS, chunk_size=2, progress=False,
                store=tmp_path / str(len(errors)), executor=executor,
            )  # fmt: skip
        errors.append(caught.value)
    local, on_ray = errors
    # The same message (the batch the tuner chose may differ) and the model's own error chained.
    for error in errors:
        assert str(error).startswith("model: failed on a batch of shape (")
    assert str(on_ray).split(" float32: ")[1] == str(local).split(" float32: ")[1]
    assert type(on_ray.__cause__) is type(local.__cause__) is RuntimeError
    assert "one image at a time" in str(on_ray.__cause__)
