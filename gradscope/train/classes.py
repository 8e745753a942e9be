"""Classification tasks with one class: refused for the whole dataset, announced for a split.

ROC-AUC compares positives with negatives, so it is undefined for a task whose labels have one
class only. A task with one class in the whole dataset leaves nothing to classify: the run is
refused (:func:`check_classes`) naming the column. A task with one class in the validation or
test split only gets one warning line at the start of the run (:func:`split_warnings`): its AUC
is skipped there and the split's metric averages the other tasks
(:func:`gradscope.metrics.roc_auc`), or is NaN when no task is left. When that leaves the
validation metric undefined for the whole run, the best epoch is chosen by the validation loss
(:func:`best_epoch_rule`), so that ``best.pt`` still means something.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.metrics import get_metric

#: Splits whose metric the run reports (the training split's is never computed).
REPORTED_SPLITS = ("val", "test")


def one_class_tasks(labels: np.ndarray, rows: np.ndarray | None = None) -> list[int]:
    """Columns of ``labels`` (``[N, T]``, NaN = missing) whose present labels in ``rows`` (default:
    all) hold fewer than two classes (labels are 0/1; > 0.5 is positive, as the metric reads them)."""
    part = labels if rows is None else labels[np.asarray(rows, dtype=np.int64)]
    present = ~np.isnan(part)
    positives = np.where(present, part > 0.5, False).sum(0)
    return [int(j) for j in np.flatnonzero((positives == 0) | (positives == present.sum(0)))]


def _names(target_names: Sequence[str], tasks: Sequence[int], most: int = 5) -> str:
    names = [target_names[j] for j in tasks]
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def check_classes(labels: np.ndarray, target_names: Sequence[str], dataset: str) -> None:
    """Refuse a classification dataset with a task of one class (or no label) in all its molecules."""
    for j in one_class_tasks(labels):
        column = labels[:, j]
        present = column[~np.isnan(column)]
        if present.size == 0:
            raise GradscopeError(f"{dataset}: column {target_names[j]!r} has no label in any usable row; "
                                 "nothing to classify (leave it out of --targets)")
        only = int(present[0] > 0.5)
        raise GradscopeError(f"{dataset}: every label of column {target_names[j]!r} is {only} ({present.size} rows): "
                             "nothing to classify (leave it out of --targets, or use --task regression)")


def split_warnings(labels: np.ndarray, split: Mapping[str, np.ndarray], target_names: Sequence[str],
                   metric: str) -> list[str]:
    """One line per reported split (val, test) in which some task has one class."""
    lines = []
    n_tasks = labels.shape[1]
    for name in REPORTED_SPLITS:
        tasks = one_class_tasks(labels, split[name])
        if not tasks:
            continue
        which = f"task {_names(target_names, tasks)}" if len(tasks) == 1 else f"tasks {_names(target_names, tasks)}"
        rest = ("so its " + metric + " is NaN" if len(tasks) == n_tasks
                else f"so its {metric} averages the other {n_tasks - len(tasks)} task(s)")
        if name == "val" and len(tasks) == n_tasks:
            rest += " and the best epoch is chosen by validation loss"
        lines.append(f"the {name} split has one class only for {which} (ROC-AUC is undefined there), {rest}")
    return lines


@dataclass(frozen=True)
class BestRule:
    """What chooses the best epoch: a column of the epoch row and its direction."""

    column: str
    higher_is_better: bool

    @property
    def label(self) -> str:
        """``"validation roc_auc"`` / ``"validation loss"``, for the summary line."""
        return "validation " + self.column.removeprefix("val_")


def best_epoch_rule(labels: np.ndarray, split: Mapping[str, np.ndarray], task: str, metric: str) -> BestRule:
    """The validation metric, or the validation loss when the metric is undefined on the validation
    split for every task (classification with one class in each task there)."""
    if task == "classification" and len(one_class_tasks(labels, split["val"])) == labels.shape[1]:
        return BestRule("val_loss", higher_is_better=False)
    return BestRule(f"val_{metric}", get_metric(metric).higher_is_better)


def announce(lines: Sequence[str]) -> None:
    """Each line as a warning (the CLI prints ``gradscope: warning: …``, one line each)."""
    from gradscope.chem.dataset import DataWarning

    for line in lines:
        warnings.warn(line, DataWarning, stacklevel=3)
