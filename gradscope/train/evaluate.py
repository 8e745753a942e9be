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
    loss_sum = torch.zeros((), device=device)
    count = torch.zeros((), device=device)
    ent_sum: torch.Tensor | None = None
    atoms = torch.zeros((), device=device)
    preds, ys, masks = [], [], []
    try:
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                if entropy:
                    with capture_attention(model) as cap:
                        out = model(batch)
                    n_atoms = batch.mask.sum()
                    # attention_entropy is a mean over the batch's atoms: weight it back to a sum
                    ent = attention_entropy(list(cap), batch.mask) * n_atoms
                    ent_sum = ent if ent_sum is None else ent_sum + ent
                    atoms = atoms + n_atoms
                else:
                    out = model(batch)
            n_labels = batch.y_mask.sum()
            loss_sum = loss_sum + masked_loss(out, batch, task) * n_labels
            count = count + n_labels
            preds.append(predictions(out, task))
            ys.append(batch.y)
            masks.append(batch.y_mask)
    finally:
        model.train(was_training)
    if not preds:
        return Evaluation(float("nan"), float("nan"), 0)
    y_pred = torch.cat(preds).cpu().numpy()
    result = Evaluation(
        loss=float((loss_sum / count.clamp(min=1)).cpu()),
        metric=score(y_pred, torch.cat(ys).cpu().numpy(), torch.cat(masks).cpu().numpy(), task=task, metric=metric,
                     standardizer=standardizer),
        n=len(y_pred),
    )
    if ent_sum is not None:
        per = (ent_sum / atoms.clamp(min=1)).cpu().numpy()
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
