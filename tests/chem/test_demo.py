"""The built-in demo dataset: offline, deterministic, labels are RDKit's Crippen logP."""
from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import Crippen

from gradscope.chem import load_dataset


def test_demo_loads_offline_with_crippen_labels(monkeypatch):
    monkeypatch.setenv("GRADSCOPE_DATA_URL", "http://127.0.0.1:9/unreachable")
    ds = load_dataset("demo", progress=False)
    assert len(ds) == 600 and ds.skipped == []
    assert ds.task == "regression" and ds.metric == "rmse" and ds.target_names == ("logp",)
    assert ds.spec.name == "demo" and ds.spec.path is None
    expected = [Crippen.MolLogP(Chem.MolFromSmiles(s)) for s in ds.smiles[:50]]
    np.testing.assert_allclose(ds.labels[:50, 0], expected, atol=6e-5)  # stored with 4 decimals
    sizes = ds.n_atoms.tolist()
    assert min(sizes) >= 10 and max(sizes) <= 40
    assert all("." not in s for s in ds.smiles)
    assert load_dataset("DEMO", progress=False).source_sha256 == ds.source_sha256
