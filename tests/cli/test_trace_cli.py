"""`gradscope trace summary|validate|repair|export` end to end through gradscope.cli.main."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from gradscope.cli import main
from gradscope.errors import GradscopeError
from gradscope.trace import TraceLayout, TraceWriter, open_trace
from gradscope.trace.schema import STEP_COLUMNS

KILLED = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from gradscope.trace import TraceWriter
    w = TraceWriter(sys.argv[1], optimizer="SAM")
    w.append_steps({"step": np.arange(50), "omega_norm": np.ones(50, np.float32)})
    w.flush()
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.fixture
def run_dir(tmp_path):
    """A run directory with a small closed trace (2 tensors of breakdown, 2 epochs)."""
    path = tmp_path / "run" / "trace.h5"
    path.parent.mkdir()
    with TraceWriter(path, optimizer="GraphSAM", config={"lr": 0.001}, layout=TraceLayout(layer_names=("w", "b"))) as w:
        w.append_steps({"step": np.arange(8), "omega_norm": np.arange(8, dtype=np.float32)},
                       {"eps_norm": np.ones((8, 2)), "omega_norm": np.ones((8, 2))})
        w.append_epoch({"epoch": 0, "train_loss": 0.5})
        w.append_epoch({"epoch": 1, "train_loss": 0.4})
    return path.parent


def _one_error(capsys, argv, *fragments) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gradscope: error: ") and "Traceback" not in err[0]
    for fragment in fragments:
        assert fragment in err[0]


def test_summary_text_and_json(run_dir, capsys) -> None:
    assert main(["trace", "summary", str(run_dir)]) == 0
    out = capsys.readouterr().out
    columns = len(STEP_COLUMNS)  # the schema's count: a new column must not break this test
    assert "optimizer GraphSAM" in out and f"8 rows × {columns} columns" in out and "epochs: 2 rows" in out
    assert "closed cleanly" in out and "lr=0.001" in out
    assert main(["trace", "summary", str(run_dir / "trace.h5"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["steps"] == 8 and data["writer"] == "closed" and data["config"] == {"lr": 0.001}


def test_validate_exit_status(run_dir, tmp_path, capsys) -> None:
    assert main(["trace", "validate", str(run_dir)]) == 0
    assert "valid gradscope trace" in capsys.readouterr().out
    bad = tmp_path / "bad.h5"
    bad.write_bytes((run_dir / "trace.h5").read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["steps/rho"]
        f.attrs["config"] = "{oops"
    assert main(["trace", "validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert "steps/rho is missing" in captured.out and "config attribute" in captured.out
    assert captured.err.strip() == f"gradscope: error: {bad} is not a valid gradscope trace (2 problems)"


def test_a_truncated_trace_is_one_line_everywhere(run_dir, tmp_path, capsys) -> None:
    cut = tmp_path / "cut.h5"
    cut.write_bytes((run_dir / "trace.h5").read_bytes()[:3000])
    for action in ("summary", "repair"):
        _one_error(capsys, ["trace", action, str(cut)], "truncated", "3000 bytes")
    _one_error(capsys, ["trace", "export", str(cut), "--to", str(tmp_path / "x")], "truncated")
    assert not (tmp_path / "x").exists()
    assert main(["trace", "validate", str(cut)]) == 2
    assert "truncated" in capsys.readouterr().out
    with pytest.raises(GradscopeError, match="truncated"):  # --debug shows the traceback
        main(["trace", "summary", str(cut), "--debug"])
    _one_error(capsys, ["trace", "summary", str(tmp_path / "missing.h5")], "not found")
    _one_error(capsys, ["trace", "summary", str(tmp_path)], "without a trace.h5")


def test_repair_a_killed_run(tmp_path, capsys) -> None:
    path = tmp_path / "trace.h5"
    subprocess.run([sys.executable, "-c", KILLED, str(path)], timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert main(["trace", "summary", str(path)]) == 0
    assert "left open by a writer that is gone" in capsys.readouterr().out
    with pytest.raises(OSError):
        h5py.File(path, "r")
    assert main(["trace", "repair", str(path)]) == 0
    assert "kept every complete row (steps 50" in capsys.readouterr().out
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["steps/step"][:], np.arange(50))
    assert main(["trace", "repair", str(path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(run_dir, tmp_path, capsys, fmt) -> None:
    pd = pytest.importorskip("pandas")
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / "tables"
    assert main(["trace", "export", str(run_dir), "--to", str(out), "--format", fmt]) == 0
    assert f"steps.{fmt}" in capsys.readouterr().out
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    steps = read(out / f"steps.{fmt}")
    np.testing.assert_array_equal(steps["omega_norm"], open_trace(run_dir / "trace.h5").steps["omega_norm"])
    assert len(read(out / f"layers.{fmt}")) == 16 and len(read(out / f"epochs.{fmt}")) == 2
    _one_error(capsys, ["trace", "export", str(run_dir), "--to", str(out), "--format", fmt], "--overwrite")
    assert main(["trace", "export", str(run_dir), "--to", str(out), "--format", fmt, "--overwrite", "--quiet"]) == 0
    assert capsys.readouterr().out == ""


def test_help_has_examples(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["trace", "--help"])
    out = capsys.readouterr().out
    for action in ("summary", "validate", "repair", "export"):
        assert f"gradscope trace {action}" in out
    with pytest.raises(SystemExit):
        main(["trace", "export", "--help"])
    assert "--format {csv,parquet}" in capsys.readouterr().out
