"""Tiny data files and command lines for the record-loop tests (shared with tests/cli/test_record.py).

Molecules come from the shared MoleculeNet copies (ESOL for regression, BBBP for
classification); a few dozen rows keep a tiny-model run at about a second.
"""
from __future__ import annotations

import csv
from pathlib import Path


def write_regression_csv(moleculenet_dir: Path, path: Path, n: int = 24) -> Path:
    """The first ``n`` ESOL molecules as ``smiles,logS`` (regression: RMSE is finite on any split)."""
    with open(moleculenet_dir / "esol.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["smiles", "logS"])
        for row in rows:
            out.writerow([row["smiles"].strip(), row["measured log solubility in mols per litre"]])
    return path


def write_classification_csv(moleculenet_dir: Path, path: Path, n: int = 32) -> Path:
    """``n`` BBBP molecules as ``smiles,p_np``, alternating the two classes."""
    with open(moleculenet_dir / "bbbp.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_class = {label: [r for r in rows if r["p_np"] == label] for label in ("0", "1")}
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["smiles", "p_np"])
        for i in range(n):
            row = by_class[str(i % 2)][i // 2]
            out.writerow([row["smiles"], row["p_np"]])
    return path


def record_args(data: Path, out: Path, *extra: str, epochs: int = 2, batch_size: int = 8) -> list[str]:
    """A `gradscope record` command line for a tiny CPU run."""
    return ["record", "--data", str(data), "--model", "tiny", "--epochs", str(epochs),
            "--batch-size", str(batch_size), "--device", "cpu", "--out", str(out), *extra]
