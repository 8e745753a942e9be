"""Feature columns: how one feature block is read from RDKit objects, stored and expanded.

A featurizer is a list of columns (:mod:`gradscope.chem.featurizers`). Each column has two sides:

* ``encode(objs)`` reads one small code per atom (or bond) from RDKit objects: the slot of a
  one-hot block (an integer index), or a scalar's raw value. Datasets keep only these codes
  (:mod:`gradscope.chem.store`), a few bytes per atom instead of a dense 115-wide float row.
* ``decode(codes, out, offset)`` writes the dense float32 feature block the model reads, for any
  number of atoms at once (one vectorised call per column and batch).

``decode(encode(objs))`` is bit-for-bit the dense block gradscope always built: a one-hot block
holds 1.0 at its slot; a scalar holds ``float32(value × scale)`` computed in float64, NaN/inf → 0.
This module needs no RDKit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch

from gradscope.errors import GradscopeError

#: storage kinds of a :class:`Scalar` (see its docstring)
SCALAR_STORES = ("int8", "float32")
_INT8 = np.iinfo(np.int8)


@dataclass(frozen=True)
class OneHot:
    """A one-hot column block: ``key(obj)`` looked up in ``choices``; unmatched → the unknown slot.

    Without an unknown slot an unmatched value leaves the whole block zero (code -1). The code is
    the slot index, int8 for blocks of up to 127 slots, int16 above.
    """

    name: str
    key: Callable[[Any], Hashable]
    choices: tuple
    unknown: bool = True
    _lookup: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lookup", {c: i for i, c in enumerate(self.choices)})

    @property
    def width(self) -> int:
        return len(self.choices) + int(self.unknown)

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self.width <= _INT8.max else np.int16)

    def encode(self, objs: Sequence[Any]) -> np.ndarray:
        """The slot of each object (-1: no slot, only without an unknown slot)."""
        miss = len(self.choices) if self.unknown else -1
        idx = np.fromiter((self._lookup.get(self.key(o), miss) for o in objs), dtype=np.int64, count=len(objs))
        return idx.astype(self.code_dtype)

    def decode(self, codes: np.ndarray, out: torch.Tensor, offset: int) -> None:
        """Set ``out[i, offset + codes[i]] = 1`` (``out`` is zero-filled ``[len(codes), d]``)."""
        idx = torch.from_numpy(np.array(codes, dtype=np.int64))
        rows = torch.arange(len(idx))
        keep = idx >= 0
        out[rows[keep], offset + idx[keep]] = 1.0

    def describe(self) -> str:
        labels = ", ".join(_label(c) for c in self.choices)
        return f"one-hot over [{labels}]" + (" + unknown" if self.unknown else "")


@dataclass(frozen=True)
class Scalar:
    """One numeric column: ``value(obj) * scale``; NaN/inf (e.g. Gasteiger failures) become 0.

    ``store`` says how a dataset keeps it: ``"int8"`` for integer-valued features (counts,
    charges, flags: the raw value, scaled when the batch is built), ``"float32"`` for anything
    else (the final value). An ``int8`` column meeting a non-integer value or one outside
    -128..127 raises :class:`GradscopeError` rather than store it wrongly.
    """

    name: str
    value: Callable[[Any], float]
    scale: float = 1.0
    note: str = ""
    store: str = "float32"

    width = 1

    def __post_init__(self) -> None:
        if self.store not in SCALAR_STORES:
            raise ValueError(f"Scalar {self.name!r}: store must be one of {SCALAR_STORES}, got {self.store!r}")

    @property
    def code_dtype(self) -> np.dtype:
        return np.dtype(self.store)

    def encode(self, objs: Sequence[Any]) -> np.ndarray:
        vals = np.fromiter((self.value(o) for o in objs), dtype=np.float64, count=len(objs))
        vals = np.where(np.isfinite(vals), vals, 0.0)
        if self.store == "float32":
            return (vals * self.scale).astype(np.float32)
        bad = (vals != np.round(vals)) | (vals < _INT8.min) | (vals > _INT8.max)
        if bad.any():
            raise GradscopeError(f"feature {self.name!r}: value {vals[bad][0]:g} does not fit its int8 storage "
                                 "(declare the column with store='float32')")
        return vals.astype(np.int8)

    def decode(self, codes: np.ndarray, out: torch.Tensor, offset: int) -> None:
        """``out[:, offset] = float32(code × scale)`` (int8) or the stored value (float32)."""
        codes = np.asarray(codes)
        vals = codes if self.store == "float32" else (codes.astype(np.float64) * self.scale).astype(np.float32)
        out[:, offset] = torch.from_numpy(np.array(vals, dtype=np.float32))  # a copy: codes may be read-only

    def describe(self) -> str:
        text = self.note or "value"
        return text if self.scale == 1.0 else f"{text} × {_num(self.scale)}"


Column = OneHot | Scalar


def encode_columns(columns: Sequence[Column], objs: Sequence[Any]) -> dict[str, np.ndarray]:
    """Column name → codes of ``objs`` (one entry per object)."""
    return {c.name: c.encode(objs) for c in columns}


def decode_columns(columns: Sequence[Column], codes: "dict[str, np.ndarray]", n: int) -> torch.Tensor:
    """The dense float32 ``[n, sum of widths]`` features of ``n`` objects from their codes."""
    out = torch.zeros(n, sum(c.width for c in columns))
    offset = 0
    for col in columns:
        if n:
            col.decode(codes[col.name], out, offset)
        offset += col.width
    return out


def _label(c: Any) -> str:
    return str(c).split(".")[-1]


def _num(x: float) -> str:
    return f"1/{round(1 / x)}" if x < 1 and abs(1 / x - round(1 / x)) < 1e-9 else f"{x:g}"
