"""Opening trace files: fast failures on damaged files, SWMR reads of live ones, recovery.

HDF5's single-writer/multiple-reader (SWMR) mode lets a notebook read a trace while a run
writes it. A writer killed with SIGKILL leaves the file's "open for write" consistency flags
set: SWMR readers still open it (and see every flushed row), but ordinary opens refuse it.

An SWMR reader trades safety checks for liveness: it skips HDF5's check that the file is as
long as its superblock says, and it retries every metadata read whose checksum fails (100
times by default, sleeping twice as long each time), so a truncated or damaged file makes it
loop for many minutes without answering Ctrl-C. :func:`open_for_reading` therefore opens a file
the ordinary way first, which checks the length and fails at once on damage, and falls back to
an SWMR read only for files whose writer has them open (or was killed), with the read retries
bounded (:data:`SWMR_READ_ATTEMPTS`). To append to a killed writer's file again,
:func:`recover` copies its contents into a fresh file (what the ``h5clear`` tool allows).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import h5py
from h5py import h5f, h5p

from gradscope.errors import GradscopeError
from gradscope.trace import schema

#: Part of HDF5's message when a file's consistency flags say a writer has it open.
_FLAGS_MESSAGE = "consistency flags"
#: Parts of HDF5's messages for states a live writer passes through for an instant (its
#: superblock already counts space it is about to write; it holds a lock while switching to
#: SWMR mode). Seen this way repeatedly, they are real: a truncated file, a held lock.
_TRANSIENT = ("truncated file", "unable to lock file")
_OPEN_TRIES = 5
_RETRY_S = 0.05
#: Metadata read attempts of an SWMR reader. Retries sleep 1 ns, 2 ns, 4 ns, ... so 26
#: attempts wait about 70 ms in all for a writer to finish a metadata write, instead of
#: HDF5's default 100 (practically forever on a damaged file).
SWMR_READ_ATTEMPTS = 26


def open_for_reading(path: Path) -> h5py.File:
    """Open ``path`` read-only; as an SWMR reader when a writer has it open or was killed.

    Raises:
        GradscopeError: the file is missing, empty, truncated or not an HDF5 file (within a
            fraction of a second; never a hang).
    """
    _check_path(path)
    reason = ""
    for _ in range(_OPEN_TRIES):
        try:
            return h5py.File(path, "r")
        except OSError as exc:
            reason = one_line(exc)
        if _FLAGS_MESSAGE in reason:
            return _open_swmr(path)
        if not any(t in reason for t in _TRANSIENT):
            break
        time.sleep(_RETRY_S)
    sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", reason)
    if sizes:
        raise GradscopeError(
            f"{path} is truncated: {sizes[1]} bytes on disk, its HDF5 header says {sizes[2]} (an incomplete copy?)"
        )
    if "unable to lock file" in reason:
        raise GradscopeError(f"{path} is locked by another process (a writer setting it up?); try again in a moment")
    raise GradscopeError(f"{path} is not a gradscope trace (not a readable HDF5 file: {reason})")


def is_flagged(path: Path) -> bool:
    """Whether a writer has ``path`` open or was killed with it open (its consistency flags are set)."""
    _check_path(path)
    try:
        h5py.File(path, "r").close()
        return False
    except OSError as exc:
        return _FLAGS_MESSAGE in one_line(exc)


def writer_alive(attrs: Mapping[str, Any]) -> int | None:
    """The id of the live process on this host that the attributes name as writer, else None."""
    pid, host = attrs.get("writer_pid"), as_text(attrs.get("writer_host"))
    if host == socket.gethostname() and pid is not None and _alive(int(pid)):
        return int(pid)
    return None


@contextlib.contextmanager
def reading_errors(path: Path) -> Iterator[None]:
    """Turn HDF5's errors while reading an opened file into one-line GradscopeErrors."""
    try:
        yield
    except (OSError, RuntimeError, KeyError) as exc:
        raise GradscopeError(f"{path} is damaged: reading it failed ({one_line(exc)})") from None


def check_format(path: Path, attrs: Mapping[str, Any], f: h5py.File) -> int:
    """The schema version of an opened trace, after checking it is one this gradscope reads."""
    if as_text(attrs.get("format")) != schema.FORMAT:
        raise GradscopeError(f"{path} is not a gradscope trace (no format={schema.FORMAT!r} attribute)")
    try:
        version = int(attrs.get("schema_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version > schema.SCHEMA_VERSION:
        raise GradscopeError(
            f"{path} uses trace schema version {version}; this gradscope reads up to "
            f"version {schema.SCHEMA_VERSION} (upgrade gradscope)"
        )
    if version < 1 or schema.STEPS.name not in f:
        raise GradscopeError(f"{path} is not a valid gradscope trace (schema version {version})")
    return version


def config_of(path: Path, attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The run configuration stored in the ``config`` attribute (a JSON object)."""
    text = as_text(attrs.get("config", "{}"))
    try:
        config = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise GradscopeError(f"{path} has a damaged config attribute (not JSON: {exc})") from None
    if not isinstance(config, dict):
        raise GradscopeError(f"{path} has a damaged config attribute (JSON {type(config).__name__}, not an object)")
    return config


def open_for_append(path: Path) -> h5py.File:
    """Open an existing trace for writing, recovering it first if a killed writer left it flagged."""
    try:
        return h5py.File(path, "r+", libver="latest")
    except OSError as exc:
        if _FLAGS_MESSAGE not in str(exc):
            raise GradscopeError(f"cannot open {path} for appending: {one_line(exc)}") from None
    with open_for_reading(path) as src:
        pid = writer_alive(src.attrs)
    if pid is not None:
        raise GradscopeError(f"{path} is being written by process {pid}; stop it before resuming")
    recover(path)
    return h5py.File(path, "r+", libver="latest")


def recover(path: Path, check: Callable[[h5py.File, h5py.File], None] | None = None) -> None:
    """Rewrite a trace whose writer was killed so that ordinary opens accept it again.

    Every group, dataset and attribute visible to an SWMR reader (that is, everything the
    writer flushed) is copied into a temporary file that then atomically replaces ``path``;
    ``check(src, dst)`` may refuse the copy (raise) before it replaces anything.
    """
    tmp = path.with_name(path.name + ".recover.tmp")
    try:
        with open_for_reading(path) as src, reading_errors(path), h5py.File(tmp, "w", libver="latest") as dst:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                src.copy(src[name], dst, name=name)
            if check is not None:
                check(src, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def as_text(value: Any) -> Any:
    """An HDF5 attribute value with bytes decoded to str (h5py returns either, by how it was stored)."""
    return value.decode() if isinstance(value, bytes) else value


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (HDF5's messages can be long)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)  # KeyError adds quotes
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_path(path: Path) -> None:
    if not path.exists():
        raise GradscopeError(f"trace file not found: {path}")
    if not path.is_file():
        raise GradscopeError(f"not a trace file (a directory?): {path}")
    if path.stat().st_size == 0:
        raise GradscopeError(f"{path} is empty (0 bytes): not a gradscope trace")
    if not h5f.is_hdf5(os.fsencode(path)):
        raise GradscopeError(f"{path} is not a gradscope trace (not an HDF5 file)")


def _open_swmr(path: Path) -> h5py.File:
    """Open as an SWMR reader (as ``h5py.File(path, "r", libver="latest", swmr=True)``), retries bounded."""
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    limit = _read_attempts_setter()
    if limit is not None:
        limit(fapl.id, SWMR_READ_ATTEMPTS)
    try:
        fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY | h5f.ACC_SWMR_READ, fapl=fapl)
    except OSError as exc:
        raise GradscopeError(f"{path} cannot be opened while its writer has it open ({one_line(exc)})") from None
    return h5py.File(fid)


@functools.lru_cache(maxsize=1)
def _read_attempts_setter() -> Callable[[int, int], int] | None:
    """HDF5's ``H5Pset_metadata_read_attempts``, which h5py does not wrap, or None where not found.

    The symbol is looked up through one of h5py's extension modules, whose dependencies include
    the HDF5 library h5py runs on (the same copy, whether bundled or the system's).
    """
    try:
        fn = ctypes.CDLL(h5p.__file__).H5Pset_metadata_read_attempts
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def row_counts(data: h5py.Group, key: str) -> tuple[int, int]:
    """(complete rows, most rows of any dataset) of a row group: its key column's length, and the
    length a write in progress or interrupted reached in the longest dataset."""
    lengths = [ds.shape[0] for ds in data.values() if isinstance(ds, h5py.Dataset) and ds.ndim]
    complete = data[key].shape[0] if key in data else min(lengths, default=0)
    return complete, max(lengths, default=0)
