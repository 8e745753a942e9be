"""The record loop as real processes: SIGKILL and Ctrl-C mid-run, and 2-process DDP under torchrun.

The kill tests slow each training pass down (by 40 ms; a wrapper around the loop's loss, see
``SLOW_RECORD``) so that the signal reliably lands in the middle of the run.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.cli import main
from gradscope.errors import GradscopeError
from gradscope.trace import open_trace
from kit.data import record_args, write_regression_csv

pytestmark = pytest.mark.slow

SLOW_RECORD = """
import os, sys, time
import gradscope.train.trainer as trainer
real = trainer.masked_loss
pause = float(os.environ.get("SLOW_RECORD_PAUSE", "0.04"))
def slow(*args, **kwargs):
    time.sleep(pause)
    return real(*args, **kwargs)
trainer.masked_loss = slow
from gradscope.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def _start_slow(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_RECORD, *argv], cwd=cwd, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run did not get far enough in time")
        time.sleep(0.05)


def _trace_rows(path: Path) -> int:
    try:
        return open_trace(path).steps.rows
    except (GradscopeError, OSError):  # not created yet, or caught mid-creation
        return 0


def test_sigkill_leaves_a_readable_trace_and_checkpoint(regression_csv, tmp_path):
    out = tmp_path / "run"
    argv = record_args(regression_csv, out, "--optimizer", "graphsam", "--flush-every", "2", "--quiet",
                       epochs=4, batch_size=2)  # 19 training molecules: 10 steps per epoch
    proc = _start_slow(argv, tmp_path)
    ckpt_path = out / "checkpoints" / "last.pt"
    _wait_for(proc, lambda: ckpt_path.is_file() and _trace_rows(out / "trace.h5") >= 14)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    trace = open_trace(out / "trace.h5")
    rows = trace.steps.rows
    assert 14 <= rows < 40
    np.testing.assert_array_equal(trace.steps.step, np.arange(rows))
    assert np.all(np.isfinite(trace.steps.omega_norm)) and np.all(np.isfinite(trace.steps.eps_norm))
    assert trace.epochs.rows >= 1 and np.all(np.isfinite(trace.epochs.val_rmse))
    ckpt = torch.load(ckpt_path, weights_only=True)  # written atomically: never torn
    assert ckpt["batch"] == 0 and 10 <= ckpt["step"] <= rows and ckpt["step"] % 10 == 0
    assert not list((out / "checkpoints").glob(".*tmp*"))  # or the kill hit between write and rename
    # resuming drops the steps recorded after that checkpoint and redoes them: each step once
    assert main(["record", "--resume", str(out), "--quiet"]) == 0
    trace = open_trace(out / "trace.h5")
    np.testing.assert_array_equal(trace.steps.step, np.arange(40))
    np.testing.assert_array_equal(trace.epochs.epoch, np.arange(4))


def test_ctrl_c_finishes_the_step_checkpoints_and_exits_130(regression_csv, tmp_path):
    out = tmp_path / "run"
    argv = record_args(regression_csv, out, "--optimizer", "sam", "--flush-every", "64", epochs=4, batch_size=2)
    proc = _start_slow(argv, tmp_path)
    # the trace is flushed only at epoch ends here: wait for epoch 1's rows, then a little into epoch 2
    _wait_for(proc, lambda: _trace_rows(out / "trace.h5") >= 10)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"Continue with: gradscope record --resume {out}" in stdout
    assert "Traceback" not in stderr
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    trace = open_trace(out / "trace.h5")
    assert trace.steps.rows == ckpt["step"] > 10  # every step taken is in the trace
    assert (ckpt["epoch"], ckpt["batch"]) == divmod(ckpt["step"], 10)
    assert main(["record", "--resume", str(out), "--quiet"]) == 0
    np.testing.assert_array_equal(open_trace(out / "trace.h5").steps.step, np.arange(40))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_cpu_processes_match_one_process(moleculenet_dir, tmp_path):
    """Global batch 8 = 2 ranks × 4; 40 molecules → 32 training → 4 full batches per epoch.

    DDP averages the two ranks' mean-loss gradients, which equals the global mean-loss gradient
    on equal shards, so the runs agree up to float32 reduction order (tolerance of
    gradscope.train.distributed: 1e-5 relative; 1e-5 absolute for cosines near 0).
    """
    data = write_regression_csv(moleculenet_dir, tmp_path / "mols40.csv", 40)
    ddp, single = tmp_path / "ddp", tmp_path / "single"

    def torchrun(*argv: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), "-m", "gradscope", *argv]
        proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    # one epoch, then a resume under torchrun to the second: DDP and resume together
    proc = torchrun(*record_args(data, ddp, "--optimizer", "graphsam", "--quiet", epochs=1))
    assert proc.stdout.count("wrote ") == 1  # rank 0 reports, rank 1 stays silent
    torchrun("record", "--resume", str(ddp), "--epochs", "2", "--quiet")
    assert main(record_args(data, single, "--optimizer", "graphsam", "--quiet")) == 0

    # only rank 0 wrote (and held the run's lock): exactly one run's files, no stray temporaries
    assert sorted(p.relative_to(ddp).as_posix() for p in ddp.rglob("*")) == [
        ".gradscope.lock", "checkpoints", "checkpoints/best.pt", "checkpoints/last.pt", "config.json", "trace.h5"]
    a, b = open_trace(ddp / "trace.h5"), open_trace(single / "trace.h5")
    assert a.steps.rows == b.steps.rows == 8
    for name in ("step", "epoch", "anchored", "grad_evals", "batch_size"):
        np.testing.assert_array_equal(a.steps[name], b.steps[name], err_msg=name)
    fresh = np.arange(8) != 4
    for name in ("loss", "loss_perturbed", "eps_norm", "eps_hat_norm", "omega_norm"):
        np.testing.assert_allclose(a.steps[name], b.steps[name], rtol=1e-5, err_msg=name)
    for name in ("eps_change", "omega_change"):
        np.testing.assert_allclose(a.steps[name][fresh], b.steps[name][fresh], rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(a.steps.cos_eps_omega, b.steps.cos_eps_omega, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.steps.cos_eps_prev_omega[fresh], b.steps.cos_eps_prev_omega[fresh], rtol=1e-5,
                               atol=1e-5)
    # (the resumed recorder has no previous step at step 4: NaN there, like at step 0)
    np.testing.assert_array_equal(np.isnan(a.steps.omega_change), np.isin(np.arange(8), [0, 4]))
    for name in ("train_loss", "val_loss", "val_rmse", "test_rmse", "attention_entropy"):
        np.testing.assert_allclose(a.epochs[name], b.epochs[name], rtol=1e-5, err_msg=name)
    # weights agree too, except where the true gradient is 0 (the key bias of attention and the
    # pair bias's last bias: softmax ignores a constant added to a row), where Adam turns
    # rounding noise into ±lr steps; those entries are found from the gradient itself
    wa = torch.load(ddp / "checkpoints" / "last.pt", weights_only=True)["model_state"]
    wb = torch.load(single / "checkpoints" / "last.pt", weights_only=True)["model_state"]
    informative = _informative_entries(single)
    assert sum(int(k.sum()) for k in informative.values()) > 0.5 * sum(k.numel() for k in informative.values())
    for name in wa:
        keep = informative[name]
        torch.testing.assert_close(wa[name][keep], wb[name][keep], rtol=1e-5, atol=1e-5, msg=name)
        assert (wa[name] - wb[name]).abs().max() <= 8 * 1e-3 * 1.01  # at most one lr per step elsewhere


def _informative_entries(run_dir: Path) -> dict[str, torch.Tensor]:
    """Entries of each parameter whose gradient over the training set is not ~0 (|g| > 1e-6)."""
    from gradscope.train.build import load_run
    from gradscope.train.objective import masked_loss

    run = load_run(run_dir, which="last")
    params = dict(run.model.named_parameters())
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    for batch in run.data.batches("train", 8):
        run.model.zero_grad()
        masked_loss(run.model(batch), batch, "regression").backward()
        for name, p in params.items():
            grads[name] = torch.maximum(grads[name], p.grad.abs())
    return {name: g > 1e-6 for name, g in grads.items()}


def test_ctrl_c_under_torchrun_stops_every_rank_after_the_same_step(moleculenet_dir, tmp_path):
    """A terminal's Ctrl-C reaches torchrun, which forwards SIGINT to each worker."""
    data = write_regression_csv(moleculenet_dir, tmp_path / "mols40.csv", 40)
    script = tmp_path / "slow_record.py"
    script.write_text(SLOW_RECORD)
    out = tmp_path / "ddp"
    argv = record_args(data, out, "--optimizer", "sam", "--flush-every", "1", "--quiet", epochs=2, batch_size=2)
    port = str(_free_port())
    base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    proc = subprocess.Popen([*base, "--master_port", port, str(script), *argv], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(proc, lambda: _trace_rows(out / "trace.h5") >= 4)
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground process group
    stdout, stderr = proc.communicate(timeout=120)
    assert f"Continue with: gradscope record --resume {out}" in stdout, stderr[-3000:]
    ckpt = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert open_trace(out / "trace.h5").steps.rows == ckpt["step"] < 32
    # and the same torchrun command resumes it to the end
    resume = subprocess.run([*base, "--master_port", str(_free_port()), "-m", "gradscope", "record", "--resume",
                             str(out), "--quiet"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=300)
    assert resume.returncode == 0, resume.stderr[-3000:]
    np.testing.assert_array_equal(open_trace(out / "trace.h5").steps.step, np.arange(32))


def _vote_worker(rank: int, port: int, results) -> None:  # noqa: ANN001
    import torch.distributed as dist

    from gradscope.train import distributed as D

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    info = D.DistInfo(rank=rank, world_size=2)
    vote = D.StopVote(info)
    # step 1: nobody asked; step 2: only rank 1 asked; step 3: only rank 0 asked
    results[rank] = [vote.any(False), vote.any(rank == 1), vote.any(rank == 0)]
    dist.destroy_process_group()


def test_stop_vote_makes_every_rank_stop_when_one_is_asked():
    import torch.multiprocessing as mp

    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_vote_worker, args=(_free_port(), results), nprocs=2, join=True)
        assert dict(results) == {0: [False, True, True], 1: [False, True, True]}
