"""Bad arguments are refused with clear messages; the registry builds what it names."""
from __future__ import annotations

import pytest
import torch
from kit.optim import closure_for, make_batches, make_model

import gradscope.optim as go
from gradscope.errors import ConfigError, GradscopeError


def params():
    return make_model().parameters()


@pytest.mark.parametrize("name", list(go.OPTIMIZERS))
def test_negative_rho_is_refused_by_every_method(name):
    with pytest.raises(ConfigError, match=r"rho must be a finite number >= 0, got -0\.1"):
        go.make_optimizer(name, params(), rho=-0.1)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: go.GraphSAM(params(), beta=1.0), "that is SAM-One"),
        (lambda: go.GraphSAM(params(), beta=1.5), r"beta must lie in \[0, 1\), got 1\.5"),
        (lambda: go.GraphSAM(params(), beta=-0.1), r"beta must lie in \[0, 1\)"),
        (lambda: go.GraphSAMReleased(params(), beta=1.2), r"beta must lie in \[0, 1\]"),
        (lambda: go.SAMK(params(), k=0), "k must be an integer >= 1, got 0"),
        (lambda: go.SAMK(params(), k=2.5), "k must be an integer >= 1"),
        (lambda: go.LookSAM(params(), k=0), "k must be an integer >= 1"),
        (lambda: go.RST(params(), p=1.5), r"p must lie in \[0, 1\], got 1\.5"),
        (lambda: go.RST(params(), p=-0.5), r"p must lie in \[0, 1\]"),
        (lambda: go.AESAM(params(), delta=1.0), r"delta must lie in \[0, 1\)"),
        (lambda: go.AESAM(params(), total_steps=0), "total_steps must be an integer >= 1"),
        (lambda: go.ASAM(params(), eta=0.0), "eta must be > 0"),
        (lambda: go.GraphSAMReleased(params(), radius=-1.0), "radius must be a finite number >= 0"),
        (lambda: go.GraphSAMReleased(params(), step_size=0), "step_size must be an integer >= 1"),
        (lambda: go.SAM(params(), base_optimizer="lion"), "unknown base optimizer 'lion'; known: adam, adamw, sgd"),
        (lambda: go.SAM(params(), base_optimizer=dict), "must be a torch.optim.Optimizer class"),
        (lambda: go.SAM(params(), base_optimizer=go.SAM), "itself sharpness-aware"),
        (lambda: go.make_optimizer("adamsam", params()), "unknown optimizer 'adamsam'; known: adam, sam, asam"),
        (lambda: go.make_optimizer("sam", params(), base="rmsprop"), "unknown base optimizer"),
        (lambda: go.SAM([{"params": list(params()), "rho": 0.1}]), "rho is one global value"),
        (lambda: go.SAM([p.requires_grad_(False) for p in params()]), "no trainable parameters"),
        (lambda: go.StepRho(go.SAM(params()), gamma=0.0), "gamma must be > 0"),
        (lambda: go.StepRho(go.SAM(params()), gamma=1.5), r"gamma must lie in \(0, 1\]"),
        (lambda: go.StepRho(go.SAM(params()), step_size=0), "step_size must be an integer >= 1"),
        (lambda: go.StepRho(torch.optim.Adam(params())), "needs a gradscope sharpness-aware optimizer"),
    ],
)
def test_bad_arguments_raise_config_errors(build, message):
    with pytest.raises(ConfigError, match=message) as info:
        build()
    assert isinstance(info.value, ValueError)  # torch convention
    assert "\n" not in str(info.value)  # one line for the CLI


def test_config_dataclasses_are_frozen_and_validate():
    cfg = go.GraphSAMConfig()
    assert (cfg.rho, cfg.beta) == (0.05, 0.99)
    with pytest.raises(Exception):
        cfg.rho = 0.1  # type: ignore[misc]
    with pytest.raises(ConfigError):
        go.SAMKConfig(k=-1)


def test_registry_names_and_make_optimizer():
    assert go.method_names() == (
        "adam", "sam", "asam", "graphsam", "sam-one", "sam-one-epoch", "sam-k", "looksam", "ae-sam", "rst",
        "graphsam-released",
    )
    assert list(go.OPTIMIZERS) == list(go.method_names()[1:])  # the sharpness-aware ones
    expected = [go.SAM, go.ASAM, go.GraphSAM, go.SAMOne, go.SAMOne, go.SAMK, go.LookSAM, go.AESAM, go.RST,
                go.GraphSAMReleased]
    assert list(go.OPTIMIZERS.values()) == expected
    assert type(go.make_optimizer("adam", params(), base="sgd", lr=0.1)) is torch.optim.SGD
    opt = go.make_optimizer("graphsam", params(), base="sgd", lr=0.3, momentum=0.9, rho=0.02, beta=0.5)
    assert isinstance(opt, go.GraphSAM) and isinstance(opt.base_optimizer, torch.optim.SGD)
    assert opt.param_groups[0]["lr"] == 0.3 and opt.param_groups[0]["momentum"] == 0.9
    assert (opt.rho, opt.beta) == (0.02, 0.5)
    opt = go.make_optimizer("SAM-K", params(), base=torch.optim.AdamW, k=4)
    assert isinstance(opt.base_optimizer, torch.optim.AdamW) and opt.config.k == 4
    assert isinstance(go.make_optimizer("sam", params()).base_optimizer, torch.optim.Adam)


def test_default_hyperparameters_follow_the_papers():
    assert go.GraphSAM(params()).config == go.GraphSAMConfig(rho=0.05, beta=0.99)
    assert go.SAMK(params()).config.k == 8
    assert (go.LookSAM(params()).config.k, go.LookSAM(params()).config.alpha) == (5, 0.7)
    assert go.AESAM(params()).config.delta == 0.9
    assert go.RST(params()).config.p == 0.5
    assert go.ASAM(params()).config.eta == 0.01
    sched = go.StepRho(go.GraphSAM(params()))
    assert (sched.config.step_size, sched.config.gamma) == (1, 0.5)


def test_add_param_group_after_construction_is_refused():
    opt = go.SAM(params())
    with pytest.raises(GradscopeError, match="fixed parameter set"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})


def test_anchor_is_harmless_for_methods_that_always_compute_eps():
    model, batches = make_model(), make_batches()
    opt = go.SAM(model.parameters(), lr=0.01)
    opt.anchor()
    opt.step(closure_for(model, batches[0]))
    assert opt.last_step.grad_evals == 2 and opt.steps == 1
