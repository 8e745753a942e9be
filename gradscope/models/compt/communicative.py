"""CoMPT's communicative attention: edge states are the keys, messages attenuate with distance.

One layer, head ``h``, atoms ``i, j`` of one molecule (Chen et al. 2021, Sec. 3; the released
``attention`` and ``MultiHeadedAttention`` of ``transformer_graph.py``):

* query from the node state, key from the *edge* state, value from the node state:
  ``q_i = W_q x_i``, ``k_ij = W_k e_ij``, ``v_j = W_v x_j``;
* outgoing and incoming attention, each a softmax over the molecule's atoms ``j``:
  ``a_out[i, j] = softmax_j(q_i·k_ij / √d_k)``, ``a_in[i, j] = softmax_j(q_i·k_ji / √d_k)``;
* the message ``m_ij = a_out[i, j] + a_in[i, j] − δ_ij a_out[i, i]``, multiplied by the distance
  attenuation ``K_ij`` (``exp(−λ d_ij)`` or ``softmax_j(−λ d_ij)`` of the topological distance,
  with one learned λ per layer, initialised to 0.1 and unconstrained as released) and not
  renormalised; dropout on ``m``;
* node output ``mish(W_o Σ_j m_ij v_j)``; edge output ``mish(W_e (m_ij k_ij))`` (per head, then
  concatenated) — computed only where a later layer reads it (``update_edges``, see
  :class:`~gradscope.models.CoMPTConfig`); the released layer computes it and discards it.

Atom pairs in different fragments (distance ``inf``) and padded atoms get ``K_ij = 0``; padded keys
get zero attention. The released code reaches the same through RDKit's 1e8 "distance" for any
λ > 0; here it holds for every λ and no ``inf`` reaches a gradient.

When the edge states are an affine function of the bond features (the released model: edges are
``√d·(W_b b_ij + c)`` and never updated, and no dropout is active on them) the scores are computed
without materialising the ``[B, L, L, d]`` key tensor: ``q_i·k_ij = (M_hᵀ q_i)·b_ij + q_i·c_h`` with
``M = W_k W_b √d`` — the same numbers by linearity, at ``d_bond/d_k`` of the cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gradscope.models.compt.config import CoMPTConfig
from gradscope.models.packing import AtomPacking


@dataclass(frozen=True)
class AffineEdges:
    """Edge states ``e_ij = weight @ features_ij + bias`` kept unmaterialised.

    ``features`` ``[B, L, L, d_bond]``, ``weight`` ``[d, d_bond]``, ``bias`` ``[d]``.
    """

    features: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def dense(self) -> torch.Tensor:
        """The edge states ``[B, L, L, d]``."""
        return F.linear(self.features, self.weight, self.bias)



def attenuation_kernel(distances: torch.Tensor, mask: torch.Tensor, lam: torch.Tensor, kind: str) -> torch.Tensor:
    """``K [B, L, L]`` (float32): ``exp(−λd)`` or ``softmax_j(−λd)`` over reachable real atoms ``j``, else 0."""
    reach = torch.isfinite(distances) & mask[:, None, :]
    scaled = torch.where(reach, distances, torch.zeros((), dtype=distances.dtype, device=distances.device))
    scaled = scaled.float() * lam.float()
    if kind == "exp":
        return torch.where(reach, torch.exp(-scaled), torch.zeros((), device=scaled.device))
    return torch.softmax((-scaled).masked_fill(~reach, float("-inf")), dim=-1)


class CommunicativeAttention(nn.Module):
    """One layer of communicative multi-head attention (see the module docstring).

    ``update_edges``: also compute the edge output (its ``edge_out`` projection exists only then).
    """

    def __init__(self, config: CoMPTConfig, *, update_edges: bool = False) -> None:
        super().__init__()
        d = config.d_model
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.kernel = config.distance_kernel
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.node_out = nn.Linear(d, d)
        self.edge_out = nn.Linear(d, d) if update_edges else None
        self.attenuation = nn.Parameter(torch.tensor(config.attenuation))
        self.dropout = nn.Dropout(config.dropout)
        self._capture: list[torch.Tensor] | None = None  # set by gradscope.models.capture_attention

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, L, d]`` → ``[B, H, L, d_k]``."""
        return t.unflatten(-1, (self.n_heads, self.head_dim)).transpose(1, 2)

    def scores(self, q: torch.Tensor, edges: "torch.Tensor | AffineEdges"
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Outgoing and incoming scores ``[B, H, L, L]`` (scaled by 1/√d_k) and the dense keys
        ``[B, L, L, H, d_k]`` (``None`` for :class:`AffineEdges`)."""
        scale = 1.0 / math.sqrt(self.head_dim)
        if isinstance(edges, AffineEdges):
            m = (self.key.weight @ edges.weight).unflatten(0, (self.n_heads, self.head_dim))  # [H, d_k, d_b]
            c = (self.key.weight @ edges.bias + self.key.bias).unflatten(0, (self.n_heads, self.head_dim))
            u = torch.einsum("bhid,hde->bhie", q, m)
            qc = torch.einsum("bhid,hd->bhi", q, c).unsqueeze(-1)
            x = edges.features.to(u.dtype)
            out = torch.einsum("bhie,bije->bhij", u, x) + qc
            inc = torch.einsum("bhie,bjie->bhij", u, x) + qc
            return out * scale, inc * scale, None
        key = self.key(edges).unflatten(-1, (self.n_heads, self.head_dim))  # [B, L, L, H, d_k]
        out = torch.einsum("bhid,bijhd->bhij", q, key)
        inc = torch.einsum("bhid,bjihd->bhij", q, key)
        return out * scale, inc * scale, key

    def forward(self, x: torch.Tensor, edges: "torch.Tensor | AffineEdges", distances: torch.Tensor,
                mask: torch.Tensor, packing: AtomPacking | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Node update ``[B, L, d]`` and, with ``update_edges``, edge update ``[B, L, L, d]`` (else None).

        With ``packing``, ``x`` and the node update are the real atoms' rows ``[N, d]``: the query,
        value and output projections run on those only.
        """
        q, v = self.query(x), self.value(x)
        if packing is not None:
            q, v = packing.unpack(q), packing.unpack(v)
        q, v = self._heads(q), self._heads(v)
        out, inc, key = self.scores(q, edges)
        padded_key = ~mask[:, None, None, :]
        p_out = torch.softmax(out.float().masked_fill(padded_key, float("-inf")), dim=-1)
        p_in = torch.softmax(inc.float().masked_fill(padded_key, float("-inf")), dim=-1)
        if self._capture is not None:
            self._capture.append(p_out.detach())
        length = mask.shape[1]
        eye = torch.eye(length, dtype=torch.bool, device=x.device)
        message = torch.where(eye, p_in, p_out + p_in)  # a_out + a_in − diag(a_out)
        message = message * attenuation_kernel(distances, mask, self.attenuation, self.kernel).unsqueeze(1)
        message = self.dropout(message).to(v.dtype)
        gathered = (message @ v).transpose(1, 2).flatten(2)
        nodes = F.mish(self.node_out(gathered if packing is None else packing.pack(gathered)))
        if self.edge_out is None:
            return nodes, None
        if key is None:
            raise ValueError("update_edges needs dense edge states")
        weighted = message.permute(0, 2, 3, 1).unsqueeze(-1) * key  # [B, L, L, H, d_k]
        return nodes, F.mish(self.edge_out(weighted.flatten(-2)))
