"""torch's ``None`` rule: a parameter without a gradient in a step is skipped by the base optimizer.

The Branchy model (kit.optim) has a branch used on steps 0 and 3 only, a head that starts at
step 4, a layer frozen with ``requires_grad_(False)`` from step 5 and a parameter never used.
With ρ = 0 every method that reduces to its base optimizer must then equal plain torch step for
step, bit for bit, including the base optimizer's state; with ρ > 0, SAM must equal a naive
two-pass SAM written with torch's rules.
"""
from __future__ import annotations

import math

import pytest
import torch
from kit.optim import Branchy, branchy_schedule, closure_for, loss_of, make_batches, torch_closure

import gradscope.optim as go

BASES = {
    "adam": (torch.optim.Adam, {}),
    "adamw-decay": (torch.optim.AdamW, {"weight_decay": 0.1}),
    "sgd-momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "adam-l2": (torch.optim.Adam, {"weight_decay": 0.1}),
}
#: Methods that are their base optimizer when ρ = 0 (LookSAM is not: see its docstring).
REDUCING = {
    "sam": {},
    "asam": {},
    "graphsam": {"beta": 0.9},
    "sam-one": {},
    "sam-k": {"k": 3},
    "ae-sam": {"total_steps": 8},
    "rst": {"p": 0.5},
    "graphsam-released": {"scale_grad_by_loss": False},
}
STEPS = 8


def _twins() -> tuple[Branchy, Branchy]:
    a, b = Branchy(), Branchy()
    b.load_state_dict(a.state_dict())
    return a, b


def _assert_same_state(opt: go.SharpnessAware, ref: torch.optim.Optimizer, model: Branchy, twin: Branchy) -> None:
    """Equal parameters and equal base-optimizer state, parameter by parameter (bit for bit)."""
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        assert torch.equal(p, q), (name, (p - q).abs().max())
        s, r = opt.base_optimizer.state.get(p, {}), ref.state.get(q, {})
        assert s.keys() == r.keys(), name
        for key in s:
            assert torch.equal(torch.as_tensor(s[key]), torch.as_tensor(r[key])), (name, key)


@pytest.mark.parametrize("base", list(BASES))
@pytest.mark.parametrize("name", list(REDUCING))
def test_rho_zero_is_the_base_optimizer_when_parameters_lack_gradients(name, base):
    cls, base_kw = BASES[base]
    model, twin = _twins()
    batches = make_batches(n=STEPS)
    opt = go.make_optimizer(name, model.parameters(), cls, rho=0.0, lr=0.01, **base_kw, **REDUCING[name])
    ref = cls(twin.parameters(), lr=0.01, **base_kw)
    for t in range(STEPS):
        branchy_schedule(model, t)
        branchy_schedule(twin, t)
        opt.step(closure_for(model, batches[t]))
        ref.step(torch_closure(twin, ref, batches[t]))
        _assert_same_state(opt, ref, model, twin)
        for p, q in zip(model.parameters(), twin.parameters()):  # torch's p.grad state, too
            assert (p.grad is None) == (q.grad is None)


def test_step_info_names_the_parameters_without_gradient_and_zeroes_their_omega():
    model, batches = Branchy(), make_batches(n=STEPS)
    opt = go.SAM(model.parameters(), rho=0.05, lr=0.01)
    index = {id(p): i for i, p in enumerate(opt.params)}
    offsets = opt.layout.offsets
    for t in range(STEPS):
        branchy_schedule(model, t)
        opt.step(closure_for(model, batches[t]))
        expected = {model.never}
        if t not in (0, 3):
            expected |= set(model.branch.parameters())
        if t < 4:
            expected |= set(model.late.parameters())
        if t >= 5:
            expected |= set(model.middle.parameters())
        info = opt.last_step
        assert set(info.params_without_grad) == {index[id(p)] for p in expected}, t
        for i in info.params_without_grad:
            sl = slice(offsets[i], offsets[i] + opt.params[i].numel())
            assert torch.count_nonzero(info.omega[sl]) == 0 and torch.count_nonzero(info.eps[sl]) == 0
            assert opt.params[i].grad is None


@torch.no_grad()
def _naive_sam_step(model: Branchy, base: torch.optim.Optimizer, batch, rho: float) -> None:
    """SAM with torch's rules: only parameters with a gradient enter ‖g‖, move, and get updated."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in model.parameters():  # zero_grad(): every parameter of the optimizer, frozen or not
        p.grad = None
    with torch.enable_grad():
        loss_of(model, batch).backward()
    g = {p: p.grad.clone() for p in params if p.grad is not None}
    norm = math.sqrt(sum(float((x.double() ** 2).sum()) for x in g.values()))
    saved = {p: p.clone() for p in g}
    for p, x in g.items():
        p.add_(x * (rho / max(norm, 1e-12)))
    for p in model.parameters():
        p.grad = None
    with torch.enable_grad():
        loss_of(model, batch).backward()
    for p, s in saved.items():
        p.copy_(s)
    base.step()


@pytest.mark.parametrize("base", ["adam", "adamw-decay", "sgd-momentum"])
def test_sam_matches_a_naive_two_pass_sam_with_torch_rules(base):
    cls, base_kw = BASES[base]
    model, twin = _twins()
    batches = make_batches(n=STEPS)
    opt = go.SAM(model.parameters(), cls, rho=0.1, lr=0.01, **base_kw)
    ref = cls(twin.parameters(), lr=0.01, **base_kw)
    for t in range(STEPS):
        branchy_schedule(model, t)
        branchy_schedule(twin, t)
        opt.step(closure_for(model, batches[t]))
        _naive_sam_step(twin, ref, batches[t], 0.1)
        for (name, p), q in zip(model.named_parameters(), twin.parameters()):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=f"{name} at step {t}")


@pytest.mark.parametrize("name", ["graphsam", "sam-one", "looksam", "graphsam-released"])
def test_no_ascent_moves_a_frozen_parameter(name):
    """Methods that carry ε (or g_v, h) across steps zero a frozen parameter's slice of it."""
    model, batches = Branchy(), make_batches(n=STEPS)
    opt = go.make_optimizer(name, model.parameters(), rho=0.5, lr=0.01, **({"k": 2} if name == "looksam" else {}))
    k = next(i for i, p in enumerate(opt.params) if p is model.middle.weight)
    pos = next(i for i, p in enumerate(model.parameters()) if p is model.middle.weight)
    for t in range(STEPS):
        branchy_schedule(model, t)
        frozen = model.middle.weight.detach().clone()
        calls: list = []
        opt.step(closure_for(model, batches[t], calls))
        if t >= 5:
            for seen in calls:  # θ as each closure call saw it
                assert torch.equal(seen[pos], frozen)
            assert torch.equal(model.middle.weight, frozen)
            for buf in opt._carried():
                assert torch.count_nonzero(buf.views[k]) == 0
