"""The dataset store as a trustworthy artifact: never cut, mixed or read back as zeros.

Each test reproduces a way a store was corrupted or mixed without a word
(issue 19): a shorter rerun, two writers, an interrupted growth, a resume with
another computation, a missing chunk file, a crafted layout, odd inputs, and
a run killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

import ig_widget as igw
from ig_widget.dataset.store import Store

from .models import tiny_cnn
from .test_dataset import assert_same_results

SIZE = 16
STEPS = 4
COUNT = 7
CHUNK = 3
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return tiny_cnn(SIZE, seed=3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (COUNT, SIZE, SIZE, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def labels():
    return np.random.default_rng(1).integers(0, 4, COUNT)


def mean_model(x):
    """A model of any image size: the mean of each channel."""
    import tensorflow as tf

    return tf.reduce_mean(x, axis=(1, 2))


CHANNELS = [3]


def first_channels():
    """A torch model, the means of the first CHANNELS[0] channels: its class count can change."""
    import torch

    class FirstChannels(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2))[:, : CHANNELS[0]]

    return FirstChannels()


class Scale:
    """A preprocess that does not pickle: it holds a lock."""

    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, x):
        return x / 127.5 - 1


def explain(model, images, store, **options):
    settings = dict(steps=STEPS, chunk_size=CHUNK, store=store, progress=False)
    return igw.explain_dataset(model, images, **{**settings, **options})


@pytest.fixture(scope="module")
def reference(model, images, tmp_path_factory):
    return explain(model, images, tmp_path_factory.mktemp("reference") / "store")


def test_a_shorter_input_never_cuts_stored_rows_and_a_longer_one_continues(
    model, images, reference, tmp_path
):
    store = tmp_path / "store"
    explain(model, images, store)
    shorter = explain(model, images[:4], store)
    assert shorter.complete and len(shorter) == COUNT
    assert_same_results(shorter, reference)
    assert_same_results(explain(model, images, store), reference)
    # A longer input continues a store: the partial last chunk (image 4) is completed.
    grown = tmp_path / "grown"
    explain(model, images[:5], grown)
    assert len(igw.open_dataset(grown)) == 5
    longer = explain(model, images, grown)
    assert longer.complete
    assert_same_results(longer, reference)
    igw.open_dataset(grown, verify=True)


def test_growing_a_partly_filled_chunk_leaves_its_stored_rows_alone(
    model, images, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    explain(model, images, store)  # chunk 2 holds image 6 alone
    row = igw.open_dataset(store)[6].attributions
    more = np.concatenate([images, images[:2]])
    undo = interrupt_the_table_write_of(2, monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        explain(model, more, store)  # images 7 and 8 written, the table not
    undo()
    kept = igw.open_dataset(store, verify=True)
    assert len(kept) == COUNT and kept.table.index.tolist() == list(range(COUNT))
    np.testing.assert_array_equal(kept[6].attributions, row)
    assert len(explain(model, images[:6], store)) == COUNT
    # A growth cancelled leaves the store recorded incomplete.
    with pytest.raises(igw.ComputationCancelled):
        explain(model, more, store, progress=lambda done, total: False)
    assert not igw.open_dataset(store).complete
    grown = explain(model, more, store)
    assert grown.complete and len(grown) == COUNT + 2
    np.testing.assert_array_equal(grown[6].attributions, row)
    igw.open_dataset(store, verify=True)


def test_a_chunk_whose_repair_was_interrupted_is_never_trimmed_away(
    model, images, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    explain(model, images, store)
    (store / "arrays.zarr/thumbnails/c/2/0/0/0").unlink()
    undo = interrupt_the_table_write_of(2, monkeypatch)
    with pytest.warns(UserWarning), pytest.raises(OSError):
        explain(model, images, store)  # chunk 2's table file removed, its new one not written
    undo()
    with pytest.warns(UserWarning) as caught:
        shorter = explain(model, images[:6], store)
    assert [str(warning.message) for warning in caught] == [
        f"store: '{store}': images 6..6 are not stored (their table file is missing, from a run "
        "that stopped); resume with the whole input to compute them"
    ]
    assert len(shorter) == 6 and not shorter.complete
    assert zarr.open_group(store / "arrays.zarr", mode="r")["inputs"].shape[0] == COUNT
    assert explain(model, images, store).complete
    igw.open_dataset(store, verify=True)


def test_a_second_writer_is_refused_naming_the_store_and_the_holder(model, images, tmp_path):
    store = tmp_path / "store"
    with Store(str(store)).lock():
        with pytest.raises(ValueError, match=r"is being written by another run \(process "):
            explain(model, images, store)
    assert not (store / "ig-dataset.json").exists()
    assert explain(model, images, store).complete


def test_a_run_killed_with_sigkill_resumes_to_the_same_store(model, images, reference, tmp_path):
    store = tmp_path / "store"
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        import ig_widget as igw
        from tests.models import tiny_cnn

        def progress(done, total):
            print(done, flush=True)
            if done >= {2 * CHUNK}:
                time.sleep(600)  # killed here, holding the store's lock

        igw.explain_dataset(tiny_cnn({SIZE}, seed=3), np.load(sys.argv[1]), steps={STEPS},
                            chunk_size={CHUNK}, store=sys.argv[2], progress=progress)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "images.npy"), str(store)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for line in child.stdout:
            if int(line) >= 2 * CHUNK:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = igw.open_dataset(store)
    assert not killed.complete and len(killed) >= 2 * CHUNK
    # The dead process's lock is gone with it; the resume completes the same store.
    assert_same_results(explain(model, images, store), reference)
    igw.open_dataset(store, verify=True)


def test_an_interrupted_growth_is_repaired_and_writes_never_fall_outside(
    model, images, reference, tmp_path
):
    store = tmp_path / "store"
    stop = lambda done, total: done < CHUNK  # noqa: E731
    with pytest.raises(igw.ComputationCancelled):
        explain(model, iter(images), store, progress=stop)
    # Killed between two resizes (the manifest, written first, records the growth): one
    # array grown, the others not.
    arrays = zarr.open_group(str(store / "arrays.zarr"), mode="a")
    rows = arrays["inputs"].shape[0]
    manifest = json.loads((store / "ig-dataset.json").read_text())
    (store / "ig-dataset.json").write_text(json.dumps({**manifest, "reserved": 2 * rows}))
    arrays["attributions"].resize((2 * rows, SIZE, SIZE, 3))
    resumed = explain(model, iter(images), store)
    assert_same_results(resumed, reference)
    igw.open_dataset(store, verify=True)
    # A write that does not fit the array raises (Zarr would crop it silently).
    layout = igw.open_dataset(store)._layout
    values = {name: np.zeros((CHUNK, *shape), dtype) for name, (shape, dtype) in
              layout.array_specs().items()}  # fmt: skip
    with pytest.raises(
        ValueError, match=r"arrays.zarr/attributions/zarr.json' describes shape \(7, "
    ):
        Store(str(store)).write_arrays(layout, 6, values)


def test_an_array_cut_while_its_rows_are_written_raises(model, images, tmp_path, monkeypatch):
    # The shapes are read again after the write: rows written into an array that was
    # cut meanwhile are gone, and the chunk must not be committed as stored.
    store = tmp_path / "store"
    explain(model, images, store)
    layout = igw.open_dataset(store)._layout
    values = {name: np.ones((CHUNK, *shape), dtype) for name, (shape, dtype) in
              layout.array_specs().items()}  # fmt: skip
    write = zarr.AsyncArray.setitem

    async def write_then_cut(array, selection, rows):
        await write(array, selection, rows)
        if array.basename == "gradients":
            await array.resize((2, *array.shape[1:]))

    monkeypatch.setattr(zarr.AsyncArray, "setitem", write_then_cut)
    with pytest.raises(
        ValueError, match=r"arrays.zarr/gradients/zarr.json' describes shape \(2, .*rows 0..2 "
    ):
        Store(str(store)).write_arrays(layout, 0, values)


def test_rows_are_written_while_the_feeder_grows_the_arrays(model, images, tmp_path):
    # The writer thread reads each array's metadata while the feeding thread grows the
    # arrays; a reader must see the old or the new metadata, never a half-written
    # file (zarr before 3.1.3 truncated zarr.json and then wrote it: 367 of 3000 reads
    # failed with JSONDecodeError).
    store = tmp_path / "store"
    explain(model, images, store)
    layout = igw.open_dataset(store)._layout
    values = {name: np.ones((CHUNK, *shape), dtype) for name, (shape, dtype) in
              layout.array_specs().items()}  # fmt: skip
    grown = threading.Event()

    def grow():
        rows = COUNT
        while not grown.is_set():
            rows += CHUNK
            Store(str(store)).resize(layout, rows)

    feeder = threading.Thread(target=grow)
    feeder.start()
    try:
        writer = Store(str(store))
        for _ in range(100):
            writer.write_arrays(layout, 0, values)
    finally:
        grown.set()
        feeder.join()
    np.testing.assert_array_equal(zarr.open_group(str(store / "arrays.zarr"))["inputs"][:CHUNK],
                                  values["inputs"])  # fmt: skip


def test_resuming_with_another_computation_is_refused(model, images, labels, tmp_path):
    store = tmp_path / "store"
    cut = lambda done, total: done < CHUNK  # noqa: E731
    with pytest.raises(igw.ComputationCancelled):
        explain(model, images, store, labels=labels, targets="label", progress=cut)
    again = dict(labels=labels, targets="label")
    cases = [
        (tiny_cnn(SIZE, seed=4), again, "another model"),
        (model, {**again, "preprocess": lambda x: x / 255}, "another preprocess"),
        (model, dict(labels=(labels + 1) % 4, targets="label"), "another labels"),
    ]
    for other, options, message in cases:
        with pytest.raises(ValueError, match=f"{message} .*start a new store"):
            explain(other, images, store, **options)
    # Labels carried by (image, label) pairs: compared image by image.
    paired = tmp_path / "paired"
    pairs = [(image, int(label)) for image, label in zip(images, labels, strict=True)]
    with pytest.raises(igw.ComputationCancelled):
        explain(model, iter(pairs), paired, targets="label", progress=cut)
    shifted = [(image, (label + 1) % 4) for image, label in pairs]
    with pytest.raises(ValueError, match=r"holds image 0 explained for label .* start a new"):
        explain(model, iter(shifted), paired, targets="label")
    assert explain(model, iter(pairs), paired, targets="label").complete
    # The same model built again (other generated layer names) is the same computation.
    assert explain(tiny_cnn(SIZE, seed=3), images, store, **again).complete

    # Another class count from a model whose identity cannot tell (it reads a list).
    counted = tmp_path / "counted"
    with pytest.raises(igw.ComputationCancelled):
        explain(first_channels(), images, counted, progress=cut)
    CHANNELS[0] = 2
    try:
        with pytest.raises(ValueError, match=r"class count 3, this one has 2 .*start a new store"):
            explain(first_channels(), images, counted)
    finally:
        CHANNELS[0] = 3
    # Another image size: refused before anything is written.
    small = tmp_path / "small"
    with pytest.raises(igw.ComputationCancelled):
        explain(mean_model, images, small, progress=cut)
    with pytest.raises(ValueError, match=r"\(12, 12, 3\), the store holds images of \(16, 16, 3\)"):
        explain(mean_model, images[:, :12, :12], small)
    assert len(igw.open_dataset(small, verify=True)) == 2 * CHUNK

    # A preprocess without a stable identity: a new store works, a resume is refused.
    unpicklable = tmp_path / "unpicklable"
    plain = tiny_cnn(SIZE, seed=3, rescale=False)
    with pytest.raises(igw.ComputationCancelled):
        explain(plain, images, unpicklable, preprocess=Scale(), progress=cut)
    with pytest.raises(ValueError, match="preprocess of the stored computation has no stable"):
        explain(plain, images, unpicklable, preprocess=Scale())


def test_a_missing_or_changed_chunk_raises_never_zeros(model, images, tmp_path):
    store = tmp_path / "store"
    explain(model, images, store)
    shutil.copytree(store, tmp_path / "copy")
    (store / "arrays.zarr" / "attributions" / "c" / "1" / "0" / "0" / "0").unlink()
    result = igw.open_dataset(store)
    assert result[0].attributions.any()
    file = "arrays.zarr/attributions/c/1/0/0/0"
    with pytest.raises(ValueError, match=f"store: '{store}': row 4 of 'attributions': its chunk "
                                         f"file '{file}' is missing"):  # fmt: skip
        result[4]
    with pytest.raises(ValueError, match="damaged: 3 problems:") as caught:
        igw.open_dataset(store, verify=True)
    for row in (3, 4, 5):
        assert f"row {row} of 'attributions': its chunk file '{file}' is missing" in str(
            caught.value
        )
    # A chunk file from another chunk: decodes, but its checksum fails.
    thumbnails = tmp_path / "copy" / "arrays.zarr" / "thumbnails" / "c"
    shutil.copy(thumbnails / "0" / "0" / "0" / "0", thumbnails / "2" / "0" / "0" / "0")
    with pytest.raises(ValueError, match=r"row 6 of 'thumbnails': .* does not match the checksum"):
        igw.open_dataset(tmp_path / "copy").thumbnails([6])


def interrupt_the_table_write_of(chunk, monkeypatch):
    """Make the next table writes of ``chunk`` fail as a full disk would; returns the undo."""
    commit = Store.write_rows

    def full_disk(self, number, rows):
        if number == chunk:
            raise OSError(28, "No space left on device")
        commit(self, number, rows)

    monkeypatch.setattr(Store, "write_rows", full_disk)
    return lambda: monkeypatch.setattr(Store, "write_rows", commit)


def stored_arrays(store):
    group = zarr.open_group(store / "arrays.zarr", mode="r")
    return {name: group[name][...] for name in group.array_keys()}


def test_a_resume_computes_chunks_whose_files_were_lost_again(model, images, tmp_path, monkeypatch):
    store = tmp_path / "store"
    explain(model, images, store)
    written = stored_arrays(store)
    lost = ["arrays.zarr/attributions/c/1/0/0/0", "arrays.zarr/thumbnails/c/2/0/0/0"]
    for file in lost:
        (store / file).unlink()
    # Images 0..3 reach chunk 1 with 1 of its 3 images: it is not cut to one, and stays lost.
    with pytest.warns(UserWarning) as caught:
        shorter = explain(model, images[:4], store)
    found, left = (str(warning.message) for warning in caught)
    assert found == (
        f"store: '{store}': the array files of images 3..5 ('{lost[0]}'); images 6..6 "
        f"('{lost[1]}') are missing; each chunk is computed again when the input holds all "
        "of its images (rows a rerun changed, with its options)"
    )
    assert left.endswith("are still missing: the input did not hold all of their images; "
                         "resume with the whole input to compute them again")  # fmt: skip
    assert len(shorter) == COUNT and not shorter.complete
    with pytest.raises(ValueError, match=r"row 4 of 'attributions': its chunk file .* is missing"):
        shorter[4]
    # A repair stopped after writing chunk 1's arrays, before its table file: the old
    # checksums went with the file, so the next resume computes chunk 1 as any chunk not
    # done; chunk 2, computed but never written, is still lost.
    undo = interrupt_the_table_write_of(1, monkeypatch)
    with pytest.warns(UserWarning), pytest.raises(OSError, match="No space left"):
        explain(model, images, store)
    undo()
    assert not igw.open_dataset(store).complete
    assert sorted(path.name for path in (store / "table").iterdir()) == [
        "chunk-000000.parquet",
        "chunk-000002.parquet",
    ]
    with pytest.warns(UserWarning) as caught:
        repaired = explain(model, images, store)
    assert [str(warning.message) for warning in caught] == [
        f"store: '{store}': the array files of images 6..6 ('{lost[1]}') are missing; each "
        "chunk is computed again when the input holds all of its images (rows a rerun "
        "changed, with its options)"
    ]
    assert repaired.complete
    igw.open_dataset(store, verify=True)
    recomputed = stored_arrays(store)
    assert recomputed.keys() == written.keys()
    for name in written.keys() - {"elapsed_s"}:  # the time each image took
        np.testing.assert_array_equal(recomputed[name], written[name], err_msg=name)


def test_a_repair_counts_its_images_and_keeps_the_rows_a_rerun_changed(model, images, tmp_path):
    store = tmp_path / "store"
    explain(model, images, store).rerun(model, [4], steps=2)
    written = stored_arrays(store)
    for chunk in (1, 2):
        (store / f"arrays.zarr/gradients/c/{chunk}/0/0/0").unlink()
    seen = []

    def stop_after_chunk_1(done, total):
        seen.append((done, total))
        return False

    # Chunk 2 is computed while chunk 1 is stored, so it is stored before the cancel ends.
    with (
        pytest.warns(UserWarning, match="images 3..5"),
        pytest.raises(igw.ComputationCancelled, match="the 7 images done are kept"),
    ):
        explain(model, images, store, progress=stop_after_chunk_1)
    assert seen == [(6, COUNT)]  # 3 images before the repair, then chunk 1's 3
    repaired = igw.open_dataset(store, verify=True)
    assert repaired.table.steps.tolist() == [STEPS] * 4 + [2] + [STEPS] * 2
    for name in written.keys() - {"elapsed_s"}:
        np.testing.assert_array_equal(stored_arrays(store)[name], written[name], err_msg=name)


def test_a_rerun_refuses_a_chunk_whose_file_is_lost_and_reads_its_images_checked(
    model, images, tmp_path
):
    store = tmp_path / "store"
    result = explain(model, images, store)
    # Zarr reads a lost file as zeros: a rerun would explain black images, and writing row 4
    # into the file would store zeros for rows 3 and 5, unseen by a resume.
    (store / "arrays.zarr/attributions/c/1/0/0/0").unlink()
    lost = re.escape("the chunk files ['arrays.zarr/attributions/c/1/0/0/0'] are missing; ")
    with pytest.raises(ValueError, match=f"{lost}explain_dataset resuming the store computes"):
        result.rerun(model, [4], steps=2)
    assert not (store / "arrays.zarr/attributions/c/1/0/0/0").exists()
    # A changed inputs file is read checked, never explained.
    inputs = store / "arrays.zarr/inputs/c"
    shutil.copy(inputs / "0/0/0/0", inputs / "2/0/0/0")
    with pytest.raises(ValueError, match=r"row 6 of 'inputs': .* does not match the checksum"):
        result.rerun(model, [6], steps=2)


def test_a_resume_finishes_a_rerun_that_was_interrupted(model, images, tmp_path, monkeypatch):
    # 8 steps: with 4, a chunk of other images happens to round alike.
    finished = tmp_path / "finished"
    explain(model, images, finished, steps=8).rerun(model, [1, 4], steps=2)
    store = tmp_path / "store"
    result = explain(model, images, store, steps=8)
    undo = interrupt_the_table_write_of(1, monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        result.rerun(model, [1, 4], steps=2)  # rows 1 and 4 written, chunk 1's table not
    undo()
    finish = r"finish the rerun of images \[1, 4\]: result.rerun\(model, where=\[1, 4\], \*\*"
    with pytest.raises(ValueError, match=f"image 1 was being recomputed .*: {finish}"):
        igw.open_dataset(store)[1]
    # Another rerun would replace its record, leaving rows 1 and 4 half written for good.
    with pytest.raises(ValueError, match=f"rerun: {finish}.* first"):
        igw.open_dataset(store).rerun(model, [4], steps=2)
    # Cancelled at its first report, after chunk 0; chunk 1, already handed over, is stored.
    with pytest.warns(UserWarning, match=r"a rerun of images \[1, 4\] with \{'steps': 2\} did not"):
        with pytest.raises(igw.ComputationCancelled):
            explain(model, images, store, steps=8, progress=lambda done, total: False)
    manifest = json.loads((store / "ig-dataset.json").read_text())
    assert "rerun_pending" not in manifest
    assert [(record["rows"], record["options"]) for record in manifest["reruns"]] == [
        ([1, 4], {"steps": 2})
    ]
    resumed = explain(model, images, store, steps=8)
    assert resumed.complete
    assert resumed.table.steps.tolist() == [8, 2, 8, 8, 2, 8, 8]
    expected = stored_arrays(finished)
    for name in expected.keys() - {"elapsed_s"}:
        recomputed = stored_arrays(store)[name]
        # The rows not rerun are computed with their whole chunk, as first: bit for bit. The
        # rerun computed rows 1 and 4 in one batch, the resume each with its chunk's.
        others = [0, 2, 3, 5, 6]
        np.testing.assert_array_equal(recomputed[others], expected[name][others], err_msg=name)
        np.testing.assert_allclose(recomputed, expected[name], rtol=1e-6, atol=1e-7, err_msg=name)


def reruns_of(store):
    manifest = json.loads((store / "ig-dataset.json").read_text())
    return [(record["rows"], record["options"]) for record in manifest["reruns"]], manifest.get(
        "rerun_pending"
    )


def test_reruns_read_the_store_anew_and_one_over_all_unfinished_rows_replaces_it(
    model, images, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    result = explain(model, images, store)
    result.rerun(model, [1], steps=2)
    result.rerun(model, [2], steps=np.int64(3))  # opened before the first rerun
    assert reruns_of(store) == ([([1], {"steps": 2}), ([2], {"steps": 3})], None)
    assert igw.open_dataset(store, verify=True).table.steps.tolist()[:3] == [STEPS, 2, 3]
    undo = interrupt_the_table_write_of(1, monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        result.rerun(model, [1, 4], steps=3)
    undo()
    # Rows 1 and 4 all written again: the unfinished rerun is replaced, not left half done.
    result.rerun(model, [1, 4, 5], steps=2)
    done = [([1], {"steps": 2}), ([2], {"steps": 3}), ([1, 4, 5], {"steps": 2})]
    assert reruns_of(store) == (done, None)
    steps = igw.open_dataset(store, verify=True).table.steps.tolist()
    assert steps == [STEPS, 2, 3, STEPS, 2, 2, STEPS]
    # A resume that computed a lost chunk again leaves the manifest as it was; then the
    # store grows. The stale result still reruns right; a mask over its stale table is
    # refused, as pandas refuses to align one.
    (store / "arrays.zarr/gradients/c/0/0/0/0").unlink()
    with pytest.warns(UserWarning, match="images 0..2"):
        explain(model, images, store)
    explain(model, np.concatenate([images, images[:2]]), store)
    with pytest.raises(ValueError, match="where: a boolean Series over the table's 9 rows"):
        result.rerun(model, result.table.index.to_series() == 0, steps=2)
    result.rerun(model, [True] + [False] * 8, steps=2)  # a list of booleans, by position
    steps = igw.open_dataset(store, verify=True).table.steps.tolist()
    assert steps == [2, 2, 3, STEPS, 2, 2, STEPS, STEPS, STEPS]


def test_a_resume_stopped_by_an_error_records_the_rerun_it_finished(
    model, images, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    result = explain(model, images, store)
    undo = interrupt_the_table_write_of(0, monkeypatch)
    with pytest.raises(OSError):
        result.rerun(model, [1], steps=2)
    undo()
    (store / "arrays.zarr/scores/c/1/0").unlink()
    undo = interrupt_the_table_write_of(1, monkeypatch)
    # Chunk 0 (the rerun's) is stored again before chunk 1 (lost) fails.
    with pytest.warns(UserWarning), pytest.raises(OSError):
        explain(model, images, store)
    undo()
    assert reruns_of(store) == ([([1], {"steps": 2})], None)
    assert igw.open_dataset(store).table.steps[1] == 2


def test_a_grown_last_chunk_keeps_the_rows_a_rerun_changed(model, images, tmp_path):
    store = tmp_path / "store"
    explain(model, images[:5], store).rerun(model, [4], steps=2)
    row = igw.open_dataset(store)[4].attributions
    grown = explain(model, images, store)
    assert grown.complete and grown.table.steps.tolist() == [STEPS] * 4 + [2] + [STEPS] * 2
    np.testing.assert_array_equal(grown[4].attributions, row)


def test_a_lost_array_baseline_raises_and_a_resume_writes_it_again(model, images, tmp_path):
    store = tmp_path / "store"
    baseline = np.full((SIZE, SIZE, 3), 100.0, np.float32)
    explain(model, images, store, baseline=baseline)
    (store / "arrays.zarr/baseline/c/0/0/0").unlink()  # read back as zeros by Zarr
    damaged = igw.open_dataset(store)
    lost = "the array baseline 'arrays.zarr/baseline' does not match the one the store recorded"
    with pytest.raises(ValueError, match=f"{lost} .*; the store is damaged"):
        damaged.baseline()
    with pytest.raises(ValueError, match=lost):
        damaged.rerun(model, [0], steps=2)
    with pytest.raises(ValueError, match=f"damaged: 1 problem:\n  {lost}"):
        damaged.verify()
    with pytest.warns(UserWarning, match=f"{lost} .*; written again"):
        explain(model, images, store, baseline=baseline)
    np.testing.assert_array_equal(igw.open_dataset(store, verify=True).baseline(), baseline)
    (store / "arrays.zarr/baseline/zarr.json").write_text("{broken")
    corrupt = "the array baseline 'arrays.zarr/baseline' is unreadable or corrupt"
    with pytest.raises(ValueError, match=corrupt):
        igw.open_dataset(store).baseline()
    with pytest.warns(UserWarning, match=f"{corrupt} .*; written again"):
        explain(model, images, store, baseline=baseline)
    np.testing.assert_array_equal(igw.open_dataset(store, verify=True).baseline(), baseline)


def test_a_folder_where_a_chunk_file_belongs_is_refused_naming_it(model, images, tmp_path):
    store = tmp_path / "store"
    explain(model, images, store)
    file = "arrays.zarr/scores/c/1/0"
    (store / file).unlink()
    (store / file).mkdir()
    with pytest.raises(ValueError, match=f"the file '{file}' is a folder where a chunk file"):
        explain(model, images, store)
    with pytest.raises(ValueError, match=f"row 3 of 'scores': its chunk file '{file}' is a folder"):
        igw.open_dataset(store, verify=True)


def test_chunks_of_zeros_have_no_file_and_are_not_lost(model, images, tmp_path):
    store = tmp_path / "store"
    black = images.copy()
    black[3:6] = 0  # a black image's attributions from a black baseline are zeros too
    explain(model, black, store)
    assert not (store / "arrays.zarr/inputs/c/1/0/0/0").exists()
    assert not (store / "arrays.zarr/attributions/c/1/0/0/0").exists()
    tables = sorted((store / "table").iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = explain(model, black, store)
    assert [file.stat().st_mtime_ns for file in tables] == [
        file.stat().st_mtime_ns for file in sorted((store / "table").iterdir())
    ]
    assert resumed.complete and not resumed[4].attributions.any()


def test_a_file_uri_store_is_written_resumed_and_read_as_its_folder(
    model, images, reference, tmp_path
):
    folder = tmp_path / "my stores é" / "store"
    uri = folder.as_uri()  # file:///.../my%20stores%20%C3%A9/store
    with pytest.raises(igw.ComputationCancelled):
        explain(model, images, uri, progress=lambda done, total: done < CHUNK)
    localhost = uri.replace("file://", "file://localhost", 1)
    assert_same_results(explain(model, images, localhost), reference)
    assert_same_results(igw.open_dataset(folder, verify=True), reference)
    assert [path.name for path in tmp_path.iterdir()] == ["my stores é"]
    with pytest.raises(
        ValueError, match=r"a file: URI names a folder of this machine .* 'elsewhere'"
    ):
        explain(model, images, "file://elsewhere/store")


def test_crafted_or_corrupt_layouts_are_refused_naming_the_file(model, images, tmp_path):
    base = tmp_path / "base"
    with pytest.raises(igw.ComputationCancelled):
        explain(model, images, base, progress=lambda done, total: done < CHUNK)

    def copy(name):
        shutil.copytree(base, tmp_path / name)
        return tmp_path / name

    def edit_json(path, change):
        values = json.loads(path.read_text())
        change(values)
        path.write_text(json.dumps(values))

    huge = copy("huge")
    edit_json(huge / "arrays.zarr" / "inputs" / "zarr.json",
              lambda v: v.__setitem__("shape", [10**10, SIZE, SIZE, 3]))  # fmt: skip
    negative = copy("negative")
    edit_json(negative / "arrays.zarr" / "scores" / "zarr.json",
              lambda v: v.__setitem__("shape", [-5, 4]))  # fmt: skip
    with pytest.raises(ValueError, match=r"'arrays.zarr/inputs/zarr.json' describes .*at most 12"):
        explain(model, images, huge)
    with pytest.raises(ValueError, match=r"'arrays\.zarr/scores/zarr\.json'"):
        explain(model, images, negative)

    linked = copy("linked")
    outside = tmp_path / "outside"
    (linked / "table").rename(outside)
    (linked / "table").symlink_to(outside)
    with pytest.raises(ValueError, match="holds a symbolic link, 'table'"):
        explain(model, images, linked)

    not_json = copy("not_json")
    (not_json / "ig-dataset.json").write_text("{oops")
    no_options = copy("no_options")
    edit_json(no_options / "ig-dataset.json", lambda v: v.pop("options"))
    bad_parquet = copy("bad_parquet")
    (bad_parquet / "table" / "chunk-000000.parquet").write_bytes(b"PAR1 not parquet")
    odd_name = copy("odd_name")
    (odd_name / "table" / "chunk-abc.parquet").write_bytes(b"")
    bad_layout = copy("bad_layout")
    edit_json(bad_layout / "ig-dataset.json", lambda v: v["layout"].__setitem__("classes", "x"))
    cases = [
        (not_json, "'ig-dataset.json' is unreadable or corrupt", json.JSONDecodeError),
        (no_options, "'ig-dataset.json' has no 'options' object", type(None)),
        (bad_parquet, "'table/chunk-000000.parquet' is unreadable or corrupt", Exception),
        (odd_name, "'table/chunk-abc.parquet' is not a chunk's table file", type(None)),
        (bad_layout, "'ig-dataset.json' has an invalid layout: layout.classes", ValueError),
    ]
    for store, message, cause in cases:
        for attempt in (igw.open_dataset, lambda path: explain(model, images, path)):
            with pytest.raises(ValueError, match=f"store: '{store}': the file {message}") as info:
                attempt(store)
            assert isinstance(info.value.__cause__, cause), (store, info.value.__cause__)


def test_inputs_refused_or_kept_before_any_work(model, images, tmp_path):
    with pytest.raises(ValueError, match="store: expected a non-empty path or URI, got ''"):
        explain(model, images, "")
    with pytest.raises(ValueError, match="path: expected a non-empty path or URI"):
        igw.open_dataset("")

    # A refused option leaves nothing recorded: the corrected call then works.
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="insertion_deletion_steps: expected an integer <= 256"):
        explain(model, images, store, insertion_deletion_steps=300)
    assert not (store / "ig-dataset.json").exists()
    assert explain(model, images, store, insertion_deletion_steps=8).complete

    # A file name that is not UTF-8 is kept, its undecodable byte escaped.
    folder = tmp_path / "files"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.fromarray(images[0]).save(folder / name)
    Image.fromarray(images[1]).save(folder / "plain.png")
    result = explain(model, folder, tmp_path / "named")
    assert result.complete
    assert result.table["source"].tolist() == [
        str(folder / "caf\\xe9.png"),
        str(folder / "plain.png"),
    ]

    # An image far larger than the model's input is refused before it is decoded.
    huge = tmp_path / "huge.png"
    Image.new("1", (12000, 12000)).save(huge)
    assert huge.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"images\[0\]: the file claims 12000x12000 pixels, more "
                                         r"than the 256 .*it was not decoded"):  # fmt: skip
        explain(model, [huge], tmp_path / "bomb")
    # Later images must have the first one's size: checked from the header too.
    other = tmp_path / "other.png"
    Image.new("RGB", (20, 20)).save(other)
    path = folder / "plain.png"
    with pytest.raises(ValueError, match=r"images\[1\]: has shape \(20, 20\), the first image had"):
        explain(lambda x: x[:, 0, 0, :], [path, other], tmp_path / "sizes")


def test_messages_name_the_image_by_its_dataset_index(images, tmp_path):
    import tensorflow as tf

    def nan_on_white(x):
        white = tf.reduce_min(x, axis=(1, 2, 3)) > 254
        return tf.where(white[:, None], np.nan, tf.reduce_mean(x, axis=(1, 2)))

    batch = images.copy()
    batch[4] = 255
    with pytest.raises(ValueError, match=r"images\[4\]"):
        explain(nan_on_white, batch, tmp_path / "s")


def test_chunk_k_is_stored_while_chunk_k_plus_1_is_computed(model, images, reference, tmp_path):
    from ig_widget.dataset.compute import Computation

    computing = {number: threading.Event() for number in range(3)}
    overlapped = []
    compute, store_chunk = Computation.compute, Computation.store_chunk

    def traced_compute(self, items):
        computing[items[0].index // CHUNK].set()
        return compute(self, items)

    def traced_store(self, explained):
        number = explained[0].item.index // CHUNK
        if number + 1 in computing:
            # Storing chunk k waits until chunk k + 1 is being computed: only a writer
            # thread lets both happen at once.
            overlapped.append(computing[number + 1].wait(timeout=60))
        return store_chunk(self, explained)

    patch = pytest.MonkeyPatch()
    patch.setattr(Computation, "compute", traced_compute)
    patch.setattr(Computation, "store_chunk", traced_store)
    try:
        result = explain(model, images, tmp_path / "store")
    finally:
        patch.undo()
    assert overlapped == [True, True]
    assert_same_results(result, reference)


def test_a_writer_error_is_raised_in_the_caller_and_the_store_resumes(
    model, images, reference, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    write_rows = Store.write_rows

    def full_disk(self, chunk, rows):
        if chunk == 1:
            raise OSError(28, "No space left on device")
        return write_rows(self, chunk, rows)

    monkeypatch.setattr(Store, "write_rows", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        explain(model, images, store)
    monkeypatch.undo()
    assert sorted(igw.open_dataset(store).table.index) == [0, 1, 2]
    assert_same_results(explain(model, images, store), reference)


def test_thumbnails_come_in_the_order_asked_each_row_checked_as_served(model, images, tmp_path):
    store = tmp_path / "store"
    explain(model, images, store)
    thumbnails = store / "arrays.zarr" / "thumbnails" / "c"
    shutil.copy(thumbnails / "0" / "0" / "0" / "0", thumbnails / "2" / "0" / "0" / "0")
    result = igw.open_dataset(store)
    raw = Store(str(store))
    for asked in ([5, 0, 3, 5, 1], [4, 5]):  # the second from the chunk kept in memory
        rgb, maps = result.thumbnails(asked)
        np.testing.assert_array_equal(rgb, np.stack([raw.read("thumbnails", i) for i in asked]))
        np.testing.assert_array_equal(
            maps, np.stack([raw.read("thumbnail_maps", i) for i in asked])
        )
    # Chunk 2's file is chunk 0's: its rows fail each time they are asked for, the others show.
    for _ in range(2):
        with pytest.raises(ValueError, match=r"row 6 of 'thumbnails': .* does not match"):
            result.thumbnails([0, 6])
    assert result.thumbnails([1])[0].shape[0] == 1


def test_thumbnails_decode_each_chunk_once_however_the_order_spreads_them(
    model, images, tmp_path, monkeypatch
):
    import ig_widget.dataset.result as result_module

    store = tmp_path / "store"
    explain(model, images, store)
    decoded = []
    read_rows = Store.read_rows

    def counted(self, layout, name, rows, checksums):
        decoded.append((name, rows[0] // CHUNK))
        return read_rows(self, layout, name, rows, checksums)

    monkeypatch.setattr(Store, "read_rows", counted)
    every_chunk = [(name, number) for name in ("thumbnail_maps", "thumbnails")
                   for number in range(3)]  # fmt: skip
    spread = [6, 0, 3, 1, 4, 2, 5]  # a sorted Gallery's order: chunk 2, 0, 1, 0, 1, 0, 1
    result = igw.open_dataset(store)
    result.thumbnails(spread)
    assert sorted(decoded) == every_chunk
    result.thumbnails(spread[::-1])  # within the budget: kept
    assert len(decoded) == 6
    # Room for one chunk: a request still decodes each of its chunks once, and the
    # least recently used chunk goes first.
    one_chunk = sum(value.nbytes for value in result.thumbnails([0, 1, 2]))
    monkeypatch.setattr(result_module, "THUMBNAIL_CACHE_BYTES", one_chunk)
    result = igw.open_dataset(store)
    decoded.clear()
    result.thumbnails(spread)
    assert sorted(decoded) == every_chunk
    result.thumbnails([5])
    decoded.clear()
    for asked in ([0], [3], [4], [1]):
        result.thumbnails(asked)
    names = ("thumbnails", "thumbnail_maps")
    assert decoded == [(name, number) for number in (0, 1, 0) for name in names]


def test_new_arrays_are_lz4_compressed_and_a_zstandard_store_still_resumes(
    model, images, reference, tmp_path
):
    from zarr.codecs import BloscCodec, ZstdCodec

    store = tmp_path / "store"
    assert_same_results(explain(model, images, store), reference)
    for _, array in zarr.open_group(store / "arrays.zarr", mode="r").arrays():
        (codec,) = array.compressors
        assert isinstance(codec, BloscCodec) and (codec.cname.value, codec.clevel) == ("lz4", 5)
    # A store from before (Zarr's default Zstandard): its rows rewritten as such, then resumed.
    old = tmp_path / "old"
    explain(model, images[:4], old)
    group = zarr.open_group(old / "arrays.zarr", mode="a")
    for name, array in list(group.arrays()):
        rows, chunks, dtype = array[:], array.chunks, array.dtype
        rewritten = group.create_array(
            name, shape=rows.shape, chunks=chunks, dtype=dtype, fill_value=0,
            compressors=ZstdCodec(level=0), overwrite=True,
        )  # fmt: skip
        rewritten[:] = rows
    resumed = explain(model, images, old)
    assert resumed.complete
    assert_same_results(resumed, reference)
    igw.open_dataset(old, verify=True)
    for _, array in zarr.open_group(old / "arrays.zarr", mode="r").arrays():
        assert isinstance(array.compressors[0], ZstdCodec)


def test_a_path_through_a_missing_folder_and_up_again_is_the_folder_the_system_reads(
    model, images, tmp_path
):
    """A path "mywork/results/.." with "results" missing was taken for a new folder: the run
    made "results", found itself in "mywork", was refused, and removed "mywork" as its own."""
    mine = tmp_path / "mywork"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not an ig-widget dataset store"):
        explain(model, images, f"{mine}/results/..")
    assert sorted(path.name for path in mine.iterdir()) == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "mine"
    made = explain(model, images, f"{tmp_path}/new/results/../store")
    assert made.complete and (tmp_path / "new" / "store" / "ig-dataset.json").exists()
