"""The run-directory lock: a second writer is refused, a dead holder's lock is taken over."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradscope.errors import GradscopeError
from gradscope.runlock import LOCK_NAME, run_lock

HOLD = """
import sys, time
from gradscope.runlock import run_lock
with run_lock(sys.argv[1], "gradscope record"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_in_another_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "run")
    try:
        with pytest.raises(GradscopeError) as info:
            with run_lock(tmp_path / "run", "gradscope landscape"):
                pytest.fail("the lock was granted twice")
        message = str(info.value)
        assert "\n" not in message and f"process {proc.pid}" in message and "gradscope record" in message
    finally:
        proc.kill()
        proc.wait()


def test_lock_of_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    proc = _holder(tmp_path / "run")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with run_lock(tmp_path / "run", "gradscope record") as path:
        assert path == tmp_path / "run" / LOCK_NAME
        assert f'"pid": {os.getpid()}' in path.read_text()


def test_lock_is_released_at_the_end_of_the_block_and_on_error(tmp_path: Path) -> None:
    with run_lock(tmp_path, "first"):
        pass
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path, "second"):
            raise RuntimeError("boom")
    start = time.perf_counter()
    with run_lock(tmp_path, "third"):
        pass
    assert time.perf_counter() - start < 5


def test_unwritable_place_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(GradscopeError, match="cannot write to") as info:
        with run_lock(blocker / "run", "gradscope record"):
            pass
    assert "\n" not in str(info.value)


def test_landscape_writers_lock_the_run_directories_or_the_shared_out(tmp_path: Path) -> None:
    from gradscope.landscape.runs import PreparedRun, writers_lock

    def prepared(run: Path) -> PreparedRun:
        class Loaded:  # what PreparedRun.run needs here: the checkpoint's path
            path = run / "checkpoints" / "best.pt"
        return PreparedRun("x", Loaded(), [], [], None, run / "landscape" / "x.h5", resume=False)

    a, b = tmp_path / "a", tmp_path / "b"
    proc = _holder(b)  # `gradscope record` is writing run b
    try:
        with pytest.raises(GradscopeError, match=f"process {proc.pid}"):
            with writers_lock([prepared(a), prepared(b)]):
                pytest.fail("landscape got the lock of a run being written")
        with writers_lock([prepared(a), prepared(b)], out=tmp_path / "shared"):  # --out DIR: only DIR is locked
            assert (tmp_path / "shared" / LOCK_NAME).exists()
    finally:
        proc.kill()
        proc.wait()
