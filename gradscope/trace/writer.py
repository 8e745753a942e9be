"""Write a gradscope trace (schema in :mod:`gradscope.trace.schema`) to HDF5, crash-safely.

Every dataset of the schema is created up front as a chunked, resizable dataset; then the file
switches to SWMR mode (HDF5 single-writer/multiple-reader), so that readers may open it while
rows are appended and a kill at any moment leaves every flushed row readable. Within one
append the ``step`` column is written last, so a reader that trusts ``len(step)`` never sees a
half-written row.

Resuming (``resume=True``) reopens an existing trace and appends to it. Rows recorded at or
after the resume step (``resume_step``) are dropped first, because a run resumed from a
checkpoint recomputes them; without ``resume_step`` nothing is dropped and recording continues
after the last stored step.
"""
from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
from h5py import h5s

from gradscope._version import __version__
from gradscope.errors import ConfigError, GradscopeError
from gradscope.trace import schema
from gradscope.trace._files import as_text, open_for_append

#: Rows per chunk of the row-per-step datasets (32 KiB of float32).
STEP_CHUNK_ROWS = 8192
#: Elements per chunk of a vector snapshot row (1 MiB of float32).
VECTOR_CHUNK_ELEMENTS = 1 << 18
#: Rows per chunk of the 1-D datasets of each row group.
_CHUNK_ROWS = {"steps": STEP_CHUNK_ROWS, "epochs": 256}


@dataclass(frozen=True)
class VectorSpec:
    """Layout of the optional ``vectors`` group: flat snapshots of ``size`` elements."""

    size: int
    dtype: str = "float32"
    compression: str | None = "gzip"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ConfigError(f"vector snapshots need at least one element, got size={self.size}")
        if self.dtype not in schema.VECTOR_DTYPES:
            raise ConfigError(f"vector dtype must be one of {schema.VECTOR_DTYPES}, got {self.dtype!r}")
        if self.compression not in ("gzip", "lzf", None):
            raise ConfigError(f"vector compression must be 'gzip', 'lzf' or None, got {self.compression!r}")


@dataclass(frozen=True)
class TraceLayout:
    """What a trace holds beyond the fixed ``steps`` and ``epochs`` columns.

    Attributes:
        layer_names: one name per tensor of the ``layers`` breakdown, or None for no breakdown.
        vectors: layout of vector snapshots, or None for none.
        epoch_metrics: extra epoch datasets declared up front, name → per-epoch value shape
            (``()`` for a scalar). Undeclared names logged later are written at close only.
    """

    layer_names: tuple[str, ...] | None = None
    vectors: VectorSpec | None = None
    epoch_metrics: tuple[tuple[str, tuple[int, ...]], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.layer_names is not None and len(self.layer_names) == 0:
            raise ConfigError("the per-tensor breakdown needs at least one tensor name")
        for name, shape in self.epoch_metrics:
            _check_epoch_name(name)
            if any(int(n) < 1 for n in shape):
                raise ConfigError(f"epoch metric {name!r} has an invalid shape {shape}")
            if name in schema.EPOCHS.names and shape != ():
                raise ConfigError(f"epoch metric {name!r} is a standard scalar column; it cannot have shape {shape}")


def _check_epoch_name(name: str) -> None:
    if not name or "/" in name or not name.isprintable():
        raise ConfigError(f"invalid epoch metric name {name!r}")


class TraceWriter:
    """Append rows to a trace file; see the module docstring for the crash and resume rules.

    Args:
        path: the ``.h5`` file.
        optimizer: class name of the recorded optimizer (root attribute ``optimizer``).
        config: the resolved run configuration, stored as JSON (root attribute ``config``).
        device: where the run computes, e.g. ``"cuda:0 (NVIDIA H200)"``.
        layout: optional groups and declared epoch metrics.
        overwrite: replace an existing file.
        resume: append to an existing file (a missing file is created).
        resume_step: with ``resume``, drop stored rows with step ≥ this before appending.
        attributes: further root attributes (strings) to set, e.g. the recorder's settings.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        optimizer: str,
        config: Mapping[str, Any] | None = None,
        device: str = "cpu",
        layout: TraceLayout = TraceLayout(),
        overwrite: bool = False,
        resume: bool = False,
        resume_step: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        if overwrite and resume:
            raise ConfigError("overwrite=True and resume=True contradict each other; pick one")
        if resume_step is not None and not resume:
            raise ConfigError("resume_step is only meaningful with resume=True")
        if resume_step is not None and resume_step < 0:
            raise ConfigError(f"resume_step must be ≥ 0, got {resume_step}")
        self.layout = layout
        self._pending: dict[str, dict[int, np.ndarray]] = {}
        self._closed = False
        created = not (self.path.exists() and resume)
        if not created:
            self._file = open_for_append(self.path)
            self._check_existing()
            self._truncate(resume_step)
        else:
            if self.path.exists() and not overwrite:
                raise GradscopeError(f"{self.path} exists; pass overwrite=True to replace it or resume=True to append")
            if not self.path.parent.is_dir():
                raise GradscopeError(f"directory does not exist: {self.path.parent}")
            self._file = h5py.File(self.path, "w", libver="latest")
        try:
            if created:
                self._write_root(optimizer, config, device)
            elif config is not None:  # a resumed run may have changed (more epochs): keep it current
                self._file.attrs["config"] = _config_json(config)
            self._create_missing()
            for key, value in (attributes or {}).items():
                if key in schema.ROOT_ATTRIBUTES:
                    raise ConfigError(f"root attribute {key!r} is set by the writer itself")
                self._file.attrs[key] = str(value)
            self._file.attrs["writer_pid"] = os.getpid()
            self._file.attrs["writer_host"] = socket.gethostname()
            self._file.flush()
            self._file.swmr_mode = True
        except BaseException:
            self._file.close()
            if created:  # leave no half-made trace behind
                self.path.unlink()
            raise
        self._steps = {name: self._file[schema.STEPS.name][name] for name in schema.STEPS.names}
        steps = self._steps[schema.STEPS.key]
        self.next_step = int(steps[-1]) + 1 if steps.shape[0] else (resume_step or 0)
        if resume_step is not None and resume_step > self.next_step:
            warnings.warn(
                f"resuming {self.path} at step {resume_step} but it holds steps only up to {self.next_step - 1}; "
                "the steps in between were never flushed and stay missing",
                stacklevel=2,
            )
            self.next_step = resume_step

    # ----------------------------------------------------------------------------- set-up
    def _write_root(self, optimizer: str, config: Mapping[str, Any] | None, device: str) -> None:
        import torch  # only for its version string

        attrs = self._file.attrs
        attrs["format"] = schema.FORMAT
        attrs["schema_version"] = schema.SCHEMA_VERSION
        attrs["config"] = _config_json(config or {})
        attrs["optimizer"] = str(optimizer)
        attrs["gradscope_version"] = __version__
        attrs["torch_version"] = str(torch.__version__)
        attrs["device"] = str(device)
        attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def _check_existing(self) -> None:
        attrs = self._file.attrs
        if as_text(attrs.get("format")) != schema.FORMAT:
            self._file.close()
            raise GradscopeError(f"{self.path} is not a gradscope trace; refusing to append to it")
        version = int(attrs.get("schema_version", -1))
        if version != schema.SCHEMA_VERSION:
            self._file.close()
            raise GradscopeError(
                f"{self.path} has trace schema version {version}; this gradscope appends only to version {schema.SCHEMA_VERSION}"
            )
        names = self.layout.layer_names
        if names is not None and "layers" in self._file:
            stored = tuple(as_text(n) for n in self._file["layers"].attrs["names"])
            if stored != names:
                self._file.close()
                raise GradscopeError(f"{self.path} has a per-tensor breakdown of other tensors; cannot resume into it")
        spec = self.layout.vectors
        if spec is not None and "vectors" in self._file:
            eps = self._file["vectors/eps"]
            if eps.shape[1] != spec.size or eps.dtype != np.dtype(spec.dtype):
                self._file.close()
                raise GradscopeError(f"{self.path} holds vector snapshots of another size or dtype; cannot resume into it")

    def _truncate(self, resume_step: int | None) -> None:
        if resume_step is None:
            return
        f = self._file
        for group in (schema.STEPS, schema.LAYERS, schema.VECTORS):
            if group.name in f:
                keep = int(np.searchsorted(f[group.name][group.key][:], resume_step, side="left"))
                _resize_group(f[group.name], keep)
        if "epochs" in f:
            keep = int(np.count_nonzero(f["epochs/step_count"][:] <= resume_step))
            _resize_group(f["epochs"], keep)
        resumes = json.loads(as_text(f.attrs.get("resumes", "[]")))
        resumes.append({"step": resume_step, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        f.attrs["resumes"] = json.dumps(resumes)

    def _create_missing(self) -> None:
        """Create every schema dataset the file lacks (all of them for a new trace)."""
        f = self._file
        for group in (schema.STEPS, schema.EPOCHS):
            g = f.require_group(group.name)
            for col in group.columns:
                if col.name not in g:
                    _create(g, col.name, col.dtype, (), col.fill, _CHUNK_ROWS[group.name], rows=_rows(g))
        epochs = f["epochs"]
        for name, shape in self.layout.epoch_metrics:
            if name not in epochs:
                _create(epochs, name, schema.EPOCH_EXTRA_DTYPE, shape, np.nan, _CHUNK_ROWS["epochs"], rows=_rows(epochs))
        names = self.layout.layer_names
        if names is not None and schema.LAYERS.name not in f:
            layers = f.create_group(schema.LAYERS.name)
            layers.attrs["names"] = np.array(names, dtype=h5py.string_dtype())
            for col in schema.LAYERS.columns:
                if col.per == "row":
                    _create(layers, col.name, col.dtype, (), col.fill, STEP_CHUNK_ROWS)
                else:  # steps × tensors, about 32 K values per chunk
                    _create(layers, col.name, col.dtype, (len(names),), col.fill, max(1, (1 << 15) // len(names)))
        spec = self.layout.vectors
        if spec is not None and schema.VECTORS.name not in f:
            vectors = f.create_group(schema.VECTORS.name)
            for col in schema.VECTORS.columns:
                if col.per == "row":
                    _create(vectors, col.name, col.dtype, (), col.fill, 1024)
                else:  # one snapshot per chunk row, compressed
                    vectors.create_dataset(
                        col.name,
                        shape=(0, spec.size),
                        maxshape=(None, spec.size),
                        dtype=spec.dtype,
                        chunks=(1, min(spec.size, VECTOR_CHUNK_ELEMENTS)),
                        compression=spec.compression,
                        shuffle=spec.compression is not None,
                        fillvalue=schema.fill_value(spec.dtype),
                    )

    # ----------------------------------------------------------------------------- appends
    def last_step_value(self, name: str) -> float | None:
        """The stored value of step column ``name`` in the last row (None for an empty trace)."""
        ds = self._file["steps"][name]
        return float(ds[ds.shape[0] - 1]) if ds.shape[0] else None

    @property
    def epoch_names(self) -> tuple[str, ...]:
        """Datasets of the ``epochs`` group, standard and declared."""
        return tuple(self._file["epochs"].keys())

    def append_steps(
        self,
        columns: Mapping[str, np.ndarray],
        layers: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append rows to ``steps`` (every schema column; missing ones are filled) and ``layers``.

        Args:
            columns: name → 1-D array, all of one length, ``step`` included.
            layers: the per-tensor columns of ``layers`` (``eps_norm``, ``omega_norm``), name →
                rows × tensors array; missing ones are filled. Ignored without a breakdown.
        """
        self._check_open()
        unknown = set(columns) - set(schema.STEPS.names)
        if unknown:
            raise GradscopeError(f"not step columns of the trace schema: {sorted(unknown)}")
        key = schema.STEPS.key
        step = np.asarray(columns[key], dtype=np.int64)
        n = step.shape[0]
        if n == 0:
            return
        for col in schema.STEPS.columns:
            if col.name != key:  # the key column last: it marks the rows complete
                values = columns.get(col.name)
                _append(self._steps[col.name], np.full(n, col.fill) if values is None else values, n)
        if layers is not None and schema.LAYERS.name in self._file:
            self._append_layers(step, layers)
        _append(self._steps[key], step, n)
        self.next_step = int(step[-1]) + 1

    def _append_layers(self, step: np.ndarray, layers: Mapping[str, np.ndarray]) -> None:
        group = self._file[schema.LAYERS.name]
        if not isinstance(layers, Mapping):
            raise GradscopeError("layers must map per-tensor column names (eps_norm, omega_norm) to arrays")
        unknown = set(layers) - set(schema.LAYERS.names)
        if unknown:
            raise GradscopeError(f"not per-tensor columns of the trace schema: {sorted(unknown)}")
        n = step.shape[0]
        for col in schema.LAYERS.where(per="tensor"):
            values = layers.get(col.name)
            _append(group[col.name], np.full(n, col.fill) if values is None else values, n)
        _append(group[schema.LAYERS.key], step, n)

    def append_epoch(self, values: Mapping[str, Any]) -> None:
        """Append one row to ``epochs``; names neither standard nor declared are kept for close().

        Undeclared names cannot be created while readers may have the file open (SWMR), so
        they are written when the writer closes; declare them up front to see them live.
        """
        self._check_open()
        group = self._file[schema.EPOCHS.name]
        key = schema.EPOCHS.key
        row = group[key].shape[0]
        checked: dict[str, np.ndarray] = {}
        for name, value in values.items():
            if name in group:
                checked[name] = _as_row(name, value, group[name].shape[1:])
                continue
            _check_epoch_name(name)
            pending = self._pending.get(name)
            expected = next(iter(pending.values())).shape if pending else np.shape(value)
            checked[name] = _as_row(name, value, expected)
        for name in checked.keys() - group.keys() - self._pending.keys():
            warnings.warn(
                f"epoch metric {name!r} was not declared (Recorder(epoch_metrics=...)); "
                "it is written when the recorder closes and is lost if the run is killed",
                stacklevel=3,
            )
            self._pending[name] = {}
        for name, ds in group.items():
            if name != key:  # the key column last: it marks the row complete
                fill = np.full((1, *ds.shape[1:]), schema.fill_value(ds.dtype), dtype=ds.dtype)
                _append(ds, checked[name][None] if name in checked else fill, 1)
        for name, rows in self._pending.items():
            if name in checked:
                rows[row] = checked[name]
        _append(group[key], checked.get(key, np.array(schema.EPOCHS.column(key).fill))[None], 1)

    def append_vectors(self, step: int, eps: np.ndarray | None, omega: np.ndarray) -> None:
        """Append one snapshot of flat ε_t (None: NaN) and ω_t to ``vectors``."""
        self._check_open()
        group = self._file[schema.VECTORS.name]
        snapshot = {"eps": eps, "omega": omega}
        for col in schema.VECTORS.where(per="element"):
            ds = group[col.name]
            values = snapshot[col.name]
            row = np.full((1, ds.shape[1]), np.nan) if values is None else np.asarray(values).reshape(1, ds.shape[1])
            _append(ds, row, 1)
        _append(group[schema.VECTORS.key], np.array([step]), 1)

    def flush(self) -> None:
        """Make every appended row durable and visible to SWMR readers."""
        self._check_open()
        self._file.flush()

    def close(self) -> None:
        """Flush, close, and write undeclared epoch metrics (see :meth:`append_epoch`)."""
        if self._closed:
            return
        self._closed = True
        n_epochs = self._file["epochs/epoch"].shape[0]
        self._file.close()
        if not self._pending:
            return
        with h5py.File(self.path, "r+", libver="latest") as f:
            for name, rows in self._pending.items():
                shape = next(iter(rows.values())).shape if rows else ()
                data = np.full((n_epochs, *shape), np.nan)
                for row, value in rows.items():
                    data[row] = value
                f["epochs"].create_dataset(name, data=data, maxshape=(None, *shape), chunks=(256, *shape))

    def _check_open(self) -> None:
        if self._closed:
            raise GradscopeError(f"the trace writer for {self.path} is closed")

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------- helpers
def _create(group: h5py.Group, name: str, dtype: str, shape: tuple[int, ...], fill: float, chunk_rows: int, rows: int = 0) -> None:
    group.create_dataset(
        name,
        shape=(rows, *shape),
        maxshape=(None, *shape),
        dtype=dtype,
        chunks=(chunk_rows, *shape),
        fillvalue=fill,
    )


def _rows(group: h5py.Group) -> int:
    """Current row count of a group (new datasets start that long, filled with NaN / -1)."""
    return max((ds.shape[0] for ds in group.values()), default=0)


def _append(ds: h5py.Dataset, values: np.ndarray, n: int) -> None:
    """Extend ``ds`` by ``n`` rows holding ``values`` (through h5py's low-level API: the
    high-level indexing machinery costs more than the write itself for a flush of a few
    hundred rows)."""
    shape = ds.id.get_space().shape
    rows = np.ascontiguousarray(values, dtype=ds.dtype)
    if rows.shape != (n, *shape[1:]):
        rows = np.ascontiguousarray(np.broadcast_to(rows, (n, *shape[1:])))
    ds.id.set_extent((shape[0] + n, *shape[1:]))
    target = ds.id.get_space()
    target.select_hyperslab((shape[0],) + (0,) * (len(shape) - 1), rows.shape)
    ds.id.write(h5s.create_simple(rows.shape), target, rows)


def _resize_group(group: h5py.Group, rows: int) -> None:
    for ds in group.values():
        ds.resize(rows, axis=0)


def _as_row(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise GradscopeError(f"epoch metric {name!r} has shape {arr.shape}, declared {shape}")
    return arr


def _config_json(config: Mapping[str, Any]) -> str:
    """The root ``config`` attribute: the run configuration as sorted JSON."""
    try:
        return json.dumps(dict(config), sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the run config cannot be stored as JSON: {exc}") from None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")
