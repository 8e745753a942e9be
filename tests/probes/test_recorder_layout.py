"""Per-parameter layout of the optimizer's flat vectors: another parameter order, and views made once."""
from __future__ import annotations

import numpy as np

import gradscope.optim as gso
from gradscope.probes import Recorder
from gradscope.probes import functional
from gradscope.trace import open_trace


def test_an_optimizer_that_flattens_in_another_order(ref, tmp_path) -> None:
    """Per-tensor norms land in the recorder's (param-group) columns whatever order ε and ω are flat in."""
    model = ref.mlp()
    opt = ref.NaiveSAM(model.parameters())
    opt.params = opt.params[::-1]  # ε, ω and StepInfo.params in reversed parameter order
    path = tmp_path / "t.h5"
    with Recorder(opt, path, model=model, layers=True, probe_exact_every=1):
        for x, y in ref.batches(4):
            opt.step(ref.make_closure(model, opt, x, y))
    trace = open_trace(path)
    params = list(model.parameters())
    sizes = [p.numel() for p in params[::-1]]
    bounds = np.cumsum([0] + sizes)
    for key, col in (("eps", "eps_norm"), ("omega", "omega_norm")):
        reversed_norms = [[np.linalg.norm(h[key][bounds[i] : bounds[i + 1]]) for i in range(len(sizes))]
                          for h in opt.history]
        want = [row[::-1] for row in reversed_norms]  # back to the model's order
        np.testing.assert_allclose(trace.layers[col], want, rtol=2e-5)
    # SAM's ε is the exact gradient at θ_t: the probe (flattened in the optimizer's order) agrees
    np.testing.assert_allclose(trace.steps["cos_eps_exact"], 1.0, rtol=1e-5)


def test_views_of_an_optimizers_buffers_are_made_once(ref, tmp_path, monkeypatch) -> None:
    """GraphSAM keeps ω in one buffer and alternates ε between two: three splits for a whole run."""
    calls = []
    split = functional.split_flat
    monkeypatch.setattr(functional, "split_flat", lambda flat, sizes: calls.append(1) or split(flat, sizes))
    model = ref.mlp()
    opt = gso.GraphSAM(model.parameters(), rho=0.05, lr=1e-2)
    with Recorder(opt, tmp_path / "t.h5", model=model, layers=True):
        for x, y in ref.batches(12):
            opt.step(ref.make_closure(model, opt, x, y))
    assert len(calls) == 3
    calls.clear()
    fresh = ref.NaiveSAM(model.parameters())  # hands a new ε tensor every step: a split every step
    with Recorder(fresh, tmp_path / "n.h5", model=model, layers=True):
        for x, y in ref.batches(5):
            fresh.step(ref.make_closure(model, fresh, x, y))
    assert len(calls) == 5 + 5
