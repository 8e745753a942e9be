"""Live views fed from the recorder's host-side flush hold exactly the trace's values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradscope
from gradscope.integrations.sinks import SCALAR_COLUMNS, TensorBoardSink, WandbSink, attach_sinks


def _record(path, sinks, steps: int = 7, flush_every: int = 3, probe: int | None = 3) -> gradscope.Trace:
    """A tiny SAM run (exact-ε probe every 3 steps, so some columns are NaN on other steps)."""
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    x, y = torch.randn(steps, 8, 4), torch.randn(steps, 8, 1)
    opt = gradscope.optim.SAM(net.parameters(), rho=0.05, lr=1e-2)
    with gradscope.Recorder(opt, path, model=net, flush_every=flush_every, probe_exact_every=probe) as rec:
        attach_sinks(rec, sinks)
        for i in range(steps):
            def closure(i=i):
                loss = F.mse_loss(net(x[i]), y[i])
                loss.backward()
                return loss
            opt.step(closure)
        rec.log_epoch(train_loss=0.25)
    return gradscope.open_trace(path)


class FakeRun:
    """Records what a W&B run would be given."""

    def __init__(self) -> None:
        self.rows, self.metrics = [], {}

    def define_metric(self, name, step_metric=None):
        self.metrics[name] = step_metric

    def log(self, row):
        self.rows.append(dict(row))


def test_tensorboard_event_file_holds_the_trace_values(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trace = _record(tmp_path / "t.h5", [TensorBoardSink(tmp_path / "tb", every=2)])
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for name in SCALAR_COLUMNS:
        column = np.asarray(trace.steps[name], dtype=np.float64)
        want = {s: column[s] for s in range(0, len(trace), 2) if not math.isnan(column[s])}
        tag = f"gradscope/{name}"
        got = {e.step: e.value for e in acc.Scalars(tag)} if tag in tags else {}
        assert sorted(got) == sorted(want), name  # every 2nd step, NaN ("not defined") left out
        for step, value in got.items():
            assert value == np.float32(want[step]), (name, step)  # TensorBoard stores float32
    assert [e.value for e in acc.Scalars("gradscope/epoch/train_loss")] == [0.25]
    assert {e.step for e in acc.Scalars("gradscope/cos_eps_exact")} == {0, 6}


def test_wandb_sink_logs_the_trace_values_on_its_own_step_axis(tmp_path) -> None:
    run = FakeRun()
    trace = _record(tmp_path / "t.h5", [WandbSink(run, every=1)])
    assert run.metrics == {"gradscope/step": None, "gradscope/*": "gradscope/step"}
    rows = [r for r in run.rows if "gradscope/omega_norm" in r]
    assert [r["gradscope/step"] for r in rows] == list(range(len(trace)))
    for r in rows:
        s = r["gradscope/step"]
        for name in SCALAR_COLUMNS:
            value = float(trace.steps[name][s])
            assert r.get(f"gradscope/{name}", math.nan) == value or (math.isnan(value) and f"gradscope/{name}" not in r)


@pytest.mark.slow
def test_wandb_offline_run(tmp_path, monkeypatch) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = wandb.init(project="gradscope-test", dir=str(tmp_path), mode="offline")
    try:
        trace = _record(tmp_path / "t.h5", [WandbSink(every=1)])
        summary = dict(run.summary)
    finally:
        run.finish()
    last = len(trace) - 1
    assert summary["gradscope/step"] == len(trace)  # the epoch row, logged at the step count
    assert summary["gradscope/epoch/train_loss"] == 0.25
    assert summary["gradscope/omega_norm"] == float(trace.steps.omega_norm[last])
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_attach_twice_extends_and_sinks_close_with_the_recorder(tmp_path) -> None:
    closed = []

    class Sink:
        def write_steps(self, columns):
            pass

        def write_epoch(self, row):
            pass

        def close(self):
            closed.append(self)

    a, b = Sink(), Sink()
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with gradscope.Recorder(opt, tmp_path / "t.h5") as rec:
        attach_sinks(rec, [a])
        attach_sinks(rec, [b])
    assert closed == [a, b]


def test_record_tensorboard_flag_writes_the_traces_scalars(tmp_path, monkeypatch) -> None:
    """`gradscope record --tensorboard DIR`: the event file holds every step's ‖ω‖ of the trace."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gradscope.cli import main

    monkeypatch.setenv("GRADSCOPE_CACHE", str(tmp_path / "cache"))
    out, tb = tmp_path / "run", tmp_path / "tb"
    assert main(["record", "--model", "tiny", "--epochs", "1", "--batch-size", "128", "--optimizer", "sam",
                 "--out", str(out), "--tensorboard", str(tb), "--quiet"]) == 0
    trace = gradscope.open_trace(out / "trace.h5")
    acc = EventAccumulator(str(tb), size_guidance={"scalars": 0})
    acc.Reload()
    got = {e.step: e.value for e in acc.Scalars("gradscope/omega_norm")}
    assert sorted(got) == list(range(len(trace)))
    assert all(got[s] == np.float32(trace.steps["omega_norm"][s]) for s in got)
    assert [e.value for e in acc.Scalars("gradscope/epoch/train_loss")] == [
        np.float32(trace.epochs["train_loss"][0])]
