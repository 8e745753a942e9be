"""The compt-paper recipe table and its learning-rate schedules against the released formulas."""
from __future__ import annotations

import math

import pytest

from gradscope.errors import ConfigError
from gradscope.models import CoMPTConfig, RECIPES, recipe, recipe_names
from gradscope.models.recipes import WarmupExpDecay


def test_table_values_as_released():
    assert recipe_names() == ("compt-paper",)
    expected = {  # dataset: (layers, heads, generator layers, kernel, scale_norm, warm-up factor, loss)
        "bbbp": (4, 4, 2, "exp", False, 0.2, "bce"), "tox21": (8, 4, 4, "exp", False, 0.1, "bce"),
        "sider": (4, 4, 2, "softmax", True, 0.2, "bce"), "clintox": (4, 4, 2, "exp", False, 0.15, "bce"),
        "bace": (4, 8, 2, "exp", False, 0.1, "bce"), "esol": (3, 4, 2, "softmax", True, 0.1, "rmse"),
        "freesolv": (3, 4, 2, "softmax", True, 0.15, "rmse"), "lipophilicity": (3, 8, 2, "exp", False, 0.15, "rmse"),
        "qm7": (6, 4, 2, "exp", True, 0.1, "mae"),
    }
    assert set(RECIPES["compt-paper"]) == set(expected)
    for name, row in expected.items():
        r = recipe("compt-paper", name)
        assert (r.n_layers, r.n_heads, r.n_generator_layers, r.distance_kernel, r.scale_norm, r.warmup_factor,
                r.loss) == row, name
        assert (r.d_model, r.n_dense, r.dropout, r.batch_size, r.epochs, r.warmup_epochs, r.weight_decay) == (
            256, 1, 0.0, 32, 150, 30, 0.0)
        assert r.task == ("classification" if r.loss == "bce" else "regression")
        CoMPTConfig(atom_dim=115, bond_dim=13, **r.model_overrides())  # a valid model
    assert recipe("compt-paper", "BBBP").released_name == "bbbp" and recipe("compt-paper", "bace").released_name == "bace_c"
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe("grover-paper", "bbbp")
    with pytest.raises(ConfigError, match="no settings for dataset 'qm8'"):
        recipe("compt-paper", "qm8")


def test_noam_peak_lr_reproduces_the_released_scheduled_optim():
    r = recipe("compt-paper", "bbbp")
    steps = r.steps_per_epoch(1627)  # BBBP's released training set: 2035 − 204 − 204 molecules
    assert steps == 50 and r.warmup_steps(steps) == 1500
    w, peak = r.warmup_steps(steps), r.peak_lr(steps)
    for s in (1, 7, 1499, 1500, 1501, 7500):  # released: factor · d^−½ · min(s^−½, s·w^−1.5), s from 1
        released = r.warmup_factor * r.d_model ** -0.5 * min(s ** -0.5, s * w ** -1.5)
        assert peak * min(s / w, math.sqrt(w / s)) == pytest.approx(released, rel=1e-12)
    assert peak == pytest.approx(0.2 / math.sqrt(256 * 1500))


def test_sam_schedule_matches_a_step_by_step_transcription():
    sched, spe = WarmupExpDecay(), 50
    warmup, total = int(2.0 * spe), 30 * spe
    inc = (1e-3 - 1e-4) / warmup
    gamma = (1e-4 / 1e-3) ** (1 / (total - warmup))
    current, lr = 0, 1e-4
    for step in range(1, total + 20):
        current += 1
        if current <= warmup:
            lr = 1e-4 + current * inc
        elif current <= total:
            lr = 1e-3 * gamma ** (current - warmup)
        else:
            lr = 1e-4
        assert sched.lr(step, spe) == pytest.approx(lr, rel=1e-12)
    assert sched.lr(warmup, spe) == pytest.approx(1e-3) and sched.lr(total, spe) == pytest.approx(1e-4)
