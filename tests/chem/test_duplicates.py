"""Duplicate molecules: found by canonical SMILES, reported, and dropped under ``duplicates="first"``."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from gradscope.chem import DataWarning, load_dataset
from gradscope.chem.duplicates import find_duplicates
from gradscope.errors import ConfigError

# rows: 0 ethanol, 1 benzene, 2 ethanol written another way (same label), 3 acetic acid,
# 4 benzene again with the other label, 5 propane, 6 ethanol a third time
ROWS = [("CCO", 1), ("c1ccccc1", 0), ("OCC", 1), ("CC(=O)O", 1), ("C1=CC=CC=C1", 1), ("CCC", 0), ("C(O)C", 1)]


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "dups.csv"
    path.write_text("smiles,active\n" + "".join(f"{s},{y}\n" for s, y in ROWS))
    return path


def _naive_groups(smiles: list[str]) -> list[tuple[int, ...]]:
    """Pairwise: rows i < j hold the same molecule when RDKit's canonical SMILES are equal."""
    from rdkit import Chem

    canon = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
    groups = []
    for i in range(len(smiles)):
        if any(i in g for g in groups):
            continue
        same = tuple(j for j in range(len(smiles)) if canon[j] == canon[i])
        if len(same) > 1:
            groups.append(same)
    return groups


def test_groups_equal_a_pairwise_reference_and_conflicts_are_flagged() -> None:
    smiles = [s for s, _ in ROWS]
    labels = np.array([[y] for _, y in ROWS], dtype=np.float32)
    groups = find_duplicates(smiles, labels)
    assert [g.rows for g in groups] == _naive_groups(smiles) == [(0, 2, 6), (1, 4)]
    assert [g.conflicting for g in groups] == [False, True]
    labels[4, 0] = np.nan  # a missing label does not conflict
    assert [g.conflicting for g in find_duplicates(smiles, labels)] == [False, False]


def test_keep_reports_the_duplicates_and_keeps_every_row(tmp_path: Path) -> None:
    with pytest.warns(DataWarning, match=r"2 molecules appear more than once \(3 extra copies among 7 usable rows, "
                                         r"1 with conflicting labels\), kept"):
        ds = load_dataset(_csv(tmp_path), progress=False, use_cache=False)
    assert len(ds) == 7 and not ds.skipped
    assert [g.rows for g in ds.duplicates] == [(0, 2, 6), (1, 4)]


def test_first_keeps_one_copy_and_drops_every_copy_of_a_conflict(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_dataset(_csv(tmp_path), duplicates="first", progress=False, use_cache=False)
    assert list(ds.rows) == [0, 3, 5]
    assert [(s.row, s.reason.split(" (")[0]) for s in ds.skipped] == [
        (1, "duplicate molecule with conflicting labels"), (2, "duplicate molecule"),
        (4, "duplicate molecule with conflicting labels"), (6, "duplicate molecule")]
    assert ds.skipped[1].reason == "duplicate molecule (of row 0)"
    message = " ".join(str(w.message) for w in caught)
    assert "skipped 4 of 7 rows" in message and "kept" not in message


def test_unknown_policy_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicates must be one of keep, first"):
        load_dataset(_csv(tmp_path), duplicates="last", progress=False)
