"""Dense padded mini-batches of molecules: :class:`GraphBatch` and :func:`collate`.

A batch of ``B`` molecules padded to ``L`` atoms (the largest molecule in the batch unless
``pad_to`` asks for more) holds:

* ``atoms`` float32 ``[B, L, d_a]``: atom features, zero rows for padding;
* ``bonds`` float32 ``[B, L, L, d_e]``: bond features, zero where there is no bond;
* ``distances`` float32 ``[B, L, L]``: shortest-path length in bonds, ``inf`` between
  fragments, 0 in padding;
* ``mask`` bool ``[B, L]``: True for real atoms;
* ``y`` float32 ``[B, T]``: targets (standardized if a standardizer was given), 0 where missing;
* ``y_mask`` bool ``[B, T]``: True where a label is present (missing labels are excluded from
  loss and metrics);
* ``index`` int64 ``[B]``: positions of the molecules in their dataset;
* ``extras``: further named tensors a model asked for (empty unless requested; see
  :func:`gradscope.chem.collation.register_batch_field`).

Datasets build batches from their compact store (:mod:`gradscope.chem.collation`);
:func:`collate` builds the same batch from a list of :class:`MolGraph` s. This module also holds
the two batch orders that group molecules by size: :func:`size_batches` (evaluation) and
:func:`bucket_order` (training, opt-in). It needs no RDKit (models and training loops import it
freely).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from gradscope.errors import GradscopeError

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.graph import MolGraph
    from gradscope.chem.standardize import Standardizer


@dataclass
class GraphBatch:
    """A padded batch of molecular graphs (see the module docstring for shapes)."""

    atoms: torch.Tensor
    bonds: torch.Tensor
    distances: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    y_mask: torch.Tensor
    index: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.atoms.shape[0])

    @property
    def max_atoms(self) -> int:
        """The padded length ``L``."""
        return int(self.atoms.shape[1])

    @property
    def device(self) -> torch.device:
        return self.atoms.device

    def _map(self, fn) -> "GraphBatch":
        out = {f.name: fn(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extras"}
        return GraphBatch(**out, extras={k: fn(v) for k, v in self.extras.items()})

    def to(self, device: "torch.device | str", non_blocking: bool = False) -> "GraphBatch":
        """A copy with every tensor on ``device`` (``non_blocking`` as in ``Tensor.to``)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> "GraphBatch":
        """Page-locked copy; called by ``DataLoader(pin_memory=True)``."""
        return self._map(lambda t: t.pin_memory())


def collate(
    graphs: Sequence["MolGraph"],
    *,
    standardizer: "Standardizer | None" = None,
    pad_to: int | None = None,
    n_tasks: int | None = None,
    fields: Sequence[str] = (),
) -> GraphBatch:
    """Stack molecules into a :class:`GraphBatch`.

    Args:
        graphs: featurized molecules; their ``y`` (NaN = missing) become ``y``/``y_mask``.
            Unlabelled graphs (``y is None``) give ``n_tasks`` (default 1) missing labels.
        standardizer: if given, targets are standardized with it (regression).
        pad_to: pad to at least this many atoms (default: the largest molecule).
        n_tasks: number of targets for unlabelled graphs.
        fields: extra batch fields to build (:func:`gradscope.chem.collation.register_batch_field`).
    """
    from gradscope.chem.collation import assemble, parts_from_graphs

    if len(graphs) == 0:
        raise GradscopeError("cannot collate an empty list of molecules")
    parts = parts_from_graphs(graphs, pad_to)
    t = n_tasks if n_tasks is not None else next((g.y.shape[0] for g in graphs if g.y is not None), 1)
    y = np.full((len(graphs), t), np.nan, dtype=np.float32)
    for i, g in enumerate(graphs):
        if g.y is not None:
            y[i] = g.y.numpy()
    index = np.array([g.index for g in graphs], dtype=np.int64)
    return assemble(parts, y, index, standardizer=standardizer, fields=fields)


#: Default cost cap of one size-packed batch: molecules × (padded atoms)² ≤ this many atom pairs.
#: Attention and the bond tensor grow with the square of the padded length; 32,768 pairs is 32
#: molecules of 32 atoms, and was the fastest of 8k–128k for the small and compt models on a CPU
#: (``python benchmarks/landscape.py``; docs/benchmarks.md).
DEFAULT_PAIR_BUDGET = 32_768


def size_batches(n_atoms: "Sequence[int] | np.ndarray", *, pair_budget: int = DEFAULT_PAIR_BUDGET,
                 max_batch: int = 256) -> list[np.ndarray]:
    """Positions ``0..len(n_atoms)-1`` grouped into batches of molecules of similar size.

    A padded batch costs about ``B·L²`` (attention rows and bond pairs) however small its
    molecules are, so a random batch with one 100-atom molecule pays for 100² pairs per molecule.
    For a fixed evaluation set (validation, loss landscapes, Hessians) the order does not matter,
    so the molecules are sorted by atom count (stable: ties keep their order) and consecutive ones
    share a batch while ``B·L² ≤ pair_budget`` and ``B ≤ max_batch``; a molecule over the budget
    on its own gets a batch of one. Every position appears exactly once.
    """
    sizes = np.asarray(n_atoms, dtype=np.int64).reshape(-1)
    if pair_budget < 1 or max_batch < 1:
        raise GradscopeError("pair_budget and max_batch must be positive")
    order = np.argsort(sizes, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        # the batch order[start:end] would be padded to its last (largest) molecule
        if end - start > 1 and ((end - start) * int(sizes[order[end - 1]]) ** 2 > pair_budget
                                or end - start > max_batch):
            batches.append(order[start:end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    return batches


def bucket_order(order: np.ndarray, sizes: "Sequence[int] | np.ndarray", batch_size: int, bucket_batches: int, *,
                 seed: int, epoch: int) -> np.ndarray:
    """An epoch's order of training molecules in which each batch holds molecules of similar size.

    ``order`` is the epoch's random permutation of positions ``0..n-1`` (``sizes[p]`` atoms at
    position ``p``). It is cut into buckets of ``bucket_batches`` consecutive batches; each bucket is
    sorted by atom count (stable) and cut into batches of ``batch_size``; the full batches are
    shuffled with a generator fixed by ``(seed, epoch)`` and the one short batch (when ``n`` is not
    a multiple of ``batch_size``) goes last, where the unbucketed order has it too. Consecutive
    ``batch_size`` blocks of the result are the batches; every position appears exactly once.

    A padded batch costs as much as its largest molecule, so batches of similar molecules waste
    less. Which molecules share a batch changes (a different SGD trajectory; every molecule still
    counts once per epoch, and bucket contents and batch order stay random).
    """
    order = np.asarray(order, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    if batch_size < 1 or bucket_batches < 1:
        raise GradscopeError("batch_size and bucket_batches must be positive")
    span = batch_size * bucket_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), span):
        bucket = order[start:start + span]
        bucket = bucket[np.argsort(sizes[bucket], kind="stable")]
        batches += [bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size)]
    short = [b for b in batches if len(b) < batch_size]
    full = [b for b in batches if len(b) == batch_size]
    rng = np.random.default_rng([int(seed) & (2**63 - 1), int(epoch)])
    shuffled = [full[i] for i in rng.permutation(len(full))] + short
    return np.concatenate(shuffled) if shuffled else order[:0]
