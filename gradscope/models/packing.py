"""Per-atom layers on real atoms only: packing a padded ``[B, L, d]`` batch into ``[N, d]`` and back.

A padded batch of ``B`` molecules of up to ``L`` atoms holds ``N ≤ B·L`` real atoms; on randomly
drawn BBBP batches of 32 only about 45 % of the ``B·L`` slots are real. Layers that act on every
atom on its own (embeddings, the Q/K/V and output projections, the position-wise feed-forward,
normalisations, residual sums) give the same rows whether they see the padding or not, so the
models run them on the ``N`` real rows (:meth:`AtomPacking.pack`) and go back to the padded layout
only where atoms meet — the attention — and for the readout (:meth:`AtomPacking.unpack`, zeros on
padding). Outputs and gradients equal the dense computation's up to float rounding; the switch is
``pack_atoms`` in :class:`~gradscope.models.ModelConfig` and :class:`~gradscope.models.CoMPTConfig`.

Both directions are ``index_select`` with integer indices computed once per forward
(:meth:`AtomPacking.for_batch`), so they run under ``torch.func.functional_call``, ``vmap`` over
parameters (the batch, hence the indices, unbatched), double backward and autocast.

The number of real atoms is a data-dependent size, which a forward pass must not wait for on an
accelerator. The indices therefore come from the batch: a batch built with the field
:data:`ATOM_INDEX` (``dataset.batch_fields = ("atom_index",)`` or ``collate(..., fields=...)``)
carries them, computed on the host at collation; a batch on the CPU without it gets them from its
mask (no device to wait for); on an accelerator without it the model runs the padded (dense) path.

The switch is off by default. Every output, loss and gradient agrees with the padded computation
to float rounding, but a few gradients are zero in exact arithmetic — biases that shift a whole
softmax row, such as the last bias of the graph transformer's bond MLP and CoMPT's bond and key
biases — and hold only rounding noise, which differs between the two paths. A method that
normalises each tensor on its own (the released GraphSAM, ``graphsam-released``) scales that noise
up to visible per-layer ε norms, so its recorded trace would differ from the reference traces
(``tests/test_trace_equality.py``) beyond their tolerance. Every other quantity stays within it.

Dropout on packed rows (:meth:`AtomPacking.dropout`) draws its mask in the padded shape and keeps
the real rows, so a seeded training run draws the very same random numbers as the dense model.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from gradscope.chem.collation import atom_mask, register_batch_field

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.batch import GraphBatch

#: name of the batch field (``batch.extras``) holding the flat positions of the real atoms
ATOM_INDEX = "atom_index"


def real_atom_index(mask: torch.Tensor) -> torch.Tensor:
    """int64 ``[N]``: flat positions ``b·L + l`` of the True entries of a ``[B, L]`` mask, in order."""
    return torch.nonzero(mask.reshape(-1)).squeeze(1)


register_batch_field(ATOM_INDEX, lambda parts: real_atom_index(atom_mask(parts)))


@dataclass(frozen=True)
class AtomPacking:
    """Where the real atoms of a padded batch are.

    Attributes:
        index: ``[N]`` int64, flat positions ``b·L + l`` of the real atoms (row-major order).
        slot: ``[B·L]`` int64, the packed row of every padded slot; ``N`` (a zero row) on padding.
        batch, length: ``B`` and ``L``.
    """

    index: torch.Tensor
    slot: torch.Tensor
    batch: int
    length: int

    @classmethod
    def for_batch(cls, batch: "GraphBatch") -> "AtomPacking | None":
        """The batch's packing, without waiting on a device: from ``batch.extras[ATOM_INDEX]`` when
        the batch carries it, else from a mask on the CPU; ``None`` (run dense) otherwise."""
        index = batch.extras.get(ATOM_INDEX)
        if index is None and batch.mask.device.type != "cpu":
            return None
        return cls.from_mask(batch.mask, index)

    @classmethod
    def from_mask(cls, mask: torch.Tensor, index: torch.Tensor | None = None) -> "AtomPacking":
        """The packing of a ``[B, L]`` bool mask (True on real atoms); ``index`` as
        :func:`real_atom_index` gives it (computed here when not given)."""
        flat = mask.reshape(-1)
        index = real_atom_index(mask) if index is None else index.to(device=flat.device, dtype=torch.int64)
        rank = torch.cumsum(flat, 0) - 1
        slot = torch.where(flat, rank, torch.full_like(rank, index.shape[0]))
        return cls(index=index, slot=slot, batch=int(mask.shape[0]), length=int(mask.shape[1]))

    @property
    def n_atoms(self) -> int:
        """``N``, the number of real atoms."""
        return int(self.index.shape[0])

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, *rest]`` → ``[N, *rest]``: the rows of the real atoms."""
        return x.flatten(0, 1).index_select(0, self.index)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, *rest]`` → ``[B, L, *rest]`` with zeros on padding."""
        padded = torch.cat([x, torch.zeros_like(x[:1])])
        return padded.index_select(0, self.slot).unflatten(0, (self.batch, self.length))

    def dropout(self, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
        """``module`` (an ``nn.Dropout``) applied to packed rows ``[N, d]`` with the random mask the
        dense ``[B, L, d]`` input would get (same generator draws, padding rows discarded)."""
        p = float(getattr(module, "p", 0.0))
        if not module.training or p == 0.0:
            return x
        ones = torch.ones((self.batch * self.length, *x.shape[1:]), dtype=x.dtype, device=x.device)
        return x * F.dropout(ones, p, True).index_select(0, self.index)


def run_sequential(layers: nn.Sequential, x: torch.Tensor, packing: "AtomPacking | None") -> torch.Tensor:
    """``layers(x)``, with every ``nn.Dropout`` among them drawn as in the padded shape when packed."""
    if packing is None:
        return layers(x)
    for layer in layers:
        x = packing.dropout(x, layer) if isinstance(layer, nn.Dropout) else layer(x)
    return x


def apply_dropout(module: nn.Module, x: torch.Tensor, packing: "AtomPacking | None") -> torch.Tensor:
    """``module(x)`` on a padded tensor, :meth:`AtomPacking.dropout` on a packed one."""
    return module(x) if packing is None else packing.dropout(x, module)
