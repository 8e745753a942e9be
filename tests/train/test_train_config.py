"""RecordConfig validates itself, round-trips through JSON, and rejects flags of other optimizers."""
from __future__ import annotations

import json

import pytest

from gradscope.errors import ConfigError
from gradscope.train.config import OPTIMIZERS, RecordConfig, resolve_optimizer_settings

# Which optimizer uses which setting, written out independently of APPLIES_TO.
USES = {
    "rho": set(OPTIMIZERS) - {"adam"},
    "gamma": set(OPTIMIZERS) - {"adam"},
    "rho_step": set(OPTIMIZERS) - {"adam"},
    "probe_exact_every": set(OPTIMIZERS) - {"adam"},
    "beta": {"graphsam", "graphsam-released"},
    "anchor_every": {"graphsam", "sam-one"},  # the released GraphSAM anchors every epoch, as released
    "k": {"sam-k", "looksam"},
}
VALUES = {"rho": 0.1, "gamma": 0.7, "rho_step": 2, "probe_exact_every": 3, "beta": 0.9, "anchor_every": 2, "k": 4}


def test_defaults_follow_the_graphsam_paper():
    c = RecordConfig()
    assert (c.optimizer, c.base_optimizer, c.rho, c.beta, c.gamma, c.rho_step) == ("graphsam", "adam", 0.05, 0.99, 0.5, 1)
    assert c.split_sizes == (0.8, 0.1, 0.1) and c.data is None and c.dataset is None


def test_json_round_trip_is_exact():
    c = RecordConfig(data="x.csv", targets=("a", "b"), optimizer="sam-k", k=3, epochs=7, split_sizes=(0.7, 0.2, 0.1),
                     probe_exact_every=5, extra={"note": "n"})
    again = RecordConfig.from_dict(json.loads(c.to_json()))
    assert again == c
    assert json.loads(c.to_json()) == c.to_dict()


def test_frozen():
    with pytest.raises(AttributeError):
        RecordConfig().lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("changes,fragment", [
    ({"optimizer": "sgd"}, "optimizer"), ({"base_optimizer": "lion"}, "base-optimizer"),
    ({"model": "huge"}, "model"), ({"precision": "fp16"}, "precision"), ({"split": "time"}, "split"),
    ({"task": "ranking"}, "task"), ({"device": "tpu"}, "device"), ({"lr": 0.0}, "--lr"),
    ({"lr": float("inf")}, "--lr"), ({"epochs": 0}, "--epochs"), ({"batch_size": -2}, "--batch-size"),
    ({"rho": -1.0}, "--rho"), ({"rho": float("nan")}, "--rho"), ({"beta": 1.0}, "--beta"), ({"beta": -0.1}, "--beta"),
    ({"gamma": 0.0}, "--gamma"), ({"gamma": 1.5}, "--gamma"), ({"k": 0}, "--k"), ({"early_stopping": 0}, "--early-stopping"),
    ({"weight_decay": -1.0}, "--weight-decay"), ({"split_sizes": (0.5, 0.5, 0.5)}, "split sizes"),
    ({"split_sizes": (1.0, 0.0, 0.0)}, "split sizes"), ({"flush_every": 0}, "--flush-every"),
])
def test_invalid_values_raise_config_errors(changes, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("-", r"\-")):
        RecordConfig(**changes)


def test_unknown_keys_in_a_stored_config():
    with pytest.raises(ConfigError, match="unknown configuration keys: colour"):
        RecordConfig.from_dict({**RecordConfig().to_dict(), "colour": "blue"})


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("setting", sorted(USES))
def test_settings_apply_only_to_their_optimizers(optimizer, setting):
    given = {name: None for name in USES}
    given[setting] = VALUES[setting]
    if optimizer in USES[setting]:
        resolved = resolve_optimizer_settings(optimizer, given)
        assert resolved[setting] == VALUES[setting]
        RecordConfig(optimizer=optimizer, **resolved)  # and the result is a valid config
    else:
        flag = "--" + setting.replace("_", "-")
        with pytest.raises(ConfigError, match=f"{flag} does not apply to optimizer '{optimizer}'"):
            resolve_optimizer_settings(optimizer, given)


def test_unset_settings_get_their_defaults():
    resolved = resolve_optimizer_settings("adam", {name: None for name in USES})
    assert resolved == {"rho": 0.05, "gamma": 0.5, "rho_step": 1, "beta": 0.99, "anchor_every": 1, "k": None,
                        "probe_exact_every": None}


def test_asam_defaults_to_its_own_rho_in_the_cli_and_the_config():
    """ASAM's ρ multiplies |θ|: its default is 0.5 (as gradscope.optim.ASAM), everyone else 0.05."""
    import inspect

    from gradscope.optim import ASAM

    assert resolve_optimizer_settings("asam", {name: None for name in USES})["rho"] == 0.5
    assert RecordConfig(optimizer="asam").rho == 0.5 == inspect.signature(ASAM).parameters["rho"].default
    assert RecordConfig(optimizer="sam").rho == 0.05 and RecordConfig(optimizer="asam", rho=0.1).rho == 0.1
    assert RecordConfig.from_dict(RecordConfig(optimizer="asam").to_dict()).rho == 0.5
