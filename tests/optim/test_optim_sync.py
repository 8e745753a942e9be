"""No host read of a tensor value inside ``step`` (AE-SAM: exactly its one documented read).

On the CPU the guard patches the Tensor methods that read a value on the host and fails when
one is called from gradscope.optim code (torch's own optimizers keep their step counters on the
CPU and read them; that is theirs, not ours). On a CUDA machine the steps also run under
``torch.cuda.set_sync_debug_mode("error")``.
"""
from __future__ import annotations

import pytest
import torch
from optim_testkit import HOST_READS, closure_for, host_reads_from_gradscope, make_batches, make_model, two_groups

import gradscope.optim as go

KWARGS = {"sam-k": {"k": 2}, "looksam": {"k": 2}, "ae-sam": {"total_steps": 6}, "rst": {"p": 0.5}}


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


@pytest.mark.parametrize("name", [n for n in go.OPTIMIZERS if n != "ae-sam"])
def test_step_reads_nothing_on_the_host(name):
    model, batches = make_model(), make_batches()
    opt = go.make_optimizer(name, two_groups(model), lr=0.01, **KWARGS.get(name, {}))
    with host_reads_from_gradscope(allowed=0) as reads:
        for t in range(6):
            if t == 3:
                opt.anchor()
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
@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_no_device_sync_under_cuda_sync_debug_mode(name):
    device = torch.device("cuda")
    model = make_model().to(device)
    batches = [(x.to(device), y.to(device)) for x, y in make_batches()]
    opt = go.make_optimizer(name, model.parameters(), lr=0.01, **KWARGS.get(name, {}))
    opt.step(closure_for(model, batches[0]))  # first step: lazy state allocation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        if name == "ae-sam":  # its SAM/ERM decision is a documented device→host read
            with pytest.raises(RuntimeError):
                opt.step(closure_for(model, batches[1]))
        else:
            for t in range(1, 5):
                opt.step(closure_for(model, batches[t]))
    finally:
        torch.cuda.set_sync_debug_mode("default")
