"""state_dict round trips: a resumed run continues bit-for-bit."""
from __future__ import annotations

import io

import pytest
import torch
from kit.optim import closure_for, make_batches, make_model, two_groups

import gradscope.optim as go
from gradscope.errors import GradscopeError

KWARGS = {
    "sam-k": {"k": 3},
    "looksam": {"k": 3},
    "ae-sam": {"total_steps": 12},
    "rst": {"p": 0.5, "seed": 5},
    "graphsam": {"beta": 0.9},
    "graphsam-released": {"beta": 0.9},
}
STEPS_PER_EPOCH = 3


def build(name, model):
    opt = go.make_optimizer(name, two_groups(model), lr=0.01, **KWARGS.get(name, {}))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
    rho_sched = None if name == "graphsam-released" else go.StepRho(opt, step_size=1, gamma=0.7)
    return opt, sched, rho_sched


def train(opt, sched, rho_sched, model, batches, start, stop):
    """Epochs of STEPS_PER_EPOCH steps, anchoring at each epoch start; returns per-step records."""
    out = []
    for t in range(start, stop):
        if t % STEPS_PER_EPOCH == 0:
            if isinstance(opt, go.GraphSAMReleased):
                opt.epoch_step(t // STEPS_PER_EPOCH)
            else:
                opt.anchor()
        opt.step(closure_for(model, batches[t % len(batches)]))
        out.append((opt.last_step.grad_evals, [p.detach().clone() for p in model.parameters()]))
        if t % STEPS_PER_EPOCH == STEPS_PER_EPOCH - 1:
            sched.step()
            if rho_sched is not None:
                rho_sched.step()
    return out


@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_resume_continues_bit_for_bit(name):
    batches = make_batches(n=7)
    model = make_model()
    opt, sched, rho_sched = build(name, model)
    train(opt, sched, rho_sched, model, batches, 0, 5)  # stop mid-epoch
    buf = io.BytesIO()
    torch.save(
        {
            "model": model.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "rho": None if rho_sched is None else rho_sched.state_dict(),
        },
        buf,
    )
    expected = train(opt, sched, rho_sched, model, batches, 5, 12)

    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    model2 = make_model(seed=123)  # different initial weights: everything must come from the checkpoint
    model2.load_state_dict(ckpt["model"])
    opt2, sched2, rho_sched2 = build(name, model2)
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    if rho_sched2 is not None:
        rho_sched2.load_state_dict(ckpt["rho"])
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    got = train(opt2, sched2, rho_sched2, model2, batches, 5, 12)
    assert [e for e, _ in got] == [e for e, _ in expected]
    for (_, a), (_, b) in zip(got, expected):
        for x, y in zip(a, b):
            assert torch.equal(x, y)


def test_state_dict_does_not_alias_live_buffers():
    model, batches = make_model(), make_batches()
    opt = go.GraphSAM(model.parameters(), beta=0.9, lr=0.01)
    opt.step(closure_for(model, batches[0]))
    sd = opt.state_dict()
    eps = sd["sharpness_aware"]["eps"].clone()
    opt.step(closure_for(model, batches[1]))
    assert torch.equal(sd["sharpness_aware"]["eps"], eps)


def test_loading_another_methods_state_is_refused():
    model, batches = make_model(), make_batches()
    sam = go.SAM(model.parameters(), lr=0.01)
    sam.step(closure_for(model, batches[0]))
    gs = go.GraphSAM(model.parameters(), lr=0.01)
    with pytest.raises(GradscopeError, match="cannot be loaded into GraphSAM"):
        gs.load_state_dict(sam.state_dict())
    with pytest.raises(GradscopeError, match="not a GraphSAM state dict"):
        gs.load_state_dict(torch.optim.Adam(model.parameters()).state_dict())
