"""A trace as tables: pandas DataFrames (:func:`to_pandas`) and CSV or Parquet files (:func:`export`).

Three tables, named after the trace's row groups:

* ``steps`` — one row per optimizer step, one column per ``steps`` dataset;
* ``epochs`` — one row per logged epoch; an array-valued column (e.g.
  ``attention_entropy_layer_head``, layers × heads) becomes one column per element,
  ``name[i,j]``;
* ``layers`` — the per-tensor breakdown in long form: one row per (step, tensor) with the
  columns ``step``, ``tensor`` (the parameter name) and the per-tensor quantities
  (``eps_norm``, ``omega_norm``); empty when the breakdown was not recorded.

Vector snapshots are not tables and are not exported. pandas (and pyarrow for Parquet) are
optional: ``pip install 'gradscope[export]'``. They are imported only here, on use.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.trace import schema

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from gradscope.trace.reader import Trace

#: Table names, in the order they are exported.
TABLES = (schema.STEPS.name, schema.EPOCHS.name, schema.LAYERS.name)
FORMATS = ("csv", "parquet")
_INSTALL = "pip install 'gradscope[export]'"


def to_pandas(trace: "Trace") -> dict[str, "pd.DataFrame"]:
    """The trace's ``steps``, ``epochs`` and ``layers`` tables as DataFrames (see the module docstring)."""
    pd = _pandas()
    return {
        schema.STEPS.name: pd.DataFrame(_flat_columns(trace.steps)),
        schema.EPOCHS.name: pd.DataFrame(_flat_columns(trace.epochs)),
        schema.LAYERS.name: pd.DataFrame(_long_layers(trace.layers, trace.layer_names)),
    }


def export(
    trace: "Trace", out_dir: str | os.PathLike[str], fmt: str = "csv", overwrite: bool = False
) -> list[Path]:
    """Write ``steps``, ``epochs`` and ``layers`` as ``OUT_DIR/<table>.<fmt>`` plus ``metadata.json``.

    Each file is written to a temporary name and renamed, so an interrupted export leaves no
    half-written table. Returns the files written.

    Raises:
        GradscopeError: unknown format, missing pandas/pyarrow, ``out_dir``'s parent missing, or
            files there already (without ``overwrite``).
    """
    if fmt not in FORMATS:
        raise GradscopeError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    tables = to_pandas(trace)
    if fmt == "parquet":
        _pyarrow()
    out = Path(out_dir)
    targets = [out / f"{name}.{fmt}" for name in TABLES] + [out / "metadata.json"]
    _prepare(out, targets, overwrite)
    for name, target in zip(TABLES, targets):
        _write_atomically(target, lambda tmp, df=tables[name]: _write_table(df, tmp, fmt))
    meta = {"path": str(trace.path), "metadata": trace.metadata, "config": trace.config,
            "layer_names": list(trace.layer_names)}
    _write_atomically(targets[-1], lambda tmp: tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n"))
    return targets


def _flat_columns(table: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """1-D columns as they are; an N-D column as one column per element, ``name[i,j]``."""
    columns: dict[str, np.ndarray] = {}
    for name, values in table.items():
        if values.ndim == 1:
            columns[name] = values
            continue
        for index in np.ndindex(*values.shape[1:]):
            columns[f"{name}[{','.join(map(str, index))}]"] = values[(slice(None), *index)]
    return columns


def _long_layers(layers: Mapping[str, np.ndarray], names: tuple[str, ...]) -> dict[str, Any]:
    """The per-tensor breakdown as a long table: one row per (step, tensor)."""
    per_tensor = [name for name in layers if layers[name].ndim == 2]
    key = schema.LAYERS.key
    if not names or key not in layers:
        columns: dict[str, Any] = {key: np.zeros(0, np.int64), "tensor": np.zeros(0, object)}
        columns.update({c.name: np.zeros(0, c.dtype) for c in schema.LAYERS.where(per="tensor")})
        return columns
    step = layers[key]
    columns = {key: np.repeat(step, len(names)), "tensor": np.tile(np.array(names, dtype=object), step.shape[0])}
    columns.update({name: layers[name].reshape(-1) for name in per_tensor})
    return columns


def _prepare(out: Path, targets: list[Path], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise GradscopeError(f"{out} exists and is not a directory")
    if not out.parent.is_dir():
        raise GradscopeError(f"directory does not exist: {out.parent}")
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise GradscopeError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    out.mkdir(exist_ok=True)


def _write_table(df: "pd.DataFrame", path: Path, fmt: str) -> None:
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False, engine="pyarrow")


def _write_atomically(target: Path, write: Any) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise GradscopeError(f"tables need pandas, which is not installed: {_INSTALL}") from None
    return pandas


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise GradscopeError(f"Parquet export needs pyarrow, which is not installed: {_INSTALL}") from None
    return pyarrow
