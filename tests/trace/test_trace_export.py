"""Trace.to_pandas() and export() against explicit loops over the trace's arrays."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from gradscope.errors import GradscopeError
from gradscope.trace import TraceLayout, TraceWriter, open_trace
from gradscope.trace.export import export

pd = pytest.importorskip("pandas")


@pytest.fixture
def trace(tmp_path, tr):
    path = tmp_path / "t.h5"
    layout = TraceLayout(layer_names=("enc.w", "enc.b", "head.w"), epoch_metrics=(("h", (2, 3)), ("val_auc", ())))
    rng = np.random.default_rng(0)
    with TraceWriter(path, optimizer="SAM", config={"lr": 0.1}, layout=layout) as w:
        w.append_steps(tr.step_rows(0, 5), {"eps_norm": rng.normal(size=(5, 3)), "omega_norm": rng.normal(size=(5, 3))})
        for epoch in range(2):
            w.append_epoch({"epoch": epoch, "train_loss": 1.0 - epoch, "h": rng.normal(size=(2, 3)), "val_auc": 0.5})
    return open_trace(path)


def test_tables_hold_every_value_of_the_trace(trace) -> None:
    tables = trace.to_pandas()
    assert list(tables) == ["steps", "epochs", "layers"]
    steps = tables["steps"]
    assert list(steps.columns) == list(trace.steps)
    for name, values in trace.steps.items():
        np.testing.assert_array_equal(steps[name].to_numpy(), values)
        assert steps[name].dtype == values.dtype
    epochs = tables["epochs"]
    for e in range(2):
        for i in range(2):
            for j in range(3):
                assert epochs[f"h[{i},{j}]"][e] == trace.epochs["h"][e, i, j]
    assert "h" not in epochs and epochs["val_auc"].tolist() == [0.5, 0.5]
    layers = tables["layers"]
    assert list(layers.columns) == ["step", "tensor", "eps_norm", "omega_norm"] and len(layers) == 15
    rows = []
    for r, step in enumerate(trace.layers["step"]):  # the long table, built the obvious way
        for t, name in enumerate(trace.layer_names):
            rows.append((step, name, trace.layers["eps_norm"][r, t], trace.layers["omega_norm"][r, t]))
    assert [tuple(row) for row in layers.itertuples(index=False)] == rows


def test_a_trace_without_breakdown_has_an_empty_layers_table(tmp_path, tr) -> None:
    path = tmp_path / "t.h5"
    tr.write_trace(path, steps=3)
    layers = open_trace(path).to_pandas()["layers"]
    assert len(layers) == 0 and list(layers.columns) == ["step", "tensor", "eps_norm", "omega_norm"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips_through_files(trace, tmp_path, fmt) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / "tables"
    written = export(trace, out, fmt)
    assert [p.name for p in written] == [f"steps.{fmt}", f"epochs.{fmt}", f"layers.{fmt}", "metadata.json"]
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    tables = trace.to_pandas()
    for name in ("steps", "epochs", "layers"):
        back = read(out / f"{name}.{fmt}")
        assert list(back.columns) == list(tables[name].columns)
        for col in back.columns:
            want = tables[name][col].to_numpy()
            if want.dtype.kind == "f":
                np.testing.assert_allclose(back[col].to_numpy(), want, rtol=1e-7, equal_nan=True)
            else:
                assert back[col].astype(str).tolist() == [str(v) for v in want]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["config"] == {"lr": 0.1} and meta["layer_names"] == ["enc.w", "enc.b", "head.w"]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_export_refuses_to_overwrite_and_bad_targets(trace, tmp_path) -> None:
    out = tmp_path / "tables"
    export(trace, out)
    with pytest.raises(GradscopeError, match="--overwrite"):
        export(trace, out)
    export(trace, out, overwrite=True)
    with pytest.raises(GradscopeError, match="does not exist"):
        export(trace, tmp_path / "no" / "such")
    with pytest.raises(GradscopeError, match="format"):
        export(trace, out, "xlsx", overwrite=True)


def test_missing_pandas_or_pyarrow_is_one_clear_error(trace, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(GradscopeError, match=r"pyarrow.*gradscope\[export\]"):
        export(trace, tmp_path / "p", "parquet")
    assert not (tmp_path / "p").exists()
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(GradscopeError, match=r"pandas.*gradscope\[export\]"):
        trace.to_pandas()


def test_import_gradscope_does_not_import_pandas() -> None:
    code = ("import sys, gradscope, gradscope.trace, gradscope.trace.export, gradscope.cli.trace; "
            "from gradscope.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
