"""Classification tasks with one class (before: AUC = NaN silently, and a "best" epoch anyway).

One class in the whole dataset → a one-line error naming the column; one class in the validation
or test split → one warning line at the start of the run; an undefined validation metric → the
best epoch is chosen by validation loss (gradscope.train.classes).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import gradscope.train.build as build
from gradscope.cli import main
from gradscope.metrics import roc_auc
from gradscope.train.classes import best_epoch_rule, check_classes, one_class_tasks, split_warnings
from gradscope.errors import GradscopeError
from kit.data import record_args

NAN = float("nan")


# -- the rules, on arrays ---------------------------------------------------------------------------
def test_one_class_tasks_against_a_loop():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(40, 5)).astype(np.float32)
    labels[:, 1] = 1.0
    labels[:, 3] = np.where(rng.random(40) < 0.5, NAN, 0.0)
    labels[:, 4] = NAN
    rows = rng.choice(40, 12, replace=False)
    for part in (None, rows):
        sub = labels if part is None else labels[part]
        slow = [j for j in range(5) if len({v for v in sub[:, j] if not math.isnan(v)}) < 2]
        assert one_class_tasks(labels, part) == slow
    assert one_class_tasks(labels) == [1, 3, 4]


def test_the_rule_agrees_with_the_metric():
    """A task the rule calls one-class is exactly a task roc_auc skips (NaN per task)."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=(6, 8)).astype(np.float32)
    labels[rng.random(labels.shape) < 0.3] = NAN
    per_task = roc_auc(labels, rng.normal(size=labels.shape), average=None)
    assert one_class_tasks(labels) == [int(j) for j in np.flatnonzero(np.isnan(per_task))]


def test_a_single_class_column_is_refused_by_name():
    labels = np.array([[1, 0], [1, 1], [1, NAN]], dtype=np.float32)
    with pytest.raises(GradscopeError, match=r"column 'B_active' is 1 \(3 rows\): nothing to classify"):
        check_classes(labels, ("B_active", "other"), "mine")
    with pytest.raises(GradscopeError, match="'empty' has no label"):
        check_classes(np.array([[0, NAN], [1, NAN]], dtype=np.float32), ("x", "empty"), "mine")
    check_classes(np.array([[0], [1]], dtype=np.float32), ("x",), "mine")  # two classes: fine


def test_split_warnings_and_the_best_epoch_rule():
    labels = np.array([[0, 0], [1, 1], [1, 0], [1, 1], [0, 1], [1, 0]], dtype=np.float32)
    names = ("a", "b")
    split = {"train": np.array([0, 1]), "val": np.array([1, 3]), "test": np.array([2, 4, 5])}
    lines = split_warnings(labels, split, names, "roc_auc")
    assert lines == ["the val split has one class only for tasks a, b (ROC-AUC is undefined there), so its "
                     "roc_auc is NaN and the best epoch is chosen by validation loss"]
    assert best_epoch_rule(labels, split, "classification", "roc_auc").column == "val_loss"
    split["val"] = np.array([1, 2])  # task a: 1, 1; task b: 1, 0
    lines = split_warnings(labels, split, names, "roc_auc")
    assert lines == ["the val split has one class only for task a (ROC-AUC is undefined there), so its roc_auc "
                     "averages the other 1 task(s)"]
    rule = best_epoch_rule(labels, split, "classification", "roc_auc")
    assert (rule.column, rule.higher_is_better, rule.label) == ("val_roc_auc", True, "validation roc_auc")
    assert best_epoch_rule(labels, split, "regression", "rmse").column == "val_rmse"


# -- through `gradscope record` ---------------------------------------------------------------------
def _csv(path: Path, labels: list[int], moleculenet_dir: Path) -> Path:
    with open(moleculenet_dir / "bbbp.csv", newline="") as fh:
        smiles = [r["smiles"] for r in csv.DictReader(fh)][: 3 * len(labels)]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["smiles", "p_np"])
        for s, y in zip(smiles, labels):
            out.writerow([s, y])
    return path


def test_record_refuses_a_single_class_dataset(moleculenet_dir, tmp_path, capsys):
    data = _csv(tmp_path / "ones.csv", [1] * 32, moleculenet_dir)
    out = tmp_path / "run"
    assert main(record_args(data, out, "--quiet", "--task", "classification")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gradscope: error: ") and "column 'p_np'" in err[-1] and "nothing to classify" in err[-1]
    assert not out.exists()


def test_one_class_in_the_validation_split_warns_and_picks_by_loss(classification_csv, tmp_path, capsys,
                                                                   monkeypatch):
    """The validation split holds positives only: one warning line, best epoch = lowest validation loss."""
    def split(dataset, kind, *, seed, fractions):
        positives = np.flatnonzero(dataset.labels[:, 0] > 0.5)
        val = positives[:3]
        rest = np.setdiff1d(np.arange(len(dataset)), val)
        return {"train": rest[:-6], "val": val, "test": rest[-6:]}

    monkeypatch.setattr(build, "make_split", split)
    out = tmp_path / "run"
    assert main(record_args(classification_csv, out, "--epochs", "3")) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "one class" in line]
    assert warned == ["gradscope: warning: the val split has one class only for task p_np (ROC-AUC is undefined "
                      "there), so its roc_auc is NaN and the best epoch is chosen by validation loss"]
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)  # every epoch, and the best
    history = ckpt["history"]
    assert all(math.isnan(h["val_roc_auc"]) for h in history)
    assert ckpt["best"]["epoch"] == int(np.argmin([h["val_loss"] for h in history]))
    assert f"(* best validation loss: epoch {ckpt['best']['epoch'] + 1})" in captured.out
