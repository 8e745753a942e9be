"""Finding runs on disk, telling who they are, and reading trace columns with clear errors.

Every analysis goes through this module to touch a trace, so that "the data is not there"
always becomes a one-line :class:`MissingDataError` (a :class:`~gradscope.errors.GradscopeError`)
naming the run and the dataset, and so that the HTML report can skip a section for a run that
lacks it. A *run* is what ``gradscope record --out DIR`` writes (``DIR/trace.h5`` and later
``DIR/landscape/*.h5``); a trace file or a landscape file given on its own is a run too.
Traces are opened with :func:`gradscope.open_trace` and landscape files with
:func:`gradscope.landscape.open_landscape` — the library's readers of the two formats.

Who a run is (optimizer, dataset, seed) is read from the trace's configuration
(:func:`run_identity`), never from folder names.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import h5py
import numpy as np

from analyses.names import display_name
from analyses.paper import canonical_optimizer
from gradscope.errors import GradscopeError
from gradscope.landscape.summary import ARRAYS_FILE
from gradscope.trace import Table, Trace, open_trace


class MissingDataError(GradscopeError):
    """A run lacks the data one analysis needs (no steps, a dataset that was not recorded)."""


@dataclass(frozen=True)
class Run:
    """One run: a label, its trace (or ``None``) and its landscape files."""

    label: str
    source: Path
    trace: Trace | None = None
    landscapes: tuple[Path, ...] = field(default_factory=tuple)

    def require_trace(self) -> Trace:
        if self.trace is None:
            raise MissingDataError(f"{self.label}: {self.source} holds no trace.h5")
        return self.trace


#: What the analyses accept as one run: a :class:`Run` or an opened :class:`~gradscope.trace.Trace`.
RunLike = Union[Run, Trace]


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is, from its trace's configuration.

    Attributes:
        optimizer: the name it was recorded under (``gradscope record --optimizer``, e.g.
            ``"sam-one"``), else the root attribute ``optimizer`` (the optimizer's class name,
            for traces of a user's own loop); ``None`` when neither is there.
        dataset: the configuration's ``dataset``, else the stem of its ``data`` file; or ``None``.
        seed: the configuration's ``seed``, or ``None``.
    """

    optimizer: str | None
    dataset: str | None
    seed: int | None


def run_identity(trace: Trace) -> RunIdentity:
    """The :class:`RunIdentity` stored in ``trace`` (root attributes and ``config``)."""
    config = trace.config if isinstance(trace.config, dict) else {}
    optimizer = config.get("optimizer")
    if not (isinstance(optimizer, str) and optimizer):
        optimizer = trace.optimizer or None
    dataset = config.get("dataset")
    if not (isinstance(dataset, str) and dataset):
        data = config.get("data")
        dataset = Path(data).stem if isinstance(data, str) and data else None
    seed = config.get("seed")
    return RunIdentity(optimizer, dataset, int(seed) if isinstance(seed, (int, np.integer)) else None)


def _open_file(path: Path) -> tuple[Trace | None, list[Path]]:
    """A trace file (opened) or a landscape file (listed); anything else is a GradscopeError."""
    from gradscope.landscape import open_landscape

    if not h5py.is_hdf5(path):
        raise GradscopeError(f"{path} is not a readable HDF5 file")
    try:
        return open_trace(path), []
    except GradscopeError:
        pass
    try:
        open_landscape(path, with_directions=False)
    except GradscopeError:
        raise GradscopeError(f"{path} is not a gradscope trace or landscape file") from None
    return None, [path]


def load_run(source: str | os.PathLike[str], label: str | None = None) -> Run:
    """A :class:`Run` from a run directory, a trace file or a landscape file."""
    path = Path(source)
    if not path.exists():
        raise GradscopeError(f"{path} does not exist")
    trace: Trace | None = None
    landscapes: list[Path] = []
    if path.is_dir():
        if (path / "trace.h5").is_file():
            trace = open_trace(path / "trace.h5")
        landscape_dir = path / "landscape"
        if landscape_dir.is_dir():
            landscapes = sorted(p for p in landscape_dir.rglob("*.h5") if p.is_file() and p.name != ARRAYS_FILE)
        if trace is None and not landscapes:
            raise GradscopeError(f"{path} holds neither trace.h5 nor landscape/*.h5 (not a gradscope run directory)")
    else:
        trace, landscapes = _open_file(path)
    return Run(label=label or default_label(trace, path), source=path, trace=trace, landscapes=tuple(landscapes))


def load_runs(sources: Sequence[str | os.PathLike[str]], labels: Sequence[str] | None = None) -> list[Run]:
    """Load several runs; labels default to the optimizer name, made unique with the file name."""
    if not sources:
        raise GradscopeError("no run given")
    if labels is not None and len(labels) != len(sources):
        raise GradscopeError(f"{len(labels)} labels given for {len(sources)} runs")
    runs = [load_run(s, None if labels is None else labels[i]) for i, s in enumerate(sources)]
    if labels is None:
        names = unique_labels([r.label for r in runs], [r.source for r in runs])
        runs = [Run(label=n, source=r.source, trace=r.trace, landscapes=r.landscapes) for n, r in zip(names, runs)]
    return runs


# --- labels -----------------------------------------------------------------------------------


def optimizer_name(trace: Trace | None) -> str | None:
    """The optimizer that produced a trace (see :attr:`RunIdentity.optimizer`)."""
    return None if trace is None else run_identity(trace).optimizer


def optimizer_label(trace: Trace | None) -> str | None:
    """The optimizer's display name (:func:`analyses.names.display_name`), or ``None``."""
    name = optimizer_name(trace)
    return None if name is None else display_name(name)


def default_label(trace: Trace | None, source: Path) -> str:
    """The optimizer's display name of a run, else the run directory or file name."""
    name = optimizer_label(trace)
    if name:
        return name
    return source.name if source.is_dir() else source.stem


def unique_labels(labels: Sequence[str], sources: Sequence[Path | None]) -> list[str]:
    """Append the run directory (or file) name to labels that repeat, then a counter if needed."""
    out = list(labels)
    for label in set(labels):
        where = [i for i, x in enumerate(labels) if x == label]
        if len(where) < 2:
            continue
        for i in where:
            src = sources[i]
            if src is None:
                continue
            tag = src.parent.name if src.name == "trace.h5" else (src.name if src.is_dir() else src.stem)
            out[i] = f"{label} ({tag})"
    for label in set(out):
        where = [i for i, x in enumerate(out) if x == label]
        if len(where) > 1:
            for k, i in enumerate(where):
                out[i] = f"{label} #{k + 1}"
    return out


def labelled(items: Sequence[RunLike], labels: Sequence[str] | None = None) -> list[tuple[str, Trace]]:
    """Pair traces (or :class:`Run` objects) with labels: given ones, else derived and made unique."""
    if not items:
        raise GradscopeError("no run given")
    if labels is not None and len(labels) != len(items):
        raise GradscopeError(f"{len(labels)} labels given for {len(items)} runs")
    traces: list[Trace] = []
    derived: list[str] = []
    sources: list[Path | None] = []
    for item in items:
        if isinstance(item, Run):
            traces.append(item.require_trace())
            derived.append(item.label)
            sources.append(item.source)
        else:
            traces.append(item)
            derived.append(optimizer_label(item) or item.path.stem)
            sources.append(item.path)
    names = list(labels) if labels is not None else unique_labels(derived, sources)
    return list(zip(names, traces))


def canonical(trace: Trace) -> str:
    """The canonical optimizer key of a trace (see :func:`analyses.paper.canonical_optimizer`)."""
    return canonical_optimizer(optimizer_name(trace))


# --- columns ----------------------------------------------------------------------------------

GROUPS = ("steps", "epochs")


def _columns(trace: Trace, group: str) -> Table:
    if group not in GROUPS:
        raise ValueError(f"group must be one of {', '.join(GROUPS)}, got {group!r}")
    return trace.steps if group == "steps" else trace.epochs


def has_column(trace: Trace, group: str, name: str) -> bool:
    """Whether ``group/name`` exists in the trace (it may still hold only NaN)."""
    return name in _columns(trace, group)


def column(trace: Trace, group: str, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """``group/name`` as a float64 numpy array; a MissingDataError names what is absent."""
    who = label or str(trace.path)
    if not has_column(trace, group, name):
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDataError(f"{who}: trace has no {group}/{name}{why}")
    return np.asarray(_columns(trace, group)[name], dtype=np.float64)


def _rows_column(trace: Trace, group: str, name: str, label: str, purpose: str) -> np.ndarray:
    """A column of ``group``; MissingDataError when the group holds no row at all."""
    values = column(trace, group, name, label, purpose=purpose)
    if values.shape[0] == 0:
        who = label or str(trace.path)
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDataError(f"{who}: trace has no recorded {group}{why}")
    return values


def step_column(trace: Trace, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """A ``steps`` column; raises a MissingDataError when the trace holds no step at all."""
    return _rows_column(trace, "steps", name, label, purpose)


def epoch_column(trace: Trace, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """An ``epochs`` column (first axis = epoch rows); MissingDataError when there is no row."""
    return _rows_column(trace, "epochs", name, label, purpose)


def steps_axis(trace: Trace, label: str = "") -> np.ndarray:
    """The step numbers ``steps/step`` (0, 1, … when the column is absent)."""
    if has_column(trace, "steps", "step"):
        return step_column(trace, "step", label)
    for name in ("omega_norm", "loss"):
        if has_column(trace, "steps", name):
            return np.arange(step_column(trace, name, label).shape[0], dtype=np.float64)
    raise MissingDataError(f"{label or 'trace'}: trace has no steps group")


def epochs_axis(trace: Trace, label: str = "") -> np.ndarray:
    """The epoch numbers ``epochs/epoch``."""
    if has_column(trace, "epochs", "epoch"):
        return epoch_column(trace, "epoch", label)
    raise MissingDataError(f"{label or 'trace'}: trace has no epochs/epoch")


def epoch_names(trace: Trace) -> list[str]:
    """Names of the datasets in the ``epochs`` group."""
    return sorted(str(k) for k in trace.epochs)
