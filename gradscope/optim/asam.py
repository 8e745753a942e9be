"""ASAM: adaptive sharpness-aware minimization.

Kwon, Kim, Park & Choi (2021), "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
Learning of Deep Neural Networks", ICML 2021, eq. 11-12: with the elementwise normalization
operator T_θ,

    ε_t = ∇L_B(θ_t),   ε̂_t = ρ·T_θ² ε_t / ‖T_θ ε_t‖₂,   ω_t = ∇L_B(θ_t + ε̂_t).

Where T applies follows the authors' released code (SamsungLabs/ASAM, ``asam.py``): T_θ = |θ| + η
on weights, and T = 1 (no rescaling, as in SAM) on every other parameter — biases and any
parameter whose name has no "weight" in it. Weights are recognised by name, the released code's
rule ("weight" in the name, so normalisation-layer scales count as weights), when the optimizer is
given names (``model.named_parameters()``); without names, tensors with two or more dimensions
are the weights. ``scale_biases=True`` applies T = |θ| + η to every parameter instead (gradscope's
rule before it followed the released code).

Two passes per step. The paper tunes ρ larger than SAM's (0.5 on CIFAR with SGD), hence the
default here; η = 0.01 as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_positive, check_rho
from gradscope.optim.core import TINY
from gradscope.optim.flat import FlatBuffer, FlatLayout
from gradscope.optim.sam import SAM


@dataclass(frozen=True)
class ASAMConfig:
    """ASAM's hyperparameters: ``rho`` ≥ 0, ``eta`` > 0 (the offset of T_θ = |θ| + η), and
    ``scale_biases`` (apply T to every parameter, not only to weights)."""

    rho: float = 0.5
    eta: float = 0.01
    scale_biases: bool = False

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive("eta", self.eta)


def is_weight(layout: FlatLayout, index: int) -> bool:
    """Whether T = |θ| + η applies to parameter ``index``: "weight" in its name (the released
    ASAM code's rule), or, when names are unknown, a tensor of two or more dimensions."""
    if layout.names is not None:
        return "weight" in layout.names[index]
    return layout.params[index].dim() >= 2


class ASAM(SAM):
    """ASAM (Kwon et al., 2021): SAM with the perturbation shaped by T_θ = |θ| + η. 2 passes.

    ``ASAM(params, base_optimizer=torch.optim.Adam, rho=0.5, eta=0.01, scale_biases=False,
    **base_kwargs)``; pass ``model.named_parameters()`` for the released code's weight rule.
    ``opt.scaled`` lists, per parameter in flat order, whether T = |θ| + η applies to it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.5,
        eta: float = 0.01,
        scale_biases: bool = False,
        **base_kwargs: Any,
    ) -> None:
        config = ASAMConfig(rho=rho, eta=eta, scale_biases=scale_biases)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self.config = config  # type: ignore[assignment]
        layout = self._layout
        self.scaled = tuple(scale_biases or is_weight(layout, i) for i in range(len(layout.params)))
        self._unscaled: torch.Tensor | None = None  # flat mask of the entries where T = 1
        if not all(self.scaled):
            flags = torch.tensor([not s for s in self.scaled], device=layout.device)
            self._unscaled = layout.expand(flags)

    def _ascent(self, eps: torch.Tensor) -> tuple[FlatBuffer, torch.Tensor]:
        t = self._save_theta().to(torch.float32).abs().add_(self.config.eta)  # T_θ, elementwise
        if self._unscaled is not None:
            t.masked_fill_(self._unscaled, 1.0)
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
        "scale_biases": "apply T to every parameter (gradscope's earlier rule) instead of to weights only, "
                        "as the released ASAM code does",
    },
))
