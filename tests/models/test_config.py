"""ModelConfig presets, validation and dict round trip."""
from __future__ import annotations

import json

import pytest

from gradscope.errors import ConfigError
from gradscope.models import PRESETS, ModelConfig, build_model


def test_presets():
    c = ModelConfig.preset("gt-large", atom_dim=115, bond_dim=13, n_tasks=12)
    assert (c.d_model, c.n_layers, c.n_heads, c.n_tasks) == (256, 4, 4, 12)
    assert ModelConfig.preset("tiny", atom_dim=5, bond_dim=3, dropout=0.2).dropout == 0.2
    assert set(PRESETS) == {"tiny", "small", "gt-large"}
    sizes = {name: sum(p.numel() for p in build_model(ModelConfig.preset(name, atom_dim=115, bond_dim=13)).parameters())
             for name in PRESETS}
    assert sizes["tiny"] < sizes["small"] < sizes["gt-large"]
    with pytest.raises(ConfigError, match="unknown model preset"):
        ModelConfig.preset("huge", atom_dim=1, bond_dim=1)
    with pytest.raises(ConfigError, match="gt-large"):  # the former name says where it went
        ModelConfig.preset("compt", atom_dim=1, bond_dim=1)


def test_validation():
    base = dict(atom_dim=10, bond_dim=4)
    for bad in (dict(d_model=30, n_heads=4), dict(n_layers=0), dict(dropout=1.0), dict(readout="max"),
                dict(n_tasks=True), dict(max_distance=0), dict(d_ff=2.5)):
        with pytest.raises(ConfigError):
            ModelConfig(**base, **bad)
    with pytest.raises(TypeError):
        ModelConfig(10, 4)  # keyword-only


def test_roundtrip():
    c = ModelConfig.preset("small", atom_dim=115, bond_dim=13, n_tasks=3, readout="attention")
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.to_dict()["architecture"] == "graph-transformer"
    legacy = {k: v for k, v in c.to_dict().items() if k != "architecture"}  # checkpoints before CoMPT joined
    assert ModelConfig.from_dict(legacy) == c
    with pytest.raises(ConfigError, match="not a ModelConfig"):
        ModelConfig.from_dict({**c.to_dict(), "architecture": "compt"})
    assert c.replace(n_tasks=1).n_tasks == 1
    with pytest.raises(ConfigError, match="unknown ModelConfig field"):
        ModelConfig.from_dict({**c.to_dict(), "depth": 3})
