"""Tiny seeded problems and naive helpers for the optimizer tests.

Everything here is deliberately plain: per-tensor Python loops, fresh autograd passes, no flat
buffers, so that the references the tests build from it are obviously correct.
"""
from __future__ import annotations

import copy
import sys
from contextlib import contextmanager
from typing import Callable, Sequence

import torch
from torch import nn

Batch = tuple[torch.Tensor, torch.Tensor]


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A 2-layer MLP, 5 → 7 → 1 (4 parameter tensors)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 1)).to(dtype)


def make_batches(n: int = 6, size: int = 8, seed: int = 1, dtype: torch.dtype = torch.float32) -> list[Batch]:
    """``n`` random regression batches."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(size, 5, generator=gen, dtype=dtype), torch.randn(size, 1, generator=gen, dtype=dtype))
        for _ in range(n)
    ]


def two_groups(model: nn.Module, lr: float = 0.01) -> list[dict]:
    """Two parameter groups with different learning rates (first layer, last layer)."""
    return [
        {"params": list(model[0].parameters())},
        {"params": list(model[2].parameters()), "lr": 2 * lr},
    ]


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)


def loss_of(model: nn.Module, batch: Batch) -> torch.Tensor:
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def closure_for(model: nn.Module, batch: Batch, calls: list | None = None) -> Callable[[], torch.Tensor]:
    """A standard closure: forward, backward, return the loss (records θ per call in ``calls``)."""

    def closure() -> torch.Tensor:
        if calls is not None:
            calls.append([p.detach().clone() for p in model.parameters()])
        loss = loss_of(model, batch)
        loss.backward()
        return loss

    return closure


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def grads_at(model: nn.Module, batch: Batch) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Fresh gradients of the trainable parameters at the current θ (zeros where none)."""
    params = trainable(model)
    for p in params:
        p.grad = None
    loss = loss_of(model, batch)
    loss.backward()
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]
    for p in params:
        p.grad = None
    return grads, loss.detach()


def global_norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """√(Σ_k ‖x_k‖²), per tensor then summed (an independent way from one flat norm)."""
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors)).float()


def dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x.double() * y.double()).sum() for x, y in zip(a, b)).float()


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


@torch.no_grad()
def grad_at_perturbed(model: nn.Module, batch: Batch, e: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradient at θ + e; θ is put back from a saved copy."""
    params = trainable(model)
    saved = [p.detach().clone() for p in params]
    for p, d in zip(params, e):
        p.add_(d)
    with torch.enable_grad():
        grads, loss = grads_at(model, batch)
    for p, s in zip(params, saved):
        p.copy_(s)
    return grads, loss


def base_step(model: nn.Module, base: torch.optim.Optimizer, omega: Sequence[torch.Tensor]) -> None:
    """Hand ω to a plain torch optimizer."""
    for p, w in zip(trainable(model), omega):
        p.grad = w.clone()
    base.step()
    for p in trainable(model):
        p.grad = None


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def assert_params_close(a: nn.Module | list, b: nn.Module | list, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    pa = params_of(a) if isinstance(a, nn.Module) else a
    pb = params_of(b) if isinstance(b, nn.Module) else b
    assert len(pa) == len(pb)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x, y, atol=atol, rtol=rtol)


def assert_params_equal(a: nn.Module, b: nn.Module) -> None:
    for x, y in zip(a.parameters(), b.parameters()):
        assert torch.equal(x, y), (x - y).abs().max()


class RecordingSGD(torch.optim.SGD):
    """SGD that records the parameters and gradients it is handed at each ``step``."""

    def __init__(self, params, **kw):  # type: ignore[no-untyped-def]
        super().__init__(params, **kw)
        self.seen_params: list[list[torch.Tensor]] = []
        self.seen_grads: list[list[torch.Tensor]] = []

    def step(self, closure=None):  # type: ignore[no-untyped-def,override]
        ps = [p for g in self.param_groups for p in g["params"]]
        self.seen_params.append([p.detach().clone() for p in ps])
        self.seen_grads.append([None if p.grad is None else p.grad.detach().clone() for p in ps])
        return super().step(closure)


def naive_sam_step(model, base, batch, rho):
    """SAM (Foret et al. 2021) written out: g, ε̂ = ρ g/‖g‖, ω at θ+ε̂, base step.

    Returns (loss at θ, g, ε̂, ω), per tensor.
    """
    g, loss = grads_at(model, batch)
    scale = rho / max(global_norm(g), 1e-12)
    e = [x * scale for x in g]
    omega, _ = grad_at_perturbed(model, batch, e)
    base_step(model, base, omega)
    return loss, g, e, omega


class Branchy(nn.Module):
    """A model whose parameters get gradients on some steps only (torch's ``None`` cases).

    - ``branch``: a residual branch used only when ``use_branch`` (a conditional branch);
    - ``late``: a second head added to the output only when ``use_late`` (a late-starting head);
    - ``middle``: used every step (the tests freeze it mid-run with ``requires_grad_(False)``);
    - ``never``: a parameter the forward never reads.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.trunk = nn.Linear(5, 7)
        self.middle = nn.Linear(7, 7)
        self.branch = nn.Linear(7, 7)
        self.head = nn.Linear(7, 1)
        self.late = nn.Linear(7, 1)
        self.never = nn.Parameter(torch.randn(4))
        self.use_branch = True
        self.use_late = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.middle(torch.tanh(self.trunk(x))))
        if self.use_branch:
            h = h + torch.tanh(self.branch(h))
        out = self.head(h)
        if self.use_late:
            out = out + self.late(h)
        return out


def branchy_schedule(model: Branchy, t: int) -> None:
    """Step t of the Branchy scenario: branch on steps 0 and 3 only, the late head from step 4,
    ``middle`` frozen from step 5."""
    model.use_branch = t in (0, 3)
    model.use_late = t >= 4
    model.middle.weight.requires_grad_(t < 5)
    model.middle.bias.requires_grad_(t < 5)


def torch_closure(model: nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> Callable[[], torch.Tensor]:
    """The plain-torch closure: zero (to None), forward, backward, return the loss."""

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, batch)
        loss.backward()
        return loss

    return closure


HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextmanager
def host_reads_from_gradscope(allowed: int):
    """Record host reads made by gradscope.optim code; raise past ``allowed`` of them."""
    reads: list[tuple[str, str]] = []
    saved = {}
    for name in HOST_READS:
        saved[name] = (name in torch.Tensor.__dict__, getattr(torch.Tensor, name))

        def guard(self, *args, __name=name, __orig=saved[name][1], **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("gradscope.optim"):
                reads.append((__name, caller))
                if len(reads) > allowed:
                    raise AssertionError(f"host read Tensor.{__name} in {caller}")
            return __orig(self, *args, **kwargs)

        setattr(torch.Tensor, name, guard)
    try:
        yield reads
    finally:
        for name, (own, orig) in saved.items():
            if own:
                setattr(torch.Tensor, name, orig)
            else:
                delattr(torch.Tensor, name)
