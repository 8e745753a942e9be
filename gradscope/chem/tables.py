"""Reading molecule tables (CSV, gzip-compressed or not) and inferring their columns.

Rules (documented for users in docs/data.md):

* The file is CSV (``,``; ``;`` or tab also recognized from the header line), UTF-8 with or
  without BOM, optionally gzip-compressed (detected from the content, not the name). Blank lines
  are ignored; row numbers count data rows from 0 (the first line after the header), as pandas
  numbers them. Repeated header names get ``.1``, ``.2`` suffixes (pandas' convention).
* SMILES column: the one given, else a header named like SMILES (``smiles``, ``canonical_smiles``,
  ``mol``, ``molecule``, ``structure``, ...), else the column whose values parse as molecules.
* Targets: the columns given, else every numeric column that is neither the SMILES column nor an
  identifier (a name like ``id``/``num``/``index``/``*_id``, or consecutive integers such as a
  row counter). A column with any non-numeric value is not inferred as a target (name it).
* Labels: blank, ``nan``, ``NA``, ``N/A``, ``null``, ``None`` are missing (NaN); missing labels are
  masked in the loss and the metrics.
* Task: given, else classification when every label is 0 or 1, regression otherwise.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from gradscope.chem.registry import CLASSIFICATION, REGRESSION
from gradscope.errors import GradscopeError

MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "?"})
SMILES_NAMES = ("smiles", "smile", "canonical_smiles", "isomeric_smiles", "smi", "mol", "molecule",
                "structure", "smiles_string")
_ID_NAME = re.compile(r"(^|[\s_\-.])(id|ids|num|no|nr|idx|index|cid|cas|key|name|names)$|^#$|^unnamed", re.I)


@dataclass(frozen=True)
class Table:
    """A parsed table: ``header`` names and one tuple of strings per column, plus the source's SHA-256.

    Stored by column (each field's string once, no object per row), so that a million-row file
    takes little more memory than its text.
    """

    header: tuple[str, ...]
    columns: tuple[tuple[str, ...], ...]
    sha256: str
    source: str

    @property
    def n_rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    @property
    def rows(self) -> tuple[tuple[str, ...], ...]:
        """Row-wise view (built on each call; prefer :meth:`column`)."""
        return tuple(zip(*self.columns))

    def column(self, name: str) -> tuple[str, ...]:
        return self.columns[self.index_of(name)]

    def index_of(self, name: str) -> int:
        try:
            return self.header.index(name)
        except ValueError:
            raise GradscopeError(
                f"column {name!r} not found in {self.source}; columns are: {_list(self.header)}"
            ) from None


def _list(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:12])
    return shown + (f", ... ({len(names)} columns)" if len(names) > 12 else "")


def read_table(path: "str | Path") -> Table:
    """Read a CSV file (plain or gzip) into a :class:`Table`."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise GradscopeError(f"data file not found: {p}")
    try:
        raw = p.read_bytes()
    except OSError as exc:  # permissions, a file that vanished, an I/O error: the user's to fix
        raise GradscopeError(f"cannot read {p}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, str(p))
    del raw  # only the text is needed from here on (a large file is not held three times)
    return _parse(text, digest, str(p))


def table_from_bytes(raw: bytes, source: str) -> Table:
    """Parse CSV bytes (gzip-compressed when they start with the gzip magic number)."""
    return _parse(_decode(raw, source), hashlib.sha256(raw).hexdigest(), source)


def _decode(raw: bytes, source: str) -> str:
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise GradscopeError(f"{source} looks gzip-compressed but cannot be decompressed ({exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text`` with their ``\\n`` (as a file opened with ``newline=""`` gives them),
    one at a time: no copy of the whole text."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _parse(text: str, digest: str, source: str) -> Table:
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count) if first else ","
    records = (r for r in csv.reader(_lines(text), delimiter=delimiter) if any(f.strip() for f in r))
    try:
        names = next(records, None)
        if names is None:
            raise GradscopeError(f"{source} is empty")
        header = _dedupe([h.strip() for h in names])
        width = len(header)
        columns: list[list[str]] = [[] for _ in range(width)]
        for r in records:
            r = (r + [""] * width)[:width] if len(r) != width else r
            for column, value in zip(columns, r):
                column.append(value)
    except csv.Error as exc:  # e.g. a field over csv's size limit: a binary file given as CSV
        raise GradscopeError(f"{source} is not a readable CSV file ({exc})") from None
    if not columns or not columns[0]:
        raise GradscopeError(f"{source} has a header but no data rows")
    return Table(header=tuple(header), columns=tuple(tuple(c) for c in columns), sha256=digest, source=source)


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}.{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out


def parse_float(value: str) -> float | None:
    """A label value as float; NaN for missing markers; ``None`` if it is not a number."""
    v = value.strip()
    if v.lower() in MISSING:
        return math.nan
    try:
        return float(v)
    except ValueError:
        return None


def _is_numeric(values: Sequence[str]) -> bool:
    parsed = [parse_float(v) for v in values]
    return all(p is not None for p in parsed) and any(p is not None and not math.isnan(p) for p in parsed)


def _looks_like_id(name: str, values: Sequence[str]) -> bool:
    if _ID_NAME.search(name.strip()):
        return True
    nums = [parse_float(v) for v in values]
    if any(n is None or math.isnan(n) for n in nums) or len(nums) < 3:
        return False
    arr = np.asarray(nums)
    return bool(np.all(arr == np.round(arr)) and np.all(np.diff(arr) == 1))


def find_smiles_column(table: Table, given: str | None = None) -> str:
    """The SMILES column: ``given`` (checked), a SMILES-like header, or the column that parses."""
    if given is not None:
        table.index_of(given)
        return given
    lowered = {h.lower().strip(): h for h in table.header}
    for name in SMILES_NAMES:
        if name in lowered:
            return lowered[name]
    for h in table.header:
        if "smiles" in h.lower():
            return h
    from gradscope.chem._rdkit import parse_smiles  # RDKit only when names do not decide

    best, best_rate = None, 0.0
    for j, h in enumerate(table.header):
        sample = [v for v in table.columns[j] if v.strip()][:20]
        if not sample or _is_numeric(sample):
            continue
        rate = sum(parse_smiles(s) is not None for s in sample) / len(sample)
        if rate > best_rate:
            best, best_rate = h, rate
    if best is None or best_rate < 0.5:
        raise GradscopeError(
            f"cannot find a SMILES column in {table.source} (columns: {_list(table.header)}); "
            "name it with smiles_column= (CLI: --smiles-column)"
        )
    return best


def infer_targets(table: Table, smiles_column: str, given: Sequence[str] | None = None) -> tuple[str, ...]:
    """Target columns: ``given`` (checked), else numeric non-identifier columns."""
    if given is not None:
        targets = tuple(given)
        for t in targets:
            table.index_of(t)
        if smiles_column in targets:
            raise GradscopeError(f"the SMILES column {smiles_column!r} cannot also be a target")
        return targets
    found = []
    for j, h in enumerate(table.header):
        if h == smiles_column:
            continue
        values = table.columns[j]
        if _is_numeric(values) and not _looks_like_id(h, values):
            found.append(h)
    if not found:
        raise GradscopeError(
            f"no numeric target column found in {table.source} (columns: {_list(table.header)}); "
            "name them with targets= (CLI: --targets)"
        )
    return tuple(found)


def parse_labels(table: Table, targets: Sequence[str]) -> tuple[np.ndarray, int]:
    """Labels ``[N, T]`` float32 (NaN = missing) and the number of non-numeric values found."""
    cols = [table.index_of(t) for t in targets]
    y = np.full((table.n_rows, len(cols)), np.nan, dtype=np.float64)
    bad = 0
    for k, j in enumerate(cols):
        for i, value in enumerate(table.columns[j]):
            v = parse_float(value)
            if v is None:
                bad += 1
            else:
                y[i, k] = v
    return y.astype(np.float32), bad


def infer_task(y: np.ndarray) -> str:
    """Classification when every present label is 0 or 1, else regression."""
    present = y[~np.isnan(y)]
    return CLASSIFICATION if present.size and np.isin(present, (0.0, 1.0)).all() else REGRESSION
