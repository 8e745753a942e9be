"""``gradscope record --recipe NAME``: a released training recipe turned into record settings.

A recipe (:mod:`gradscope.models.recipes`, e.g. ``compt-paper``: the released CoMPT settings per
dataset, as the GraphSAM paper ran them) fixes the model, the epochs, the batch size, the Noam
warm-up, early stopping, weight decay and the Noam schedule's peak learning rate. The settings the
user gives explicitly win; the others come from the recipe.

Two things differ from the released code by design (docs/models.md): gradscope keeps an epoch's
last partial batch (the released loaders drop it), so an epoch has ``ceil(n_train/32)`` steps where
the released one has ``floor(n_train/32)`` and the warm-up is longer by that ratio; and every
optimizer trains under the recipe's (Adam) Noam schedule — the GraphSAM authors' copy trains its
SAM-family rows under another schedule (:attr:`Recipe.sam_schedule`), which gradscope does not
offer yet, so that a comparison of optimizers here changes only the optimizer.
"""
from __future__ import annotations

from typing import Any

from gradscope.errors import GradscopeError
from gradscope.models.recipes import Recipe, recipe


def recipe_values(values: dict[str, Any], *, progress: bool = False) -> dict[str, Any]:
    """``values`` (RecordConfig fields the user gave, ``recipe`` among them) completed by the recipe.

    The peak learning rate depends on the training split's size, so the dataset is loaded (and its
    split drawn) once here; the features are cached, so the run's own load costs nothing more.
    """
    name = values.get("recipe")
    if not name:
        return values
    dataset = values.get("dataset")
    if not dataset:
        raise GradscopeError(f"--recipe {name} is per dataset: name it with --dataset NAME (and --data FILE for a "
                             "local copy)")
    r = recipe(name, dataset)
    out = dict(values)
    for key, value in _settings(r).items():
        out.setdefault(key, value)
    if "lr" not in values:
        out["lr"] = r.peak_lr(r.steps_per_epoch(_n_train(out, progress)))
    return out


def _settings(r: Recipe) -> dict[str, Any]:
    """The RecordConfig fields a recipe sets, except the learning rate."""
    return {"model": "compt", "epochs": r.epochs, "batch_size": r.batch_size, "lr_schedule": r.lr_schedule,
            "warmup_epochs": float(r.warmup_epochs), "early_stopping": r.patience, "weight_decay": r.weight_decay}


def _n_train(values: dict[str, Any], progress: bool) -> int:
    """Molecules in the training split the run will use."""
    from gradscope.train.build import build_data
    from gradscope.train.config import RecordConfig

    data = build_data(RecordConfig(**values), progress=progress)
    return len(data.split["train"])
