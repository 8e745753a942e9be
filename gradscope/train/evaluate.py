"""Evaluation of a model on a split: loss, task metric and attention entropy.

Attention entropy is the GraphSAM paper's measure (§5.3, Fig. 10): the mean over query atoms of
the entropy (natural log) of each attention row, padding masked, reported per layer and head
and as one overall mean.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from gradscope.chem.batch import GraphBatch
from gradscope.chem.standardize import Standardizer
from gradscope.metrics import get_metric
from gradscope.models import attention_entropy, capture_attention
from gradscope.train.objective import masked_loss, predictions


@dataclass
class Evaluation:
    """Results on one split. ``metric`` is on the original (un-standardized) scale."""

    loss: float
    metric: float
    n: int
    entropy: float = float("nan")
    entropy_layer_head: np.ndarray | None = None  # [n_layers, n_heads]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: Iterable[GraphBatch],
    *,
    task: str,
    metric: str,
    device: torch.device,
    standardizer: Standardizer | None = None,
    entropy: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> Evaluation:
    """Loss, metric and (optionally) attention entropy of ``model`` over ``batches``.

    The model is put in eval mode and its previous mode restored. Everything stays on the
    device until one copy at the end.
    """
    was_training = model.training
    model.eval()
    sums = _Sums(device)
    try:
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                out = sums.forward(model, batch, entropy)
            sums.add(out, batch, task)
    finally:
        model.train(was_training)
    return sums.result(task, metric, standardizer)


class _Sums:
    """Device-side sums over the batches of a split (one host copy, in ``result``)."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.count = torch.zeros((), device=device)
        self.ent_sum: torch.Tensor | None = None
        self.atoms = torch.zeros((), device=device)
        self.preds: list[torch.Tensor] = []
        self.ys: list[torch.Tensor] = []
        self.masks: list[torch.Tensor] = []

    def forward(self, model: torch.nn.Module, batch: GraphBatch, entropy: bool) -> torch.Tensor:
        """The model's output on ``batch``; with ``entropy`` also the batch's atom-weighted attention entropy."""
        if not entropy:
            return model(batch)
        with capture_attention(model) as cap:
            out = model(batch)
        n_atoms = batch.mask.sum()
        # attention_entropy is a mean over the batch's atoms: weight it back to a sum
        ent = attention_entropy(list(cap), batch.mask) * n_atoms
        self.ent_sum = ent if self.ent_sum is None else self.ent_sum + ent
        self.atoms = self.atoms + n_atoms
        return out

    def add(self, out: torch.Tensor, batch: GraphBatch, task: str) -> None:
        n_labels = batch.y_mask.sum()
        self.loss_sum = self.loss_sum + masked_loss(out, batch, task) * n_labels
        self.count = self.count + n_labels
        self.preds.append(predictions(out, task))
        self.ys.append(batch.y)
        self.masks.append(batch.y_mask)

    def result(self, task: str, metric: str, standardizer: Standardizer | None) -> Evaluation:
        if not self.preds:
            return Evaluation(float("nan"), float("nan"), 0)
        y_pred = torch.cat(self.preds).cpu().numpy()
        result = Evaluation(
            loss=float((self.loss_sum / self.count.clamp(min=1)).cpu()),
            metric=score(y_pred, torch.cat(self.ys).cpu().numpy(), torch.cat(self.masks).cpu().numpy(), task=task,
                         metric=metric, standardizer=standardizer),
            n=len(y_pred),
        )
        if self.ent_sum is not None:
            per = (self.ent_sum / self.atoms.clamp(min=1)).cpu().numpy()
            result.entropy = float(per.mean())
            result.entropy_layer_head = per
        return result


def score(y_pred: np.ndarray, y_true: np.ndarray, mask: np.ndarray, *, task: str, metric: str,
          standardizer: Standardizer | None = None) -> float:
    """The task metric of predictions (:func:`gradscope.train.objective.predictions`) on the
    original scale: regression predictions and targets are un-standardized first."""
    if standardizer is not None and task == "regression":
        y_pred = standardizer.inverse(y_pred)
        y_true = standardizer.inverse(y_true)
    return get_metric(metric)(y_true, y_pred, mask)
