"""GraphSAM, and the reused-perturbation machinery it shares with SAM-One and SAM-k.

Wang et al. (2024), "Efficient Sharpness-Aware Minimization for Molecular Graph Transformer
Models", ICLR 2024 (arXiv 2406.13137), eq. 3-4 and Algorithm 1. ε is computed exactly only at
an anchor step (the very first step, and whenever ``anchor()`` was called — the training loop
calls it at the start of every epoch, or every K epochs for GraphSAM-K); in between, the
perturbation gradient is a moving average of normalized updating gradients:

    anchor:     ε_t = ∇L_B(θ_t)                                  (one extra pass)
    every step: ε̂_t = ρ·ε_t/‖ε_t‖₂,   ω_t = ∇L_B(θ_t + ε̂_t),   θ_{t+1} = base_step(θ_t, ω_t)
    then:       ε_{t+1} = β·ε_t + (1−β)·ω_t/‖ω_t‖₂               (eq. 3)

so a step costs one forward-backward pass, two at anchors. Norms are global 2-norms over all
trainable parameters. With β = 1 the update is the identity and ε stays the anchor gradient:
that is SAM-One (:class:`~gradscope.optim.sam_one.SAMOne`); anchoring every k steps instead
gives SAM-k (:class:`~gradscope.optim.sam_k.SAMK`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.errors import ConfigError
from gradscope.optim.checks import check_rho, check_unit_interval
from gradscope.optim.core import TINY, Closure, Outcome, SharpnessAware
from gradscope.optim.flat import FlatBuffer


class ReusedPerturbation(SharpnessAware):
    """ε exact at anchors, reused (β = 1) or moving-averaged (β < 1) in between.

    Args:
        beta: weight of the previous ε in eq. 3 (1 = never update).
        anchor_every_steps: also anchor at every step t with t % anchor_every_steps == 0 (None: only the
            first step and explicit ``anchor()`` calls).
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer],
        *,
        rho: float,
        beta: float,
        anchor_every_steps: int | None,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self.beta = float(beta)
        self.anchor_every_steps = anchor_every_steps
        self._eps = self._layout.buffer()  # ε_t
        # ε_{t+1} is written beside ε_t so that last_step.eps still shows ε_t after the step
        self._eps_next = self._layout.buffer() if self.beta < 1.0 else None

    def _is_anchor(self) -> bool:
        periodic = self.anchor_every_steps is not None and self._t % self.anchor_every_steps == 0
        return self._anchor_pending or periodic

    def _sharpness_step(self, closure: Closure) -> Outcome:
        anchored = self._is_anchor()
        loss = self._nan
        if anchored:
            loss = self._gradient(closure, into=self._eps)
            self._anchor_pending = False
        eps = self._eps
        eps_hat, eps_hat_norm = self._ascent(eps.data)
        loss_p = self._perturbed_gradient(closure, eps_hat, into=self._omega)
        if self._eps_next is not None:
            self._advance_eps()
        return Outcome(self._omega, eps.data, eps_hat_norm, loss, loss_p, anchored)

    def _advance_eps(self) -> None:
        """ε_{t+1} = β·ε_t + (1−β)·ω_t/‖ω_t‖₂ (eq. 3), then make it the current ε."""
        assert self._eps_next is not None
        omega = self._omega.data
        coeff = (1.0 - self.beta) / torch.linalg.vector_norm(omega).clamp_min(TINY)
        nxt = self._eps_next.data
        torch.mul(self._eps.data, self.beta, out=nxt)
        nxt.addcmul_(omega, coeff)
        self._eps, self._eps_next = self._eps_next, self._eps

    def _carried(self) -> list[FlatBuffer]:
        return [self._eps]

    def _snapshot(self) -> FlatBuffer:
        return self._eps  # ε_{t+1} is written beside ε_t, so ε_t survives the step

    def _rollback(self, snapshot: FlatBuffer) -> None:
        if self._eps is not snapshot:  # the step advanced ε: go back to ε_t
            self._eps, self._eps_next = self._eps_next, self._eps

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "eps": self._eps.data.clone()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        self._eps.data.copy_(extra["eps"])


@dataclass(frozen=True)
class GraphSAMConfig:
    """GraphSAM's hyperparameters: ``rho`` ≥ 0, ``beta`` in [0, 1) (paper: 0.05, 0.99)."""

    rho: float = 0.05
    beta: float = 0.99

    def __post_init__(self) -> None:
        check_rho(self.rho)
        if self.beta == 1:
            raise ConfigError("beta=1 never updates ε: that is SAM-One (gradscope.optim.SAMOne; names 'sam-one' for one anchor per run, 'sam-one-epoch' per epoch)")
        check_unit_interval("beta", self.beta, closed_right=False)


class GraphSAM(ReusedPerturbation):
    """GraphSAM (Wang et al., ICLR 2024, eq. 3-4): 1 pass per step, 2 at anchors.

    ``GraphSAM(params, base_optimizer=torch.optim.Adam, rho=0.05, beta=0.99, **base_kwargs)``.
    Call ``anchor()`` at the start of every epoch (every K epochs for GraphSAM-K); follow ρ's
    step schedule with :class:`~gradscope.optim.schedules.StepRho`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        beta: float = 0.99,
        **base_kwargs: Any,
    ) -> None:
        self.config = GraphSAMConfig(rho=rho, beta=beta)
        super().__init__(params, base_optimizer, rho=rho, beta=beta, anchor_every_steps=None, **base_kwargs)


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import AnchorPeriod, Method, register  # noqa: E402  (declares the class above)


@dataclass(frozen=True)
class GraphSAMSettings(AnchorPeriod, GraphSAMConfig):
    """GraphSAM's hyperparameters plus K, its anchor period in epochs (GraphSAM-K for K > 1)."""

    def __post_init__(self) -> None:
        GraphSAMConfig.__post_init__(self)
        self.check_anchor_period()


register(Method(
    name="graphsam", display_name="GraphSAM", optimizer=GraphSAM, settings=GraphSAMSettings,
    anchor="epochs", rho_schedule=True,
    summary="GraphSAM (Wang et al. 2024): exact ε at each epoch's first step, then its moving average "
            "(eq. 3); 1 pass per step, 2 at anchors",
    help={"beta": "β in [0, 1): weight of the previous ε in the moving average "
                  "ε ← β·ε + (1−β)·ω/‖ω‖ (paper eq. 3)"},
))
