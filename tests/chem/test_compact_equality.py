"""Batches from the compact store equal, tensor for tensor, those of the former dense path.

The reference below is the per-molecule featurization and the per-molecule collation loop that
gradscope used before datasets kept compact codes (dense one-hot rows, RDKit's distance matrix,
a dense edge list per molecule, copied into the padded batch one molecule at a time). Every
batch a model sees from a dataset must be identical to what that path built (torch.equal, inf
distances included), on every MoleculeNet excerpt, both featurizers, and the built-in demo.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from rdkit import Chem
from torch.utils.data import DataLoader, Subset
from rdkit.Chem import rdPartialCharges

from gradscope.chem import GraphBatch, MolGraph, collate, load_dataset
from gradscope.chem.columns import OneHot
from gradscope.chem.tables import read_table

FIELDS = ("atoms", "bonds", "distances", "mask", "y", "y_mask", "index")


# -- the former dense path, written out ---------------------------------------------------------
def reference_fill(out: np.ndarray, columns, objs) -> None:
    offset = 0
    for col in columns:
        if isinstance(col, OneHot):
            miss = len(col.choices) if col.unknown else -1
            for row, obj in enumerate(objs):
                slot = col._lookup.get(col.key(obj), miss)
                if slot >= 0:
                    out[row, offset + slot] = 1.0
        else:
            vals = np.array([col.value(o) for o in objs], dtype=np.float64)
            out[:, offset] = np.where(np.isfinite(vals), vals, 0.0) * col.scale
        offset += col.width


def reference_graph(feat, smiles: str) -> MolGraph:
    """One molecule as the former featurizer built it."""
    mol = Chem.MolFromSmiles(smiles)
    if feat.gasteiger:
        rdPartialCharges.ComputeGasteigerCharges(mol, throwOnParamFailure=False)
    atoms = list(mol.GetAtoms())
    x = np.zeros((len(atoms), feat.atom_dim), dtype=np.float32)
    reference_fill(x, feat.atom_columns, atoms)
    bonds = list(mol.GetBonds())
    e = np.zeros((len(bonds), feat.bond_dim), dtype=np.float32)
    if bonds:
        reference_fill(e, feat.bond_columns, bonds)
    begin = [b.GetBeginAtomIdx() for b in bonds]
    end = [b.GetEndAtomIdx() for b in bonds]
    edge_index = torch.tensor([begin + end, end + begin], dtype=torch.int64).reshape(2, -1)
    dist = Chem.GetDistanceMatrix(mol).astype(np.float32)
    dist[dist >= 1e7] = math.inf
    return MolGraph(torch.from_numpy(x), edge_index, torch.from_numpy(np.concatenate([e, e])),
                    torch.from_numpy(dist), smiles=smiles)


def reference_collate(graphs, standardizer=None, pad_to=None, n_tasks=1) -> GraphBatch:
    """The former collation: one molecule at a time into zero-filled padded tensors."""
    length = max([g.n_atoms for g in graphs] + [pad_to or 0])
    b = len(graphs)
    atoms = torch.zeros(b, length, graphs[0].atom_dim)
    bonds = torch.zeros(b, length, length, graphs[0].bond_dim)
    distances = torch.zeros(b, length, length)
    mask = torch.zeros(b, length, dtype=torch.bool)
    y = torch.full((b, n_tasks), float("nan"))
    for i, g in enumerate(graphs):
        n = g.n_atoms
        atoms[i, :n] = g.atoms
        bonds[i, g.edge_index[0], g.edge_index[1]] = g.edge_attr
        distances[i, :n, :n] = g.distances
        mask[i, :n] = True
        y[i] = g.y
    y_mask = ~torch.isnan(y)
    if standardizer is not None:
        y = standardizer.transform(y)
    y = torch.where(y_mask, y, torch.zeros(()))
    index = torch.tensor([g.index for g in graphs], dtype=torch.int64)
    return GraphBatch(atoms, bonds, distances, mask, y, y_mask, index)


def reference_molecules(ds):
    """Each molecule of ``ds`` featurized the former way, from its source row."""
    table = read_table(ds.source) if ds.spec.name != "demo" else None
    if table is None:
        smiles = ds.smiles
    else:
        col = table.index_of(ds.spec.smiles_column)
        smiles = [table.rows[r][col].strip() for r in ds.rows]
    return [reference_graph(ds.featurizer, s).with_labels(torch.from_numpy(ds.labels[i].copy()), index=i)
            for i, s in enumerate(smiles)]


def assert_same_batch(got: GraphBatch, want: GraphBatch) -> None:
    for name in FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert torch.equal(a, b), name


def index_sets(ds, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of ``ds`` to compare: everything (when its molecules are small), one molecule,
    random ones, and the three largest with a few others (large molecules make large padding)."""
    n = len(ds)
    largest = np.argsort(ds.n_atoms)[-3:]
    sets = [np.array([n - 1]), rng.permutation(n)[: min(n, 7)], np.concatenate([largest, rng.choice(n, 4)])]
    if ds.n_atoms.max() <= 100:
        sets += [np.arange(n)] + [rng.choice(n, size=min(n, 32), replace=False) for _ in range(3)]
    return sets


# -- the comparison -----------------------------------------------------------------------------
CASES = [(name, feat, max_atoms) for name in ("bbbp", "tox21", "sider", "clintox", "esol", "lipophilicity")
         for feat in ("compt", "minimal") for max_atoms in (100,)]
CASES += [("bbbp", "compt", None), ("sider", "compt", None)]


def _load(name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, progress=False, **kw)


@pytest.mark.parametrize("name,feat,max_atoms", CASES)
def test_batches_equal_the_dense_reference_on_moleculenet(moleculenet_dir, name, feat, max_atoms):
    ds = _load(name, data_dir=moleculenet_dir, featurizer=feat, max_atoms=max_atoms)
    ref = reference_molecules(ds)
    std = ds.fit_standardizer() if ds.task == "regression" else None
    for idx in index_sets(ds, np.random.default_rng(len(ds))):
        want = reference_collate([ref[i] for i in idx], standardizer=std, n_tasks=ds.n_tasks)
        assert_same_batch(ds.batch(idx, standardizer=std), want)
    idx = np.arange(min(len(ds), 5))
    assert_same_batch(ds.batch(idx, pad_to=120 if max_atoms else 600),
                      reference_collate([ref[i] for i in idx], pad_to=120 if max_atoms else 600, n_tasks=ds.n_tasks))


@pytest.mark.parametrize("name", ["bbbp", "esol"])
def test_molecules_loaders_and_size_batches_equal_the_reference(moleculenet_dir, name):
    ds = _load(name, data_dir=moleculenet_dir)
    ref = reference_molecules(ds)
    for i in range(len(ds)):  # dataset[i] → the same MolGraph as before
        g = ds[i]
        for field in ("atoms", "edge_index", "edge_attr", "distances", "y"):
            assert torch.equal(getattr(g, field), getattr(ref[i], field)), (i, field)
        assert g.index == i and g.smiles == ref[i].smiles
    # the loader: the former loader shuffled a Subset of the indices with a generator seeded by `seed`
    idx = np.arange(3, len(ds))
    former = DataLoader(Subset(ref, idx.tolist()), batch_size=8, shuffle=True,
                        generator=torch.Generator().manual_seed(5), collate_fn=reference_collate)
    got = list(ds.loader(idx, batch_size=8, shuffle=True, seed=5))
    assert len(got) == math.ceil(len(idx) / 8)
    for batch, want in zip(got, former, strict=True):
        assert_same_batch(batch, want)
    for batch in ds.size_batches(idx):
        assert_same_batch(batch, reference_collate([ref[i] for i in batch.index.tolist()]))


def test_demo_batches_equal_the_reference():
    ds = _load("demo")
    ref = reference_molecules(ds)
    std = ds.fit_standardizer()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(ds))
    for start in range(0, len(ds), 64):  # every molecule, in shuffled batches as training takes them
        idx = order[start:start + 64]
        assert_same_batch(ds.batch(idx, standardizer=std), reference_collate([ref[i] for i in idx], standardizer=std))


def test_collate_of_graphs_equals_the_reference():
    smiles = ["CCO", "c1ccccc1", "[Cl-].C[NH3+]", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "C"]
    from gradscope.chem.featurizers import COMPT

    graphs = [COMPT(s).with_labels(torch.tensor([float(i)]), index=i) for i, s in enumerate(smiles)]
    ref = [reference_graph(COMPT, s).with_labels(torch.tensor([float(i)]), index=i) for i, s in enumerate(smiles)]
    for g, r in zip(graphs, ref):
        for field in ("atoms", "edge_index", "edge_attr", "distances"):
            assert torch.equal(getattr(g, field), getattr(r, field)), field
    assert_same_batch(collate(graphs, pad_to=30), reference_collate(ref, pad_to=30))
