"""Recording gradscope's own SAM and GraphSAM: values against their StepInfo, probe sanity."""
from __future__ import annotations

import math

import numpy as np
import pytest

import gradscope.optim as gso
from gradscope.probes import Recorder
from gradscope.trace import open_trace


def _record(ref, tmp_path, make_opt, epochs=2, steps_per_epoch=4, **kwargs):
    model = ref.mlp(width=12)
    opt = make_opt(model)
    seen = []

    def capture(o, args, kw):  # runs after the recorder's post-hook (registered later)
        info = o.last_step
        seen.append(
            {
                "eps": None if info.eps is None else info.eps.double().numpy().copy(),
                "omega": info.omega.double().numpy().copy(),
                "anchored": info.anchored,
                "grad_evals": info.grad_evals,
                "loss": float(info.loss),
            }
        )

    path = tmp_path / "t.h5"
    with Recorder(opt, path, model=model, **kwargs) as rec:
        opt.register_step_post_hook(capture)
        for epoch in range(epochs):
            rec.begin_epoch(epoch)
            if epoch and hasattr(opt, "anchor"):
                opt.anchor()  # GraphSAM: exact ε at the first step of every epoch
            for x, y in ref.batches(steps_per_epoch, seed=epoch):
                opt.step(ref.make_closure(model, opt, x, y))
    return open_trace(path), seen


def _check_against(ref, trace, seen):
    s = trace.steps
    for t, h in enumerate(seen):
        prev = seen[t - 1] if t else None
        want = {
            "eps_norm": ref.norm(h["eps"]),
            "omega_norm": ref.norm(h["omega"]),
            "eps_change": ref.dist(h["eps"], prev["eps"]) if prev else math.nan,
            "omega_change": ref.dist(h["omega"], prev["omega"]) if prev else math.nan,
            "cos_eps_omega": ref.cos(h["eps"], h["omega"]),
            "cos_eps_prev_omega": ref.cos(h["eps"], prev["omega"]) if prev else math.nan,
            "loss": h["loss"],
        }
        for name, value in want.items():
            np.testing.assert_allclose(s[name][t], value, rtol=2e-5, atol=1e-7, equal_nan=True, err_msg=f"{name}[{t}]")
    np.testing.assert_array_equal(s["anchored"], [int(h["anchored"]) for h in seen])
    np.testing.assert_array_equal(s["grad_evals"], [h["grad_evals"] for h in seen])


def test_sam_trace_matches_stepinfo_and_exact_probe_agrees(ref, tmp_path) -> None:
    trace, seen = _record(ref, tmp_path, lambda m: gso.SAM(m.parameters(), rho=0.05, lr=1e-2), probe_exact_every=3)
    _check_against(ref, trace, seen)
    s = trace.steps
    assert (s["anchored"] == 1).all() and (s["grad_evals"] == 2).all()
    probed = s["probe_evals"] == 1
    np.testing.assert_array_equal(np.flatnonzero(probed), [0, 3, 6])
    # SAM's ε is the exact gradient: the probe must find cos = 1 and the same norm
    np.testing.assert_allclose(s["cos_eps_exact"][probed], 1.0, atol=1e-6)
    np.testing.assert_allclose(s["eps_exact_norm"][probed], s["eps_norm"][probed], rtol=1e-6)
    np.testing.assert_allclose(s["eps_hat_norm"], 0.05, rtol=1e-6)
    assert trace.exact_agreement(exclude_anchored=False) == 1.0
    assert np.isnan(trace.exact_agreement())  # every SAM step is anchored: nothing approximated


def test_graphsam_trace_matches_stepinfo(ref, tmp_path) -> None:
    trace, seen = _record(
        ref, tmp_path, lambda m: gso.GraphSAM(m.parameters(), rho=0.05, beta=0.9, lr=1e-2), probe_exact_every=1, layers=True
    )
    _check_against(ref, trace, seen)
    s = trace.steps
    np.testing.assert_array_equal(s["anchored"], [1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(s["grad_evals"], [2, 1, 1, 1, 2, 1, 1, 1])
    assert np.isnan(s["loss"][s["anchored"] == 0]).all()
    np.testing.assert_allclose(s["cos_eps_exact"][s["anchored"] == 1], 1.0, atol=1e-6)
    assert (s["cos_eps_exact"][s["anchored"] == 0] < 0.9999).all()
    reused = s["anchored"] == 0
    assert trace.exact_agreement() == pytest.approx(np.mean(s["cos_eps_exact"][reused] >= 0))
    np.testing.assert_allclose(np.sqrt((trace.layers["eps_norm"] ** 2).sum(1)), s["eps_norm"], rtol=1e-5)
    epochs, mean_evals = trace.per_epoch("grad_evals")
    np.testing.assert_array_equal(epochs, [0, 1])
    np.testing.assert_allclose(mean_evals, [1.25, 1.25])


@pytest.mark.parametrize("name", ["SAMOne", "SAMK", "LookSAM", "ASAM", "AESAM", "RST"])
def test_other_methods_record_without_error(ref, tmp_path, name) -> None:
    cls = getattr(gso, name)
    trace, seen = _record(ref, tmp_path, lambda m: cls(m.parameters(), lr=1e-2), epochs=1, steps_per_epoch=6)
    _check_against(ref, trace, seen)
    assert len(trace) == 6
