"""GraphSAM as the authors' released code runs it — a reproduction for comparison.

This is NOT the algorithm of the paper (that is :class:`~gradscope.optim.graphsam.GraphSAM`)
and not a recommendation. It reproduces, on gradscope's flat buffers, what the ``GraphSAM``
optimizer and training loop published with Wang et al. (ICLR 2024) compute, so that the two can
be compared. Per step t, with θ the parameters before the step and k indexing tensors:

- anchor step (first step of an epoch): g = ∇L_B(θ) (one extra pass) and the running
  perturbation gradient restarts from it, unnormalized: h_k = g_k. The ascent is ASAM-like:
  e = ρ·θ²·h / (‖|θ|·g‖₂ + 1e-12) (global norm; note θ² in the numerator, |θ| in the norm).
- other steps: the released code takes that norm over gradients that the loop has just zeroed,
  so it is 0 and the scale is ρ/1e-12; every tensor's perturbation then hits the clip below.
- each tensor's perturbation is clipped to norm ``radius``: e_k ← radius·e_k/‖e_k‖ when
  ‖e_k‖ > radius. Off-anchor this makes ‖e_k‖ = radius for every tensor with a non-zero h_k,
  a total norm of radius·√(number of tensors), whatever ρ is.
- ω = ∇L_B(θ + e); with ``scale_grad_by_loss`` (default, as the released training script's
  ``loss.backward(loss)``) ω is multiplied by the perturbed loss before the base step.
- the running perturbation gradient is updated per tensor from that ω:
  h_k ← β·h_k + (1−β)·ω_k/‖ω_k + 1e-8‖₂.
- ``epoch_step(epoch)``, called at the start of every epoch (0, 1, 2, ...), anchors the next step
  and, when epoch % step_size == 0, compounds ρ ← ρ·γ^(epoch/step_size) and
  radius ← radius·γ^(epoch/step_size). The factors multiply up: after the call for epoch e
  (step_size 1) ρ = ρ₀·γ^(e(e+1)/2), with γ = 0.5 about 3e-5·ρ₀ at e = 5 and 5e-7·ρ₀ at e = 6.

Defaults follow the released scripts: ρ = 0.05, radius = 0.05, β = 0.99, γ = 0.5,
step_size = 1. ``last_step.eps`` holds h (per-tensor moving average, unnormalized at anchors).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import torch

from gradscope.optim.checks import (
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_rho,
    check_unit_interval,
)
from gradscope.optim.core import Closure, Outcome, SharpnessAware
from gradscope.optim.flat import FlatBuffer

#: The constant the released code adds to the global norm before dividing by it.
RELEASED_NORM_EPS = 1e-12
#: The constant the released code adds to ω before its per-tensor norm.
RELEASED_OMEGA_EPS = 1e-8


@dataclass(frozen=True)
class GraphSAMReleasedConfig:
    """Hyperparameters of the released-code reproduction (see the module docstring)."""

    rho: float = 0.05
    radius: float = 0.05
    beta: float = 0.99
    gamma: float = 0.5
    step_size: int = 1
    scale_grad_by_loss: bool = True

    def __post_init__(self) -> None:
        check_rho(self.rho)
        check_nonnegative("radius", self.radius)
        check_unit_interval("beta", self.beta)
        check_positive("gamma", self.gamma)
        check_positive_int("step_size", self.step_size)


class GraphSAMReleased(SharpnessAware):
    """The released GraphSAM code's behaviour (see the module docstring): 1 pass, 2 at anchors.

    ``GraphSAMReleased(params, base_optimizer=torch.optim.Adam, rho=0.05, radius=0.05, beta=0.99,
    gamma=0.5, step_size=1, scale_grad_by_loss=True, **base_kwargs)``. Call
    ``epoch_step(epoch)`` at the start of every epoch instead of ``anchor()`` and ``StepRho``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        rho: float = 0.05,
        radius: float = 0.05,
        beta: float = 0.99,
        gamma: float = 0.5,
        step_size: int = 1,
        scale_grad_by_loss: bool = True,
        **base_kwargs: Any,
    ) -> None:
        self.config = GraphSAMReleasedConfig(
            rho=rho, radius=radius, beta=beta, gamma=gamma, step_size=step_size, scale_grad_by_loss=scale_grad_by_loss
        )
        super().__init__(params, base_optimizer, rho=rho, **base_kwargs)
        self.radius = float(radius)
        self._h = self._layout.buffer()  # running perturbation gradient, per tensor
        self._h_next = self._layout.buffer()

    def epoch_step(self, epoch: int) -> None:
        """Start of epoch ``epoch`` (0-based): anchor, and compound ρ and radius as released."""
        step_size, gamma = self.config.step_size, self.config.gamma
        if epoch % step_size == 0:
            factor = gamma ** (epoch / step_size)
            self.rho *= factor
            self.radius *= factor
        self.anchor()

    def _sharpness_step(self, closure: Closure) -> Outcome:
        layout = self._layout
        anchored = self._anchor_pending
        loss = self._nan
        if anchored:
            loss = self._gradient(closure, into=self._h)  # h restarts from the raw gradient
            self._anchor_pending = False
        theta = self._save_theta().to(torch.float32)
        h = self._h.data
        e = self._eps_hat.data
        if anchored:
            torch.mul(theta.abs(), h, out=e)
            scale: torch.Tensor | float = self.rho / (torch.linalg.vector_norm(e) + RELEASED_NORM_EPS)
        else:
            scale = self.rho / RELEASED_NORM_EPS  # the norm of the just-zeroed gradients is 0
        torch.mul(theta.square(), h, out=e)
        e.mul_(scale)
        norms = layout.per_tensor_norms(self._eps_hat)
        clip = torch.where(norms > self.radius, self.radius / norms, torch.ones_like(norms))
        e.mul_(layout.expand(clip))
        eps_hat_norm = torch.linalg.vector_norm(e)
        loss_p = self._perturbed_gradient(closure, self._eps_hat, into=self._omega)
        omega = self._omega.data
        if self.config.scale_grad_by_loss:
            omega.mul_(loss_p)  # the released closure's loss.backward(loss)
        self._advance_h(omega)
        return Outcome(self._omega, h, eps_hat_norm, loss, loss_p, anchored)

    def _advance_h(self, omega: torch.Tensor) -> None:
        """h_k ← β·h_k + (1−β)·ω_k/‖ω_k + 1e-8‖, per tensor; written beside h (last_step keeps h)."""
        layout = self._layout
        shifted = self._eps_hat  # scratch: ε̂ is no longer needed
        torch.add(omega, RELEASED_OMEGA_EPS, out=shifted.data)
        norms = layout.expand(layout.per_tensor_norms(shifted))
        nxt = self._h_next.data
        beta = self.config.beta
        torch.mul(self._h.data, beta, out=nxt)
        nxt.addcdiv_(omega, norms, value=1.0 - beta)
        self._h, self._h_next = self._h_next, self._h

    def _carried(self) -> list[FlatBuffer]:
        return [self._h]

    def _snapshot(self) -> FlatBuffer:
        return self._h  # the next h is written beside h, so h survives the step

    def _rollback(self, snapshot: FlatBuffer) -> None:
        if self._h is not snapshot:
            self._h, self._h_next = self._h_next, self._h

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "radius": self.radius, "h": self._h.data.clone()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        super()._load_extra_state(extra)
        self.radius = float(extra["radius"])
        self._h.data.copy_(extra["h"])


# -- registry declaration (gradscope.optim.registry) -----------------------------------------------
from gradscope.optim.registry import Method, register  # noqa: E402  (the block declares the class above)

register(Method(
    name="graphsam-released", display_name="GraphSAM (released code)", optimizer=GraphSAMReleased,
    settings=GraphSAMReleasedConfig, epoch_step=True,
    summary="what the GraphSAM authors' released code computes (not the paper's algorithm): per-tensor "
            "clipped ascent, ρ and radius compounded at each epoch start",
    help={
        "rho": "ρ of the released ascent ρ·θ²·h/‖|θ|·g‖ (at anchors), compounded at every epoch start",
        "radius": "each tensor's perturbation is clipped to this norm (compounded like ρ)",
        "beta": "β in [0, 1]: weight of the previous h in the per-tensor moving average "
                "h ← β·h + (1−β)·ω/‖ω + 1e-8‖",
        "gamma": "γ > 0: at every λ-th epoch start ρ and radius are multiplied by γ^(epoch/λ), as released",
        "step_size": "λ: epochs between the released code's compounding steps of ρ and radius",
        "scale_grad_by_loss": "multiply ω by the perturbed loss, as the released loss.backward(loss) does",
    },
    flags={"step_size": "--rho-step"},  # the flag of λ, as for the other methods' ρ schedule
))
