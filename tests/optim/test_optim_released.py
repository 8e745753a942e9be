"""GraphSAMReleased against a per-tensor reference of the released code's behaviour."""
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
    trainable,
)

import gradscope.optim as go


def naive_released(model, base, batches, epochs, steps, rho, radius, beta, gamma, step_size, scale_by_loss):
    """The released loop, tensor by tensor: anchor at i == 0, zero-norm scale otherwise, clip, EMA."""
    h = gs = None
    record = []
    for epoch in range(epochs):
        if epoch % step_size == 0:
            factor = gamma ** (epoch / step_size)
            rho, radius = rho * factor, radius * factor
        for i in range(steps):
            batch = batches[(epoch * steps + i) % len(batches)]
            params = [p.detach() for p in trainable(model)]
            if i == 0:
                g, _ = grads_at(model, batch)
                h = [x.clone() for x in g]
                norm = global_norm([p.abs() * x for p, x in zip(params, g)])
            else:
                h = [beta * hk + (1 - beta) * gk / torch.norm(gk + 1e-8) for hk, gk in zip(h, gs)]
                norm = 0.0  # the loop zeroed the gradients before the norm is taken
            scale = rho / (norm + 1e-12)
            e = []
            for p, hk in zip(params, h):
                ek = p**2 * hk * scale
                nk = torch.norm(ek)
                if nk > radius:
                    ek = radius * ek / nk
                e.append(ek)
            omega, loss_p = grad_at_perturbed(model, batch, e)
            if scale_by_loss:
                omega = [w * loss_p for w in omega]
            gs = omega
            record.append((flat(h), global_norm(e), flat(omega), i == 0, rho, radius))
            base_step(model, base, omega)
    return record


@pytest.mark.parametrize("scale_by_loss", [True, False])
def test_released_matches_reference(scale_by_loss):
    kw = dict(rho=0.05, radius=0.05, beta=0.9, gamma=0.5, step_size=1)
    epochs, steps = 3, 4
    model, batches = make_model(), make_batches(n=12)
    ref = clone(model)
    opt = go.GraphSAMReleased(model.parameters(), scale_grad_by_loss=scale_by_loss, lr=0.01, **kw)
    record = naive_released(
        ref, torch.optim.Adam(ref.parameters(), lr=0.01), batches, epochs, steps,
        kw["rho"], kw["radius"], kw["beta"], kw["gamma"], kw["step_size"], scale_by_loss,
    )
    n_tensors = len(list(model.parameters()))
    for epoch in range(epochs):
        opt.epoch_step(epoch)
        for i in range(steps):
            t = epoch * steps + i
            opt.step(closure_for(model, batches[t % len(batches)]))
            info = opt.last_step
            h, e_norm, omega, anchored, rho, radius = record[t]
            assert info.anchored == anchored
            assert info.grad_evals == (2 if anchored else 1)
            assert info.rho == pytest.approx(rho) and opt.radius == pytest.approx(radius)
            torch.testing.assert_close(info.eps, h, atol=1e-6, rtol=1e-4)
            torch.testing.assert_close(info.eps_hat_norm, e_norm, atol=1e-7, rtol=1e-4)
            torch.testing.assert_close(info.omega, omega, atol=1e-6, rtol=1e-4)
            if not anchored:
                # every tensor is clipped to exactly `radius`: total radius·√(number of tensors)
                torch.testing.assert_close(info.eps_hat_norm, torch.tensor(radius * math.sqrt(n_tensors)), rtol=1e-5, atol=0)
    assert_params_close(model, ref, atol=1e-5, rtol=1e-4)


def test_released_rho_and_radius_compound_per_epoch():
    opt = go.GraphSAMReleased(make_model().parameters(), rho=0.05, radius=0.05, lr=0.01)
    for epoch in range(6):
        opt.epoch_step(epoch)
    assert opt.rho == pytest.approx(0.05 * 0.5**15)  # 0+1+2+3+4+5
    assert opt.radius == pytest.approx(0.05 * 0.5**15)
    opt.epoch_step(6)
    assert opt.rho / 0.05 < 1e-6
