"""The feature cache: identical molecules back from memory and disk; keyed by content and featurizer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import gradscope.chem.dataset as dataset_module
from gradscope.chem import cache_dir, clear_memory_cache, load_dataset

CSV = "smiles,y\nCCO,1.0\nc1ccccc1,2.0\n[Cl-].C[NH3+],3.5\nCC(=O)Nc1ccc(O)cc1,0.5\nnot_smiles,1\n"


def same_molecules(a, b):
    """Every molecule of ``a`` and ``b`` equal, tensor for tensor (and a batch of all of them)."""
    assert len(a) == len(b)
    for i in range(len(a)):
        g, h = a[i], b[i]
        for name in ("atoms", "edge_index", "edge_attr", "distances", "y"):
            x, y = getattr(g, name), getattr(h, name)
            assert x.dtype == y.dtype and torch.equal(x, y), name
        assert g.smiles == h.smiles
    ba, bb = a.batch(), b.batch()
    for name in ("atoms", "bonds", "distances", "mask", "y", "y_mask", "index"):
        assert torch.equal(getattr(ba, name), getattr(bb, name)), name


def forbid_featurizing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("featurized again although cached")

    monkeypatch.setattr(dataset_module, "featurize_column", fail)


def feature_folders():
    return sorted(p for p in (cache_dir() / "features").iterdir() if not p.name.startswith("."))


@pytest.fixture
def csv_file(tmp_path):
    p = tmp_path / "mols.csv"
    p.write_text(CSV)
    return p


def test_disk_cache_returns_identical_molecules_memory_mapped(csv_file, monkeypatch):
    with pytest.warns(UserWarning):
        first = load_dataset(csv_file, progress=False)
    (folder,) = feature_folders()
    assert folder.name.startswith("mols-") and (folder / "meta.json").is_file()
    assert {p.name for p in folder.glob("*.npy")} >= {"atom_ptr.npy", "bonds.npy", "atom.atomic_number.npy"}
    clear_memory_cache()
    forbid_featurizing(monkeypatch)
    with pytest.warns(UserWarning):
        second = load_dataset(csv_file, progress=False)
    assert isinstance(second.store.atom_ptr, np.memmap)  # read lazily from the cache files
    same_molecules(first, second)
    assert [tuple(s) for s in first.skipped] == [tuple(s) for s in second.skipped]
    assert torch.isinf(second[2].distances).any()  # the salt's fragments stay unreachable


def test_memory_cache_shares_the_store(csv_file, monkeypatch):
    with pytest.warns(UserWarning):
        first = load_dataset(csv_file, progress=False)
    forbid_featurizing(monkeypatch)
    with pytest.warns(UserWarning):
        second = load_dataset(csv_file, progress=False)
    assert second.store is first.store


def test_key_changes_with_content_and_featurizer(csv_file):
    with pytest.warns(UserWarning):
        load_dataset(csv_file, progress=False)
        load_dataset(csv_file, featurizer="minimal", progress=False)
        load_dataset(csv_file, max_atoms=5, progress=False)
    csv_file.write_text(CSV.replace("1.0", "1.5"))
    with pytest.warns(UserWarning):
        ds = load_dataset(csv_file, progress=False)
    assert ds.labels[0, 0] == 1.5
    assert len(feature_folders()) == 4


@pytest.mark.parametrize("damage", ["meta", "array", "missing_array", "short_array"])
def test_corrupt_cache_is_a_miss(csv_file, damage):
    with pytest.warns(UserWarning):
        first = load_dataset(csv_file, progress=False)
    (folder,) = feature_folders()
    if damage == "meta":
        (folder / "meta.json").write_text("{not json")
    elif damage == "array":
        (folder / "bonds.npy").write_bytes(b"garbage")
    elif damage == "missing_array":
        (folder / "atom.degree.npy").unlink()
    else:
        np.save(folder / "atom_ptr.npy", np.array([0, 1], dtype=np.int64))
    clear_memory_cache()
    with pytest.warns(UserWarning):
        second = load_dataset(csv_file, progress=False)
    same_molecules(first, second)
    clear_memory_cache()  # the miss rewrote a good copy
    with pytest.warns(UserWarning):
        assert isinstance(load_dataset(csv_file, progress=False).store.atom_ptr, np.memmap)


def test_cache_dir_resolution(tmp_path, monkeypatch):
    assert cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    monkeypatch.delenv("GRADSCOPE_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "gradscope")


def test_use_cache_false_writes_nothing(csv_file):
    with pytest.warns(UserWarning):
        load_dataset(csv_file, progress=False, use_cache=False)
    assert not (cache_dir() / "features").exists()
