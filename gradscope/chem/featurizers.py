"""Molecule featurizers: RDKit molecule → :class:`MolGraph`.

A :class:`Featurizer` is a small frozen object made of named feature columns for atoms and
bonds, plus a ``version`` string that keys the on-disk feature cache (change a column, bump the
version). Two presets:

``"compt"`` (default)
    The atom and bond features of CoMPT (Chen et al. 2021, "Learning Attributed Graph
    Representations with Communicative Message Passing Transformer", IJCAI; the featurization the
    GraphSAM paper's CoMPT experiments use): atomic number one-hot 1..100 with an unknown slot
    (101), hybridization one-hot SP..SP3D2 with an unknown slot (6), total H count / 8, degree / 4,
    formal charge / 8, total valence / 8, Gasteiger charge, Gasteiger implicit-H charge,
    aromaticity, ring membership: 115 atom features. Bonds: type one-hot (single, double, triple,
    aromatic), stereo one-hot (6), conjugated, aromatic, in ring: 13 bond features.
``"minimal"``
    A small set for quick experiments and tests: element one-hot over the organic subset with an
    unknown slot, aromaticity, ring membership, degree / 4, H count / 4 (14 atom features); bond
    type one-hot, conjugated, in ring (6 bond features).

Each column (:mod:`gradscope.chem.columns`) reads one small code per atom or bond (a one-hot
slot, a raw integer, a float32 value); :meth:`Featurizer.encode` reads the codes of many molecules
at once into a compact :class:`~gradscope.chem.store.MoleculeStore`, which is what datasets keep,
and the dense features are decoded from the codes when a batch is built. :meth:`Featurizer.featurize`
returns one molecule's dense :class:`MolGraph`, its topological distance matrix from
``Chem.GetDistanceMatrix`` (``inf`` between disconnected fragments).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdPartialCharges

from gradscope.chem._rdkit import parse_smiles
from gradscope.chem.columns import Column, OneHot, Scalar, decode_columns, encode_columns
from gradscope.chem.graph import MolGraph
from gradscope.chem.store import MoleculeStore, build_store
from gradscope.errors import ConfigError, GradscopeError

HT = Chem.rdchem.HybridizationType
BT = Chem.rdchem.BondType
BS = Chem.rdchem.BondStereo


def _gasteiger(atom: Chem.Atom) -> float:
    return atom.GetDoubleProp("_GasteigerCharge") if atom.HasProp("_GasteigerCharge") else 0.0


def _gasteiger_h(atom: Chem.Atom) -> float:
    return atom.GetDoubleProp("_GasteigerHCharge") if atom.HasProp("_GasteigerHCharge") else 0.0


@dataclass(frozen=True)
class Featurizer:
    """Turns molecules into :class:`MolGraph` s.

    Attributes:
        name: preset name (``"compt"``, ``"minimal"``, or a user's own).
        version: changes whenever any column changes; part of the feature-cache key.
        atom_columns / bond_columns: the feature blocks, in order.
        gasteiger: compute Gasteiger partial charges before reading atoms (needed by the
            charge columns).
    """

    name: str
    version: str
    atom_columns: tuple[Column, ...]
    bond_columns: tuple[Column, ...]
    gasteiger: bool = False

    def __post_init__(self) -> None:
        for kind, cols in (("atom", self.atom_columns), ("bond", self.bond_columns)):
            names = [c.name for c in cols]
            if len(set(names)) != len(names):
                raise ValueError(f"featurizer {self.name!r}: {kind} column names must be unique, got {names}")

    @property
    def atom_dim(self) -> int:
        return sum(c.width for c in self.atom_columns)

    @property
    def bond_dim(self) -> int:
        return sum(c.width for c in self.bond_columns)

    @property
    def key(self) -> str:
        """``name@version``, the identity recorded in caches and specs."""
        return f"{self.name}@{self.version}"

    def __call__(self, mol: "Chem.Mol | str") -> MolGraph:
        """Featurize one molecule (a SMILES string or an RDKit ``Mol``)."""
        smiles = mol if isinstance(mol, str) else Chem.MolToSmiles(mol)
        if isinstance(mol, str):
            parsed = parse_smiles(mol)
            if parsed is None:
                raise GradscopeError(f"cannot parse SMILES {mol!r}")
            mol = parsed
        return self.featurize(mol, smiles=smiles)

    def featurize(self, mol: Chem.Mol, smiles: str = "") -> MolGraph:
        """Featurize a parsed RDKit molecule (hydrogens implicit, as parsed from SMILES)."""
        store = self.encode([mol], [smiles])
        n, nb = store.n_atoms.tolist() + store.n_bonds.tolist()
        atoms = self.decode_atoms(store.atom_codes, n)
        e = self.decode_bonds(store.bond_codes, nb)
        begin, end = (torch.from_numpy(store.bonds[:, k].astype(np.int64)) for k in (0, 1))
        edge_index = torch.stack([torch.cat([begin, end]), torch.cat([end, begin])])
        dist = Chem.GetDistanceMatrix(mol).astype(np.float32) if n > 0 else np.zeros((0, 0), np.float32)
        dist[dist >= 1e7] = math.inf  # RDKit marks disconnected pairs with 1e8
        return MolGraph(atoms=atoms, edge_index=edge_index, edge_attr=torch.cat([e, e]),
                        distances=torch.from_numpy(dist), smiles=smiles)

    def encode(self, mols: Sequence[Chem.Mol], smiles: Sequence[str]) -> MoleculeStore:
        """The compact codes of parsed molecules (:class:`~gradscope.chem.store.MoleculeStore`).

        Each column reads all atoms (or bonds) of all ``mols`` in one call, which is what makes
        featurizing fast. ``decode_atoms``/``decode_bonds`` give the dense features back.
        """
        atoms: list[Chem.Atom] = []
        bonds: list[Chem.Bond] = []
        n_atoms, n_bonds = [], []
        for mol in mols:
            if self.gasteiger:  # stored as atom properties on this Mol object
                rdPartialCharges.ComputeGasteigerCharges(mol, throwOnParamFailure=False)
            n, nb = mol.GetNumAtoms(), mol.GetNumBonds()
            atoms.extend(mol.GetAtomWithIdx(i) for i in range(n))  # faster than mol.GetAtoms()
            bonds.extend(mol.GetBondWithIdx(i) for i in range(nb))
            n_atoms.append(n)
            n_bonds.append(nb)
        ends = np.fromiter((i for b in bonds for i in (b.GetBeginAtomIdx(), b.GetEndAtomIdx())),
                           dtype=np.int64, count=2 * len(bonds))
        return build_store(n_atoms, n_bonds, ends.reshape(-1, 2), encode_columns(self.atom_columns, atoms),
                           encode_columns(self.bond_columns, bonds), smiles)

    def decode_atoms(self, codes: "dict[str, np.ndarray]", n: int) -> torch.Tensor:
        """Dense float32 ``[n, atom_dim]`` atom features from their codes."""
        return decode_columns(self.atom_columns, codes, n)

    def decode_bonds(self, codes: "dict[str, np.ndarray]", n: int) -> torch.Tensor:
        """Dense float32 ``[n, bond_dim]`` features of ``n`` (undirected) bonds from their codes."""
        return decode_columns(self.bond_columns, codes, n)

    def __reduce__(self):
        # presets pickle by name (their columns hold RDKit methods and lambdas), so datasets can
        # go to DataLoader worker processes under any start method
        if FEATURIZERS.get(self.name) is self:
            return (get_featurizer, (self.name,))
        return super().__reduce__()

    def describe(self) -> list[tuple[str, str, int, str]]:
        """Rows ``(kind, column name, width, description)`` for documentation."""
        rows = [("atom", c.name, c.width, c.describe()) for c in self.atom_columns]
        rows += [("bond", c.name, c.width, c.describe()) for c in self.bond_columns]
        return rows


# ---------------------------------------------------------------------------------------------
# presets

_HYBRIDIZATIONS = (HT.SP, HT.SP2, HT.SP3, HT.SP3D, HT.SP3D2)
_BOND_TYPES = (BT.SINGLE, BT.DOUBLE, BT.TRIPLE, BT.AROMATIC)
_STEREO = (BS.STEREOANY, BS.STEREOCIS, BS.STEREOE, BS.STEREONONE, BS.STEREOTRANS, BS.STEREOZ)

COMPT = Featurizer(
    name="compt",
    version="1",
    atom_columns=(
        OneHot("atomic_number", Chem.Atom.GetAtomicNum, tuple(range(1, 101))),
        OneHot("hybridization", Chem.Atom.GetHybridization, _HYBRIDIZATIONS),
        Scalar("num_hs", lambda a: a.GetTotalNumHs(includeNeighbors=True), 1 / 8, "total H count", store="int8"),
        Scalar("degree", Chem.Atom.GetDegree, 1 / 4, "heavy-atom degree", store="int8"),
        Scalar("formal_charge", Chem.Atom.GetFormalCharge, 1 / 8, "formal charge", store="int8"),
        Scalar("valence", Chem.Atom.GetTotalValence, 1 / 8, "total valence", store="int8"),
        Scalar("gasteiger_charge", _gasteiger, 1.0, "Gasteiger partial charge (NaN → 0)"),
        Scalar("gasteiger_h_charge", _gasteiger_h, 1.0, "Gasteiger implicit-H charge (NaN → 0)"),
        Scalar("aromatic", Chem.Atom.GetIsAromatic, 1.0, "1 if aromatic", store="int8"),
        Scalar("in_ring", Chem.Atom.IsInRing, 1.0, "1 if in a ring", store="int8"),
    ),
    bond_columns=(
        OneHot("bond_type", Chem.Bond.GetBondType, _BOND_TYPES, unknown=False),
        OneHot("stereo", Chem.Bond.GetStereo, _STEREO, unknown=False),
        Scalar("conjugated", Chem.Bond.GetIsConjugated, 1.0, "1 if conjugated", store="int8"),
        Scalar("aromatic", Chem.Bond.GetIsAromatic, 1.0, "1 if aromatic", store="int8"),
        Scalar("in_ring", Chem.Bond.IsInRing, 1.0, "1 if in a ring", store="int8"),
    ),
    gasteiger=True,
)

MINIMAL = Featurizer(
    name="minimal",
    version="1",
    atom_columns=(
        OneHot("element", Chem.Atom.GetSymbol, ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")),
        Scalar("aromatic", Chem.Atom.GetIsAromatic, 1.0, "1 if aromatic", store="int8"),
        Scalar("in_ring", Chem.Atom.IsInRing, 1.0, "1 if in a ring", store="int8"),
        Scalar("degree", Chem.Atom.GetDegree, 1 / 4, "heavy-atom degree", store="int8"),
        Scalar("num_hs", lambda a: a.GetTotalNumHs(includeNeighbors=True), 1 / 4, "total H count", store="int8"),
    ),
    bond_columns=(
        OneHot("bond_type", Chem.Bond.GetBondType, _BOND_TYPES, unknown=False),
        Scalar("conjugated", Chem.Bond.GetIsConjugated, 1.0, "1 if conjugated", store="int8"),
        Scalar("in_ring", Chem.Bond.IsInRing, 1.0, "1 if in a ring", store="int8"),
    ),
)

FEATURIZERS: dict[str, Featurizer] = {f.name: f for f in (COMPT, MINIMAL)}
DEFAULT_FEATURIZER = "compt"


def get_featurizer(name: "str | Featurizer" = DEFAULT_FEATURIZER) -> Featurizer:
    """The featurizer preset called ``name`` (a :class:`Featurizer` is returned unchanged)."""
    if isinstance(name, Featurizer):
        return name
    try:
        return FEATURIZERS[str(name).lower()]
    except KeyError:
        raise ConfigError(f"unknown featurizer {name!r}; choose one of {', '.join(sorted(FEATURIZERS))}") from None
