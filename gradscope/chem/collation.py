"""Building a padded :class:`~gradscope.chem.batch.GraphBatch`, vectorised over the batch.

A batch is first gathered into :class:`BatchParts`: the molecules' atoms and directed bonds as
flat tensors (all atoms of the batch in one ``[N, d_a]`` matrix, each bond once per direction),
from a compact :class:`~gradscope.chem.store.MoleculeStore` (:func:`parts_from_store`, what
datasets use) or from :class:`~gradscope.chem.graph.MolGraph` s (:func:`parts_from_graphs`, what
:func:`gradscope.chem.collate` uses). Every dense field is then one scatter over the batch:
``atoms [B, L, d_a]``, ``bonds [B, L, L, d_e]``, ``mask [B, L]`` and ``distances [B, L, L]``
(shortest paths in bonds, from a breadth-first search run on all molecules of the batch at
once, :func:`hop_distances`).

More batch fields: a model that needs another tensor registers a builder once,
``register_batch_field("adjacency", lambda parts: ...)``, and asks for it by name
(``dataset.batch_fields = ("adjacency",)``, or ``collate(..., fields=("adjacency",))``); it then
arrives as ``batch.extras["adjacency"]`` and travels with ``batch.to(device)``. See docs/data.md.
This module needs no RDKit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from gradscope.chem.batch import GraphBatch
from gradscope.errors import GradscopeError

if TYPE_CHECKING:  # pragma: no cover
    from gradscope.chem.featurizers import Featurizer
    from gradscope.chem.graph import MolGraph
    from gradscope.chem.standardize import Standardizer
    from gradscope.chem.store import MoleculeStore


@dataclass
class BatchParts:
    """The molecules of one batch as flat tensors (B molecules, N atoms, E directed bonds).

    Attributes:
        sizes: int64 ``[B]`` atoms of each molecule; ``length`` is the padded length L.
        atom_batch, atom_pos: int64 ``[N]`` molecule of each atom and its number within it.
        atoms: float32 ``[N, d_a]`` dense atom features.
        edge_batch, edge_src, edge_dst: int64 ``[E]`` molecule and atom numbers of each directed bond.
        edge_attr: float32 ``[E, d_e]`` features of each directed bond.
        atom_codes, bond_codes: the raw feature codes (store path only; ``None`` from MolGraphs):
            column name → ``[N]`` / ``[E // 2]`` (each bond once, in the order of the first half of the edges).
        distances: float32 ``[B, L, L]`` once computed (or given by MolGraphs).
    """

    sizes: torch.Tensor
    length: int
    atom_batch: torch.Tensor
    atom_pos: torch.Tensor
    atoms: torch.Tensor
    edge_batch: torch.Tensor
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    edge_attr: torch.Tensor
    atom_codes: "dict[str, np.ndarray] | None" = None
    bond_codes: "dict[str, np.ndarray] | None" = None
    distances: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.sizes.shape[0])


def _padded_length(sizes: np.ndarray, pad_to: int | None) -> int:
    length = int(sizes.max())
    if pad_to is not None:
        if pad_to < length:
            raise GradscopeError(f"pad_to={pad_to} is smaller than the largest molecule ({length} atoms)")
        length = pad_to
    return length


def _segments(counts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """For rows grouped in segments of ``counts``: each row's segment and its number within it."""
    counts = np.asarray(counts, dtype=np.int64)
    seg = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return torch.from_numpy(seg), torch.from_numpy(within)


def parts_from_store(store: "MoleculeStore", featurizer: "Featurizer", positions: np.ndarray,
                     pad_to: int | None = None) -> BatchParts:
    """The molecules at ``positions`` of ``store`` (in that order), features decoded."""
    g = store.gather(positions)
    atom_batch, atom_pos = _segments(g.n_atoms)
    bond_batch, _ = _segments(g.n_bonds)
    begin, end = torch.from_numpy(g.bonds[:, 0].copy()), torch.from_numpy(g.bonds[:, 1].copy())
    attr = featurizer.decode_bonds(g.bond_codes, len(g.bonds))
    return BatchParts(
        sizes=torch.from_numpy(g.n_atoms), length=_padded_length(g.n_atoms, pad_to),
        atom_batch=atom_batch, atom_pos=atom_pos, atoms=featurizer.decode_atoms(g.atom_codes, len(atom_pos)),
        edge_batch=torch.cat([bond_batch, bond_batch]), edge_src=torch.cat([begin, end]),
        edge_dst=torch.cat([end, begin]), edge_attr=torch.cat([attr, attr]),
        atom_codes=g.atom_codes, bond_codes=g.bond_codes,
    )


def parts_from_graphs(graphs: Sequence["MolGraph"], pad_to: int | None = None) -> BatchParts:
    """The molecules ``graphs`` (their own distance matrices are kept)."""
    sizes = np.array([g.n_atoms for g in graphs], dtype=np.int64)
    length = _padded_length(sizes, pad_to)
    atom_batch, atom_pos = _segments(sizes)
    edges = np.array([g.edge_index.shape[1] for g in graphs], dtype=np.int64)
    edge_batch, _ = _segments(edges)
    edge_index = torch.cat([g.edge_index for g in graphs], dim=1)
    distances = torch.zeros(len(graphs), length, length)
    for i, g in enumerate(graphs):
        distances[i, :g.n_atoms, :g.n_atoms] = g.distances
    return BatchParts(
        sizes=torch.from_numpy(sizes), length=length, atom_batch=atom_batch, atom_pos=atom_pos,
        atoms=torch.cat([g.atoms for g in graphs]), edge_batch=edge_batch, edge_src=edge_index[0],
        edge_dst=edge_index[1], edge_attr=torch.cat([g.edge_attr for g in graphs]), distances=distances,
    )


# -- the dense fields ---------------------------------------------------------------------------------
def atom_mask(parts: BatchParts) -> torch.Tensor:
    """bool ``[B, L]``: True for real atoms."""
    return torch.arange(parts.length)[None, :] < parts.sizes[:, None]


def dense_atoms(parts: BatchParts) -> torch.Tensor:
    """float32 ``[B, L, d_a]``: atom features, zero rows for padding."""
    out = torch.zeros(parts.batch_size, parts.length, parts.atoms.shape[1])
    out[parts.atom_batch, parts.atom_pos] = parts.atoms
    return out


def dense_bonds(parts: BatchParts) -> torch.Tensor:
    """float32 ``[B, L, L, d_e]``: features of the bond i→j at ``[b, i, j]``, zero where there is none."""
    out = torch.zeros(parts.batch_size, parts.length, parts.length, parts.edge_attr.shape[1])
    out[parts.edge_batch, parts.edge_src, parts.edge_dst] = parts.edge_attr
    return out


def hop_distances(parts: BatchParts) -> torch.Tensor:
    """float32 ``[B, L, L]``: bonds on the shortest path between atoms, ``inf`` between fragments,
    0 in padding (what RDKit's ``GetDistanceMatrix`` gives, padded).

    One breadth-first search from every atom of every molecule at once. The front is a list of
    pairs (row of a source atom, atom first reached from it at the current hop); a hop follows
    every bond out of the front's atoms (the batch's bonds as one padded neighbour table) and keeps
    the pairs not reached before, once each. Every pair enters the front once, so the whole search
    costs Σ n·E over the batch's molecules, in (largest eccentricity) vectorised hops.
    """
    if parts.distances is not None:
        return parts.distances
    b, length = parts.batch_size, parts.length
    width = length + 1  # rows of out have one extra column, always 0: where padded neighbours land
    mask = atom_mask(parts).numpy()
    real = mask[:, :, None] & np.concatenate([mask, np.zeros((b, 1), dtype=bool)], axis=1)[:, None, :]
    out = np.where(real, np.float32(np.inf), np.float32(0.0)).reshape(-1)
    neighbours, column = _neighbour_table(parts)
    n = len(column) - 1
    row = (parts.atom_batch * length + parts.atom_pos).numpy() * width  # each atom's own row: the sources
    atom = np.arange(n)
    out[row + column[atom]] = 0.0
    owner = np.empty(len(out), dtype=np.int64)
    count = np.arange(len(out) + 1)
    hop = 0
    while atom.size:
        hop += 1
        nxt = neighbours[atom]
        pair = row[:, None] + column[nxt]
        fresh = out[pair] == np.inf
        pair, atom = pair[fresh], nxt[fresh]
        row = np.broadcast_to(row[:, None], nxt.shape)[fresh]
        out[pair] = hop
        owner[pair] = count[:len(pair)]  # a pair reached along several bonds stays in the front once
        once = owner[pair] == count[:len(pair)]
        row, atom = row[once], atom[once]
    parts.distances = torch.from_numpy(out.reshape(b, length, width)[:, :, :length].copy())
    return parts.distances


def _neighbour_table(parts: BatchParts) -> tuple[np.ndarray, np.ndarray]:
    """The batch's atoms numbered 0..n-1: int64 ``[n, max degree]`` neighbours of each atom, padded
    with ``n`` (a dummy atom), and int64 ``[n + 1]`` each atom's position in its molecule (L for
    the dummy: the always-zero extra column of :func:`hop_distances`)."""
    n = len(parts.atom_pos)
    first = (torch.cumsum(parts.sizes, 0) - parts.sizes).numpy()
    begin = first[parts.edge_batch.numpy()] + parts.edge_src.numpy()
    end = first[parts.edge_batch.numpy()] + parts.edge_dst.numpy()
    degree = np.bincount(begin, minlength=n)
    table = np.full((n, max(int(degree.max(initial=0)), 1)), n, dtype=np.int64)
    order = np.argsort(begin, kind="stable")
    slot = np.arange(len(begin)) - np.repeat(np.cumsum(degree) - degree, degree)
    table[begin[order], slot] = end[order]
    return table, np.concatenate([parts.atom_pos.numpy(), [parts.length]])


#: name → builder of an extra batch field (see the module docstring); fills ``GraphBatch.extras``
BATCH_FIELDS: dict[str, Callable[[BatchParts], torch.Tensor]] = {}


def register_batch_field(name: str, builder: Callable[[BatchParts], torch.Tensor]) -> None:
    """Make ``name`` a batch field that datasets and :func:`collate` build on request.

    ``builder(parts)`` returns a tensor (on the CPU) from the batch's :class:`BatchParts`; it
    may call :func:`hop_distances`, :func:`atom_mask` or :func:`dense_bonds`. Registering the
    same name again replaces the builder.
    """
    if not name.isidentifier():
        raise ValueError(f"batch field names must be identifiers, got {name!r}")
    BATCH_FIELDS[name] = builder


def assemble(parts: BatchParts, y: np.ndarray, index: np.ndarray, *, standardizer: "Standardizer | None" = None,
             fields: Sequence[str] = ()) -> GraphBatch:
    """The :class:`GraphBatch` of ``parts`` with labels ``y`` (float32 ``[B, T]``, NaN = missing),
    dataset positions ``index`` and the extra ``fields`` (names in :data:`BATCH_FIELDS`)."""
    unknown = [f for f in fields if f not in BATCH_FIELDS]
    if unknown:
        raise GradscopeError(f"unknown batch field(s) {', '.join(unknown)}; registered: "
                             f"{', '.join(sorted(BATCH_FIELDS)) or 'none'}")
    y_t = torch.from_numpy(np.array(y, dtype=np.float32).reshape(parts.batch_size, -1))
    y_mask = ~torch.isnan(y_t)
    if standardizer is not None:
        y_t = standardizer.transform(y_t)
    y_t = torch.where(y_mask, y_t, torch.zeros((), dtype=y_t.dtype))
    return GraphBatch(
        atoms=dense_atoms(parts), bonds=dense_bonds(parts), distances=hop_distances(parts), mask=atom_mask(parts),
        y=y_t, y_mask=y_mask, index=torch.from_numpy(np.array(index, dtype=np.int64)),
        extras={name: BATCH_FIELDS[name](parts) for name in fields},
    )
