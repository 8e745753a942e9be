"""Padded batches: every entry checked against the molecules it came from."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradscope.chem import GraphBatch, Standardizer, collate
from gradscope.chem.featurizers import COMPT
from gradscope.errors import GradscopeError

SMILES = ["CCO", "c1ccccc1", "[Cl-].C[NH3+]", "CC(=O)Nc1ccc(O)cc1"]


def graphs(with_labels: bool = True):
    out = []
    for i, s in enumerate(SMILES):
        y = torch.tensor([float(i), math.nan if i % 2 else 1.0]) if with_labels else None
        out.append(COMPT(s).with_labels(y, index=10 + i))
    return out


def test_collate_layout_against_each_molecule():
    gs = graphs()
    b = collate(gs)
    assert isinstance(b, GraphBatch) and len(b) == 4
    length = max(g.n_atoms for g in gs)
    assert b.atoms.shape == (4, length, 115) and b.bonds.shape == (4, length, length, 13)
    assert b.distances.shape == (4, length, length) and b.mask.dtype == torch.bool
    for i, g in enumerate(gs):
        n = g.n_atoms
        assert b.mask[i].tolist() == [True] * n + [False] * (length - n)
        assert torch.equal(b.atoms[i, :n], g.atoms) and b.atoms[i, n:].abs().sum() == 0
        assert torch.equal(b.bonds[i, :n, :n], g.dense_bonds()) and b.bonds[i, n:].abs().sum() == 0
        assert torch.equal(b.distances[i, :n, :n], g.distances)
        assert b.distances[i, n:].abs().sum() == 0 and b.distances[i, :, n:].abs().sum() == 0
    assert b.index.tolist() == [10, 11, 12, 13]


def test_labels_and_missing_mask():
    b = collate(graphs())
    assert b.y.shape == (4, 2) and b.y.dtype == torch.float32
    assert b.y_mask.tolist() == [[True, True], [True, False], [True, True], [True, False]]
    assert not torch.isnan(b.y).any()  # missing labels are zero-filled, masked out
    assert b.y[:, 0].tolist() == [0, 1, 2, 3]


def test_standardizer_and_unlabelled():
    st = Standardizer(mean=(1.0, 2.0), std=(2.0, 4.0))
    b = collate(graphs(), standardizer=st)
    assert b.y[:, 0].tolist() == [-0.5, 0.0, 0.5, 1.0]
    assert b.y[0, 1] == pytest.approx((1 - 2) / 4)
    u = collate(graphs(with_labels=False), n_tasks=3)
    assert u.y.shape == (4, 3) and not u.y_mask.any()


def test_pad_to_and_errors():
    b = collate(graphs(), pad_to=40)
    assert b.max_atoms == 40 and b.mask.sum() == sum(g.n_atoms for g in graphs())
    with pytest.raises(GradscopeError, match="smaller than the largest"):
        collate(graphs(), pad_to=2)
    with pytest.raises(GradscopeError, match="empty"):
        collate([])


def test_to_and_pin_memory_keep_values():
    b = collate(graphs())
    c = b.to("cpu", non_blocking=True)
    for name in ("atoms", "bonds", "distances", "mask", "y", "y_mask", "index"):
        assert torch.equal(getattr(b, name), getattr(c, name))
    assert c.device.type == "cpu"
    if torch.cuda.is_available():
        assert b.pin_memory().atoms.is_pinned()


def test_dataloader_uses_collate():
    from torch.utils.data import DataLoader
    from functools import partial

    dl = DataLoader(graphs(), batch_size=3, collate_fn=partial(collate, n_tasks=2))
    sizes = [len(b) for b in dl]
    assert sizes == [3, 1]
    np.testing.assert_array_equal(next(iter(dl)).index.numpy(), [10, 11, 12])


def test_dataset_pickles_for_worker_processes(tmp_path):
    import pickle

    from gradscope.chem import load_dataset

    p = tmp_path / "m.csv"
    p.write_text("smiles,y\nCCO,1\nc1ccccc1,2\nCCN,0.5\n")
    ds = load_dataset(p, progress=False)
    back = pickle.loads(pickle.dumps(ds))
    assert back.featurizer is ds.featurizer and back.smiles == ds.smiles
    assert torch.equal(collate([back[0], back[2]]).atoms, collate([ds[0], ds[2]]).atoms)


def _size_batches_reference(sizes: list[int], budget: int, max_batch: int) -> list[list[int]]:
    """Greedy packing written plainly: sort by size (ties by position), open a new batch when
    adding the next molecule would break B·L² ≤ budget or B ≤ max_batch."""
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * sizes[i] ** 2 <= budget and len(out[-1]) + 1 <= max_batch:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@pytest.mark.parametrize("budget,max_batch", [(1, 256), (50, 256), (400, 3), (10_000, 256), (10**9, 4)])
def test_size_batches_against_a_plain_greedy_packing(budget, max_batch):
    from gradscope.chem import size_batches

    sizes = np.random.default_rng(0).integers(1, 40, size=57).tolist() + [100, 3, 3]
    got = [g.tolist() for g in size_batches(sizes, pair_budget=budget, max_batch=max_batch)]
    assert got == _size_batches_reference(sizes, budget, max_batch)
    assert sorted(i for g in got for i in g) == list(range(len(sizes)))  # each molecule once
    for g in got:
        assert len(g) <= max_batch
        assert len(g) == 1 or len(g) * max(sizes[i] for i in g) ** 2 <= budget


def test_size_batches_rejects_bad_budgets_and_handles_empty():
    from gradscope.chem import size_batches

    assert size_batches([]) == []
    with pytest.raises(GradscopeError, match="positive"):
        size_batches([3, 4], pair_budget=0)


def test_dataset_size_batches_keep_every_molecule_and_its_labels(tmp_path):
    from gradscope.chem import load_dataset

    smiles = ["C" * n for n in (1, 9, 2, 8, 3, 7, 4, 6, 5, 12)]
    p = tmp_path / "m.csv"
    p.write_text("smiles,y\n" + "".join(f"{s},{0.5 * i + 0.1}\n" for i, s in enumerate(smiles)))
    ds = load_dataset(p, progress=False)
    idx = np.array([9, 0, 3, 5, 7, 1])
    batches = ds.size_batches(idx, pair_budget=2 * 9**2)
    got = np.concatenate([b.index.numpy() for b in batches])
    assert sorted(got.tolist()) == sorted(idx.tolist())
    assert [int(b.mask.sum(1).max()) for b in batches] == [b.max_atoms for b in batches]  # no extra padding
    for b in batches:  # labels travel with their molecules
        np.testing.assert_array_equal(b.y[:, 0].numpy(), ds.labels[b.index.numpy(), 0])
    sizes = [b.max_atoms for b in batches]
    assert sizes == sorted(sizes)
