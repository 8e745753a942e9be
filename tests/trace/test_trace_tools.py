"""summarize, validate and repair (the library behind `gradscope trace`), on intact, flagged and broken files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.trace import schema
from gradscope.trace import TraceLayout, TraceWriter, VectorSpec, open_trace
from gradscope.trace.repair import repair
from gradscope.trace.summary import summarize
from gradscope.trace.validate import validate

LIVE_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gradscope.trace import TraceWriter
    w = TraceWriter(sys.argv[1], optimizer="X")
    w.append_steps({"step": np.arange(5)})
    w.flush()
    print("ready", flush=True)
    sys.stdin.readline()
    w.close()
    """
)


def test_summary_of_a_closed_trace(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    layout = TraceLayout(layer_names=("a", "b", "c"), vectors=VectorSpec(4))
    with TraceWriter(path, optimizer="SAM", config={"lr": 0.1}, layout=layout) as w:
        w.append_steps(tr.step_rows(0, 6))
        w.append_vectors(0, None, np.zeros(4))
        w.append_epoch({"epoch": 0, "train_loss": 1.0})
    s = summarize(path)
    assert (s.steps, s.epochs, s.layer_tensors, s.vector_snapshots) == (6, 1, 3, 1)
    assert s.optimizer == "SAM" and s.config == {"lr": 0.1} and s.schema_version == 1
    assert s.writer == "closed" and s.writer_pid is None and s.incomplete_rows == 0
    assert s.step_columns == tuple(open_trace(path).steps)
    text = s.to_text()
    assert f"6 rows × {len(schema.STEP_COLUMNS)} columns" in text and "closed cleanly" in text and "lr=0.1" in text
    json.dumps(s.to_dict())  # JSON-ready


def test_summary_and_repair_of_a_killed_writers_trace(tmp_path, tr) -> None:
    path = tmp_path / "killed.h5"
    tr.killed_writer_trace(path, half_row=True)
    before = open_trace(path)
    s = summarize(path)
    assert s.writer == "flagged" and s.steps == 400 and s.incomplete_rows == 1
    assert "gradscope trace repair" in s.to_text()
    assert any("differ in length" in p for p in validate(path))
    with pytest.raises(OSError, match="consistency flags"):
        h5py.File(path, "r").close()

    result = repair(path)
    assert result.repaired and result.rows["steps"] == 400 and result.dropped_incomplete == {"steps": 1}
    with h5py.File(path, "r") as f:  # plain HDF5 opens it again
        assert f["steps/step"].shape == (400,) and f["steps/eps_norm"].shape == (400,)
    after = open_trace(path)
    for group in ("steps", "layers"):
        for name, values in getattr(before, group).items():
            np.testing.assert_array_equal(getattr(after, group)[name], values, err_msg=f"{group}/{name}")
    assert after.config == before.config and after.metadata == before.metadata
    assert validate(path) == [] and summarize(path).writer == "closed"
    assert not repair(path).repaired  # nothing left to do


def test_a_live_writers_trace_is_summarized_as_writing_and_not_repaired(tmp_path) -> None:
    path = tmp_path / "live.h5"
    child = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert child.stdout.readline().strip() == "ready"
        s = summarize(path)
        assert s.writer == "writing" and s.writer_pid == child.pid and s.steps == 5
        with pytest.raises(GradscopeError, match=f"process {child.pid}"):
            repair(path)
        assert len(open_trace(path)) == 5  # untouched
    finally:
        child.communicate("\n", timeout=60)
    assert summarize(path).writer == "closed"


def test_validate_accepts_traces_of_every_layout(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    layout = TraceLayout(layer_names=("a",), vectors=VectorSpec(3, "float16"), epoch_metrics=(("h", (2, 2)),))
    with TraceWriter(path, optimizer="X", layout=layout) as w:
        w.append_steps(tr.step_rows(0, 3), {"eps_norm": np.ones((3, 1)), "omega_norm": np.ones((3, 1))})
        w.append_vectors(0, np.zeros(3), np.ones(3))
        with pytest.warns(UserWarning, match="not declared"):  # val_auc: written at close
            w.append_epoch({"epoch": 0, "h": np.eye(2), "val_auc": 0.5})
    assert validate(path) == []


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda f: f.attrs.__delitem__("optimizer"), "'optimizer' is missing"),
        (lambda f: f.attrs.__setitem__("config", "[1"), "config attribute"),
        (lambda f: f.attrs.__setitem__("format", "other"), "not a gradscope trace"),
        (lambda f: f["steps"].__delitem__("rho"), "steps/rho is missing"),
        (lambda f: _replace(f, "steps/anchored", np.zeros(4, np.float32)), "steps/anchored has dtype float32"),
        (lambda f: f["steps/loss"].resize((3,)), "steps: datasets differ in length (step has 4 rows; loss 3)"),
        (lambda f: _replace(f, "epochs/val_auc", np.zeros(0, np.int64)), "extra epoch columns are float64"),
        (lambda f: f.__delitem__("epochs"), "group 'epochs' is missing"),
        (lambda f: f["layers"].attrs.__setitem__("names", ["a", "b", "c"]), "3 tensor names"),
    ],
)
def test_validate_names_each_problem(tmp_path, tr, damage, words) -> None:
    path = tmp_path / "t.h5"
    with TraceWriter(path, optimizer="X", layout=TraceLayout(layer_names=("a", "b"))) as w:
        w.append_steps(tr.step_rows(0, 4))
    assert validate(path) == []
    with h5py.File(path, "r+") as f:
        damage(f)
    problems = validate(path)
    assert any(words in p for p in problems), problems


def _replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    if name in f:
        del f[name]
    f.create_dataset(name, data=data, maxshape=(None,))


def test_validate_reports_an_unreadable_file_as_one_problem(tmp_path) -> None:
    path = tmp_path / "t.h5"
    path.write_text("not hdf5")
    assert validate(path) == [f"{path} is not a gradscope trace (not an HDF5 file)"]
    assert len(validate(tmp_path / "missing.h5")) == 1


def test_repair_refuses_what_it_cannot_read(tmp_path) -> None:
    path = tmp_path / "t.h5"
    path.write_bytes(b"")
    with pytest.raises(GradscopeError, match="empty"):
        repair(path)
