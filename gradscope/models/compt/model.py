"""The faithful CoMPT (Chen et al. 2021, IJCAI, "Learning Attributed Graph Representation with
Communicative Message Passing Transformer"), as its released code builds it (jcchan23/CoMPT
``transformer_graph.py``; the GraphSAM paper's experiments ran the same file, YL-wang/GraphSAM).

Forward pass, ``batch`` a :class:`gradscope.chem.GraphBatch` of the ``compt`` featurizer (115 atom
and 13 bond features, which equal the released ones; topological distances):

1. node states ``x_i = √d·drop(W_a a_i) + drop(P[i + 1])``, ``P`` a learned table indexed by the
   atom's position in the molecule (RDKit atom order; 0 is the padding row, positions above
   ``max_atoms`` share the last row); edge states ``e_ij = √d·drop(W_b b_ij)`` for every atom pair
   (non-bonded pairs have zero bond features, so their state is the bias);
2. ``n_layers`` encoder layers (:class:`EncoderLayer`), each with one normalisation module used
   three times:  ``h = drop(norm(x))``; ``a = h + drop(norm(attn(h, e)))``;
   ``x ← h + a + drop(norm(ffn(a)))`` — the released residual wiring, in which the normalised
   input and the attention branch both reach the output;
3. a final normalisation, the GRU readout (:mod:`gradscope.models.compt.readout`) and the
   generator MLP (:class:`~gradscope.models.compt.layers.Head`) → ``[B, n_tasks]``.

Initialisation as released: Xavier-uniform for every parameter with two or more dimensions, torch
defaults otherwise (ScaleNorm ``g = √d``, λ = ``attenuation``).

Contracts relied on elsewhere: padding never changes an output; ``forward`` runs under
``torch.func.functional_call`` + ``vmap`` over stacked parameters and under bf16 autocast (softmaxes
in float32) with no host syncs; :func:`gradscope.models.capture_attention` records each layer's
outgoing attention ``[B, H, L, L]``. The encoder is permutation-equivariant; the position table
and the GRU make the whole model depend on atom order, as released (``positions=False,
readout="mean"`` makes it order-free).

With ``pack_atoms`` the embeddings, norms, projections, feed-forward and residual sums
run on the batch's real atoms only (:mod:`gradscope.models.packing`); the attention and the readout
see the padded layout.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from gradscope.models.base import MoleculeModel

from gradscope.models.compt.communicative import AffineEdges, CommunicativeAttention
from gradscope.models.compt.config import CoMPTConfig
from gradscope.models.compt.layers import FeedForward, Head, make_norm
from gradscope.models.compt.readout import make_readout
from gradscope.models.packing import AtomPacking, apply_dropout

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.batch import GraphBatch


class EncoderLayer(nn.Module):
    """Communicative attention and feed-forward with the released residual wiring (module docstring)."""

    def __init__(self, config: CoMPTConfig, *, update_edges: bool = False) -> None:
        super().__init__()
        self.norm = make_norm(config)
        self.attention = CommunicativeAttention(config, update_edges=update_edges)
        self.feed_forward = FeedForward(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, edges: "torch.Tensor | AffineEdges", distances: torch.Tensor,
                mask: torch.Tensor, packing: AtomPacking | None = None) -> tuple[torch.Tensor, "torch.Tensor | AffineEdges"]:
        """Node states ``[B, L, d]`` (or real atoms' rows ``[N, d]`` with ``packing``) and edge states."""
        h = apply_dropout(self.dropout, self.norm(x), packing)
        attended, new_edges = self.attention(h, edges, distances, mask, packing)
        a = h + apply_dropout(self.dropout, self.norm(attended), packing)
        out = h + a + apply_dropout(self.dropout, self.norm(self.feed_forward(a, packing)), packing)
        return out, (edges if new_edges is None else new_edges)


class CoMPT(MoleculeModel):
    """Molecule → ``[n_tasks]`` predictions (logits for classification); see the module docstring."""

    def __init__(self, config: CoMPTConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.scale = math.sqrt(d)
        self.atom_embed = nn.Linear(config.atom_dim, d)
        self.bond_embed = nn.Linear(config.bond_dim, d)
        self.position_table = nn.Parameter(torch.empty(config.max_atoms + 1, d)) if config.positions else None
        self.dropout = nn.Dropout(config.dropout)
        # with update_edges every layer but the last passes its edge output on (the last one's has no reader)
        self.layers = nn.ModuleList(EncoderLayer(config, update_edges=config.update_edges and i < config.n_layers - 1)
                                    for i in range(config.n_layers))
        self.norm = make_norm(config)
        self.readout = make_readout(config)
        self.head = Head(config)
        self._capture_masks: list[torch.Tensor] | None = None  # set by capture_attention
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed_nodes(self, atoms: torch.Tensor, mask: torch.Tensor, packing: AtomPacking | None = None) -> torch.Tensor:
        """Initial node states ``[B, L, d]`` (real atoms' rows ``[N, d]`` with ``packing``): scaled
        atom embedding plus position embedding."""
        positions = (mask.cumsum(1) * mask).clamp(max=self.config.max_atoms)  # 1, 2, … on real atoms, 0 on padding
        if packing is not None:
            atoms, positions = packing.pack(atoms), packing.pack(positions)
        x = apply_dropout(self.dropout, self.atom_embed(atoms), packing) * self.scale
        if self.position_table is None:
            return x
        return x + apply_dropout(self.dropout, self.position_table[positions], packing)

    def embed_edges(self, bonds: torch.Tensor) -> "torch.Tensor | AffineEdges":
        """Initial edge states: unmaterialised (:class:`AffineEdges`) unless edges get updated or
        dropout acts on them, then dense ``[B, L, L, d]``."""
        dense = self.config.update_edges or (self.training and self.config.dropout > 0)
        if dense:
            return self.dropout(self.bond_embed(bonds)) * self.scale
        return AffineEdges(bonds, self.bond_embed.weight * self.scale, self.bond_embed.bias * self.scale)

    def encode(self, batch: "GraphBatch") -> torch.Tensor:
        """Atom states after the final normalisation, ``[B, L, d_model]``."""
        mask = batch.mask
        if self._capture_masks is not None:
            self._capture_masks.append(mask)
        packing = AtomPacking.for_batch(batch) if self.config.pack_atoms else None
        x = self.embed_nodes(batch.atoms, mask, packing)
        edges = self.embed_edges(batch.bonds)
        for layer in self.layers:
            x, edges = layer(x, edges, batch.distances, mask, packing)
        x = self.norm(x)
        return x if packing is None else packing.unpack(x)


def build_compt(config: CoMPTConfig) -> CoMPT:
    """CoMPT for ``config`` (initialised as released, seeded by torch's global generator)."""
    return CoMPT(config)
