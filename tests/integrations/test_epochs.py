"""EpochHooks follow the optimizer registry's epoch rules, as `gradscope record` does."""
from __future__ import annotations

import torch

from gradscope.integrations.epochs import EpochHooks
from gradscope.optim import GraphSAM, SAMOne
from gradscope.optim.registry import get_method


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


def test_anchor_rules_are_the_registrys() -> None:
    graphsam = EpochHooks(GraphSAM(_params(), lr=0.1), anchor_every=2)
    assert graphsam.name == "graphsam" and [graphsam.anchors_at(e) for e in range(4)] == [True, False, True, False]
    paper = EpochHooks(SAMOne(_params(), lr=0.1))  # the paper's SAM-One: one anchor, the run's first step
    assert paper.name == "sam-one" and not any(paper.anchors_at(e) for e in range(4))
    per_epoch = EpochHooks(SAMOne(_params(), lr=0.1), method="sam-one-epoch")
    assert all(per_epoch.anchors_at(e) for e in range(4))
    for hooks in (graphsam, paper, per_epoch):  # the same answers as the registry entry gives record's loop
        method = get_method(hooks.name)
        assert [hooks.anchors_at(e) for e in range(4)] == [method.anchors_at(hooks._settings, e) for e in range(4)]


def test_rho_schedule_halves_rho_each_epoch_and_a_plain_optimizer_is_left_alone() -> None:
    opt = GraphSAM(_params(), lr=0.1, rho=0.05)
    hooks = EpochHooks(opt)
    hooks.end()
    hooks.end()
    assert opt.rho == 0.05 * 0.25
    adam = EpochHooks(torch.optim.Adam(_params()))
    assert adam.name is None and adam.rho_schedule is None and not adam.anchors_at(0)
    adam.start(0)
    adam.end()
