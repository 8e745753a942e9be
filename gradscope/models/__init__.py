"""The models: gradscope's graph transformer and the faithful CoMPT; registry, recipes, attention.

::

    from gradscope.models import build_model_for_name, model_from_config_dict
    model = build_model_for_name("compt", atom_dim=ds.atom_dim, bond_dim=ds.bond_dim, n_tasks=ds.n_tasks,
                                 dataset=ds)   # "tiny" | "small" | "gt-large" | "compt" | "compt-tiny"
    logits = model(batch)                      # batch: gradscope.chem.GraphBatch → [B, n_tasks]
    same = model_from_config_dict(model.config.to_dict())

The graph transformer alone: ``build_model(ModelConfig.preset("small", atom_dim=..., bond_dim=...))``.
CoMPT alone: ``build_compt(CoMPTConfig(atom_dim=..., bond_dim=...))``. Training settings of the
released CoMPT: ``recipe("compt-paper", "bbbp")``.
"""
from __future__ import annotations

from gradscope.models.attention import AttentionCapture, attention_entropy, capture_attention, row_entropy
from gradscope.models.compt import CoMPT, CoMPTConfig, build_compt
from gradscope.models.config import PRESETS, READOUTS, ModelConfig
from gradscope.models.recipes import RECIPES, Recipe, recipe, recipe_names
from gradscope.models.registry import (ARCHITECTURES, Architecture, architecture_of, build_model_for_name,
                                       config_from_dict, model_config_for_name, model_from_config_dict, model_names)
from gradscope.models.transformer import GraphTransformer, build_model

__all__ = [
    "ModelConfig",
    "PRESETS",
    "READOUTS",
    "GraphTransformer",
    "build_model",
    "CoMPTConfig",
    "CoMPT",
    "build_compt",
    "ARCHITECTURES",
    "Architecture",
    "architecture_of",
    "model_names",
    "model_config_for_name",
    "build_model_for_name",
    "config_from_dict",
    "model_from_config_dict",
    "Recipe",
    "RECIPES",
    "recipe",
    "recipe_names",
    "capture_attention",
    "AttentionCapture",
    "attention_entropy",
    "row_entropy",
]
