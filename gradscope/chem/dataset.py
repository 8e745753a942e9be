"""Loading molecule datasets: MoleculeNet by name, the built-in demo, or any CSV file.

:func:`load_dataset` resolves a :class:`DatasetSpec` to a table (local file, cache, download or
the demo), picks the SMILES and label columns, featurizes every molecule once (cached in memory
and on disk) and returns a :class:`MoleculeDataset`. Rows that cannot be used (unparseable or
empty SMILES, more heavy atoms than ``max_atoms``, no label at all) are skipped and reported:
``dataset.skipped`` lists ``(row, smiles, reason)`` and one warning line says how many.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from gradscope.chem import cache as _cache
from gradscope.chem._rdkit import parse_smiles
from gradscope.chem import duplicates as _duplicates
from gradscope.chem.batch import DEFAULT_PAIR_BUDGET, GraphBatch, collate, size_batches
from gradscope.chem.featurizers import Featurizer, get_featurizer
from gradscope.chem.graph import MolGraph
from gradscope.chem.registry import CLASSIFICATION, DatasetInfo, dataset_info, is_registered
from gradscope.chem.spec import DEMO, DatasetSpec
from gradscope.chem.standardize import Standardizer
from gradscope.chem.tables import Table, find_smiles_column, infer_targets, infer_task, parse_labels, read_table
from gradscope.errors import GradscopeError

UNPARSEABLE = "unparseable SMILES"
EMPTY = "empty SMILES"
NO_LABELS = "no labels"
TOO_LARGE = "too many atoms"
PROGRESS_MIN = 500  # show a progress bar from this many molecules on


class DataWarning(UserWarning):
    """Rows were skipped or label values ignored while loading a dataset."""


class SkippedRow(NamedTuple):
    """A row that was not loaded: data row number (0 = first line after the header), SMILES, why."""

    row: int
    smiles: str
    reason: str


class MoleculeDataset(torch.utils.data.Dataset):
    """Featurized molecules with their labels; indexable like a torch ``Dataset``.

    ``dataset[i]`` is a :class:`MolGraph` carrying ``y`` (float32 ``[T]``, NaN = missing) and
    ``index=i``. Attributes: ``spec`` (fully resolved), ``smiles``, ``labels`` (float32
    ``[N, T]`` with NaN), ``rows`` (source row of each molecule), ``skipped``, ``task``, ``metric``,
    ``target_names``, ``featurizer``, ``source`` and ``source_sha256``.
    """

    def __init__(
        self,
        *,
        spec: DatasetSpec,
        graphs: Sequence[MolGraph],
        labels: np.ndarray,
        rows: np.ndarray,
        skipped: Sequence[SkippedRow],
        featurizer: Featurizer,
        source: str,
        source_sha256: str,
    ) -> None:
        assert spec.targets is not None and spec.task is not None and spec.metric is not None
        if labels.shape != (len(graphs), len(spec.targets)):
            raise ValueError("labels must be [n_molecules, n_targets]")
        self.spec = spec
        self.graphs = list(graphs)
        self.labels = np.asarray(labels, dtype=np.float32)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.skipped = list(skipped)
        #: molecules present in several rows (:class:`~gradscope.chem.duplicates.DuplicateGroup`, data-row numbers)
        self.duplicates: list[_duplicates.DuplicateGroup] = []
        self.featurizer = featurizer
        self.source = source
        self.source_sha256 = source_sha256
        self._y = torch.from_numpy(self.labels)

    # -- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.display_name

    @property
    def task(self) -> str:
        return str(self.spec.task)

    @property
    def metric(self) -> str:
        return str(self.spec.metric)

    @property
    def target_names(self) -> tuple[str, ...]:
        return tuple(self.spec.targets or ())

    @property
    def n_tasks(self) -> int:
        return len(self.target_names)

    @property
    def atom_dim(self) -> int:
        return self.featurizer.atom_dim

    @property
    def bond_dim(self) -> int:
        return self.featurizer.bond_dim

    @property
    def smiles(self) -> list[str]:
        return [g.smiles for g in self.graphs]

    @property
    def n_atoms(self) -> np.ndarray:
        """int64 ``[N]``: atoms of each molecule."""
        return np.array([g.n_atoms for g in self.graphs], dtype=np.int64)

    @property
    def label_mask(self) -> np.ndarray:
        """bool ``[N, T]``: True where a label is present."""
        return ~np.isnan(self.labels)

    # -- torch Dataset --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int) -> MolGraph:
        i = int(i)
        return self.graphs[i].with_labels(self._y[i], index=i if i >= 0 else len(self) + i)

    def batch(
        self,
        indices: "Sequence[int] | np.ndarray | None" = None,
        *,
        standardizer: Standardizer | None = None,
        pad_to: int | None = None,
    ) -> GraphBatch:
        """One :class:`GraphBatch` of the molecules at ``indices`` (default: all of them)."""
        idx = range(len(self)) if indices is None else np.asarray(indices, dtype=np.int64).tolist()
        return collate([self[i] for i in idx], standardizer=standardizer, pad_to=pad_to, n_tasks=self.n_tasks)

    def size_batches(
        self,
        indices: "Sequence[int] | np.ndarray | None" = None,
        *,
        standardizer: Standardizer | None = None,
        pair_budget: int = DEFAULT_PAIR_BUDGET,
        max_batch: int = 256,
    ) -> list[GraphBatch]:
        """The molecules at ``indices`` (default: all) as size-packed batches for evaluation.

        See :func:`gradscope.chem.batch.size_batches`: similar-sized molecules share a batch, so
        little is spent on padding. Losses and metrics over the whole set do not depend on the
        grouping when batches are weighted by their label counts (``batch.y_mask.sum()``).
        """
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        groups = size_batches(self.n_atoms[idx], pair_budget=pair_budget, max_batch=max_batch)
        return [self.batch(idx[g], standardizer=standardizer) for g in groups]

    def loader(
        self,
        indices: "Sequence[int] | np.ndarray | None" = None,
        *,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        standardizer: Standardizer | None = None,
        drop_last: bool = False,
        **kwargs: Any,
    ) -> DataLoader:
        """A ``DataLoader`` of :class:`GraphBatch` es over ``indices`` (default: everything).

        ``shuffle`` uses a generator seeded with ``seed`` (same order every run); other keyword
        arguments (``pin_memory``, ``num_workers``, ...) go to ``DataLoader``.
        """
        data: torch.utils.data.Dataset = self
        if indices is not None:
            data = Subset(self, np.asarray(indices, dtype=np.int64).tolist())
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            collate_fn=partial(collate, standardizer=standardizer, n_tasks=self.n_tasks),
            **kwargs,
        )

    def fit_standardizer(self, indices: "Sequence[int] | np.ndarray | None" = None) -> Standardizer:
        """Per-task mean/std of the labels at ``indices`` (use the training split)."""
        y = self.labels if indices is None else self.labels[np.asarray(indices, dtype=np.int64)]
        return Standardizer.fit(y)

    def summary(self) -> str:
        """One line describing the dataset."""
        tasks = ", ".join(self.target_names[:3]) + (", ..." if self.n_tasks > 3 else "")
        return (
            f"{self.name}: {len(self)} molecules ({len(self.skipped)} rows skipped), {self.n_tasks} {self.task} "
            f"task(s) [{tasks}], metric {self.metric}, featurizer {self.featurizer.key} "
            f"({self.atom_dim} atom / {self.bond_dim} bond features)"
        )

    def __repr__(self) -> str:
        return f"MoleculeDataset({self.summary()})"


# -------------------------------------------------------------------------------------------
# featurization with caching

def featurize_smiles(
    smiles: Sequence[str],
    featurizer: "str | Featurizer" = "compt",
    *,
    max_atoms: int | None = None,
    progress: bool = False,
    desc: str = "featurizing",
) -> tuple[list[MolGraph | None], list[str]]:
    """Featurize SMILES strings (no caching): a graph or ``None`` per input, and skip reasons
    (``""`` for molecules that were featurized)."""
    feat = get_featurizer(featurizer)
    graphs: list[MolGraph | None] = []
    reasons: list[str] = []
    show = progress and len(smiles) >= PROGRESS_MIN
    from tqdm.auto import tqdm

    for s in tqdm(smiles, desc=desc, unit="mol", disable=not show, file=sys.stderr, leave=False, mininterval=0.5):
        s = s.strip()
        if not s:
            graphs.append(None)
            reasons.append(EMPTY)
            continue
        mol = parse_smiles(s)
        if mol is None:
            graphs.append(None)
            reasons.append(UNPARSEABLE)
            continue
        n = mol.GetNumAtoms()
        if n == 0:
            graphs.append(None)
            reasons.append(EMPTY)
        elif max_atoms is not None and n > max_atoms:
            graphs.append(None)
            reasons.append(f"{TOO_LARGE} ({n} > max_atoms={max_atoms})")
        else:
            graphs.append(feat.featurize(mol, smiles=s))
            reasons.append("")
    return graphs, reasons


def _featurize_cached(
    table: Table,
    smiles_column: str,
    feat: Featurizer,
    max_atoms: int | None,
    *,
    cache_root: Path,
    use_cache: bool,
    progress: bool,
    desc: str,
) -> tuple[list[MolGraph | None], list[str]]:
    smiles = [s.strip() for s in table.column(smiles_column)]
    key = _cache.feature_key(table.sha256, smiles_column, feat.key, max_atoms)
    if use_cache:
        hit = _cache.memory_get(key)
        if hit is not None:
            return hit
        path = cache_root / "features" / f"{_safe(desc)}-{key}.pt"
        hit = _cache.load_features(path, smiles)
        if hit is not None:
            _cache.memory_put(key, *hit)
            return hit
    graphs, reasons = featurize_smiles(smiles, feat, max_atoms=max_atoms, progress=progress, desc=f"featurizing {desc}")
    if use_cache:
        _cache.memory_put(key, graphs, reasons)
        try:
            _cache.save_features(path, graphs, reasons, smiles)
        except OSError as exc:
            warnings.warn(f"could not write the feature cache {path} ({exc}); continuing without it", DataWarning, 2)
    return graphs, reasons


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40] or "data"


# -------------------------------------------------------------------------------------------
# load_dataset

_UNSET: Any = object()


def load_dataset(
    source: "str | os.PathLike[str] | DatasetSpec" = DEMO,
    *,
    path: "str | os.PathLike[str] | None" = None,
    smiles_column: str | None = None,
    targets: "Sequence[str] | str | None" = None,
    task: str | None = None,
    metric: str | None = None,
    featurizer: str | None = None,
    max_atoms: int | None = _UNSET,
    duplicates: str | None = None,
    data_dir: "str | os.PathLike[str] | None" = None,
    cache_dir: "str | os.PathLike[str] | None" = None,
    base_url: str | None = None,
    download: bool = True,
    progress: bool = True,
    use_cache: bool = True,
) -> MoleculeDataset:
    """Load a dataset by name (``"bbbp"``, ``"tox21"``, ..., ``"demo"``), CSV path, or spec.

    Args:
        source: a registered name, ``"demo"``, a CSV file path, or a :class:`DatasetSpec`.
        path: a local copy of the named dataset (skips cache and download).
        smiles_column, targets, task, metric, featurizer, max_atoms, duplicates: see
            :class:`DatasetSpec`; ``max_atoms=None`` lifts the 100-atom limit.
        data_dir: a folder holding a copy of the named dataset (e.g. ``bbbp.csv``, ``BBBP.csv``).
        cache_dir: cache root (default ``$GRADSCOPE_CACHE`` or ``~/.cache/gradscope``).
        base_url: download location (default ``$GRADSCOPE_DATA_URL`` or DeepChem's bucket).
        download: allow downloading a named dataset that is not cached.
        progress: show progress bars (download, featurization of ≥ 500 molecules).
        use_cache: read and write the feature cache.

    Raises:
        GradscopeError: unknown name, missing file, unknown column, no usable molecule, offline.
    """
    fields = dict(path=path, smiles_column=smiles_column, targets=targets, task=task, metric=metric,
                  featurizer=featurizer, max_atoms=max_atoms, duplicates=duplicates)
    given = {k: v for k, v in fields.items() if v is not None and v is not _UNSET}
    if max_atoms is None:
        given["max_atoms"] = None
    if isinstance(source, DatasetSpec):
        spec = replace(source, **given) if given else source
    else:
        src = os.fspath(source)
        if src.strip().lower() == DEMO or is_registered(src):
            spec = DatasetSpec(name=src, **given)
        elif path is None and (Path(src).expanduser().exists() or _looks_like_path(src)):
            spec = DatasetSpec(path=src, **given)
        else:
            dataset_info(src)  # raises "unknown dataset ..."
            raise AssertionError  # pragma: no cover
    return _load(spec, data_dir=data_dir, cache_dir=cache_dir, base_url=base_url, download=download,
                 progress=progress, use_cache=use_cache)


def _looks_like_path(src: str) -> bool:
    return os.sep in src or "/" in src or src.lower().endswith((".csv", ".gz", ".tsv", ".txt"))


def _load(spec: DatasetSpec, *, data_dir, cache_dir, base_url, download, progress, use_cache) -> MoleculeDataset:
    info: DatasetInfo | None = None
    if spec.name == DEMO:
        from gradscope.chem.demo import demo_table

        table = demo_table()
    else:
        if spec.name is not None:
            info = dataset_info(spec.name)
        if spec.path is not None:
            table = read_table(spec.path)
        else:
            from gradscope.chem.download import locate

            assert info is not None
            table = read_table(locate(info, data_dir=data_dir, cache=cache_dir, base_url=base_url,
                                      download=download, progress=progress))

    smiles_col = find_smiles_column(table, spec.smiles_column or (info.smiles_column if info else None))
    target_cols = infer_targets(table, smiles_col, spec.targets or (info.targets if info else None))
    labels, n_bad_values = parse_labels(table, target_cols)
    task = spec.task or (info.task if info else None) or infer_task(labels)
    if task == CLASSIFICATION:
        present = labels[~np.isnan(labels)]
        odd = present[~np.isin(present, (0.0, 1.0))]
        if odd.size:
            raise GradscopeError(
                f"{spec.display_name}: classification labels must be 0 or 1 (found {odd[0]:g}); "
                "use task='regression' for continuous targets"
            )
    metric = spec.metric or (info.metric if info else None) or ("roc_auc" if task == CLASSIFICATION else "rmse")
    resolved = replace(spec, smiles_column=smiles_col, targets=target_cols, task=task, metric=metric)

    feat = get_featurizer(resolved.featurizer)
    graphs, reasons = _featurize_cached(
        table, smiles_col, feat, resolved.max_atoms, cache_root=_cache.cache_dir(cache_dir),
        use_cache=use_cache, progress=progress, desc=resolved.display_name,
    )
    no_label = np.isnan(labels).all(axis=1)
    keep: list[int] = []
    skipped: list[SkippedRow] = []
    for i, (g, reason) in enumerate(zip(graphs, reasons)):
        if not reason and no_label[i]:
            reason = NO_LABELS
        if reason:
            skipped.append(SkippedRow(i, table.rows[i][table.index_of(smiles_col)].strip(), reason))
        else:
            keep.append(i)
    groups, keep, skipped = _apply_duplicates(table, smiles_col, labels, keep, skipped, resolved.duplicates)
    if not keep:
        raise GradscopeError(
            f"no usable molecule in {table.source} ({len(table.rows)} rows: {_reason_counts(skipped)})"
        )
    rows = np.asarray(keep, dtype=np.int64)
    dataset = MoleculeDataset(
        spec=resolved,
        graphs=[graphs[i] for i in keep],  # type: ignore[misc]
        labels=labels[rows],
        rows=rows,
        skipped=skipped,
        featurizer=feat,
        source=table.source,
        source_sha256=table.sha256,
    )
    dataset.duplicates = groups
    if skipped or n_bad_values or groups:
        parts = []
        if skipped:
            first = ", ".join(str(s.row) for s in skipped[:8]) + (", ..." if len(skipped) > 8 else "")
            parts.append(f"skipped {len(skipped)} of {len(table.rows)} rows ({_reason_counts(skipped)}; data rows "
                         f"{first}, counted from 0 after the header)")
        if n_bad_values:
            parts.append(f"{n_bad_values} non-numeric label values treated as missing")
        if groups and resolved.duplicates == "keep":
            parts.append(f"{_duplicates.describe(groups, len(keep))}, kept: copies may fall into different splits "
                         "(duplicates='first' / --duplicates first keeps one copy)")
        warnings.warn(f"{resolved.display_name}: {'; '.join(parts)}", DataWarning, stacklevel=3)
    return dataset


def _apply_duplicates(table: Table, smiles_col: str, labels: np.ndarray, keep: list[int],
                      skipped: list[SkippedRow], policy: str
                      ) -> tuple[list["_duplicates.DuplicateGroup"], list[int], list[SkippedRow]]:
    """Find molecules present in several kept rows and apply ``policy`` (``keep`` or ``first``).

    Returns the duplicate groups (in data-row numbers), the rows still kept and the skipped rows.
    """
    col = table.index_of(smiles_col)
    found = _duplicates.find_duplicates([table.rows[i][col] for i in keep], labels[keep])
    groups = [_duplicates.DuplicateGroup(tuple(keep[p] for p in g.rows), g.conflicting) for g in found]
    drop = _duplicates.rows_to_drop(groups, policy)
    if not drop:
        return groups, keep, skipped
    skipped = sorted(skipped + [SkippedRow(r, table.rows[r][col].strip(), why) for r, why in drop.items()])
    return groups, [i for i in keep if i not in drop], skipped


def _reason_counts(skipped: Sequence[SkippedRow]) -> str:
    counts = Counter(s.reason.split(" (")[0] for s in skipped)
    return ", ".join(f"{n} {r}" for r, n in counts.most_common())
