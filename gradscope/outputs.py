"""Where gradscope writes: one rule for every ``--out``, files written whole, file-system errors in one line.

The rule (``gradscope record``, ``landscape``, ``plot`` and ``report`` alike): missing folders
of an output path are created, like ``mkdir -p``, below the nearest folder that exists. That
folder must be a folder (not a file), the user must be able to write into it, and it must not be
the filesystem root (``--out /results/x.png`` for ``results/x.png`` is a typo far more often than
a wish for a new top-level folder; create it first if it is meant). :func:`check_out` applies the
rule before any work starts, so a bad ``--out`` costs seconds, and creates nothing;
:func:`make_parents` creates the folders just before the first write.

A figure or page is written through :func:`written_whole`: into a temporary file beside the
target, renamed over it when complete, removed when the write fails (a full disk leaves neither
a torn file nor a temporary one). :func:`file_system_error` turns what the operating system or
HDF5 says about a failed read or write (full disk, read-only place, permission) into the one
line the CLI prints.
"""
from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gradscope.errors import GradscopeError

#: errno values that describe the place a file goes (or comes from), not a bug of gradscope.
FILE_SYSTEM_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM", "ENOTDIR",
                                      "EISDIR", "EEXIST", "ENAMETOOLONG", "EIO") if hasattr(errno, name)
)
#: errno values only a write causes (the others: "cannot access").
_WRITE_ONLY = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, name))
# HDF5 reports a failed system call inside its message: "... filename = '...', ... errno = 28,
# error message = 'No space left on device' ..."
_HDF5_IO = re.compile(r"filename = '(?P<file>[^']*)'.*?errno = (?P<errno>\d+), error message = '(?P<text>[^']*)'",
                      re.DOTALL)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``.`` for a relative path with none)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_out(path: str | os.PathLike[str], *, directory: bool = False, flag: str = "--out") -> Path:
    """Apply the output rule of the module docstring to ``path`` (a file, or a folder when
    ``directory``); create nothing. Raises a one-line GradscopeError naming ``flag``."""
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            raise GradscopeError(f"{flag} {path} is a file, not a folder")
        if not directory and path.is_dir():
            raise GradscopeError(f"{flag} {path} is a folder; name a file in it")
    folder = path if directory else path.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise GradscopeError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GradscopeError(f"{flag} {path}: cannot write into {existing} (permission denied or read-only)")
    if existing != folder and existing.absolute().parent == existing.absolute():
        first = folder
        while first.parent != existing:
            first = first.parent
        raise GradscopeError(f"{flag} {path}: {first} does not exist and gradscope does not create folders at the "
                             f"filesystem root; create it first if you mean it")
    return path


def make_parents(path: str | os.PathLike[str], *, flag: str = "--out") -> Path:
    """:func:`check_out` ``path`` (a file), then create its missing parent folders."""
    path = check_out(path, flag=flag)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GradscopeError(f"{flag} {path}: cannot create {path.parent}: {exc.strerror or exc}") from None
    return path


@contextmanager
def written_whole(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) to write to; rename it to ``path``
    when the block ends, remove it when the block fails (see the module docstring); a failed write
    of the file system (full disk, read-only place) is a one-line GradscopeError naming ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in FILE_SYSTEM_ERRNOS:
            raise
        raise GradscopeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_system_error(exc: BaseException) -> str | None:
    """The one line for a failed read or write of the file system (full disk, read-only place,
    permission, a file where a folder should be), else None (then it is a bug: keep the traceback).

    Understands Python's OSError and HDF5's errors (which carry the failed call's errno in their text).
    """
    while exc is not None:
        found = _HDF5_IO.search(str(exc)) if isinstance(exc, (OSError, RuntimeError)) else None
        if found and int(found["errno"]) in FILE_SYSTEM_ERRNOS:
            verb = "read" if "read failed" in str(exc) else "write"
            return f"cannot {verb} {found['file']}: {found['text']}"
        if isinstance(exc, OSError) and exc.errno in FILE_SYSTEM_ERRNOS:
            where = f" {exc.filename}" if exc.filename else ""
            verb = "write" if exc.errno in _WRITE_ONLY else "access"
            return f"cannot {verb}{where}: {exc.strerror or exc}"
        exc = exc.__cause__ or exc.__context__
    return None


def hdf5_write_failed(exc: BaseException) -> bool:
    """Whether HDF5 failed to write a file: then it cannot close that file either, and the
    interpreter crashes at exit (h5py issues #914, #2160), so the CLI ends its process at once."""
    while exc is not None:
        if isinstance(exc, (OSError, RuntimeError)) and _HDF5_IO.search(str(exc)) and "write failed" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
