"""Resuming a run gives what the uninterrupted run gives (same seed, CPU), bit for bit.

A 2-epoch run is the reference. It is compared with (a) 1 epoch, then ``--resume DIR --epochs 2``
and (b) a run stopped in the middle of epoch 2 (the stop request Ctrl-C makes, through the
loop's ``stop_when`` hook or a real SIGINT) and then resumed. Final weights must be
``torch.equal``, every epoch metric equal, and the trace must hold each step exactly once.
"""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import gradscope.train.loop as loop
from gradscope.cli import main
from gradscope.trace import open_trace
from gradscope.train.loop import record
from kit.data import record_args

STEPS = 6  # 2 epochs × batches of 8, 8, 3
EPOCH_COLUMNS = ("epoch", "train_loss", "val_loss", "val_rmse", "test_loss", "test_rmse", "attention_entropy",
                 "rho", "lr", "grad_evals", "steps", "attention_entropy_layer_head")
STEP_COLUMNS = ("step", "epoch", "lr", "rho", "loss", "loss_perturbed", "anchored", "grad_evals", "batch_size",
                "eps_norm", "eps_hat_norm", "omega_norm", "cos_eps_omega")
# measured against the previous step's ε/ω, which a resumed recorder does not have
HISTORY_COLUMNS = ("eps_change", "omega_change", "cos_eps_prev_omega")


def assert_same_run(reference: Path, resumed: Path, resumed_at: int) -> None:
    a = torch.load(reference / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "last.pt", weights_only=True)
    assert a["model_state"].keys() == b["model_state"].keys()
    for name, tensor in a["model_state"].items():
        assert torch.equal(tensor, b["model_state"][name]), name
    assert (b["epoch"], b["batch"], b["step"]) == (a["epoch"], a["batch"], a["step"])
    for key in ("epoch", "train_loss", "val_loss", "val_rmse", "test_rmse", "attention_entropy", "grad_evals"):
        assert [h[key] for h in b["history"]] == [h[key] for h in a["history"]], key

    ta, tb = open_trace(reference / "trace.h5"), open_trace(resumed / "trace.h5")
    assert tb.steps.rows == ta.steps.rows == STEPS  # no step twice, none missing
    np.testing.assert_array_equal(tb.steps.step, np.arange(STEPS))
    for name in STEP_COLUMNS:
        np.testing.assert_array_equal(tb.steps[name], ta.steps[name], err_msg=name)
    for name in HISTORY_COLUMNS:
        keep = np.arange(STEPS) != resumed_at
        np.testing.assert_array_equal(tb.steps[name][keep], ta.steps[name][keep], err_msg=name)
    assert tb.epochs.rows == ta.epochs.rows == 2
    for name in EPOCH_COLUMNS:
        np.testing.assert_array_equal(tb.epochs[name], ta.epochs[name], err_msg=name)


@pytest.mark.parametrize("optimizer,extra", [
    ("graphsam", ()),
    ("graphsam-released", ()),
    ("rst", ()),                                  # random coin per step: its generator must resume
    ("ae-sam", ()),                               # running statistics of ‖∇L‖²
    ("adam", ("--lr-schedule", "noam", "--warmup-epochs", "1")),
])
def test_resume_at_an_epoch_boundary_equals_the_uninterrupted_run(optimizer, extra, regression_csv, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(record_args(regression_csv, full, "--optimizer", optimizer, *extra, "--quiet")) == 0
    assert main(record_args(regression_csv, part, "--optimizer", optimizer, *extra, "--quiet", epochs=1)) == 0
    assert open_trace(part / "trace.h5").steps.rows == 3
    assert main(["record", "--resume", str(part), "--epochs", "2", "--quiet"]) == 0
    assert_same_run(full, part, resumed_at=3)
    # config.json now says 2 epochs, like the uninterrupted run's
    assert (part / "config.json").read_text() == (full / "config.json").read_text()


@pytest.mark.parametrize("optimizer", ["graphsam", "sam-k", "rst", "looksam"])
def test_resume_in_the_middle_of_an_epoch_equals_the_uninterrupted_run(optimizer, regression_csv, tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(record_args(regression_csv, full, "--optimizer", optimizer, "--quiet")) == 0
    # the config the CLI would build, then a stop request after the 5th step (epoch 2, batch 2 of 3)
    from gradscope.cli.record import config_from_args
    from gradscope.cli import build_parser

    args = build_parser().parse_args(record_args(regression_csv, part, "--optimizer", optimizer))
    result = record(config_from_args(args), part, quiet=True, stop_when=lambda step: step == 5)
    assert result.interrupted and result.steps == 5
    ckpt = torch.load(part / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["batch"], ckpt["step"]) == (1, 2, 5)
    assert open_trace(part / "trace.h5").steps.rows == 5  # flushed before the checkpoint
    assert open_trace(part / "trace.h5").epochs.rows == 1
    assert main(["record", "--resume", str(part), "--quiet"]) == 0
    assert_same_run(full, part, resumed_at=5)


def test_ctrl_c_in_process_stops_after_the_step_and_exits_130(regression_csv, tmp_path, monkeypatch, capsys):
    """A real SIGINT during step 2: the handler lets the step finish, the loop checkpoints and stops."""
    real_record = loop.record

    def record_with_sigint(*args, **kwargs):
        def stop_when(step: int) -> bool:
            if step == 2:
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would; the handler only sets a flag
            return False

        return real_record(*args, stop_when=stop_when, **kwargs)

    monkeypatch.setattr(loop, "record", record_with_sigint)
    out = tmp_path / "run"
    assert main(record_args(regression_csv, out, "--optimizer", "graphsam")) == 130
    captured = capsys.readouterr()
    assert f"gradscope record --resume {out}" in captured.out
    assert "stopping after this step" in captured.err
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    trace = open_trace(out / "trace.h5")
    assert ckpt["step"] == trace.steps.rows == 2 and ckpt["batch"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    # and it resumes to the end
    assert main(["record", "--resume", str(out), "--quiet"]) == 0
    assert open_trace(out / "trace.h5").steps.rows == STEPS


def test_resume_of_a_finished_run_changes_nothing(regression_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(record_args(regression_csv, out, "--optimizer", "sam", "--quiet")) == 0
    before = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert main(["record", "--resume", str(out)]) == 0
    assert "already finished its 2 epochs" in capsys.readouterr().err
    after = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert all(torch.equal(before["model_state"][k], after["model_state"][k]) for k in before["model_state"])
    assert open_trace(out / "trace.h5").steps.rows == STEPS


def test_a_stop_request_in_the_last_step_leaves_a_complete_run(regression_csv, tmp_path):
    from gradscope.train.config import RecordConfig

    config = RecordConfig(data=str(regression_csv), model="tiny", epochs=2, batch_size=8, device="cpu")
    result = record(config, tmp_path / "run", quiet=True, stop_when=lambda step: step == STEPS)
    assert not result.interrupted and result.steps == STEPS and len(result.history) == 2
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["batch"]) == (2, 0)


OLD_RUN = Path(__file__).resolve().parents[1] / "data" / "old-run"
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "traces" / "sam-one.h5"
TIMINGS = ("time_s", "step_time_s", "graphs_per_s")


@pytest.mark.slow
def test_a_run_of_the_code_before_the_registry_resumes_and_loads(tmp_path):
    """tests/data/old-run: `gradscope record --model tiny --epochs 2 --batch-size 64 --seed 3 --threads 1
    --layers --probe-exact-every 3 --optimizer sam-one` (the demo data) stopped after step 12 by gradscope 0.1
    (commit 7baee09). Today it loads, resumes as `sam-one-epoch` (what `sam-one` meant then) and ends
    with the trace the old code wrote for the uninterrupted run (tests/data/traces/sam-one.h5)."""
    import shutil

    import h5py

    from gradscope.train.build import load_run

    run = load_run(OLD_RUN)
    assert run.config.optimizer == "sam-one-epoch" and len(run.data.split["train"]) == 480
    out = tmp_path / "old-run"
    shutil.copytree(OLD_RUN, out)
    assert main(["record", "--resume", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["optimizer_settings"] == {"rho": 0.05,
                                                                                   "anchor_every_epochs": 1}
    with h5py.File(REFERENCE, "r") as ref, h5py.File(out / "trace.h5", "r") as new:
        for group in ("steps", "epochs", "layers"):
            for name, data in ref[group].items():
                if name in TIMINGS:
                    continue
                a, b = data[()], new[group][name][()]
                if group == "steps" and name in HISTORY_COLUMNS:  # no previous step right after a resume
                    a, b = np.delete(a, 12), np.delete(b, 12)
                np.testing.assert_allclose(b, a, rtol=2e-5, atol=1e-6, err_msg=f"{group}/{name}")
