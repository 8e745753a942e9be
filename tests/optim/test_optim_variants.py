"""ASAM, LookSAM, AE-SAM and RST against small reference implementations of their rules."""
from __future__ import annotations

import math
import random

import pytest
import torch
from kit.optim import (
    assert_params_close,
    base_step,
    clone,
    closure_for,
    dot,
    flat,
    global_norm,
    grad_at_perturbed,
    grads_at,
    make_batches,
    make_model,
    trainable,
)

import gradscope.optim as go
from gradscope.errors import ConfigError


def sam_half(model, batch, g, rho):
    n = global_norm(g)
    e = [x * (rho / n) for x in g]
    omega, _ = grad_at_perturbed(model, batch, e)
    return omega, e


def _normed_mlp(seed: int = 0) -> torch.nn.Module:
    """5 → 7 → LayerNorm → tanh → 1: a 1-D parameter named "weight" (the LayerNorm scale)."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Tanh(), torch.nn.Linear(7, 1))


ASAM_RULES = {  # how the optimizer is given its parameters, scale_biases, where T = |θ| + η applies
    "named": (True, False, lambda name, p: "weight" in name),  # SamsungLabs/ASAM asam.py
    "unnamed": (False, False, lambda name, p: p.dim() >= 2),
    "scale-biases": (True, True, lambda name, p: True),
}


@pytest.mark.parametrize("rule", list(ASAM_RULES))
def test_asam_matches_reference(rule):
    """Kwon et al. 2021: ε̂ = ρ T² g / ‖T g‖, T = |θ| + η where it applies, else T = 1."""
    named, scale_biases, applies = ASAM_RULES[rule]
    rho, eta = 0.5, 0.01
    model, batches = _normed_mlp(), make_batches()
    ref = clone(model)
    def groups(m, with_names):  # two parameter groups with different learning rates
        items = [(n, p) if with_names else p for n, p in m.named_parameters()]
        return [{"params": items[:2]}, {"params": items[2:], "lr": 0.02}]

    opt = go.ASAM(groups(model, named), rho=rho, eta=eta, scale_biases=scale_biases, lr=0.01)
    base = torch.optim.Adam(groups(ref, False), lr=0.01)
    mask = [applies(n, p) for n, p in ref.named_parameters()]
    assert opt.scaled == tuple(mask)
    for t in range(6):
        batch = batches[t]
        opt.step(closure_for(model, batch))
        g, _ = grads_at(ref, batch)
        T = [p.detach().abs() + eta if m else torch.ones_like(p) for p, m in zip(trainable(ref), mask)]
        n = global_norm([a * b for a, b in zip(T, g)])
        e = [rho * a * a * b / n for a, b in zip(T, g)]
        omega, _ = grad_at_perturbed(ref, batch, e)
        base_step(ref, base, omega)
        torch.testing.assert_close(opt.last_step.eps_hat_norm, global_norm(e), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(opt.last_step.omega, flat(omega), atol=1e-6, rtol=1e-4)
        assert_params_close(model, ref, atol=1e-6, rtol=1e-4)


def test_asam_rules_differ_where_they_should():
    """The LayerNorm scale is a weight by name only; biases are scaled only with scale_biases."""
    model = _normed_mlp()
    names = [n for n, _ in model.named_parameters()]
    by_name = go.ASAM(model.named_parameters(), lr=0.01).scaled
    by_shape = go.ASAM(model.parameters(), lr=0.01).scaled
    everything = go.ASAM(model.parameters(), scale_biases=True, lr=0.01).scaled
    assert [n for n, s in zip(names, by_name) if s] == ["0.weight", "1.weight", "3.weight"]
    assert [n for n, s in zip(names, by_shape) if s] == ["0.weight", "3.weight"]
    assert all(everything)


def _looksam_gv(g, gs, per_tensor):
    """g_v = g_s − (g·g_s/‖g‖²) g over all parameters, or tensor by tensor (the reference code's)."""
    if per_tensor:  # a one-element tensor has no orthogonal part: exactly 0 (not rounding noise)
        return [s - (dot([x], [s]) / dot([x], [x])) * x if x.numel() > 1 else torch.zeros_like(s) for s, x in zip(gs, g)]
    c = dot(g, gs) / dot(g, g)
    return [s - c * x for s, x in zip(gs, g)]


def _looksam_reuse(g, gv, alpha, per_tensor):
    """ω = g + α (‖g‖/‖g_v‖) g_v over all parameters, or tensor by tensor."""
    if per_tensor:  # ‖g_v‖ = 0 guarded as in gradscope (0/0 in the reference code)
        return [x + alpha * (global_norm([x]) / global_norm([v]).clamp_min(1e-12)) * v for x, v in zip(g, gv)]
    c = alpha * global_norm(g) / global_norm(gv)
    return [x + c * v for x, v in zip(g, gv)]


@pytest.mark.parametrize("normalization", ["global", "per-tensor"])
def test_looksam_matches_reference(normalization):
    """Liu et al. 2022: SAM every k steps storing g_v; ω = g + α(‖g‖/‖g_v‖) g_v in between."""
    rho, k, alpha = 0.05, 3, 0.7
    per_tensor = normalization == "per-tensor"
    model, batches = make_model(), make_batches()
    ref = clone(model)
    opt = go.LookSAM(model.parameters(), rho=rho, k=k, alpha=alpha, normalization=normalization, lr=0.01)
    base = torch.optim.Adam(ref.parameters(), lr=0.01)
    gv, evals = None, []
    for t in range(8):
        batch = batches[t % len(batches)]
        opt.step(closure_for(model, batch))
        evals.append(opt.last_step.grad_evals)
        g, _ = grads_at(ref, batch)
        if t % k == 0:
            gs, _ = sam_half(ref, batch, g, rho)  # the ascent is global in both variants
            gv = _looksam_gv(g, gs, per_tensor)
            omega = gs
            torch.testing.assert_close(opt.last_step.eps, flat(g), atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(opt._gv.data, flat(gv), atol=1e-6, rtol=1e-4)
            assert opt.last_step.anchored
        else:
            omega = _looksam_reuse(g, gv, alpha, per_tensor)
            assert opt.last_step.eps is None and not opt.last_step.anchored
            assert math.isnan(float(opt.last_step.loss_perturbed))
        base_step(ref, base, omega)
        torch.testing.assert_close(opt.last_step.omega, flat(omega), atol=1e-6, rtol=1e-4)
        assert_params_close(model, ref, atol=1e-6, rtol=1e-4)
    assert evals == [2, 1, 1, 2, 1, 1, 2, 1]


def test_looksam_normalizations_differ_and_bad_names_are_refused():
    model, batches = make_model(), make_batches()
    twin = clone(model)
    a = go.LookSAM(model.parameters(), k=2, lr=0.01)
    b = go.LookSAM(twin.parameters(), k=2, normalization="per-tensor", lr=0.01)
    for t in range(2):
        a.step(closure_for(model, batches[t]))
        b.step(closure_for(twin, batches[t]))
    assert not torch.allclose(a.last_step.omega, b.last_step.omega)
    with pytest.raises(ConfigError, match="normalization"):
        go.LookSAM(model.parameters(), normalization="layer")


def test_aesam_matches_reference_and_takes_both_kinds_of_step():
    """Jiang et al. 2023: EMA μ, σ² of ‖g‖²; SAM iff ‖g‖² ≥ μ + c_t σ, c_t linear c1 → c2."""
    rho, delta, c1, c2, total = 0.05, 0.9, -1.0, 1.0, 12
    model, batches = make_model(), make_batches(n=12)
    ref = clone(model)
    opt = go.AESAM(model.parameters(), rho=rho, delta=delta, c1=c1, c2=c2, total_steps=total, lr=0.01)
    base = torch.optim.Adam(ref.parameters(), lr=0.01)
    mu = var = 0.0
    decisions = []
    for t in range(total):
        batch = batches[t]
        opt.step(closure_for(model, batch))
        g, _ = grads_at(ref, batch)
        sq = float(dot(g, g))
        mu = delta * mu + (1 - delta) * sq
        var = delta * var + (1 - delta) * (sq - mu) ** 2
        c = c1 + (c2 - c1) * t / total
        sam = sq >= mu + c * math.sqrt(var)
        decisions.append(sam)
        omega = sam_half(ref, batch, g, rho)[0] if sam else g
        base_step(ref, base, omega)
        assert opt.last_step.grad_evals == (2 if sam else 1)
        assert opt.last_step.anchored == sam
        assert (opt.last_step.eps is None) == (not sam)
        assert_params_close(model, ref, atol=1e-6, rtol=1e-4)
    assert any(decisions) and not all(decisions), decisions
    torch.testing.assert_close(opt._mu, torch.tensor(mu), rtol=1e-5, atol=0)
    torch.testing.assert_close(opt._var, torch.tensor(var), rtol=1e-4, atol=0)


def test_aesam_threshold_schedule():
    cfg = go.AESAMConfig(c1=-1.0, c2=1.0, total_steps=100)
    assert [cfg.threshold(t) for t in (0, 50, 100, 200)] == [-1.0, 0.0, 1.0, 1.0]
    assert go.AESAMConfig(c=0.3).threshold(7) == 0.3


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_rst_follows_a_seeded_coin(p):
    """Zhao et al. 2022: SAM with probability p, else an ERM step with g."""
    rho, seed = 0.05, 3
    model, batches = make_model(), make_batches(n=10)
    ref = clone(model)
    opt = go.RST(model.parameters(), rho=rho, p=p, seed=seed, lr=0.01)
    base = torch.optim.Adam(ref.parameters(), lr=0.01)
    rng = random.Random(seed)
    evals = []
    for t in range(10):
        batch = batches[t]
        opt.step(closure_for(model, batch))
        sam = rng.random() < p
        g, _ = grads_at(ref, batch)
        omega = sam_half(ref, batch, g, rho)[0] if sam else g
        base_step(ref, base, omega)
        evals.append(opt.last_step.grad_evals)
        assert opt.last_step.grad_evals == (2 if sam else 1)
        assert_params_close(model, ref, atol=1e-6, rtol=1e-4)
    if p == 0.5:
        assert set(evals) == {1, 2}
    else:
        assert set(evals) == {2 if p == 1.0 else 1}
