"""Helpers for the trace tests: a small synthetic trace written through the public writer, and a
trace whose writer was killed (HDF5's consistency flags left set)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from gradscope.trace import TraceLayout, TraceWriter, schema


def step_rows(start: int, n: int, seed: int = 0, epoch: int = 0) -> dict[str, np.ndarray]:
    """n complete rows of every step column, with recognizable values."""
    rng = np.random.default_rng(seed)
    rows: dict[str, np.ndarray] = {}
    for col in schema.STEP_COLUMNS:
        kind = np.dtype(col.dtype).kind
        rows[col.name] = rng.integers(0, 3, n).astype(col.dtype) if kind == "i" else rng.normal(size=n).astype(col.dtype)
    rows["step"] = np.arange(start, start + n, dtype=np.int64)
    rows["epoch"] = np.full(n, epoch, dtype=np.int32)
    return rows


def write_trace(path, steps: int = 10, layout: TraceLayout = TraceLayout(), **kwargs) -> dict[str, np.ndarray]:
    rows = step_rows(0, steps)
    with TraceWriter(path, optimizer="Fake", config={"lr": 0.1, "name": "x"}, layout=layout, **kwargs) as w:
        w.append_steps(rows)
    return rows


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from gradscope.trace import TraceLayout, TraceWriter
    w = TraceWriter(sys.argv[1], optimizer="X", config={"lr": 0.1}, layout=TraceLayout(layer_names=("a", "b")))
    for block in range(4):
        n = np.arange(100 * block, 100 * block + 100)
        w.append_steps({"step": n, "omega_norm": np.ones(100, np.float32)},
                       {"eps_norm": np.ones((100, 2)), "omega_norm": np.ones((100, 2))})
        w.flush()
    if sys.argv[2] == "half-row":  # a row written in some columns only, as a kill between columns leaves it
        ds = w._file["steps/eps_norm"]
        ds.resize(ds.shape[0] + 1, axis=0)
        w.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def killed_writer_trace(path, half_row: bool = False) -> None:
    """Write 400 steps (2 tensors) to ``path`` in a process that then dies by SIGKILL, flags set."""
    out = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(path), "half-row" if half_row else "-"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120, capture_output=True, text=True,
    )
    assert out.returncode == -9, out.stderr


@pytest.fixture(scope="session")
def tr() -> SimpleNamespace:
    """The helpers above (stateless, so one namespace serves every test)."""
    return SimpleNamespace(step_rows=step_rows, write_trace=write_trace, killed_writer_trace=killed_writer_trace)
