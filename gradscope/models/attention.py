"""Capturing attention probabilities and measuring their entropy (pure torch).

The GraphSAM paper (Wang et al. 2024, Sec. 5.4) compares optimizers by the entropy of the
transformer's attention: the mean, over query atoms, of ``−Σ_j p_ij log p_ij`` (natural log)
— higher entropy means flatter, less over-confident attention (CoMPT on BBBP: Adam 2.4130,
GraphSAM 2.7239, SAM 2.8382).

::

    with capture_attention(model) as attn:
        model(batch)
    entropy = attention_entropy(attn, attn.mask)    # [n_layers, H]

Which attention is captured: gradscope's graph transformer records its softmax attention;
CoMPT records each layer's *outgoing* attention ``softmax_j(q_i·k_ij/√d_k)`` — the row-stochastic
part of its message, before the incoming term is added and the distance attenuation multiplies it
(the message itself is not a distribution; docs/models.md).

Capturing stores detached copies and changes no output. Do not capture inside
``torch.func.vmap``.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from gradscope.models.compt.communicative import CommunicativeAttention
from gradscope.models.compt.model import CoMPT
from gradscope.models.transformer import GraphAttention, GraphTransformer

#: modules that append their attention probabilities to ``_capture`` when it is set
ATTENTION_LAYERS = (GraphAttention, CommunicativeAttention)
#: models that append each forward call's atom mask to ``_capture_masks`` when it is set
ATTENTION_MODELS = (GraphTransformer, CoMPT)


class AttentionCapture(list):
    """A list of ``[B, H, L, L]`` attention probabilities, one per layer and forward call
    (layer order within each call), with the masks ``[B, L]`` of the batches seen."""

    def __init__(self) -> None:
        super().__init__()
        self.masks: list[torch.Tensor] = []

    @property
    def mask(self) -> torch.Tensor:
        """The mask of the most recent forward call."""
        if not self.masks:
            raise RuntimeError("no forward pass was captured yet")
        return self.masks[-1]

    def per_call(self) -> list[list[torch.Tensor]]:
        """The captured probabilities grouped by forward call."""
        n = len(self) // max(len(self.masks), 1)
        return [list(self[i * n:(i + 1) * n]) for i in range(len(self.masks))]


@contextlib.contextmanager
def capture_attention(model: nn.Module) -> Iterator[AttentionCapture]:
    """Record every attention layer's probabilities (and the batch mask) while inside."""
    record = AttentionCapture()
    layers = [m for m in model.modules() if isinstance(m, ATTENTION_LAYERS)]
    tops = [m for m in model.modules() if isinstance(m, ATTENTION_MODELS)]
    if not layers:
        raise TypeError("capture_attention needs a gradscope model (GraphTransformer or CoMPT attention layers)")
    for layer in layers:
        layer._capture = record
    for top in tops:
        top._capture_masks = record.masks
    try:
        yield record
    finally:
        for layer in layers:
            layer._capture = None
        for top in tops:
            top._capture_masks = None


def row_entropy(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each query row, ``[B, H, L]``; 0 on padded query rows.

    ``probs`` is ``[B, H, L, L]`` with zero probability on padded keys (0·log 0 = 0).
    """
    ent = -torch.special.xlogy(probs, probs).sum(-1)
    return torch.where(mask[:, None, :], ent, torch.zeros((), dtype=ent.dtype, device=ent.device))


def attention_entropy(probs: "torch.Tensor | Sequence[torch.Tensor]", mask: torch.Tensor) -> torch.Tensor:
    """Mean row entropy per head over real query atoms of the batch.

    ``probs`` ``[B, H, L, L]`` → ``[H]``; a sequence of layers (e.g. an :class:`AttentionCapture`
    of one forward call) → ``[n_layers, H]``. ``attention_entropy(...).mean()`` is the single
    number the GraphSAM paper reports. Sync-free (stays on the device).
    """
    if isinstance(probs, torch.Tensor):
        count = mask.sum().to(probs.dtype).clamp(min=1)
        return row_entropy(probs, mask).sum(dim=(0, 2)) / count
    return torch.stack([attention_entropy(p, mask) for p in probs])
