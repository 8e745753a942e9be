"""gradscope's own molecular graph transformer (architecture ``"graph-transformer"``; pure torch).

Not CoMPT: the faithful CoMPT (Chen et al. 2021), the model the GraphSAM paper (Wang et al. 2024)
trains, is :mod:`gradscope.models.compt`. This model borrows CoMPT's distance decay as a prior but
is a standard pre-norm transformer over atoms: atoms attend to all atoms of their molecule, and
the attention scores of head ``h`` between atoms ``i`` and ``j`` carry the molecule's structure
through two additive biases,

    s_ij^h = q_i^h · k_j^h / √d_h + b_bond^h(e_ij) + b_dist^h(d_ij),

* ``b_bond`` — a per-head bias computed by a small MLP from the bond features ``e_ij`` (zero
  vector for non-bonded pairs), one set of heads per layer;
* ``b_dist`` — a learnable per-head function of the topological distance ``d_ij`` (a table over
  0..max_distance plus an "unreachable" entry), initialised to ``−γ_h·d`` so that at start
  ``softmax(s − γ_h d)`` equals CoMPT's exponential distance-decay kernel ``exp(−γ_h d)``
  multiplied into the attention and renormalised, with head-specific decay rates ``γ_h``
  (local and more global heads); training may reshape the curve.

Blocks are pre-norm (LayerNorm → attention → residual, LayerNorm → GELU feed-forward →
residual), followed by a final LayerNorm, a masked readout over real atoms (mean or learned
attention pooling) and an MLP head with ``n_tasks`` outputs (logits for classification).

Contracts relied on elsewhere:

* padding never changes the outputs of real molecules (padded keys get −inf scores);
* ``forward`` works under ``torch.func.functional_call`` and ``torch.func.vmap`` over stacked
  parameters (no in-place ops on parameter-dependent tensors, no host syncs, no Python control
  flow on tensor values), and under bf16 autocast (softmax runs in float32);
* :func:`gradscope.models.capture_attention` records each layer's attention probabilities.

With ``pack_atoms`` the per-atom layers — atom embedding, LayerNorms, the QKV and
output projections, the feed-forward and the residual sums — run on the batch's real atoms only
(:mod:`gradscope.models.packing`); only the attention itself sees the padded ``[B, L]`` layout.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from gradscope.models.base import MoleculeModel

from gradscope.models.config import ModelConfig
from gradscope.models.packing import AtomPacking, apply_dropout, run_sequential

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.batch import GraphBatch


class PairBias(nn.Module):
    """Per-layer, per-head additive attention biases from bond features and distances.

    Returns ``[n_layers, B, H, L, L]``: computed once per forward for all layers, from the
    ``[B, L, L, d_e]`` bond tensor (MLP to ``n_layers·H`` values) and the distance one-hot
    ``[B, L, L, max_distance + 2]`` times a ``[max_distance + 2, n_layers·H]`` table.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_layers, self.n_heads = config.n_layers, config.n_heads
        self.max_distance = config.max_distance
        out = config.n_layers * config.n_heads
        self.bond_mlp = nn.Sequential(nn.Linear(config.bond_dim, config.d_edge), nn.GELU(), nn.Linear(config.d_edge, out))
        n_bins = config.max_distance + 2  # 0..max_distance, then "unreachable"
        self.distance_table = nn.Parameter(self.decay_prior(n_bins, config.n_layers, config.n_heads))
        self.register_buffer("bins", torch.arange(n_bins, dtype=torch.float32), persistent=False)

    @staticmethod
    def decay_prior(n_bins: int, n_layers: int, n_heads: int) -> torch.Tensor:
        """``table[d, l·H + h] = −γ_h·d`` with γ_h = 2^(−4(h+1)/H) (steep to gentle decay)."""
        gammas = torch.tensor([2.0 ** (-4.0 * (h + 1) / n_heads) for h in range(n_heads)])
        d = torch.arange(n_bins, dtype=torch.float32)[:, None]
        return (-d * gammas).repeat(1, n_layers)

    def forward(self, bonds: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        b, length = bonds.shape[0], bonds.shape[1]
        # bin index as float: distance clamped to max_distance; inf (other fragment) → last bin
        binned = torch.where(torch.isfinite(distances), distances.clamp(max=self.max_distance), self.max_distance + 1.0)
        one_hot = (binned.unsqueeze(-1) == self.bins).to(bonds.dtype)
        bias = self.bond_mlp(bonds) + one_hot @ self.distance_table  # [B, L, L, n_layers·H]
        bias = bias.reshape(b, length, length, self.n_layers, self.n_heads)
        return bias.permute(3, 0, 4, 1, 2)


class GraphAttention(nn.Module):
    """Multi-head self-attention over atoms with an additive structural bias."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self._capture: list[torch.Tensor] | None = None  # set by capture_attention

    def forward(self, x: torch.Tensor, bias: torch.Tensor, key_padding: torch.Tensor,
                packing: AtomPacking | None = None) -> torch.Tensor:
        """Attention output, ``[B, L, d]`` — or ``[N, d]`` on real atoms when ``packing`` is given
        (``x`` then holds the ``N`` real atoms' rows; the projections run on those only)."""
        qkv = self.qkv(x) if packing is None else packing.unpack(self.qkv(x))
        b, length = qkv.shape[0], qkv.shape[1]
        d = qkv.shape[2] // 3
        q, k, v = qkv.reshape(b, length, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim)) + bias.to(q.dtype)
        scores = scores.masked_fill(key_padding, float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1)
        if self._capture is not None:
            self._capture.append(probs.detach())
        probs = self.dropout(probs).to(v.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, length, d)
        return self.out(out if packing is None else packing.pack(out))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = GraphAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(config.d_model, config.d_ff), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(config.d_ff, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, key_padding: torch.Tensor,
                packing: AtomPacking | None = None) -> torch.Tensor:
        """``[B, L, d]`` → ``[B, L, d]``, or real atoms' rows ``[N, d]`` → ``[N, d]`` with ``packing``."""
        x = x + apply_dropout(self.dropout, self.attn(self.norm1(x), bias, key_padding, packing), packing)
        return x + apply_dropout(self.dropout, run_sequential(self.ffn, self.norm2(x), packing), packing)


class MeanReadout(nn.Module):
    """Mean of the atom states of each molecule (padding excluded)."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1)
        total = torch.where(m, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(1)
        return total / m.sum(1).clamp(min=1).to(h.dtype)


class AttentionReadout(nn.Module):
    """Softmax-weighted sum of atom states with learned scores (padding excluded)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.score = nn.Linear(d_model, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.score(h).squeeze(-1).float().masked_fill(~mask, float("-inf"))
        w = torch.softmax(s, dim=1).to(h.dtype).unsqueeze(-1)
        h = torch.where(mask.unsqueeze(-1), h, torch.zeros((), dtype=h.dtype, device=h.device))
        return (w * h).sum(1)


class GraphTransformer(MoleculeModel):
    """Molecule → ``[n_tasks]`` predictions; see the module docstring for the architecture."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.atom_embed = nn.Linear(config.atom_dim, config.d_model)
        self.pair_bias = PairBias(config)
        self.layers = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.readout: nn.Module = MeanReadout() if config.readout == "mean" else AttentionReadout(config.d_model)
        self.head = nn.Sequential(
            nn.Linear(config.d_model, config.d_model), nn.GELU(), nn.Dropout(config.dropout),
            nn.Linear(config.d_model, config.n_tasks),
        )
        self._capture_masks: list[torch.Tensor] | None = None  # set by capture_attention

    def encode(self, batch: "GraphBatch") -> torch.Tensor:
        """Atom states after the final LayerNorm, ``[B, L, d_model]``."""
        mask = batch.mask
        if self._capture_masks is not None:
            self._capture_masks.append(mask)
        key_padding = ~mask[:, None, None, :]  # [B, 1, 1, L]
        biases = self.pair_bias(batch.bonds, batch.distances)
        packing = AtomPacking.for_batch(batch) if self.config.pack_atoms else None
        x = self.atom_embed(batch.atoms if packing is None else packing.pack(batch.atoms))
        for i, layer in enumerate(self.layers):
            x = layer(x, biases[i], key_padding, packing)
        x = self.norm(x)
        return x if packing is None else packing.unpack(x)


def build_model(config: ModelConfig) -> GraphTransformer:
    """The graph transformer for ``config`` (initialised by torch's defaults, seeded globally)."""
    return GraphTransformer(config)
