"""Which parameters autograd gave a gradient to, known on the host without reading a tensor.

torch's rule is that a parameter whose ``.grad`` is ``None`` after backward took no part in the
pass, and every torch optimizer skips it. gradscope points each ``p.grad`` at a view of a flat
buffer before a pass (so that autograd accumulates straight into it), which hides that fact: the
view is there whether or not autograd wrote it. A post-accumulate-grad hook on every parameter
gives it back: autograd calls the hook exactly when it accumulates into ``p.grad``.

The same hooks catch gradients accumulated *outside* ``step()``. A gradscope optimizer computes
its gradients inside ``step(closure)`` and zeroes them before each closure call, so a backward
pass run before ``step()`` (a framework's gradient accumulation, e.g. Lightning's
``accumulate_grad_batches``, or a ``loss.backward()`` before ``step(closure)``) would be silently
discarded. The hook remembers the gradient such a pass left (a weak reference and the tensor's
version counter); if ``p.grad`` still holds it, unchanged, when ``step()`` starts, the step
raises. Zeroing in between (``zero_grad()`` of the optimizer or the module, either kind) or
putting the previous gradient back (the recorder's exact-ε probe does) clears the condition.
"""
from __future__ import annotations

import functools
import weakref
from typing import Sequence

import torch

from gradscope.errors import GradscopeError

STRAY_GRADIENTS = (
    "gradients were accumulated into the parameters outside step() (a backward pass before "
    "step(closure), e.g. Lightning's accumulate_grad_batches) and step() would discard them: "
    "backpropagate every micro-batch inside the closure (gradscope.optim.micro_batch_closure) "
    "or call optimizer.zero_grad() before step()"
)


class GradientArrivals:
    """Post-accumulate-grad hooks on ``params``: per-pass arrival flags and stray-gradient checks.

    The hooks hold only a weak reference to this object and are removed when it is collected.
    """

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self._n = len(params)
        self.arrived: list[bool] = [False] * self._n
        self.inside = False  # True while step() runs the closure
        self._stray: dict[int, tuple[weakref.ref, int]] = {}
        me = weakref.ref(self)
        handles = [p.register_post_accumulate_grad_hook(functools.partial(_on_grad, me, i))
                   for i, p in enumerate(params)]
        weakref.finalize(self, _remove, handles)

    def start_pass(self) -> None:
        """Forget the previous pass's arrivals."""
        self.arrived = [False] * self._n

    def forget_stray(self) -> None:
        self._stray.clear()

    def check_no_stray(self, params: Sequence[torch.Tensor]) -> None:
        """Raise :class:`GradscopeError` when a gradient accumulated outside step() is still in ``p.grad``."""
        stray, self._stray = self._stray, {}
        for i, (ref, version) in stray.items():
            grad = params[i].grad
            if grad is not None and ref() is grad and grad._version == version:
                raise GradscopeError(STRAY_GRADIENTS)

    def _note(self, i: int, p: torch.Tensor) -> None:
        if self.inside:
            self.arrived[i] = True
        elif p.grad is not None:
            self._stray[i] = (weakref.ref(p.grad), p.grad._version)


def _on_grad(me: weakref.ref, i: int, p: torch.Tensor) -> None:
    arrivals = me()
    if arrivals is not None:
        arrivals._note(i, p)


def _remove(handles: list) -> None:
    for h in handles:
        h.remove()
