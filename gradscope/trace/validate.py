"""Check a trace file against the schema: what ``gradscope trace validate`` reports.

A valid trace has the root attributes of :mod:`gradscope.trace.schema` (``format``,
``schema_version`` this gradscope reads, ``config`` a JSON object, …), the ``steps`` and
``epochs`` groups with every schema column in its schema dtype, every dataset of a row group
as long as the others (a write that was interrupted between columns leaves them unequal), and
optional ``layers``/``vectors`` groups of consistent shapes.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from gradscope.errors import GradscopeError
from gradscope.trace import schema
from gradscope.trace._files import check_format, config_of, open_for_reading, reading_errors


def validate(path: str | os.PathLike[str]) -> list[str]:
    """Every problem of the trace at ``path``, one line each; an empty list means valid.

    A file that cannot be opened or read at all (missing, truncated, not HDF5) gives one problem.
    """
    path = Path(path)
    try:
        with open_for_reading(path) as f, reading_errors(path):
            return _problems(path, f)
    except GradscopeError as exc:
        return [str(exc)]


def _problems(path: Path, f: h5py.File) -> list[str]:
    attrs = dict(f.attrs)
    problems = [f"root attribute {name!r} is missing" for name in schema.ROOT_ATTRIBUTES if name not in attrs]
    try:
        check_format(path, attrs, f)
        config_of(path, attrs)
    except GradscopeError as exc:
        problems.append(str(exc))
    for group in schema.GROUPS:
        if group.name in f:
            problems += _group_problems(f[group.name], group)
        elif not group.optional:
            problems.append(f"group {group.name!r} is missing")
    return problems


def _group_problems(data: h5py.Group, group: schema.Group) -> list[str]:
    return _column_problems(data, group) + _length_problems(data, group) + _shape_problems(data, group)


def _column_problems(data: h5py.Group, group: schema.Group) -> list[str]:
    """Schema columns missing or of the wrong dtype or rank; extra epoch columns not float64."""
    problems = []
    for col in group.columns:
        if col.name not in data:
            problems.append(f"{group.name}/{col.name} is missing")
            continue
        ds = data[col.name]
        allowed = schema.VECTOR_DTYPES if col.per == "element" else (col.dtype,)
        if ds.dtype not in [np.dtype(d) for d in allowed]:
            problems.append(f"{group.name}/{col.name} has dtype {ds.dtype}, the schema says {' or '.join(allowed)}")
        ndim = 1 if col.per == "row" else 2
        if ds.ndim != ndim:
            problems.append(f"{group.name}/{col.name} is {ds.ndim}-D, the schema says {ndim}-D")
    if group is schema.EPOCHS:
        extra = np.dtype(schema.EPOCH_EXTRA_DTYPE)
        problems += [
            f"epochs/{name} has dtype {ds.dtype}; extra epoch columns are {extra}"
            for name, ds in data.items()
            if name not in group.names and isinstance(ds, h5py.Dataset) and ds.dtype != extra
        ]
    return problems


def _length_problems(data: h5py.Group, group: schema.Group) -> list[str]:
    """Every dataset of a row group must have as many rows as its key column."""
    lengths = {name: ds.shape[0] if ds.ndim else 0 for name, ds in data.items() if isinstance(ds, h5py.Dataset)}
    if len(set(lengths.values())) <= 1:
        return []
    rows = lengths.get(group.key, min(lengths.values()))
    odd = ", ".join(f"{name} {n}" for name, n in sorted(lengths.items()) if n != rows)
    return [f"{group.name}: datasets differ in length ({group.key} has {rows} rows; {odd}): "
            "a write was interrupted between columns"]


def _shape_problems(data: h5py.Group, group: schema.Group) -> list[str]:
    """Per-tensor columns as wide as the tensor names; ε and ω snapshots of one size."""
    if group is schema.LAYERS:
        names = data.attrs.get("names")
        widths = {data[c.name].shape[1:] for c in group.where(per="tensor") if c.name in data}
        if names is None:
            return ["layers has no 'names' attribute"]
        if widths and widths != {(len(names),)}:
            return [f"layers: {len(names)} tensor names but per-tensor datasets of shape {sorted(widths)}"]
    if group is schema.VECTORS:
        sizes = {data[c.name].shape[1:] for c in group.where(per="element") if c.name in data}
        if len(sizes) > 1:
            return [f"vectors: the ε and ω snapshots differ in size {sorted(sizes)}"]
    return []
