"""Molecules that appear more than once in a dataset file, found by canonical SMILES.

MoleculeNet files hold duplicates (the same molecule written twice, sometimes with different
labels). Kept silently they can land in different splits — a test molecule seen in training — and
conflicting labels make one of the two copies wrong. :func:`find_duplicates` groups the usable rows
by RDKit's canonical SMILES; the loader reports the groups and applies the dataset's policy
(:data:`POLICIES`): ``keep`` (every copy stays; a warning says how many), or ``first`` (the first
copy of a molecule stays and later copies are skipped; when the copies' labels disagree every copy
is skipped, because no copy can be trusted).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gradscope.chem._rdkit import parse_smiles, quiet_rdkit

POLICIES = ("keep", "first")
DUPLICATE = "duplicate molecule"
CONFLICT = "duplicate molecule with conflicting labels"


@dataclass(frozen=True)
class DuplicateGroup:
    """Rows (positions in the input order) that hold the same molecule, and whether labels agree."""

    rows: tuple[int, ...]
    conflicting: bool


def canonical_smiles(smiles: str) -> str:
    """RDKit's canonical SMILES of ``smiles`` (the stripped input where RDKit cannot parse it)."""
    from rdkit import Chem

    mol = parse_smiles(smiles)
    if mol is None:
        return smiles.strip()
    with quiet_rdkit():
        return Chem.MolToSmiles(mol)


def _labels_agree(labels: np.ndarray) -> bool:
    """Whether rows of ``labels`` (NaN = missing) agree wherever two of them are both present."""
    for column in labels.T:
        present = column[~np.isnan(column)]
        if present.size > 1 and not np.all(present == present[0]):
            return False
    return True


def find_duplicates(smiles: Sequence[str], labels: np.ndarray) -> list[DuplicateGroup]:
    """Groups of two or more rows whose molecules have the same canonical SMILES, in row order."""
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(smiles):
        by_key[canonical_smiles(s)].append(i)
    groups = [rows for rows in by_key.values() if len(rows) > 1]
    groups.sort(key=lambda rows: rows[0])
    return [DuplicateGroup(tuple(rows), not _labels_agree(labels[rows])) for rows in groups]


def rows_to_drop(groups: Sequence[DuplicateGroup], policy: str) -> dict[int, str]:
    """Row → skip reason under ``policy`` (empty for ``keep``)."""
    if policy == "keep":
        return {}
    drop: dict[int, str] = {}
    for group in groups:
        first = group.rows[0]
        if group.conflicting:
            others = ", ".join(str(r) for r in group.rows)
            drop.update({r: f"{CONFLICT} (rows {others})" for r in group.rows})
        else:
            drop.update({r: f"{DUPLICATE} (of row {first})" for r in group.rows[1:]})
    return drop


def describe(groups: Sequence[DuplicateGroup], n_rows: int) -> str:
    """One line for the loader's warning: how many molecules repeat, how many conflict."""
    copies = sum(len(g.rows) - 1 for g in groups)
    conflicts = sum(g.conflicting for g in groups)
    return (f"{len(groups)} molecules appear more than once ({copies} extra copies among {n_rows} usable rows, "
            f"{conflicts} with conflicting labels)")
