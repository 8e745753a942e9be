"""What a trace file holds, at a glance: what ``gradscope trace summary`` prints.

Besides rows and columns it says whether a writer still has the file flagged as open (HDF5's
consistency flags): a running recorder, or one that was killed. A killed writer's file is
readable by gradscope (every flushed row), but ordinary HDF5 tools refuse it until
:func:`gradscope.trace.repair.repair` rewrites it.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gradscope.trace import schema
from gradscope.trace._files import as_text, is_flagged, open_for_reading, reading_errors, row_counts, writer_alive
from gradscope.trace.reader import open_trace


@dataclass(frozen=True)
class TraceSummary:
    """Rows, columns, run identity and writer state of one trace file.

    Attributes:
        writer: ``"closed"`` (a writer closed it), ``"writing"`` (a live process on this host
            has it open: ``writer_pid``) or ``"flagged"`` (left open by a writer that is gone).
        incomplete_rows: rows of ``steps`` that a write in progress (or interrupted) started
            but did not finish; readers leave them out.
    """

    path: str
    size_bytes: int
    schema_version: int
    optimizer: str
    created: str
    device: str
    gradscope_version: str
    steps: int
    epochs: int
    layer_tensors: int
    vector_snapshots: int
    step_columns: tuple[str, ...]
    epoch_columns: tuple[str, ...]
    writer: str
    writer_pid: int | None
    incomplete_rows: int
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``gradscope trace summary --json``)."""
        return asdict(self)

    def to_text(self) -> str:
        """A few lines for people."""
        lines = [
            f"{self.path}: gradscope trace, schema version {self.schema_version}, {self.size_bytes:,} bytes",
            f"  optimizer {self.optimizer or '?'} on {self.device or '?'}, created {self.created or '?'} "
            f"(gradscope {self.gradscope_version or '?'})",
            f"  steps: {self.steps} rows × {len(self.step_columns)} columns; epochs: {self.epochs} rows "
            f"({', '.join(self.epoch_columns) or 'no columns'})",
            f"  layers: {self.layer_tensors or 'not recorded'}{' tensors' if self.layer_tensors else ''}; "
            f"vector snapshots: {self.vector_snapshots if self.vector_snapshots else 'none'}",
            f"  writer: {self._writer_text()}",
            f"  config: {', '.join(f'{k}={v}' for k, v in sorted(self.config.items())) or '{}'}",
        ]
        return "\n".join(lines)

    def _writer_text(self) -> str:
        text = {
            "closed": "closed cleanly",
            "writing": f"open: process {self.writer_pid} is writing it (SWMR); rows are still arriving",
            "flagged": "left open by a writer that is gone (killed?); gradscope reads it, other HDF5 tools "
                       f"refuse it until `gradscope trace repair {shlex.quote(self.path)}`",
        }[self.writer]
        if self.incomplete_rows:
            text += f"; {self.incomplete_rows} step row(s) half-written (left out by readers)"
        return text


def summarize(path: str | os.PathLike[str]) -> TraceSummary:
    """The :class:`TraceSummary` of the trace at ``path`` (GradscopeError if it is not a readable trace)."""
    path = Path(path)
    trace = open_trace(path)
    flagged = is_flagged(path)
    with open_for_reading(path) as f, reading_errors(path):
        pid = writer_alive(f.attrs) if flagged else None
        complete, longest = row_counts(f[schema.STEPS.name], schema.STEPS.key)
    meta = trace.metadata
    return TraceSummary(
        path=str(path),
        size_bytes=path.stat().st_size,
        schema_version=trace.schema_version,
        optimizer=trace.optimizer,
        created=str(meta.get("created", "")),
        device=str(meta.get("device", "")),
        gradscope_version=str(as_text(meta.get("gradscope_version", ""))),
        steps=len(trace),
        epochs=trace.epochs.rows,
        layer_tensors=len(trace.layer_names),
        vector_snapshots=len(trace.vectors) if trace.vectors is not None else 0,
        step_columns=tuple(trace.steps),
        epoch_columns=tuple(trace.epochs),
        writer="closed" if not flagged else "writing" if pid is not None else "flagged",
        writer_pid=pid,
        incomplete_rows=longest - complete,
        config=dict(trace.config),
    )
