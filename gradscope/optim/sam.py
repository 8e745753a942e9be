"""SAM: sharpness-aware minimization.

Foret, Kleiner, Mobahi & Neyshabur (2021), "Sharpness-Aware Minimization for Efficiently
Improving Generalization", ICLR 2021, eq. 2 and Algorithm 1:

    ε_t = ∇L_B(θ_t),   ε̂_t = ρ·ε_t/‖ε_t‖₂ (global norm),   ω_t = ∇L_B(θ_t + ε̂_t),
    θ_{t+1} = base_step(θ_t, ω_t).

Two forward-backward passes per step; every step is an anchor (ε_t is exact).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_rho
from gradscope.optim.core import Closure, Outcome, SharpnessAware


@dataclass(frozen=True)
class SAMConfig:
    """SAM's hyperparameters. ``rho``: radius of the ascent (ρ ≥ 0)."""

    rho: float = 0.05

    def __post_init__(self) -> None:
        check_rho(self.rho)


class SAM(SharpnessAware):
    """SAM (Foret et al., 2021). 2 passes per step.

    ``SAM(params, base_optimizer=torch.optim.Adam, rho=0.05, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        **base_kwargs: Any,
    ) -> None:
        self.config = SAMConfig(rho=rho)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._eps = self._layout.buffer()

    def _sharpness_step(self, closure: Closure) -> Outcome:
        loss = self._gradient(closure, into=self._eps)
        return self._sam_update(closure, self._eps, loss)


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="sam", display_name="SAM", optimizer=SAM, settings=SAMConfig, rho_schedule=True,
    summary="SAM (Foret et al. 2021): exact ε every step; 2 passes per step",
))
