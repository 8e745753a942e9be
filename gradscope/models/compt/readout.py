"""CoMPT's readout ("generator"): a bidirectional GRU over the atoms, then a masked mean.

The released ``Generator`` with ``aggregation_type='gru'`` (``transformer_graph.py``):

1. ``h0 = max_i mish(x_i + b)`` (``b`` a learned bias), the initial state of both directions;
2. a one-layer bidirectional GRU reads the atom states in atom-index order;
3. ``mish(Linear(2d → d))`` of its outputs, averaged over the molecule's atoms.

The released code pads every molecule to the dataset's largest and lets padding into all three
steps (the max runs over padded rows too, the GRU reads the padding, and the sum runs over padded
outputs while dividing by the number of real atoms). gradscope batches pad to the batch's largest
molecule, so the readout here uses real atoms only: it equals the released readout of a molecule
that needs no padding, and no output depends on its batch-mates. The GRU (:class:`MaskedBiGRU`)
is written out step by step, with skipped padding, so that it runs under ``torch.func.vmap`` over
parameters and needs no host-side sequence lengths; it equals ``torch.nn.GRU`` on packed sequences.

The GRU makes the output depend on the atom order (as released); ``readout="mean"`` is the
order-free alternative (the released ``'mean'`` aggregation).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gradscope.models.compt.config import CoMPTConfig


class MaskedBiGRU(nn.Module):
    """One-layer bidirectional GRU over ``[B, L, d]`` that skips padded positions.

    Parameters are named and shaped as ``torch.nn.GRU(d, d, bidirectional=True)``'s (gate order
    r, z, n). Output ``[B, L, 2d]``: forward then backward direction; padded positions hold the
    carried state (mask them).
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.d = d
        bound = 1.0 / math.sqrt(d)
        for suffix in ("l0", "l0_reverse"):
            for name, shape in (("weight_ih", (3 * d, d)), ("weight_hh", (3 * d, d)),
                                ("bias_ih", (3 * d,)), ("bias_hh", (3 * d,))):
                self.register_parameter(f"{name}_{suffix}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))

    def _stacked(self, name: str) -> torch.Tensor:
        return torch.stack([getattr(self, f"{name}_l0"), getattr(self, f"{name}_l0_reverse")])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """``x [B, L, d]``, ``mask [B, L]``, ``h0 [B, d]`` (both directions) → ``[B, L, 2d]``."""
        w_ih, w_hh = self._stacked("weight_ih"), self._stacked("weight_hh")
        b_ih, b_hh = self._stacked("bias_ih"), self._stacked("bias_hh")
        seq = torch.stack([x, x.flip(1)])  # direction 1 reads the atoms backwards
        keep = torch.stack([mask, mask.flip(1)]).unsqueeze(-1)  # [2, B, L, 1]
        gates_x = torch.einsum("zbld,zgd->zblg", seq, w_ih) + b_ih[:, None, None, :]  # [2, B, L, 3d]
        dtype = gates_x.dtype  # bf16 under autocast
        w_hh_t, b_hh = w_hh.transpose(1, 2).to(dtype), b_hh.unsqueeze(1).to(dtype)
        h = torch.stack([h0, h0]).to(dtype)
        d2 = 2 * self.d
        states = []
        # unbind once: indexing step t inside the loop would give backward one full-size zero tensor per step
        for gx, kept in zip(gates_x.unbind(2), keep.unbind(2)):
            gh = torch.baddbmm(b_hh, h, w_hh_t)  # [2, B, 3d]
            r, z = torch.sigmoid(gx[..., :d2] + gh[..., :d2]).chunk(2, dim=-1)
            n = torch.tanh(gx[..., d2:] + r * gh[..., d2:])
            h = torch.where(kept, n + z * (h - n), h)  # (1 − z)·n + z·h on real atoms, h kept on padding
            states.append(h)
        out = torch.stack(states, dim=2)  # [2, B, L, d]
        return torch.cat([out[0], out[1].flip(1)], dim=-1)


class GRUReadout(nn.Module):
    """The released GRU aggregation over real atoms → ``[B, d]`` (see the module docstring)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d)
        self.bias = nn.Parameter(torch.empty(d).uniform_(-bound, bound))
        self.gru = MaskedBiGRU(d)
        self.linear = nn.Linear(2 * d, d)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1)
        zero = torch.zeros((), dtype=h.dtype, device=h.device)
        h = torch.where(m, h, zero)
        h0 = F.mish(h + self.bias).masked_fill(~m, float("-inf")).amax(dim=1)
        out = F.mish(self.linear(self.gru(h, mask, h0)))
        return torch.where(m, out, torch.zeros((), dtype=out.dtype, device=out.device)).sum(1) / m.sum(1).to(out.dtype)


class MeanReadout(nn.Module):
    """Mean of the atom states over real atoms (the released ``'mean'`` aggregation) → ``[B, d]``."""

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1)
        return torch.where(m, h, torch.zeros((), dtype=h.dtype, device=h.device)).sum(1) / m.sum(1).to(h.dtype)


def make_readout(config: CoMPTConfig) -> nn.Module:
    return GRUReadout(config.d_model) if config.readout == "gru" else MeanReadout()
