"""What a training loop does to a gradscope optimizer at epoch boundaries, for loops not written by gradscope.

``gradscope record`` (:class:`gradscope.train.trainer.Trainer`) calls the method's registry hooks
(:mod:`gradscope.optim.registry`): at the start of an epoch ``Method.start_epoch`` (``anchor()`` every
K epochs for GraphSAM and SAM-One per epoch — Wang et al., ICLR 2024, Algorithm 1 computes ε exactly
at each epoch's first step —, nothing for the paper's SAM-One, whose one anchor is the run's first
step, ``epoch_step(epoch)`` for the released GraphSAM code); at the end of an epoch the ρ schedule
ρ = ρ₀·γ^⌊epoch/λ⌋ (:class:`~gradscope.optim.StepRho`) of the methods that have one.

:class:`EpochHooks` does the same for a Lightning callback, a chemprop run or a hand-written loop,
reading the same registry entries rather than restating them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from gradscope.optim import SharpnessAware, StepRho, StepRhoConfig
from gradscope.optim.registry import Method, get_method, methods

#: The paper's ρ schedule (γ = 0.5 every λ = 1 epoch), what ``gradscope record`` uses by default.
PAPER_RHO_SCHEDULE = StepRhoConfig()


def method_of(optimizer: torch.optim.Optimizer, name: str | None = None) -> Method | None:
    """The registry entry of a gradscope optimizer: ``name`` when given, else the first method of its
    class (``SAMOne`` → ``"sam-one"``; pass ``"sam-one-epoch"`` for the per-epoch variant); None for
    any other optimizer."""
    if name is not None:
        return get_method(name)
    return next((m for m in methods() if not m.plain and type(optimizer) is m.optimizer), None)


def method_name(optimizer: torch.optim.Optimizer) -> str | None:
    """The registry name of a gradscope optimizer (``"graphsam"``), None for any other optimizer."""
    method = method_of(optimizer)
    return method.name if method is not None else None


class EpochHooks:
    """Anchor at epoch starts and step ρ at epoch ends, as ``gradscope record`` does.

    Args:
        optimizer: any optimizer; only gradscope's sharpness-aware ones are touched.
        method: the registry name when the class alone does not say it (``"sam-one-epoch"``).
        anchor_every: GraphSAM-K's K (anchor every K epochs; 1: every epoch), for the methods that
            anchor per epoch.
        rho_schedule: the ρ schedule (a :class:`StepRhoConfig`); None keeps ρ constant.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, method: str | None = None, anchor_every: int = 1,
                 rho_schedule: StepRhoConfig | None = PAPER_RHO_SCHEDULE) -> None:
        self.optimizer = optimizer
        self.method = method_of(optimizer, method)
        self.name = self.method.name if self.method is not None else None
        self.epoch_step = getattr(optimizer, "epoch_step", None)
        self._settings: Any = None
        self.rho_schedule: StepRho | None = None
        if self.method is not None:
            names = {f.name for f in dataclasses.fields(self.method.settings)}
            given = {"anchor_every_epochs": anchor_every} if "anchor_every_epochs" in names else None
            self._settings = self.method.make_settings(given)
            if rho_schedule is not None:
                self.rho_schedule = self.method.build_rho_schedule(optimizer, rho_schedule)

    @property
    def sharpness_aware(self) -> bool:
        return isinstance(self.optimizer, SharpnessAware)

    def anchors_at(self, epoch: int) -> bool:
        """Whether the start of ``epoch`` anchors (ε computed exactly at its first step)."""
        return self.method is not None and self.epoch_step is None and self.method.anchors_at(self._settings, epoch)

    def start(self, epoch: int) -> None:
        """Call before the first step of ``epoch`` (0-based)."""
        if self.method is not None:
            self.method.start_epoch(self.optimizer, self._settings, epoch)

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
