"""The exact-ε probe: right values on probed steps, and no effect on the training trajectory."""
from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradscope.optim as gso
from gradscope.errors import GradscopeError
from gradscope.probes import Recorder
from gradscope.trace import open_trace


def _exact_gradient(model, x, y) -> np.ndarray:
    """Reference ∇L_B(θ) on an independent copy of the model (float64)."""
    twin = copy.deepcopy(model)
    loss = F.mse_loss(twin(x), y)
    grads = torch.autograd.grad(loss, list(twin.parameters()))
    return torch.cat([g.reshape(-1) for g in grads]).double().numpy()


def test_probe_values_match_reference_for_a_reused_eps(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = ref.NaiveSAM(model.parameters(), recompute_every=4)
    path = tmp_path / "t.h5"
    exact = []
    with Recorder(opt, path, probe_exact_every=2, flush_every=3):
        for x, y in ref.batches(9):
            exact.append(_exact_gradient(model, x, y))
            opt.step(ref.make_closure(model, opt, x, y))
    trace = open_trace(path)
    s = trace.steps
    probed = np.arange(9) % 2 == 0
    want_cos = [ref.cos(h["eps"], g) if p else math.nan for h, g, p in zip(opt.history, exact, probed)]
    want_norm = [ref.norm(g) if p else math.nan for g, p in zip(exact, probed)]
    np.testing.assert_allclose(s["cos_eps_exact"], want_cos, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(s["eps_exact_norm"], want_norm, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(s["probe_evals"], probed.astype(int))
    np.testing.assert_array_equal(s["grad_evals"], [h["grad_evals"] for h in opt.history])
    # anchored steps use the exact gradient: cos = 1; reused steps do not
    anchored = s["anchored"].astype(bool) & probed
    np.testing.assert_allclose(s["cos_eps_exact"][anchored], 1.0, atol=1e-6)
    assert (s["cos_eps_exact"][probed & ~anchored] < 0.999).all()
    assert trace.exact_agreement(exclude_anchored=False) == pytest.approx(np.mean(np.array(want_cos)[probed] >= 0))
    reused = probed & ~s["anchored"].astype(bool)
    assert trace.exact_agreement() == pytest.approx(np.mean(np.array(want_cos)[reused] >= 0))
    assert json.loads(trace.metadata["recorder"])["probe_exact_every"] == 2


def _train(make_opt, probe: int | None, tmp_path, ref, recorder: bool = True):
    torch.manual_seed(0)
    model = ref.mlp(dropout=0.3, batchnorm=True)
    opt = make_opt(model)
    losses = []
    kwargs = {} if probe is None else {"probe_exact_every": probe}
    rec = Recorder(opt, tmp_path / f"t{probe}.h5", model=model, overwrite=True, **kwargs) if recorder else None
    for x, y in ref.batches(6):
        losses.append(opt.step(ref.make_closure(model, opt, x, y)))
    if rec is not None:
        rec.close()
    return model, [torch.as_tensor(v).clone() for v in losses]


OPTIMIZERS = {
    "adam": lambda m: torch.optim.Adam(m.parameters(), lr=1e-2),
    "sam": lambda m: gso.SAM(m.parameters(), rho=0.05, lr=1e-2),
    "graphsam": lambda m: gso.GraphSAM(m.parameters(), rho=0.05, lr=1e-2),
}


@pytest.mark.parametrize("kind", ["adam", "sam", "graphsam"])
def test_probe_leaves_the_trajectory_unchanged_bit_for_bit(ref, tmp_path, kind) -> None:
    """Dropout draws, batch-norm statistics, gradients and parameters are exactly as without the probe."""
    make = OPTIMIZERS[kind]
    plain_model, plain_losses = _train(make, None, tmp_path, ref, recorder=False)
    probed_model, probed_losses = _train(make, 1, tmp_path, ref)
    for (name, a), b in zip(plain_model.state_dict().items(), probed_model.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(plain_losses, probed_losses):
        assert torch.equal(a, b)
    assert open_trace(tmp_path / "t1.h5").steps["probe_evals"].sum() == 6


def test_the_trajectory_check_can_fail(ref, tmp_path, monkeypatch) -> None:
    """Without the RNG fork the probe's dropout draws shift the run: the check above would see it."""
    import gradscope.probes.exact as exact

    class NoFork:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return None

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(exact.torch.random, "fork_rng", NoFork)
    plain_model, _ = _train(OPTIMIZERS["adam"], None, tmp_path, ref, recorder=False)
    probed_model, _ = _train(OPTIMIZERS["adam"], 1, tmp_path, ref)
    assert not all(torch.equal(a, b) for a, b in zip(plain_model.parameters(), probed_model.parameters()))


def test_existing_gradients_are_restored_as_the_same_tensors(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = ref.batches(1)[0]
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    before = [p.grad for p in model.parameters()]
    want = [7.0 + g for g in _grads(model, x, y)]  # what the step's own backward accumulates
    after_probe, in_step = [], []
    with Recorder(opt, tmp_path / "t.h5", probe_exact_every=1):
        opt.register_step_pre_hook(lambda o, a, k: after_probe.extend(p.grad for p in model.parameters()))

        def closure():  # no zero_grad: the probe must not leave its gradient behind
            loss = F.mse_loss(model(x), y)
            loss.backward()
            in_step.extend(p.grad.clone() for p in model.parameters())
            return loss

        opt.step(closure)
    assert all(a is b for a, b in zip(before, after_probe))
    n = len(want)
    assert len(in_step) == 2 * n  # the probe's call (fresh gradients), then the step's own call
    for probe_grad, step_grad, w in zip(in_step[:n], in_step[n:], want):
        torch.testing.assert_close(probe_grad, w - 7.0, rtol=0, atol=1e-6)
        torch.testing.assert_close(step_grad, w, rtol=0, atol=1e-6)


def _grads(model, x, y):
    return list(torch.autograd.grad(F.mse_loss(model(x), y), list(model.parameters())))


def test_probe_needs_a_closure(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Recorder(opt, tmp_path / "t.h5", probe_exact_every=1):
        x, y = ref.batches(1)[0]
        F.mse_loss(model(x), y).backward()
        with pytest.raises(GradscopeError, match="closure"):
            opt.step()
