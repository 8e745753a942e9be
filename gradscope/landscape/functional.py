"""The model as a pure function of a flat parameter vector: L(θ) over a fixed evaluation set.

Nothing here writes to the model's parameters: ``torch.func.functional_call`` swaps given tensors
in for the duration of one call, so the model is left exactly as it was (the same Parameter
objects, the same storage, bit for bit). Buffers (running statistics, masks) are used as they are.

The loss of a parameter set over several batches is the batch-size-weighted mean of the per-batch
losses, so that it equals the loss over the whole evaluation set when ``loss_fn`` returns a mean
over its batch.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from gradscope.errors import GradscopeError
from gradscope.optim.flat import FlatLayout

Batch = Any
ForwardFn = Callable[[nn.Module, Batch], Any]
"""``forward(model, batch) -> outputs``: how to run a (re-parametrized) model on one batch."""
LossFn = Callable[[Any, Batch], torch.Tensor]
"""``loss_fn(outputs, batch) -> 0-d tensor``: the mean loss of one batch."""
MetricFn = Callable[[list, list], float]
"""``metric_fn(outputs_list, batches) -> float``: a task metric over the whole evaluation set."""


def default_forward(model: nn.Module, batch: Batch) -> Any:
    """``model(batch[0])`` for an ``(inputs, targets)`` tuple or list, else ``model(batch)``.

    A :class:`gradscope.models` ``GraphBatch`` (a dataclass) goes in whole: ``model(batch)``.
    """
    if isinstance(batch, (tuple, list)):
        return model(batch[0])
    return model(batch)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _tensors(getattr(obj, f.name))
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _tensors(v)


def batch_size(batch: Batch) -> int:
    """The leading dimension of the first tensor in the batch (1 if there is none)."""
    for t in _tensors(batch):
        if t.ndim >= 1:
            return int(t.shape[0])
    return 1


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode (dropout off) and restore each one's own flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


class _Bound(nn.Module):
    """Wraps ``forward(model, batch)`` as a module so that ``functional_call`` can drive it."""

    def __init__(self, model: nn.Module, forward: ForwardFn) -> None:
        super().__init__()
        self.model = model
        self._forward_fn = forward

    def forward(self, batch: Batch) -> Any:  # noqa: D401
        return self._forward_fn(self.model, batch)


class FunctionalModel:
    """``model`` + evaluation set + ``loss_fn`` as functions of named parameter tensors.

    Args:
        model: any ``nn.Module``; it is only read.
        batches: the fixed evaluation set (a list of batches of any structure ``forward`` takes).
        loss_fn: ``loss_fn(outputs, batch) -> 0-d tensor``.
        forward: ``forward(model, batch) -> outputs`` (default :func:`default_forward`).
        layout: which parameters are perturbed (default: all trainable ones).
        batch_weights: weights of the per-batch losses (default: batch sizes); normalized to sum 1.
    """

    def __init__(
        self,
        model: nn.Module,
        batches: Sequence[Batch],
        loss_fn: LossFn,
        *,
        forward: ForwardFn | None = None,
        layout: FlatLayout | None = None,
        batch_weights: Sequence[float] | None = None,
    ) -> None:
        self.model = model
        self.batches = list(batches)
        if not self.batches:
            raise GradscopeError("the evaluation set is empty: give at least one batch")
        self.loss_fn = loss_fn
        self.forward = forward or default_forward
        self.layout = layout or FlatLayout.from_module(model)
        self.layout.parameters(model)  # checks that the layout matches the model
        raw = [float(w) for w in batch_weights] if batch_weights is not None else [
            float(batch_size(b)) for b in self.batches
        ]
        if len(raw) != len(self.batches) or sum(raw) <= 0 or min(raw) < 0:
            raise GradscopeError("batch_weights must be one non-negative weight per batch, not all zero")
        total = sum(raw)
        self.weights = [w / total for w in raw]
        self._bound = _Bound(model, self.forward)
        self._keys = tuple(f"model.{n}" for n in self.layout.names)

    @property
    def device(self) -> torch.device:
        return self.layout.parameters(self.model)[0].device

    def origin(self) -> torch.Tensor:
        """θ₀, a flat copy of the model's current parameters."""
        return self.layout.flatten_module(self.model)

    def named(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ``functional_call`` dictionary for a flat vector ``[..., P]`` (views, no copy)."""
        return dict(zip(self._keys, self.layout.named(flat).values()))

    def outputs(self, params: Mapping[str, torch.Tensor], batch: Batch) -> Any:
        """Model outputs on ``batch`` with ``params`` (from :meth:`named`) in place of θ."""
        return functional_call(self._bound, dict(params), (batch,))

    def batch_loss(self, params: Mapping[str, torch.Tensor], batch: Batch) -> tuple[torch.Tensor, Any]:
        """``(loss_fn(outputs, batch), outputs)`` with ``params`` in place of θ."""
        return self._checked_loss(self.outputs(params, batch), batch)

    def batch_loss_of(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Any]:
        """``(loss_fn(outputs, batch), outputs)`` of another module (a copy holding other parameters)."""
        return self._checked_loss(self.forward(model, batch), batch)

    def _checked_loss(self, out: Any, batch: Batch) -> tuple[torch.Tensor, Any]:
        loss = self.loss_fn(out, batch)
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise GradscopeError("loss_fn must return a 0-d tensor (the mean loss of the batch)")
        return loss, out

    def loss(self, flat: torch.Tensor) -> torch.Tensor:
        """L(θ) over the whole evaluation set for one flat vector ``[P]`` (differentiable)."""
        params = self.named(flat)
        total = None
        for w, batch in zip(self.weights, self.batches):
            loss, _ = self.batch_loss(params, batch)
            total = w * loss if total is None else total + w * loss
        assert total is not None
        return total
