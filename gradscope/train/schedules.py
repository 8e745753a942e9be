"""Learning-rate schedules for the record loop (besides constant)."""
from __future__ import annotations

import torch

#: The learning-rate schedules of `gradscope record --lr-schedule`.
LR_SCHEDULES: tuple[str, ...] = ("constant", "noam")


def noam_lambda(warmup_steps: int):
    """The Noam warm-up of Vaswani et al. 2017 as CoMPT uses it, scaled so the peak factor is 1.

    factor(s) = min((s+1)/warmup, sqrt(warmup/(s+1))): linear warm-up over ``warmup_steps``
    optimizer steps, then inverse-square-root decay. Multiplies the base learning rate.
    """
    warmup = max(1, int(warmup_steps))

    def factor(step: int) -> float:
        s = step + 1
        return min(s / warmup, (warmup / s) ** 0.5)

    return factor


def build_lr_scheduler(optimizer: torch.optim.Optimizer, kind: str, warmup_steps: int):
    """A torch LR scheduler stepped once per optimizer step, or None for a constant LR."""
    if kind == "constant":
        return None
    if kind == "noam":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, noam_lambda(warmup_steps))
    raise ValueError(f"unknown lr schedule {kind!r}")
