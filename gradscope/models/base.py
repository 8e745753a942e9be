"""What every molecule model of gradscope has in common: encode atoms, read out a molecule, predict.

A model subclasses :class:`MoleculeModel` and defines ``encode(batch)`` (atom states
``[B, L, d_model]``) and the modules ``readout`` (atom states and mask → ``[B, d_model]``) and
``head`` (→ ``[B, n_tasks]``); ``embed`` and ``forward`` are then the same for every architecture.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.batch import GraphBatch


class MoleculeModel(nn.Module):
    """Base of gradscope's molecule models (see the module docstring)."""

    readout: nn.Module
    head: nn.Module

    def encode(self, batch: "GraphBatch") -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def embed(self, batch: "GraphBatch") -> torch.Tensor:
        """Molecule embeddings ``[B, d_model]`` (readout of :meth:`encode`)."""
        return self.readout(self.encode(batch), batch.mask)

    def forward(self, batch: "GraphBatch") -> torch.Tensor:
        """Predictions ``[B, n_tasks]``: logits (classification) or standardized values."""
        return self.head(self.embed(batch))

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"parameters={n:,}"
