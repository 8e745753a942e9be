"""gradscope.outputs: the --out rule, whole-file writes, and which failures are the file system's."""
from __future__ import annotations

import errno
import os

import pytest

from gradscope.errors import GradscopeError
from gradscope.outputs import check_out, file_system_error, hdf5_write_failed, make_parents, written_whole

HDF5_FULL = ("Unable to synchronously flush file (file write failed: time = Tue Dec  1 13:12:02 2026\n"
             ", filename = 'runs/x/trace.h5', file descriptor = 4, errno = 28, error message = 'No space left on "
             "device', buf = 0x5567, total write size = 11393, bytes this sub-write = 11393, offset = 307200)")


def test_file_system_errors_become_one_line_and_bugs_do_not():
    assert file_system_error(RuntimeError(HDF5_FULL)) == "cannot write runs/x/trace.h5: No space left on device"
    assert hdf5_write_failed(RuntimeError(HDF5_FULL))
    assert file_system_error(OSError(errno.ENOSPC, "No space left on device")) == "cannot write: No space left on device"
    assert file_system_error(PermissionError(errno.EACCES, "Permission denied", "out.png")) == \
        "cannot access out.png: Permission denied"
    try:  # the file system's error as the cause of another one
        try:
            raise OSError(errno.EROFS, "Read-only file system", "r.html")
        except OSError as exc:
            raise RuntimeError("while writing") from exc
    except RuntimeError as outer:
        assert file_system_error(outer) == "cannot write r.html: Read-only file system"
    assert file_system_error(RuntimeError("shape mismatch")) is None  # a bug: keep the traceback
    assert file_system_error(FileNotFoundError(errno.ENOENT, "No such file", "x")) is None
    assert not hdf5_write_failed(RuntimeError("shape mismatch"))


def test_check_out_rule(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(GradscopeError, match="file is a file, not a folder"):
        check_out(tmp_path / "file" / "a.png")
    with pytest.raises(GradscopeError, match="is a file, not a folder"):
        check_out(tmp_path / "file", directory=True)
    with pytest.raises(GradscopeError, match="is a folder; name a file in it"):
        check_out(tmp_path)
    assert check_out(tmp_path / "new" / "deeper" / "a.png") == tmp_path / "new" / "deeper" / "a.png"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    make_parents(tmp_path / "new" / "deeper" / "a.png")
    assert (tmp_path / "new" / "deeper").is_dir()


def test_written_whole_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("old")
    with pytest.raises(GradscopeError, match=f"cannot write {target}: No space left"):
        with written_whole(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".html"
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    with written_whole(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
