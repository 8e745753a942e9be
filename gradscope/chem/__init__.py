"""Molecules for gradscope: SMILES → featurized graphs → padded batches; datasets and splits.

The only package of gradscope that imports RDKit. Names are loaded lazily (PEP 562), so
``from gradscope.chem import GraphBatch, collate, Standardizer`` does not import RDKit; the
featurizers, datasets and scaffold splits do.

Typical use::

    from gradscope.chem import load_dataset, make_split
    ds = load_dataset("bbbp")                      # or "demo", or a CSV path
    split = make_split(ds, "scaffold")             # {"train"|"val"|"test": int64 indices}
    for batch in ds.loader(split["train"], batch_size=64, shuffle=True, seed=0):
        batch = batch.to(device, non_blocking=True)  # GraphBatch
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    # importing these does not load RDKit (constructing a DatasetSpec checks the featurizer name, which does)
    "GraphBatch": "batch",
    "collate": "batch",
    "size_batches": "batch",
    "MolGraph": "graph",
    "Standardizer": "standardize",
    "DatasetSpec": "spec",
    "DatasetInfo": "registry",
    "DATASETS": "registry",
    "PAPER_DATASETS": "registry",
    "dataset_info": "registry",
    "cache_dir": "cache",
    "clear_memory_cache": "cache",
    "SplitSpec": "splits",
    "make_split": "splits",
    "random_split": "splits",
    "scaffold_split": "splits",
    "kfold_split": "splits",
    "split_from_lists": "splits",
    "murcko_scaffold": "splits",
    # these load RDKit
    "Featurizer": "featurizers",
    "FEATURIZERS": "featurizers",
    "get_featurizer": "featurizers",
    "MoleculeDataset": "dataset",
    "SkippedRow": "dataset",
    "DataWarning": "dataset",
    "load_dataset": "dataset",
    "featurize_smiles": "dataset",
    "demo_table": "demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gradscope.chem' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gradscope.chem.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.batch import GraphBatch, collate
    from gradscope.chem.cache import cache_dir, clear_memory_cache
    from gradscope.chem.dataset import DataWarning, MoleculeDataset, SkippedRow, featurize_smiles, load_dataset
    from gradscope.chem.demo import demo_table
    from gradscope.chem.featurizers import FEATURIZERS, Featurizer, get_featurizer
    from gradscope.chem.graph import MolGraph
    from gradscope.chem.registry import DATASETS, PAPER_DATASETS, DatasetInfo, dataset_info
    from gradscope.chem.spec import DatasetSpec
    from gradscope.chem.splits import (SplitSpec, kfold_split, make_split, murcko_scaffold, random_split,
                                       scaffold_split, split_from_lists)
    from gradscope.chem.standardize import Standardizer
