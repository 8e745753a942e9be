"""`gradscope record --precision fp16`: GradScaler loss scaling, ε/ω recorded unscaled, exact resume.

GradScaler starts at a loss scale of 2^16, which overflows fp16 gradients on the first steps: those
steps are skipped (θ unchanged) and marked in the trace's ``skipped`` column (a plain torch
optimizer's skipped step never reaches it and writes no row). The reference is the same run in fp32:
the first step's loss is the same (same weights, same batch), the recorded ‖ω‖ lies in the fp32
run's range (unscaled gradients, not 2^15 times larger) and the probe's exact gradient agrees with
SAM's own exact ε.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gradscope.train.checkpoint import Checkpoint
from gradscope.train.config import RecordConfig
from gradscope.train.loop import record
from gradscope.trace import open_trace


def _run(data: Path, out: Path, optimizer: str, precision: str, **changes) -> Path:
    config = RecordConfig(data=str(data), model="tiny", epochs=2, batch_size=8, device="cpu", optimizer=optimizer,
                          precision=precision, **changes)
    record(config, out, quiet=True)
    return out


@pytest.mark.parametrize("optimizer", ["sam", "graphsam", "adam"])
def test_fp16_records_unscaled_gradients_that_match_fp32(optimizer: str, regression_csv: Path, tmp_path: Path) -> None:
    extra = {} if optimizer == "adam" else {"probe_exact_every": 1}
    ref = open_trace(_run(regression_csv, tmp_path / "fp32", optimizer, "fp32", **extra) / "trace.h5")
    half = open_trace(_run(regression_csv, tmp_path / "fp16", optimizer, "fp16", **extra) / "trace.h5")
    s32, s16 = ref.steps, half.steps
    taken = s16["skipped"] == 0
    if optimizer == "adam":  # skipped steps write no row; every row is a step taken
        assert 0 < len(taken) < len(s32["step"]) and taken.all()
    else:
        assert s16["loss"][0] == pytest.approx(s32["loss"][0], rel=0.02)  # same weights, same batch
        assert not taken[0] and taken.sum() >= 3  # 2^16 overflows at first; the scale backs off
        assert np.all(~np.isfinite(s16["omega_norm"][~taken]))
        assert np.all(np.isfinite(s16["omega_norm"][taken]))
        if optimizer == "sam":  # SAM's ε is the exact gradient: the probe (unscaled) must say the same
            np.testing.assert_allclose(s16["eps_exact_norm"][taken], s16["eps_norm"][taken], rtol=1e-5)
        assert np.nanmax(s16["eps_hat_norm"][taken]) <= 0.05 * (1 + 1e-4)
    top = np.nanmax(s32["omega_norm"])
    assert 0 < np.max(s16["omega_norm"][taken]) < 3 * top  # unscaled: fp32's range, not 2^15 × it


def test_fp16_checkpoint_carries_the_loss_scale_and_resume_continues_it(regression_csv: Path, tmp_path: Path) -> None:
    out = _run(regression_csv, tmp_path / "run", "graphsam", "fp16")
    ckpt = Checkpoint.read(out / "checkpoints" / "last.pt")
    assert ckpt.config.precision == "fp16"
    assert ckpt.scaler_state is not None and ckpt.scaler_state["scale"] > 0
    torch.load(out / "checkpoints" / "last.pt", weights_only=True)  # still a weights-only file
    config = RecordConfig(data=str(regression_csv), model="tiny", epochs=3, batch_size=8, device="cpu",
                          optimizer="graphsam", precision="fp16")
    result = record(config, out, resume=True, quiet=True)
    assert len(result.history) == 3 and not result.interrupted
