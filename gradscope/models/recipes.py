"""Training recipes: the released per-dataset settings of CoMPT, as the GraphSAM paper ran them.

``recipe("compt-paper", "bbbp")`` → a frozen :class:`Recipe`. Where each value comes from (files of
jcchan23/CoMPT at its last commit; the GraphSAM authors' copy YL-wang/GraphSAM, branch
``graphsam``, folder ``CoMPT-main/``, has the same ``get_options`` and model):

* model: ``utils.py`` ``get_options(dataset)`` → ``model_params`` (``d_model``, ``N``, ``h``,
  ``N_dense``, ``n_generator_layers``, ``distance_matrix_kernel``, ``scale_norm``, ``dropout``;
  ``d_atom=115``, ``d_edge=13``, ``aggregation_type='gru'`` and ``dense_output_nonlinearity='mish'``
  everywhere); ``max_length`` (our ``max_atoms``) is set in ``train_graph.py`` to the dataset's
  largest molecule;
* training: ``get_options`` → ``train_params`` (``total_epochs``, ``batch_size``, ``warmup_factor``,
  ``total_warmup_epochs``, ``loss_function``, ``metric``, ``task``);
* Adam runs: ``train_graph.py`` ``model_train`` — ``ScheduledOptim(Adam(lr=0), warmup_factor,
  d_model, total_warmup_steps)`` of ``utils.py``: per step ``s = 1, 2, …``
  ``lr = factor·d_model^−½·min(s^−½, s·w^−1.5)`` with ``w = int(n_train/batch_size)·warmup_epochs``;
  Adam's defaults otherwise (β = (0.9, 0.999), ε = 1e-8), no weight decay;
* SAM-family runs of the GraphSAM copy (``--sam 1|2``): ``CoMPT-main/train_graph.py`` builds the base
  Adam with ``lr=--init_lr`` and ``weight_decay=--weight_decay`` (0) and steps
  ``scheduler.py`` ``NoamLR`` once per step: linear from ``init_lr=1e-4`` to ``max_lr=1e-3`` over
  ``warmup_epochs=2`` epochs, exponential decay to ``final_lr=1e-4`` at ``--epochs 30``, constant
  after (:class:`WarmupExpDecay`; the values are the argparse defaults, which the README command
  keeps) — the Adam and the SAM rows of the paper's tables train under different schedules;
* selection: ``train_graph.py`` keeps the epoch with the best validation metric and tests that
  checkpoint; it stops at the end of 0-based epoch ``e`` when ``e − best_epoch ≥ 20`` with
  ``best_epoch`` 1-based, i.e. after 21 epochs without improvement (``patience=21`` here); loaders use
  ``drop_last=True`` for training, validation (shuffled) *and* test, so up to 31 validation and test
  molecules are left out of the metric;
* losses (``utils.py`` ``get_loss``/``cal_loss``): ``bce`` masked mean over present labels;
  ``rmse`` = √MSE of standardized targets; ``mae``;
* split and seed: ``--split random`` makes ``train_test_split(test_size=0.1, random_state=seed)``
  then a validation set of the test set's size with the same seed, for *each* of the ``--fold 5``
  repeats (the five splits are the same; repeats differ in initialisation and batch order);
  ``--seed`` defaults to a random integer in CoMPT and is 777 in the GraphSAM README command.

================  =======  ========  =======  =======  =====  =======  ==========  ======  ====  ======
dataset           d_model  n_layers  n_heads  n_dense  n_gen  kernel   scale_norm  factor  loss  metric
================  =======  ========  =======  =======  =====  =======  ==========  ======  ====  ======
bbbp              256      4         4        1        2      exp      False       0.2     bce   auc
tox21             256      8         4        1        4      exp      False       0.1     bce   auc
sider             256      4         4        1        2      softmax  True        0.2     bce   auc
clintox           256      4         4        1        2      exp      False       0.15    bce   auc
bace (bace_c)     256      4         8        1        2      exp      False       0.1     bce   auc
esol              256      3         4        1        2      softmax  True        0.1     rmse  rmse
freesolv          256      3         4        1        2      softmax  True        0.15    rmse  rmse
lipophilicity     256      3         8        1        2      exp      False       0.15    rmse  rmse
qm7               256      6         4        1        2      exp      True        0.1     mae   mae
================  =======  ========  =======  =======  =====  =======  ==========  ======  ====  ======

All: dropout 0.0, batch 32, 150 epochs (early stopping), Noam warm-up 30 epochs, no weight decay.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from gradscope.errors import ConfigError


@dataclass(frozen=True)
class WarmupExpDecay:
    """chemprop's ``NoamLR`` as the GraphSAM copy uses it for SAM-family runs (module docstring).

    ``lr(s)`` for optimizer step ``s = 1, 2, …``: linear from ``init_lr`` to ``max_lr`` over
    ``int(warmup_epochs·steps_per_epoch)`` steps, then ``max_lr·γ^(s − warmup)`` with
    ``γ = (final_lr/max_lr)^(1/(total − warmup))`` up to ``total = total_epochs·steps_per_epoch``
    steps, ``final_lr`` after.
    """

    warmup_epochs: float = 2.0
    total_epochs: int = 30
    init_lr: float = 1e-4
    max_lr: float = 1e-3
    final_lr: float = 1e-4

    def lr(self, step: int, steps_per_epoch: int) -> float:
        """Learning rate of optimizer step ``step`` (1-based; step 0 is the value before the first)."""
        warmup = int(self.warmup_epochs * steps_per_epoch)
        total = self.total_epochs * steps_per_epoch
        if step <= warmup:
            return self.init_lr + step * (self.max_lr - self.init_lr) / warmup
        if step <= total:
            gamma = (self.final_lr / self.max_lr) ** (1.0 / (total - warmup))
            return self.max_lr * gamma ** (step - warmup)
        return self.final_lr


@dataclass(frozen=True)
class Recipe:
    """One dataset's released CoMPT settings (see the module docstring for every source).

    Model fields are :class:`~gradscope.models.CoMPTConfig` fields (:meth:`model_overrides`);
    the rest describe training. ``peak_lr`` and the 1-based step formula of the module docstring
    give the Noam schedule: ``lr(s) = peak_lr·min(s/w, √(w/s))``.
    """

    name: str
    dataset: str
    d_model: int
    n_layers: int
    n_heads: int
    n_dense: int
    n_generator_layers: int
    distance_kernel: str
    scale_norm: bool
    task: str
    loss: str
    metric: str
    warmup_factor: float
    dropout: float = 0.0
    batch_size: int = 32
    epochs: int = 150
    warmup_epochs: int = 30
    patience: int = 21
    weight_decay: float = 0.0
    optimizer: str = "adam"
    lr_schedule: str = "noam"
    sam_schedule: WarmupExpDecay = field(default_factory=WarmupExpDecay)
    drop_last: bool = True
    repeats: int = 5
    seed: int = 777
    released_name: str = ""

    MODEL_FIELDS: ClassVar[tuple[str, ...]] = (
        "d_model", "n_layers", "n_heads", "n_dense", "n_generator_layers", "distance_kernel", "scale_norm", "dropout")

    def model_overrides(self) -> dict[str, Any]:
        """The :class:`~gradscope.models.CoMPTConfig` fields this recipe sets."""
        return {k: getattr(self, k) for k in self.MODEL_FIELDS}

    def steps_per_epoch(self, n_train: int) -> int:
        """Optimizer steps per epoch as released: ``int(n_train / batch_size)`` (last batch dropped)."""
        return n_train // self.batch_size

    def warmup_steps(self, steps_per_epoch: int) -> int:
        return steps_per_epoch * self.warmup_epochs

    def peak_lr(self, steps_per_epoch: int) -> float:
        """The Noam schedule's largest learning rate, reached at the last warm-up step:
        ``factor / √(d_model · warmup_steps)``."""
        return self.warmup_factor / math.sqrt(self.d_model * max(1, self.warmup_steps(steps_per_epoch)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(dataset: str, released: str, n_layers: int, n_heads: int, n_gen: int, kernel: str, scale_norm: bool,
         factor: float, loss: str, metric: str) -> Recipe:
    task = "classification" if loss == "bce" else "regression"
    return Recipe(name="compt-paper", dataset=dataset, released_name=released, d_model=256, n_layers=n_layers,
                  n_heads=n_heads, n_dense=1, n_generator_layers=n_gen, distance_kernel=kernel,
                  scale_norm=scale_norm, task=task, loss=loss, metric=metric, warmup_factor=factor)


#: recipe name → dataset name → Recipe (gradscope's dataset names; ``released_name`` is get_options')
RECIPES: dict[str, dict[str, Recipe]] = {
    "compt-paper": {r.dataset: r for r in (
        _row("bbbp", "bbbp", 4, 4, 2, "exp", False, 0.2, "bce", "auc"),
        _row("tox21", "tox21", 8, 4, 4, "exp", False, 0.1, "bce", "auc"),
        _row("sider", "sider", 4, 4, 2, "softmax", True, 0.2, "bce", "auc"),
        _row("clintox", "clintox", 4, 4, 2, "exp", False, 0.15, "bce", "auc"),
        _row("bace", "bace_c", 4, 8, 2, "exp", False, 0.1, "bce", "auc"),
        _row("esol", "esol", 3, 4, 2, "softmax", True, 0.1, "rmse", "rmse"),
        _row("freesolv", "freesolv", 3, 4, 2, "softmax", True, 0.15, "rmse", "rmse"),
        _row("lipophilicity", "lipophilicity", 3, 8, 2, "exp", False, 0.15, "rmse", "rmse"),
        _row("qm7", "qm7", 6, 4, 2, "exp", True, 0.1, "mae", "mae"),
    )},
}

#: the dataset whose released model is CoMPT's default size (the GraphSAM paper's headline dataset)
DEFAULT_DATASET = "bbbp"


def recipe_names() -> tuple[str, ...]:
    return tuple(RECIPES)


def recipe(name: str, dataset: str) -> Recipe:
    """The recipe ``name`` for ``dataset`` (a gradscope dataset name); ConfigError if there is none."""
    try:
        table = RECIPES[name]
    except KeyError:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None
    try:
        return table[str(dataset).lower()]
    except KeyError:
        raise ConfigError(f"recipe {name!r} has no settings for dataset {dataset!r}; "
                          f"it covers {', '.join(table)}") from None
