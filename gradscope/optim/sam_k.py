"""SAM-k: the perturbation gradient recomputed every k steps.

A baseline of Wang et al. (2024), "Efficient Sharpness-Aware Minimization for Molecular Graph
Transformer Models", ICLR 2024 (Sec. 5): ε_t = ∇L_B(θ_t) exactly at steps t ≡ 0 (mod k) (and
after ``anchor()``), reused unchanged in between; ε̂_t = ρ·ε_t/‖ε_t‖₂, ω_t = ∇L_B(θ_t + ε̂_t).
2 passes at recomputation steps, 1 otherwise (k = 8 as in the paper).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_positive_int, check_rho
from gradscope.optim.graphsam import ReusedPerturbation


@dataclass(frozen=True)
class SAMKConfig:
    """SAM-k's hyperparameters: ``rho`` ≥ 0, ``k`` ≥ 1 (steps between exact ε)."""

    rho: float = 0.05
    k: int = 8

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive_int("k", self.k)


class SAMK(ReusedPerturbation):
    """SAM-k: ε exact every k steps, reused unchanged in between.

    ``SAMK(params, base_optimizer=torch.optim.Adam, rho=0.05, k=8, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        k: int = 8,
        **base_kwargs: Any,
    ) -> None:
        self.config = SAMKConfig(rho=rho, k=k)
        super().__init__(params, base_optimizer, rho=rho, beta=1.0, anchor_every_steps=k, **base_kwargs)


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="sam-k", display_name="SAM-k", optimizer=SAMK, settings=SAMKConfig, rho_schedule=True,
    summary="SAM-k (GraphSAM paper's baseline): exact ε every k steps, reused unchanged in between",
    help={"k": "optimizer steps between two exact ε (steps t ≡ 0 mod k); ε is reused unchanged in between"},
))
