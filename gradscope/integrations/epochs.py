"""What a training loop does to a gradscope optimizer at epoch boundaries, for loops not written by gradscope.

``gradscope record`` (:mod:`gradscope.train.loop`) does three things per epoch besides stepping:

* at the start of an epoch it calls ``optimizer.epoch_step(epoch)`` when the method has one
  (the released GraphSAM code compounds ρ and anchors itself), otherwise ``optimizer.anchor()``
  where :func:`gradscope.train.build.anchors_at` says so (GraphSAM and SAM-One, every
  ``anchor_every`` epochs: Wang et al., ICLR 2024, Algorithm 1 computes ε exactly at each
  epoch's first step);
* at the end of an epoch it steps the ρ schedule, ρ = ρ₀·γ^⌊epoch/λ⌋ (:class:`~gradscope.optim.StepRho`;
  not for the released GraphSAM, which schedules ρ itself).

:class:`EpochHooks` does the same for a Lightning callback, a chemprop run or a hand-written
loop, reading the same rule (``anchors_at``) rather than restating it.
"""
from __future__ import annotations

from typing import Any

import torch

from gradscope.optim import OPTIMIZERS, SharpnessAware, StepRho, StepRhoConfig

#: The paper's ρ schedule (γ = 0.5 every λ = 1 epoch), what ``gradscope record`` uses by default.
PAPER_RHO_SCHEDULE = StepRhoConfig()


def method_name(optimizer: torch.optim.Optimizer) -> str | None:
    """The registry name of a gradscope optimizer (``"graphsam"``), None for any other optimizer."""
    for name, cls in OPTIMIZERS.items():
        if type(optimizer) is cls:
            return name
    return None


class EpochHooks:
    """Anchor at epoch starts and step ρ at epoch ends, as ``gradscope record`` does.

    Args:
        optimizer: any optimizer; only gradscope's sharpness-aware ones are touched.
        anchor_every: GraphSAM-K's K (anchor every K epochs; 1: every epoch).
        rho_schedule: the ρ schedule (a :class:`StepRhoConfig`); None keeps ρ constant.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, anchor_every: int = 1,
                 rho_schedule: StepRhoConfig | None = PAPER_RHO_SCHEDULE) -> None:
        from gradscope.train.config import RecordConfig

        self.optimizer = optimizer
        self.name = method_name(optimizer)
        self.epoch_step = getattr(optimizer, "epoch_step", None)
        self._config = RecordConfig(optimizer=self.name, anchor_every=anchor_every) if self.name else None
        self.rho_schedule: StepRho | None = None
        if rho_schedule is not None and isinstance(optimizer, SharpnessAware) and self.epoch_step is None:
            self.rho_schedule = StepRho(optimizer, step_size=rho_schedule.step_size, gamma=rho_schedule.gamma)

    @property
    def sharpness_aware(self) -> bool:
        return isinstance(self.optimizer, SharpnessAware)

    def anchors_at(self, epoch: int) -> bool:
        """Whether the start of ``epoch`` anchors (ε computed exactly at its first step)."""
        from gradscope.train.build import anchors_at

        return self._config is not None and self.epoch_step is None and anchors_at(self._config, epoch)

    def start(self, epoch: int) -> None:
        """Call before the first step of ``epoch`` (0-based)."""
        if self.epoch_step is not None:
            self.epoch_step(epoch)
        elif self.anchors_at(epoch):
            self.optimizer.anchor()  # type: ignore[attr-defined]

    def end(self) -> None:
        """Call after the last step of an epoch."""
        if self.rho_schedule is not None:
            self.rho_schedule.step()

    @property
    def rho(self) -> float:
        """ρ of the next step (NaN for a plain optimizer)."""
        return float(getattr(self.optimizer, "rho", float("nan")))

    def state_dict(self) -> dict[str, Any]:
        return {"rho_schedule": self.rho_schedule.state_dict() if self.rho_schedule is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.rho_schedule is not None and state.get("rho_schedule") is not None:
            self.rho_schedule.load_state_dict(state["rho_schedule"])
