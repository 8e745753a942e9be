"""ASAM: adaptive sharpness-aware minimization.

Kwon, Kim, Park & Choi (2021), "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
Learning of Deep Neural Networks", ICML 2021, eq. 11-12: with the elementwise normalization
operator T_θ = |θ| + η (applied to every parameter, biases included),

    ε_t = ∇L_B(θ_t),   ε̂_t = ρ·T_θ² ε_t / ‖T_θ ε_t‖₂,   ω_t = ∇L_B(θ_t + ε̂_t).

Two passes per step. The paper tunes ρ larger than SAM's (0.5 on CIFAR with SGD), hence the
default here; η = 0.01 as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_positive, check_rho
from gradscope.optim.core import TINY
from gradscope.optim.flat import FlatBuffer
from gradscope.optim.sam import SAM


@dataclass(frozen=True)
class ASAMConfig:
    """ASAM's hyperparameters: ``rho`` ≥ 0, ``eta`` > 0 (the offset of T_θ = |θ| + η)."""

    rho: float = 0.5
    eta: float = 0.01

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive("eta", self.eta)


class ASAM(SAM):
    """ASAM (Kwon et al., 2021): SAM with the perturbation shaped by T_θ = |θ| + η. 2 passes.

    ``ASAM(params, base_optimizer=torch.optim.Adam, rho=0.5, eta=0.01, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.5,
        eta: float = 0.01,
        **base_kwargs: Any,
    ) -> None:
        config = ASAMConfig(rho=rho, eta=eta)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self.config = config  # type: ignore[assignment]

    def _ascent(self, eps: torch.Tensor) -> tuple[FlatBuffer, torch.Tensor]:
        t = self._save_theta().to(torch.float32).abs().add_(self.config.eta)  # T_θ, elementwise
        eps_hat = self._eps_hat.data
        torch.mul(t, eps, out=eps_hat)  # T ε
        scale = self.rho / torch.linalg.vector_norm(eps_hat).clamp_min(TINY)
        eps_hat.mul_(t).mul_(scale)  # ρ T² ε / ‖T ε‖
        return self._eps_hat, torch.linalg.vector_norm(eps_hat)


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="asam", display_name="ASAM", optimizer=ASAM, settings=ASAMConfig, rho_schedule=True,
    summary="ASAM (Kwon et al. 2021): SAM with the ascent scaled by T = |θ| + η; 2 passes per step",
    help={
        "rho": "radius ρ of the scale-invariant ascent ε̂ = ρ·T²ε/‖Tε‖₂, T = |θ| + η: it scales with |θ|, "
               "hence a larger default than SAM's",
        "eta": "η > 0: offset of the elementwise scale T = |θ| + η (keeps parameters at 0 perturbable)",
    },
))
