"""The optimizer registry: every built-in method's declaration, the epoch hooks, construction from
settings, the checks on a declaration, and third-party methods joining by entry points."""
from __future__ import annotations

import types
import warnings
from dataclasses import MISSING, dataclass, fields

import pytest
import torch
from kit.optim import make_model

import gradscope.optim as go
from gradscope.errors import ConfigError
from gradscope.optim import registry


def params():
    return make_model().parameters()


@pytest.mark.parametrize("name", go.method_names())
def test_every_builtin_declares_its_names_settings_and_meanings(name):
    method = go.get_method(name)
    assert method.name == name and method.display_name and method.summary
    options = method.options()
    assert len({o.flag for o in options}) == len(options)
    for option in options:
        assert len(option.help) > 15, f"{name} {option.flag}: no meaning for --help"
        holder = method.settings if option.group == "optimizer_settings" else go.StepRhoConfig
        f = next(f for f in fields(holder) if f.name == option.field)
        assert option.default == f.default and f.default is not MISSING
    # what the CLI cannot show is supplied by the run or hidden on purpose
    shown = {o.field for o in options if o.group == "optimizer_settings"}
    assert {f.name for f in fields(method.settings)} - shown == set(method.from_run) | set(method.hidden)


def test_display_names_and_lookup():
    assert [go.display_name(n) for n in ("adam", "graphsam-released", "sam-one-epoch", "SAM-K")] == [
        "Adam", "GraphSAM (released code)", "SAM-One (per epoch)", "SAM-k"]
    assert go.display_name("not-registered") == "not-registered"
    with pytest.raises(ConfigError, match="unknown optimizer 'lion'; known: adam, sam"):
        go.get_method("lion")
    assert registry.method_by_former_name("sam-one").name == "sam-one-epoch"
    assert registry.method_by_former_name("graphsam").name == "graphsam"


class Hooks:
    """An optimizer stand-in that records the epoch hooks it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int | None]] = []
        self.epoch = None

    def anchor(self) -> None:
        self.calls.append(("anchor", self.epoch))

    def epoch_step(self, epoch: int) -> None:
        self.calls.append(("epoch_step", epoch))


@pytest.mark.parametrize("name,settings,expected", [
    ("graphsam", {}, [("anchor", e) for e in range(5)]),
    ("graphsam", {"anchor_every_epochs": 2}, [("anchor", 0), ("anchor", 2), ("anchor", 4)]),
    ("sam-one-epoch", {"anchor_every_epochs": 3}, [("anchor", 0), ("anchor", 3)]),
    ("sam-one", {}, []),  # one anchor for the run: the optimizer's own first step
    ("graphsam-released", {}, [("epoch_step", e) for e in range(5)]),
    ("sam", {}, []), ("sam-k", {}, []), ("looksam", {}, []), ("rst", {}, []), ("adam", {}, []),
])
def test_epoch_hooks(name, settings, expected):
    method, optimizer = go.get_method(name), Hooks()
    config = method.make_settings(settings)
    for epoch in range(5):
        optimizer.epoch = epoch
        method.start_epoch(optimizer, config, epoch)
    assert optimizer.calls == expected


def test_sam_one_anchors_once_per_run_and_sam_one_epoch_every_epoch():
    """Through real optimizers: the number of exact ε (2-pass steps) over 3 epochs of 4 steps."""
    from kit.optim import closure_for, make_batches

    passes = {}
    for name in ("sam-one", "sam-one-epoch"):
        model, batches = make_model(), make_batches()
        method = go.get_method(name)
        settings = method.make_settings()
        opt = method.build(model.parameters(), settings, lr=0.01)
        counts = []
        for epoch in range(3):
            method.start_epoch(opt, settings, epoch)
            for b in range(4):
                opt.step(closure_for(model, batches[b % len(batches)]))
                counts.append(opt.last_step.grad_evals)
        passes[name] = counts
    assert passes["sam-one"] == [2] + [1] * 11
    assert passes["sam-one-epoch"] == ([2, 1, 1, 1] * 3)


def test_build_passes_the_settings_the_class_takes_and_the_run_supplies():
    aesam = go.get_method("ae-sam")
    opt = aesam.build(params(), {"c1": -2.0}, base="sgd", run=go.RunInfo(steps_per_epoch=7, epochs=3), lr=0.1)
    assert isinstance(opt.base_optimizer, torch.optim.SGD) and opt.param_groups[0]["lr"] == 0.1
    assert (opt.config.c1, opt.config.total_steps) == (-2.0, 21)
    given = aesam.build(params(), {"total_steps": 5}, run=go.RunInfo(7, 3))
    assert given.config.total_steps == 5  # the run fills only what is not set
    graphsam = go.get_method("graphsam").build(params(), {"anchor_every_epochs": 4, "beta": 0.5})
    assert graphsam.beta == 0.5  # anchor_every_epochs is the epoch hook's, not the constructor's
    plain = go.get_method("adam").build(params(), None, base="adamw", lr=0.2)
    assert type(plain) is torch.optim.AdamW
    schedule = go.get_method("sam").build_rho_schedule(graphsam, go.StepRhoConfig(gamma=0.25))
    assert schedule.config.gamma == 0.25
    assert go.get_method("graphsam-released").build_rho_schedule(graphsam, None) is None


def test_settings_errors_name_the_flags():
    with pytest.raises(ConfigError, match=r"--rho-step must be an integer >= 1"):
        go.get_method("graphsam-released").make_settings({"step_size": 0})
    with pytest.raises(ConfigError, match=r"--rst-seed does not apply"):
        go.get_method("sam").split_flags({"--rst-seed": 3})
    with pytest.raises(ConfigError, match="must be a mapping"):
        go.get_method("sam").make_settings(0.1)
    settings, schedule = go.get_method("graphsam").split_flags({"--anchor-every": 2, "--gamma": 0.9, "--k": None})
    assert settings == {"anchor_every_epochs": 2} and schedule == {"gamma": 0.9}  # the deprecated spelling too


@dataclass(frozen=True)
class ToySettings:
    rho: float = 0.05


class ToySAM(go.SAM):
    """SAM under another name (for registration tests)."""


@pytest.mark.parametrize("changes,message", [
    ({"name": "Bad Name"}, "lower-case"),
    ({"settings": dict}, "settings must be a dataclass type"),
    ({"anchor": "sometimes"}, "anchor must be one of none, epochs, once"),
    ({"optimizer": torch.optim.Adam}, "must subclass gradscope.optim.SharpnessAware"),
    ({"epoch_step": True}, "needs an optimizer with epoch_step"),
    ({"help": {"beta": "x"}}, r"help names unknown settings \['beta'\]"),
])
def test_a_bad_declaration_is_refused(changes, message):
    kw = dict(name="toy", display_name="Toy", summary="a toy", settings=ToySettings, optimizer=ToySAM)
    with pytest.raises(ConfigError, match=message):
        go.Method(**{**kw, **changes})


def test_a_name_is_registered_once():
    method = go.Method(name="sam", display_name="Other SAM", summary="x", settings=ToySettings, optimizer=ToySAM)
    with pytest.raises(ConfigError, match="optimizer 'sam' is already registered"):
        go.register(method)
    assert go.register(go.get_method("sam")) is go.get_method("sam")  # the same declaration again is fine


class FakeEntryPoint:
    def __init__(self, name: str, obj=None, error: Exception | None = None) -> None:
        self.name, self.value, self._obj, self._error = name, f"fake_pkg:{name}", obj, error

    def load(self):
        if self._error is not None:
            raise self._error
        return self._obj


@pytest.fixture
def plugins(monkeypatch):
    """Entry points of the group gradscope.optimizers, as installed packages would declare them."""
    installed: list[FakeEntryPoint] = []
    asked: list[str] = []

    def entry_points(*, group: str):
        asked.append(group)
        return list(installed) if group == go.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry.importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entry_points_read", False)
    before = dict(registry._METHODS)
    yield installed, asked
    registry._METHODS.clear()
    registry._METHODS.update(before)


def test_third_party_methods_join_by_entry_points(plugins):
    installed, asked = plugins
    method = go.Method(name="toy-plugin-sam", display_name="Plugin SAM", summary="x", settings=ToySettings,
                       optimizer=ToySAM, rho_schedule=True)
    module = types.ModuleType("fake_pkg")  # a module whose import registered its method
    installed += [FakeEntryPoint("toy-plugin-sam", method), FakeEntryPoint("fake_pkg", module),
                  FakeEntryPoint("toy-plugin-list", lambda: [go.Method(name="toy-plugin-two", display_name="Two",
                                                                      summary="y", settings=ToySettings,
                                                                      optimizer=ToySAM)])]
    assert go.get_method("sam").name == "sam" and asked == []  # built-ins never read the entry points
    assert go.get_method("toy-plugin-sam") is method and asked == [go.ENTRY_POINT_GROUP]
    assert {"toy-plugin-sam", "toy-plugin-two"} <= set(go.method_names()) and asked == [go.ENTRY_POINT_GROUP]
    assert go.OPTIMIZERS["toy-plugin-sam"] is ToySAM and go.display_name("toy-plugin-two") == "Two"
    opt = go.make_optimizer("toy-plugin-sam", params(), rho=0.1, lr=0.01)
    assert isinstance(opt, ToySAM) and opt.rho == 0.1


def test_a_broken_or_clashing_plugin_is_skipped_with_a_warning(plugins):
    installed, _ = plugins
    clash = go.Method(name="graphsam", display_name="Fake", summary="x", settings=ToySettings, optimizer=ToySAM)
    installed += [FakeEntryPoint("broken", error=ImportError("no module named 'fake_dep'")),
                  FakeEntryPoint("clash", clash), FakeEntryPoint("junk", 42)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = go.method_names()
    text = " ".join(str(w.message) for w in caught)
    assert "plugin 'broken'" in text and "fake_dep" in text
    assert "plugin 'clash': the name 'graphsam' is taken" in text and "plugin 'junk'" in text
    assert go.get_method("graphsam").optimizer is go.GraphSAM and "broken" not in names
