"""Every MoleculeNet format loads with the expected counts (the excerpts in tests/data/moleculenet)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from gradscope.chem import DATASETS, DataWarning, PAPER_DATASETS, load_dataset
from gradscope.chem.dataset import UNPARSEABLE

# name: (rows in the excerpt, RDKit-unparseable rows, molecules above the default 100-atom limit)
# (counted with RDKit when the excerpts were made; tests/data/moleculenet/README.md)
EXPECTED = {
    "bbbp": (73, 3, 3),
    "tox21": (52, 4, 0),
    "sider": (48, 0, 3),
    "clintox": (51, 4, 0),
    "esol": (48, 0, 0),
    "lipophilicity": (48, 0, 0),
}
TOX21_BLANKS = 109  # missing labels in the tox21 excerpt


def _params():
    return list(PAPER_DATASETS)


def _naive_labels(path, targets, rows):
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    return np.array([[float(records[r][t]) if records[r][t].strip() else np.nan for t in targets] for r in rows])


@pytest.mark.parametrize("name", _params())
def test_shared_file_loads_with_expected_counts(name, moleculenet_dir):
    rows, unparseable, large = EXPECTED[name]
    path = moleculenet_dir / f"{name}.csv"
    ctx = pytest.warns(DataWarning, match=f"{unparseable} unparseable") if unparseable else _no_warning()
    with ctx:
        ds = load_dataset(name, path=path, max_atoms=None, featurizer="minimal", progress=False)
    info = DATASETS[name]
    assert len(ds) + len(ds.skipped) == rows
    assert len(ds.skipped) == unparseable and all(s.reason == UNPARSEABLE for s in ds.skipped)
    assert (ds.n_atoms > 100).sum() == large
    assert ds.target_names == info.targets and ds.task == info.task and ds.metric == info.metric
    # labels (with blanks as missing) equal a naive csv read of the kept rows
    np.testing.assert_array_equal(ds.labels, _naive_labels(path, info.targets, ds.rows).astype(np.float32))
    if name == "tox21":
        with open(path, newline="") as f:
            records = list(csv.DictReader(f))
        blanks_skipped = sum(records[s.row][t] == "" for s in ds.skipped for t in ds.target_names)
        assert (~ds.label_mask).sum() + blanks_skipped == TOX21_BLANKS


def test_default_atom_limit_and_row_numbers(moleculenet_dir):
    with pytest.warns(DataWarning, match=r"skipped 6 of 73 rows \(3 unparseable SMILES, 3 too many atoms"):
        ds = load_dataset("bbbp", data_dir=moleculenet_dir, progress=False)
    unparseable = [s.row for s in ds.skipped if s.reason == UNPARSEABLE]
    assert unparseable == [49, 50, 70]
    with open(moleculenet_dir / "bbbp.csv", newline="") as f:
        records = list(csv.DictReader(f))
    assert all(records[s.row]["smiles"].strip() == s.smiles for s in ds.skipped)
    assert all(records[r]["smiles"].strip() == s for r, s in zip(ds.rows, ds.smiles))
    assert len(ds) == 67 and ds.n_atoms.max() <= 100
    assert ds.atom_dim == 115 and ds.bond_dim == 13


class _no_warning:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error", DataWarning)

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
