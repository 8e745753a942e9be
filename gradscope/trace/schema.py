"""The gradscope trace schema, version 1: every name, dtype, source and meaning, defined once.

A trace is one HDF5 file. This module is the single source of truth for what it holds; the
writer creates exactly these datasets, the recorder measures the ``device`` columns and
decides the ``host`` ones, the reader, the validator and the exporters iterate these groups,
and docs/trace-format.md shows the tables :func:`markdown_table` makes of them. Notation
follows the GraphSAM paper (Wang et al., ICLR 2024, arXiv 2406.13137): ε_t is the perturbation
gradient, ε̂_t = ρ·ε_t/‖ε_t‖ the applied ascent, ω_t the updating gradient handed to the base
optimizer.

Rules: a name never changes meaning; new quantities may be added (readers ignore names they
do not know); NaN in a float column means "not defined at this step", never an error; integer
columns use -1 for "unknown".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FORMAT = "gradscope.trace"
SCHEMA_VERSION = 1

#: Root attributes every trace carries (all strings except ``schema_version``).
ROOT_ATTRIBUTES = (
    "format",
    "schema_version",
    "config",
    "optimizer",
    "gradscope_version",
    "torch_version",
    "device",
    "created",
)

#: Where a column's values come from: measured on the accelerator by the recorder (and
#: copied to the host once per flush), or decided on the host.
SOURCES = ("device", "host")
#: What one row of a column holds: one value, one value per parameter tensor (``layers``), or
#: one value per parameter element (``vectors``).
PER = ("row", "tensor", "element")
#: dtypes a vector snapshot may be stored in (the schema's dtype is the default).
VECTOR_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class Column:
    """One dataset of a row group.

    Attributes:
        name: the dataset name (never changes meaning).
        dtype: numpy dtype name of the stored values.
        source: ``"device"`` (measured on the accelerator) or ``"host"`` (decided on the host).
        meaning: one line for users, shown in docs/trace-format.md.
        per: ``"row"`` (a 1-D dataset), ``"tensor"`` or ``"element"`` (2-D, rows × tensors or
            rows × parameter elements).
    """

    name: str
    dtype: str
    source: str
    meaning: str
    per: str = "row"

    def __post_init__(self) -> None:
        if self.source not in SOURCES or self.per not in PER:
            raise ValueError(f"column {self.name!r}: source must be one of {SOURCES} and per one of {PER}")

    @property
    def fill(self) -> float | int:
        """Value of a row that was never written: NaN for floats, -1 for integers."""
        return fill_value(self.dtype)


@dataclass(frozen=True)
class Group:
    """A row group of the trace: its columns and the key column that marks rows complete.

    The writer extends ``key`` last in every append, so a reader that cuts the group to the
    key's length never sees half a row.
    """

    name: str
    key: str
    columns: tuple[Column, ...]
    optional: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name`` (KeyError if the schema has none)."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name}/{name} is not in trace schema version {SCHEMA_VERSION}")

    def where(self, source: str | None = None, per: str | None = None) -> tuple[Column, ...]:
        """The columns with the given source and/or shape, in schema order."""
        return tuple(
            c for c in self.columns if (source is None or c.source == source) and (per is None or c.per == per)
        )


def fill_value(dtype: str | np.dtype) -> float | int:
    """NaN for a float dtype, -1 for an integer one (the "not written / unknown" value)."""
    return np.nan if np.dtype(dtype).kind == "f" else -1


def _col(name: str, dtype: str, source: str, meaning: str, per: str = "row") -> Column:
    return Column(name, dtype, source, meaning, per)


#: Group ``steps``: one row per optimizer step; every dataset has the same length.
STEPS = Group("steps", "step", (
    _col("step", "int64", "host", "optimizer step index t, counted from 0 over the whole run"),
    _col("epoch", "int32", "host", "epoch the step belongs to (as told by the training loop; 0 if never told)"),
    _col("lr", "float64", "host", "learning rate of the first parameter group at the step"),
    _col("rho", "float64", "host", "perturbation radius ρ used at the step (NaN for a plain optimizer)"),
    _col("loss", "float32", "device", "mini-batch loss L_B(θ_t) where computed, else NaN"),
    _col("loss_perturbed", "float32", "device", "mini-batch loss L_B(θ_t + ε̂_t) where computed, else NaN"),
    _col("anchored", "int8", "host", "1 where ε_t is an exact gradient ∇L_B(θ_t) computed in this step, else 0"),
    _col("grad_evals", "int32", "host", "forward-backward passes (closure calls) the optimizer spent in the step"),
    _col("probe_evals", "int32", "host", "extra forward-backward passes the recorder's exact-ε probe spent (0 or 1)"),
    _col("batch_size", "int32", "host", "mini-batch size as told by the training loop (-1 if never told)"),
    _col("time_s", "float64", "host",
         "host wall-clock seconds of recording up to the end of the step (continues on resume)"),
    _col("step_time_s", "float64", "host",
         "host wall-clock seconds inside optimizer.step(), probe excluded (launch time on GPU)"),
    _col("eps_norm", "float32", "device", "‖ε_t‖₂ (NaN where the step has no ε)"),
    _col("eps_hat_norm", "float32", "device",
         "‖ε̂_t‖₂ actually applied to θ (0 where no ascent happened, NaN where the step has no ε)"),
    _col("omega_norm", "float32", "device", "‖ω_t‖₂"),
    _col("eps_change", "float32", "device", "‖ε_t − ε_{t−1}‖₂ (NaN at the first step or after a step without ε)"),
    _col("omega_change", "float32", "device", "‖ω_t − ω_{t−1}‖₂ (NaN at the first step)"),
    _col("cos_eps_omega", "float32", "device", "cos(ε_t, ω_t)"),
    _col("cos_eps_prev_omega", "float32", "device", "cos(ε_t, ω_{t−1}): the consistency of Observation 2"),
    _col("cos_eps_exact", "float32", "device",
         "cos(ε_t, ∇L_B(θ_t)) on steps where the exact-ε probe ran, else NaN"),
    _col("eps_exact_norm", "float32", "device", "‖∇L_B(θ_t)‖₂ on steps where the exact-ε probe ran, else NaN"),
    _col("skipped", "int8", "host",
         "1 where fp16 loss scaling found inf/NaN gradients and the step changed nothing (θ and optimizer state "
         "kept; its ε/ω columns are not finite), else 0"),
))

#: Group ``epochs``: one row per ``Recorder.log_epoch`` call. Further names may be declared
#: per run, conventionally ``val_<metric>`` and ``test_<metric>``; a value may be an array
#: (e.g. ``attention_entropy_layer_head``, layers × heads), stored as a 3-D dataset.
EPOCHS = Group("epochs", "epoch", (
    _col("epoch", "int32", "host", "epoch number"),
    _col("step_count", "int64", "host", "optimizer steps recorded before the row was logged (index of the next step)"),
    _col("train_loss", "float64", "host", "mean training loss over the epoch"),
    _col("val_loss", "float64", "host", "validation loss after the epoch"),
    _col("graphs_per_s", "float64", "host", "training throughput over the epoch"),
    _col("time_s", "float64", "host", "wall-clock seconds the epoch's training took"),
    _col("attention_entropy", "float64", "host", "mean attention entropy (nats) over layers and heads"),
))

#: dtype of declared extra epoch metrics.
EPOCH_EXTRA_DTYPE = "float64"

#: Group ``layers`` (only when the per-tensor breakdown was requested): 2-D datasets,
#: steps × tensors, plus the attribute ``names`` (one parameter name per column).
LAYERS = Group("layers", "step", (
    _col("step", "int64", "host", "optimizer step index of each row (same as steps/step)"),
    _col("eps_norm", "float32", "device", "per-tensor ‖ε_t‖₂ (NaN where the step has no ε)", per="tensor"),
    _col("omega_norm", "float32", "device", "per-tensor ‖ω_t‖₂", per="tensor"),
), optional=True)

#: Group ``vectors`` (only when snapshots were requested): full ε_t and ω_t every K steps.
VECTORS = Group("vectors", "step", (
    _col("step", "int64", "host", "optimizer step index of each snapshot"),
    _col("eps", "float32", "device",
         "flat ε_t (float32 or float16; NaN where the step has no ε), snapshots × parameters", per="element"),
    _col("omega", "float32", "device", "flat ω_t (float32 or float16), snapshots × parameters", per="element"),
), optional=True)

#: Every row group, in file order.
GROUPS: tuple[Group, ...] = (STEPS, EPOCHS, LAYERS, VECTORS)

# The column tuples by their historical names (read by analyses, benchmarks and tests).
STEP_COLUMNS: tuple[Column, ...] = STEPS.columns
EPOCH_COLUMNS: tuple[Column, ...] = EPOCHS.columns
LAYER_DATASETS: tuple[Column, ...] = LAYERS.columns
VECTOR_DATASETS: tuple[Column, ...] = VECTORS.columns
STEP_NAMES: tuple[str, ...] = STEPS.names
EPOCH_NAMES: tuple[str, ...] = EPOCHS.names


def group(name: str) -> Group:
    """The :class:`Group` called ``name`` (``steps``, ``epochs``, ``layers``, ``vectors``)."""
    for g in GROUPS:
        if g.name == name:
            return g
    raise KeyError(f"{name!r} is not a group of trace schema version {SCHEMA_VERSION}")


def column(group_name: str, name: str) -> Column:
    """The :class:`Column` called ``name`` in group ``group_name``."""
    return group(group_name).column(name)


def markdown_table(g: Group) -> str:
    """The group's columns as the Markdown table docs/trace-format.md shows (checked by a test)."""
    lines = ["| name | dtype | source | meaning |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.dtype} | {c.source} | {c.meaning} |" for c in g.columns]
    return "\n".join(lines)


if __name__ == "__main__":  # print the tables for docs/trace-format.md
    for g in GROUPS:
        print(f"{g.name}:\n{markdown_table(g)}\n")
