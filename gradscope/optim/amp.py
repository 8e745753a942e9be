"""fp16 loss scaling (``torch.amp.GradScaler``) for steps that run several passes.

``GradScaler.step(optimizer)`` unscales the gradients already in ``p.grad``, checks them for
inf/NaN and then calls ``optimizer.step()``. A sharpness-aware step computes its gradients
*inside* ``step(closure)``, several per step, each of which must be unscaled before it is used
(ε is normalised, GraphSAM mixes ε with ω/‖ω‖, ...), so ``GradScaler.step`` cannot drive it
(torch documents closures as unsupported there). gradscope's call is instead::

    def closure():
        with torch.autocast(device_type, dtype=torch.float16):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        return loss                       # the unscaled loss
    optimizer.step(closure, scaler=scaler)
    scaler.update()

What :class:`LossScaling` does in that step, the way ``GradScaler.unscale_`` and
``GradScaler.step`` do it for one gradient:

- after every pass the flat float32 gradient buffer is multiplied by 1/scale (computed in float64
  as torch does) and checked for inf/NaN by one ``torch._amp_foreach_non_finite_check_and_unscale_``
  kernel, into one ``found_inf`` flag per step (no host read);
- at the end of the step the flag is read on the host once — the read ``GradScaler.step`` itself
  makes — to skip the base optimizer's step, and it is handed to the scaler as this optimizer's
  inf check, so that ``scaler.update()`` backs the scale off exactly as after ``scaler.step``.

GradScaler has no public API for "record this inf check" or "give me the scale without a host
read", so this module reads ``scaler._scale`` and writes ``scaler._per_optimizer_states`` (the
state ``unscale_``/``step`` write). It checks that they exist and tests pin them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.amp.grad_scaler import OptState

from gradscope.errors import GradscopeError

NOT_A_SCALER = "scaler must be a torch.amp.GradScaler (or torch.cuda.amp.GradScaler), got {!r}"
NO_SCALE = ("the closure did not scale its loss: with scaler=..., backpropagate scaler.scale(loss) "
            "in the closure and return the unscaled loss")
NO_UPDATE = "step(closure, scaler=scaler) was called twice without scaler.update() in between"
VIA_GRADSCALER = ("GradScaler.step(optimizer, closure) cannot drive a multi-pass step (torch does not "
                  "support closures there): call optimizer.step(closure, scaler=scaler), then scaler.update()")


class LossScaling:
    """One optimizer step's use of a GradScaler: unscale each pass, collect inf/NaN, report it.

    Build it with :meth:`begin`, which returns None when there is nothing to do (no scaler, or a
    disabled one — then the step is an ordinary one, as ``GradScaler.step`` would make it).
    """

    def __init__(self, scaler: torch.amp.GradScaler, optimizer: Any, device: torch.device) -> None:
        self._scaler = scaler
        self._state = scaler._per_optimizer_states[id(optimizer)]
        if self._state["stage"] is OptState.STEPPED:
            raise GradscopeError(NO_UPDATE)
        self.found_inf = torch.zeros((), dtype=torch.float32, device=device)
        self.inv_scale: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    @classmethod
    def begin(cls, scaler: Any, optimizer: Any, device: torch.device) -> LossScaling | None:
        if scaler is None:
            return None
        if not isinstance(scaler, torch.amp.GradScaler):
            raise GradscopeError(NOT_A_SCALER.format(scaler))
        if not scaler.is_enabled():
            return None
        return cls(scaler, optimizer, device)

    def unscale_(self, flat: torch.Tensor) -> None:
        """``flat`` ← ``flat``/scale in place; ``found_inf`` becomes 1 if any entry is inf/NaN."""
        if self.inv_scale is None:
            scale = getattr(self._scaler, "_scale", None)
            if scale is None:  # the scale is created by the first scaler.scale(...) call
                raise GradscopeError(NO_SCALE)
            self.scale = scale.detach().clone().to(flat.device)  # update() changes the scaler's in place
            self.inv_scale = scale.double().reciprocal().float().to(flat.device)
        torch._amp_foreach_non_finite_check_and_unscale_([flat], self.found_inf, self.inv_scale)

    def finish(self) -> bool:
        """Hand the step's inf check to the scaler (for ``update()``); True when the step must be skipped.

        The one host read of a step under loss scaling, as in ``GradScaler.step``.
        """
        self._state["found_inf_per_device"] = {self.found_inf.device: self.found_inf}
        self._state["stage"] = OptState.STEPPED
        return bool(self.found_inf)
