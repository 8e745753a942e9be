"""DatasetSpec validation and rebuild; Standardizer against numpy references."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gradscope.chem import DatasetSpec, Standardizer, load_dataset
from gradscope.errors import ConfigError


def test_spec_validation():
    for bad in (dict(), dict(name="nope"), dict(name="demo", path="x.csv"), dict(name="bbbp", task="ranking"),
                dict(name="bbbp", metric="f1"), dict(name="bbbp", max_atoms=0), dict(name="bbbp", targets=()),
                dict(name="bbbp", targets=("a", "a")), dict(name="bbbp", featurizer="morgan")):
        with pytest.raises(ConfigError):
            DatasetSpec(**bad)
    s = DatasetSpec(name="BBBP", targets="p_np")
    assert s.name == "bbbp" and s.targets == ("p_np",)
    with pytest.raises(AttributeError):
        s.name = "tox21"  # frozen


def test_spec_json_roundtrip_rebuilds_the_same_dataset(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("smiles,a,b\nCCO,1,0.5\nCCN,0,\nc1ccccc1,1,2.5\nCC(=O)O,0,1.0\n")
    ds = load_dataset(p, targets=["a"], progress=False)
    d = json.loads(json.dumps(ds.spec.to_dict()))
    assert d == {"name": None, "path": str(p), "smiles_column": "smiles", "targets": ["a"], "task": "classification",
                 "metric": "roc_auc", "featurizer": "compt", "max_atoms": 100, "duplicates": "keep"}
    again = load_dataset(DatasetSpec.from_dict(d), progress=False)
    assert again.spec == ds.spec and again.smiles == ds.smiles
    np.testing.assert_array_equal(again.labels, ds.labels)
    with pytest.raises(ConfigError, match="unknown DatasetSpec field"):
        DatasetSpec.from_dict({**d, "extra": 1})


def test_standardizer_against_numpy():
    rng = np.random.default_rng(0)
    y = rng.normal(3.0, 2.0, size=(50, 3))
    y[rng.random(y.shape) < 0.2] = np.nan
    st = Standardizer.fit(y)
    np.testing.assert_allclose(st.mean, np.nanmean(y, axis=0), rtol=1e-12)
    np.testing.assert_allclose(st.std, np.nanstd(y, axis=0), rtol=1e-12)
    z = st.transform(y)
    np.testing.assert_allclose(np.nanmean(z, axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(st.inverse(z), y, rtol=1e-12)
    t = torch.tensor(y, dtype=torch.float32)
    torch.testing.assert_close(st.inverse(st.transform(t)), t, equal_nan=True)
    assert Standardizer.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    assert Standardizer.fit(np.ones((4, 1))).std == (1.0,)  # constant task: std 1, not 0
    with pytest.raises(ConfigError):
        Standardizer.fit(np.full((3, 1), np.nan))
    with pytest.raises(ConfigError):
        Standardizer(mean=(0.0,), std=(0.0,))
