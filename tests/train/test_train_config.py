"""RecordConfig validates itself, round-trips through JSON, reads older configs, and rejects
settings of other optimizers."""
from __future__ import annotations

import json

import pytest

from gradscope.errors import ConfigError
from gradscope.optim import ASAMConfig, GraphSAMReleasedConfig, GraphSAMSettings, SAMConfig, StepRhoConfig
from gradscope.optim.registry import get_method, method_names
from gradscope.train.config import RecordConfig, recorder_settings

ALL = set(method_names())
# Which optimizer uses which flag, written out independently of the registry.
USES = {
    "--rho": ALL - {"adam"},
    "--gamma": ALL - {"adam"},
    "--rho-step": ALL - {"adam"},
    "--beta": {"graphsam", "graphsam-released"},
    "--anchor-every-epochs": {"graphsam", "sam-one-epoch"},
    "--k": {"sam-k", "looksam"},
    "--eta": {"asam"},
    "--scale-biases": {"asam"},
    "--alpha": {"looksam"},
    "--normalization": {"looksam"},
    "--delta": {"ae-sam"},
    "--c1": {"ae-sam"},
    "--c2": {"ae-sam"},
    "--p": {"rst"},
    "--rst-seed": {"rst"},
    "--radius": {"graphsam-released"},
    "--scale-grad-by-loss": {"graphsam-released"},
}
VALUES = {"--rho": 0.1, "--gamma": 0.7, "--rho-step": 2, "--beta": 0.9, "--anchor-every-epochs": 2, "--k": 4,
          "--eta": 0.2, "--alpha": 0.3, "--delta": 0.5, "--c1": -2.0, "--c2": 2.0, "--p": 0.25, "--rst-seed": 7,
          "--radius": 0.3, "--scale-grad-by-loss": False, "--scale-biases": True, "--normalization": "per-tensor"}


def test_every_method_flag_is_known_to_this_test():
    assert {o.flag for m in method_names() for o in get_method(m).options()} == set(USES)


def test_defaults_follow_the_graphsam_paper():
    c = RecordConfig()
    assert (c.optimizer, c.base_optimizer) == ("graphsam", "adam")
    assert c.optimizer_settings == GraphSAMSettings(rho=0.05, beta=0.99, anchor_every_epochs=1)
    assert c.rho_schedule == StepRhoConfig(step_size=1, gamma=0.5)
    assert c.split_sizes == (0.8, 0.1, 0.1) and c.data is None and c.dataset is None
    assert RecordConfig(optimizer="adam").rho_schedule is None  # no ρ to schedule
    assert RecordConfig(optimizer="graphsam-released").rho_schedule is None  # compounds ρ itself


def test_settings_are_given_as_mappings_or_dataclasses():
    assert RecordConfig(optimizer="SAM", optimizer_settings={"rho": 0.1}).optimizer_settings == SAMConfig(rho=0.1)
    assert RecordConfig(optimizer="sam", optimizer_settings=SAMConfig(0.2)).optimizer == "sam"
    with pytest.raises(ConfigError, match="takes SAMConfig settings, got ASAMConfig"):
        RecordConfig(optimizer="sam", optimizer_settings=ASAMConfig())


def test_json_round_trip_is_exact():
    c = RecordConfig(data="x.csv", targets=("a", "b"), optimizer="sam-k", optimizer_settings={"k": 3}, epochs=7,
                     split_sizes=(0.7, 0.2, 0.1), probe_exact_every=5, rho_schedule={"gamma": 0.25})
    stored = json.loads(c.to_json())
    assert stored["optimizer_settings"] == {"rho": 0.05, "k": 3}
    assert stored["rho_schedule"] == {"step_size": 1, "gamma": 0.25}
    again = RecordConfig.from_dict(stored)
    assert again == c and stored == c.to_dict()


def test_frozen():
    with pytest.raises(AttributeError):
        RecordConfig().lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("changes,fragment", [
    ({"optimizer": "sgd"}, "optimizer"), ({"base_optimizer": "lion"}, "base-optimizer"),
    ({"model": "huge"}, "model"), ({"precision": "fp8"}, "precision"), ({"split": "time"}, "split"),
    ({"task": "ranking"}, "task"), ({"device": "tpu"}, "device"), ({"lr": 0.0}, "--lr"),
    ({"lr": float("inf")}, "--lr"), ({"epochs": 0}, "--epochs"), ({"batch_size": -2}, "--batch-size"),
    ({"optimizer_settings": {"rho": -1.0}}, "--rho must be a finite number >= 0"),
    ({"optimizer_settings": {"rho": float("nan")}}, "--rho"),
    ({"optimizer_settings": {"beta": 1.0}}, "--beta=1 never updates ε"),
    ({"optimizer_settings": {"beta": -0.1}}, r"--beta must lie in [0, 1)"),
    ({"optimizer_settings": {"anchor_every_epochs": 0}}, "--anchor-every-epochs must be an integer >= 1"),
    ({"rho_schedule": {"gamma": 0.0}}, "--gamma must be > 0"),
    ({"rho_schedule": {"gamma": 1.5}}, r"--gamma must lie in (0, 1]"),
    ({"rho_schedule": {"step_size": 0}}, "--rho-step must be an integer >= 1"),
    ({"optimizer": "sam-k", "optimizer_settings": {"k": 0}}, "--k must be an integer >= 1"),
    ({"early_stopping": 0}, "--early-stopping"),
    ({"weight_decay": -1.0}, "--weight-decay"), ({"split_sizes": (0.5, 0.5, 0.5)}, "split sizes"),
    ({"split_sizes": (1.0, 0.0, 0.0)}, "split sizes"), ({"flush_every": 0}, "--flush-every must be a positive"),
    ({"save_vectors_every": 0}, "--save-vectors-every must be a positive"),
    ({"probe_exact_every": -1}, "--probe-exact-every must be a positive"),
    ({"optimizer": "adam", "probe_exact_every": 3}, "--probe-exact-every does not apply to optimizer 'adam'"),
    ({"optimizer": "adam", "rho_schedule": {"gamma": 0.5}}, "--gamma does not apply to optimizer 'adam'"),
    ({"optimizer": "graphsam-released", "rho_schedule": StepRhoConfig()}, "--rho-step does not apply"),
])
def test_invalid_values_raise_config_errors(changes, fragment):
    with pytest.raises(ConfigError) as info:
        RecordConfig(**changes)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_beta_range_is_each_methods_own():
    """β = 1 never updates GraphSAM's ε (that is SAM-One), but is a valid released-code β."""
    assert RecordConfig(optimizer="graphsam-released", optimizer_settings={"beta": 1.0}).optimizer_settings.beta == 1
    with pytest.raises(ConfigError, match="--beta"):
        RecordConfig(optimizer="graphsam", optimizer_settings={"beta": 1.0})


def test_unknown_keys_in_a_stored_config():
    with pytest.raises(ConfigError, match="unknown configuration keys: colour"):
        RecordConfig.from_dict({**RecordConfig().to_dict(), "colour": "blue"})


@pytest.mark.parametrize("optimizer", sorted(ALL))
@pytest.mark.parametrize("flag", sorted(USES))
def test_settings_apply_only_to_their_optimizers(optimizer, flag):
    method = get_method(optimizer)
    given = {f: None for f in USES}
    given[flag] = VALUES[flag]
    if optimizer in USES[flag]:
        settings, schedule = method.split_flags(given)
        config = RecordConfig(optimizer=optimizer, optimizer_settings=settings, rho_schedule=schedule or None)
        option = next(o for o in method.options() if o.flag == flag)
        holder = config.optimizer_settings if option.group == "optimizer_settings" else config.rho_schedule
        assert getattr(holder, option.field) == VALUES[flag]
    else:
        with pytest.raises(ConfigError, match=f"{flag} does not apply to optimizer '{optimizer}'"):
            method.split_flags(given)


def test_asam_rho_default_lives_in_its_settings():
    """ASAM's ρ multiplies |θ|: its default (0.5) is ASAMConfig's, everyone else 0.05."""
    assert RecordConfig(optimizer="asam").optimizer_settings.rho == 0.5 == ASAMConfig().rho
    assert RecordConfig(optimizer="sam").optimizer_settings.rho == 0.05
    again = RecordConfig.from_dict(RecordConfig(optimizer="asam").to_dict())
    assert again.optimizer_settings.rho == 0.5


# -- configurations written before the registry (flat keys), as that code wrote them ----------------------
def old_config(optimizer: str, **changes) -> dict:
    """The config.json of gradscope 0.1 (before the registry): every setting flat, ``extra`` empty."""
    return {"anchor_every": 1, "base_optimizer": "adam", "batch_size": 64, "beta": 0.99, "data": None,
            "dataset": None, "device": "auto", "early_stopping": None, "epochs": 2, "extra": {}, "flush_every": 64,
            "gamma": 0.5, "k": None, "layers": True, "lr": 0.001, "lr_schedule": "constant", "max_atoms": 100,
            "model": "tiny", "optimizer": optimizer, "precision": "fp32", "probe_exact_every": 3,
            "rho": 0.5 if optimizer == "asam" else 0.05, "rho_step": 1, "save_vectors_every": None, "seed": 3,
            "smiles_column": None, "split": "random", "split_sizes": [0.8, 0.1, 0.1], "targets": None, "task": None,
            "threads": 1, "warmup_epochs": 2.0, "weight_decay": 0.0, **changes}


def test_old_flat_configs_are_read_with_the_settings_that_applied():
    c = RecordConfig.from_dict(old_config("graphsam", beta=0.9, anchor_every=2, gamma=0.25, rho_step=3))
    assert c.optimizer_settings == GraphSAMSettings(rho=0.05, beta=0.9, anchor_every_epochs=2)
    assert c.rho_schedule == StepRhoConfig(step_size=3, gamma=0.25)
    released = RecordConfig.from_dict(old_config("graphsam-released", beta=0.5, gamma=0.8, rho_step=2))
    assert released.optimizer_settings == GraphSAMReleasedConfig(beta=0.5, gamma=0.8, step_size=2)
    assert RecordConfig.from_dict(old_config("sam-k", k=3)).optimizer_settings.k == 3
    assert RecordConfig.from_dict(old_config("looksam")).optimizer_settings.k == 5  # k: None meant the default
    assert RecordConfig.from_dict(old_config("asam")).optimizer_settings == ASAMConfig(rho=0.5)
    # settings that did not apply were stored anyway (and ignored by the run): ignored here too
    adam = RecordConfig.from_dict(old_config("adam", probe_exact_every=None, extra={"note": "never read"}))
    assert adam.optimizer == "adam" and adam.rho_schedule is None


def test_old_sam_one_was_the_per_epoch_variant():
    c = RecordConfig.from_dict(old_config("sam-one", anchor_every=3))
    assert c.optimizer == "sam-one-epoch" and c.optimizer_settings.anchor_every_epochs == 3
    assert RecordConfig.from_dict(RecordConfig(optimizer="sam-one").to_dict()).optimizer == "sam-one"


def test_a_config_with_both_layouts_is_refused():
    with pytest.raises(ConfigError, match="both the flat optimizer keys"):
        RecordConfig.from_dict({**RecordConfig().to_dict(), "rho": 0.1})


def test_recorder_settings_are_the_one_renaming_boundary():
    c = RecordConfig(optimizer="sam", layers=True, probe_exact_every=2, save_vectors_every=3, flush_every=5)
    assert recorder_settings(c) == {"flush_every": 5, "layers": True, "probe_exact_every": 2, "vectors_every": 3}
