"""chemprop v2: train an MPNN with a gradscope optimizer, record it, and draw its loss landscape.

Three lines (with the MPNN pieces of your usual chemprop script)::

    from gradscope.integrations.chemprop import SharpnessAwareMPNN
    from gradscope.integrations.lightning import GradscopeCallback
    mpnn = SharpnessAwareMPNN(mp, agg, ffn, optimizer="graphsam", rho=0.05)   # instead of models.MPNN
    L.Trainer(max_epochs=30, callbacks=[GradscopeCallback("trace.h5", **MPNN_TRACE)]).fit(mpnn, train, val)

:class:`SharpnessAwareMPNN` is chemprop's ``MPNN`` with a gradscope optimizer (any name of
:data:`gradscope.optim.OPTIMIZERS`, ``"adam"`` for the plain baseline) under chemprop's own
Noam learning-rate schedule, trained through :class:`SharpnessAwareMixin` (one closure per
step; ``train_loss`` logged at θ_t). :func:`sharpness_aware_mpnn` converts an existing ``MPNN``.

An MPNN has no attention, so attention entropy does not apply: :data:`MPNN_TRACE` makes the
callback store that in the trace (``config["not_recorded"]``) and drop the empty
``epochs/attention_entropy`` column instead of leaving NaN in it.

Landscapes: ``gradscope landscape`` reads gradscope's own run directories; a chemprop model goes
through the same library functions with :func:`compute_mpnn_landscape` (its forward and loss as
``gradscope.landscape`` expects them). The command line equivalent of ``gradscope record`` and
``gradscope landscape`` is ``python -m gradscope.integrations.chemprop train|landscape``
(:mod:`gradscope.integrations.chemprop_cli`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from chemprop import data as cdata
from chemprop import models as cmodels
from chemprop import nn as cnn
from chemprop.schedulers import build_NoamLike_LRSched

from gradscope.errors import GradscopeError
from gradscope.integrations.lightning_closure import SharpnessAwareMixin
from gradscope.optim import OPTIMIZERS, make_optimizer

#: Arguments of ``GradscopeCallback`` for an MPNN: entropy is stated as not applicable.
MPNN_TRACE: dict[str, Any] = {
    "not_recorded": {"attention_entropy": "not applicable: a chemprop MPNN has no attention (bond message passing)"},
}
#: Constructor arguments SharpnessAwareMPNN adds to chemprop's MPNN (left out of saved models).
EXTRA_HPARAMS = ("optimizer", "rho", "base_optimizer", "optimizer_kwargs")


class SharpnessAwareMPNN(SharpnessAwareMixin, cmodels.MPNN):
    """chemprop's ``MPNN`` trained with a gradscope optimizer (see the module docstring).

    Args:
        *args, **kwargs: chemprop ``MPNN`` arguments (``message_passing``, ``agg``, ``predictor``,
            ``batch_norm``, ``metrics``, ``warmup_epochs``, ``init_lr``, ``max_lr``, ``final_lr``, ...).
        optimizer: a gradscope method name (``"graphsam"``, ``"sam"``, ...) or ``"adam"``.
        rho: the initial ρ (None: the method's default).
        base_optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        optimizer_kwargs: further method arguments (``beta``, ``k``, ...).
    """

    def __init__(self, *args: Any, optimizer: str = "graphsam", rho: float | None = None,
                 base_optimizer: str = "adam", optimizer_kwargs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if optimizer != "adam" and optimizer not in OPTIMIZERS:
            raise GradscopeError(f"unknown optimizer {optimizer!r}; choose adam or one of {', '.join(OPTIMIZERS)}")
        self.optimizer_name = optimizer
        self.optimizer_rho = rho
        self.base_optimizer_name = base_optimizer
        self.optimizer_kwargs = dict(optimizer_kwargs or {})

    def build_optimizer(self) -> torch.optim.Optimizer:
        """The optimizer at chemprop's ``init_lr`` (the Noam schedule then moves the lr)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_name == "adam":
            return torch.optim.Adam(params, lr=self.init_lr)
        kwargs = dict(self.optimizer_kwargs)
        if self.optimizer_rho is not None:
            kwargs["rho"] = self.optimizer_rho
        return make_optimizer(self.optimizer_name, params, self.base_optimizer_name, lr=self.init_lr, **kwargs)

    def configure_optimizers(self) -> dict[str, Any]:
        """The gradscope optimizer under chemprop's Noam-like schedule (warm-up, then decay), per step."""
        optimizer = self.build_optimizer()
        trainer = self.trainer
        if trainer.train_dataloader is None:
            trainer.estimated_stepping_batches  # loads the train loader so that its length is known
        steps = trainer.num_training_batches
        warmup = self.warmup_epochs * steps
        cooldown = (max(trainer.max_epochs, self.warmup_epochs) - self.warmup_epochs) * steps
        schedule = build_NoamLike_LRSched(optimizer, warmup, cooldown, self.init_lr, self.max_lr, self.final_lr)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def compute_loss(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """chemprop's training loss of a batch (as ``MPNN.training_step`` computes it, without logging)."""
        bmg, V_d, X_d, targets, weights, lt_mask, gt_mask = batch
        mask = targets.isfinite()
        preds = self.predictor.train_step(self.fingerprint(bmg, V_d, X_d))
        return self.criterion(preds, targets.nan_to_num(nan=0.0), mask, weights, lt_mask, gt_mask)

    def sharpness_aware_batch_size(self, batch: Any) -> int:
        return self.get_batch_size(batch)


def sharpness_aware_mpnn(model: cmodels.MPNN, optimizer: str = "graphsam", rho: float | None = None,
                         **kwargs: Any) -> SharpnessAwareMPNN:
    """A :class:`SharpnessAwareMPNN` sharing ``model``'s modules and weights (``kwargs``: see the class)."""
    h = model.hparams
    out = SharpnessAwareMPNN(
        model.message_passing, model.agg, model.predictor, batch_norm=isinstance(model.bn, torch.nn.BatchNorm1d),
        metrics=list(model.metrics[:-1]), warmup_epochs=model.warmup_epochs, init_lr=model.init_lr,
        max_lr=model.max_lr, final_lr=model.final_lr, X_d_transform=h.get("X_d_transform"),
        optimizer=optimizer, rho=rho, **kwargs)
    out.load_state_dict(model.state_dict())
    return out


def save_mpnn(path: str | os.PathLike[str], model: cmodels.MPNN) -> Path:
    """Save ``model`` as chemprop's ``save_model`` does, loadable by plain ``chemprop`` (``models.load_model``)."""
    hparams = {k: v for k, v in dict(model.hparams).items() if k not in EXTRA_HPARAMS}
    path = Path(path)
    torch.save({"hyper_parameters": hparams, "state_dict": model.state_dict()}, path)
    return path


def load_mpnn(path: str | os.PathLike[str]) -> cmodels.MPNN:
    """A model saved by :func:`save_mpnn` or chemprop (``model.pt``), in eval mode on the CPU."""
    if not Path(path).is_file():
        raise GradscopeError(f"no chemprop model at {path}")
    model = cmodels.MPNN.load_from_file(path, map_location="cpu")
    return model.eval()


# ----------------------------------------------------------------------------- data
def read_csv(path: str | os.PathLike[str], smiles_column: str, target_columns: Sequence[str]
             ) -> tuple[list[cdata.MoleculeDatapoint], list[str]]:
    """Datapoints of a CSV; rows whose SMILES RDKit cannot parse are skipped and returned as messages."""
    import csv

    from rdkit import Chem

    points, skipped = [], []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (smiles_column, *target_columns) if c not in (reader.fieldnames or ())]
        if missing:
            raise GradscopeError(f"{path} has no column {missing[0]!r}; columns: {', '.join(reader.fieldnames or ())}")
        for line, row in enumerate(reader, start=2):
            smiles = row[smiles_column].strip()
            if Chem.MolFromSmiles(smiles) is None:
                skipped.append(f"line {line}: unparseable SMILES {smiles!r}")
                continue
            y = [float(row[c]) if row[c].strip() else float("nan") for c in target_columns]
            points.append(cdata.MoleculeDatapoint.from_smi(smiles, y))
    if not points:
        raise GradscopeError(f"{path}: no molecule could be read")
    return points, skipped


def mpnn_loss_inputs(outputs: torch.Tensor, batch: Any) -> tuple:
    """``(preds, targets, mask, weights, lt_mask, gt_mask)`` for chemprop's criterion."""
    _, _, _, targets, weights, lt_mask, gt_mask = batch
    return outputs, targets.nan_to_num(nan=0.0), targets.isfinite(), weights, lt_mask, gt_mask


def mpnn_forward(model: cmodels.MPNN, batch: Any) -> torch.Tensor:
    """The training-scale prediction of a batch (``predictor.train_step``: targets as trained on)."""
    bmg, V_d, X_d, *_ = batch
    return model.predictor.train_step(model.fingerprint(bmg, V_d, X_d))


def mpnn_loss(model: cmodels.MPNN, outputs: torch.Tensor, batch: Any) -> torch.Tensor:
    """chemprop's criterion of one batch, from a fresh copy of the metric (no state is touched)."""
    metric = model.criterion.clone()
    metric.reset()
    metric.update(*mpnn_loss_inputs(outputs, batch))
    return metric.compute()


def compute_mpnn_landscape(model: cmodels.MPNN, loader: Any, settings: Any = None, **kwargs: Any) -> Any:
    """``gradscope.landscape.compute_landscape`` for a chemprop model over a dataloader's batches.

    Each batch counts by its number of labels, so the centre of the landscape is the model's
    loss over the whole set exactly (chemprop's criterion averages over labels).
    ``kwargs`` go to ``compute_landscape`` (``out_path``, ``directions``, ``progress``, ...).
    """
    from gradscope.landscape import compute_landscape

    batches = list(loader)
    weights = [float(batch[3].isfinite().sum()) for batch in batches]
    return compute_landscape(model, batches, lambda out, b: mpnn_loss(model, out, b), settings,
                             forward=mpnn_forward, batch_weights=weights, **kwargs)


def default_mpnn(n_tasks: int = 1, *, hidden: int = 300, depth: int = 3, scaler: Any = None,
                 **kwargs: Any) -> SharpnessAwareMPNN:
    """chemprop's default regression MPNN (bond messages, mean aggregation) with a gradscope optimizer."""
    mp = cnn.BondMessagePassing(d_h=hidden, depth=depth)
    transform = cnn.UnscaleTransform.from_standard_scaler(scaler) if scaler is not None else None
    ffn = cnn.RegressionFFN(n_tasks=n_tasks, input_dim=mp.output_dim, hidden_dim=hidden, output_transform=transform)
    return SharpnessAwareMPNN(mp, cnn.MeanAggregation(), ffn, **kwargs)


if __name__ == "__main__":  # python -m gradscope.integrations.chemprop ...
    from gradscope.integrations.chemprop_cli import main

    raise SystemExit(main())
