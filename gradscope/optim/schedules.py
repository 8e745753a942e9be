"""Schedules for ρ, stepped once per epoch like torch's LR schedulers.

GraphSAM (Wang et al., ICLR 2024, Sec. 4.2) decays ρ in steps over epochs:
ρ_epoch = ρ_initial·γ^⌊epoch/λ⌋ (defaults γ = 0.5, λ = 1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gradscope.errors import ConfigError
from gradscope.optim.checks import check_positive, check_positive_int
from gradscope.optim.core import SharpnessAware


@dataclass(frozen=True)
class StepRhoConfig:
    """``step_size`` λ ≥ 1 (epochs per decay), ``gamma`` γ in (0, 1] (factor per decay; 1 keeps ρ).

    `gradscope record` shows them as ``--rho-step`` and ``--gamma`` (the ``flag`` metadata).
    """

    step_size: int = field(default=1, metadata={
        "flag": "--rho-step", "help": "λ: epochs between two decays of ρ (ρ = ρ₀·γ^⌊epoch/λ⌋)"})
    gamma: float = field(default=0.5, metadata={
        "help": "γ: factor of each decay of ρ, in (0, 1] (ρ = ρ₀·γ^⌊epoch/λ⌋; 1 keeps ρ constant)"})

    def __post_init__(self) -> None:
        check_positive_int("step_size", self.step_size)
        check_decay_factor("gamma", self.gamma)


def check_decay_factor(name: str, value: float) -> None:
    """A decay factor lies in (0, 1]: ρ shrinks (or, with 1, stays); it never grows."""
    check_positive(name, value)
    if value > 1:
        raise ConfigError(f"{name} must lie in (0, 1] (a decay factor; 1 keeps ρ constant), got {value!r}")


class StepRho:
    """ρ = ρ_initial·γ^⌊epoch/λ⌋, where ρ_initial is the optimizer's ρ at construction.

    Call ``step()`` once at the end of every epoch (as with ``torch.optim.lr_scheduler.StepLR``);
    it sets ``optimizer.rho`` for the next epoch.
    """

    def __init__(self, optimizer: SharpnessAware, step_size: int = 1, gamma: float = 0.5) -> None:
        if not isinstance(optimizer, SharpnessAware):
            raise ConfigError(f"StepRho needs a gradscope sharpness-aware optimizer, got {type(optimizer).__name__}")
        self.config = StepRhoConfig(step_size=step_size, gamma=gamma)
        self.optimizer = optimizer
        self.rho_initial = optimizer.rho
        self.last_epoch = 0

    def rho_at(self, epoch: int) -> float:
        """ρ for a given epoch."""
        return self.rho_initial * self.config.gamma ** (epoch // self.config.step_size)

    def step(self) -> None:
        """Advance one epoch and set the optimizer's ρ."""
        self.last_epoch += 1
        self.optimizer.rho = self.rho_at(self.last_epoch)

    def get_last_rho(self) -> float:
        """The ρ set by the latest ``step()`` (ρ_initial before any)."""
        return self.rho_at(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        return {
            "rho_initial": self.rho_initial,
            "last_epoch": self.last_epoch,
            "step_size": self.config.step_size,
            "gamma": self.config.gamma,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.config = StepRhoConfig(step_size=int(state_dict["step_size"]), gamma=float(state_dict["gamma"]))
        self.rho_initial = float(state_dict["rho_initial"])
        self.last_epoch = int(state_dict["last_epoch"])
        self.optimizer.rho = self.rho_at(self.last_epoch)
