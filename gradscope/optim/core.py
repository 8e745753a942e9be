"""The two-pass sharpness-aware step that every gradscope optimizer shares.

A sharpness-aware step (Foret et al., 2021) evaluates the gradient at a perturbed point
θ_t + ε̂_t and hands it, as ω_t, to an ordinary base optimizer at θ_t. The methods differ only
in how ε̂_t is built and when the extra pass at θ_t is spent; :class:`SharpnessAware` owns
everything else, and each method is a small subclass implementing ``_sharpness_step`` (the
perturbation strategy) with the primitives below:

- ``_gradient(closure, into)``: one forward-backward pass at the current θ, accumulated by
  autograd straight into a flat buffer (each ``p.grad`` is pointed at its view of the buffer
  before the closure runs; gradients that arrive elsewhere — the closure called
  ``zero_grad(set_to_none=True)`` — are copied in). Which parameters got a gradient is a host
  fact (post-accumulate-grad hooks, :mod:`gradscope.optim.arrivals`): the others keep a zero
  slice and ``p.grad = None``, as in torch. Under fp16 loss scaling the buffer is unscaled here;
- ``_perturbed_gradient(closure, eps_hat, into)``: save θ (an exact copy), θ += ε̂, one pass,
  restore θ by copying the saved values back (bit-for-bit, never θ + ε̂ − ε̂);
- ``_ascent(eps)``: ε̂ = ρ·ε/‖ε‖₂ (global norm) into the scratch buffer.

Torch's ``None`` rule holds for the base optimizer: a parameter without a gradient in the pass
that produced ω_t gets ``p.grad = None`` and is skipped (no state, weight decay or step count
change); its slice of ω_t is zero. A parameter frozen with ``requires_grad_(False)`` also has its
slice zeroed in every buffer a method carries across steps (``_carried``), so no ascent moves it.

Rules kept throughout: ε, ε̂ and ω are flat float32 buffers; no host read of a device value
(scale factors stay 0-d tensors, divisions are guarded with ``clamp_min(1e-12)``); host-side
decisions (anchor schedules, counters, coins, which parameters have gradients) are plain Python.
ρ is one global value (``optimizer.rho``), not a per-group setting;
:class:`~gradscope.optim.schedules.StepRho` edits it. Parameters with ``requires_grad=False`` at
construction are left out of the buffers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

from gradscope.errors import ConfigError, GradscopeError
from gradscope.optim.amp import VIA_GRADSCALER, LossScaling
from gradscope.optim.arrivals import GradientArrivals
from gradscope.optim.checks import check_rho
from gradscope.optim.flat import FlatBuffer, FlatLayout
from gradscope.optim.stepinfo import StepInfo

#: Guard of every division by a norm.
TINY = 1e-12

#: Base optimizers known by name (``make_optimizer(..., base="adam")``).
BASE_OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}

Closure = Callable[[], Any]
_STATE_KEY = "sharpness_aware"


def resolve_base_optimizer(base: str | type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """The base optimizer class for a name ("adam", "adamw", "sgd") or a torch optimizer class."""
    if isinstance(base, str):
        try:
            return BASE_OPTIMIZERS[base.lower()]
        except KeyError:
            known = ", ".join(sorted(BASE_OPTIMIZERS))
            raise ConfigError(f"unknown base optimizer {base!r}; known: {known}") from None
    if isinstance(base, type) and issubclass(base, torch.optim.Optimizer):
        if issubclass(base, SharpnessAware):
            raise ConfigError(f"base optimizer {base.__name__} is itself sharpness-aware; use a plain one")
        return base
    raise ConfigError(f"base optimizer must be a torch.optim.Optimizer class or a name, got {base!r}")


@dataclass
class Outcome:
    """What a method's ``_sharpness_step`` produced; the core adds grad_evals, rho, params."""

    omega: FlatBuffer
    eps: torch.Tensor | None
    eps_hat_norm: torch.Tensor | None
    loss: torch.Tensor
    loss_perturbed: torch.Tensor
    anchored: bool


def _trainable_with_names(groups: list[dict[str, Any]]) -> tuple[list[torch.Tensor], list[str] | None]:
    """The trainable parameters of ``groups`` in order, and their names when every group has them
    (torch keeps them as ``param_names`` when the optimizer was given ``named_parameters()``)."""
    params: list[torch.Tensor] = []
    names: list[str] | None = []
    for group in groups:
        group_names = group.get("param_names")
        for k, p in enumerate(group["params"]):
            if not p.requires_grad:
                continue
            params.append(p)
            if names is not None and group_names is not None:
                names.append(group_names[k])
            else:
                names = None
    return params, names


class SharpnessAware(torch.optim.Optimizer):
    """Base class: a base optimizer driven by a sharpness-aware updating gradient ω_t.

    Args:
        params: parameters, named parameters (``model.named_parameters()``) or parameter groups,
            as for any torch optimizer.
        base_optimizer: a torch optimizer class (or "adam", "adamw", "sgd"). It is built on the
            same ``param_groups`` (the same dicts), so LR schedulers work unchanged.
        rho: the initial ρ (global, not per group).
        **base_kwargs: passed to the base optimizer (``lr``, ``weight_decay``, ...).

    Subclasses implement ``_sharpness_step(closure) -> Outcome`` and, when they keep state
    across steps, ``_extra_state`` / ``_load_extra_state``, ``_carried`` (buffers whose frozen
    parameters' slices are zeroed) and ``_snapshot`` / ``_rollback`` (undo a skipped step).
    """

    #: ``GradScaler.step(optimizer)`` hands the scale to optimizers with this flag instead of
    #: unscaling stale gradients; gradscope uses it only to refuse with a clear message.
    _step_supports_amp_scaling = True

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[tuple[str, torch.Tensor]] | Iterable[dict[str, Any]],
        base_optimizer: str | type[torch.optim.Optimizer] = torch.optim.Adam,
        *,
        rho: float,
        **base_kwargs: Any,
    ) -> None:
        check_rho(rho)
        base_cls = resolve_base_optimizer(base_optimizer)
        self.base_optimizer = base_cls(params, **base_kwargs)
        super().__init__(self.base_optimizer.param_groups, {})
        self.param_groups = self.base_optimizer.param_groups
        self.defaults = self.base_optimizer.defaults
        for group in self.param_groups:
            if "rho" in group:
                raise ConfigError("rho is one global value in gradscope optimizers; pass rho=... to the constructor, not per group")
        trainable, names = _trainable_with_names(self.param_groups)
        if not trainable:
            raise ConfigError("no trainable parameters (all have requires_grad=False)")
        devices = {p.device for p in trainable}
        if len(devices) > 1:
            raise ConfigError(f"parameters on several devices ({sorted(map(str, devices))}); gradscope optimizers need one device")
        self._layout = FlatLayout(trainable, names)
        # exact backup of θ: a dtype that holds every parameter's values exactly
        theta_dtype = torch.float32
        for p in trainable:
            theta_dtype = torch.promote_types(theta_dtype, p.dtype)
        self._theta = self._layout.buffer(theta_dtype)
        self._eps_hat = self._layout.buffer()
        self._omega = self._layout.buffer()
        # float32 parameters get views of the flat buffers as their .grad; others are copied
        self._viewable = [p.dtype == torch.float32 for p in trainable]
        self._arrivals = GradientArrivals(trainable)
        self._nan = torch.full((), math.nan, device=self._layout.device)
        self.rho = float(rho)
        self.last_step: StepInfo | None = None
        self._t = 0  # optimizer steps taken
        self._anchor_pending = True  # the very first step is an anchor
        self._fallback_copies = 0  # gradients that did not arrive in their view (diagnostic)
        self._grad_evals = 0
        self._first_loss: torch.Tensor | None = None
        self._theta_saved = False
        self._scaling: LossScaling | None = None

    # ----------------------------------------------------------------- public API
    @property
    def params(self) -> list[torch.Tensor]:
        """The trainable parameters in flat order (the order of ε and ω)."""
        return self._layout.params

    @property
    def layout(self) -> FlatLayout:
        """The flat layout of ε and ω (parameters, offsets, shapes, names when known)."""
        return self._layout

    @property
    def steps(self) -> int:
        """Number of optimizer steps taken so far (steps skipped by loss scaling do not count)."""
        return self._t

    def anchor(self) -> None:
        """Make the next step compute ε exactly (a no-op for methods that always do)."""
        self._anchor_pending = True

    @torch.no_grad()
    def step(self, closure: Closure | None = None, *, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:  # type: ignore[override]
        """One sharpness-aware step.

        ``closure`` does forward + backward and returns the loss; it is called as many times
        as the method needs, with gradients zeroed before each call. Returns the detached loss
        of the first closure call of this step.

        ``scaler``: a ``torch.amp.GradScaler`` for fp16 autocast. The closure then backpropagates
        ``scaler.scale(loss)`` (and returns ``loss``); every pass is unscaled, a step whose passes
        saw inf/NaN is skipped (θ, the base optimizer and the method's state untouched) and the
        scaler learns it; call ``scaler.update()`` after the step as usual.
        """
        self._refuse_gradscaler_step()
        if closure is None:
            raise GradscopeError(f"{type(self).__name__}.step needs a closure (forward + backward, returning the loss)")
        self._arrivals.check_no_stray(self._layout.params)
        scaling = LossScaling.begin(scaler, self, self._layout.device)
        self._begin(scaling)
        anchor_pending, snapshot = self._anchor_pending, self._snapshot() if scaling else None
        self._arrivals.inside = True
        try:
            out = self._sharpness_step(closure)
        finally:
            self._arrivals.inside = False
            self._scaling = None
        skipped = scaling is not None and scaling.finish()
        without_grad = self._publish(out.omega)
        if skipped:
            self._anchor_pending = anchor_pending
            self._rollback(snapshot)
        else:
            self.base_optimizer.step()
            self._t += 1
        self.last_step = self._step_info(out, without_grad, skipped, scaling)
        assert self._first_loss is not None  # every method runs the closure at least once
        return self._first_loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As torch's; also forgets gradients accumulated outside step() (they are zeroed now)."""
        super().zero_grad(set_to_none)
        self._arrivals.forget_stray()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if getattr(self, "_layout", None) is None:  # during torch's __init__
            super().add_param_group(param_group)
            return
        raise GradscopeError("gradscope optimizers keep flat buffers over a fixed parameter set; build a new optimizer instead of add_param_group")

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict plus this optimizer's own state (ε buffers, counters, ...)."""
        sd = self.base_optimizer.state_dict()
        sd[_STATE_KEY] = self._extra_state()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        try:
            extra = sd.pop(_STATE_KEY)
        except KeyError:
            raise GradscopeError(f"not a {type(self).__name__} state dict (no {_STATE_KEY!r} entry)") from None
        if extra.get("method") != type(self).__name__:
            raise GradscopeError(f"state dict of {extra.get('method')!r} cannot be loaded into {type(self).__name__}")
        if extra.get("numel") != self._layout.numel:
            raise GradscopeError(f"state dict is for {extra.get('numel')} parameters' values, this optimizer has {self._layout.numel}")
        self.base_optimizer.load_state_dict(sd)
        # torch's load_state_dict builds new group dicts: share them again
        self.param_groups = self.base_optimizer.param_groups
        self._load_extra_state(extra)

    # ------------------------------------------------------- for subclasses
    def _sharpness_step(self, closure: Closure) -> Outcome:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        return {
            "method": type(self).__name__,
            "numel": self._layout.numel,
            "rho": self.rho,
            "t": self._t,
            "anchor_pending": self._anchor_pending,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.rho = float(extra["rho"])
        self._t = int(extra["t"])
        self._anchor_pending = bool(extra["anchor_pending"])

    def _carried(self) -> list[FlatBuffer]:
        """Buffers the method carries across steps (their frozen parameters' slices are zeroed)."""
        return []

    def _snapshot(self) -> Any:
        """What ``_rollback`` needs to undo this step's changes to the method's state (loss scaling only)."""
        return None

    def _rollback(self, snapshot: Any) -> None:
        """Undo this step's changes to the method's state: loss scaling skipped the step."""

    def _gradient(self, closure: Closure, into: FlatBuffer) -> torch.Tensor:
        """One forward-backward pass at the current θ; the gradient lands in ``into``.

        Sets ``into.present``; a parameter without a gradient keeps a zero slice and ``p.grad = None``.
        """
        into.data.zero_()
        params = self._layout.params
        for p, v, ok in zip(params, into.views, self._viewable):
            target = v if ok else None
            if p.grad is not target:
                p.grad = target
        self._arrivals.start_pass()
        with torch.enable_grad():
            loss = closure()
        into.present = self._collect(into)
        if self._scaling is not None:
            self._scaling.unscale_(into.data)
        self._grad_evals += 1
        loss = self._as_loss(loss)
        if self._first_loss is None:
            self._first_loss = loss
        return loss

    def _collect(self, into: FlatBuffer) -> tuple[bool, ...]:
        """After a pass: copy gradients that went elsewhere into ``into``; which parameters got one."""
        present = list(self._arrivals.arrived)
        for i, (p, v) in enumerate(zip(self._layout.params, into.views)):
            g = p.grad
            if g is v:
                if not present[i]:
                    p.grad = None  # torch's state for a parameter that took no part in the pass
                continue
            present[i] = g is not None
            if g is not None:  # the gradient went elsewhere (or the parameter is not float32): copy it in
                v.copy_(g)
                self._fallback_copies += 1
                if self._viewable[i]:
                    p.grad = v
        return tuple(present)

    def _save_theta(self) -> torch.Tensor:
        """Copy θ into the backup buffer once per step; returns the flat θ."""
        if not self._theta_saved:
            torch._foreach_copy_(self._theta.views, self._layout.params)
            self._theta_saved = True
        return self._theta.data

    def _perturbed_gradient(self, closure: Closure, eps_hat: FlatBuffer, into: FlatBuffer) -> torch.Tensor:
        """Gradient at θ + ε̂ into ``into``; θ is restored exactly afterwards."""
        self._save_theta()
        params = self._layout.params
        torch._foreach_add_(params, eps_hat.views)
        try:
            return self._gradient(closure, into)
        finally:
            torch._foreach_copy_(params, self._theta.views)

    def _ascent(self, eps: torch.Tensor) -> tuple[FlatBuffer, torch.Tensor]:
        """ε̂ = ρ·ε/‖ε‖₂ into the scratch buffer; returns it and ‖ε̂‖ (0-d)."""
        norm = torch.linalg.vector_norm(eps)
        scale = self.rho / norm.clamp_min(TINY)
        torch.mul(eps, scale, out=self._eps_hat.data)
        return self._eps_hat, scale * norm

    def _sam_update(self, closure: Closure, eps: FlatBuffer, loss: torch.Tensor) -> Outcome:
        """The SAM half of a step whose ε (an exact gradient at θ) is in ``eps``."""
        eps_hat, eps_hat_norm = self._ascent(eps.data)
        loss_p = self._perturbed_gradient(closure, eps_hat, into=self._omega)
        return Outcome(self._omega, eps.data, eps_hat_norm, loss, loss_p, anchored=True)

    def _erm_update(self, grad: FlatBuffer, loss: torch.Tensor) -> Outcome:
        """A plain step with the gradient at θ (no ε this step)."""
        return Outcome(grad, None, None, loss, self._nan, anchored=False)

    # ---------------------------------------------------------------- internals
    def _refuse_gradscaler_step(self) -> None:
        """``GradScaler.step(self, closure)`` sets these attributes before calling step: refuse it."""
        if hasattr(self, "grad_scale") or hasattr(self, "found_inf"):
            self.__dict__.pop("grad_scale", None)  # GradScaler would leave them behind
            self.__dict__.pop("found_inf", None)
            raise GradscopeError(VIA_GRADSCALER)

    def _begin(self, scaling: LossScaling | None) -> None:
        """Per-step bookkeeping; zero frozen parameters' slices of the carried buffers."""
        self._grad_evals = 0
        self._first_loss = None
        self._theta_saved = False
        self._scaling = scaling
        frozen = [i for i, p in enumerate(self._layout.params) if not p.requires_grad]
        if frozen:
            slices = [buf.views[i] for buf in self._carried() for i in frozen]
            if slices:
                torch._foreach_zero_(slices)

    def _publish(self, omega: FlatBuffer) -> tuple[int, ...]:
        """Point every ``p.grad`` at ω for the base optimizer, ``None`` where the ω pass gave no
        gradient (ω's slice zeroed there); returns those parameters' indices."""
        present = omega.present if omega.present is not None else (True,) * len(self._viewable)
        absent = tuple(i for i, has in enumerate(present) if not has)
        if absent:
            torch._foreach_zero_([omega.views[i] for i in absent])
        for p, v, ok, has in zip(self._layout.params, omega.views, self._viewable, present):
            if not has:
                p.grad = None
            elif ok:
                if p.grad is not v:
                    p.grad = v
            else:
                p.grad = v.to(p.dtype)
        return absent

    def _step_info(self, out: Outcome, without_grad: tuple[int, ...], skipped: bool,
                   scaling: LossScaling | None) -> StepInfo:
        return StepInfo(
            omega=out.omega.data,
            eps=out.eps,
            eps_hat_norm=out.eps_hat_norm,
            loss=out.loss,
            loss_perturbed=out.loss_perturbed,
            anchored=out.anchored,
            grad_evals=self._grad_evals,
            rho=self.rho,
            params=self._layout.params,
            params_without_grad=without_grad,
            skipped=skipped,
            grad_scale=None if scaling is None else scaling.scale,
        )

    def _as_loss(self, loss: Any) -> torch.Tensor:
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise GradscopeError(f"the closure must return a scalar loss, got a tensor of shape {tuple(loss.shape)}")
            return loss.detach().reshape(())
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            return torch.tensor(float(loss), device=self._layout.device)
        raise GradscopeError(f"the closure must return the loss (a 0-d tensor), got {type(loss).__name__}")
