"""Train/validation/test splits: seeded random, Bemis–Murcko scaffold, k-fold.

Every split is a dict ``{"train", "val", "test"}`` → sorted int64 numpy arrays of dataset
positions, disjoint and together covering the dataset. Save it with the checkpoint
(``{k: v.tolist()}``) to rebuild exactly the data a run saw.

* :func:`random_split` — a seeded permutation cut 0.8/0.1/0.1, the GraphSAM paper's protocol
  (Wang et al. 2024, Sec. 5; as in CoMPT).
* :func:`scaffold_split` — DeepChem's ``ScaffoldSplitter`` (the MoleculeNet scaffold split):
  molecules grouped by Bemis–Murcko scaffold (Bemis & Murcko 1996; chirality ignored), groups
  ordered by (size, first index) descending — of two equal-sized groups the one that starts
  later comes first — and taken whole into train while it stays within ``f_train·n``, else into
  validation while train + validation stay within ``(f_train + f_val)·n``, else into test. No
  scaffold appears in two splits.
* :func:`kfold_split` — fold ``k`` of a seeded k-fold partition is the test set; a seeded
  ``val_fraction`` of the rest is the validation set.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from gradscope.errors import ConfigError, GradscopeError

SPLIT_NAMES = ("train", "val", "test")
METHODS = ("random", "scaffold", "kfold")
Split = dict[str, np.ndarray]


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(x < 0 for x in f) or abs(sum(f) - 1.0) > 1e-6 or f[0] <= 0:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    return f  # type: ignore[return-value]


def _as_split(train: Sequence[int], val: Sequence[int], test: Sequence[int]) -> Split:
    return {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in zip(SPLIT_NAMES, (train, val, test))}


def random_split(n: int, *, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Seeded random split of ``range(n)``: ⌊f_train·n⌋ train, ⌊f_val·n⌋ validation, rest test."""
    f = _check_fractions(fractions)
    if n < 3:
        raise GradscopeError(f"cannot split {n} molecules into train/val/test")
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(f[0] * n)
    n_val = int(f[1] * n)
    return _as_split(perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])


def murcko_scaffold(smiles: str, include_chirality: bool = False) -> str:
    """Bemis–Murcko scaffold SMILES of a molecule ('' for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    from gradscope.chem._rdkit import parse_smiles, quiet_rdkit

    mol = parse_smiles(smiles)
    if mol is None:
        raise GradscopeError(f"cannot parse SMILES {smiles!r}")
    with quiet_rdkit():
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


def scaffold_groups(smiles: Sequence[str]) -> list[list[int]]:
    """Positions grouped by Murcko scaffold, in DeepChem's order: (size, first position) descending."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(smiles):
        groups[murcko_scaffold(s)].append(i)
    return sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)


def scaffold_split(smiles: Sequence[str], *, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Deterministic Bemis–Murcko scaffold split, equal to DeepChem's ``ScaffoldSplitter`` (module docstring)."""
    f = _check_fractions(fractions)
    n = len(smiles)
    ordered = scaffold_groups(smiles)
    train_cut, val_cut = f[0] * n, (f[0] + f[1]) * n
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for g in ordered:
        if len(train) + len(g) <= train_cut:
            train += g
        elif len(train) + len(val) + len(g) <= val_cut:
            val += g
        else:
            test += g
    return _as_split(train, val, test)


def kfold_split(n: int, *, k: int = 5, fold: int = 0, seed: int = 0, val_fraction: float = 0.1) -> Split:
    """Fold ``fold`` of a seeded ``k``-fold partition as test; ``val_fraction`` of the rest as val."""
    if k < 2 or not 0 <= fold < k:
        raise ConfigError(f"k-fold needs k >= 2 and 0 <= fold < k, got k={k}, fold={fold}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if n < k:
        raise GradscopeError(f"cannot make {k} folds of {n} molecules")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    folds = np.array_split(perm, k)
    test = folds[fold]
    rest = np.concatenate([folds[j] for j in range(k) if j != fold])
    rest = rng.permutation(rest)
    n_val = int(val_fraction * n)
    return _as_split(rest[n_val:], rest[:n_val], test)


@dataclass(frozen=True)
class SplitSpec:
    """How to split (saved beside the indices so the split can be explained and redone).

    Attributes:
        method: ``"random"``, ``"scaffold"`` or ``"kfold"``.
        seed: seed of random and k-fold splits (scaffold splits are deterministic).
        fractions: train/val/test fractions (random, scaffold).
        k, fold, val_fraction: k-fold settings.
    """

    method: str = "random"
    seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    k: int = 5
    fold: int = 0
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"split method must be one of {METHODS}, got {self.method!r}")
        object.__setattr__(self, "fractions", _check_fractions(self.fractions))
        if self.method == "kfold" and (self.k < 2 or not 0 <= self.fold < self.k):
            raise ConfigError(f"k-fold needs k >= 2 and 0 <= fold < k, got k={self.k}, fold={self.fold}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fractions"] = list(d["fractions"])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SplitSpec":
        unknown = set(d) - {"method", "seed", "fractions", "k", "fold", "val_fraction"}
        if unknown:
            raise ConfigError(f"unknown SplitSpec field(s): {', '.join(sorted(unknown))}")
        kw = dict(d)
        if "fractions" in kw:
            kw["fractions"] = tuple(kw["fractions"])
        return cls(**kw)


def make_split(dataset_or_smiles: Any, spec: SplitSpec | str = "random", **kwargs: Any) -> Split:
    """Split a :class:`MoleculeDataset` (or a list of SMILES) as ``spec`` says.

    ``spec`` may be a :class:`SplitSpec` or a method name with ``SplitSpec`` fields as keywords.
    """
    if isinstance(spec, str):
        spec = SplitSpec(method=spec, **kwargs)
    elif kwargs:
        raise ConfigError("pass either a SplitSpec or keyword settings, not both")
    smiles = dataset_or_smiles.smiles if hasattr(dataset_or_smiles, "smiles") else list(dataset_or_smiles)
    if spec.method == "random":
        return random_split(len(smiles), seed=spec.seed, fractions=spec.fractions)
    if spec.method == "scaffold":
        return scaffold_split(smiles, fractions=spec.fractions)
    return kfold_split(len(smiles), k=spec.k, fold=spec.fold, seed=spec.seed, val_fraction=spec.val_fraction)


def split_from_lists(d: Mapping[str, Sequence[int]]) -> Split:
    """Rebuild a split saved as plain lists (e.g. from a checkpoint)."""
    missing = set(SPLIT_NAMES) - set(d)
    if missing:
        raise GradscopeError(f"saved split lacks {', '.join(sorted(missing))}")
    return {k: np.asarray(d[k], dtype=np.int64) for k in SPLIT_NAMES}
