"""The paper's protocol: K folds of a run, one run directory each, and their mean ± std.

The GraphSAM paper (Wang et al., ICLR 2024, Table 1) reports "5-fold cross-validation with random
split": its released CoMPT command (``train_graph.py --fold 5 --split random``) trains one model per
fold on a random 0.8/0.1/0.1 split and reports the mean ± standard deviation of the test metric
at each fold's best validation epoch. Here fold ``k`` (0-based) is an ordinary run with seed
``seed + k`` — its own random split and its own initialisation — written to ``OUT/fold-<k+1>``;
``OUT/folds.json`` holds the per-fold numbers and their mean ± std (population std, ``ddof=0``, as
the released code's ``np.nanstd``). The released random branch seeds every fold's split with the
same seed, so its five folds share one split and differ only in initialisation; docs/record.md
says so. Folds already finished are not retrained (their checkpoints answer), interrupted ones resume.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gradscope.errors import GradscopeError
from gradscope.runlock import run_lock
from gradscope.train.config import RecordConfig
from gradscope.train.loop import RunResult, record

#: Name of the summary file in the folds' parent directory.
SUMMARY_NAME = "folds.json"


def fold_dir(out: str | Path, fold: int) -> Path:
    """The run directory of ``fold`` (0-based) under ``out``: ``out/fold-<fold+1>``."""
    return Path(out) / f"fold-{fold + 1}"


def fold_config(config: RecordConfig, fold: int) -> RecordConfig:
    """The configuration of ``fold``: the base configuration with seed ``config.seed + fold``."""
    return config.replace(seed=config.seed + fold)


@dataclass(frozen=True)
class FoldResult:
    """One fold's outcome: the metric at its best validation epoch."""

    fold: int
    out: str
    seed: int
    best_epoch: int | None
    val: float
    test: float
    finished: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def fold_result(fold: int, result: RunResult) -> FoldResult:
    """Read a finished or interrupted run's best-epoch numbers from its history."""
    metric = result.metric
    best = next((row for row in result.history if row["epoch"] == result.best_epoch), None)
    val = float(best[f"val_{metric}"]) if best else math.nan
    test = float(best[f"test_{metric}"]) if best else math.nan
    finished = not result.interrupted and bool(result.history)
    return FoldResult(fold, str(result.out), result.config.seed, result.best_epoch, val, test, finished)


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).any():
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(np.nanmean(arr)), "std": float(np.nanstd(arr)), "n": int(np.isfinite(arr).sum())}


def summarize(results: list[FoldResult], metric: str, config: RecordConfig) -> dict[str, Any]:
    """The folds summary written to ``folds.json`` (per fold, then mean ± std over folds)."""
    return {
        "format": "gradscope.folds", "version": 1, "metric": metric, "folds": len(results),
        "optimizer": config.optimizer, "dataset": config.dataset or config.data or "demo",
        "base_seed": config.seed,
        "per_fold": [r.to_dict() for r in results],
        "val": _mean_std([r.val for r in results]),
        "test": _mean_std([r.test for r in results]),
        "complete": all(r.finished for r in results),
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def record_folds(config: RecordConfig, out: str | Path, folds: int, *, overwrite: bool = False,
                 log: Callable[[str], None] | None = None, **record_kwargs: Any) -> dict[str, Any]:
    """Train ``folds`` runs of ``config`` into ``out/fold-1 … fold-K`` and write ``out/folds.json``.

    A fold whose directory already holds a run is resumed (a finished one returns at once), so the
    whole protocol can be re-run after an interruption; ``overwrite`` retrains every fold.
    ``record_kwargs`` go to :func:`~gradscope.train.loop.record` (``quiet``, ``progress``, ...).
    """
    if not isinstance(folds, int) or folds < 2:
        raise GradscopeError(f"--folds must be an integer >= 2, got {folds!r}")
    out = Path(out)
    with run_lock(out, "gradscope record --folds"):
        return _record_folds(config, out, folds, overwrite, log or (lambda msg: None), record_kwargs)


def _record_folds(config: RecordConfig, out: Path, folds: int, overwrite: bool, log: Callable[[str], None],
                  record_kwargs: dict[str, Any]) -> dict[str, Any]:
    results: list[FoldResult] = []
    summary: dict[str, Any] = {}
    for fold in range(folds):
        target = fold_dir(out, fold)
        resume = (target / "checkpoints" / "last.pt").is_file() and not overwrite
        log(f"fold {fold + 1}/{folds}: seed {config.seed + fold} → {target}" + (" (resumed)" if resume else ""))
        result = record(fold_config(config, fold), target, resume=resume, overwrite=overwrite and not resume,
                        log=log, **record_kwargs)
        results.append(fold_result(fold, result))
        summary = summarize(results, result.metric, config)
        summary["folds"] = folds
        summary["complete"] = summary["complete"] and len(results) == folds
        _write_json(out / SUMMARY_NAME, summary)
        if result.interrupted:
            break
    return summary


def read_folds(out: str | Path) -> dict[str, Any]:
    """The ``folds.json`` summary of a folds directory."""
    path = Path(out) / SUMMARY_NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise GradscopeError(f"{out} has no {SUMMARY_NAME}; was it written by gradscope record --folds?") from None
    except (OSError, ValueError) as exc:
        raise GradscopeError(f"cannot read {path}: {exc}") from None
    if data.get("format") != "gradscope.folds":
        raise GradscopeError(f"{path} is not a gradscope folds summary")
    return data


def format_folds(summary: dict[str, Any]) -> str:
    """The per-fold table and the mean ± std line, for the end of a folds run."""
    m = summary["metric"]
    lines = [f"fold  seed  best epoch  val {m}  test {m}", "----  ----  ----------  -------  --------"]
    for r in summary["per_fold"]:
        epoch = "-" if r["best_epoch"] is None else str(r["best_epoch"] + 1)
        lines.append(f"{r['fold'] + 1:>4}  {r['seed']:>4}  {epoch:>10}  {r['val']:>7.4f}  {r['test']:>8.4f}")
    v, t = summary["val"], summary["test"]
    lines.append(f"{summary['folds']} folds: val {m} {v['mean']:.4f} ± {v['std']:.4f}, "
                 f"test {m} {t['mean']:.4f} ± {t['std']:.4f}" + ("" if summary["complete"] else " (incomplete)"))
    return "\n".join(lines)
