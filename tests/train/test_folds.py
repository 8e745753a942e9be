"""K folds of a run (`gradscope record --folds K`): per-fold numbers, mean ± std, resume."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.train.config import RecordConfig
from gradscope.train.folds import SUMMARY_NAME, fold_dir, format_folds, read_folds, record_folds


def _config(data: Path) -> RecordConfig:
    return RecordConfig(data=str(data), model="tiny", epochs=2, batch_size=8, device="cpu", optimizer="sam", seed=5)


def _best_from_trace(run: Path) -> tuple[int, float, float]:
    """The best-validation epoch and its val/test RMSE, read straight from the trace (lowest val RMSE, first)."""
    with h5py.File(run / "trace.h5", "r") as f:
        epochs, val, test = f["epochs/epoch"][()], f["epochs/val_rmse"][()], f["epochs/test_rmse"][()]
    i = int(np.nanargmin(val))
    return int(epochs[i]), float(val[i]), float(test[i])


@pytest.mark.slow
def test_three_folds_summary_matches_each_trace_and_resume_retrains_nothing(regression_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds"
    summary = record_folds(_config(regression_csv), out, 3, quiet=True)
    assert summary == read_folds(out) == json.loads((out / SUMMARY_NAME).read_text())
    assert summary["folds"] == 3 and summary["complete"] and summary["metric"] == "rmse"
    tests = []
    for k, row in enumerate(summary["per_fold"]):
        run = fold_dir(out, k)
        assert row["seed"] == 5 + k and Path(row["out"]) == run
        epoch, val, test = _best_from_trace(run)
        assert row["best_epoch"] == epoch
        assert row["val"] == pytest.approx(val, rel=1e-9) and row["test"] == pytest.approx(test, rel=1e-9)
        tests.append(test)
    assert summary["test"]["mean"] == pytest.approx(np.mean(tests)) and summary["test"]["std"] == pytest.approx(np.std(tests))
    splits = [json.loads((fold_dir(out, k) / "config.json").read_text())["seed"] for k in range(3)]
    assert splits == [5, 6, 7]
    again = record_folds(_config(regression_csv), out, 3, quiet=True)  # finished folds: nothing retrained
    assert again["per_fold"] == summary["per_fold"]
    for k in range(3):
        with h5py.File(fold_dir(out, k) / "trace.h5", "r") as f:
            assert len(f["epochs/epoch"]) == 2 and len(f["steps/step"]) == 6
    table = format_folds(summary)
    assert "3 folds: val rmse" in table and f"{summary['test']['mean']:.4f} ± {summary['test']['std']:.4f}" in table


def test_an_interrupted_fold_stops_the_protocol_and_is_marked_incomplete(regression_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds"
    summary = record_folds(_config(regression_csv), out, 3, quiet=True, stop_when=lambda step: step == 2)
    assert not summary["complete"] and len(summary["per_fold"]) == 1
    assert not fold_dir(out, 1).exists()
    assert "(incomplete)" in format_folds(summary)


def test_bad_fold_counts_and_missing_summaries_are_one_line_errors(tmp_path: Path) -> None:
    for bad in (1, 0, -2):
        with pytest.raises(GradscopeError, match="--folds must be"):
            record_folds(RecordConfig(), tmp_path, bad)
    with pytest.raises(GradscopeError, match="no folds.json"):
        read_folds(tmp_path)


def test_the_command_line_trains_the_folds_and_prints_mean_and_std(regression_csv: Path, tmp_path: Path, capsys) -> None:
    from gradscope.cli import main
    from kit.data import record_args

    out = tmp_path / "cv"
    assert main(record_args(regression_csv, out, "--folds", "2", "--optimizer", "adam", "--quiet", epochs=1)) == 0
    printed = capsys.readouterr().out
    summary = read_folds(out)
    assert summary["folds"] == 2 and summary["complete"] and summary["optimizer"] == "adam"
    assert f"test rmse {summary['test']['mean']:.4f} ± {summary['test']['std']:.4f}" in printed
    assert main(record_args(regression_csv, out, "--folds", "1", epochs=1)) == 2
    assert "--folds must be an integer >= 2" in capsys.readouterr().err
