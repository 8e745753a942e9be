"""Gradient-dynamics traces: the HDF5 schema (version 1), the writer and the reader.

``open_trace(path)`` returns a :class:`Trace` with numpy columns; the format is documented in
docs/trace-format.md and defined once in :mod:`gradscope.trace.schema`. ``open_for_reading(path)``
is the one way to open a trace file with h5py: it fails at once on truncated or damaged files and
reads live or killed writers' files as an SWMR reader with bounded retries.
"""
from __future__ import annotations

from gradscope.trace._files import open_for_reading
from gradscope.trace.reader import Table, Trace, Vectors, open_trace
from gradscope.trace.schema import FORMAT, SCHEMA_VERSION
from gradscope.trace.writer import TraceLayout, TraceWriter, VectorSpec

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "Table",
    "Trace",
    "TraceLayout",
    "TraceWriter",
    "VectorSpec",
    "Vectors",
    "open_for_reading",
    "open_trace",
]
