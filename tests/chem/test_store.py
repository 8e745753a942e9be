"""The compact store and its batch building, each piece against a plain reference."""
from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.chem import collate, load_dataset
from gradscope.chem.collation import BATCH_FIELDS, BatchParts, hop_distances, register_batch_field
from gradscope.chem.columns import Scalar
from gradscope.chem.featurize import EMPTY, TOO_LARGE, UNPARSEABLE, featurize_column
from gradscope.chem.featurizers import COMPT, MINIMAL, Featurizer
from gradscope.chem.store import (PackedStrings, StoreBuilder, concat_stores, load_store, ranges, save_store,
                                   untouched_array)
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


def plain_concat(parts):
    """Reference: row arrays concatenated, offsets rebuilt from every molecule's counts in a loop."""
    out = {}
    for name in parts[0].arrays():
        if name.endswith("_ptr"):
            offsets, total = [0], 0
            for p in parts:
                ptr = p.arrays()[name].tolist()
                for i in range(len(ptr) - 1):
                    total += ptr[i + 1] - ptr[i]
                    offsets.append(total)
            out[name] = np.array(offsets, dtype=np.int64)
        else:
            out[name] = np.concatenate([p.arrays()[name] for p in parts])
    return out


@pytest.mark.parametrize("bound", ["exact", "too_small"])
def test_builder_appends_chunks_like_a_plain_concatenation(bound):
    parts = [featurize_column(SMILES[i:i + 3] * (i + 1), COMPT)[0] for i in range(0, len(SMILES), 3)]
    parts = [p for p in parts if len(p)]
    want = plain_concat(parts)
    sizes = [len(want["keys"]), len(want["atom.atomic_number"]), len(want["bonds"]), len(want["smiles_bytes"])]
    if bound == "too_small":  # every array has to grow, some several times
        sizes = [1, 1, 1, 1]
    builder = StoreBuilder(COMPT.encode([], []), *sizes)
    for p in parts:
        builder.append(p)
    got = builder.finish().arrays()
    assert sorted(got) == sorted(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype and np.array_equal(got[name], array), name
    assert builder.finish().all_smiles() == [s for p in parts for s in p.all_smiles()]


def test_an_empty_builder_gives_an_empty_store():
    store = StoreBuilder(MINIMAL.encode([], []), 5, 10, 10, 10).finish()
    assert len(store) == 0 and store.atom_ptr.tolist() == [0] and store.all_smiles() == []


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads VmRSS from /proc")
def test_untouched_capacity_is_not_resident():
    def rss_kib():
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1])

    before = rss_kib()
    big = untouched_array((64 * 2**20, 2), np.float32)  # 512 MiB of capacity
    big[:1000] = 7.0
    assert rss_kib() - before < 32 * 1024  # only the written pages (and this test's own objects)
    assert big[:1000].min() == 7.0 and not big[1000:2000].any() and big.shape == (64 * 2**20, 2)
    del big


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


def test_packed_strings_read_like_the_list():
    strings = ["CCO", "", "c1ccccc1", "[Na+].[Cl-]", "éthanol", "  x "]
    packed = PackedStrings(iter(strings))
    assert len(packed) == len(strings) and packed.nbytes == sum(len(s.encode()) for s in strings)
    assert [packed[i] for i in range(-len(strings), len(strings))] == strings + strings
    for sl in (slice(None), slice(1, 4), slice(4, 100), slice(None, None, 2), slice(3, 3)):
        assert packed[sl] == strings[sl]
    assert list(packed) == strings and packed.index("c1ccccc1") == 2
    with pytest.raises(IndexError):
        packed[len(strings)]
    assert len(PackedStrings([])) == 0 and PackedStrings([])[:] == []


@pytest.mark.parametrize("workers", [1, 2])
def test_a_packed_column_featurizes_like_the_list(workers):
    want, reasons = featurize_column(SMILES, COMPT, chunk=3)
    got, again = featurize_column(PackedStrings(SMILES), COMPT, chunk=3, workers=workers)
    assert again == reasons
    for name, array in want.arrays().items():
        assert np.array_equal(got.arrays()[name], array), name
