"""Read a gradscope trace into numpy: :func:`open_trace` → :class:`Trace`.

The reader loads the small groups (``steps``, ``epochs``, ``layers``) into memory and closes
the file again, so a notebook never holds a lock on a trace that a run is writing; vector
snapshots stay on disk and are read on access. :meth:`Trace.refresh` reopens the file and
picks up rows a live writer (SWMR mode) has flushed since. Rows of ``steps`` count as written
once ``steps/step`` covers them (the writer writes that column last), so a refresh in the
middle of a write never shows half a row.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import h5py
import numpy as np

from gradscope.errors import GradscopeError
from gradscope.trace import schema, stats
from gradscope.trace._files import as_text, check_format, config_of, open_for_reading, reading_errors


class Table(Mapping[str, np.ndarray]):
    """Named columns of equal length: ``table["eps_norm"]`` or ``table.eps_norm``."""

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._columns = dict(columns)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._columns[name]
        except KeyError:
            raise KeyError(f"no column {name!r}; available: {', '.join(self._columns)}") from None

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._columns[name]
        except KeyError:
            raise AttributeError(f"no column {name!r}; available: {', '.join(self._columns)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    @property
    def rows(self) -> int:
        """Number of rows (0 for an empty table)."""
        return next(iter(self._columns.values())).shape[0] if self._columns else 0

    def __repr__(self) -> str:
        return f"Table({self.rows} rows: {', '.join(self._columns)})"


class Vectors:
    """Lazy view of the ``vectors`` group: ``step`` in memory, ``eps(i)``/``omega(i)`` read on demand."""

    def __init__(self, path: Path, step: np.ndarray) -> None:
        self.path = path
        self.step = step

    def __len__(self) -> int:
        return self.step.shape[0]

    def _read(self, name: str, index: int | slice) -> np.ndarray:
        with open_for_reading(self.path) as f, reading_errors(self.path):
            return f[schema.VECTORS.name][name][index]

    def eps(self, index: int | slice) -> np.ndarray:
        """Flat ε snapshot(s) at row ``index`` (see ``step`` for their step numbers)."""
        return self._read("eps", index)

    def omega(self, index: int | slice) -> np.ndarray:
        """Flat ω snapshot(s) at row ``index``."""
        return self._read("omega", index)

    def __repr__(self) -> str:
        return f"Vectors({len(self)} snapshots)"


class Trace:
    """A recorded trace: ``steps``, ``epochs``, ``layers`` tables, lazy ``vectors``, metadata.

    Attributes:
        path: the file.
        steps: one row per optimizer step (schema ``STEP_COLUMNS``).
        epochs: one row per logged epoch.
        layers: per-tensor ``eps_norm``/``omega_norm`` (rows × tensors) and ``step``; empty
            when the breakdown was not recorded. ``layer_names`` names the columns.
        vectors: :class:`Vectors`, or None when no snapshots were recorded.
        config: the run configuration (dict).
        metadata: the other root attributes (``optimizer``, ``device``, versions, ``created``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.refresh()

    def refresh(self) -> "Trace":
        """Re-read the file, picking up rows flushed since (for traces still being written).

        Raises:
            GradscopeError: the file is missing, truncated, damaged, not a gradscope trace, or
                uses a newer schema (one line; see :func:`open_trace`).
        """
        with open_for_reading(self.path) as f, reading_errors(self.path):
            attrs = dict(f.attrs)
            self.schema_version = check_format(self.path, attrs, f)
            self.config: dict[str, Any] = config_of(self.path, attrs)
            self.metadata: dict[str, Any] = {
                key: as_text(value) for key, value in attrs.items() if key not in ("config", "format", "schema_version")
            }
            self.steps = _read_rows(f[schema.STEPS.name], schema.STEPS)
            self.epochs = _read_group(f, schema.EPOCHS)
            self.layers = _read_group(f, schema.LAYERS)
            names = f[schema.LAYERS.name].attrs["names"] if schema.LAYERS.name in f else ()
            self.layer_names = tuple(as_text(n) for n in names)
            vectors = schema.VECTORS
            self.vectors = Vectors(self.path, f[vectors.name][vectors.key][:]) if vectors.name in f else None
        return self

    @property
    def optimizer(self) -> str:
        return self.metadata.get("optimizer", "")

    def __len__(self) -> int:
        return self.steps.rows

    def to_dict(self) -> dict[str, Any]:
        """Everything except vector snapshots as plain dicts of numpy arrays (no pandas needed)."""
        return {
            "metadata": dict(self.metadata),
            "config": dict(self.config),
            "steps": dict(self.steps),
            "epochs": dict(self.epochs),
            "layers": {**dict(self.layers), "names": list(self.layer_names)},
        }

    def to_pandas(self) -> dict[str, Any]:
        """The ``steps``, ``epochs`` and ``layers`` tables as pandas DataFrames, by name.

        ``layers`` is in long form (one row per step and tensor); array-valued epoch columns
        become one column per element (see :mod:`gradscope.trace.export`). pandas is optional
        (``pip install 'gradscope[export]'``); without it this raises a GradscopeError.
        """
        from gradscope.trace.export import to_pandas

        return to_pandas(self)

    def __repr__(self) -> str:
        extra = f", layers={len(self.layer_names)} tensors" if self.layer_names else ""
        extra += f", vectors={len(self.vectors)}" if self.vectors is not None else ""
        return (
            f"Trace({str(self.path)!r}, optimizer={self.optimizer!r}, steps={len(self)}, "
            f"epochs={self.epochs.rows}{extra})"
        )

    # ------------------------------------------------------------------------- analyses
    def consistent_fraction(self) -> float:
        """Fraction of steps with cos(ε_t, ω_{t−1}) ≥ 0, NaN steps excluded.

        This is the consistency of Observation 2 of Wang et al. (2024): the perturbation
        gradient of a step points along the previous updating gradient (67.45 % of SAM's
        steps on BBBP in the paper). NaN when no step defines it.
        """
        return stats.consistent_fraction(self.steps).fraction

    def exact_agreement(self, exclude_anchored: bool = True) -> float:
        """Fraction of probed steps with cos(ε_t, ∇L_B(θ_t)) ≥ 0 (NaN when no step counts).

        Anchored steps, where ε *is* the exact gradient (cos = 1), are left out unless
        ``exclude_anchored=False``: the number is about the approximated ε, as in Wang et al.
        (2024), who report 72.46 % for GraphSAM (SAM-k 56.74 %, SAM-One 40.05 %). The rule is
        :func:`gradscope.trace.stats.exact_agreement`, which the analyses use too.
        """
        return stats.exact_agreement(self.steps, exclude_anchored).fraction

    def per_epoch(self, name: str, reduce: Callable[[np.ndarray], float] = np.mean) -> tuple[np.ndarray, np.ndarray]:
        """Aggregate the step column ``name`` over each epoch.

        Returns:
            ``(epochs, values)``: the sorted epoch numbers present in ``steps`` and ``reduce``
            (default: the mean) of the column's non-NaN values over each epoch's steps; NaN for
            an epoch without any defined value.
        """
        return stats.per_epoch(self.steps["epoch"], self.steps[name], reduce)


def open_trace(path: str | os.PathLike[str]) -> Trace:
    """Open a gradscope trace (also one that a run is still writing).

    Raises:
        GradscopeError: the file is missing, is not a gradscope trace, or uses a newer schema.
    """
    return Trace(path)


def _read_group(f: h5py.File, group: schema.Group) -> Table:
    """An optional row group as a :class:`Table` (empty when the file has none)."""
    return _read_rows(f[group.name], group) if group.name in f else Table({})


def _read_rows(data: h5py.Group, group: schema.Group) -> Table:
    """All datasets of a row group (schema names first), cut to the rows its key says are complete."""
    names = [n for n in group.names if n in data] + sorted(n for n in data if n not in group.names)
    key = group.key
    rows = data[key].shape[0] if key in data else min((data[n].shape[0] for n in names), default=0)
    columns = {}
    for name in names:
        ds = data[name]
        columns[name] = ds[:rows] if ds.shape[0] >= rows else _pad(ds[:], rows)
    return Table(columns)


def _pad(values: np.ndarray, rows: int) -> np.ndarray:
    out = np.full((rows, *values.shape[1:]), schema.fill_value(values.dtype), dtype=values.dtype)
    out[: values.shape[0]] = values
    return out
