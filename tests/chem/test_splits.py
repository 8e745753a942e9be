"""Random, scaffold and k-fold splits: disjoint, complete, seeded, scaffold-pure."""
from __future__ import annotations

import numpy as np
import pytest

from gradscope.chem import SplitSpec, kfold_split, load_dataset, make_split, murcko_scaffold, random_split
from gradscope.chem import scaffold_split, split_from_lists
from gradscope.errors import ConfigError


def check_partition(split, n):
    assert set(split) == {"train", "val", "test"}
    allidx = np.concatenate(list(split.values()))
    assert all(v.dtype == np.int64 for v in split.values())
    assert sorted(allidx.tolist()) == list(range(n))


def test_random_split_sizes_and_seeds():
    s = random_split(1000, seed=3)
    check_partition(s, 1000)
    assert [len(s[k]) for k in ("train", "val", "test")] == [800, 100, 100]
    assert all(np.array_equal(s[k], random_split(1000, seed=3)[k]) for k in s)
    assert not np.array_equal(s["test"], random_split(1000, seed=4)["test"])
    t = random_split(11, seed=0, fractions=(0.6, 0.2, 0.2))
    check_partition(t, 11)
    assert [len(t[k]) for k in ("train", "val", "test")] == [6, 2, 3]


def test_murcko_scaffold():
    assert murcko_scaffold("CCc1ccccc1") == "c1ccccc1"
    assert murcko_scaffold("CCO") == ""
    assert murcko_scaffold("Cc1ccc(cc1)C1CCNCC1") == "c1ccc(C2CCNCC2)cc1"
    # chirality is ignored, as in DeepChem: cis- and trans-decalin share one scaffold
    assert murcko_scaffold("C1CC[C@H]2CCCC[C@@H]2C1") == murcko_scaffold("C1CC[C@H]2CCCC[C@H]2C1") == "C1CCC2CCCCC2C1"


def test_scaffold_split_no_scaffold_in_two_splits():
    ds = load_dataset("demo", progress=False)
    s = make_split(ds, "scaffold")
    check_partition(s, len(ds))
    scaffolds = {k: {murcko_scaffold(ds.smiles[i]) for i in v} for k, v in s.items()}
    assert not scaffolds["train"] & scaffolds["val"]
    assert not scaffolds["train"] & scaffolds["test"]
    assert not scaffolds["val"] & scaffolds["test"]
    assert len(s["train"]) <= 0.8 * len(ds) and len(s["train"]) + len(s["val"]) <= 0.9 * len(ds)
    # deterministic, and the largest scaffold group (benzene here) goes to train
    again = scaffold_split(ds.smiles)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    groups = {}
    for i, smi in enumerate(ds.smiles):
        groups.setdefault(murcko_scaffold(smi), []).append(i)
    largest = max(groups.values(), key=len)
    assert set(largest) <= set(s["train"].tolist())


def test_scaffold_split_order_on_a_tiny_example():
    smiles = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "C1CCCCC1C", "C1CCCCC1O", "c1ccncc1C", "CCO", "CCN", "C1CC1C",
              "C1CCC1C"]
    s = scaffold_split(smiles, fractions=(0.5, 0.3, 0.2))
    # groups by (size, first index) descending: benzene {0,1,2}, acyclic {6,7} (ties with cyclohexane {3,4},
    # starts later), cyclohexane {3,4}, cyclobutane {9}, cyclopropane {8}, pyridine {5}; train takes groups
    # while ≤ 5 molecules, validation while train + validation ≤ 8
    assert s["train"].tolist() == [0, 1, 2, 6, 7]
    assert s["val"].tolist() == [3, 4, 9]
    assert s["test"].tolist() == [5, 8]


def deepchem_scaffold_reference(smiles, frac_train=0.8, frac_valid=0.1):
    """DeepChem's ScaffoldSplitter.split rule, written out: Murcko scaffolds without chirality; sets
    sorted by (len, first index) in reverse; a set goes to train unless that would pass the train
    cutoff, then to validation unless train + validation would pass the validation cutoff, else test."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    sets = {}
    for ind, smi in enumerate(smiles):
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(smi), includeChirality=False)
        sets.setdefault(scaffold, []).append(ind)
    ordered = [v for _, v in sorted(sets.items(), key=lambda kv: (len(kv[1]), kv[1][0]), reverse=True)]
    train_cutoff, valid_cutoff = frac_train * len(smiles), (frac_train + frac_valid) * len(smiles)
    train, valid, test = [], [], []
    for group in ordered:
        if len(train) + len(group) > train_cutoff:
            if len(train) + len(valid) + len(group) > valid_cutoff:
                test += group
            else:
                valid += group
        else:
            train += group
    return sorted(train), sorted(valid), sorted(test)


# 36 molecules: scaffold sets of sizes 6, 4, 4, 3, 3, 3, 2, 2, 2, 2, 1 × 5 with interleaved first
# occurrences, so that ties decide which sets reach validation and test; cis/trans decalins share a
# scaffold once chirality is ignored
TIE_SMILES = [
    "c1ccccc1C", "C1CCNCC1C", "c1ccsc1C", "CCO", "c1ccccc1O", "C1CCNCC1O", "c1ccccc1N", "c1ccsc1O",
    "C1CCOC1C", "CCN", "c1ccsc1N", "C1CCNCC1N", "c1ccccc1F", "C1CCOC1O", "CCC(=O)O", "c1ccccc1Cl",
    "C1CCNCC1F", "c1ccsc1Cl", "C1CC[C@H]2CCCC[C@@H]2C1", "C1CC[C@H]2CCCC[C@H]2C1", "C1CCOC1N",
    "c1ccc2ccccc2c1C", "c1ccc2ccccc2c1O", "c1ccccc1Br", "C1CCC1C", "C1CCC1O", "c1ccncc1C", "c1ccncc1O",
    "C1CC1C", "c1cocc1C", "C1CCCCCC1C", "c1ccc(-c2ccccc2)cc1C", "C1CCCCCCC1", "c1cnccn1", "CCCCl", "CCOC",
]


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.5, 0.25, 0.25)])
def test_scaffold_split_equals_deepchem_rule_with_ties(fractions):
    train, valid, test = deepchem_scaffold_reference(TIE_SMILES, fractions[0], fractions[1])
    s = scaffold_split(TIE_SMILES, fractions=fractions)
    check_partition(s, len(TIE_SMILES))
    assert (s["train"].tolist(), s["val"].tolist(), s["test"].tolist()) == (train, valid, test)


def test_scaffold_ties_go_later_first_index_first():
    # two sets of two molecules: {0, 2} (benzene) and {1, 3} (cyclohexane); with room for one set in train,
    # DeepChem puts the set that starts later ({1, 3}) first
    s = scaffold_split(["c1ccccc1C", "C1CCCCC1C", "c1ccccc1O", "C1CCCCC1O"], fractions=(0.5, 0.5, 0.0))
    assert s["train"].tolist() == [1, 3] and s["val"].tolist() == [0, 2] and s["test"].tolist() == []


def test_kfold_test_sets_partition_the_data():
    tests = []
    for fold in range(5):
        s = kfold_split(103, k=5, fold=fold, seed=1)
        check_partition(s, 103)
        assert len(s["val"]) == 10
        tests.append(s["test"])
    assert sorted(np.concatenate(tests).tolist()) == list(range(103))


def test_split_spec_roundtrip_and_validation():
    spec = SplitSpec(method="kfold", k=4, fold=3, seed=7)
    assert SplitSpec.from_dict(spec.to_dict()) == spec
    for bad in (dict(method="time"), dict(fractions=(0.5, 0.5)), dict(fractions=(0.8, 0.3, -0.1)),
                dict(method="kfold", k=3, fold=3)):
        with pytest.raises(ConfigError):
            SplitSpec(**bad)
    s = make_split([f"C{'C' * i}O" for i in range(30)], spec)
    assert all(np.array_equal(v, w) for v, w in zip(s.values(), split_from_lists({k: v.tolist() for k, v in s.items()}).values()))
