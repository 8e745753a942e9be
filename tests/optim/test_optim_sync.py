"""No host read of a tensor value inside ``step`` (AE-SAM: exactly its one documented read).

On the CPU the guard patches the Tensor methods that read a value on the host and fails when
one is called from gradscope.optim code (torch's own optimizers keep their step counters on the
CPU and read them; that is theirs, not ours). On a CUDA machine the steps also run under
``torch.cuda.set_sync_debug_mode("error")``.
"""
from __future__ import annotations

import pytest
import torch
from kit.optim import (
    HOST_READS,
    Branchy,
    branchy_schedule,
    closure_for,
    host_reads_from_gradscope,
    make_batches,
    make_model,
    two_groups,
)

import gradscope.optim as go

KWARGS = {"sam-k": {"k": 2}, "looksam": {"k": 2}, "ae-sam": {"total_steps": 6}, "rst": {"p": 0.5}}
#: variants with their own code paths: id → (name, keyword arguments)
VARIANTS = {name: (name, KWARGS.get(name, {})) for name in go.OPTIMIZERS}
VARIANTS["looksam-per-tensor"] = ("looksam", {"k": 2, "normalization": "per-tensor"})
VARIANTS["asam-scale-biases"] = ("asam", {"scale_biases": True})


def test_the_guard_catches_reads_from_gradscope_code():
    before = {n: torch.Tensor.__dict__.get(n) for n in HOST_READS}
    t = torch.tensor(1.0)
    fake = {"__name__": "gradscope.optim.fake", "t": t}
    for expr in ("bool(t)", "float(t)", "t.item()", "t.tolist()", "t.cpu()", "int(t)", "1 if t else 0"):
        with host_reads_from_gradscope(allowed=0), pytest.raises(AssertionError, match="host read"):
            eval(expr, fake)
    with host_reads_from_gradscope(allowed=0) as reads:  # other callers are let through
        assert bool(t) and t.item() == 1.0
    assert reads == []
    assert {n: torch.Tensor.__dict__.get(n) for n in HOST_READS} == before  # restored


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "ae-sam"])
def test_step_reads_nothing_on_the_host(variant):
    name, kwargs = VARIANTS[variant]
    model, batches = make_model(), make_batches()
    opt = go.make_optimizer(name, two_groups(model), lr=0.01, **kwargs)
    with host_reads_from_gradscope(allowed=0) as reads:
        for t in range(6):
            if t == 3:
                opt.anchor()
            opt.step(closure_for(model, batches[t]))
    assert reads == []


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "ae-sam"])
def test_parameters_without_gradients_cost_no_host_read(variant):
    """A branch not taken, a late head, a frozen layer: which parameters have gradients is a host fact."""
    name, kwargs = VARIANTS[variant]
    model, batches = Branchy(), make_batches(n=8)
    opt = go.make_optimizer(name, model.named_parameters(), lr=0.01, **kwargs)
    with host_reads_from_gradscope(allowed=0) as reads:
        for t in range(8):
            branchy_schedule(model, t)
            opt.step(closure_for(model, batches[t]))
    assert reads == []


def test_aesam_reads_exactly_its_one_decision_per_step():
    model, batches = make_model(), make_batches()
    opt = go.AESAM(model.parameters(), total_steps=6, lr=0.01)
    for t in range(6):
        with host_reads_from_gradscope(allowed=1) as reads:
            opt.step(closure_for(model, batches[t]))
        assert reads == [("__bool__", "gradscope.optim.aesam")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_device_sync_under_cuda_sync_debug_mode(variant):
    """On the Branchy model, so that the None rule's paths (absent and frozen parameters) run too."""
    name, kwargs = VARIANTS[variant]
    device = torch.device("cuda")
    model = Branchy().to(device)
    batches = [(x.to(device), y.to(device)) for x, y in make_batches(n=8)]
    opt = go.make_optimizer(name, model.named_parameters(), lr=0.01, **kwargs)
    opt.step(closure_for(model, batches[0]))  # first step: lazy state allocation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        if name == "ae-sam":  # its SAM/ERM decision is a documented device→host read
            with pytest.raises(RuntimeError):
                opt.step(closure_for(model, batches[1]))
        else:
            for t in range(1, 8):
                branchy_schedule(model, t)
                opt.step(closure_for(model, batches[t]))
    finally:
        torch.cuda.set_sync_debug_mode("default")
