"""benchmarks/scale.py, tiny: distinct generated molecules, and one load measured in a child process."""
from __future__ import annotations

import json

import pytest
from rdkit import Chem

from benchmarks import scale


@pytest.fixture(scope="module")
def bases():
    return scale.base_molecules(limit=40)


def test_generated_rows_are_distinct_molecules_that_featurize_like_their_base(bases):
    rows = list(scale.generated_rows(200, bases))
    assert len(rows) == 200 and len(bases) == 40
    canonical = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s, _ in rows]
    assert len(set(canonical)) == 200  # isotope labels make every row its own molecule
    for k, (smiles, logp) in enumerate(rows):
        base, _, base_logp = bases[k % len(bases)]
        mol = Chem.MolFromSmiles(smiles)
        assert mol.GetNumAtoms() == base.GetNumAtoms() and logp == base_logp
        assert sorted(a.GetAtomicNum() for a in mol.GetAtoms()) == sorted(a.GetAtomicNum() for a in base.GetAtoms())
    assert list(scale.generated_rows(200, bases)) == rows  # seeded


def test_a_load_is_measured_in_a_fresh_process(bases, tmp_path):
    path = scale.write_csv(tmp_path / "s.csv", 120, bases)
    result = scale._spawn(["load", str(path), str(tmp_path / "cache"), "2"])
    assert result["molecules"] == 120
    assert 100 < result["kept_bytes_per_mol"] < 2000 and result["rss_peak_mib"] >= result["rss_after_mib"]
    assert set(result["arrays"]) >= {"atom_ptr", "bonds", "smiles_bytes"}
    json.dumps(result)
