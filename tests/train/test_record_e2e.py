"""`gradscope record` end to end, in process, for every optimizer on a tiny CSV.

Each run: 24 ESOL molecules (split 19/2/3), the tiny model, 2 epochs of batches 8, 8, 3.
The trace, config.json and checkpoints are checked against what the run must contain, and the
recorded numbers against references recomputed here (per-step losses → the epoch's training
loss, the best checkpoint's weights → the recorded validation loss).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.cli import main
from gradscope.train.build import load_run
from gradscope.train.config import RecordConfig
from gradscope.train.evaluate import evaluate
from gradscope.trace import open_trace
from kit.data import record_args

OPTIMIZERS = ("adam", "sam", "asam", "graphsam", "graphsam-released", "sam-one", "sam-one-epoch", "sam-k", "looksam",
              "ae-sam", "rst")
N_TRAIN = 19  # ⌊0.8·24⌋
BATCHES = [8, 8, 3]
STEPS = 2 * len(BATCHES)
# forward-backward passes per step where the schedule is fixed (ae-sam and rst decide by data/coin)
PASSES = {
    "adam": [1] * 6,
    "sam": [2] * 6,
    "asam": [2] * 6,
    "graphsam": [2, 1, 1, 2, 1, 1],           # exact ε at each epoch's first step (anchor)
    "graphsam-released": [2, 1, 1, 2, 1, 1],
    "sam-one": [2, 1, 1, 1, 1, 1],            # ε once for the whole run (the paper's SAM-One)
    "sam-one-epoch": [2, 1, 1, 2, 1, 1],      # ε once per epoch, reused
    "sam-k": [2, 1, 1, 1, 1, 1],              # k = 8 steps between exact ε
    "looksam": [2, 1, 1, 1, 1, 2],            # k = 5
}
# optimizers whose applied perturbation has norm exactly ρ (a global 2-norm normalisation)
RHO_NORMED = ("sam", "graphsam", "sam-one", "sam-one-epoch", "sam-k", "looksam", "ae-sam", "rst")


def _expected_config(data: Path, optimizer: str, **changes) -> dict:
    return RecordConfig(data=str(data), model="tiny", epochs=2, batch_size=8, device="cpu", optimizer=optimizer,
                        **changes).to_dict()


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_records_a_complete_run(optimizer, regression_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(record_args(regression_csv, out, "--optimizer", optimizer, "--quiet")) == 0

    # config.json is the resolved configuration, also stored in the trace and the checkpoints
    config = json.loads((out / "config.json").read_text())
    assert config == _expected_config(regression_csv, optimizer)
    trace = open_trace(out / "trace.h5")
    assert trace.config == config

    s = trace.steps
    assert s.rows == STEPS
    np.testing.assert_array_equal(s.step, np.arange(STEPS))
    np.testing.assert_array_equal(s.epoch, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(s.batch_size, BATCHES * 2)
    assert np.all(np.isfinite(s.omega_norm)) and np.all(s.omega_norm > 0)
    if optimizer in PASSES:
        np.testing.assert_array_equal(s.grad_evals, PASSES[optimizer])
    else:
        assert set(s.grad_evals.tolist()) <= {1, 2}
    if optimizer == "adam":
        assert np.all(np.isnan(s.eps_norm)) and np.all(s.anchored == 0) and np.all(np.isfinite(s.loss))
    else:
        # an exact ε (anchor) costs the extra pass; the loss at θ_t exists exactly there... or
        # on every step for methods whose one-pass steps still evaluate θ_t (LookSAM, AE-SAM, RST)
        np.testing.assert_array_equal(s.anchored == 1, s.grad_evals == 2)
        assert np.all(np.isfinite(s.loss[s.anchored == 1]))
        assert np.all(np.isfinite(s.eps_norm[s.anchored == 1]))
        rho0 = 0.5 if optimizer == "asam" else 0.05  # ASAM's own default ρ (it scales with |θ|)
        np.testing.assert_allclose(s.rho, rho0 * 0.5 ** s.epoch)  # ρ halves every epoch (γ=0.5, λ=1)
    if optimizer in RHO_NORMED:
        applied = ~np.isnan(s.eps_hat_norm)
        np.testing.assert_allclose(s.eps_hat_norm[applied], s.rho[applied], rtol=1e-5)

    e = trace.epochs
    assert e.rows == 2
    np.testing.assert_array_equal(e.epoch, [0, 1])
    for name in ("train_loss", "val_loss", "val_rmse", "test_loss", "test_rmse", "attention_entropy", "graphs_per_s"):
        assert np.all(np.isfinite(e[name])), name
    # attention entropy: a mean of row entropies, so between 0 and log(largest molecule)
    assert np.all((e.attention_entropy > 0) & (e.attention_entropy <= math.log(100)))
    # the epoch's pass count and training loss are the per-step values summed / batch-weighted;
    # the training loss is the loss each step's optimizer returned (at θ_t, or at θ_t+ε̂ for a
    # one-pass step, where the trace's `loss` is NaN)
    returned = np.where(np.isnan(s.loss), s.loss_perturbed, s.loss).astype(np.float64)
    for epoch in (0, 1):
        rows = s.epoch == epoch
        assert e.grad_evals[epoch] == s.grad_evals[rows].sum()
        reference = (returned[rows] * s.batch_size[rows]).sum() / s.batch_size[rows].sum()
        assert e.train_loss[epoch] == pytest.approx(reference, rel=1e-6)
    np.testing.assert_array_equal(e.steps, [3, 6])

    # checkpoints: plain tensors and containers, the run's position, the same config
    for name in ("last", "best"):
        ckpt = torch.load(out / "checkpoints" / f"{name}.pt", weights_only=True)
        assert ckpt["config"] == config
        assert ckpt["batch"] == 0
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert (last["epoch"], last["step"]) == (2, STEPS)
    assert len(last["split"]["train"]) == N_TRAIN

    # the best checkpoint's weights give back the validation loss recorded for its epoch
    run = load_run(out, which="best")
    best = int(np.nanargmin(e.val_rmse))
    val = evaluate(run.model, run.data.eval_batches("val"), task="regression", metric="rmse",
                   device=torch.device("cpu"), standardizer=run.data.standardizer)
    assert val.loss == pytest.approx(e.val_loss[best], rel=1e-6)
    assert val.metric == pytest.approx(e.val_rmse[best], rel=1e-6)

    # --quiet: only results on stdout (the summary table, where the files are), nothing on stderr
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "wrote" in captured.out and "best validation rmse" in captured.out


@pytest.mark.parametrize("optimizer", ["sam", "graphsam"])
def test_zero_rho_reproduces_adam(optimizer, regression_csv, tmp_path):
    """ρ = 0 makes θ+ε̂ = θ, so ω is Adam's gradient: the same losses, step by step (same seed)."""
    assert main(record_args(regression_csv, tmp_path / "adam", "--optimizer", "adam", "--quiet")) == 0
    assert main(record_args(regression_csv, tmp_path / "sam", "--optimizer", optimizer, "--rho", "0", "--quiet")) == 0
    adam, sam = open_trace(tmp_path / "adam" / "trace.h5"), open_trace(tmp_path / "sam" / "trace.h5")
    sam_loss = np.where(np.isnan(sam.steps.loss), sam.steps.loss_perturbed, sam.steps.loss)
    np.testing.assert_allclose(sam_loss, adam.steps.loss, rtol=1e-6, atol=0)
    np.testing.assert_allclose(sam.epochs.train_loss, adam.epochs.train_loss, rtol=1e-6, atol=0)
    np.testing.assert_allclose(sam.epochs.val_loss, adam.epochs.val_loss, rtol=1e-6, atol=0)
    a = torch.load(tmp_path / "adam" / "checkpoints" / "last.pt", weights_only=True)["model_state"]
    b = torch.load(tmp_path / "sam" / "checkpoints" / "last.pt", weights_only=True)["model_state"]
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=1e-7)


def test_bf16_precision_runs_under_autocast(regression_csv, tmp_path):
    out = tmp_path / "bf16"
    assert main(record_args(regression_csv, out, "--precision", "bf16", "--optimizer", "sam", "--quiet")) == 0
    trace = open_trace(out / "trace.h5")
    assert trace.config["precision"] == "bf16"
    assert trace.steps.rows == STEPS and np.all(np.isfinite(trace.steps.loss))
    assert np.all(np.isfinite(trace.epochs.val_rmse)) and np.all(np.isfinite(trace.epochs.attention_entropy))
    # bf16 forward passes really ran: the losses differ from the fp32 run's (same seed)
    assert main(record_args(regression_csv, tmp_path / "fp32", "--optimizer", "sam", "--quiet")) == 0
    fp32 = open_trace(tmp_path / "fp32" / "trace.h5")
    assert trace.steps.loss[0] != fp32.steps.loss[0]
    np.testing.assert_allclose(trace.steps.loss[0], fp32.steps.loss[0], rtol=0.05)
    # parameters (and so checkpoints) stay float32
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model_state"]
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())


def test_classification_csv_records_auc(classification_csv, tmp_path):
    out = tmp_path / "cls"
    assert main(record_args(classification_csv, out, "--optimizer", "graphsam", "--quiet")) == 0
    trace = open_trace(out / "trace.h5")
    assert trace.config["task"] is None  # inferred, and stored resolved in the checkpoint's dataset
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["dataset"]["task"] == "classification"
    assert "val_roc_auc" in trace.epochs and "test_roc_auc" in trace.epochs
    assert trace.steps.rows == 2 * math.ceil(int(0.8 * 32) / 8)


def test_layers_probe_and_vectors_are_recorded(regression_csv, tmp_path):
    out = tmp_path / "rec"
    args = record_args(regression_csv, out, "--optimizer", "sam", "--layers", "--probe-exact-every", "2",
                       "--save-vectors-every", "3", "--flush-every", "2", "--quiet")
    assert main(args) == 0
    trace = open_trace(out / "trace.h5")
    s = trace.steps
    probed = np.arange(STEPS) % 2 == 0
    assert np.all(np.isfinite(s.cos_eps_exact[probed])) and np.all(np.isnan(s.cos_eps_exact[~probed]))
    # SAM's ε is the exact gradient at θ_t: the probe agrees with it
    np.testing.assert_allclose(s.cos_eps_exact[probed], 1.0, atol=1e-5)
    np.testing.assert_allclose(s.eps_exact_norm[probed], s.eps_norm[probed], rtol=1e-5)
    assert trace.layers.rows == STEPS and len(trace.layer_names) > 0
    # per-tensor norms compose to the global one
    np.testing.assert_allclose(np.sqrt((trace.layers.omega_norm.astype(np.float64) ** 2).sum(1)), s.omega_norm, rtol=1e-5)
    np.testing.assert_array_equal(trace.vectors.step, [0, 3])
    np.testing.assert_allclose(np.linalg.norm(trace.vectors.omega(1)), s.omega_norm[3], rtol=1e-5)


def test_noam_schedule_and_early_stopping(regression_csv, tmp_path):
    out = tmp_path / "noam"
    args = record_args(regression_csv, out, "--optimizer", "adam", "--lr-schedule", "noam", "--warmup-epochs", "1",
                       "--epochs", "6", "--early-stopping", "1", "--quiet")
    assert main(args) == 0
    trace = open_trace(out / "trace.h5")
    # warm-up over 3 steps (one epoch), then inverse square root: lr_s = lr·min((s+1)/3, sqrt(3/(s+1)))
    s = np.arange(trace.steps.rows)
    expected = 1e-3 * np.minimum((s + 1) / 3, np.sqrt(3 / (s + 1)))
    # the trace records the lr each step ran with
    np.testing.assert_allclose(trace.steps.lr, expected[: trace.steps.rows], rtol=1e-6)
    # early stopping (patience 1): the run ends after the first epoch without a better validation RMSE
    val = trace.epochs.val_rmse
    worse = [i for i in range(1, len(val)) if not val[i] < np.min(val[:i])]
    assert trace.epochs.rows == (worse[0] + 1 if worse else 6)
    assert trace.steps.rows == 3 * trace.epochs.rows
