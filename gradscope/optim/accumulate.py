"""Gradient accumulation for sharpness-aware steps: one closure over several micro-batches.

A sharpness-aware step calls its closure more than once (at θ and at θ + ε̂), so the micro-batches
of an accumulated batch must all be inside the closure: accumulating them before ``step()`` — as
frameworks do for plain optimizers (Lightning's ``accumulate_grad_batches``) — would make ε the
gradient of the last micro-batch only. gradscope refuses that (a ``GradscopeError`` at the next
``step()``) and offers :func:`micro_batch_closure` instead::

    closure = micro_batch_closure(lambda mb: loss_fn(model(mb.x), mb.y), micro_batches,
                                  weights=[len(mb.y) for mb in micro_batches])
    optimizer.step(closure)

Each call of the closure backpropagates every micro-batch's loss times its normalised weight,
so the accumulated gradient is the gradient of the weighted mean loss — with weights
proportional to the micro-batch sizes, the gradient of the mean loss over the whole batch —
and it returns that weighted mean loss (detached).
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Sequence

import torch

from gradscope.errors import GradscopeError


def _normalised(weights: Sequence[float] | None, n: int) -> list[float]:
    if n == 0:
        raise GradscopeError("micro_batch_closure needs at least one micro-batch")
    if weights is None:
        return [1.0 / n] * n
    w = [float(x) for x in weights]
    if len(w) != n:
        raise GradscopeError(f"{len(w)} weights for {n} micro-batches")
    if any(x < 0 for x in w) or sum(w) <= 0:
        raise GradscopeError(f"micro-batch weights must be >= 0 with a positive sum, got {list(weights)}")
    total = sum(w)
    return [x / total for x in w]


def micro_batch_closure(
    loss_fn: Callable[[Any], torch.Tensor],
    micro_batches: Sequence[Any],
    *,
    weights: Sequence[float] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    no_sync: Callable[[], ContextManager[Any]] | None = None,
) -> Callable[[], torch.Tensor]:
    """A closure that backpropagates every micro-batch and returns the weighted mean loss.

    Args:
        loss_fn: ``loss_fn(micro_batch)`` runs the forward pass (under autocast if wanted) and
            returns the micro-batch's mean loss (a 0-d tensor).
        micro_batches: the micro-batches of one step.
        weights: relative weights (e.g. micro-batch sizes), normalised to sum 1; equal by default.
        scaler: a ``torch.amp.GradScaler``: each weighted loss is backpropagated as
            ``scaler.scale(...)`` (then call ``optimizer.step(closure, scaler=scaler)``).
        no_sync: e.g. ``ddp_model.no_sync``: entered for every micro-batch but the last, so that
            DistributedDataParallel all-reduces the gradients once per pass.
    """
    w = _normalised(weights, len(micro_batches))
    batches = list(micro_batches)

    def closure() -> torch.Tensor:
        total: torch.Tensor | None = None
        for i, (batch, wi) in enumerate(zip(batches, w)):
            last = i == len(batches) - 1
            with contextlib.nullcontext() if (no_sync is None or last) else no_sync():
                loss = loss_fn(batch)
                weighted = loss * wi
                (weighted if scaler is None else scaler.scale(weighted)).backward()
            part = weighted.detach()
            total = part if total is None else total + part
        assert total is not None
        return total

    return closure
