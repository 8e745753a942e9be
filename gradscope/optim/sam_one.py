"""SAM-One: the perturbation gradient computed once, then reused.

A baseline of Wang et al. (2024), "Efficient Sharpness-Aware Minimization for Molecular Graph
Transformer Models", ICLR 2024 (Sec. 5): ε_t = ∇L_B(θ_t) only at an anchor (the first step and
whenever ``anchor()`` is called), otherwise ε_t = ε_{t−1} unchanged; ε̂_t = ρ·ε_t/‖ε_t‖₂,
ω_t = ∇L_B(θ_t + ε̂_t). It is GraphSAM with β = 1 and shares its code. 1 pass per step, 2 at
anchors. The paper's SAM-One computes ε once, at the beginning of training (ε_t = ε_0): that is
``sam-one`` in the registry (one anchor for the whole run); ``sam-one-epoch`` anchors at the start
of every K-th epoch instead, as gradscope's ``sam-one`` did before.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch

from gradscope.optim.graphsam import ReusedPerturbation
from gradscope.optim.sam import SAMConfig


class SAMOne(ReusedPerturbation):
    """SAM-One: GraphSAM with β = 1 (ε fixed between anchors).

    ``SAMOne(params, base_optimizer=torch.optim.Adam, rho=0.05, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        **base_kwargs: Any,
    ) -> None:
        self.config = SAMConfig(rho=rho)  # ρ is its only hyperparameter, as for SAM
        super().__init__(params, base_optimizer, rho=rho, beta=1.0, anchor_every_steps=None, **base_kwargs)


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from dataclasses import dataclass  # noqa: E402  (the block declares the class above)

from gradscope.optim.registry import AnchorPeriod, Method, register  # noqa: E402


@dataclass(frozen=True)
class SAMOneEpochSettings(AnchorPeriod, SAMConfig):
    """ρ, plus K: the anchor period in epochs of the per-epoch variant."""

    def __post_init__(self) -> None:
        SAMConfig.__post_init__(self)
        self.check_anchor_period()


register(Method(
    name="sam-one", display_name="SAM-One", optimizer=SAMOne, settings=SAMConfig,
    anchor="once", rho_schedule=True,
    summary="SAM-One (GraphSAM paper's baseline): ε computed once, at the run's first step, and reused "
            "for the whole run; 1 pass per step",
))
register(Method(
    name="sam-one-epoch", display_name="SAM-One (per epoch)", optimizer=SAMOne, settings=SAMOneEpochSettings,
    anchor="epochs", rho_schedule=True, former_names=("sam-one",),
    summary="SAM-One re-anchored at the first step of every K-th epoch (GraphSAM with β = 1); "
            "1 pass per step, 2 at anchors",
))
