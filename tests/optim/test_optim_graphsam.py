"""GraphSAM, SAM-One, SAM-k against hand-written eq. 3 sequences; pass counts; StepRho."""
from __future__ import annotations

import math

import pytest
import torch
from kit.optim import (
    assert_params_close,
    base_step,
    clone,
    closure_for,
    flat,
    global_norm,
    grad_at_perturbed,
    grads_at,
    make_batches,
    make_model,
    two_groups,
)

import gradscope.optim as go


def naive_reused_eps(model, base, batches, steps, rho, beta, anchors):
    """GraphSAM's Algorithm 1 written out per tensor: exact ε at anchor steps, eq. 3 in between."""
    eps, record = None, []
    for t in range(steps):
        batch = batches[t % len(batches)]
        if t in anchors:
            eps, _ = grads_at(model, batch)
        n = global_norm(eps)
        e = [x * (rho / n) for x in eps]
        omega, loss_p = grad_at_perturbed(model, batch, e)
        record.append((flat(eps), flat(omega), loss_p))
        base_step(model, base, omega)
        w = global_norm(omega)
        eps = [beta * x + (1 - beta) * o / w for x, o in zip(eps, omega)]
    return record


@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_graphsam_eps_follows_eq3(beta):
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.GraphSAM(two_groups(model), rho=0.05, beta=beta, lr=0.01)
    anchors = {0, 5}
    record = naive_reused_eps(ref, torch.optim.Adam(two_groups(ref), lr=0.01), batches, 9, 0.05, beta, anchors)
    seen = []
    for t in range(9):
        if t in anchors and t > 0:
            opt.anchor()
        loss = opt.step(closure_for(model, batches[t % len(batches)]))
        info = opt.last_step
        eps, omega, loss_p = record[t]
        torch.testing.assert_close(info.eps, eps, atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(info.omega, omega, atol=1e-6, rtol=1e-4)
        torch.testing.assert_close(info.loss_perturbed, loss_p, atol=1e-6, rtol=1e-5)
        assert info.anchored == (t in anchors)
        assert info.grad_evals == (2 if t in anchors else 1)
        if not info.anchored:
            assert math.isnan(float(info.loss))
            assert torch.equal(loss, info.loss_perturbed)  # the first closure call was at θ+ε̂
        seen.append((info.eps.clone(), info.omega.clone(), info.anchored))
    assert_params_close(model, ref, atol=1e-5, rtol=1e-4)
    # the recorded sequence itself satisfies eq. 3 between anchors
    for (e0, w0, _), (e1, _, anchored) in zip(seen, seen[1:]):
        if not anchored:
            torch.testing.assert_close(e1, beta * e0 + (1 - beta) * w0 / w0.norm(), atol=1e-6, rtol=1e-5)


def test_graphsam_anchored_every_step_equals_sam():
    model, batches = make_model(), make_batches()
    twin = clone(model)
    gs = go.GraphSAM(two_groups(model), rho=0.07, beta=0.9, lr=0.01)
    sam = go.SAM(two_groups(twin), rho=0.07, lr=0.01)
    for t in range(8):
        gs.anchor()
        batch = batches[t % len(batches)]
        a = gs.step(closure_for(model, batch))
        b = sam.step(closure_for(twin, batch))
        assert torch.equal(a, b)
        assert gs.last_step.grad_evals == 2
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.equal(p, q)


def test_sam_one_reuses_the_anchor_gradient_unchanged():
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.SAMOne(model.parameters(), rho=0.05, lr=0.01)
    record = naive_reused_eps(ref, torch.optim.Adam(ref.parameters(), lr=0.01), batches, 8, 0.05, 1.0, {0, 4})
    evals, first_eps = [], None
    for t in range(8):
        if t == 4:
            opt.anchor()
        opt.step(closure_for(model, batches[t % len(batches)]))
        info = opt.last_step
        evals.append(info.grad_evals)
        torch.testing.assert_close(info.eps, record[t][0], atol=1e-6, rtol=1e-5)
        if t in (0, 4):
            first_eps = info.eps.clone()
        assert torch.equal(info.eps, first_eps)
    assert evals == [2, 1, 1, 1, 2, 1, 1, 1]
    assert_params_close(model, ref, atol=1e-5, rtol=1e-4)


def test_sam_k_recomputes_every_k_steps():
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.SAMK(model.parameters(), rho=0.05, k=3, lr=0.01)
    anchors = {0, 3, 6}
    record = naive_reused_eps(ref, torch.optim.Adam(ref.parameters(), lr=0.01), batches, 8, 0.05, 1.0, anchors)
    evals = []
    for t in range(8):
        opt.step(closure_for(model, batches[t % len(batches)]))
        evals.append(opt.last_step.grad_evals)
        assert opt.last_step.anchored == (t in anchors)
        torch.testing.assert_close(opt.last_step.eps, record[t][0], atol=1e-6, rtol=1e-5)
    assert evals == [2, 1, 1, 2, 1, 1, 2, 1]
    assert_params_close(model, ref, atol=1e-5, rtol=1e-4)
    opt.anchor()  # an explicit anchor adds one exact step
    opt.step(closure_for(model, batches[0]))
    assert opt.last_step.grad_evals == 2


def test_closure_calls_equal_grad_evals_for_graphsam():
    model, batches = make_model(), make_batches()
    opt = go.GraphSAM(model.parameters(), lr=0.01)
    for t in range(5):
        calls: list = []
        opt.step(closure_for(model, batches[t], calls))
        assert len(calls) == opt.last_step.grad_evals == (2 if t == 0 else 1)


def test_step_rho_decays_rho_in_steps():
    model, batches = make_model(), make_batches()
    opt = go.GraphSAM(model.parameters(), rho=0.08, lr=0.01)
    sched = go.StepRho(opt, step_size=2, gamma=0.5)
    seen = []
    for epoch in range(6):
        opt.anchor()
        opt.step(closure_for(model, batches[epoch]))
        seen.append(opt.last_step.rho)
        torch.testing.assert_close(opt.last_step.eps_hat_norm, torch.tensor(seen[-1]))
        assert sched.get_last_rho() == seen[-1]
        sched.step()
    assert seen == [0.08 * 0.5 ** (e // 2) for e in range(6)]
    # round trip into a fresh schedule
    other = go.GraphSAM(make_model().parameters(), rho=0.08, lr=0.01)
    sched2 = go.StepRho(other)
    sched2.load_state_dict(sched.state_dict())
    assert other.rho == opt.rho == 0.08 * 0.5**3
    sched.step()
    sched2.step()
    assert other.rho == opt.rho == sched2.get_last_rho()
