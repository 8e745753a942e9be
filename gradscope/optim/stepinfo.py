"""What one optimizer step used, as the probes read it.

Every gradscope optimizer sets ``optimizer.last_step`` to a :class:`StepInfo` at the end of
``step()``. The recorder (``gradscope.probes``) reads it in an optimizer step post-hook. The
tensors are live views of buffers the optimizer keeps anyway (no copies are made for the
recorder); they are valid until the next ``step()`` call. Host-side fields (``anchored``,
``grad_evals``, ``rho``) are plain Python values decided on the host, so reading them never
waits on the device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepInfo:
    """One step's ε_t, ε̂_t, ω_t and bookkeeping (notation of the GraphSAM paper).

    Attributes:
        omega: flat float32 ω_t, the gradient handed to the base optimizer, in the order of
            ``params``; zero on the slices of ``params_without_grad``.
        eps: flat float32 ε_t as the method holds it (unnormalized), or ``None`` on a step
            where the method has no ε (e.g. an ERM step of RST or AE-SAM).
        eps_hat_norm: 0-d tensor, ‖ε̂_t‖ actually applied to θ (0 where no ascent happened),
            or ``None`` together with ``eps``.
        loss: 0-d tensor, the loss at θ_t where the step computed it, else NaN.
        loss_perturbed: 0-d tensor, the loss at θ_t + ε̂_t where computed, else NaN.
        anchored: True when ε_t is an exact gradient ∇L_B(θ_t) computed in this step.
        grad_evals: forward-backward passes (closure calls) the optimizer spent in this step.
        rho: the ρ used in this step.
        params: the parameters in flat order (the same list every step).
        params_without_grad: indices into ``params`` of the parameters the pass that produced
            ω_t gave no gradient (a branch not taken, a parameter frozen with
            ``requires_grad_(False)``, a head not used yet): the base optimizer got
            ``p.grad = None`` for them and skipped them, as torch does.
        skipped: True when fp16 loss scaling found inf/NaN in one of the step's passes: the base
            optimizer did not step, θ and the method's state are as before the step, and ε/ω may
            hold non-finite values.
        grad_scale: 0-d tensor, the loss scale the step's passes were unscaled by (a copy), or
            ``None`` without loss scaling. ε, ω and the losses are always unscaled.
    """

    omega: torch.Tensor
    eps: torch.Tensor | None
    eps_hat_norm: torch.Tensor | None
    loss: torch.Tensor
    loss_perturbed: torch.Tensor
    anchored: bool
    grad_evals: int
    rho: float
    params: list[torch.nn.Parameter]
    params_without_grad: tuple[int, ...] = ()
    skipped: bool = False
    grad_scale: torch.Tensor | None = None
