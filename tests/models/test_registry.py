"""The model registry: names, dataset sizing, legacy and current config dicts."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gradscope.errors import ConfigError
from gradscope.models import (ARCHITECTURES, CoMPT, CoMPTConfig, GraphTransformer, ModelConfig, build_model_for_name,
                              config_from_dict, model_config_for_name, model_from_config_dict, model_names, recipe)

SIZES = dict(atom_dim=115, bond_dim=13, n_tasks=2)


def test_names_and_architectures():
    assert model_names() == ("tiny", "small", "gt-large", "compt", "compt-tiny")
    assert isinstance(build_model_for_name("small", **SIZES), GraphTransformer)
    assert isinstance(build_model_for_name("compt-tiny", **SIZES), CoMPT)
    assert build_model_for_name("small", **SIZES).config == ModelConfig.preset("small", **SIZES)
    with pytest.raises(ConfigError, match="unknown model 'huge'"):
        build_model_for_name("huge", **SIZES)
    for arch in ARCHITECTURES.values():  # every config names its own architecture
        for name in arch.presets:
            assert model_config_for_name(name, **SIZES).to_dict()["architecture"] == arch.name


def test_compt_takes_the_released_size_of_the_dataset():
    default = model_config_for_name("compt", **SIZES)
    assert (default.d_model, default.n_layers, default.n_heads, default.n_generator_layers) == (256, 4, 4, 2)
    tox21 = model_config_for_name("compt", **SIZES, dataset="tox21")
    assert (tox21.n_layers, tox21.n_generator_layers, tox21.distance_kernel) == (8, 4, "exp")
    assert model_config_for_name("compt", **SIZES, dataset="ESOL").scale_norm is True
    assert model_config_for_name("compt", **SIZES, dataset="my-own.csv") == default  # not in the table
    ds = SimpleNamespace(name="lipophilicity", n_atoms=np.array([10, 57, 3]))
    lipo = model_config_for_name("compt", **SIZES, dataset=ds)
    assert (lipo.n_heads, lipo.n_layers, lipo.max_atoms) == (8, 3, 57)
    tiny = model_config_for_name("compt-tiny", **SIZES, dataset=ds)
    assert (tiny.d_model, tiny.max_atoms) == (32, 57)  # tiny stays tiny, the table fits the data
    assert model_config_for_name("compt", **SIZES, dataset="bbbp", n_layers=2).n_layers == 2  # overrides win
    assert recipe("compt-paper", "tox21").model_overrides().items() <= tox21.to_dict().items()


def test_config_dicts_rebuild_their_models():
    for name in model_names():
        model = build_model_for_name(name, **SIZES)
        again = model_from_config_dict(model.config.to_dict())
        assert type(again) is type(model) and again.config == model.config
    legacy = {k: v for k, v in ModelConfig.preset("gt-large", **SIZES).to_dict().items() if k != "architecture"}
    assert config_from_dict(legacy) == ModelConfig.preset("gt-large", **SIZES)  # checkpoints before CoMPT joined
    assert isinstance(model_from_config_dict(legacy), GraphTransformer)
    assert isinstance(config_from_dict(CoMPTConfig(atom_dim=3, bond_dim=2).to_dict()), CoMPTConfig)
    with pytest.raises(ConfigError, match="unknown model architecture"):
        config_from_dict({**legacy, "architecture": "gnn"})
