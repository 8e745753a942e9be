"""SAM against a naive two-pass SAM, and the core's contract (ρ=0, exact restore, StepInfo)."""
from __future__ import annotations

import math

import pytest
import torch
from kit.optim import (
    RecordingSGD,
    assert_params_close,
    clone,
    closure_for,
    global_norm,
    loss_of,
    make_batches,
    make_model,
    naive_sam_step,
    trainable,
    two_groups,
)

import gradscope.optim as go
from gradscope.errors import GradscopeError


def test_sam_matches_naive_two_pass_sam_with_two_param_groups():
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.SAM(two_groups(model), torch.optim.Adam, rho=0.1, lr=0.01)
    ref_opt = torch.optim.Adam(two_groups(ref), lr=0.01)
    for t in range(8):
        batch = batches[t % len(batches)]
        loss = opt.step(closure_for(model, batch))
        ref_loss, g, e, omega = naive_sam_step(ref, ref_opt, batch, 0.1)
        assert_params_close(model, ref)
        torch.testing.assert_close(loss, ref_loss)
        info = opt.last_step
        torch.testing.assert_close(info.eps, torch.cat([x.reshape(-1) for x in g]))
        torch.testing.assert_close(info.omega, torch.cat([x.reshape(-1) for x in omega]))
        torch.testing.assert_close(info.eps_hat_norm, global_norm(e))
        torch.testing.assert_close(info.eps_hat_norm, torch.tensor(0.1))


def test_step_info_of_sam():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), rho=0.05, lr=0.01)
    assert opt.last_step is None
    theta = [p.detach().clone() for p in model.parameters()]
    loss = opt.step(closure_for(model, batches[0]))
    info = opt.last_step
    assert info.anchored and info.grad_evals == 2 and info.rho == 0.05
    assert info.params == list(model.parameters())
    assert info.omega.dtype == torch.float32 and info.omega.numel() == sum(p.numel() for p in model.parameters())
    # the returned loss is the first closure's, at θ_t, and detached 0-d
    assert loss.ndim == 0 and not loss.requires_grad
    torch.testing.assert_close(info.loss, loss)
    with torch.no_grad():
        ref = clone(model)
        for p, t in zip(ref.parameters(), theta):
            p.copy_(t)
        torch.testing.assert_close(loss, loss_of(ref, batches[0]))
    assert not math.isnan(float(info.loss_perturbed))
    # ω is what the base optimizer saw: p.grad views of it
    torch.testing.assert_close(info.omega, torch.cat([p.grad.reshape(-1) for p in model.parameters()]))


METHODS_REDUCING_TO_BASE = [
    ("sam", {}),
    ("asam", {}),
    ("graphsam", {}),
    ("sam-one", {}),
    ("sam-k", {"k": 3}),
    ("ae-sam", {"total_steps": 10}),
    ("rst", {"p": 0.5}),
    ("graphsam-released", {"scale_grad_by_loss": False}),
]


@pytest.mark.parametrize(("name", "kw"), METHODS_REDUCING_TO_BASE)
def test_rho_zero_is_plain_adam_bit_for_bit(name, kw):
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.make_optimizer(name, two_groups(model), rho=0.0, lr=0.01, **kw)
    adam = torch.optim.Adam(two_groups(ref), lr=0.01)
    for t in range(7):
        batch = batches[t % len(batches)]
        if t == 4:
            opt.anchor()
        opt.step(closure_for(model, batch))
        adam.zero_grad()
        loss_of(ref, batch).backward()
        adam.step()
        for a, b in zip(model.parameters(), ref.parameters()):
            assert torch.equal(a, b), (name, t)


@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_theta_is_restored_bit_for_bit_before_the_base_step(name):
    """The base optimizer must see exactly θ_t, and the perturbed pass θ_t + ε̂."""
    model, batches = make_model(), make_batches()
    opt = go.make_optimizer(name, model.parameters(), base=RecordingSGD, lr=0.05)
    for t in range(6):
        before = [p.detach().clone() for p in model.parameters()]
        calls: list = []
        opt.step(closure_for(model, batches[t % len(batches)], calls))
        seen = opt.base_optimizer.seen_params[-1]
        for a, b in zip(seen, before):
            assert torch.equal(a, b), (name, t)
        assert len(calls) == opt.last_step.grad_evals
        if opt.last_step.eps_hat_norm is not None:  # an ascent happened: the last call was at θ+ε̂
            shift = torch.cat([(c - b).reshape(-1) for c, b in zip(calls[-1], before)])
            torch.testing.assert_close(torch.linalg.vector_norm(shift), opt.last_step.eps_hat_norm, atol=1e-6, rtol=1e-4)
            assert float(opt.last_step.eps_hat_norm) > 0


def test_sam_under_bf16_autocast_with_fp32_params():
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.SAM(model.parameters(), rho=0.05, lr=0.01)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    out_dtypes = []

    def closure_on(batch):
        def closure():
            out = model(batch[0])
            out_dtypes.append(out.dtype)
            loss = torch.nn.functional.mse_loss(out, batch[1])
            loss.backward()
            return loss

        return closure

    for t in range(4):
        batch = batches[t]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            opt.step(closure_on(batch))
            naive_sam_step(ref, ref_opt, batch, 0.05)
        assert out_dtypes and set(out_dtypes) == {torch.bfloat16}  # the forward ran in bf16
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert opt.last_step.omega.dtype == torch.float32
    assert opt._fallback_copies == 0  # bf16 forward, fp32 gradients straight into the views
    assert_params_close(model, ref, atol=1e-5, rtol=1e-4)


def test_step_needs_a_closure():
    model = make_model()
    opt = go.SAM(model.parameters(), lr=0.01)
    with pytest.raises(GradscopeError, match="needs a closure"):
        opt.step()


def test_params_are_trainable_list():
    model = make_model()
    opt = go.GraphSAM(model.parameters(), lr=0.01)
    assert opt.params == trainable(model)
