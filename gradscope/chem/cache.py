"""The cache directory and the featurized-molecule cache (in memory and on disk).

Featurizing a file's SMILES column is the slow part of loading (RDKit parsing, Gasteiger
charges), so its result is stored once, keyed by the SHA-256 of the file's bytes, the SMILES
column, the featurizer's ``name@version`` and the atom limit. A second load in the same process
is a dictionary lookup that shares the arrays; a later process memory-maps the compact
:class:`~gradscope.chem.store.MoleculeStore` arrays (``.npy`` files in one folder per
featurization) instead of re-featurizing, so a reload reads only the pages batches touch.

Cache location: the ``cache_dir=`` argument, else ``$GRADSCOPE_CACHE``, else
``~/.cache/gradscope``. Layout: ``datasets/`` (downloaded files), ``features/<name>-<key>/``
(this cache). Files and folders are written under a temporary name and renamed, so a killed run
never leaves a torn file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gradscope.chem.store import MoleculeStore, column_layout, load_store, save_store

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.featurizers import Featurizer

CACHE_ENV = "GRADSCOPE_CACHE"
#: 1: one .pt file of dense tensors (gradscope ≤ 0.1); 2: a folder of compact .npy arrays
FORMAT = 2
_MEMORY: "OrderedDict[str, tuple[MoleculeStore, list[str]]]" = OrderedDict()
_MEMORY_SLOTS = 8


def cache_dir(override: "str | os.PathLike[str] | None" = None) -> Path:
    """The cache root (see module docstring); not created here."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gradscope"


def feature_key(source_sha256: str, smiles_column: str, featurizer_key: str, max_atoms: int | None) -> str:
    """Hex key of one featurization of one file's SMILES column."""
    text = f"format={FORMAT}|sha256={source_sha256}|smiles={smiles_column}|featurizer={featurizer_key}|max_atoms={max_atoms}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def memory_get(key: str) -> tuple[MoleculeStore, list[str]] | None:
    hit = _MEMORY.get(key)
    if hit is not None:
        _MEMORY.move_to_end(key)
    return hit


def memory_put(key: str, store: MoleculeStore, reasons: list[str]) -> None:
    _MEMORY[key] = (store, reasons)
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > _MEMORY_SLOTS:
        _MEMORY.popitem(last=False)


def clear_memory_cache() -> None:
    """Forget the in-process cache (the disk cache is untouched)."""
    _MEMORY.clear()


def save_features(folder: Path, store: MoleculeStore, reasons: Sequence[str], featurizer: "Featurizer") -> None:
    """Store one featurization in ``folder``: the store's arrays (``.npy``) and ``meta.json`` with
    the skip reason of every row that is not in the store.

    Written into a temporary folder beside ``folder`` and renamed, so a reader never sees half a
    cache; when another process wrote the same folder first, its copy is kept.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    try:
        tmp.rmdir()
        meta = {"format": FORMAT, "n_rows": len(reasons), "featurizer": featurizer.key,
                "columns": _layout(featurizer), "reasons": {str(i): r for i, r in enumerate(reasons) if r}}
        save_store(tmp, store, meta)
        if folder.exists():  # a stale or unreadable copy (a good one would have been read)
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_features(folder: Path, n_rows: int, featurizer: "Featurizer") -> tuple[MoleculeStore, list[str]] | None:
    """Read what :func:`save_features` wrote, arrays memory-mapped; ``None`` if missing, stale
    (another row count or feature layout) or unreadable."""
    if not (folder / "meta.json").is_file():
        return None
    try:
        store, meta = load_store(folder, mmap=True)
        if meta.get("format") != FORMAT or meta.get("n_rows") != n_rows or meta.get("columns") != _layout(featurizer):
            return None
        reasons = [""] * n_rows
        for i, r in meta["reasons"].items():
            reasons[int(i)] = r
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):  # corrupt or foreign: a miss
        return None
    if n_rows - sum(1 for r in reasons if r) != len(store):
        return None
    return store, reasons


def _layout(featurizer: "Featurizer") -> dict[str, list[list[str]]]:
    return {"atom": column_layout(featurizer.atom_columns), "bond": column_layout(featurizer.bond_columns)}
