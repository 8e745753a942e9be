"""Tables as lists of dict rows, rendered to Markdown or HTML.

Every analysis table is a ``list[dict]`` (one dict per run, the same keys in every row) so that
it can be printed, rendered, or turned into a DataFrame by the caller. ``None`` and NaN render
as an em dash ("not available"). Numbers of one column share one format (:func:`format_column`):
the same number of decimals (the fewest, at most four, that show every value of the column), or
scientific notation for the whole column when one of its values needs it.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MISSING = "—"


def format_value(value: Any, digits: int = 4) -> str:
    """One cell: None/NaN → "—", floats to ``digits`` decimals without trailing zeros."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) or hasattr(value, "dtype"):
        value = float(value)
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-digits)):
            return f"{value:.{digits - 1}e}"
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _is_float(value: Any) -> bool:
    return (isinstance(value, float) or (hasattr(value, "dtype") and getattr(value, "ndim", 0) == 0
                                         and np.issubdtype(value.dtype, np.floating)))


def _scientific(value: float, digits: int) -> bool:
    return value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-digits))


def format_column(values: Sequence[Any], digits: int = 4) -> list[str]:
    """The cells of one column, its floats in one format (see the module docstring)."""
    floats = [float(v) for v in values if _is_float(v) and math.isfinite(float(v))]
    if any(_scientific(v, digits) for v in floats):
        return [f"{float(v):.{digits - 1}e}" if _is_float(v) and math.isfinite(float(v)) else format_value(v, digits)
                for v in values]
    decimals = max((len(f"{v:.{digits}f}".rstrip("0").split(".")[1]) for v in floats), default=0)
    return [f"{float(v):.{decimals}f}" if _is_float(v) and math.isfinite(float(v)) else format_value(v, digits)
            for v in values]


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: list[str] = []
    for row in rows:
        for key in row:
            if key not in seen:
                seen.append(key)
    return seen


def _cells(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], digits: int) -> list[list[str]]:
    """The text of every cell, column by column (:func:`format_column`)."""
    return [format_column([row.get(c) for row in rows], digits) for c in cols]


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                headers: Mapping[str, str] | None = None, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (``headers`` renames columns); a line saying so when there
    are no rows and no columns to show."""
    if not rows and not columns:
        return "(no rows)\n"
    cols = _columns(rows, columns)
    names = [(headers or {}).get(c, c) for c in cols]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    cells = _cells(rows, cols, digits)
    for k in range(len(rows)):
        lines.append("| " + " | ".join(column[k].replace("|", "\\|") for column in cells) + " |")
    return "\n".join(lines) + "\n"


def to_html(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
            headers: Mapping[str, str] | None = None, digits: int = 4, css_class: str = "gs-table") -> str:
    """An HTML ``<table>`` (escaped) with numbers right-aligned."""
    cols = _columns(rows, columns)
    head = "".join(f"<th>{html.escape((headers or {}).get(c, c))}</th>" for c in cols)
    body = []
    text = _cells(rows, cols, digits)
    for k, row in enumerate(rows):
        cells = []
        for c, column in zip(cols, text):
            value = row.get(c)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            align = ' class="num"' if numeric or value is None else ""
            cells.append(f"<td{align}>{html.escape(column[k])}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
