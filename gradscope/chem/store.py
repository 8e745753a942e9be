"""Featurized molecules kept compactly: feature codes in a few flat arrays with CSR offsets.

A :class:`MoleculeStore` holds ``N`` molecules as what they are, not as dense tensors:

* ``atom_codes[column]``: one small code per atom and feature column (the slot of a one-hot
  block, a raw integer value, or a float32 value; :mod:`gradscope.chem.columns`), all atoms of
  all molecules concatenated; molecule ``i`` owns rows ``atom_ptr[i]:atom_ptr[i+1]``.
* ``bonds``: int16 ``[n_bonds, 2]`` begin/end atom of each (undirected) bond, numbered within
  its molecule, and ``bond_codes[column]`` one code per bond; molecule ``i`` owns rows
  ``bond_ptr[i]:bond_ptr[i+1]``.
* the SMILES as one UTF-8 byte array with offsets, and ``keys``: a 64-bit hash of each
  molecule's canonical SMILES (0 where not computed), which finds duplicate molecules without
  parsing them again.

For the ``compt`` featurizer this is ~16 bytes per atom and 9 per bond (about 0.7 KB for a
drug-like molecule) where dense one-hot features, distance matrices and bond features took
~20 KB. Dense tensors are built per batch (:mod:`gradscope.chem.collation`). Stores are
immutable (their arrays read-only), so the in-memory cache and every dataset built from it share
them, and :func:`save_store` / :func:`load_store` write them as ``.npy`` files that reload
memory-mapped. This module needs no RDKit.
"""
from __future__ import annotations

import array
import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

#: a molecule's atoms are numbered in int16 inside ``bonds``
MAX_ATOMS_PER_MOLECULE = int(np.iinfo(np.int16).max)


@dataclass(frozen=True)
class MoleculeStore:
    """Featurized molecules in compressed-sparse-row form (see the module docstring)."""

    atom_ptr: np.ndarray
    bond_ptr: np.ndarray
    bonds: np.ndarray
    atom_codes: dict[str, np.ndarray]
    bond_codes: dict[str, np.ndarray]
    smiles_ptr: np.ndarray
    smiles_bytes: np.ndarray
    keys: np.ndarray

    def __post_init__(self) -> None:
        for a in self.arrays().values():
            if a.flags.writeable:
                a.flags.writeable = False

    # -- sizes ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.atom_ptr) - 1

    @property
    def n_atoms(self) -> np.ndarray:
        """int64 ``[N]``: atoms of each molecule."""
        return np.diff(self.atom_ptr)

    @property
    def n_bonds(self) -> np.ndarray:
        """int64 ``[N]``: (undirected) bonds of each molecule."""
        return np.diff(self.bond_ptr)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (what a dataset keeps per molecule, times N)."""
        return int(sum(a.nbytes for a in self.arrays().values()))

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by its file name (``atom.<column>``, ``bond.<column>``, ``atom_ptr``, ...)."""
        out = {"atom_ptr": self.atom_ptr, "bond_ptr": self.bond_ptr, "bonds": self.bonds,
               "smiles_ptr": self.smiles_ptr, "smiles_bytes": self.smiles_bytes, "keys": self.keys}
        out.update({f"atom.{k}": v for k, v in self.atom_codes.items()})
        out.update({f"bond.{k}": v for k, v in self.bond_codes.items()})
        return out

    # -- molecules ------------------------------------------------------------------------------
    def smiles(self, i: int) -> str:
        return bytes(self.smiles_bytes[self.smiles_ptr[i]:self.smiles_ptr[i + 1]]).decode()

    def all_smiles(self, positions: "np.ndarray | None" = None) -> list[str]:
        """The SMILES of every molecule (or those at ``positions``), decoded in one pass."""
        pos = np.arange(len(self)) if positions is None else np.asarray(positions, dtype=np.int64)
        text = bytes(self.smiles_bytes)
        ptr = self.smiles_ptr.tolist()
        return [text[ptr[i]:ptr[i + 1]].decode() for i in pos.tolist()]

    def gather(self, positions: np.ndarray) -> "Gathered":
        """The atoms and bonds of the molecules at ``positions``, in that order (vectorised)."""
        pos = np.asarray(positions, dtype=np.int64)
        atom_rows, n_atoms = ranges(self.atom_ptr, pos)
        bond_rows, n_bonds = ranges(self.bond_ptr, pos)
        return Gathered(
            n_atoms=n_atoms, n_bonds=n_bonds,
            atom_codes={k: v[atom_rows] for k, v in self.atom_codes.items()},
            bond_codes={k: v[bond_rows] for k, v in self.bond_codes.items()},
            bonds=np.asarray(self.bonds[bond_rows], dtype=np.int64),
        )


@dataclass(frozen=True)
class Gathered:
    """Some molecules' rows of a store: counts per molecule, codes and bonds concatenated."""

    n_atoms: np.ndarray
    n_bonds: np.ndarray
    atom_codes: dict[str, np.ndarray]
    bond_codes: dict[str, np.ndarray]
    bonds: np.ndarray


def ranges(ptr: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers ``ptr[p]:ptr[p+1]`` of every ``p`` in ``positions`` concatenated, and the counts."""
    starts = np.asarray(ptr[positions], dtype=np.int64)
    counts = np.asarray(ptr[positions + 1], dtype=np.int64) - starts
    total = int(counts.sum())
    # row r of molecule k is starts[k] + (r - first row of k in the output)
    shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return np.arange(total, dtype=np.int64) + shift, counts


def build_store(n_atoms: Sequence[int], n_bonds: Sequence[int], bonds: np.ndarray,
                atom_codes: dict[str, np.ndarray], bond_codes: dict[str, np.ndarray],
                smiles: Sequence[str], keys: "np.ndarray | None" = None) -> MoleculeStore:
    """A store from per-molecule counts and the concatenated rows (checked for consistency)."""
    atom_ptr = _ptr(n_atoms)
    bond_ptr = _ptr(n_bonds)
    if len(atom_ptr) - 1 != len(smiles) or len(bond_ptr) != len(atom_ptr):
        raise ValueError("counts and SMILES disagree on the number of molecules")
    if len(bonds) != bond_ptr[-1] or any(len(v) != atom_ptr[-1] for v in atom_codes.values()) \
            or any(len(v) != bond_ptr[-1] for v in bond_codes.values()):
        raise ValueError("codes disagree with the atom and bond counts")
    if len(n_atoms) and max(n_atoms) > MAX_ATOMS_PER_MOLECULE:
        raise ValueError(f"a molecule has more than {MAX_ATOMS_PER_MOLECULE} atoms")
    smiles_bytes, smiles_ptr = pack_strings(smiles)
    keys = np.zeros(len(smiles), dtype=np.uint64) if keys is None else np.asarray(keys, dtype=np.uint64)
    if len(keys) != len(smiles):
        raise ValueError("one key per molecule")
    return MoleculeStore(atom_ptr, bond_ptr, np.asarray(bonds, dtype=np.int16).reshape(-1, 2),
                         dict(atom_codes), dict(bond_codes), smiles_ptr, smiles_bytes, keys)


def pack_strings(strings: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """``strings`` as one UTF-8 uint8 array and int64 offsets (string ``i`` is bytes
    ``ptr[i]:ptr[i+1]``), built without a Python object per string."""
    text = bytearray()
    ends = array.array("q", [0])
    for s in strings:
        text += s.encode()
        ends.append(len(text))
    return np.frombuffer(text, dtype=np.uint8), np.frombuffer(ends, dtype=np.int64)  # no copy: views


class PackedStrings(Sequence[str]):
    """A read-only sequence of strings kept as UTF-8 bytes with offsets (:func:`pack_strings`).

    A Python ``str`` costs ~50 bytes besides its characters, plus 8 for the list's pointer; a
    million SMILES as a list take ~100 MB where these two arrays take ~50 MB, and, freed, they go
    back to the system at once (many small objects leave their memory pools fragmented). Items are
    decoded when asked for; a slice gives a list.
    """

    def __init__(self, strings: Iterable[str]) -> None:
        self._bytes, self._ptr = pack_strings(strings)

    def __len__(self) -> int:
        return len(self._ptr) - 1

    def __getitem__(self, i: "int | slice") -> "str | list[str]":  # type: ignore[override]
        if isinstance(i, slice):
            ptr = self._ptr
            text = self._bytes
            return [bytes(text[ptr[k]:ptr[k + 1]]).decode() for k in range(*i.indices(len(self)))]
        n = len(self)
        k = int(i) + n if int(i) < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError("string index out of range")
        return bytes(self._bytes[self._ptr[k]:self._ptr[k + 1]]).decode()

    @property
    def nbytes(self) -> int:
        """UTF-8 bytes of all the strings (what a store's ``smiles_bytes`` of them takes)."""
        return int(self._ptr[-1])


def _ptr(counts: Sequence[int]) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=out[1:])
    return out


class StoreBuilder:
    """Appends stores (chunks of featurized molecules) into one, copying each chunk once.

    The arrays are allocated up front for ``atoms``/``bonds`` rows (upper bounds: a SMILES has at
    least one character per atom and per bond, so its length bounds both) and ``molecules``
    molecules, each in its own anonymous memory map (:func:`untouched_array`), whose pages the
    system provides only when they are written. So resident memory grows with what was
    appended, never with the bounds; a chunk can be freed as soon as it is copied, the offsets
    are written in place (no list of per-chunk counts), and :meth:`finish` returns views (no
    final copy): loading peaks near the kept size. A bound that proves too small doubles the
    array (correct, only slower).
    """

    def __init__(self, like: MoleculeStore, molecules: int, atoms: int, bonds: int, smiles_bytes: int) -> None:
        caps = {"atom": atoms, "bond": bonds, "smiles_bytes": smiles_bytes, "keys": molecules, "ptr": molecules + 1}
        self._arrays = {name: untouched_array((max(caps[_kind(name)], 1),) + a.shape[1:], a.dtype)
                        for name, a in like.arrays().items()}
        self._used = {"atom": 0, "bond": 0, "smiles_bytes": 0, "keys": 0, "ptr": 1}
        for name in _PTR_OF:
            self._arrays[name][0] = 0

    def append(self, store: MoleculeStore) -> None:
        """Copy ``store``'s molecules after those appended before."""
        sizes = {"atom": int(store.atom_ptr[-1]), "bond": int(store.bond_ptr[-1]),
                 "smiles_bytes": int(store.smiles_ptr[-1]), "keys": len(store), "ptr": len(store)}
        for name, array in store.arrays().items():
            kind = _kind(name)
            start = self._used[kind]
            if kind == "ptr":  # offsets continue from the rows appended before
                array = array[1:] + self._used[_PTR_OF[name]]
            self._fit(name, start + len(array))
            self._arrays[name][start:start + len(array)] = array
        for kind, n in sizes.items():
            self._used[kind] += n

    def _fit(self, name: str, needed: int) -> None:
        old = self._arrays[name]
        if needed > len(old):
            new = untouched_array((max(needed, 2 * len(old)),) + old.shape[1:], old.dtype)
            new[:len(old)] = old
            self._arrays[name] = new

    def finish(self) -> MoleculeStore:
        """The store of everything appended (the arrays are views of the builder's)."""
        return _from_arrays({name: a[:self._used[_kind(name)]] for name, a in self._arrays.items()})


#: which rows each offsets array counts
_PTR_OF = {"atom_ptr": "atom", "bond_ptr": "bond", "smiles_ptr": "smiles_bytes"}


def _kind(name: str) -> str:
    """Which count an array's length follows: atoms, bonds, SMILES bytes, molecules (``keys``), or
    molecules + 1 (offsets)."""
    if name in _PTR_OF:
        return "ptr"
    if name.startswith("atom."):
        return "atom"
    if name.startswith("bond.") or name == "bonds":
        return "bond"
    return name


def untouched_array(shape: tuple[int, ...], dtype: "np.dtype | type") -> np.ndarray:
    """A zero-filled array in its own anonymous memory map: its pages become resident only when
    written, and go back to the system when the array is freed.

    ``np.empty`` promises neither: for a large array malloc may hand out heap memory that earlier,
    freed objects (the CSV's text, featurization chunks) left resident, so a buffer sized for an
    upper bound would cost its whole size; and freed heap memory often stays with the process.
    """
    count = int(np.prod(shape))
    buffer = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def concat_stores(parts: "list[MoleculeStore]") -> MoleculeStore:
    """One store of ``parts`` in order."""
    if len(parts) == 1:
        return parts[0]
    builder = StoreBuilder(parts[0], sum(len(p) for p in parts), sum(int(p.atom_ptr[-1]) for p in parts),
                           sum(int(p.bond_ptr[-1]) for p in parts), sum(int(p.smiles_ptr[-1]) for p in parts))
    for p in parts:
        builder.append(p)
    return builder.finish()


def _from_arrays(arrays: dict[str, np.ndarray]) -> MoleculeStore:
    return MoleculeStore(
        atom_ptr=arrays["atom_ptr"], bond_ptr=arrays["bond_ptr"], bonds=arrays["bonds"],
        atom_codes={k[5:]: v for k, v in arrays.items() if k.startswith("atom.")},
        bond_codes={k[5:]: v for k, v in arrays.items() if k.startswith("bond.")},
        smiles_ptr=arrays["smiles_ptr"], smiles_bytes=arrays["smiles_bytes"], keys=arrays["keys"],
    )


# -- files ----------------------------------------------------------------------------------------
META = "meta.json"


def save_store(folder: Path, store: MoleculeStore, meta: dict) -> None:
    """Write every array as ``<name>.npy`` and ``meta`` (JSON) into ``folder`` (which must not exist)."""
    folder.mkdir(parents=True)
    for name, array in store.arrays().items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
    (folder / META).write_text(json.dumps({**meta, "arrays": sorted(store.arrays())}))


def load_store(folder: Path, *, mmap: bool = True) -> tuple[MoleculeStore, dict]:
    """Read what :func:`save_store` wrote (memory-mapped: pages are read when a batch needs them).

    Raises ``OSError`` / ``ValueError`` / ``KeyError`` for a missing, partial or foreign folder.
    """
    meta = json.loads((folder / META).read_text())
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
              for name in meta["arrays"]}
    store = _from_arrays(arrays)
    _check(store)
    return store, meta


def _check(store: MoleculeStore) -> None:
    n = len(store)
    if n < 0 or len(store.bond_ptr) != n + 1 or len(store.smiles_ptr) != n + 1:
        raise ValueError("inconsistent offsets")
    if store.bonds.ndim != 2 or len(store.bonds) != store.bond_ptr[-1] \
            or any(len(v) != store.atom_ptr[-1] for v in store.atom_codes.values()) \
            or any(len(v) != store.bond_ptr[-1] for v in store.bond_codes.values()) \
            or len(store.smiles_bytes) != store.smiles_ptr[-1] or len(store.keys) != n:
        raise ValueError("arrays disagree with their offsets")


def column_layout(columns: Iterable) -> list[list[str]]:
    """``[name, code dtype]`` of each column: what a stored file must match to be reused."""
    return [[c.name, np.dtype(c.code_dtype).str] for c in columns]
