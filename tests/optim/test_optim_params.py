"""Frozen parameters, parameters without gradients, LR schedulers, zero_grad, odd closures."""
from __future__ import annotations

import pytest
import torch
from kit.optim import (
    assert_params_close,
    clone,
    closure_for,
    flat,
    loss_of,
    make_batches,
    make_model,
    naive_sam_step,
    trainable,
)
from torch import nn

import gradscope.optim as go
from gradscope.errors import GradscopeError


def test_frozen_parameters_are_left_out():
    model, batches = make_model(), make_batches()
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.detach().clone()
    ref = clone(model)
    opt = go.SAM(model.parameters(), rho=0.1, lr=0.01)
    base = torch.optim.Adam(trainable(ref), lr=0.01)
    assert opt.params == trainable(model) and len(opt.params) == 3
    for t in range(4):
        opt.step(closure_for(model, batches[t]))
        naive_sam_step(ref, base, batches[t], 0.1)
        assert opt.last_step.omega.numel() == sum(p.numel() for p in trainable(model))
    assert torch.equal(model[0].weight, frozen) and model[0].weight.grad is None
    assert_params_close(model, ref)


class WithUnused(nn.Module):
    """The MLP plus a parameter the forward never touches (it never gets a gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = make_model()
        self.unused = nn.Parameter(torch.randn(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


@pytest.mark.parametrize("name", ["sam", "graphsam", "asam", "graphsam-released"])
def test_parameters_without_gradient_are_skipped_and_do_not_move(name):
    """torch's rule: no gradient in the pass → p.grad is None, the base optimizer skips it; its
    slices of ε and ω are zero (test_optim_none_grads.py checks this against plain torch)."""
    model, batches = WithUnused(), make_batches()
    start = model.unused.detach().clone()
    opt = go.make_optimizer(name, model.parameters(), lr=0.01)
    k = [i for i, p in enumerate(opt.params) if p is model.unused][0]
    offset = sum(p.numel() for p in opt.params[:k])
    for t in range(5):
        calls: list = []
        opt.step(closure_for(model, batches[t], calls))
        for seen in calls:  # neither pass moved it: the ascent has a zero slice there
            assert torch.equal(seen[k], start)
        assert torch.count_nonzero(opt.last_step.omega[offset:offset + 3]) == 0
        if opt.last_step.eps is not None:
            assert torch.count_nonzero(opt.last_step.eps[offset:offset + 3]) == 0
        assert opt.last_step.params_without_grad == (k,) and model.unused.grad is None
    assert torch.equal(model.unused, start)
    assert model.unused not in opt.base_optimizer.state  # never stepped, as in torch


def test_lr_scheduler_edits_reach_the_base_optimizer():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), base_optimizer="sgd", lr=0.1)
    assert opt.param_groups is opt.base_optimizer.param_groups
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 if epoch == 0 else 0.0)
    before = [p.detach().clone() for p in model.parameters()]
    opt.step(closure_for(model, batches[0]))
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), before))
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.0
    frozen_in_time = [p.detach().clone() for p in model.parameters()]
    opt.step(closure_for(model, batches[1]))
    for a, b in zip(model.parameters(), frozen_in_time):
        assert torch.equal(a, b)


def test_lr_scheduler_matches_reference_run():
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.SAM(model.parameters(), rho=0.05, lr=0.02)
    base = torch.optim.Adam(ref.parameters(), lr=0.02)
    s1 = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    s2 = torch.optim.lr_scheduler.StepLR(base, step_size=1, gamma=0.5)
    for t in range(5):
        opt.step(closure_for(model, batches[t]))
        naive_sam_step(ref, base, batches[t], 0.05)
        s1.step()
        s2.step()
    assert_params_close(model, ref)


def test_zero_grad():
    model, batches = make_model(), make_batches()
    opt = go.GraphSAM(model.parameters(), lr=0.01)
    opt.step(closure_for(model, batches[0]))
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad(set_to_none=False)
    assert all(torch.count_nonzero(p.grad) == 0 for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    opt.step(closure_for(model, batches[1]))  # and steps keep working
    assert opt._fallback_copies == 0


def test_closure_that_sets_grads_to_none_gives_the_same_result():
    """The recommended closure leaves zeroing to the optimizer; one that zeroes itself still works."""
    model, batches = make_model(), make_batches()
    twin = clone(model)
    a = go.GraphSAM(model.parameters(), beta=0.9, lr=0.01)
    b = go.GraphSAM(twin.parameters(), beta=0.9, lr=0.01)

    def zeroing_closure(batch):
        def closure():
            b.zero_grad(set_to_none=True)
            loss = loss_of(twin, batch)
            loss.backward()
            return loss

        return closure

    for t in range(5):
        a.step(closure_for(model, batches[t]))
        b.step(zeroing_closure(batches[t]))
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.equal(p, q)
    assert a._fallback_copies == 0 and b._fallback_copies > 0


def test_float64_parameters_take_the_copy_path():
    model, batches = make_model(dtype=torch.float64), make_batches(dtype=torch.float64)
    ref = clone(model)
    opt = go.SAM(model.parameters(), rho=0.05, lr=0.01)
    base = torch.optim.Adam(ref.parameters(), lr=0.01)
    for t in range(4):
        opt.step(closure_for(model, batches[t]))
        naive_sam_step(ref, base, batches[t], 0.05)
        assert opt.last_step.omega.dtype == torch.float32
    assert_params_close(model, ref, atol=1e-6, rtol=1e-5)


def test_closure_must_return_a_scalar_loss():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), lr=0.01)

    def returns_nothing():
        loss_of(model, batches[0]).backward()

    with pytest.raises(GradscopeError, match="must return the loss"):
        opt.step(returns_nothing)
    # θ is restored even when a closure fails half-way
    before = [p.detach().clone() for p in model.parameters()]
    calls = []

    def fails_second_time():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        loss = loss_of(model, batches[0])
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="boom"):
        opt.step(fails_second_time)
    for a, b in zip(model.parameters(), before):
        assert torch.equal(a, b)


def test_omega_is_the_flat_gradient_seen_by_the_base_optimizer():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), base_optimizer=__import__("kit.optim", fromlist=["_"]).RecordingSGD, lr=0.01)
    opt.step(closure_for(model, batches[0]))
    torch.testing.assert_close(flat(opt.base_optimizer.seen_grads[-1]), opt.last_step.omega, rtol=0, atol=0)
