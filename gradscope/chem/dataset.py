"""Loading molecule datasets: MoleculeNet by name, the built-in demo, or any CSV file.

:func:`load_dataset` resolves a :class:`DatasetSpec` to a table (local file, cache, download or
the demo), picks the SMILES and label columns, featurizes every molecule once (cached in memory
and on disk) and returns a :class:`MoleculeDataset`. Rows that cannot be used (unparseable or
empty SMILES, more heavy atoms than ``max_atoms``, no label at all) are skipped and reported:
``dataset.skipped`` lists ``(row, smiles, reason)`` and one warning line says how many.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from gradscope.chem import cache as _cache
from gradscope.chem import duplicates as _duplicates
from gradscope.chem.batch import DEFAULT_PAIR_BUDGET, GraphBatch, size_batches
from gradscope.chem.collation import assemble, hop_distances, parts_from_store
from gradscope.chem.featurize import (EMPTY, PROGRESS_MIN, TOO_LARGE, UNPARSEABLE, check_workers,  # noqa: F401
                                      featurize_column, featurize_smiles)
from gradscope.chem.featurizers import Featurizer, get_featurizer
from gradscope.chem.graph import MolGraph
from gradscope.chem.store import MoleculeStore, PackedStrings
from gradscope.chem.registry import CLASSIFICATION, DatasetInfo, dataset_info, is_registered
from gradscope.chem.spec import DEMO, DatasetSpec
from gradscope.chem.standardize import Standardizer
from gradscope.chem.tables import Table, find_smiles_column, infer_targets, infer_task, parse_labels, read_table
from gradscope.errors import GradscopeError

NO_LABELS = "no labels"


class DataWarning(UserWarning):
    """Rows were skipped or label values ignored while loading a dataset."""


class SkippedRow(NamedTuple):
    """A row that was not loaded: data row number (0 = first line after the header), SMILES, why."""

    row: int
    smiles: str
    reason: str


class MoleculeDataset(torch.utils.data.Dataset):
    """Featurized molecules with their labels; indexable like a torch ``Dataset``.

    The molecules are kept compactly (:class:`~gradscope.chem.store.MoleculeStore`: feature
    codes, bonds and SMILES in a few flat arrays, memory-mapped when they come from the disk
    cache); dense tensors are built per batch. ``dataset[i]`` is a :class:`MolGraph` carrying
    ``y`` (float32 ``[T]``, NaN = missing) and ``index=i``. Attributes: ``spec`` (fully resolved),
    ``smiles``, ``labels`` (float32 ``[N, T]`` with NaN), ``rows`` (source row of each
    molecule), ``skipped``, ``task``, ``metric``, ``target_names``, ``featurizer``, ``source``,
    ``source_sha256``, ``store``, and ``batch_fields``: extra batch fields every batch of this
    dataset carries in ``batch.extras`` (:func:`gradscope.chem.collation.register_batch_field`).
    """

    def __init__(
        self,
        *,
        spec: DatasetSpec,
        store: MoleculeStore,
        labels: np.ndarray,
        rows: np.ndarray,
        skipped: Sequence[SkippedRow],
        featurizer: Featurizer,
        source: str,
        source_sha256: str,
        positions: np.ndarray | None = None,
    ) -> None:
        assert spec.targets is not None and spec.task is not None and spec.metric is not None
        n = len(store) if positions is None else len(positions)
        if labels.shape != (n, len(spec.targets)):
            raise ValueError("labels must be [n_molecules, n_targets]")
        self.spec = spec
        self.store = store
        #: store position of each molecule (None: the store's molecules in order)
        self.positions = None if positions is None else np.asarray(positions, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.float32)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.skipped = list(skipped)
        #: molecules present in several rows (:class:`~gradscope.chem.duplicates.DuplicateGroup`, data-row numbers)
        self.duplicates: list[_duplicates.DuplicateGroup] = []
        self.featurizer = featurizer
        self.source = source
        self.source_sha256 = source_sha256
        self.batch_fields: tuple[str, ...] = ()
        self._n_atoms: np.ndarray | None = None

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
        return self.store.all_smiles(self.positions)

    @property
    def n_atoms(self) -> np.ndarray:
        """int64 ``[N]``: atoms of each molecule."""
        if self._n_atoms is None:
            counts = self.store.n_atoms
            self._n_atoms = counts if self.positions is None else counts[self.positions]
        return self._n_atoms

    @property
    def label_mask(self) -> np.ndarray:
        """bool ``[N, T]``: True where a label is present."""
        return ~np.isnan(self.labels)

    @property
    def nbytes(self) -> int:
        """Bytes this dataset keeps for its molecules (store, labels, rows, positions)."""
        extra = sum(a.nbytes for a in (self.labels, self.rows, self.positions, self._n_atoms) if a is not None)
        return self.store.nbytes + int(extra)

    def _store_positions(self, indices: np.ndarray) -> np.ndarray:
        n = len(self)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"molecule index out of range for a dataset of {n}")
        indices = np.where(indices < 0, indices + n, indices)
        return indices if self.positions is None else self.positions[indices]

    # -- torch Dataset --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> MolGraph:
        i = int(i)
        i = i + len(self) if i < 0 else i
        pos = self._store_positions(np.array([i]))
        parts = parts_from_store(self.store, self.featurizer, pos)
        return MolGraph(
            atoms=parts.atoms, edge_index=torch.stack([parts.edge_src, parts.edge_dst]), edge_attr=parts.edge_attr,
            distances=hop_distances(parts)[0], smiles=self.store.smiles(int(pos[0])), y=torch.from_numpy(self.labels[i]),
            index=i,
        )

    def batch(
        self,
        indices: "Sequence[int] | np.ndarray | None" = None,
        *,
        standardizer: Standardizer | None = None,
        pad_to: int | None = None,
    ) -> GraphBatch:
        """One :class:`GraphBatch` of the molecules at ``indices`` (default: all of them), built
        from the compact store in one vectorised pass (:mod:`gradscope.chem.collation`)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            raise GradscopeError("cannot collate an empty list of molecules")
        parts = parts_from_store(self.store, self.featurizer, self._store_positions(idx), pad_to)
        index = np.where(idx < 0, idx + len(self), idx)
        return assemble(parts, self.labels[index], index, standardizer=standardizer, fields=self.batch_fields)

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
        arguments (``pin_memory``, ``num_workers``, ...) go to ``DataLoader``. The loader samples
        dataset positions and builds each batch with :meth:`batch`.
        """
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return DataLoader(
            _Positions(idx),
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            drop_last=drop_last,
            collate_fn=partial(_batch_of, self, standardizer),
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


class _Positions(torch.utils.data.Dataset):
    """Dataset positions as a torch Dataset: what :meth:`MoleculeDataset.loader` samples."""

    def __init__(self, idx: np.ndarray) -> None:
        self.idx = idx

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> int:
        return int(self.idx[i])


def _batch_of(dataset: MoleculeDataset, standardizer: Standardizer | None, indices: list[int]) -> GraphBatch:
    return dataset.batch(indices, standardizer=standardizer)


# -------------------------------------------------------------------------------------------
# featurization with caching

def _featurize_cached(
    smiles: Sequence[str],
    sha256: str,
    smiles_column: str,
    feat: Featurizer,
    max_atoms: int | None,
    *,
    cache_root: Path,
    use_cache: bool,
    progress: bool,
    desc: str,
    workers: int,
) -> tuple[MoleculeStore, list[str]]:
    key = _cache.feature_key(sha256, smiles_column, feat.key, max_atoms)
    folder = cache_root / "features" / f"{_safe(desc)}-{key}"
    if use_cache:
        hit = _cache.memory_get(key) or _cache.load_features(folder, len(smiles), feat)
        if hit is not None:
            _cache.memory_put(key, *hit)
            return hit
    store, reasons = featurize_column(smiles, feat, max_atoms=max_atoms, workers=workers, progress=progress,
                                      desc=f"featurizing {desc}")
    if use_cache:
        _cache.memory_put(key, store, reasons)
        try:
            _cache.save_features(folder, store, reasons, feat)
        except OSError as exc:
            warnings.warn(f"could not write the feature cache {folder} ({exc}); continuing without it", DataWarning, 2)
    return store, reasons


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
    workers: int = 1,
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
        progress: show progress (download; featurization of ≥ 500 molecules): bars on a
            terminal, lines in logs elsewhere (:mod:`gradscope.progress`).
        use_cache: read and write the feature cache.
        workers: processes that featurize in parallel (a cache hit needs none).

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
                 progress=progress, use_cache=use_cache, workers=check_workers(workers))


def _looks_like_path(src: str) -> bool:
    return os.sep in src or "/" in src or src.lower().endswith((".csv", ".gz", ".tsv", ".txt"))


def _load(spec: DatasetSpec, *, data_dir, cache_dir, base_url, download, progress, use_cache,
          workers) -> MoleculeDataset:
    table, info = _read_source(spec, data_dir=data_dir, cache_dir=cache_dir, base_url=base_url, download=download,
                               progress=progress)
    resolved, labels, n_bad_values = _resolve_columns(spec, table, info)
    # from here on only the SMILES column is needed, packed (PackedStrings); the table (all rows
    # as Python strings) goes
    smiles = PackedStrings(s.strip() for s in table.column(resolved.smiles_column))
    source, sha256 = table.source, table.sha256
    del table
    feat = get_featurizer(resolved.featurizer)
    store, reasons = _featurize_cached(
        smiles, sha256, str(resolved.smiles_column), feat, resolved.max_atoms, cache_root=_cache.cache_dir(cache_dir),
        use_cache=use_cache, progress=progress, desc=resolved.display_name, workers=workers,
    )
    featurized = np.array([not r for r in reasons], dtype=bool)
    no_label = np.isnan(labels).all(axis=1)
    skipped = [SkippedRow(i, smiles[i], reason or NO_LABELS) for i, reason in enumerate(reasons) if reason or no_label[i]]
    keep = np.flatnonzero(featurized & ~no_label)
    store_pos = np.cumsum(featurized) - 1  # row → position in the store (rows that were featurized)
    groups, keep, skipped = _apply_duplicates(smiles, labels, keep, store.keys[store_pos[keep]], skipped,
                                              resolved.duplicates)
    if not len(keep):
        raise GradscopeError(f"no usable molecule in {source} ({len(smiles)} rows: {_reason_counts(skipped)})")
    positions = store_pos[keep]
    dataset = MoleculeDataset(
        spec=resolved, store=store, labels=labels[keep], rows=keep, skipped=skipped, featurizer=feat, source=source,
        source_sha256=sha256, positions=None if np.array_equal(positions, np.arange(len(store))) else positions,
    )
    dataset.duplicates = groups
    _warn_about_rows(dataset, len(smiles), n_bad_values)
    return dataset


def _read_source(spec: DatasetSpec, *, data_dir, cache_dir, base_url, download, progress
                 ) -> tuple[Table, DatasetInfo | None]:
    """The table a spec names (the demo, a local file, or a registered dataset found or downloaded)."""
    info: DatasetInfo | None = None
    if spec.name == DEMO:
        from gradscope.chem.demo import demo_table

        return demo_table(), None
    if spec.name is not None:
        info = dataset_info(spec.name)
    if spec.path is not None:
        return read_table(spec.path), info
    from gradscope.chem.download import locate

    assert info is not None
    return read_table(locate(info, data_dir=data_dir, cache=cache_dir, base_url=base_url, download=download,
                             progress=progress)), info


def _resolve_columns(spec: DatasetSpec, table: Table, info: DatasetInfo | None
                     ) -> tuple[DatasetSpec, np.ndarray, int]:
    """The spec with SMILES column, targets, task and metric filled in; labels; bad label values."""
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
    return replace(spec, smiles_column=smiles_col, targets=target_cols, task=task, metric=metric), labels, n_bad_values


def _warn_about_rows(dataset: MoleculeDataset, n_rows: int, n_bad_values: int) -> None:
    """One DataWarning line about skipped rows, non-numeric labels and duplicates kept."""
    skipped, groups = dataset.skipped, dataset.duplicates
    if not (skipped or n_bad_values or groups):
        return
    parts = []
    if skipped:
        first = ", ".join(str(s.row) for s in skipped[:8]) + (", ..." if len(skipped) > 8 else "")
        parts.append(f"skipped {len(skipped)} of {n_rows} rows ({_reason_counts(skipped)}; data rows {first}, "
                     "counted from 0 after the header)")
    if n_bad_values:
        parts.append(f"{n_bad_values} non-numeric label values treated as missing")
    if groups and dataset.spec.duplicates == "keep":
        parts.append(f"{_duplicates.describe(groups, len(dataset))}, kept: copies may fall into different splits "
                     "(duplicates='first' / --duplicates first keeps one copy)")
    warnings.warn(f"{dataset.name}: {'; '.join(parts)}", DataWarning, stacklevel=4)


def _apply_duplicates(smiles: Sequence[str], labels: np.ndarray, keep: np.ndarray, keys: np.ndarray,
                      skipped: list[SkippedRow], policy: str
                      ) -> tuple[list["_duplicates.DuplicateGroup"], np.ndarray, list[SkippedRow]]:
    """Find molecules present in several kept rows and apply ``policy`` (``keep`` or ``first``).

    ``keys`` (a hash of each kept molecule's canonical SMILES, computed when it was featurized)
    narrows the search to rows whose key repeats; :func:`~gradscope.chem.duplicates.find_duplicates`
    then groups those few by canonical SMILES exactly, as it would among all rows (equal canonical
    SMILES have equal keys). Returns the duplicate groups (in data-row numbers), the rows still kept
    and the skipped rows.
    """
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    candidates = keep[counts[inverse.reshape(-1)] > 1]
    found = _duplicates.find_duplicates([smiles[i] for i in candidates], labels[candidates])
    groups = [_duplicates.DuplicateGroup(tuple(int(candidates[p]) for p in g.rows), g.conflicting) for g in found]
    drop = _duplicates.rows_to_drop(groups, policy)
    if not drop:
        return groups, keep, skipped
    skipped = sorted(skipped + [SkippedRow(r, smiles[r], why) for r, why in drop.items()])
    return groups, keep[~np.isin(keep, list(drop))], skipped


def _reason_counts(skipped: Sequence[SkippedRow]) -> str:
    counts = Counter(s.reason.split(" (")[0] for s in skipped)
    return ", ".join(f"{n} {r}" for r, n in counts.most_common())
