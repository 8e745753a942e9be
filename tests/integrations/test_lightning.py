"""GradscopeCallback and SharpnessAwareMixin: Lightning records the same trace as a plain gradscope loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

import gradscope  # noqa: E402
from gradscope.errors import GradscopeError  # noqa: E402
from gradscope.integrations.lightning import GradscopeCallback  # noqa: E402
from tests.integrations import lightning_kit as kit  # noqa: E402


def _assert_same_columns(got: gradscope.Trace, want: gradscope.Trace, names=kit.COMPARED, rtol=1e-5) -> None:
    assert len(got) == len(want) > 0
    for name in names:
        np.testing.assert_allclose(got.steps[name], want.steps[name], rtol=rtol, atol=1e-7, equal_nan=True,
                                   err_msg=name)


@pytest.mark.parametrize("module", [kit.AutoModule, kit.MixinModule], ids=["automatic", "mixin"])
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_lightning_trace_equals_plain_loop(tmp_path, module, precision) -> None:
    ref = tmp_path / "plain.h5"
    kit.plain_loop(ref, bf16=precision == "bf16-mixed")
    path = tmp_path / "lightning.h5"
    kit.trainer(precision=precision, callbacks=[GradscopeCallback(path)]).fit(module(), kit.loader())
    got, want = gradscope.open_trace(path), gradscope.open_trace(ref)
    _assert_same_columns(got, want)
    assert list(got.steps.anchored) == [1, 0, 0, 1, 0, 0]  # an exact ε at each epoch's first step
    assert list(got.steps.rho) == pytest.approx([0.05] * 3 + [0.025] * 3)
    assert list(got.steps.batch_size) == [16] * 6
    assert got.config["integration"] == "lightning" and got.config["optimizer"] == "graphsam"
    assert got.config["precision"] == precision
    np.testing.assert_allclose(got.epochs["rho"], [0.05, 0.025])
    assert list(got.epochs["steps"]) == [3, 6] and list(got.epochs["grad_evals"]) == [4, 4]


def test_plain_optimizer_is_recorded_like_a_plain_loop(tmp_path) -> None:
    adam = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
    ref, path = tmp_path / "plain.h5", tmp_path / "lightning.h5"
    kit.plain_loop(ref, make_optimizer=adam)
    kit.trainer(callbacks=[GradscopeCallback(path)]).fit(kit.MixinModule(adam), kit.loader())
    got = gradscope.open_trace(path)
    _assert_same_columns(got, gradscope.open_trace(ref), names=("loss", "omega_norm", "omega_change", "lr"))
    assert np.isnan(got.steps.eps_norm).all() and np.isnan(got.steps.rho).all()
    assert got.config["optimizer"] == "Adam"


def _fp16_with_scaler() -> dict:
    # on CPU Lightning turns precision="16-mixed" into bf16; the plugin keeps fp16 and its GradScaler
    from lightning.pytorch.plugins import MixedPrecision

    return {"plugins": [MixedPrecision("16-mixed", device="cpu", scaler=torch.amp.GradScaler("cpu"))]}


@pytest.mark.parametrize("kwargs, message", [
    ({"accumulate_grad_batches": 2}, "accumulate_grad_batches=2 with GraphSAM"),
    (None, "use precision='bf16-mixed'"),
])
def test_refuses_what_breaks_the_measurement(tmp_path, kwargs, message) -> None:
    path = tmp_path / "t.h5"
    kwargs = kwargs if kwargs is not None else _fp16_with_scaler()
    with pytest.raises(GradscopeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kit.trainer(callbacks=[GradscopeCallback(path)], **kwargs).fit(kit.AutoModule(), kit.loader())
    assert not path.exists()


def test_accumulation_is_fine_for_a_plain_optimizer(tmp_path) -> None:
    adam = lambda params: torch.optim.Adam(params, lr=1e-2)  # noqa: E731
    path = tmp_path / "t.h5"
    kit.trainer(callbacks=[GradscopeCallback(path)], accumulate_grad_batches=3).fit(kit.AutoModule(adam), kit.loader())
    assert len(gradscope.open_trace(path)) == 2  # one optimizer step per 3 batches


def test_anchor_every_and_constant_rho(tmp_path) -> None:
    path = tmp_path / "t.h5"
    cb = GradscopeCallback(path, anchor_every=2, rho_schedule=None)
    kit.trainer(epochs=3, callbacks=[cb]).fit(kit.MixinModule(), kit.loader())
    steps = gradscope.open_trace(path).steps
    assert list(steps.anchored) == [1, 0, 0, 0, 0, 0, 1, 0, 0]  # GraphSAM-2: epochs 0 and 2
    assert list(steps.grad_evals) == [2, 1, 1, 1, 1, 1, 2, 1, 1]
    assert set(steps.rho) == {0.05}


def test_trainer_loggers_get_the_flushed_values(tmp_path) -> None:
    from lightning.pytorch.loggers import CSVLogger

    path = tmp_path / "t.h5"
    logger = CSVLogger(tmp_path / "logs", name="run")
    cb = GradscopeCallback(path, log_every_n_steps=2, flush_every=4, epoch_metrics=["train_loss_step"])
    kit.trainer(callbacks=[cb], logger=logger).fit(kit.AutoModule(), kit.loader())
    import csv

    rows = list(csv.DictReader(open(next((tmp_path / "logs").rglob("metrics.csv")))))
    logged = {int(r["step"]): float(r["gradscope/omega_norm"]) for r in rows if r.get("gradscope/omega_norm")}
    steps = gradscope.open_trace(path).steps
    assert sorted(logged) == [0, 2, 4]
    for step, value in logged.items():
        assert value == pytest.approx(float(steps.omega_norm[step]), rel=1e-6)
    trace = gradscope.open_trace(path)
    assert np.isfinite(trace.epochs["train_loss"]).all() and "train_loss_step" in trace.epochs


def test_rho_schedule_resumes_from_a_lightning_checkpoint(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    kit.trainer(epochs=1, callbacks=[GradscopeCallback(tmp_path / "a.h5"), ckpt], enable_checkpointing=True
                ).fit(kit.MixinModule(), kit.loader())
    kit.trainer(epochs=2, callbacks=[GradscopeCallback(tmp_path / "b.h5")]).fit(
        kit.MixinModule(), kit.loader(), ckpt_path=str(tmp_path / "ck" / "last.ckpt"))
    steps = gradscope.open_trace(tmp_path / "b.h5").steps
    assert list(steps.rho) == [0.025] * 3 and list(steps.epoch) == [1] * 3 and list(steps.anchored) == [1, 0, 0]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--mixin", "--auto"])
def test_two_process_ddp_records_the_global_gradient(tmp_path, mode) -> None:
    """2 ranks × 16 samples (DistributedSampler: even/odd rows) = one process with batches of 32."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_run.py")
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "WORLD_SIZE", "RANK")}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "ddp.h5"), mode], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ref = tmp_path / "plain.h5"
    kit.plain_loop(ref, batch_size=32)
    got = gradscope.open_trace(tmp_path / "ddp.h5")
    _assert_same_columns(got, gradscope.open_trace(ref), rtol=1e-4, names=(
        "anchored", "rho", "eps_norm", "omega_norm", "eps_change", "omega_change", "cos_eps_omega",
        "cos_eps_prev_omega"))
    assert list(got.steps.batch_size) == [32, 16] * 2 and got.config["world_size"] == 2
