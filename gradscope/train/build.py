"""Building a run's parts from its configuration, and rebuilding them from a checkpoint.

``build_data`` resolves the dataset and split; ``build_model_for`` sizes the graph transformer
to the featurizer; ``build_optimizer`` builds the optimizer and its ρ schedule as the method's
registry entry declares them. ``load_run`` rebuilds model, data and split from a checkpoint
alone (read by :meth:`Checkpoint.read`), which is what ``gradscope landscape`` and the attention
heat map need.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gradscope.chem import DatasetSpec, GraphBatch, MoleculeDataset, Standardizer, load_dataset, make_split
from gradscope.errors import GradscopeError
from gradscope.models.registry import build_model_for_name, config_from_dict, model_from_config_dict
from gradscope.optim.registry import RunInfo, get_method
from gradscope.train.checkpoint import Checkpoint, find_checkpoint
from gradscope.train.config import RecordConfig

Split = dict[str, np.ndarray]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; an unavailable CUDA device is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GradscopeError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
    return device


#: Models whose operations are too small to gain from intra-op threads on CPU (measured:
#: docs/record.md, "CPU threads"): by default they train on one thread.
SINGLE_THREAD_MODELS = ("tiny", "small", "compt-tiny")


def cpu_threads(config: RecordConfig, device: torch.device) -> int | None:
    """torch's intra-op thread count for a run on ``device`` (None: leave torch's default).

    ``config.threads`` when given; otherwise 1 for the ``tiny`` and ``small`` models on CPU, whose
    matrices (d_model 32/64, ~40 atoms) are too small for threads to pay: on a quiet 2-core
    machine two threads saved 5 % of wall time for 40 % more CPU time, and with other work on
    the machine they made steps 4-5× slower than one (docs/record.md). The ``compt`` model
    keeps torch's default. GPU runs are not affected.
    """
    if device.type != "cpu":
        return None
    if config.threads is not None:
        return config.threads
    return 1 if config.model in SINGLE_THREAD_MODELS else None


def dataset_spec(config: RecordConfig) -> DatasetSpec:
    """The dataset a configuration names (the built-in demo when it names none)."""
    kw: dict[str, Any] = dict(smiles_column=config.smiles_column, targets=config.targets, task=config.task,
                              max_atoms=config.max_atoms, duplicates=config.duplicates)
    if config.data is not None:
        return DatasetSpec(name=config.dataset, path=str(config.data), **kw)
    return DatasetSpec(name=config.dataset or "demo", **kw)


@dataclass
class Data:
    dataset: MoleculeDataset
    split: Split
    standardizer: Standardizer | None
    _eval: dict[str, list[GraphBatch]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def task(self) -> str:
        return self.dataset.task

    @property
    def metric(self) -> str:
        return self.dataset.metric

    def eval_batches(self, name: str) -> list[GraphBatch]:
        """Split ``name`` as size-packed batches (:meth:`MoleculeDataset.size_batches`): what
        training's evaluation uses. Little is spent on padding, and loss, metric and entropy over
        the split do not depend on the grouping (they are weighted by labels and atoms). Collated
        once per split and kept (on the CPU): every epoch evaluates the same molecules."""
        if name not in self._eval:
            self._eval[name] = self.dataset.size_batches(self.split[name], standardizer=self.standardizer)
        return self._eval[name]

    def batches(self, name: str, batch_size: int, limit: int | None = None):
        """Deterministic batches of split ``name`` in stored order."""
        idx = self.split[name]
        stops = range(0, len(idx), batch_size)
        if limit is not None:
            stops = stops[:limit]
        for start in stops:
            yield self.dataset.batch(idx[start:start + batch_size], standardizer=self.standardizer)


def build_data(config: RecordConfig, *, progress: bool = True, split: Split | None = None,
               spec: DatasetSpec | None = None, loaded: dict[str, MoleculeDataset] | None = None) -> Data:
    """Load the dataset, split it (or reuse ``split``), fit the regression standardizer on train.

    ``loaded`` (a dict the caller keeps) shares datasets between calls: several runs of one dataset
    (a landscape comparison) load and report it once.
    """
    spec = spec or dataset_spec(config)
    key = json.dumps(spec.to_dict(), sort_keys=True, default=str)
    dataset = loaded.get(key) if loaded is not None else None
    if dataset is None:
        try:
            dataset = load_dataset(spec, progress=progress, workers=config.workers)
        except (OSError, csv.Error) as exc:  # unreadable, binary or malformed file: the user's to fix
            raise GradscopeError(f"cannot read {spec.path or spec.name}: {_first_line(exc)}") from exc
        if loaded is not None:
            loaded[key] = dataset
    if split is None:
        split = make_split(dataset, config.split, seed=config.seed, fractions=config.split_sizes)
    for name in ("train", "val", "test"):
        if len(split.get(name, ())) == 0:
            raise GradscopeError(
                f"the {name} split of {dataset.name} is empty ({len(dataset)} molecules); use a larger dataset")
    standardizer = dataset.fit_standardizer(split["train"]) if dataset.task == "regression" else None
    return Data(dataset, split, standardizer)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_model_for(config: RecordConfig, dataset: MoleculeDataset) -> torch.nn.Module:
    """The model ``config.model`` names (gradscope.models registry), sized to ``dataset`` (features,
    tasks; for ``compt`` the released per-dataset size and the largest molecule); ``--pack-atoms``
    switches its packed per-atom layers on."""
    overrides = {"pack_atoms": True} if config.pack_atoms else {}  # else the model's own default
    return build_model_for_name(config.model, atom_dim=dataset.atom_dim, bond_dim=dataset.bond_dim,
                                n_tasks=dataset.n_tasks, dataset=dataset, **overrides)


def build_optimizer(config: RecordConfig, model: torch.nn.Module, steps_per_epoch: int):
    """The optimizer and its ρ schedule (None for methods without one), as the registry declares them."""
    base_kwargs: dict[str, Any] = {"lr": config.lr}
    if config.weight_decay:
        base_kwargs["weight_decay"] = config.weight_decay
    method = get_method(config.optimizer)
    # named for the sharpness-aware methods: ASAM's released rule finds the weights by name
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named] if method.plain else named
    optimizer = method.build(params, config.optimizer_settings, base=config.base_optimizer,
                             run=RunInfo(steps_per_epoch, config.epochs), **base_kwargs)
    return optimizer, method.build_rho_schedule(optimizer, config.rho_schedule)


def anchors_at(config: RecordConfig, epoch: int) -> bool:
    """Whether the start of ``epoch`` anchors the optimizer (the registry's epoch policy)."""
    return get_method(config.optimizer).anchors_at(config.optimizer_settings, epoch)


# -- rebuilding from a checkpoint ---------------------------------------------------------------
@dataclass
class LoadedRun:
    """What a checkpoint describes, rebuilt: model (eval mode, on CPU), data, configs."""

    model: torch.nn.Module
    data: Data
    config: RecordConfig
    model_config: Any  # the architecture's config (gradscope.models.registry.config_from_dict)
    checkpoint: Checkpoint
    path: Path


def split_from_checkpoint(ckpt: Checkpoint) -> Split:
    """The run's split (kept for callers of older versions; ``Checkpoint.split_indices`` is the same)."""
    return ckpt.split_indices()


def load_run(path: str | Path, *, which: str = "best", data_path: str | None = None,
             progress: bool = False, loaded: dict[str, MoleculeDataset] | None = None) -> LoadedRun:
    """Rebuild the model and exact data split of a run directory or checkpoint file.

    ``data_path`` replaces the stored dataset location (e.g. the run was made elsewhere);
    ``loaded`` shares datasets between several runs (see :func:`build_data`).
    """
    ckpt_path = find_checkpoint(path, which)
    ckpt = Checkpoint.read(ckpt_path)
    model_config = config_from_dict(ckpt.model_config)
    spec = DatasetSpec.from_dict(ckpt.dataset)
    if data_path is not None:
        spec = DatasetSpec.from_dict({**spec.to_dict(), "path": str(data_path)})
    elif spec.path is not None and not Path(spec.path).is_file():
        raise GradscopeError(
            f"the dataset of {ckpt_path} was {spec.path}, which is missing here; pass its location with --data FILE")
    data = build_data(ckpt.config, progress=progress, split=ckpt.split_indices(), spec=spec, loaded=loaded)
    if ckpt.dataset_sha256 is not None and data.dataset.source_sha256 != ckpt.dataset_sha256:
        raise GradscopeError(f"the dataset file differs from the one {ckpt_path} was trained on (content hash)")
    if data.standardizer is not None and ckpt.standardizer is not None:
        data.standardizer = Standardizer.from_dict(ckpt.standardizer)
    model = model_from_config_dict(ckpt.model_config)
    try:
        model.load_state_dict(ckpt.model_state)
    except RuntimeError as exc:
        raise GradscopeError(f"{ckpt_path}: weights do not fit the stored model config: {str(exc).splitlines()[0]}") from None
    model.eval()
    return LoadedRun(model, data, ckpt.config, model_config, ckpt, ckpt_path)
