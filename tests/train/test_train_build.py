"""Mapping a configuration to data, model, optimizer and schedules; DDP helpers on one process."""
from __future__ import annotations

import pytest
import torch

from gradscope.errors import GradscopeError
from gradscope.optim import StepRho
from gradscope.optim.registry import method_names
from gradscope.train import distributed as D
from gradscope.train.build import anchors_at, build_data, build_model_for, build_optimizer, dataset_spec, resolve_device
from gradscope.train.config import RecordConfig


def test_anchor_schedule_of_each_method():
    k3 = RecordConfig(optimizer="graphsam", optimizer_settings={"anchor_every_epochs": 3})
    assert [anchors_at(k3, e) for e in range(7)] == [True, False, False, True, False, False, True]
    assert all(anchors_at(RecordConfig(optimizer=o), e) for e in range(3)
               for o in ("graphsam", "sam-one-epoch", "graphsam-released"))
    # the paper's SAM-One: one anchor for the run, the optimizer's own first step
    assert not any(anchors_at(RecordConfig(optimizer=o), e) for e in range(3)
                   for o in ("sam-one", "sam", "adam", "sam-k", "looksam", "rst", "ae-sam", "asam"))


#: (method settings, ρ-schedule settings) given to every optimizer that has them, and where they land.
SETTINGS = {"rho": 0.2, "beta": 0.5, "k": 4, "eta": 0.03, "alpha": 0.4, "delta": 0.8, "c1": -0.5, "c2": 0.5,
            "p": 0.3, "seed": 5, "radius": 0.1, "scale_grad_by_loss": False, "gamma": 0.5, "step_size": 1,
            "scale_biases": True, "normalization": "per-tensor"}


@pytest.mark.parametrize("name", method_names())
def test_optimizer_mapping(name):
    from dataclasses import fields

    from gradscope.optim.registry import get_method

    method = get_method(name)
    model = torch.nn.Linear(3, 1)
    own = {f.name: SETTINGS[f.name] for f in fields(method.settings) if f.name in SETTINGS}
    config = RecordConfig(optimizer=name, lr=0.01, weight_decay=0.1, optimizer_settings=own)
    optimizer, schedule = build_optimizer(config, model, steps_per_epoch=5)
    assert optimizer.param_groups[0]["lr"] == 0.01 and optimizer.param_groups[0]["weight_decay"] == 0.1
    if name == "adam":
        assert type(optimizer) is torch.optim.Adam and schedule is None
        return
    assert optimizer.rho == 0.2
    for key, value in own.items():  # every setting reached the optimizer's own config
        assert getattr(optimizer.config, key) == value, key
    if method.rho_schedule:
        assert isinstance(schedule, StepRho)
        schedule.step()
        assert optimizer.rho == pytest.approx(0.1)
    else:
        assert schedule is None  # the released code compounds ρ itself at each epoch start
    if name == "ae-sam":
        assert optimizer.config.total_steps == 5 * config.epochs  # supplied by the run


def test_base_optimizer_choice_reaches_every_method():
    model = torch.nn.Linear(3, 1)
    for name in ("adam", "sam", "graphsam"):
        optimizer, _ = build_optimizer(RecordConfig(optimizer=name, base_optimizer="sgd"), model, 5)
        base = optimizer if name == "adam" else optimizer.base_optimizer
        assert type(base) is torch.optim.SGD


def test_dataset_spec_and_data(regression_csv):
    assert dataset_spec(RecordConfig()).name == "demo"
    spec = dataset_spec(RecordConfig(data=str(regression_csv), targets=("logS",)))
    assert spec.path == str(regression_csv) and tuple(spec.targets) == ("logS",)
    data = build_data(RecordConfig(data=str(regression_csv)), progress=False)
    assert {k: len(v) for k, v in data.split.items()} == {"train": 19, "val": 2, "test": 3}
    assert data.standardizer is not None and data.task == "regression" and data.metric == "rmse"
    model = build_model_for(RecordConfig(model="tiny"), data.dataset)
    assert model.config.d_model == 32 and model.config.atom_dim == data.dataset.atom_dim


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(GradscopeError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_distributed_helpers_on_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = D.init_distributed("cpu")
    assert info == D.DistInfo() and info.is_main and not info.enabled
    idx = torch.arange(7)
    assert torch.equal(D.shard(idx, info), idx)
    x = torch.tensor(2.5)
    assert D.mean_across(x, info) is x
    # two ranks: strided shards that partition the batch, sizes differing by at most one
    shards = [D.shard(idx, D.DistInfo(rank=r, world_size=2)) for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == list(range(7)) and [len(s) for s in shards] == [4, 3]


def test_cpu_thread_policy():
    from gradscope.train.build import cpu_threads

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert cpu_threads(RecordConfig(model="tiny"), cpu) == 1
    assert cpu_threads(RecordConfig(model="small"), cpu) == 1
    assert cpu_threads(RecordConfig(model="compt"), cpu) is None
    assert cpu_threads(RecordConfig(model="small", threads=3), cpu) == 3
    assert cpu_threads(RecordConfig(model="small", threads=3), cuda) is None


def test_record_sets_threads_and_restores_them(regression_csv, tmp_path):
    from gradscope.train.loop import record

    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = RecordConfig(data=str(regression_csv), model="tiny", epochs=1, batch_size=8, device="cpu")
        record(config, tmp_path / "a", quiet=True, stop_when=lambda step: seen.append(torch.get_num_threads()) or False)
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2
        record(config.replace(threads=2), tmp_path / "b", quiet=True,
               stop_when=lambda step: seen.append(torch.get_num_threads()) or False)
        assert seen[3:] == [2, 2, 2]
    finally:
        torch.set_num_threads(before)


def test_asam_in_a_run_finds_the_weights_by_name():
    """The record loop hands the sharpness-aware methods named parameters: ASAM's released rule
    (T = |θ| + η where "weight" is in the name) then holds, LayerNorm scales included."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 1))
    asam, _ = build_optimizer(RecordConfig(optimizer="asam"), model, steps_per_epoch=5)
    assert asam.scaled == tuple("weight" in name for name, _ in model.named_parameters())
    adam, _ = build_optimizer(RecordConfig(optimizer="adam"), model, steps_per_epoch=5)
    assert "param_names" not in adam.param_groups[0]  # a plain optimizer keeps its usual state dict
