"""LookSAM: SAM every k steps, its sharpness direction reused in between.

Liu, Mai, Chen, Hsieh & You (2022), "Towards Efficient and Scalable Sharpness-Aware
Minimization", CVPR 2022, Sec. 3 and Algorithm 1. With g = ∇L_B(θ_t) computed every step:

    t ≡ 0 (mod k):  ε̂ = ρ·g/‖g‖₂,  g_s = ∇L_B(θ_t + ε̂),  ω_t = g_s,
                    g_v = g_s − (g·g_s/‖g‖²)·g       (the part of g_s orthogonal to g, kept)
    otherwise:      ω_t = g + α·(‖g‖/‖g_v‖)·g_v      (one pass)

``normalization`` says over what the projection and the ratio ‖g‖/‖g_v‖ are taken:

- ``"global"`` (default): over the whole parameter vector, as the paper's Algorithm 1 writes it;
- ``"per-tensor"``: separately for every parameter tensor k (g_v,k = g_s,k − (g_k·g_s,k/‖g_k‖²)·g_k,
  ω_k = g_k + α·(‖g_k‖/‖g_v,k‖)·g_v,k), as the LookSAM class shipped in the GraphSAM authors'
  repository (a copy of a widely used unofficial implementation) computes it. The ascent ε̂ is
  global in both. A one-element tensor (a single-output bias) has g_v = 0 exactly here; the
  reference code divides by the rounding noise left there (NaN, or an arbitrary ±α‖g_k‖).

Defaults k = 5, α = 0.7 (the paper's); the GraphSAM paper's baseline used ρ = 1e-4, α = 0.2, k = 8.
On SAM steps ε_t = g is exact (``anchored``); on the other steps there is no ε (``last_step.eps``
is None). With ρ = 0, g_s = g and g_v is rounding noise, so the reuse steps add α‖g‖ of noise:
LookSAM does not reduce to its base optimizer. A parameter without a gradient this step takes no
part in ‖g_v‖ either (its stale g_v slice is left out).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.errors import ConfigError
from gradscope.optim.checks import check_finite, check_positive_int, check_rho
from gradscope.optim.core import TINY, Closure, Outcome, SharpnessAware
from gradscope.optim.flat import FlatBuffer

#: How LookSAM normalises g_v: over all parameters, or per parameter tensor.
NORMALIZATIONS = ("global", "per-tensor")


@dataclass(frozen=True)
class LookSAMConfig:
    """LookSAM's hyperparameters: ``rho`` ≥ 0, ``k`` ≥ 1, ``alpha`` (finite), ``normalization``."""

    rho: float = 0.05
    k: int = 5
    alpha: float = 0.7
    normalization: str = "global"

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_positive_int("k", self.k)
        check_finite("alpha", self.alpha)
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {self.normalization!r}")


class LookSAM(SharpnessAware):
    """LookSAM (Liu et al., 2022): 2 passes every k-th step, 1 otherwise.

    ``LookSAM(params, base_optimizer=torch.optim.Adam, rho=0.05, k=5, alpha=0.7,
    normalization="global", **base_kwargs)``
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        k: int = 5,
        alpha: float = 0.7,
        normalization: str = "global",
        **base_kwargs: Any,
    ) -> None:
        self.config = LookSAMConfig(rho=rho, k=k, alpha=alpha, normalization=normalization)
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self._g = self._layout.buffer()
        self._gv = self._layout.buffer()
        self._per_tensor = normalization == "per-tensor"
        # a one-element tensor has no part orthogonal to its own gradient: g_v is 0 there exactly
        self._scalars = [i for i, n in enumerate(self._layout.numels) if n == 1]

    def _sharpness_step(self, closure: Closure) -> Outcome:
        loss = self._gradient(closure, into=self._g)
        if self._t % self.config.k == 0:
            out = self._sam_update(closure, self._g, loss)
            self._decompose(self._g, self._omega)
            return out
        self._reuse(self._g)  # ω = g + α·(‖g‖/‖g_v‖)·g_v, in place
        return self._erm_update(self._g, loss)

    def _decompose(self, g: FlatBuffer, gs: FlatBuffer) -> None:
        """g_v = g_s − (g·g_s/‖g‖²)·g, the part of g_s orthogonal to g (per tensor if so configured)."""
        layout = self._layout
        if self._per_tensor:
            dots = layout.per_tensor_dots(g.data, gs.data, scratch=self._eps_hat.data)
            proj = layout.expand(dots / layout.per_tensor_norms(g).square().clamp_min(TINY))
        else:
            proj = torch.dot(g.data, gs.data) / torch.dot(g.data, g.data).clamp_min(TINY)
        torch.mul(g.data, proj, out=self._gv.data)
        torch.sub(gs.data, self._gv.data, out=self._gv.data)
        if self._per_tensor and self._scalars:  # not rounding noise that the reuse step scales up
            torch._foreach_zero_([self._gv.views[i] for i in self._scalars])

    def _reuse(self, g: FlatBuffer) -> None:
        """g += α·(‖g‖/‖g_v‖)·g_v (per tensor if so configured)."""
        layout, alpha = self._layout, self.config.alpha
        if self._per_tensor:
            ratio = layout.per_tensor_norms(g) / layout.per_tensor_norms(self._gv).clamp_min(TINY)
            coeff = layout.expand(alpha * ratio)
        else:
            coeff = alpha * torch.linalg.vector_norm(g.data) / self._gv_norm(g.present).clamp_min(TINY)
        g.data.addcmul_(self._gv.data, coeff)

    def _gv_norm(self, present: tuple[bool, ...] | None) -> torch.Tensor:
        """‖g_v‖ over the parameters that have a gradient this step."""
        if present is None or all(present):
            return torch.linalg.vector_norm(self._gv.data)
        views = [v for v, has in zip(self._gv.views, present) if has]
        if not views:
            return torch.zeros((), device=self._layout.device)
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(views)))

    def _carried(self) -> list[FlatBuffer]:
        return [self._gv]

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
        "normalization": "global: g_v's projection and ‖g‖/‖g_v‖ over all parameters (the paper's Algorithm 1); "
                         "per-tensor: per parameter tensor (the LookSAM code the GraphSAM authors ran)",
    },
    choices={"normalization": NORMALIZATIONS},
))
