"""One writer per run directory: an advisory lock held while a process writes a run.

`gradscope record` and `gradscope landscape` write into a run directory (config, trace,
checkpoints, landscapes). Two of them writing the same directory at once would mix two runs'
files, so each takes :func:`run_lock` on the directory before it writes anything; a second writer
is refused with a one-line :class:`~gradscope.errors.GradscopeError` naming the holder.

The lock is an operating-system file lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on
``DIR/.gradscope.lock``. The operating system drops it when the holding process ends, however it
ends (kill -9 included), so a stale lock of a dead process is simply taken over by the next writer;
the file itself stays and only describes the last holder (process id, host, command, start time).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Iterator

from gradscope.errors import GradscopeError

#: File name of the lock inside a run directory (kept across runs; its content names the holder).
LOCK_NAME = ".gradscope.lock"


def _try_lock(handle: IO[str]) -> bool:
    """Take an exclusive, non-blocking lock on ``handle``; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(path: Path) -> str:
    """A description of the process that holds the lock, from the lock file's content."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    started = info.get("started")
    since = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started)) if started else ""
    return f"{info.get('command', 'another gradscope command')} (process {info.get('pid', '?')} on {info.get('host', '?')}{since})"


@contextlib.contextmanager
def run_lock(directory: str | os.PathLike[str], command: str) -> Iterator[Path]:
    """Hold the write lock of ``directory`` (created if missing) for the ``with`` block.

    Args:
        directory: the run directory.
        command: what the holder is doing, shown to a refused second writer (e.g. "gradscope record").

    Raises:
        GradscopeError: another live process holds the lock, or the directory cannot be written.
    """
    directory = Path(directory)
    path = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise GradscopeError(f"cannot write to {directory}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(handle):
            raise GradscopeError(f"{directory} is being written by {_holder(path)}; wait for it or use another --out")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                                 "started": time.time()}))
        handle.flush()
        yield path
    finally:
        handle.close()  # releases the lock
