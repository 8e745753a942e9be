"""`DatasetSpec`: what data a run trains on, as a plain dict in checkpoints and config.json.

A spec names a registered dataset (``name``), a local file (``path``), or both (a local copy of a
registered dataset). Unset fields (``smiles_column``, ``targets``, ``task``, ``metric``) are
resolved when the data is loaded; the loaded dataset's ``spec`` has them all filled in, so
``load_dataset(DatasetSpec.from_dict(d))`` rebuilds exactly the molecules (and, with the saved
split indices, exactly the splits) a run saw.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from gradscope.chem.registry import TASKS, is_registered
from gradscope.errors import ConfigError

DEMO = "demo"
DEFAULT_MAX_ATOMS = 100
METRIC_NAMES = ("roc_auc", "rmse", "mae")


@dataclass(frozen=True)
class DatasetSpec:
    """Where the molecules come from and how they are read.

    Attributes:
        name: a registered dataset (``bbbp``, ``tox21``, ..., or ``demo``), or ``None``.
        path: a local CSV file (plain or .gz), or ``None`` to use the cache / download.
        smiles_column: the SMILES column (``None``: auto-detect).
        targets: label columns (``None``: the registry's, or inferred numeric columns).
        task: ``"classification"`` or ``"regression"`` (``None``: registry or inferred).
        metric: ``"roc_auc"``, ``"rmse"`` or ``"mae"`` (``None``: registry, or by task).
        featurizer: featurizer preset name (``"compt"``, ``"minimal"``).
        max_atoms: molecules with more heavy atoms are skipped (``None``: no limit).
        duplicates: what to do with a molecule present in several rows (same canonical SMILES):
            ``"keep"`` every copy (reported), or ``"first"`` copy only — copies with conflicting
            labels are all skipped (:mod:`gradscope.chem.duplicates`).
    """

    name: str | None = None
    path: str | None = None
    smiles_column: str | None = None
    targets: tuple[str, ...] | None = None
    task: str | None = None
    metric: str | None = None
    featurizer: str = "compt"
    max_atoms: int | None = DEFAULT_MAX_ATOMS
    duplicates: str = "keep"

    def __post_init__(self) -> None:
        if self.path is not None:
            if not isinstance(self.path, (str, os.PathLike)) or not str(self.path):
                raise ConfigError(f"DatasetSpec.path must be a file path, got {self.path!r}")
            object.__setattr__(self, "path", os.fspath(self.path))
        if self.name is not None:
            if not isinstance(self.name, str) or not self.name.strip():
                raise ConfigError(f"DatasetSpec.name must be a dataset name, got {self.name!r}")
            name = self.name.strip().lower()
            if name != DEMO and not is_registered(name):
                raise ConfigError(f"unknown dataset {self.name!r} (pass a CSV file as path= for other data)")
            object.__setattr__(self, "name", name)
            if name == DEMO and self.path is not None:
                raise ConfigError("the demo dataset is built in; it takes no path")
        if self.name is None and self.path is None:
            raise ConfigError("DatasetSpec needs a dataset name or a path to a CSV file")
        if self.targets is not None:
            targets = (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
            if not targets or not all(isinstance(t, str) and t for t in targets):
                raise ConfigError(f"DatasetSpec.targets must be non-empty column names, got {self.targets!r}")
            if len(set(targets)) != len(targets):
                raise ConfigError(f"DatasetSpec.targets repeats a column: {targets!r}")
            object.__setattr__(self, "targets", targets)
        if self.smiles_column is not None and (not isinstance(self.smiles_column, str) or not self.smiles_column):
            raise ConfigError(f"DatasetSpec.smiles_column must be a column name, got {self.smiles_column!r}")
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"DatasetSpec.task must be one of {TASKS}, got {self.task!r}")
        if self.metric is not None and self.metric not in METRIC_NAMES:
            raise ConfigError(f"DatasetSpec.metric must be one of {METRIC_NAMES}, got {self.metric!r}")
        if self.max_atoms is not None:
            if isinstance(self.max_atoms, bool) or not isinstance(self.max_atoms, int) or self.max_atoms < 1:
                raise ConfigError(f"DatasetSpec.max_atoms must be a positive integer or None, got {self.max_atoms!r}")
        from gradscope.chem.duplicates import POLICIES

        if self.duplicates not in POLICIES:
            raise ConfigError(f"DatasetSpec.duplicates must be one of {', '.join(POLICIES)}, got {self.duplicates!r}")
        from gradscope.chem.featurizers import get_featurizer  # validates the name

        object.__setattr__(self, "featurizer", get_featurizer(self.featurizer).name)

    @property
    def display_name(self) -> str:
        if self.name is not None:
            return self.name
        base = os.path.basename(str(self.path))
        for suffix in (".gz", ".csv", ".tsv", ".txt"):
            base = base.removesuffix(suffix)
        return base

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        d = asdict(self)
        if d["targets"] is not None:
            d["targets"] = list(d["targets"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DatasetSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown DatasetSpec field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(d)
        if kwargs.get("targets") is not None:
            kwargs["targets"] = tuple(kwargs["targets"])
        return cls(**kwargs)
