"""Per-epoch bookkeeping shared by the tables: which metric, which epoch is "best".

The GraphSAM paper (Wang et al., ICLR 2024) reports the test metric of the model selected on
the validation set, as MoleculeNet benchmarks do. A run's ``epochs`` group holds
``val_<metric>`` and ``test_<metric>``; the best epoch maximizes the validation metric when
:mod:`gradscope.metrics` says higher is better (ROC-AUC) and minimizes it otherwise (RMSE, MAE).
The first of the tied best epochs wins, and epochs with an undefined (NaN) value never win. When
the validation metric is never defined (a classification task with one class in the validation
split: its ROC-AUC is undefined), the epoch with the lowest validation loss is the best, as
`gradscope record` chooses ``best.pt`` then (:mod:`gradscope.train.classes`).
"""
from __future__ import annotations

import numpy as np

from analyses.runs import MissingDataError, epoch_column, epoch_names, epochs_axis, has_column
from gradscope.errors import ConfigError
from gradscope.metrics import METRICS
from gradscope.trace import Trace


def higher_is_better(metric: str, label: str = "") -> bool:
    """Whether larger values of ``metric`` are better, as :data:`gradscope.metrics.METRICS` says.

    Raises a MissingDataError for a metric gradscope does not know (its best epoch is undefined).
    """
    known = METRICS.get(metric)
    if known is None:
        raise MissingDataError(f"{label or 'trace'}: unknown metric {metric!r} (gradscope knows "
                               f"{', '.join(METRICS)}); cannot tell which epoch is best")
    return known.higher_is_better


def available_metrics(trace: Trace) -> list[str]:
    """Metrics with a ``test_<metric>`` dataset (losses excluded): gradscope's metrics first, in
    the order of :data:`gradscope.metrics.METRICS`, then any other name alphabetically."""
    order = list(METRICS)
    found = [n[len("test_"):] for n in epoch_names(trace) if n.startswith("test_") and n != "test_loss"]
    return sorted(found, key=lambda m: (order.index(m) if m in order else len(order), m))


def pick_metric(trace: Trace, metric: str | None, label: str = "") -> str:
    """The named metric (checked), else the run's preferred one."""
    if metric is not None:
        if not has_column(trace, "epochs", f"test_{metric}"):
            raise MissingDataError(f"{label or 'trace'}: trace has no epochs/test_{metric}")
        return metric
    found = available_metrics(trace)
    if not found:
        raise MissingDataError(f"{label or 'trace'}: trace has no epochs/test_<metric> dataset")
    return found[0]


def best_epoch_row(trace: Trace, metric: str, label: str = "") -> int:
    """Row of the ``epochs`` group with the best ``val_<metric>`` (the last row when no val column;
    the lowest ``val_loss`` when the metric is never defined, see the module docstring).

    Raises a MissingDataError when neither the validation metric nor the validation loss is defined.
    """
    if not has_column(trace, "epochs", f"val_{metric}"):
        return int(epochs_axis(trace, label).shape[0] - 1)
    val = epoch_column(trace, f"val_{metric}", label)
    higher = higher_is_better(metric, label)
    if not np.isfinite(val).any() and has_column(trace, "epochs", "val_loss"):
        val, higher = epoch_column(trace, "val_loss", label), False
    ok = np.isfinite(val)
    if not ok.any():
        raise MissingDataError(f"{label or 'trace'}: epochs/val_{metric} holds no defined value")
    score = np.where(ok, val if higher else -val, -np.inf)
    return int(np.argmax(score))


def epoch_row(trace: Trace, at: str | int, label: str = "", metric: str | None = None) -> int:
    """Row of the ``epochs`` group for ``at``: ``"last"``, ``"best"`` (validation) or an epoch number."""
    epochs = epochs_axis(trace, label)
    if at == "last":
        return int(epochs.shape[0] - 1)
    if at == "best":
        return best_epoch_row(trace, pick_metric(trace, metric, label), label)
    if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
        where = np.flatnonzero(epochs == int(at))
        if where.size == 0:
            raise MissingDataError(f"{label or 'trace'}: no epoch {int(at)} recorded")
        return int(where[-1])
    raise ConfigError(f"epoch selector must be 'last', 'best' or an epoch number, got {at!r}")
