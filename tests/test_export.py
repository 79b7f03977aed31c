"""Writing snapshots: atomic replacement, refused targets, symbolic links, OS errors.

The widget's ``to_png`` and ``to_html`` both go through ``export.write_file``;
the pictures and pages they write are tested in tests/widget/test_snapshots.py.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading

import pytest

from ig_widget import export

PNG = export.PNG_SUFFIXES


def _never_called() -> bytes:
    raise AssertionError("the contents were built for a path that is refused")


def _write_in_thread(path, suffixes=PNG, contents=_never_called):
    """write_file in a thread, so that a blocking open (a FIFO) fails the test, not hangs it."""
    outcome = {}

    def run():
        try:
            outcome["result"] = export.write_file(path, contents, suffixes)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"writing {path} blocked"
    return outcome


def test_a_new_file_is_written_with_the_usual_permissions(tmp_path):
    target = export.write_file(tmp_path / "ig.png", lambda: b"new", PNG)
    assert target == tmp_path / "ig.png" and target.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    target = tmp_path / "ig.PNG"  # the extension matches in any case
    target.write_bytes(b"old")
    target.chmod(0o640)
    export.write_file(target, lambda: b"new", PNG)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_full_disk_leaves_the_previous_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "ig.png"
    target.write_bytes(b"previous picture")
    real_write = os.write

    def disk_full(descriptor, data):
        # Half of the bytes land, then the disk is full, as a real ENOSPC does.
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match=r"path: cannot write '.*ig\.png': No space left") as caught:
        export.write_file(target, lambda: b"x" * 100_000, PNG)
    monkeypatch.undo()
    assert caught.value.errno == errno.ENOSPC
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous picture"
    assert sorted(tmp_path.iterdir()) == [target]


def test_a_failed_rename_leaves_no_temporary_file(tmp_path, monkeypatch):
    def refused(source, destination):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(OSError, match=r"path: cannot write .*Permission denied"):
        export.write_file(tmp_path / "ig.png", lambda: b"new", PNG)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_name_near_the_length_limit_is_written(tmp_path):
    name = "n" * 250 + ".png"  # the temporary file's name must not be longer
    assert export.write_file(tmp_path / name, lambda: b"new", PNG).read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def _fifo(folder):
    os.mkfifo(folder / "pipe.png")
    return folder / "pipe.png"


def _link(folder, name, to):
    (folder / name).symlink_to(to)
    return folder / name


def _folder(folder, name):
    (folder / name).mkdir()
    return folder / name


# (id, the path to write given a fresh folder, message pattern)
REFUSED_TARGETS = [
    ("fifo", _fifo, r"is a named pipe \(FIFO\)"),
    ("device", lambda d: _link(d, "null.png", "/dev/null"), "is a character device"),
    ("directory", lambda d: _folder(d, "d.png"), "is a directory"),
    ("existing folder with slash", lambda d: f"{_folder(d, 'd')}/", "names a folder"),
    ("new folder with slash", lambda d: f"{d}/newdir/", "names a folder"),
    ("link to directory", lambda d: _link(d, "to_dir.png", d), "is a directory"),
    ("missing folder", lambda d: d / "missing" / "x.png", "folder .*missing' does not exist"),
    ("link loop", lambda d: _link(d, "loop.png", d / "loop.png"), "symbolic links"),
    (
        "dangling link into a missing folder",
        lambda d: _link(d, "dangling.png", d / "nowhere" / "x.png"),
        "symbolic link into folder .*nowhere', which does not exist",
    ),
    ("jpg", lambda d: d / "x.jpg", r"path: expected a file name ending in '\.png', got '.*x\.jpg'"),
    ("no extension", lambda d: d / "x", r"expected a file name ending in '\.png'"),
]


@pytest.mark.parametrize(
    ("make", "pattern"),
    [case[1:] for case in REFUSED_TARGETS],
    ids=[case[0] for case in REFUSED_TARGETS],
)
def test_targets_that_are_not_regular_files_are_refused_before_writing(tmp_path, make, pattern):
    path = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    outcome = _write_in_thread(path)
    assert isinstance(outcome.get("error"), ValueError), outcome
    assert str(outcome["error"]).startswith("path: ")
    assert re.search(pattern, str(outcome["error"]))
    assert sorted(tmp_path.rglob("*")) == before


def test_html_needs_an_html_name(tmp_path):
    outcome = _write_in_thread(tmp_path / "x.png", export.HTML_SUFFIXES)
    assert "expected a file name ending in '.html' or '.htm'" in str(outcome["error"])
    written = export.write_file(tmp_path / "x.htm", lambda: b"<p>", export.HTML_SUFFIXES)
    assert written.read_bytes() == b"<p>"


def test_a_symbolic_link_is_written_through_and_stays_a_link(tmp_path):
    # As with any program that opens a link to write: the file it points to
    # gets the new bytes, atomically, and the link keeps pointing at it.
    real = tmp_path / "results" / "latest.png"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "ig.png"
    link.symlink_to(real)
    assert export.write_file(link, lambda: b"new", PNG) == link
    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes() == b"new"
    assert sorted(tmp_path.rglob("*")) == [link, real.parent, real]


def test_a_dangling_link_creates_the_file_it_points_to(tmp_path):
    link = tmp_path / "ig.png"
    link.symlink_to(tmp_path / "target.png")
    export.write_file(link, lambda: b"new", PNG)
    assert link.is_symlink() and (tmp_path / "target.png").read_bytes() == b"new"


def test_a_path_that_is_not_a_path_is_named(tmp_path):
    with pytest.raises(TypeError, match="path: expected a file path, got int"):
        export.write_file(3, _never_called, PNG)
