"""Featurizing a column of SMILES: in chunks, in one process or several, with progress.

:func:`featurize_column` turns SMILES into a compact
:class:`~gradscope.chem.store.MoleculeStore` (the molecules that can be used) and a skip reason
per input (``""`` for molecules that were featurized). The work is cut into chunks of
:data:`CHUNK` molecules; with ``workers > 1`` the chunks go to that many processes (forked on
Linux, so nothing is re-imported; spawned elsewhere) and come back in input order, so the result
is the same array for array whatever the number of workers. Memory stays near what is kept: each
chunk returns its compact codes, which are copied into the final arrays
(:class:`~gradscope.chem.store.StoreBuilder`) and freed.

:func:`featurize_smiles` is the per-molecule form (a :class:`MolGraph` per SMILES), for small
lists and for code that wants dense tensors directly.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Sequence

import numpy as np
from rdkit import Chem

from gradscope.chem._rdkit import parse_smiles, quiet_rdkit
from gradscope.chem.featurizers import Featurizer, get_featurizer
from gradscope.chem.graph import MolGraph
from gradscope.progress import Progress
from gradscope.chem.store import MoleculeStore, PackedStrings, StoreBuilder, concat_stores
from gradscope.errors import GradscopeError

UNPARSEABLE = "unparseable SMILES"
EMPTY = "empty SMILES"
TOO_LARGE = "too many atoms"
#: show progress from this many molecules on
PROGRESS_MIN = 500
#: most molecules per unit of work (one progress update, one task of a worker process); smaller
#: inputs are cut into about 20 chunks (of at least 50), for progress and for the workers
CHUNK = 1000
#: molecules parsed and encoded together inside a chunk (bounds the RDKit molecules alive at once)
ENCODE_BATCH = 64


def parse_checked(smiles: str, max_atoms: int | None) -> "tuple[object | None, str]":
    """``(molecule, "")`` for a usable SMILES, else ``(None, reason)``."""
    s = smiles.strip()
    if not s:
        return None, EMPTY
    mol = parse_smiles(s)
    if mol is None:
        return None, UNPARSEABLE
    n = mol.GetNumAtoms()
    if n == 0:
        return None, EMPTY
    if max_atoms is not None and n > max_atoms:
        return None, f"{TOO_LARGE} ({n} > max_atoms={max_atoms})"
    return mol, ""


def canonical_key(mol: "Chem.Mol") -> int:
    """A 64-bit hash of the molecule's canonical SMILES (stable across processes and runs)."""
    with quiet_rdkit():
        text = Chem.MolToSmiles(mol)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def encode_chunk(feat: Featurizer, smiles: Sequence[str], max_atoms: int | None) -> tuple[MoleculeStore, list[str]]:
    """The store of the usable molecules among ``smiles`` (with their canonical keys) and a skip
    reason per input. Molecules are parsed and encoded :data:`ENCODE_BATCH` at a time: RDKit
    molecules are large (tens of KB with their properties), so few are alive at once."""
    pieces, reasons = [], []
    for start in range(0, len(smiles), ENCODE_BATCH):
        mols, kept, keys = [], [], []
        for s in smiles[start:start + ENCODE_BATCH]:
            mol, reason = parse_checked(s, max_atoms)
            reasons.append(reason)
            if mol is not None:
                keys.append(canonical_key(mol))  # before featurizing: it only reads the structure
                mols.append(mol)
                kept.append(s.strip())
        pieces.append(replace(feat.encode(mols, kept), keys=np.array(keys, dtype=np.uint64)))
    return concat_stores(pieces) if pieces else feat.encode([], []), reasons


def featurize_column(
    smiles: Sequence[str],
    featurizer: "str | Featurizer" = "compt",
    *,
    max_atoms: int | None = None,
    workers: int = 1,
    progress: bool = False,
    desc: str = "featurizing",
    chunk: int | None = None,
) -> tuple[MoleculeStore, list[str]]:
    """Featurize ``smiles`` into a :class:`MoleculeStore` (usable molecules, in input order) and
    a skip reason per input (``""`` where the molecule is in the store).

    Args:
        workers: processes featurizing chunks in parallel (1: this process only).
        progress: show progress (from :data:`PROGRESS_MIN` molecules on): a bar on a terminal,
            log lines elsewhere (:mod:`gradscope.progress`).
    """
    workers = check_workers(workers)
    feat = get_featurizer(featurizer)
    chunk = chunk or min(CHUNK, max(50, -(-len(smiles) // 20)))
    starts = range(0, len(smiles), chunk)
    # the SMILES' bytes bound the atoms and bonds: each takes a character at least
    chars = smiles.nbytes if isinstance(smiles, PackedStrings) else sum(len(s.encode()) for s in smiles)
    builder = StoreBuilder(feat.encode([], []), len(smiles), chars, chars, chars)
    reasons: list[str] = []

    def take(piece: tuple[MoleculeStore, list[str]]) -> None:
        builder.append(piece[0])
        reasons.extend(piece[1])
        bar.update(len(piece[1]))

    with Progress(len(smiles), desc, enabled=progress and len(smiles) >= PROGRESS_MIN) as bar:
        if workers == 1 or len(starts) < 2:
            for start in starts:
                take(encode_chunk(feat, smiles[start:start + chunk], max_atoms))
        else:
            _in_processes(feat, smiles, starts, chunk, max_atoms, workers, take)
    return builder.finish(), reasons


def check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise GradscopeError(f"workers must be a positive integer, got {workers!r}")
    return workers


# -- worker processes -------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(feat: Featurizer, max_atoms: int | None) -> None:
    _WORKER.update(feat=feat, max_atoms=max_atoms)


def _work(smiles: list[str]) -> tuple[MoleculeStore, list[str]]:
    return encode_chunk(_WORKER["feat"], smiles, _WORKER["max_atoms"])


def _context() -> multiprocessing.context.BaseContext:
    """Fork on Linux (workers inherit the imported modules and the featurizer as they are);
    the platform's default (spawn) elsewhere, where the featurizer must pickle (presets do)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _in_processes(feat: Featurizer, smiles: Sequence[str], starts: range, chunk: int, max_atoms: int | None,
                  workers: int, take) -> None:
    """Featurize the chunks at ``starts`` in ``workers`` processes; ``take`` each result in order."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init_worker,
                               initargs=(feat, max_atoms))
    try:
        # a few chunks queued per worker: the inputs are not all copied into the queue at once,
        # and finished chunks wait for their turn only as long as one slow chunk takes
        todo = iter(enumerate(starts))
        running: dict[Future, int] = {}
        done_early: dict[int, tuple[MoleculeStore, list[str]]] = {}
        turn = 0

        def submit() -> None:
            for k, start in todo:
                running[pool.submit(_work, list(smiles[start:start + chunk]))] = k
                if len(running) >= 4 * workers:
                    return

        submit()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                done_early[running.pop(fut)] = fut.result()
            while turn in done_early:
                take(done_early.pop(turn))
                turn += 1
            submit()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def featurize_smiles(
    smiles: Sequence[str],
    featurizer: "str | Featurizer" = "compt",
    *,
    max_atoms: int | None = None,
    progress: bool = False,
    desc: str = "featurizing",
) -> tuple[list[MolGraph | None], list[str]]:
    """Featurize SMILES strings (no caching): a graph or ``None`` per input, and skip reasons
    (``""`` for molecules that were featurized)."""
    feat = get_featurizer(featurizer)
    graphs: list[MolGraph | None] = []
    reasons: list[str] = []
    with Progress(len(smiles), desc, enabled=progress and len(smiles) >= PROGRESS_MIN) as bar:
        for s in smiles:
            mol, reason = parse_checked(s, max_atoms)
            graphs.append(None if mol is None else feat.featurize(mol, smiles=s.strip()))
            reasons.append(reason)
            bar.update(1)
    return graphs, reasons
