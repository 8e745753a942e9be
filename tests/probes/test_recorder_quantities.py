"""Every recorded step quantity against a float64 reference computed from explicit vectors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradscope.errors import ConfigError, GradscopeError
from gradscope.probes import Recorder
from gradscope.trace import open_trace, schema


def _run_naive(ref, tmp_path, steps=9, **kwargs):
    model = ref.mlp()
    opt = ref.NaiveSAM(model.parameters(), **{k: kwargs.pop(k) for k in ("recompute_every", "erm_every") if k in kwargs})
    path = tmp_path / "sam.h5"
    with Recorder(opt, path, config={"method": "naive"}, model=model, **kwargs) as rec:
        rec.begin_epoch(3, batch_size=16)
        for i, (x, y) in enumerate(ref.batches(steps)):
            if i == 5:
                rec.begin_epoch(4)
                rec.set_batch_size(12)
            opt.step(ref.make_closure(model, opt, x, y))
    return open_trace(path), opt.history, model


def _expected(ref, history):
    """The schema's definitions, evaluated in float64 on the explicit per-step vectors."""
    rows = []
    for t, h in enumerate(history):
        prev = history[t - 1] if t else None
        rows.append(
            {
                "eps_norm": ref.norm(h["eps"]),
                "omega_norm": ref.norm(h["omega"]),
                "eps_hat_norm": h["eps_hat_norm"],
                "eps_change": ref.dist(h["eps"], prev["eps"]) if prev else math.nan,
                "omega_change": ref.dist(h["omega"], prev["omega"]) if prev else math.nan,
                "cos_eps_omega": ref.cos(h["eps"], h["omega"]),
                "cos_eps_prev_omega": ref.cos(h["eps"], prev["omega"]) if prev else math.nan,
                "loss": h["loss"],
                "loss_perturbed": h["loss_perturbed"],
            }
        )
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_a_recorded_step_fills_every_schema_column(ref, tmp_path) -> None:
    """Device and host columns together cover the schema: on a step where everything is defined
    (a previous step exists, the exact-ε probe ran, the loop told epoch and batch size) no
    column is left at its "never written" fill."""
    trace, _, _ = _run_naive(ref, tmp_path, steps=3, probe_exact_every=1, layers=True)
    for col in schema.STEPS.columns:
        value = trace.steps[col.name][2]
        assert not (np.isnan(value) if np.dtype(col.dtype).kind == "f" else value == col.fill), col.name
    for col in schema.LAYERS.columns:
        assert np.isfinite(trace.layers[col.name][2]).all(), col.name


@pytest.mark.parametrize("flush_every", [1, 4, 256])
def test_sam_quantities_match_float64_reference(ref, tmp_path, flush_every) -> None:
    trace, history, _ = _run_naive(ref, tmp_path, steps=9, flush_every=flush_every)
    want = _expected(ref, history)
    assert len(trace) == 9
    for name, values in want.items():
        np.testing.assert_allclose(trace.steps[name], values, rtol=2e-5, atol=1e-7, err_msg=name, equal_nan=True)
    assert np.isnan(trace.steps["eps_change"][0]) and np.isnan(trace.steps["cos_eps_prev_omega"][0])
    assert np.isfinite(trace.steps["eps_change"][1:]).all()
    np.testing.assert_array_equal(trace.steps["step"], np.arange(9))
    np.testing.assert_array_equal(trace.steps["epoch"], [3] * 5 + [4] * 4)
    np.testing.assert_array_equal(trace.steps["batch_size"], [16] * 5 + [12] * 4)
    np.testing.assert_array_equal(trace.steps["anchored"], [1] * 9)
    np.testing.assert_array_equal(trace.steps["grad_evals"], [2] * 9)
    np.testing.assert_array_equal(trace.steps["probe_evals"], [0] * 9)
    np.testing.assert_array_equal(trace.steps["rho"], [0.05] * 9)
    np.testing.assert_array_equal(trace.steps["lr"], [0.05] * 9)
    assert np.isnan(trace.steps["cos_eps_exact"]).all() and np.isnan(trace.steps["eps_exact_norm"]).all()
    assert (np.diff(trace.steps["time_s"]) >= 0).all() and (trace.steps["step_time_s"] > 0).all()
    assert trace.optimizer == "NaiveSAM" and trace.config == {"method": "naive"}


def test_reused_eps_and_erm_steps(ref, tmp_path) -> None:
    """SAM-k-like reuse gives zero ε change exactly; a step without ε gives NaN ε channels."""
    trace, history, _ = _run_naive(ref, tmp_path, steps=10, recompute_every=3, erm_every=4)
    want = _expected(ref, history)
    for name, values in want.items():
        np.testing.assert_allclose(trace.steps[name], values, rtol=2e-5, atol=1e-7, err_msg=name, equal_nan=True)
    s = trace.steps
    erm = np.array([t % 4 == 3 for t in range(10)])
    assert np.isnan(s["eps_norm"][erm]).all() and np.isnan(s["cos_eps_omega"][erm]).all()
    assert np.isnan(s["eps_change"][np.flatnonzero(erm) + 1]).all()  # no ε_{t−1} after an ERM step
    reused = [t for t in range(1, 10) if not erm[t] and not erm[t - 1] and t % 3 != 0]
    assert reused and (s["eps_change"][reused] == 0.0).all()
    np.testing.assert_array_equal(s["anchored"], [h["anchored"] for h in history])
    np.testing.assert_array_equal(s["grad_evals"], [h["grad_evals"] for h in history])


def test_layers_breakdown_matches_per_tensor_reference(ref, tmp_path) -> None:
    trace, history, model = _run_naive(ref, tmp_path, steps=6, layers=True, flush_every=4)
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    assert trace.layer_names == tuple(names)
    bounds = np.cumsum([0] + sizes)
    for key, col in (("eps", "eps_norm"), ("omega", "omega_norm")):
        want = [[np.linalg.norm(h[key][bounds[i] : bounds[i + 1]]) for i in range(len(sizes))] for h in history]
        np.testing.assert_allclose(trace.layers[col], want, rtol=2e-5)
    np.testing.assert_array_equal(trace.layers["step"], np.arange(6))
    # the per-tensor norms compose to the global ones
    np.testing.assert_allclose(np.sqrt((trace.layers["omega_norm"] ** 2).sum(1)), trace.steps["omega_norm"], rtol=1e-5)


def test_adam_run_has_gradient_as_omega_and_nan_eps_channels(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    grads, losses = [], []
    path = tmp_path / "adam.h5"
    with Recorder(opt, path, flush_every=3, layers=True, model=model):
        for x, y in ref.batches(7):
            inner = ref.make_closure(model, opt, x, y)

            def closure():
                loss = inner()
                grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double().numpy())
                losses.append(loss.item())
                return loss

            opt.step(closure)
    s = open_trace(path).steps
    for name in ("eps_norm", "eps_hat_norm", "eps_change", "cos_eps_omega", "cos_eps_prev_omega", "cos_eps_exact", "rho", "loss_perturbed"):
        assert np.isnan(s[name]).all(), name
    np.testing.assert_allclose(s["omega_norm"], [np.linalg.norm(g) for g in grads], rtol=2e-5)
    np.testing.assert_allclose(s["omega_change"][1:], [np.linalg.norm(b - a) for a, b in zip(grads, grads[1:])], rtol=2e-5)
    assert np.isnan(s["omega_change"][0])
    np.testing.assert_allclose(s["loss"], losses, rtol=1e-6)
    np.testing.assert_array_equal(s["grad_evals"], [1] * 7)
    np.testing.assert_array_equal(s["anchored"], [0] * 7)
    assert np.isnan(open_trace(path).layers["eps_norm"]).all()


def test_adam_without_closure_uses_log_loss(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    path = tmp_path / "adam.h5"
    logged = []
    with Recorder(opt, path, flush_every=2) as rec:
        for i, (x, y) in enumerate(ref.batches(5)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            if i != 2:
                rec.log_loss(loss if i % 2 else loss.item())
                logged.append(loss.item())
            else:
                logged.append(math.nan)
    s = open_trace(path).steps
    np.testing.assert_allclose(s["loss"], logged, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(s["grad_evals"], [1] * 5)


def test_log_loss_before_any_step_is_an_error(ref, tmp_path) -> None:
    model = ref.mlp()
    with Recorder(torch.optim.SGD(model.parameters(), lr=0.1), tmp_path / "t.h5") as rec:
        with pytest.raises(GradscopeError, match="must follow"):
            rec.log_loss(1.0)


def test_rows_reach_the_file_only_at_flushes(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "t.h5"
    seen = []
    with Recorder(opt, path, flush_every=4) as rec:
        for x, y in ref.batches(10):
            opt.step(ref.make_closure(model, opt, x, y))
            seen.append(len(open_trace(path)))
        rec.log_epoch(train_loss=0.5)  # flushes the partial buffer
        assert len(open_trace(path)) == 10
    # a buffer of 4 is written when the 5th step starts
    assert seen == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]


def test_log_epoch_rows(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "t.h5"
    with Recorder(opt, path, epoch_metrics={"val_auc": (), "attention_entropy_layer_head": (2, 3)}) as rec:
        for epoch in range(2):
            rec.begin_epoch(epoch)
            for x, y in ref.batches(3, seed=epoch):
                opt.step(ref.make_closure(model, opt, x, y))
            rec.log_epoch(train_loss=1.0 + epoch, val_auc=0.7, attention_entropy_layer_head=np.full((2, 3), epoch))
    e = open_trace(path).epochs
    np.testing.assert_array_equal(e["epoch"], [0, 1])
    np.testing.assert_array_equal(e["step_count"], [3, 6])
    np.testing.assert_array_equal(e["train_loss"], [1.0, 2.0])
    np.testing.assert_array_equal(e["val_auc"], [0.7, 0.7])
    assert np.isnan(e["val_loss"]).all()
    assert e["attention_entropy_layer_head"].shape == (2, 2, 3)
    np.testing.assert_array_equal(e["attention_entropy_layer_head"][1], np.ones((2, 3)))


def test_settings_are_validated(ref, tmp_path) -> None:
    opt = torch.optim.SGD(ref.mlp().parameters(), lr=0.1)
    for bad in ({"flush_every": 0}, {"probe_exact_every": -1}, {"vectors_dtype": "int8"}, {"vectors_compression": "zip"}):
        with pytest.raises(ConfigError):
            Recorder(opt, tmp_path / "x.h5", **bad)
    with pytest.raises(TypeError):
        Recorder(opt, tmp_path / "x.h5", flush_evrey=3)
    assert not (tmp_path / "x.h5").exists()


def test_closed_recorder_detaches_hooks(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "t.h5"
    rec = Recorder(opt, path)
    x, y = ref.batches(1)[0]
    opt.step(ref.make_closure(model, opt, x, y))
    rec.close()
    rec.close()  # idempotent
    opt.step(ref.make_closure(model, opt, x, y))  # no longer recorded, no error
    assert len(open_trace(path)) == 1
    with pytest.raises(GradscopeError, match="closed"):
        rec.log_epoch(train_loss=1.0)


def test_resumed_recording_continues_steps_and_time(ref, tmp_path) -> None:
    model = ref.mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "t.h5"
    data = ref.batches(8)
    with Recorder(opt, path, flush_every=2):
        for x, y in data[:5]:
            opt.step(ref.make_closure(model, opt, x, y))
    with pytest.raises(GradscopeError, match="exists"):
        Recorder(opt, path)
    with Recorder(opt, path, resume=True) as rec:
        assert rec.step == 5
        for x, y in data[5:]:
            opt.step(ref.make_closure(model, opt, x, y))
    s = open_trace(path).steps
    np.testing.assert_array_equal(s["step"], np.arange(8))
    assert (np.diff(s["time_s"]) >= 0).all()
