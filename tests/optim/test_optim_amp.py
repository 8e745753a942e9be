"""fp16 loss scaling with ``torch.amp.GradScaler``: ``optimizer.step(closure, scaler=scaler)``.

Loss scaling by a power of two is exact in float32, so a run with a scaler but without autocast
must equal the unscaled run bit for bit; that pins the unscaling of every pass and the skip of a
step whose passes saw inf/NaN. fp16 autocast itself (CPU here; CUDA where there is one) is
compared with a float32 run to fp16's precision.
"""
from __future__ import annotations

import pytest
import torch
from kit.optim import assert_params_equal, clone, host_reads_from_gradscope, loss_of, make_batches, make_model

import gradscope.optim as go
from gradscope.errors import GradscopeError

KWARGS = {"sam-k": {"k": 2}, "looksam": {"k": 2}, "ae-sam": {"total_steps": 6}, "rst": {"p": 0.5},
          "graphsam": {"beta": 0.9}}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def scaled_closure(model, batch, scaler, poison=None, autocast=None):
    """Forward (under fp16 autocast when ``autocast`` names a device), backward of
    ``scaler.scale(loss)``; ``poison`` is a list of call numbers whose loss is made infinite."""
    calls = [0]

    def closure():
        with torch.autocast(autocast or "cpu", dtype=torch.float16, enabled=autocast is not None):
            loss = loss_of(model, batch)
        if poison is not None and calls[0] in poison:
            loss = loss * float("inf")
        calls[0] += 1
        scaler.scale(loss).backward()
        return loss

    return closure


def plain_closure(model, batch):
    def closure():
        loss = loss_of(model, batch)
        loss.backward()
        return loss

    return closure


@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_scaled_run_equals_the_unscaled_run_bit_for_bit(name):
    """Every pass is unscaled before use: ε, ω and θ equal those of a run without a scaler."""
    model, batches = make_model(), make_batches()
    twin = clone(model)
    a = go.make_optimizer(name, model.parameters(), lr=0.01, **KWARGS.get(name, {}))
    b = go.make_optimizer(name, twin.parameters(), lr=0.01, **KWARGS.get(name, {}))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=2)  # the scale grows, too
    for t in range(6):
        a.step(scaled_closure(model, batches[t], scaler), scaler=scaler)
        scaler.update()
        b.step(plain_closure(twin, batches[t]))
        assert_params_equal(model, twin)
        assert torch.equal(a.last_step.omega, b.last_step.omega)
        assert (a.last_step.eps is None) == (b.last_step.eps is None)
        if a.last_step.eps is not None:
            assert torch.equal(a.last_step.eps, b.last_step.eps)
        assert not a.last_step.skipped and a.last_step.grad_scale is not None
    assert scaler.get_scale() > 2.0**12


#: (step, pass) where an inf appears: the anchor step or a later one, on its first or last pass.
_INF_AT = {"anchor-first": (0, 0), "anchor-last": (0, 1), "later-first": (2, 0), "later-last": (2, 1)}
#: methods with two passes at every step; the others make one pass after their anchor step, so
#: "later-last" is "later-first" for them and is not repeated
_TWO_PASSES_ALWAYS = ("sam", "sam-k", "looksam")


@pytest.mark.parametrize("name,when", [
    pytest.param(name, at, id=f"{name}-{label}")
    for name in ("sam", "graphsam", "sam-one", "sam-k", "looksam", "ae-sam", "graphsam-released")
    for label, at in _INF_AT.items()
    if label != "later-last" or name in _TWO_PASSES_ALWAYS
])
def test_a_step_with_inf_is_skipped_and_leaves_no_trace(name, when):
    """inf on one pass: θ, the base optimizer and the method's state untouched, scale halved,
    and the rest of the run is the run without that step."""
    bad_step, bad_pass = when
    model, batches = make_model(), make_batches(n=7)
    twin = clone(model)
    a = go.make_optimizer(name, model.parameters(), lr=0.01, **KWARGS.get(name, {}))
    b = go.make_optimizer(name, twin.parameters(), lr=0.01, **KWARGS.get(name, {}))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    order = list(range(6))
    order.insert(bad_step, bad_step)  # the bad step's batch is seen twice: poisoned, then clean
    for i, t in enumerate(order):
        poisoned = i == bad_step
        before = [p.detach().clone() for p in model.parameters()]
        base_state = {k: dict(v) for k, v in a.base_optimizer.state.items()}
        steps = a.steps
        a.step(scaled_closure(model, batches[t], scaler, poison={bad_pass} if poisoned else None), scaler=scaler)
        scale_seen = scaler.get_scale()
        scaler.update()
        if poisoned:
            assert a.last_step.skipped and a.steps == steps
            assert scaler.get_scale() == scale_seen / 2
            assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
            assert a.base_optimizer.state.keys() == base_state.keys()
            for p, st in base_state.items():
                assert all(torch.equal(torch.as_tensor(a.base_optimizer.state[p][k]), torch.as_tensor(v)) for k, v in st.items())
            continue
        b.step(plain_closure(twin, batches[t]))
        assert not a.last_step.skipped
        assert_params_equal(model, twin)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sam", "graphsam"])
def test_fp16_autocast_follows_the_float32_run(name, device):
    """fp16 autocast + GradScaler against float32 on a small problem fp16 represents well; SGD, so a
    wrongly scaled ω (×scale) would move θ by orders of magnitude more."""
    model, batches = make_model().to(device), [(x.to(device), y.to(device)) for x, y in make_batches()]
    twin = clone(model)
    kw = KWARGS.get(name, {})
    a = go.make_optimizer(name, model.parameters(), "sgd", lr=0.05, **kw)
    b = go.make_optimizer(name, twin.parameters(), "sgd", lr=0.05, **kw)
    scaler = torch.amp.GradScaler(device, init_scale=2.0**14)
    start = [p.detach().clone() for p in model.parameters()]
    for t in range(6):
        a.step(scaled_closure(model, batches[t], scaler, autocast=device), scaler=scaler)
        scaler.update()
        b.step(plain_closure(twin, batches[t]))
        torch.testing.assert_close(a.last_step.omega, b.last_step.omega, rtol=2e-2, atol=2e-3)
        if a.last_step.eps is not None:
            torch.testing.assert_close(a.last_step.eps, b.last_step.eps, rtol=2e-2, atol=2e-3)
    moved = max(float((p - s).detach().abs().max()) for p, s in zip(twin.parameters(), start))
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=2e-2 * moved)


def test_gradscaler_step_with_a_closure_is_refused_clearly():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu")
    opt.step(scaled_closure(model, batches[0], scaler), scaler=scaler)
    scaler.update()
    with pytest.raises(GradscopeError, match=r"optimizer.step\(closure, scaler=scaler\)"):
        scaler.step(opt, scaled_closure(model, batches[1], scaler))
    scaler.update()
    opt.step(scaled_closure(model, batches[1], scaler), scaler=scaler)  # and the right call still works
    scaler.update()
    assert opt.steps == 2


def test_scaler_misuse_is_refused():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu")
    with pytest.raises(GradscopeError, match="did not scale its loss"):
        opt.step(plain_closure(model, batches[0]), scaler=scaler)
    opt.step(scaled_closure(model, batches[0], scaler), scaler=scaler)
    with pytest.raises(GradscopeError, match="without scaler.update"):
        opt.step(scaled_closure(model, batches[1], scaler), scaler=scaler)
    with pytest.raises(GradscopeError, match="GradScaler"):
        opt.step(scaled_closure(model, batches[1], scaler), scaler=object())


def test_a_disabled_scaler_is_an_ordinary_step():
    model, batches = make_model(), make_batches()
    twin = clone(model)
    a, b = go.GraphSAM(model.parameters(), lr=0.01), go.GraphSAM(twin.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    for t in range(3):
        a.step(scaled_closure(model, batches[t], scaler), scaler=scaler)
        scaler.update()
        b.step(plain_closure(twin, batches[t]))
    assert_params_equal(model, twin)
    assert a.last_step.grad_scale is None


@pytest.mark.parametrize("name", [n for n in go.OPTIMIZERS if n != "ae-sam"])
def test_loss_scaling_reads_the_device_once_per_step(name):
    """The skip decision is the one host read, as in GradScaler.step; nothing else is read."""
    model, batches = make_model(), make_batches()
    opt = go.make_optimizer(name, model.parameters(), lr=0.01, **KWARGS.get(name, {}))
    scaler = torch.amp.GradScaler("cpu")
    for t in range(4):
        closure = scaled_closure(model, batches[t], scaler)
        with host_reads_from_gradscope(allowed=1) as reads:
            opt.step(closure, scaler=scaler)
        assert reads == [("__bool__", "gradscope.optim.amp")]
        scaler.update()


def test_the_gradscaler_internals_gradscope_relies_on_exist():
    """gradscope.optim.amp reads ``_scale`` and writes ``_per_optimizer_states``: a torch upgrade
    that changes them must fail here, not silently."""
    from torch.amp.grad_scaler import OptState

    scaler = torch.amp.GradScaler("cpu")
    assert scaler._scale is None
    scaler.scale(torch.ones(()))
    assert isinstance(scaler._scale, torch.Tensor)
    state = scaler._per_optimizer_states[0]
    assert state == {"stage": OptState.READY, "found_inf_per_device": {}}
    state["found_inf_per_device"] = {torch.device("cpu"): torch.ones(())}
    state["stage"] = OptState.STEPPED
    before = scaler.get_scale()
    scaler.update()
    assert scaler.get_scale() == before * scaler.get_backoff_factor()
