"""The compact store and its batch building, each piece against a plain reference."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from gradscope.chem import collate, load_dataset
from gradscope.chem.collation import BATCH_FIELDS, BatchParts, hop_distances, register_batch_field
from gradscope.chem.columns import Scalar
from gradscope.chem.featurize import EMPTY, TOO_LARGE, UNPARSEABLE, featurize_column
from gradscope.chem.featurizers import COMPT, MINIMAL, Featurizer
from gradscope.chem.store import concat_stores, load_store, ranges, save_store
from gradscope.errors import GradscopeError

SMILES = ["CCO", "c1ccccc1", "[Cl-].C[NH3+]", "", "not_smiles", "CC(=O)Nc1ccc(O)cc1", "C", "[Na+].[Cl-]",
          "C1CC1C(=O)NC2=CC=CC=C2", "O=S(=O)(N)c1ccc(Cl)cc1"]


def test_ranges_against_a_loop():
    ptr = np.array([0, 3, 3, 7, 8, 12])
    for positions in ([0, 1, 2, 3, 4], [4, 0, 2], [1, 1], [3, 3, 0], []):
        rows, counts = ranges(ptr, np.array(positions, dtype=np.int64))
        want = [r for p in positions for r in range(ptr[p], ptr[p + 1])]
        assert rows.tolist() == want and counts.tolist() == [ptr[p + 1] - ptr[p] for p in positions]


def test_store_rows_and_reasons():
    store, reasons = featurize_column(SMILES, COMPT, max_atoms=10)
    assert reasons[3] == EMPTY and reasons[4] == UNPARSEABLE and reasons[8].startswith(TOO_LARGE)
    kept = [s for s, r in zip(SMILES, reasons) if not r]
    assert store.all_smiles() == kept and len(store) == len(kept)
    for i, s in enumerate(kept):
        g = COMPT(s)
        assert store.n_atoms[i] == g.n_atoms and store.n_bonds[i] == g.n_bonds
    assert all(not a.flags.writeable for a in store.arrays().values())  # shared safely by datasets and caches


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_chunks_and_workers_give_the_same_arrays(chunk):
    whole, reasons = featurize_column(SMILES * 3, COMPT, chunk=1000)
    store, again = featurize_column(SMILES * 3, COMPT, chunk=chunk, workers=1 if chunk == 1000 else 2)
    assert again == reasons
    for name, array in whole.arrays().items():
        got = store.arrays()[name]
        assert got.dtype == array.dtype and np.array_equal(got, array), name


def test_workers_must_be_positive():
    with pytest.raises(GradscopeError, match="workers"):
        featurize_column(SMILES, COMPT, workers=0)


def test_concat_and_files_round_trip(tmp_path):
    parts = [featurize_column(SMILES[i:i + 4], MINIMAL)[0] for i in range(0, len(SMILES), 4)]
    joined = concat_stores(list(parts))
    whole = featurize_column(SMILES, MINIMAL)[0]
    for name, array in whole.arrays().items():
        assert np.array_equal(joined.arrays()[name], array), name
    save_store(tmp_path / "s", joined, {"hello": 1})
    back, meta = load_store(tmp_path / "s")
    assert meta["hello"] == 1 and isinstance(back.atom_ptr, np.memmap)
    for name, array in whole.arrays().items():
        assert np.array_equal(back.arrays()[name], array), name


def test_int8_storage_refuses_what_it_cannot_hold():
    odd = Featurizer("odd", "1", (Scalar("mass", lambda a: a.GetMass(), store="int8"),), ())
    with pytest.raises(GradscopeError, match="int8"):
        odd("CCO")
    fine = Featurizer("odd", "1", (Scalar("mass", lambda a: a.GetMass()),), ())
    assert fine("CCO").atoms[:, 0].tolist() == pytest.approx([12.011, 12.011, 15.999], abs=1e-3)
    with pytest.raises(ValueError, match="unique"):
        Featurizer("dup", "1", (Scalar("a", lambda a: 1), Scalar("a", lambda a: 2)), ())


# -- distances ---------------------------------------------------------------------------------------
def bfs(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    out = np.full((n, n), np.inf, dtype=np.float32)
    adj = [[] for _ in range(n)]
    for u, v in edges:
        adj[u].append(v)
    for s in range(n):
        out[s, s] = 0
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for w in adj[u]:
                if out[s, w] == np.inf:
                    out[s, w] = out[s, u] + 1
                    queue.append(w)
    return out


def random_graph(rng, n):
    """A random undirected graph of ``n`` atoms (often in several fragments), both directions listed."""
    und = {(int(a), int(b)) for a, b in rng.integers(0, n, size=(rng.integers(0, 2 * n), 2)) if a < b}
    und = sorted(und)
    return und, [(u, v) for u, v in und] + [(v, u) for u, v in und]


def test_hop_distances_against_a_plain_bfs():
    rng = np.random.default_rng(0)
    for trial in range(20):
        sizes = rng.integers(1, 30, size=rng.integers(1, 7))
        graphs = [random_graph(rng, int(n)) for n in sizes]
        length = int(sizes.max()) + int(trial % 3)
        eb, es, ed = [], [], []
        for b, (_, directed) in enumerate(graphs):
            eb += [b] * len(directed)
            es += [u for u, _ in directed]
            ed += [v for _, v in directed]
        atom_batch = np.repeat(np.arange(len(sizes)), sizes)
        atom_pos = np.concatenate([np.arange(n) for n in sizes])
        t = lambda x: torch.tensor(x, dtype=torch.int64)  # noqa: E731
        parts = BatchParts(sizes=t(sizes), length=length, atom_batch=t(atom_batch), atom_pos=t(atom_pos),
                           atoms=torch.zeros(len(atom_pos), 1), edge_batch=t(eb), edge_src=t(es), edge_dst=t(ed),
                           edge_attr=torch.zeros(len(eb), 1))
        got = hop_distances(parts)
        assert got.shape == (len(sizes), length, length) and got.dtype == torch.float32
        for b, (n, (_, directed)) in enumerate(zip(sizes, graphs)):
            want = np.zeros((length, length), dtype=np.float32)
            want[:n, :n] = bfs(int(n), directed)
            np.testing.assert_array_equal(got[b].numpy(), want)


# -- extra batch fields ------------------------------------------------------------------------------
def test_a_registered_batch_field_arrives_in_extras(tmp_path):
    def adjacency(parts: BatchParts) -> torch.Tensor:
        out = torch.zeros(parts.batch_size, parts.length, parts.length, dtype=torch.bool)
        out[parts.edge_batch, parts.edge_src, parts.edge_dst] = True
        return out

    register_batch_field("adjacency", adjacency)
    try:
        p = tmp_path / "m.csv"
        p.write_text("smiles,y\nCCO,1\nc1ccccc1,2\n[Cl-].C[NH3+],0.5\n")
        ds = load_dataset(p, progress=False)
        assert ds.batch([0, 1]).extras == {}
        ds.batch_fields = ("adjacency",)
        batch = ds.batch([0, 1, 2])
        assert torch.equal(batch.extras["adjacency"], batch.distances == 1)
        assert batch.to("cpu").extras["adjacency"].dtype == torch.bool
        graphs = collate([ds[0], ds[1], ds[2]], fields=("adjacency",))
        assert torch.equal(graphs.extras["adjacency"], batch.extras["adjacency"])
        with pytest.raises(GradscopeError, match="unknown batch field"):
            collate([ds[0]], fields=("nope",))
    finally:
        BATCH_FIELDS.pop("adjacency", None)
