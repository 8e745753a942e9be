"""Every model gradscope builds, by name, and how a stored config dict becomes a model again.

``gradscope record --model NAME`` names one of :func:`model_names`:

==============  =====================  ===========================================================
name            architecture           model
==============  =====================  ===========================================================
``tiny``        ``graph-transformer``  gradscope's own transformer, unit-test size
``small``       ``graph-transformer``  the same, CPU default
``gt-large``    ``graph-transformer``  the same at CoMPT's width and depth (formerly ``compt``)
``compt``       ``compt``              the faithful CoMPT at its released size for the dataset
``compt-tiny``  ``compt``              the faithful CoMPT, unit-test size
==============  =====================  ===========================================================

Each architecture (:data:`ARCHITECTURES`) declares its config class, builder and presets once.
A model's ``config.to_dict()`` carries ``"architecture"``; dicts without it (checkpoints written
before CoMPT joined) are ``graph-transformer`` configs.

::

    model = build_model_for_name("compt", atom_dim=ds.atom_dim, bond_dim=ds.bond_dim,
                                 n_tasks=ds.n_tasks, dataset=ds)
    again = model_from_config_dict(model.config.to_dict())
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import nn

from gradscope.errors import ConfigError
from gradscope.models.compt.config import PRESETS as COMPT_PRESETS
from gradscope.models.compt.config import CoMPTConfig
from gradscope.models.compt.model import build_compt
from gradscope.models.config import PRESETS as GT_PRESETS
from gradscope.models.config import RENAMED, ModelConfig
from gradscope.models.recipes import RECIPES
from gradscope.models.transformer import build_model


@dataclass(frozen=True)
class Architecture:
    """One model family: its config class, builder, named presets and dataset-dependent sizing.

    ``for_dataset(preset, dataset)`` returns config overrides that depend on the dataset (or {}).
    """

    name: str
    config_class: type
    build: Callable[[Any], nn.Module]
    presets: Mapping[str, Mapping[str, Any]]
    summary: str
    for_dataset: Callable[[str, Any], dict[str, Any]] = lambda preset, dataset: {}


def _dataset_name(dataset: Any) -> str | None:
    name = getattr(dataset, "name", dataset)
    return None if name is None else str(name).lower()


def _compt_for_dataset(preset: str, dataset: Any) -> dict[str, Any]:
    """``compt`` takes the released size of a dataset the ``compt-paper`` recipe covers; every
    preset sizes its position table to the dataset's largest molecule (as released)."""
    out: dict[str, Any] = {}
    name = _dataset_name(dataset)
    if preset == "compt" and name in RECIPES["compt-paper"]:
        out.update(RECIPES["compt-paper"][name].model_overrides())
    n_atoms = getattr(dataset, "n_atoms", None)
    if n_atoms is not None and len(n_atoms):
        out["max_atoms"] = int(max(n_atoms))
    return out


ARCHITECTURES: dict[str, Architecture] = {
    "graph-transformer": Architecture(
        "graph-transformer", ModelConfig, build_model, GT_PRESETS,
        "gradscope's own pre-norm graph transformer with bond and distance attention biases"),
    "compt": Architecture(
        "compt", CoMPTConfig, build_compt, COMPT_PRESETS,
        "CoMPT (Chen et al. 2021) as released: communicative attention, distance attenuation, GRU readout",
        _compt_for_dataset),
}

#: the architecture of stored config dicts without an ``"architecture"`` entry
LEGACY_ARCHITECTURE = "graph-transformer"


def model_names() -> tuple[str, ...]:
    """Every ``--model`` name, architecture by architecture."""
    return tuple(p for arch in ARCHITECTURES.values() for p in arch.presets)


def architecture_of(name: str) -> Architecture:
    """The architecture whose presets include ``name``; ConfigError for an unknown name."""
    for arch in ARCHITECTURES.values():
        if name in arch.presets:
            return arch
    hint = RENAMED.get(name, "")
    raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(model_names())}{hint}")


def model_config_for_name(name: str, *, atom_dim: int, bond_dim: int, n_tasks: int = 1, dataset: Any = None,
                          **overrides: Any) -> Any:
    """The config of model ``name`` for data of these sizes.

    ``dataset`` (a dataset name or a :class:`~gradscope.chem.MoleculeDataset`) may refine it: for
    ``compt``, the released per-dataset size and the largest molecule (see :mod:`gradscope.models.recipes`).
    Explicit ``overrides`` win.
    """
    arch = architecture_of(name)
    fields = {**arch.presets[name], **arch.for_dataset(name, dataset), **overrides}
    return arch.config_class(atom_dim=atom_dim, bond_dim=bond_dim, n_tasks=n_tasks, **fields)


def build_model_for_name(name: str, *, atom_dim: int, bond_dim: int, n_tasks: int = 1, dataset: Any = None,
                         **overrides: Any) -> nn.Module:
    """The model ``name`` (see :func:`model_config_for_name`), freshly initialised; ``.config`` is its config."""
    config = model_config_for_name(name, atom_dim=atom_dim, bond_dim=bond_dim, n_tasks=n_tasks, dataset=dataset,
                                   **overrides)
    return ARCHITECTURES[config.architecture].build(config)


def config_from_dict(d: Mapping[str, Any]) -> Any:
    """A model config from ``config.to_dict()``; without ``"architecture"``, a graph-transformer config."""
    kind = d.get("architecture", LEGACY_ARCHITECTURE)
    try:
        arch = ARCHITECTURES[kind]
    except KeyError:
        raise ConfigError(f"unknown model architecture {kind!r}; known: {', '.join(ARCHITECTURES)}") from None
    return arch.config_class.from_dict(d)


def model_from_config_dict(d: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised model of the config stored as ``d`` (load its weights next)."""
    config = config_from_dict(d)
    return ARCHITECTURES[config.architecture].build(config)
