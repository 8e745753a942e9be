"""Finding runs on disk, labelling them, and reading trace columns with clear errors.

Every analysis goes through this module to touch a trace, so that "the data is not there"
always becomes a one-line :class:`MissingDataError` (a :class:`~gradscope.errors.GradscopeError`)
naming the run and the dataset, and so that the HTML report can skip a section for a run that
lacks it. A *run* is what ``gradscope record --out DIR`` writes (``DIR/trace.h5`` and later
``DIR/landscape/*.h5``); a trace file or a landscape file given on its own is a run too.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from analyses.paper import canonical_optimizer
from gradscope.errors import GradscopeError

TRACE_FORMAT = "gradscope.trace"
LANDSCAPE_FORMAT = "gradscope.landscape"


class MissingDataError(GradscopeError):
    """A run lacks the data one analysis needs (no steps, a dataset that was not recorded)."""


@dataclass(frozen=True)
class Run:
    """One run: a label, its trace (or ``None``) and its landscape files."""

    label: str
    source: Path
    trace: Any = None
    landscapes: tuple[Path, ...] = field(default_factory=tuple)

    def require_trace(self) -> Any:
        if self.trace is None:
            raise MissingDataError(f"{self.label}: {self.source} holds no trace.h5")
        return self.trace


def file_format(path: Path) -> str | None:
    """The root ``format`` attribute of an HDF5 file, or ``None`` when it has none.

    Raises a GradscopeError when the file cannot be opened as HDF5.
    """
    try:  # as an SWMR reader first: a run may be writing the file, or was killed while writing it
        handle = h5py.File(path, "r", libver="latest", swmr=True)
    except OSError:
        try:
            handle = h5py.File(path, "r")
        except OSError as exc:
            raise GradscopeError(f"{path} is not a readable HDF5 file ({_first_line(exc)})") from None
    with handle:
        value = handle.attrs.get("format")
    if isinstance(value, bytes):
        value = value.decode()
    return None if value is None else str(value)


def open_trace_file(path: str | os.PathLike[str]) -> Any:
    """Open a trace with :func:`gradscope.trace.open_trace` (the one reader of the format)."""
    from gradscope.trace import open_trace

    return open_trace(Path(path))


def load_run(source: str | os.PathLike[str], label: str | None = None) -> Run:
    """A :class:`Run` from a run directory, a trace file or a landscape file."""
    path = Path(source)
    if not path.exists():
        raise GradscopeError(f"{path} does not exist")
    trace = None
    landscapes: list[Path] = []
    if path.is_dir():
        if (path / "trace.h5").is_file():
            trace = open_trace_file(path / "trace.h5")
        landscape_dir = path / "landscape"
        if landscape_dir.is_dir():
            landscapes = sorted(p for p in landscape_dir.rglob("*.h5") if p.is_file())
        if trace is None and not landscapes:
            raise GradscopeError(f"{path} holds neither trace.h5 nor landscape/*.h5 (not a gradscope run directory)")
    else:
        kind = file_format(path)
        if kind == LANDSCAPE_FORMAT:
            landscapes = [path]
        elif kind == TRACE_FORMAT:
            trace = open_trace_file(path)
        else:
            raise GradscopeError(f"{path} is not a gradscope trace or landscape file (format={kind!r})")
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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- labels -----------------------------------------------------------------------------------


def trace_path(trace: Any) -> Path | None:
    path = getattr(trace, "path", None)
    return None if path is None else Path(path)


def optimizer_name(trace: Any) -> str | None:
    """The optimizer that produced a trace: the root attribute ``optimizer``, else the config's."""
    if trace is None:
        return None
    for getter in (
        lambda: getattr(trace, "optimizer", None),
        lambda: _mapping(getattr(trace, "metadata", None)).get("optimizer"),
        lambda: _config_optimizer(getattr(trace, "config", None)),
    ):
        value = getter()
        if isinstance(value, str) and value:
            return value
    return None


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _config_optimizer(config: Any) -> str | None:
    config = _mapping(config)
    value = config.get("optimizer")
    if isinstance(value, dict):
        value = value.get("name") or value.get("method")
    return value if isinstance(value, str) else None


def default_label(trace: Any, source: Path) -> str:
    """The optimizer name of a run, else the run directory or file name."""
    name = optimizer_name(trace)
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


def labelled(items: Sequence[Any], labels: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """Pair traces (or :class:`Run` objects) with labels: given ones, else derived and made unique."""
    if not items:
        raise GradscopeError("no run given")
    if labels is not None and len(labels) != len(items):
        raise GradscopeError(f"{len(labels)} labels given for {len(items)} runs")
    traces: list[Any] = []
    derived: list[str] = []
    sources: list[Path | None] = []
    for item in items:
        if isinstance(item, Run):
            traces.append(item.require_trace())
            derived.append(item.label)
            sources.append(item.source)
        else:
            path = trace_path(item)
            traces.append(item)
            derived.append(optimizer_name(item) or (path.stem if path else "run"))
            sources.append(path)
    names = list(labels) if labels is not None else unique_labels(derived, sources)
    return list(zip(names, traces))


def canonical(trace: Any) -> str:
    """The canonical optimizer key of a trace (see :func:`analyses.paper.canonical_optimizer`)."""
    return canonical_optimizer(optimizer_name(trace))


# --- columns ----------------------------------------------------------------------------------


def _group(trace: Any, group: str) -> Any:
    value = getattr(trace, group, None)
    return value if value is not None else {}


def has_column(trace: Any, group: str, name: str) -> bool:
    """Whether ``group/name`` exists in the trace (it may still hold only NaN)."""
    try:
        return name in _group(trace, group)
    except TypeError:
        return False


def column(trace: Any, group: str, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """``group/name`` as a float64 numpy array; a MissingDataError names what is absent."""
    who = label or str(trace_path(trace) or "trace")
    if not has_column(trace, group, name):
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDataError(f"{who}: trace has no {group}/{name}{why}")
    values = np.asarray(_group(trace, group)[name])
    if values.dtype.kind in "iub":
        return values.astype(np.float64)
    return np.asarray(values, dtype=np.float64)


def _rows_column(trace: Any, group: str, name: str, label: str, purpose: str) -> np.ndarray:
    """A column of ``group``; MissingDataError when the group holds no row at all."""
    values = column(trace, group, name, label, purpose=purpose)
    if values.shape[0] == 0:
        who = label or str(trace_path(trace) or "trace")
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDataError(f"{who}: trace has no recorded {group}{why}")
    return values


def step_column(trace: Any, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """A ``steps`` column; raises a MissingDataError when the trace holds no step at all."""
    return _rows_column(trace, "steps", name, label, purpose)


def epoch_column(trace: Any, name: str, label: str = "", *, purpose: str = "") -> np.ndarray:
    """An ``epochs`` column (first axis = epoch rows); MissingDataError when there is no row."""
    return _rows_column(trace, "epochs", name, label, purpose)


def steps_axis(trace: Any, label: str = "") -> np.ndarray:
    """The step numbers ``steps/step`` (0, 1, … when the column is absent)."""
    if has_column(trace, "steps", "step"):
        return step_column(trace, "step", label)
    for name in ("omega_norm", "loss"):
        if has_column(trace, "steps", name):
            return np.arange(step_column(trace, name, label).shape[0], dtype=np.float64)
    raise MissingDataError(f"{label or 'trace'}: trace has no steps group")


def epochs_axis(trace: Any, label: str = "") -> np.ndarray:
    """The epoch numbers ``epochs/epoch`` (0, 1, … when the column is absent)."""
    if has_column(trace, "epochs", "epoch"):
        return epoch_column(trace, "epoch", label)
    raise MissingDataError(f"{label or 'trace'}: trace has no epochs/epoch")


def epoch_names(trace: Any) -> list[str]:
    """Names of the datasets in the ``epochs`` group."""
    try:
        return sorted(str(k) for k in _group(trace, "epochs").keys())
    except AttributeError:
        return []
