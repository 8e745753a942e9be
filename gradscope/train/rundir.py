"""The run directory of `gradscope record --out DIR`: refusing to mix runs, preparing a new one.

``DIR`` holds ``config.json``, ``trace.h5`` and ``checkpoints/`` (later ``landscape/``). An
existing run is continued (``resume``) or replaced (``overwrite``), never mixed with a new one.
"""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from gradscope.errors import GradscopeError

#: What makes a directory a run directory.
RUN_FILES = ("config.json", "trace.h5", "checkpoints")
#: The rows of the data file a new run skipped (unparseable SMILES, no label, ...), when there are any.
SKIPPED_NAME = "skipped.csv"


def check_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: an existing run directory needs ``resume`` or ``overwrite``.

    Only checks (nothing is created or deleted), so that a user error found later, e.g. a bad
    data file, leaves ``out`` as it was.
    """
    if resume and overwrite:
        raise GradscopeError("--resume and --overwrite exclude each other")
    if resume:
        if not (out / "checkpoints" / "last.pt").is_file():
            raise GradscopeError(f"nothing to resume in {out}: no checkpoints/last.pt")
        return
    if out.exists() and not out.is_dir():
        raise GradscopeError(f"--out {out} exists and is not a directory")
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise GradscopeError(f"{out} already holds a run ({', '.join(existing)}); use --resume to continue it "
                             "or --overwrite to replace it")


def prepare_out_dir(out: Path, *, overwrite: bool) -> None:
    """Create ``out`` for a new run; with ``overwrite`` remove the old run's checkpoints, the
    temporary files an interrupted write left (``checkpoints/.last.pt.tmpN``, ``.config.json.tmp``:
    older gradscope versions did not remove them after a failed write) and the landscapes drawn
    around the old checkpoints (``landscape/``, the default of ``gradscope landscape RUN``); the
    trace and config.json are replaced when they are written."""
    from gradscope.train.checkpoint import PARTIAL_GLOB

    ckdir = out / "checkpoints"
    if overwrite and ckdir.is_dir():
        for ck in [*ckdir.glob("*.pt"), *ckdir.glob(PARTIAL_GLOB)]:
            ck.unlink()
    if overwrite:
        for leftover in [*out.glob(".config.json.tmp*"), out / SKIPPED_NAME]:
            leftover.unlink(missing_ok=True)
    if overwrite and (out / "landscape").is_dir():
        shutil.rmtree(out / "landscape")
    out.mkdir(parents=True, exist_ok=True)


def write_json_atomic(path: Path, text: str) -> None:
    """Write ``text`` (JSON, CSV) to ``path`` through a temporary file and a rename (never a torn file; a failed
    write, e.g. on a full disk, removes the temporary file and raises a one-line GradscopeError)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GradscopeError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_skipped(out: Path, skipped: list) -> Path | None:
    """``out/skipped.csv``: every row the dataset skipped (``row`` counted from 0 after the header,
    ``smiles``, ``reason``), so that a user of the CLI sees them all; None when none was skipped."""
    if not skipped:
        return None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "smiles", "reason"])
    writer.writerows((s.row, s.smiles, s.reason) for s in skipped)
    path = out / SKIPPED_NAME
    write_json_atomic(path, buffer.getvalue())
    return path
