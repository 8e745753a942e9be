"""Repair a trace left flagged by a killed writer: what ``gradscope trace repair`` does.

A recorder killed with SIGKILL (or a crashed machine) leaves HDF5's "open for write"
consistency flags set in the file. gradscope still reads it as an SWMR reader, but h5py's plain
``File(path, "r")``, h5dump, HDFView and pandas refuse it. The ``h5clear -s`` tool clears the
flags in place; h5py does not expose that, so the repair copies everything the writer flushed
into a fresh file and atomically replaces the original (:func:`gradscope.trace._files.recover`),
dropping only half-written rows (datasets longer than their group's key column, which readers
never show). A trace that a live process on this host still writes is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py

from gradscope.errors import GradscopeError
from gradscope.trace import schema
from gradscope.trace._files import is_flagged, open_for_reading, recover, row_counts, writer_alive


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair` did: ``repaired`` False when the file was not flagged (nothing to do)."""

    path: str
    repaired: bool
    rows: dict[str, int]
    dropped_incomplete: dict[str, int]


def repair(path: str | os.PathLike[str]) -> RepairResult:
    """Make a trace left flagged by a killed writer openable by every HDF5 tool, keeping every complete row.

    Raises:
        GradscopeError: the file is not a readable HDF5 file, or a live process still writes it.
    """
    path = Path(path)
    if not is_flagged(path):
        with open_for_reading(path) as f:
            return RepairResult(str(path), False, _complete_rows(f), {})
    with open_for_reading(path) as f:
        pid = writer_alive(f.attrs)
        counts = {g.name: row_counts(f[g.name], g.key) for g in schema.GROUPS if g.name in f}
    before = {name: complete for name, (complete, _) in counts.items()}
    dropped = {name: longest - complete for name, (complete, longest) in counts.items() if longest > complete}
    if pid is not None:
        raise GradscopeError(f"{path} is being written by process {pid} on this host; stop it before repairing")
    recover(path, check=_keep_complete_rows)
    if is_flagged(path):
        raise GradscopeError(f"{path} is still flagged after the repair; please report this")
    return RepairResult(str(path), True, before, dropped)


def _complete_rows(f: h5py.File) -> dict[str, int]:
    return {g.name: row_counts(f[g.name], g.key)[0] for g in schema.GROUPS if g.name in f}


def _keep_complete_rows(src: h5py.File, dst: h5py.File) -> None:
    """Cut the copy's row groups to their complete rows, then check none was lost."""
    for g in schema.GROUPS:
        if g.name not in dst:
            continue
        rows = row_counts(dst[g.name], g.key)[0]
        for ds in dst[g.name].values():
            if isinstance(ds, h5py.Dataset) and ds.ndim and ds.shape[0] > rows and ds.maxshape[0] is None:
                ds.resize(rows, axis=0)
    if _complete_rows(dst) != _complete_rows(src):
        raise GradscopeError(f"the repaired copy lost rows ({_complete_rows(dst)} of {_complete_rows(src)}); "
                             "the original is left as it was")
