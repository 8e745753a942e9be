"""Gradient accumulation: micro_batch_closure against one big batch, and gradients accumulated
behind the optimizer's back refused with one clear error."""
from __future__ import annotations

import pytest
import torch
from kit.optim import closure_for, loss_of, make_batches, make_model, two_groups

import gradscope.optim as go
from gradscope.errors import GradscopeError
from gradscope.probes.exact import exact_gradients

KWARGS = {"sam-k": {"k": 2}, "looksam": {"k": 2}, "ae-sam": {"total_steps": 6}, "rst": {"p": 0.5}}


def split(batch, sizes):
    x, y = batch
    return list(zip(torch.split(x, sizes), torch.split(y, sizes)))


@pytest.mark.parametrize("name", ["sam", "graphsam", "looksam", "asam"])
def test_micro_batches_equal_one_big_batch(name):
    """Unequal micro-batches weighted by size: ε, ω, the loss and the update are the big batch's."""
    model, batches = make_model(), make_batches(n=5, size=12)
    twin = make_model()
    a = go.make_optimizer(name, model.parameters(), lr=0.01, **KWARGS.get(name, {}))
    b = go.make_optimizer(name, twin.parameters(), lr=0.01, **KWARGS.get(name, {}))
    sizes = [5, 4, 3]
    # LookSAM's g_v is a difference of nearly equal gradients: its rounding is scaled up to α‖g‖
    tol = {"rtol": 1e-4, "atol": 1e-5} if name == "looksam" else {"rtol": 1e-5, "atol": 1e-7}
    for t in range(5):
        micro = split(batches[t], sizes)
        loss = a.step(go.micro_batch_closure(lambda mb: loss_of(model, mb), micro, weights=sizes))
        big_loss = b.step(closure_for(twin, batches[t]))
        torch.testing.assert_close(loss, big_loss, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(a.last_step.omega, b.last_step.omega, **tol)
        if b.last_step.eps is not None:
            torch.testing.assert_close(a.last_step.eps, b.last_step.eps, **tol)
        for p, q in zip(model.parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, **tol)


def test_micro_batch_closure_weights_and_scaler():
    model, (batch,) = make_model(), make_batches(n=1, size=8)
    micro = split(batch, [4, 4])
    losses = [float(loss_of(model, mb).detach()) for mb in micro]
    equal = go.micro_batch_closure(lambda mb: loss_of(model, mb), micro)
    assert float(equal()) == pytest.approx(sum(losses) / 2)
    skewed = go.micro_batch_closure(lambda mb: loss_of(model, mb), micro, weights=[3, 1])
    assert float(skewed()) == pytest.approx(0.75 * losses[0] + 0.25 * losses[1])
    with pytest.raises(GradscopeError, match="2 weights for 3"):
        go.micro_batch_closure(lambda mb: mb, [1, 2, 3], weights=[1, 2])
    with pytest.raises(GradscopeError, match=">= 0"):
        go.micro_batch_closure(lambda mb: mb, [1, 2], weights=[1, -1])
    with pytest.raises(GradscopeError, match="at least one"):
        go.micro_batch_closure(lambda mb: mb, [])
    # with a scaler: the same step as without one (scaling by a power of two is exact)
    twin = make_model()
    a, b = go.SAM(model.parameters(), lr=0.01), go.SAM(twin.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    a.step(go.micro_batch_closure(lambda mb: loss_of(model, mb), micro, scaler=scaler), scaler=scaler)
    b.step(go.micro_batch_closure(lambda mb: loss_of(twin, mb), micro))
    assert torch.equal(a.last_step.omega, b.last_step.omega)


def test_no_sync_is_entered_for_all_micro_batches_but_the_last():
    model, (batch,) = make_model(), make_batches(n=1, size=9)
    entered = []

    class NoSync:
        def __enter__(self):
            entered.append(True)

        def __exit__(self, *exc):
            return False

    closure = go.micro_batch_closure(lambda mb: loss_of(model, mb), split(batch, [3, 3, 3]), no_sync=NoSync)
    closure()
    assert len(entered) == 2


# ----------------------------------------------------------------- behind the optimizer's back
def lightning_like_accumulation(model, opt, micro, set_to_none):
    """What a framework does for accumulate_grad_batches: backward on the first micro-batches
    outside step(), then step(closure) whose closure runs the last one."""
    opt.zero_grad(set_to_none=set_to_none)
    for mb in micro[:-1]:
        loss_of(model, mb).backward()
    opt.step(closure_for(model, micro[-1]))


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_gradients_accumulated_outside_step_are_refused(name, set_to_none):
    model, batches = make_model(), make_batches(n=3)
    opt = go.make_optimizer(name, two_groups(model), lr=0.01, **KWARGS.get(name, {}))
    opt.step(closure_for(model, batches[0]))  # p.grad now holds ω's views (the set_to_none=False case)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(GradscopeError, match="accumulate_grad_batches") as err:
        lightning_like_accumulation(model, opt, split(batches[1], [4, 4]), set_to_none)
    assert "\n" not in str(err.value)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    opt.zero_grad()  # the user discards them: stepping works again
    opt.step(closure_for(model, batches[2]))


def test_a_backward_before_the_first_step_is_refused():
    model, batches = make_model(), make_batches()
    opt = go.GraphSAM(model.parameters(), lr=0.01)
    loss_of(model, batches[0]).backward()
    with pytest.raises(GradscopeError, match="outside step"):
        opt.step(closure_for(model, batches[0]))


def test_what_is_not_accumulation_is_let_through():
    """Zeroing after a stray backward (optimizer's or module's, either kind), stale gradients left by
    another optimizer, and the recorder's exact-ε probe (which puts the old .grad back) are fine."""
    model, batches = make_model(), make_batches(n=8)
    other = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_of(model, batches[0]).backward()
    other.step()  # stale gradients in p.grad from a plain optimizer that ran before
    opt = go.SAM(model.parameters(), lr=0.01)
    opt.step(closure_for(model, batches[1]))
    for zero in (lambda: model.zero_grad(set_to_none=False), lambda: model.zero_grad(),
                 lambda: opt.zero_grad(set_to_none=False), lambda: opt.zero_grad()):
        loss_of(model, batches[2]).backward()
        zero()
        opt.step(closure_for(model, batches[3]))
    exact = exact_gradients(closure_for(model, batches[4]), opt.params)
    assert all(g is not None for g in exact)
    opt.step(closure_for(model, batches[4]))
    assert opt.steps == 6
