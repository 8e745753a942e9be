"""AE-SAM: SAM only where the loss landscape looks sharp.

Jiang, Yang, Zhang & Kwok (2023), "An Adaptive Policy to Employ Sharpness-Aware
Minimization", ICLR 2023, Sec. 3 and Algorithm 1. Every step computes g = ∇L_B(θ_t) and keeps
exponential moving estimates of the mean and variance of ‖g‖² (forgetting rate δ):

    μ_t  = δ·μ_{t−1}  + (1−δ)·‖g‖²
    σ²_t = δ·σ²_{t−1} + (1−δ)·(‖g‖² − μ_t)²
    if ‖g‖² ≥ μ_t + c_t·σ_t:  SAM step (ε = g, ε̂ = ρ·g/‖g‖, ω = ∇L_B(θ_t + ε̂))   2 passes
    else:                     ERM step (ω = g)                                     1 pass

with the threshold schedule c_t = c₁ + (c₂ − c₁)·t/T, linear over the T = ``total_steps`` of
training (c₁ = −1, c₂ = 1 as in the paper's experiments: many SAM steps early, few late). When
``total_steps`` is not given, c_t = ``c`` (default 0, the schedule's midpoint). μ and σ² start
at 0.

Host read: choosing between the SAM and the ERM step needs the comparison on the host. That is
inherent to the algorithm, and it is the one host read per step of any gradscope optimizer
(one ``bool`` of a 0-d device tensor; on a GPU it waits for the first pass to finish).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_finite, check_positive_int, check_rho, check_unit_interval
from gradscope.optim.core import Closure, Outcome, SharpnessAware


@dataclass(frozen=True)
class AESAMConfig:
    """AE-SAM's hyperparameters (see the module docstring)."""

    rho: float = 0.05
    delta: float = 0.9
    c1: float = -1.0
    c2: float = 1.0
    total_steps: int | None = None
    c: float = 0.0

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_unit_interval("delta", self.delta, closed_right=False)
        for name in ("c1", "c2", "c"):
            check_finite(name, getattr(self, name))
        if self.total_steps is not None:
            check_positive_int("total_steps", self.total_steps)

    def threshold(self, t: int) -> float:
        """c_t for step t (0-based): linear from c1 to c2 over total_steps, else constant c."""
        if self.total_steps is None:
            return self.c
        return self.c1 + (self.c2 - self.c1) * min(t / self.total_steps, 1.0)


class AESAM(SharpnessAware):
    """AE-SAM (Jiang et al., 2023): a SAM step when ‖g‖² is high for its recent history, else ERM.

    ``AESAM(params, base_optimizer=torch.optim.Adam, rho=0.05, delta=0.9, c1=-1.0, c2=1.0,
    total_steps=None, c=0.0, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        delta: float = 0.9,
        c1: float = -1.0,
        c2: float = 1.0,
        total_steps: int | None = None,
        c: float = 0.0,
        **base_kwargs: Any,
    ) -> None:
        self.config = AESAMConfig(rho=rho, delta=delta, c1=c1, c2=c2, total_steps=total_steps, c=c)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._g = self._layout.buffer()
        device = self._layout.device
        self._mu = torch.zeros((), device=device)  # running mean of ‖g‖²
        self._var = torch.zeros((), device=device)  # running variance of ‖g‖²

    def _sharpness_step(self, closure: Closure) -> Outcome:
        loss = self._gradient(closure, into=self._g)
        g = self._g.data
        sq = torch.dot(g, g)
        d = self.config.delta
        self._mu.mul_(d).add_(sq, alpha=1.0 - d)
        self._var.mul_(d).add_((sq - self._mu).square(), alpha=1.0 - d)
        sharp = sq >= self._mu + self.config.threshold(self._t) * self._var.sqrt()
        if bool(sharp):  # the documented host read (the algorithm's SAM/ERM decision)
            return self._sam_update(closure, self._g, loss)
        return self._erm_update(self._g, loss)

    def _snapshot(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mu.clone(), self._var.clone()

    def _rollback(self, snapshot: tuple[torch.Tensor, torch.Tensor]) -> None:
        self._mu.copy_(snapshot[0])
        self._var.copy_(snapshot[1])

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "mu": self._mu.clone(), "var": self._var.clone()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        self._mu.copy_(extra["mu"])
        self._var.copy_(extra["var"])


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="ae-sam", display_name="AE-SAM", optimizer=AESAM, settings=AESAMConfig, rho_schedule=True,
    summary="AE-SAM (Jiang et al. 2023): a SAM step where ‖g‖² is high for its recent history, else ERM",
    help={
        "delta": "δ in [0, 1): forgetting rate of the moving mean and variance of ‖g‖²",
        "c1": "c₁: threshold at the first step; a SAM step when ‖g‖² ≥ μ + c_t·σ, c_t linear from c₁ to c₂",
        "c2": "c₂: threshold at the last step of the run (c_t = c₁ + (c₂ − c₁)·t/T)",
    },
    # T is the run's length; the constant threshold c applies only without T, which a run always gives
    from_run={"total_steps": lambda run: run.total_steps},
    hidden=("c",),
))
