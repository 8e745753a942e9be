"""CoMPT's small building blocks: its two normalisations and the position-wise feed-forward.

Both normalisations are the released ones (``transformer_graph.py``), which differ from
``torch.nn.LayerNorm``:

* :class:`ScaleNorm` (Nguyen & Salazar 2019, "Transformers without Tears"): ``g·x/‖x‖₂`` with a
  single learned scalar ``g`` initialised to ``√d``; the norm is clamped below at 1e-5.
* :class:`StdLayerNorm`: ``a·(x − mean)/(std + 1e-6) + b`` with the *unbiased* standard deviation
  and ε added to it (the Annotated Transformer's LayerNorm).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gradscope.models.compt.config import CoMPTConfig
from gradscope.models.packing import AtomPacking, apply_dropout


class ScaleNorm(nn.Module):
    """``x · g / max(‖x‖₂, eps)`` over the last dimension, one learned scalar ``g = √d`` at start."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(math.sqrt(d)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (self.scale / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=self.eps))


class StdLayerNorm(nn.Module):
    """``a · (x − mean) / (std + eps) + b`` over the last dimension (unbiased std, eps outside the root)."""

    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)
        return self.weight * (x - mean) / (std + self.eps) + self.bias


def make_norm(config: CoMPTConfig) -> nn.Module:
    """ScaleNorm or the released LayerNorm, as ``config.scale_norm`` says."""
    return ScaleNorm(config.d_model) if config.scale_norm else StdLayerNorm(config.d_model)


class FeedForward(nn.Module):
    """``n_dense`` blocks of Linear(d, d) → mish → dropout (no widening; identity when 0).

    The released ``PositionwiseFeedForward`` with its output nonlinearity ``mish``, the one every
    released preset uses.
    """

    def __init__(self, config: CoMPTConfig) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(config.d_model, config.d_model) for _ in range(config.n_dense))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, packing: AtomPacking | None = None) -> torch.Tensor:
        """``[..., d]`` → ``[..., d]``; ``packing`` when ``x`` holds packed rows (dropout drawn as if padded)."""
        for linear in self.linears:
            x = apply_dropout(self.dropout, F.mish(linear(x)), packing)
        return x


class Head(nn.Module):
    """The released generator's MLP after pooling: ``n − 1`` blocks of Linear → mish → norm → dropout,
    then Linear(d, n_tasks)."""

    def __init__(self, config: CoMPTConfig) -> None:
        super().__init__()
        d = config.d_model
        blocks: list[nn.Module] = []
        for _ in range(config.n_generator_layers - 1):
            blocks += [nn.Linear(d, d), nn.Mish(), make_norm(config), nn.Dropout(config.dropout)]
        blocks.append(nn.Linear(d, config.n_tasks))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.mlp(pooled)
