"""Write the MoleculeNet excerpts in this folder from full copies of the six CSVs.

Each excerpt keeps the file's header and, in file order, its first 48 rows plus every row of the
full file that RDKit cannot parse (at most 4) and, for BBBP, the rows whose molecule has more than
100 heavy atoms (the default ``--max-atoms``) and its first 24 rows of class 0 (BBBP opens with
positives; training tests need both classes): real rows only, so loaders meet the bad rows real users'
files have. Usage: ``python tests/data/moleculenet/make_fixtures.py FULL_DIR``.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from rdkit import Chem, RDLogger

HEAD = 48
FILES = ("bbbp", "tox21", "sider", "clintox", "esol", "lipophilicity")


def excerpt(source: Path, target: Path) -> tuple[int, int]:
    """Copy the chosen rows of ``source`` to ``target``; returns (rows kept, bad rows among them)."""
    with open(source, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    col = header.index("smiles")
    keep, bad = list(range(min(HEAD, len(rows)))), []
    for i, row in enumerate(rows):
        mol = Chem.MolFromSmiles(row[col])
        if mol is None and len(bad) < 4:
            bad.append(i)
        elif mol is not None and source.stem == "bbbp" and mol.GetNumAtoms() > 100:
            bad.append(i)
    if source.stem == "bbbp":
        negatives = [i for i, row in enumerate(rows) if row[header.index("p_np")] == "0"]
        keep += negatives[:24]
    chosen = sorted(set(keep) | set(bad))
    with open(target, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows[i] for i in chosen)
    return len(chosen), len(set(bad) - set(keep))


if __name__ == "__main__":
    RDLogger.DisableLog("rdApp.*")
    full = Path(sys.argv[1])
    for name in FILES:
        n, extra = excerpt(full / f"{name}.csv", Path(__file__).parent / f"{name}.csv")
        print(f"{name}.csv: {n} rows ({extra} bad or large rows from beyond the first {HEAD})")
