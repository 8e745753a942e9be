"""benchmarks/scale.py, tiny: distinct generated molecules, and one load measured in a child process."""
from __future__ import annotations

import json

import pytest
import torch
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


def test_training_is_timed_for_one_epoch_at_most(bases, tmp_path):
    path = scale.write_csv(tmp_path / "t.csv", 200, bases)
    threads = torch.get_num_threads()  # the child sets one thread: restored for the tests after this one
    try:
        result = scale.child_train(str(path), str(tmp_path / "cache"), 1000, None)
        short = scale.child_train(str(path), str(tmp_path / "cache"), 1, 50)
    finally:
        torch.set_num_threads(threads)
    assert result["steps_per_epoch"] == 5 and result["steps_timed"] == 2  # 3 warm-up steps, then the rest
    assert result["epoch_cpu_s"] > 0 and 0 < result["real_atom_fraction"] <= 1
    assert short["steps_timed"] == 1 and "epoch_cpu_s" not in short


def test_the_recorded_command_names_no_folder():
    argv = ["--sizes", "10", "--workdir", "/somewhere", "--gradscope-path=/else", "--train-steps", "0"]
    assert scale.recorded_command(argv) == "python -m benchmarks.scale --sizes 10 --train-steps 0"
