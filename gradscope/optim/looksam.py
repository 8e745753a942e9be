"""LookSAM: SAM every k steps, its sharpness direction reused in between.

Liu, Mai, Chen, Hsieh & You (2022), "Towards Efficient and Scalable Sharpness-Aware
Minimization", CVPR 2022, Sec. 3 and Algorithm 1. With g = ∇L_B(θ_t) computed every step:

    t ≡ 0 (mod k):  ε̂ = ρ·g/‖g‖₂,  g_s = ∇L_B(θ_t + ε̂),  ω_t = g_s,
                    g_v = g_s − (g·g_s/‖g‖²)·g       (the part of g_s orthogonal to g, kept)
    otherwise:      ω_t = g + α·(‖g‖/‖g_v‖)·g_v      (one pass)

Defaults k = 5, α = 0.7 (the paper's). On SAM steps ε_t = g is exact (``anchored``); on the
other steps there is no ε (``last_step.eps`` is None). With ρ = 0, g_s = g and g_v is rounding
noise, so the reuse steps add α‖g‖ of noise: LookSAM does not reduce to its base optimizer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import check_finite, check_positive_int, check_rho
from gradscope.optim.core import TINY, Closure, Outcome, SharpnessAware


@dataclass(frozen=True)
class LookSAMConfig:
    """LookSAM's hyperparameters: ``rho`` ≥ 0, ``k`` ≥ 1, ``alpha`` (finite)."""

    rho: float = 0.05
    k: int = 5
    alpha: float = 0.7

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive_int("k", self.k)
        check_finite("alpha", self.alpha)


class LookSAM(SharpnessAware):
    """LookSAM (Liu et al., 2022): 2 passes every k-th step, 1 otherwise.

    ``LookSAM(params, base_optimizer=torch.optim.Adam, rho=0.05, k=5, alpha=0.7, **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        k: int = 5,
        alpha: float = 0.7,
        **base_kwargs: Any,
    ) -> None:
        self.config = LookSAMConfig(rho=rho, k=k, alpha=alpha)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._g = self._layout.buffer()
        self._gv = self._layout.buffer()

    def _sharpness_step(self, closure: Closure) -> Outcome:
        loss = self._gradient(closure, into=self._g)
        g = self._g.data
        if self._t % self.config.k == 0:
            out = self._sam_update(closure, self._g, loss)
            gs = self._omega.data
            proj = torch.dot(g, gs) / torch.dot(g, g).clamp_min(TINY)
            gv = self._gv.data
            torch.mul(g, -proj, out=gv)
            gv.add_(gs)
            return out
        gv = self._gv.data
        coeff = self.config.alpha * torch.linalg.vector_norm(g) / torch.linalg.vector_norm(gv).clamp_min(TINY)
        g.addcmul_(gv, coeff)  # ω = g + α·(‖g‖/‖g_v‖)·g_v, in place
        return self._erm_update(self._g, loss)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "gv": self._gv.data.clone()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        self._gv.data.copy_(extra["gv"])


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="looksam", display_name="LookSAM", optimizer=LookSAM, settings=LookSAMConfig, rho_schedule=True,
    summary="LookSAM (Liu et al. 2022): a SAM step every k steps, its sharpness direction reused in between",
    help={
        "k": "optimizer steps between two SAM steps (t ≡ 0 mod k); the steps in between reuse its direction g_v",
        "alpha": "α: weight of the reused direction, ω = g + α·(‖g‖/‖g_v‖)·g_v",
    },
))
